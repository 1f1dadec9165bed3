//! Each spec's bad-input cases, replayed with many clients connected (issue 8, hardening).
//!
//! One in-process server per app (127.0.0.1, port 0, two reactors). A crowd of bystanders
//! (30 to 40 per app) does that app's normal traffic in its own pairs, rooms or channels,
//! while an attacker on separate connections replays every bad-input and error case the
//! app's spec lists. Each case must get exactly the answer the spec prescribes: an error
//! in the app's own format, silence, a close code and reason, or an HTTP status and body.
//!
//! The crowd works in rounds: before each case every bystander sends its traffic for that
//! round, the case runs while those messages are in flight, and afterwards every bystander
//! must have received exactly what the round should bring it, in order: nothing lost,
//! nothing extra (a stray frame shows up as a mismatch in the next round). A last round
//! after the replay checks the end state.
//!
//! "Nothing" (no reply) is checked without sleeps where the app orders its replies: the
//! answer to a probe sent right after the case must be the next frame.
//!
//! The core's own matrix (handshake, framing, liveness) is `tests/bad_input.rs`.

mod common;

use common::*;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use switchboard::config::{AppKind, Config};
use switchboard::server::Server;
use tungstenite::Message;

const UPGRADE: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

/// The reactors every server here runs with (so cross-reactor paths are exercised).
const THREADS: usize = 2;

fn server_with(apps: &[AppKind], tweak: impl FnOnce(&mut Config)) -> Server {
    let mut c = config(THREADS, apps);
    tweak(&mut c);
    start(c)
}

/// The bystanders of one app: everyone sends a round of traffic, then everyone checks it.
trait Crowd {
    fn send(&mut self, round: usize);
    fn check(&mut self, round: usize);
}

/// One bad-input case, run against the app-specific attacker state `A`.
type Case<'a, A> = (&'static str, Box<dyn FnOnce(&mut A) + 'a>);

/// Runs every case with a round of crowd traffic in flight, checks the crowd after each,
/// then once more after the whole replay. Returns the number of cases run.
fn replay<C: Crowd, A>(crowd: &mut C, atk: &mut A, cases: Vec<Case<'_, A>>) -> usize {
    let n = cases.len();
    let start = Instant::now();
    for (round, (what, run)) in cases.into_iter().enumerate() {
        crowd.send(round);
        eprintln!("case {round}: {what}");
        run(atk);
        crowd.check(round);
    }
    crowd.send(n);
    crowd.check(n);
    eprintln!("{n} cases in {:?}", start.elapsed());
    n
}

fn body(r: &str) -> &str {
    r.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// The head of an HTTP answer, lower-cased, each line ending in `\r\n`.
fn head(r: &str) -> String {
    format!("{}\r\n", r.split("\r\n\r\n").next().unwrap_or("")).to_ascii_lowercase()
}

/// Asserts an HTTP answer's status code, a header (lower-case `name: value`) and body.
fn assert_http(what: &str, r: &str, status: u16, header: Option<&str>, want_body: &str) {
    assert!(
        r.starts_with(&format!("HTTP/1.1 {status} ")),
        "{what}: expected {status}, got {r:?}"
    );
    if let Some(h) = header {
        assert!(
            head(r).contains(&format!("\r\n{}\r\n", h.to_ascii_lowercase())),
            "{what}: no {h:?} in {r:?}"
        );
    }
    assert_eq!(body(r), want_body, "{what}: body of {r:?}");
    assert!(!r.contains(" 101 "), "{what}: upgraded: {r:?}");
}

/// A WebSocket upgrade request for `target`; the whole answer (read to EOF).
fn upgrade(addr: SocketAddr, target: &str) -> String {
    http(
        addr,
        &format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\n{UPGRADE}\r\n"),
    )
}

/// The next text message (Pings and Pongs skipped); panics on anything else.
fn text(c: &mut Client) -> String {
    match c.recv() {
        Message::Text(t) => t.to_string(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// Writes bytes tungstenite would refuse to build (bad UTF-8, odd fragments) on the socket.
fn send_raw(c: &mut Client, bytes: &[u8]) {
    c.ws.flush().expect("nothing pending");
    c.ws.get_mut().write_all(bytes).expect("raw write");
}

/// A masked client frame with an explicit first byte (FIN, RSV, opcode).
fn frame_b0(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = masked_frame(b0 & 0x0f, payload);
    f[0] = b0;
    f
}

/// A text message split into two fragments.
fn fragmented(first: &[u8], second: &[u8]) -> Vec<u8> {
    let mut f = frame_b0(0x01, first);
    f.extend(frame_b0(0x80, second));
    f
}

/// Sends a message over the limit (the server may stop reading half-way) and expects the
/// close that answers it.
fn send_oversize(c: &mut Client, len: usize) -> (u16, String) {
    let _ = c.ws.send(Message::text("x".repeat(len)));
    c.expect_close()
}

/// Expects the close `code` with `reason` (`None`: any reason).
fn assert_close(what: &str, got: (u16, String), code: u16, reason: Option<&str>) {
    assert_eq!(got.0, code, "{what}: close code (reason {:?})", got.1);
    if let Some(r) = reason {
        assert_eq!(got.1, r, "{what}: close reason");
    }
}

/// Reads until a Pong arrives (data messages are a failure).
fn expect_pong(c: &mut Client, what: &str) {
    loop {
        match c.ws.read() {
            Ok(Message::Pong(_)) => return,
            Ok(Message::Ping(_)) => continue,
            Ok(m) => panic!("{what}: expected a Pong, got {m:?}"),
            Err(e) => panic!("{what}: expected a Pong, got {e}"),
        }
    }
}

/// Drops the TCP connection without a closing handshake.
fn drop_tcp(c: Client) {
    let _ = c.ws.get_ref().shutdown(std::net::Shutdown::Both);
}

// ---------------------------------------------------------------------------------------
// pair (pair.md): PAR-02, 05, 06, 11, 13, 14, 15, 16, the lossy binary rule, Pings.

mod pair_app {
    use super::*;
    use switchboard::apps::pair::{CONNECTED, PARTNER_GONE, WAITING};

    /// 20 pairs; each round every client sends two numbered messages to its partner.
    pub struct Pairs(Vec<(Client, Client)>);

    impl Pairs {
        pub fn join(addr: SocketAddr, n: usize) -> Pairs {
            let pairs = (0..n)
                .map(|_| {
                    let mut a = Client::connect(addr, "/");
                    a.expect_text(WAITING);
                    let mut b = Client::connect(addr, "/");
                    b.expect_text(CONNECTED);
                    a.expect_text(CONNECTED);
                    (a, b)
                })
                .collect();
            Pairs(pairs)
        }
    }

    fn line(round: usize, pair: usize, side: &str, k: usize) -> String {
        format!("round {round} pair {pair} from {side} #{k}")
    }

    impl Crowd for Pairs {
        fn send(&mut self, round: usize) {
            for (i, (a, b)) in self.0.iter_mut().enumerate() {
                for k in 0..2 {
                    a.send_text(&line(round, i, "a", k));
                    b.send_text(&line(round, i, "b", k));
                }
            }
        }

        fn check(&mut self, round: usize) {
            for (i, (a, b)) in self.0.iter_mut().enumerate() {
                for k in 0..2 {
                    assert_eq!(text(b), line(round, i, "a", k), "bystander pair {i}");
                    assert_eq!(text(a), line(round, i, "b", k), "bystander pair {i}");
                }
            }
        }
    }

    /// The attacker's own connections: at most one waits in the lobby (bystanders are all
    /// paired, so the lobby only ever holds the attacker's).
    pub struct Atk {
        pub addr: SocketAddr,
        waiting: Option<Client>,
        paired: Option<(Client, Client)>,
    }

    impl Atk {
        pub fn new(addr: SocketAddr) -> Atk {
            Atk {
                addr,
                waiting: None,
                paired: None,
            }
        }

        /// A paired attacker (the newcomer first).
        fn pair(&mut self) -> (Client, Client) {
            if let Some(p) = self.paired.take() {
                return p;
            }
            let mut w = self.lone();
            let mut n = Client::connect(self.addr, "/");
            n.expect_text(CONNECTED);
            w.expect_text(CONNECTED);
            (n, w)
        }

        /// An attacker alone in the lobby.
        fn lone(&mut self) -> Client {
            if let Some(w) = self.waiting.take() {
                return w;
            }
            if let Some((a, b)) = self.paired.take() {
                a.close();
                self.orphaned(b);
                return self.waiting.take().expect("just re-queued");
            }
            let mut c = Client::connect(self.addr, "/");
            c.expect_text(WAITING);
            c
        }

        /// `c`'s partner left: PARTNER_GONE, then WAITING (nobody else waits).
        fn orphaned(&mut self, mut c: Client) {
            assert_eq!(text(&mut c), PARTNER_GONE, "the partner is told");
            assert_eq!(text(&mut c), WAITING, "and re-queued");
            self.waiting = Some(c);
        }

        fn keep(&mut self, a: Client, b: Client) {
            self.paired = Some((a, b));
        }
    }

    fn case<'a>(what: &'static str, f: impl FnOnce(&mut Atk) + 'a) -> Case<'a, Atk> {
        (what, Box::new(f))
    }

    pub fn cases<'a>() -> Vec<Case<'a, Atk>> {
        vec![
            case("PAR-13 plain GET / → 426 Upgrade Required", |a| {
                for req in [
                    "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                    "GET /whatever?x=1 HTTP/1.1\r\nHost: x\r\n\r\n",
                    "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi",
                ] {
                    let r = http(a.addr, req);
                    assert_http(
                        req,
                        &r,
                        426,
                        Some("content-type: text/plain"),
                        "Upgrade Required",
                    );
                }
            }),
            case(
                "PAR-02 a waiting client's message is dropped, never kept",
                |a| {
                    let mut w = a.lone();
                    w.send_text("talking to nobody");
                    // The Pong proves the server has read the message before anyone arrives.
                    w.ws.send(Message::Ping("sync".into())).unwrap();
                    expect_pong(&mut w, "PAR-02");
                    let mut n = Client::connect(a.addr, "/");
                    n.expect_text(CONNECTED);
                    w.expect_text(CONNECTED);
                    w.send_text("first real message");
                    n.expect_text("first real message");
                    a.keep(n, w);
                },
            ),
            case(
                "a Ping is answered and never relayed; a Pong is not relayed",
                |a| {
                    let (mut x, mut y) = a.pair();
                    x.ws.send(Message::Ping("p".into())).unwrap();
                    expect_pong(&mut x, "ping");
                    x.ws.send(Message::Pong("unsolicited".into())).unwrap();
                    x.send_text("after the ping");
                    y.expect_text("after the ping");
                    a.keep(x, y);
                },
            ),
            case(
                "PAR-05 binary 68 69 ff arrives as text 68 69 ef bf bd",
                |a| {
                    let (mut x, mut y) = a.pair();
                    x.send_binary(&[0x68, 0x69, 0xff]);
                    match y.recv() {
                        Message::Text(t) => {
                            assert_eq!(t.as_bytes(), [0x68, 0x69, 0xef, 0xbf, 0xbd])
                        }
                        other => panic!("PAR-05: {other:?}"),
                    }
                    a.keep(x, y);
                },
            ),
            case("PAR-06 an empty message is relayed", |a| {
                let (mut x, mut y) = a.pair();
                x.send_text("");
                y.expect_text("");
                a.keep(x, y);
            }),
            case("PAR-14 exactly 65536 bytes are relayed", |a| {
                let (mut x, mut y) = a.pair();
                let big = "m".repeat(65536);
                x.send_text(&big);
                y.expect_text(&big);
                a.keep(x, y);
            }),
            case("PAR-14 65537 bytes → close 1009, partner G then W", |a| {
                let (mut x, y) = a.pair();
                assert_close(
                    "PAR-14",
                    send_oversize(&mut x, 65537),
                    1009,
                    Some("Message too big"),
                );
                a.orphaned(y);
            }),
            case(
                "fragments over the limit → close 1009, partner G then W",
                |a| {
                    let (mut x, y) = a.pair();
                    send_raw(&mut x, &fragmented(&[b'f'; 40_000], &[b'f'; 30_000]));
                    assert_close("fragments", x.expect_close(), 1009, Some("Message too big"));
                    a.orphaned(y);
                },
            ),
            case(
                "PAR-15 invalid UTF-8 → close 1007, partner G then W",
                |a| {
                    let (mut x, y) = a.pair();
                    send_raw(&mut x, &masked_frame(1, &[b'h', 0xff]));
                    assert_close("PAR-15", x.expect_close(), 1007, None);
                    a.orphaned(y);
                },
            ),
            case("invalid UTF-8 split across fragments → close 1007", |a| {
                let (mut x, y) = a.pair();
                let euro = "€".as_bytes();
                send_raw(&mut x, &fragmented(&euro[..2], &[0xff]));
                assert_close("fragmented UTF-8", x.expect_close(), 1007, None);
                a.orphaned(y);
            }),
            case("TCP loss without a close → partner G then W", |a| {
                let (x, y) = a.pair();
                drop_tcp(x);
                a.orphaned(y);
            }),
            case(
                "PAR-11 a message right after the partner's close is dropped",
                |a| {
                    let (x, mut y) = a.pair();
                    x.close();
                    y.send_text("too late");
                    // Nothing orders this connection's bytes with another connection's: on
                    // a busy host the next case's newcomer can reach the server first. The
                    // Pong proves the server read the message while y was alone.
                    y.ws.send(Message::Ping("sync".into())).unwrap();
                    let mut got = Vec::new();
                    loop {
                        match y.ws.read().expect("G, W and the Pong") {
                            Message::Pong(_) => break,
                            Message::Text(t) => got.push(t.to_string()),
                            other => panic!("PAR-11: {other:?}"),
                        }
                    }
                    while got.len() < 2 {
                        got.push(text(&mut y));
                    }
                    assert_eq!(got, [PARTNER_GONE, WAITING], "PAR-11: only G then W");
                    a.waiting = Some(y);
                },
            ),
            case(
                "PAR-16 a partner that never reads → 1008 Slow consumer, G then W",
                |a| {
                    let (mut x, mut y) = a.pair();
                    let chunk = "s".repeat(60_000);
                    x.ws.get_mut()
                        .set_read_timeout(Some(Duration::from_millis(5)))
                        .unwrap();
                    let start = Instant::now();
                    let mut gone = false;
                    while !gone && start.elapsed() < DEADLINE {
                        x.ws.write(Message::text(chunk.as_str())).unwrap();
                        x.ws.flush().unwrap();
                        match x.ws.read() {
                            Ok(Message::Text(t)) => {
                                assert_eq!(t.as_str(), PARTNER_GONE);
                                gone = true;
                            }
                            Ok(_) => {}
                            Err(tungstenite::Error::Io(e))
                                if matches!(
                                    e.kind(),
                                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                                ) => {}
                            Err(e) => panic!("PAR-16 sender: {e}"),
                        }
                    }
                    assert!(gone, "PAR-16: the slow partner was never cut");
                    x.ws.get_mut().set_read_timeout(Some(DEADLINE)).unwrap();
                    x.expect_text(WAITING);
                    assert_close("PAR-16", y.expect_close(), 1008, Some("Slow consumer"));
                    a.waiting = Some(x);
                },
            ),
        ]
    }
}

#[test]
fn pair_bad_input_with_a_crowd() {
    let s = server_with(&[AppKind::Pair], |c| c.max_outbound_bytes = 256 * 1024);
    let addr = s.addr(AppKind::Pair).unwrap();
    let mut crowd = pair_app::Pairs::join(addr, 20);
    let mut atk = pair_app::Atk::new(addr);
    replay(&mut crowd, &mut atk, pair_app::cases());
    drop((crowd, atk));
    s.stop(DEADLINE).unwrap();
}

// ---------------------------------------------------------------------------------------
// session (session.md): SES-04, 05, 07, 08, 10, 11, 12, 13, 14, 15, 17, 21, max_rooms,
// invalid UTF-8, TCP loss.

mod session_app {
    use super::*;
    use switchboard::apps::session::jwt::{self, Alg};
    use switchboard::apps::session::unix_now;

    pub const KEY: &str = "app-bad-input-secret-0123456789abcdef";
    /// `max_users_per_room`: every bystander room is full.
    pub const ROOM_SIZE: usize = 5;
    /// Bystander rooms per reactor; the attacker's room makes one reactor hold one more.
    const ROOMS_PER_REACTOR: usize = 4;
    pub const MAX_ROOMS: usize = ROOMS_PER_REACTOR + 1;

    pub fn token(addr: SocketAddr, user: &str, room: &str) -> String {
        jwt::mint(user, room, &addr.to_string(), unix_now(), 0, KEY.as_bytes())
    }

    fn sign(payload: &str) -> String {
        jwt::sign(Alg::HS256, r#"{"alg":"HS256"}"#, payload, KEY.as_bytes())
    }

    fn owner(room: &str) -> usize {
        switchboard::router::owner_of(room.as_bytes(), THREADS)
    }

    /// `n` room names owned by reactor `r`, with `prefix`.
    fn rooms_on(r: usize, prefix: &str, n: usize) -> Vec<String> {
        (0..)
            .map(|i| format!("{prefix}{i}"))
            .filter(|name| owner(name) == r)
            .take(n)
            .collect()
    }

    pub struct Room {
        name: String,
        users: Vec<String>,
        members: Vec<Client>,
        /// Per member, per sender: the newest round seen (snapshots never go back).
        seen: Vec<Vec<Option<usize>>>,
    }

    /// Full rooms of `ROOM_SIZE` members on both reactors; each round every member sends
    /// one message; every member's snapshots must list exactly its room's members and, per
    /// sender, consecutive rounds with none missing; the round is done when the latest
    /// snapshot holds every member's message of that round.
    pub struct Rooms(pub Vec<Room>);

    fn snapshot(s: &str) -> serde_json::Value {
        serde_json::from_str(s).unwrap_or_else(|e| panic!("snapshot is not JSON ({e}): {s}"))
    }

    fn users_of(v: &serde_json::Value) -> Vec<String> {
        v["connectedUsers"]
            .as_array()
            .expect("connectedUsers")
            .iter()
            .map(|u| u.as_str().expect("user ids are strings").to_string())
            .collect()
    }

    impl Rooms {
        pub fn join(addr: SocketAddr) -> Rooms {
            let mut rooms = Vec::new();
            for r in 0..THREADS {
                for name in rooms_on(r, "bystanders-", ROOMS_PER_REACTOR) {
                    let mut room = Room {
                        name: name.clone(),
                        users: Vec::new(),
                        members: Vec::new(),
                        seen: Vec::new(),
                    };
                    for k in 0..ROOM_SIZE {
                        let user = format!("{name}-u{k}");
                        let c = Client::connect(
                            addr,
                            &format!("/?token={}", token(addr, &user, &name)),
                        );
                        room.users.push(user);
                        room.members.push(c);
                        room.seen.push(vec![None; ROOM_SIZE]);
                        let want = room.users.clone();
                        for m in &mut room.members {
                            let start = Instant::now();
                            while users_of(&snapshot(&text(m))) != want {
                                assert!(start.elapsed() < DEADLINE, "join of {name}");
                            }
                        }
                    }
                    rooms.push(room);
                }
            }
            Rooms(rooms)
        }

        pub fn member(&self, room: usize, k: usize) -> (&str, &str) {
            (&self.0[room].name, &self.0[room].users[k])
        }
    }

    fn line(round: usize, user: &str) -> String {
        format!("round {round} {user}")
    }

    impl Crowd for Rooms {
        fn send(&mut self, round: usize) {
            for room in &mut self.0 {
                for (k, m) in room.members.iter_mut().enumerate() {
                    m.send_text(&line(round, &room.users[k]));
                }
            }
        }

        fn check(&mut self, round: usize) {
            for room in &mut self.0 {
                for (k, m) in room.members.iter_mut().enumerate() {
                    let start = Instant::now();
                    loop {
                        assert!(start.elapsed() < DEADLINE, "{}: round {round}", room.name);
                        let s = text(m);
                        let v = snapshot(&s);
                        assert_eq!(users_of(&v), room.users, "{}: membership in {s}", room.name);
                        let msgs = v["messages"].as_array().expect("messages");
                        assert!(msgs.len() <= 100, "history window");
                        let mut last: Vec<Option<usize>> = vec![None; ROOM_SIZE];
                        for msg in msgs {
                            let text = msg["msg"].as_str().expect("msg");
                            let (n, user) = text
                                .strip_prefix("round ")
                                .and_then(|t| t.split_once(' '))
                                .unwrap_or_else(|| {
                                    panic!("{}: foreign message {text:?}", room.name)
                                });
                            let n: usize = n.parse().expect("round number");
                            let j =
                                room.users
                                    .iter()
                                    .position(|u| u == user)
                                    .unwrap_or_else(|| {
                                        panic!("{}: message from a non-member: {text:?}", room.name)
                                    });
                            assert_eq!(msg["userId"], user, "{text}");
                            if let Some(prev) = last[j] {
                                assert_eq!(
                                    n,
                                    prev + 1,
                                    "{}: {user}'s messages out of order or missing: {s}",
                                    room.name
                                );
                            }
                            last[j] = Some(n);
                        }
                        for (now, before) in last.iter().zip(&room.seen[k]) {
                            assert!(
                                now >= before,
                                "{}: an older snapshot after a newer one",
                                room.name
                            );
                        }
                        room.seen[k] = last.clone();
                        if last.iter().all(|&l| l == Some(round)) {
                            break;
                        }
                    }
                }
            }
        }
    }

    pub struct Atk {
        pub addr: SocketAddr,
        /// Sits in the attacker's room and sees every attacker join and leave.
        obs: Client,
        room: String,
        /// (room, a member's user id) of a full bystander room.
        victim: (String, String),
        /// A room nobody uses yet, owned by the reactor already at `max_rooms`.
        fresh_on_full_reactor: String,
        n: usize,
    }

    impl Atk {
        pub fn new(addr: SocketAddr, crowd: &Rooms) -> Atk {
            let room = rooms_on(1, "attackers-", 1).remove(0);
            let mut obs = Client::connect(addr, &format!("/?token={}", token(addr, "obs", &room)));
            assert_eq!(
                text(&mut obs),
                r#"{"messages":[],"connectedUsers":["obs"]}"#
            );
            let (r, u) = crowd.member(0, 2);
            Atk {
                addr,
                obs,
                victim: (r.to_string(), u.to_string()),
                fresh_on_full_reactor: rooms_on(1, "never-", 1).remove(0),
                room,
                n: 0,
            }
        }

        /// A new member of the attacker's room, seen by the observer.
        fn join(&mut self) -> Client {
            self.n += 1;
            let user = format!("mallory{}", self.n);
            let t = token(self.addr, &user, &self.room);
            let mut c = Client::connect(self.addr, &format!("/?token={t}"));
            let first = snapshot(&text(&mut c));
            assert!(
                users_of(&first).contains(&user),
                "a newcomer's first snapshot lists it"
            );
            self.until_obs(|v| users_of(v) == ["obs", user.as_str()]);
            c
        }

        /// Reads the observer's snapshots until one satisfies `want`.
        fn until_obs(&mut self, want: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
            let start = Instant::now();
            loop {
                let v = snapshot(&text(&mut self.obs));
                if want(&v) {
                    return v;
                }
                assert!(
                    start.elapsed() < DEADLINE,
                    "observer never saw the change: {v}"
                );
            }
        }

        /// The observer sees the attacker gone.
        fn left(&mut self) {
            self.until_obs(|v| users_of(v) == ["obs"]);
        }

        fn last_msg(v: &serde_json::Value) -> String {
            v["messages"]
                .as_array()
                .and_then(|m| m.last())
                .map_or(String::new(), |m| {
                    m["msg"].as_str().unwrap_or_default().to_string()
                })
        }
    }

    fn assert_401(addr: SocketAddr, what: &str, target: &str, reason: &str) {
        let r = upgrade(addr, target);
        assert_http(
            what,
            &r,
            401,
            Some("content-type: text/plain; charset=utf-8"),
            reason,
        );
        assert!(
            head(&r).contains("\r\nwww-authenticate: bearer\r\n"),
            "{what}: {r}"
        );
    }

    /// The SES-11 matrix (`tests/common/tokens.rs`) and more, each refused with
    /// `invalid token`.
    fn bad_tokens(addr: SocketAddr) -> Vec<(&'static str, String)> {
        let payload = format!(r#"{{"userId":"mallory","roomId":"r1","host":"{addr}"}}"#);
        let mut all = tokens::bad_tokens(addr, KEY.as_bytes());
        all.extend([
            (
                "SES-12 HS384 not allowed by default",
                jwt::sign(Alg::HS384, r#"{"alg":"HS384"}"#, &payload, KEY.as_bytes()),
            ),
            (
                "crit present",
                jwt::sign(
                    Alg::HS256,
                    r#"{"alg":"HS256","crit":["exp"]}"#,
                    &payload,
                    KEY.as_bytes(),
                ),
            ),
            (
                "SES-13 exp not a number",
                sign(&format!(
                    r#"{{"userId":"m","roomId":"r","host":"{addr}","exp":"x"}}"#
                )),
            ),
            (
                "nbf not a number",
                sign(&format!(
                    r#"{{"userId":"m","roomId":"r","host":"{addr}","nbf":"x"}}"#
                )),
            ),
            (
                "SES-14 no userId",
                sign(&format!(r#"{{"roomId":"r","host":"{addr}"}}"#)),
            ),
            (
                "SES-14 userId 5",
                sign(&format!(r#"{{"userId":5,"roomId":"r","host":"{addr}"}}"#)),
            ),
            (
                "SES-14 roomId empty",
                sign(&format!(r#"{{"userId":"m","roomId":"","host":"{addr}"}}"#)),
            ),
        ]);
        all
    }

    fn case<'a>(what: &'static str, f: impl FnOnce(&mut Atk) + 'a) -> Case<'a, Atk> {
        (what, Box::new(f))
    }

    pub fn cases<'a>() -> Vec<Case<'a, Atk>> {
        vec![
            case("SES-17 plain HTTP → 426 Upgrade Required", |a| {
                let t = token(a.addr, "m", &a.room);
                for target in ["/".to_string(), format!("/?token={t}")] {
                    let r = get(a.addr, &target);
                    assert_http(
                        &target,
                        &r,
                        426,
                        Some("content-type: text/plain"),
                        "Upgrade Required",
                    );
                }
            }),
            case("SES-10 no token → 401 missing token", |a| {
                let t = token(a.addr, "m", &a.room);
                for target in [
                    "/".to_string(),
                    format!("/?xtoken={t}"),
                    "/?token=".into(),
                    "/x?a=1".into(),
                ] {
                    assert_401(a.addr, &target, &target, "missing token");
                }
            }),
            case(
                "SES-11/12/13/14 the JWT matrix → 401 invalid token",
                |a| {
                    for (what, t) in bad_tokens(a.addr) {
                        assert_401(a.addr, what, &format!("/?token={t}"), "invalid token");
                    }
                },
            ),
            case("SES-13 expired and not-yet-valid tokens", |a| {
                let h = a.addr;
                let exp = sign(&format!(
                    r#"{{"userId":"m","roomId":"r","host":"{h}","exp":{}}}"#,
                    unix_now() - 1
                ));
                assert_401(h, "exp", &format!("/?token={exp}"), "token expired");
                let nbf = sign(&format!(
                    r#"{{"userId":"m","roomId":"r","host":"{h}","nbf":{}}}"#,
                    unix_now() + 60
                ));
                assert_401(h, "nbf", &format!("/?token={nbf}"), "token not yet valid");
            }),
            case(
                "SES-15 host claim wrong or missing → 401 host mismatch",
                |a| {
                    let other = sign(r#"{"userId":"m","roomId":"r","host":"localhost:1"}"#);
                    assert_401(
                        a.addr,
                        "other host",
                        &format!("/?token={other}"),
                        "host mismatch",
                    );
                    let none = sign(r#"{"userId":"m","roomId":"r"}"#);
                    assert_401(
                        a.addr,
                        "no host",
                        &format!("/?token={none}"),
                        "host mismatch",
                    );
                },
            ),
            case(
                "SES-07/08 a duplicate user in a full bystander room → 1008 Room is full",
                |a| {
                    // Full is checked before duplicate (faithful).
                    let (room, user) = a.victim.clone();
                    let t = token(a.addr, &user, &room);
                    let mut dup = Client::connect(a.addr, &format!("/?token={t}"));
                    assert_close("SES-08", dup.expect_close(), 1008, Some("Room is full"));
                },
            ),
            case(
                "SES-07 a duplicate user → 1008 Duplicate user, no snapshot to anyone",
                |a| {
                    let mut m = a.join();
                    let t = token(a.addr, &format!("mallory{}", a.n), &a.room);
                    let mut dup = Client::connect(a.addr, &format!("/?token={t}"));
                    assert_close("SES-07", dup.expect_close(), 1008, Some("Duplicate user"));
                    // The first connection keeps working and stays listed; the observer's next
                    // snapshot is the one for this message.
                    m.send_text("after duplicate");
                    let raw = text(&mut a.obs);
                    let v = snapshot(&raw);
                    assert_eq!(Atk::last_msg(&v), "after duplicate", "{v}");
                    assert_eq!(users_of(&v), ["obs".to_string(), format!("mallory{}", a.n)]);
                    assert_eq!(
                        text(&mut m),
                        raw,
                        "one snapshot, the same bytes to every member"
                    );
                    m.close();
                    a.left();
                },
            ),
            case(
                "SES-08 a newcomer to a full bystander room → 1008 Room is full",
                |a| {
                    let room = a.victim.0.clone();
                    let t = token(a.addr, "carol", &room);
                    let mut c = Client::connect(a.addr, &format!("/?token={t}"));
                    assert_close("SES-08", c.expect_close(), 1008, Some("Room is full"));
                },
            ),
            case(
                "max_rooms: a new room on a full reactor → 503 before the upgrade",
                |a| {
                    let t = token(a.addr, "m", &a.fresh_on_full_reactor);
                    let r = upgrade(a.addr, &format!("/?token={t}"));
                    assert!(r.starts_with("HTTP/1.1 503 "), "max_rooms: {r}");
                    // An existing room still takes members.
                    let m = a.join();
                    m.close();
                    a.left();
                },
            ),
            case(
                "SES-21 65537 bytes → 1009 Message too big, the room unaffected",
                |a| {
                    let mut m = a.join();
                    assert_close(
                        "SES-21",
                        send_oversize(&mut m, 65537),
                        1009,
                        Some("Message too big"),
                    );
                    a.left();
                },
            ),
            case("invalid UTF-8 → 1007", |a| {
                let mut m = a.join();
                send_raw(&mut m, &masked_frame(1, &[b'o', b'k', 0xc3]));
                assert_close("UTF-8", m.expect_close(), 1007, None);
                a.left();
            }),
            case(
                "SES-05 over max_message_units dropped silently; 1000 units and \"\" kept",
                |a| {
                    let mut m = a.join();
                    m.send_text(&"x".repeat(1001));
                    m.send_text(&"😀".repeat(500));
                    // No snapshot for the dropped message: the next one is for the accepted one.
                    let v = snapshot(&text(&mut a.obs));
                    assert_eq!(Atk::last_msg(&v), "😀".repeat(500), "{v}");
                    let count = v["messages"].as_array().unwrap().len();
                    assert!(
                        !v.to_string().contains(&"x".repeat(1001)),
                        "1001 units were dropped"
                    );
                    m.send_text("");
                    let v = snapshot(&text(&mut a.obs));
                    assert_eq!(Atk::last_msg(&v), "");
                    assert_eq!(v["messages"].as_array().unwrap().len(), count + 1);
                    m.close();
                    a.left();
                },
            ),
            case("SES-04 binary 68 69 ff → message hi\u{FFFD}", |a| {
                let mut m = a.join();
                m.send_binary(&[0x68, 0x69, 0xff]);
                a.until_obs(|v| Atk::last_msg(v) == "hi\u{FFFD}");
                m.close();
                a.left();
            }),
            case("TCP loss → the member leaves", |a| {
                let m = a.join();
                drop_tcp(m);
                a.left();
            }),
        ]
    }
}

#[test]
fn session_bad_input_with_a_crowd() {
    use switchboard::config::Secret;
    let s = server_with(&[AppKind::Session], |c| {
        c.session_settings.jwt_secret = Some(Secret::from(session_app::KEY.to_string()));
        c.session_settings.max_users_per_room = session_app::ROOM_SIZE;
        c.session_settings.max_rooms = session_app::MAX_ROOMS;
    });
    let addr = s.addr(AppKind::Session).unwrap();
    let mut crowd = session_app::Rooms::join(addr);
    let mut atk = session_app::Atk::new(addr, &crowd);
    replay(&mut crowd, &mut atk, session_app::cases());
    drop((crowd, atk));
    s.stop(DEADLINE).unwrap();
}

// ---------------------------------------------------------------------------------------
// signal (signal.md): SIG-01, 02, 11, 12, 13, 14, 17, 18, 19, 20, 21, 22, 25, 26, 27, the
// path rules (400/404), invalid UTF-8 and TCP loss on both endpoints.

mod signal_app {
    use super::*;

    pub const HOLD_BUFFER: usize = 64 * 1024;
    pub const MAX_PIPE: usize = 200_000;
    pub const HOLD_TIMEOUT_SECS: u64 = 4;
    const GROUPS: usize = 3;
    const GROUP_SIZE: usize = 4;

    /// The exact bytes of an Introduction.
    pub fn intro(id: &str, keys: &[&str]) -> String {
        format!(
            r#"{{"type":"Introduction","id":{},"keys":{}}}"#,
            serde_json::to_string(id).unwrap(),
            serde_json::to_string(keys).unwrap()
        )
    }

    fn join_msg(keys: &[&str]) -> String {
        serde_json::json!({"type": "Join", "join": keys}).to_string()
    }

    /// 10 piped pairs relaying text and binary both ways, and 3 groups of 4 introduction
    /// peers sharing one key each: every round one peer per group re-sends its Join, gets
    /// an Introduction for each other member and each of them gets one for it.
    pub struct Crowd {
        pipes: Vec<(Client, Client)>,
        groups: Vec<Vec<Client>>,
    }

    fn peer(g: usize, p: usize) -> String {
        format!("crowd-g{g}-p{p}")
    }

    fn key(g: usize) -> String {
        format!("crowd-key-{g}")
    }

    impl Crowd {
        pub fn join(addr: SocketAddr) -> Crowd {
            let pipes = (0..10)
                .map(|i| {
                    let l = Client::connect(addr, &format!("/connection/crowd-l{i}/crowd-r{i}/k"));
                    let r = Client::connect(addr, &format!("/connection/crowd-r{i}/crowd-l{i}/k"));
                    (l, r)
                })
                .collect();
            let mut groups = Vec::new();
            for g in 0..GROUPS {
                let mut members: Vec<Client> = Vec::new();
                for p in 0..GROUP_SIZE {
                    let mut c = Client::connect(addr, &format!("/introduction/{}", peer(g, p)));
                    c.send_text(&join_msg(&[&key(g)]));
                    let mut got: Vec<String> = (0..p).map(|_| text(&mut c)).collect();
                    got.sort();
                    let mut want: Vec<String> =
                        (0..p).map(|q| intro(&peer(g, q), &[&key(g)])).collect();
                    want.sort();
                    assert_eq!(got, want, "introductions on joining group {g}");
                    for m in &mut members {
                        assert_eq!(text(m), intro(&peer(g, p), &[&key(g)]));
                    }
                    members.push(c);
                }
                groups.push(members);
            }
            Crowd { pipes, groups }
        }
    }

    impl super::Crowd for Crowd {
        fn send(&mut self, round: usize) {
            for (i, (l, r)) in self.pipes.iter_mut().enumerate() {
                l.send_text(&format!("round {round} from l{i}"));
                l.send_binary(&[round as u8, i as u8, 0xff]);
                r.send_text(&format!("round {round} from r{i}"));
            }
            for (g, members) in self.groups.iter_mut().enumerate() {
                members[round % GROUP_SIZE].send_text(&join_msg(&[&key(g)]));
            }
        }

        fn check(&mut self, round: usize) {
            for (i, (l, r)) in self.pipes.iter_mut().enumerate() {
                assert_eq!(text(r), format!("round {round} from l{i}"), "pipe {i}");
                assert_eq!(
                    r.recv(),
                    Message::binary(vec![round as u8, i as u8, 0xff]),
                    "pipe {i}"
                );
                assert_eq!(text(l), format!("round {round} from r{i}"), "pipe {i}");
            }
            for (g, members) in self.groups.iter_mut().enumerate() {
                let s = round % GROUP_SIZE;
                let mut got: Vec<String> = (1..GROUP_SIZE).map(|_| text(&mut members[s])).collect();
                got.sort();
                let mut want: Vec<String> = (0..GROUP_SIZE)
                    .filter(|&q| q != s)
                    .map(|q| intro(&peer(g, q), &[&key(g)]))
                    .collect();
                want.sort();
                assert_eq!(
                    got, want,
                    "group {g}, round {round}: the sender's introductions"
                );
                for (q, m) in members.iter_mut().enumerate() {
                    if q != s {
                        assert_eq!(
                            text(m),
                            intro(&peer(g, s), &[&key(g)]),
                            "group {g} peer {q}"
                        );
                    }
                }
            }
        }
    }

    pub struct Atk {
        pub addr: SocketAddr,
        /// Held since the first case; closed `Hold timeout` by the last.
        waiting_forever: Option<(Client, Instant)>,
        n: usize,
    }

    impl Atk {
        pub fn new(addr: SocketAddr) -> Atk {
            Atk {
                addr,
                waiting_forever: None,
                n: 0,
            }
        }

        fn fresh(&mut self, what: &str) -> String {
            self.n += 1;
            format!("atk-{what}-{}", self.n)
        }

        fn intro_peer(&mut self, id: &str) -> Client {
            Client::connect(self.addr, &format!("/introduction/{id}"))
        }

        /// Proves `c` (an introduction peer) is open and sent nothing since its last frame:
        /// a probe joins a fresh key, then `c` joins it; `c`'s next frame must be the
        /// probe's Introduction.
        fn probe(&mut self, c: &mut Client, c_id: &str) {
            let key = self.fresh("probe-key");
            let pid = self.fresh("probe");
            let mut p = self.intro_peer(&pid);
            p.send_text(&join_msg(&[&key]));
            c.send_text(&join_msg(&[&key]));
            let got = text(c);
            assert!(
                got.starts_with(&format!(r#"{{"type":"Introduction","id":"{pid}","keys":["#)),
                "expected the probe's Introduction first, got {got}"
            );
            let got = text(&mut p);
            assert!(got.contains(&format!(r#""id":"{c_id}""#)), "{got}");
            p.close();
        }

        /// Two piped connections.
        fn pipe(&mut self) -> (Client, Client) {
            let (l, r) = (self.fresh("l"), self.fresh("r"));
            let a = Client::connect(self.addr, &format!("/connection/{l}/{r}/k"));
            let b = Client::connect(self.addr, &format!("/connection/{r}/{l}/k"));
            (a, b)
        }
    }

    fn case<'a>(what: &'static str, f: impl FnOnce(&mut Atk) + 'a) -> Case<'a, Atk> {
        (what, Box::new(f))
    }

    pub fn cases<'a>() -> Vec<Case<'a, Atk>> {
        vec![
            case("SIG-22 a hold waits, to be timed out by the end", |a| {
                let id = a.fresh("forever");
                let since = Instant::now();
                let c = Client::connect(a.addr, &format!("/connection/{id}/nobody/k"));
                a.waiting_forever = Some((c, since));
            }),
            case(
                "SIG-01 plain HTTP other than GET / → 404 Not Found",
                |a| {
                    for path in ["/x", "/introduction/x", "/connection/a/b/k", "/favicon.ico"] {
                        let r = get(a.addr, path);
                        assert_http(path, &r, 404, Some("content-type: text/plain"), "Not Found");
                    }
                    let r = http(
                        a.addr,
                        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
                    );
                    assert_http(
                        "POST /",
                        &r,
                        404,
                        Some("content-type: text/plain"),
                        "Not Found",
                    );
                },
            ),
            case(
                "SIG-02 unknown WebSocket paths → 404 before the upgrade",
                |a| {
                    for path in [
                        "/connect/qrst7890",
                        "/connection/qrst7890",
                        "/connection/a/b",
                        "/connection/a/b/k/extra",
                        "/introduction",
                        "/introduction/a/b",
                        "/introduction//",
                        "/connection/a//k",
                        "/foo",
                        "/",
                    ] {
                        let r = upgrade(a.addr, path);
                        assert!(r.starts_with("HTTP/1.1 404 "), "{path}: {r}");
                        assert!(!r.contains(" 101 "), "{path}: {r}");
                    }
                },
            ),
            case(
                "SIG-02 undecodable or too long parameters → 400 before the upgrade",
                |a| {
                    let long = "i".repeat(257);
                    for path in [
                        "/introduction/%zz".to_string(),
                        "/introduction/%ff".into(),
                        "/introduction/%e2%82".into(),
                        "/introduction/abc%".into(),
                        format!("/introduction/{long}"),
                        format!("/connection/{long}/b/k"),
                        format!("/connection/a/b/{long}"),
                        "/connection/a/%zz/k".into(),
                    ] {
                        let r = upgrade(a.addr, &path);
                        assert!(r.starts_with("HTTP/1.1 400 "), "{path}: {r}");
                    }
                    // 256 bytes is the limit, not over it.
                    let ok = "i".repeat(256);
                    Client::connect(a.addr, &format!("/introduction/{ok}")).close();
                },
            ),
            case("SIG-11 non-JSON and non-object messages are ignored", |a| {
                let id = a.fresh("mallory");
                let mut m = a.intro_peer(&id);
                for junk in [
                    "this is not json",
                    "null",
                    "5",
                    "[]",
                    r#""x""#,
                    "",
                    "{",
                    r#"{"leave":null}"#,
                    r#"{"join":null,"leave":5}"#,
                    r#"{"join":{"k":1}}"#,
                ] {
                    m.send_text(junk);
                }
                // Binary frames are read as lossy UTF-8, never validated.
                m.send_binary(&[0xff, 0xfe, b'{']);
                a.probe(&mut m, &id);
            }),
            case("SIG-11 {\"join\":[1,null,\"k\"]} joins only k", |a| {
                let id = a.fresh("mallory");
                let key = a.fresh("k");
                let mut m = a.intro_peer(&id);
                m.send_text(&format!(r#"{{"join":[1,null,"{key}",{{}},["x"]]}}"#));
                let pid = a.fresh("p");
                let mut p = a.intro_peer(&pid);
                p.send_text(&join_msg(&[&key]));
                assert_eq!(text(&mut p), intro(&id, &[&key]));
                assert_eq!(text(&mut m), intro(&pid, &[&key]));
            }),
            case(
                "SIG-12 join as a string; leave as a string is one key, not a substring",
                |a| {
                    let id = a.fresh("mallory");
                    let mut m = a.intro_peer(&id);
                    let pid = a.fresh("p");
                    let mut p = a.intro_peer(&pid);
                    p.send_text(&join_msg(&["abc"]));
                    m.send_text(r#"{"join":"abc"}"#);
                    assert_eq!(text(&mut m), intro(&pid, &["abc"]));
                    assert_eq!(text(&mut p), intro(&id, &["abc"]));
                    m.send_text(r#"{"leave":"b"}"#);
                    assert_eq!(text(&mut m), intro(&pid, &["abc"]));
                    assert_eq!(text(&mut p), intro(&id, &["abc"]));
                },
            ),
            case("SIG-13 a binary Join is processed like text", |a| {
                let id = a.fresh("mallory");
                let key = a.fresh("k");
                let mut m = a.intro_peer(&id);
                let pid = a.fresh("p");
                let mut p = a.intro_peer(&pid);
                p.send_text(&join_msg(&[&key]));
                m.send_binary(join_msg(&[&key]).as_bytes());
                assert_eq!(text(&mut m), intro(&pid, &[&key]));
                assert_eq!(text(&mut p), intro(&id, &[&key]));
            }),
            case(
                "keys over max_key_bytes are skipped; 256 bytes count",
                |a| {
                    let id = a.fresh("mallory");
                    let mut m = a.intro_peer(&id);
                    let pid = a.fresh("p");
                    let mut p = a.intro_peer(&pid);
                    let (k256, k257) = ("k".repeat(256), "k".repeat(257));
                    p.send_text(&join_msg(&[&k256]));
                    m.send_text(&join_msg(&[&k257, &k256]));
                    assert_eq!(text(&mut m), intro(&pid, &[&k256]));
                    assert_eq!(text(&mut p), intro(&id, &[&k256]));
                },
            ),
            case(
                "SIG-27 1024 keys are fine; the 1025th → 1008 Too many keys",
                |a| {
                    let id = a.fresh("mallory");
                    let mut m = a.intro_peer(&id);
                    let keys: Vec<String> = (0..1024).map(|i| format!("many-{i}")).collect();
                    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
                    let pid = a.fresh("p");
                    let mut p = a.intro_peer(&pid);
                    p.send_text(&join_msg(&["many-7"]));
                    m.send_text(&join_msg(&refs));
                    assert_eq!(text(&mut m), intro(&pid, &["many-7"]));
                    assert_eq!(text(&mut p), intro(&id, &["many-7"]));
                    // Re-joining keys it has adds nothing; one new key makes 1025.
                    m.send_text(&join_msg(&refs[..10]));
                    assert_eq!(text(&mut m), intro(&pid, &["many-7"]));
                    m.send_text(&join_msg(&["many-1024"]));
                    assert_eq!(m.expect_close(), (1008, "Too many keys".into()));
                },
            ),
            case(
                "SIG-26 an introduction message of 65536 bytes is read; 65537 → 1009",
                |a| {
                    let id = a.fresh("mallory");
                    let mut m = a.intro_peer(&id);
                    let exact = format!(r#"{{"join":["{}"]}}"#, "x".repeat(65536 - 13));
                    assert_eq!(exact.len(), 65536);
                    m.send_text(&exact);
                    a.probe(&mut m, &id);
                    assert_close(
                        "SIG-26",
                        send_oversize(&mut m, 65537),
                        1009,
                        Some("Message too big"),
                    );
                },
            ),
            case("invalid UTF-8 on an introduction → 1007", |a| {
                let id = a.fresh("mallory");
                let mut m = a.intro_peer(&id);
                send_raw(&mut m, &masked_frame(1, b"{\"join\":[\"\xff\"]}"));
                assert_close("UTF-8", m.expect_close(), 1007, None);
            }),
            case(
                "SIG-14 a duplicate id → the older closed 1008 Replaced",
                |a| {
                    let id = a.fresh("dup");
                    let key = a.fresh("k");
                    let mut d1 = a.intro_peer(&id);
                    d1.send_text(&join_msg(&[&key]));
                    let mut d2 = a.intro_peer(&id);
                    assert_eq!(
                        d1.expect_close(),
                        (1008, "Replaced by a newer connection".into())
                    );
                    d2.send_text(&join_msg(&[&key]));
                    let eve = a.fresh("eve");
                    let mut e = a.intro_peer(&eve);
                    e.send_text(&join_msg(&[&key]));
                    assert_eq!(text(&mut e), intro(&id, &[&key]));
                    assert_eq!(text(&mut d2), intro(&eve, &[&key]));
                },
            ),
            case(
                "SIG-25 a Ping on a pipe is answered, never forwarded",
                |a| {
                    let (mut x, mut y) = a.pipe();
                    x.ws.send(Message::Ping("p".into())).unwrap();
                    expect_pong(&mut x, "SIG-25");
                    x.send_text("after");
                    y.expect_text("after");
                },
            ),
            case(
                "SIG-26 a pipe message over the limit → 1009, the partner closed",
                |a| {
                    let (mut x, mut y) = a.pipe();
                    let max = vec![9u8; MAX_PIPE];
                    x.send_binary(&max);
                    assert_eq!(y.recv(), Message::binary(max));
                    let _ = x.ws.send(Message::binary(vec![9u8; MAX_PIPE + 1]));
                    assert_eq!(x.expect_close(), (1009, "Message too big".into()));
                    assert_eq!(y.expect_close().0, 1005);
                },
            ),
            case(
                "invalid UTF-8 on a pipe → 1007, the partner closed",
                |a| {
                    let (mut x, mut y) = a.pipe();
                    send_raw(&mut x, &masked_frame(1, &[0xc0, 0x80]));
                    assert_close("pipe UTF-8", x.expect_close(), 1007, None);
                    assert_eq!(y.expect_close().0, 1005);
                },
            ),
            case(
                "SIG-17 send then close: the message, then a Close without status",
                |a| {
                    let (mut x, mut y) = a.pipe();
                    x.send_text("DUDE!!");
                    let _ = x.ws.close(None);
                    y.expect_text("DUDE!!");
                    assert_eq!(y.expect_close().0, 1005);
                },
            ),
            case(
                "TCP loss of a piped side → the partner gets a Close without status",
                |a| {
                    let (x, mut y) = a.pipe();
                    drop_tcp(x);
                    assert_eq!(y.expect_close().0, 1005);
                },
            ),
            case(
                "SIG-21 a hold over hold_buffer_bytes → 1009 Hold buffer full",
                |a| {
                    let (l, r) = (a.fresh("l"), a.fresh("r"));
                    let mut held = Client::connect(a.addr, &format!("/connection/{l}/{r}/k"));
                    held.send_binary(&vec![1u8; HOLD_BUFFER]);
                    held.send_binary(&[1]);
                    assert_eq!(held.expect_close(), (1009, "Hold buffer full".into()));
                    // B arrives later: held itself, it receives nothing of the discarded buffer.
                    let mut b = Client::connect(a.addr, &format!("/connection/{r}/{l}/k"));
                    let mut again = Client::connect(a.addr, &format!("/connection/{l}/{r}/k"));
                    again.send_text("fresh");
                    b.expect_text("fresh");
                },
            ),
            case(
                "SIG-18 a hold that closes leaves nothing for the latecomer",
                |a| {
                    let (l, r) = (a.fresh("l"), a.fresh("r"));
                    let mut held = Client::connect(a.addr, &format!("/connection/{l}/{r}/k"));
                    held.send_text("x");
                    held.close();
                    let mut b = Client::connect(a.addr, &format!("/connection/{r}/{l}/k"));
                    let mut again = Client::connect(a.addr, &format!("/connection/{l}/{r}/k"));
                    again.send_text("fresh");
                    b.expect_text("fresh");
                },
            ),
            case(
                "SIG-19 a second hold on one path replaces the first (1008)",
                |a| {
                    let (l, r) = (a.fresh("l"), a.fresh("r"));
                    let mut first = Client::connect(a.addr, &format!("/connection/{l}/{r}/k"));
                    first.send_text("old");
                    let mut second = Client::connect(a.addr, &format!("/connection/{l}/{r}/k"));
                    assert_eq!(
                        first.expect_close(),
                        (1008, "Replaced by a newer connection".into())
                    );
                    second.send_text("new");
                    let mut b = Client::connect(a.addr, &format!("/connection/{r}/{l}/k"));
                    b.expect_text("new");
                    b.send_text("back");
                    second.expect_text("back");
                },
            ),
            case(
                "SIG-20 ids with ':' are a tuple, never a joined string",
                |a| {
                    let k = a.fresh("colon");
                    let mut x = Client::connect(a.addr, &format!("/connection/a/b%3Ac/{k}"));
                    let mut y = Client::connect(a.addr, &format!("/connection/c/a:b/{k}"));
                    let mut z = Client::connect(a.addr, &format!("/connection/a:b/c/{k}"));
                    z.send_text("to-y");
                    y.expect_text("to-y");
                    // x is still held and got nothing: its partner arrives now.
                    let mut w = Client::connect(a.addr, &format!("/connection/b:c/a/{k}"));
                    w.send_text("to-x");
                    x.expect_text("to-x");
                },
            ),
            case(
                "SIG-22 the hold held since the first case → 1000 Hold timeout",
                |a| {
                    let (mut c, since) = a.waiting_forever.take().expect("held in the first case");
                    assert_eq!(c.expect_close(), (1000, "Hold timeout".into()));
                    // Not early (the server counts whole milliseconds from its own clock).
                    let waited = since.elapsed();
                    assert!(
                        waited + Duration::from_millis(50)
                            >= Duration::from_secs(HOLD_TIMEOUT_SECS),
                        "timed out after {waited:?}"
                    );
                },
            ),
        ]
    }
}

#[test]
fn signal_bad_input_with_a_crowd() {
    let s = server_with(&[AppKind::Signal], |c| {
        c.signal_limits.hold_buffer_bytes = signal_app::HOLD_BUFFER;
        c.signal_limits.max_pipe_message_bytes = signal_app::MAX_PIPE;
        c.signal_limits.hold_timeout_secs = signal_app::HOLD_TIMEOUT_SECS;
    });
    let addr = s.addr(AppKind::Signal).unwrap();
    let mut crowd = signal_app::Crowd::join(addr);
    let mut atk = signal_app::Atk::new(addr);
    replay(&mut crowd, &mut atk, signal_app::cases());
    drop((crowd, atk));
    s.stop(DEADLINE).unwrap();
}

// ---------------------------------------------------------------------------------------
// rooms (rooms.md): RMS-04, 14, 15, 16, 17, 18, 19, 22, 23, 27, 28, 29, 30, 33, every
// `Limit exceeded` key, Counter out of range, invalid UTF-8.

mod rooms_app {
    use super::*;

    pub const KEY: &str = "app-bad-input-admin-key";
    /// `max_connections_per_room`: a bystander room plus one attacker is full.
    pub const ROOM_CAP: usize = MEMBERS + 1;
    const ROOMS: usize = 4;
    const MEMBERS: usize = 10;

    fn hex(d: &[u8]) -> String {
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn sign(room: &str, ts: &str) -> String {
        use sha2::Digest;
        hex(&sha2::Sha256::digest(format!("{room}{ts}{KEY}").as_bytes()))
    }

    pub fn now_ms() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    }

    /// Connects to `path` and reads the config and profile frames; the profile's data.
    pub fn hello(addr: SocketAddr, path: &str) -> (Client, serde_json::Value) {
        let mut c = Client::connect(addr, path);
        let config = text(&mut c);
        assert!(
            config.starts_with(r#"{"type":"config","data":"#),
            "{config}"
        );
        let p: serde_json::Value = serde_json::from_str(&text(&mut c)).expect("profile JSON");
        assert_eq!(p["type"], "profile");
        (c, p["data"].clone())
    }

    struct Member {
        c: Client,
        suffix: u64,
    }

    /// 4 rooms of 10 members, each subscribed to `chat` and `counter:c`; every round each
    /// member sends two chats and the first member adds 1 to counter `c`. Each member gets
    /// the 20 chats and the counter value, per sender in order.
    pub struct Crowd(Vec<(String, Vec<Member>)>);

    fn chat(round: usize, m: usize, k: usize) -> String {
        format!("round {round} m{m} #{k}")
    }

    fn chat_frame(msg: &str, suffix: u64) -> String {
        format!(
            r#"{{"type":"chat","data":{{"message":"{msg}","user":{{"suffix":{suffix},"properties":{{}}}}}}}}"#
        )
    }

    fn counter_frame(value: usize) -> String {
        format!(r#"{{"type":"counter","data":{{"id":"c","value":{value}}}}}"#)
    }

    impl Crowd {
        pub fn join(addr: SocketAddr) -> Crowd {
            let rooms = (0..ROOMS)
                .map(|r| {
                    let name = format!("bystanders-{r}");
                    let members = (0..MEMBERS)
                        .map(|_| {
                            let (mut c, p) = hello(addr, &format!("/websocket?room={name}"));
                            c.send_text(r#"{"type":"subscribe","data":"chat"}"#);
                            c.send_text(r#"{"type":"subscribe","data":"counter:c"}"#);
                            c.send_text(r#"{"type":"profile"}"#);
                            assert!(text(&mut c).starts_with(r#"{"type":"profile""#));
                            Member {
                                c,
                                suffix: p["suffix"].as_u64().unwrap(),
                            }
                        })
                        .collect();
                    (name, members)
                })
                .collect();
            Crowd(rooms)
        }

        pub fn room(&self, r: usize) -> &str {
            &self.0[r].0
        }
    }

    impl super::Crowd for Crowd {
        fn send(&mut self, round: usize) {
            for (_, members) in &mut self.0 {
                for (m, member) in members.iter_mut().enumerate() {
                    for k in 0..2 {
                        member.c.send_text(&format!(
                            r#"{{"type":"chat","data":"{}"}}"#,
                            chat(round, m, k)
                        ));
                    }
                    if m == 0 {
                        member
                            .c
                            .send_text(r#"{"type":"counter","data":{"id":"c","value":1}}"#);
                    }
                }
            }
        }

        fn check(&mut self, round: usize) {
            for (name, members) in &mut self.0 {
                // Per sender, the frames it causes, in order.
                let streams: Vec<Vec<String>> = (0..MEMBERS)
                    .map(|m| {
                        let mut s: Vec<String> = (0..2)
                            .map(|k| chat_frame(&chat(round, m, k), members[m].suffix))
                            .collect();
                        if m == 0 {
                            s.push(counter_frame(round + 1));
                        }
                        s
                    })
                    .collect();
                for (me, member) in members.iter_mut().enumerate() {
                    let mut next = [0usize; MEMBERS];
                    for _ in 0..2 * MEMBERS + 1 {
                        let got = text(&mut member.c);
                        let from = (0..MEMBERS)
                            .find(|&m| streams[m].get(next[m]) == Some(&got))
                            .unwrap_or_else(|| {
                                panic!("{name} member {me}, round {round}: unexpected or out of order: {got}")
                            });
                        next[from] += 1;
                    }
                }
            }
        }
    }

    pub struct Atk {
        pub addr: SocketAddr,
        /// A bystander room, and the attacker sitting in it.
        room: String,
        inside: Option<Client>,
        n: usize,
    }

    impl Atk {
        pub fn new(addr: SocketAddr, crowd: &Crowd) -> Atk {
            Atk {
                addr,
                room: crowd.room(1).to_string(),
                inside: None,
                n: 0,
            }
        }

        /// A fresh connection in the attacker's own room, with its own session.
        fn conn(&mut self) -> Client {
            self.n += 1;
            hello(
                self.addr,
                &format!("/websocket?room=attackers&session=mallory-{}", self.n),
            )
            .0
        }

        /// A fresh connection with admin rights.
        fn admin(&mut self) -> Client {
            let mut c = self.conn();
            let ts = now_ms().to_string();
            c.send_text(&format!(
                r#"{{"type":"authenticate","data":{{"ts":"{ts}","key":"{}"}}}}"#,
                sign("attackers", &ts)
            ));
            let p = text(&mut c);
            assert!(p.contains(r#""role":"admin""#), "{p}");
            c
        }
    }

    /// `c` sent nothing since its last frame: the answer to a `profile` request is next.
    fn probe(c: &mut Client, what: &str) -> serde_json::Value {
        c.send_text(r#"{"type":"profile"}"#);
        let got = text(c);
        assert!(
            got.starts_with(r#"{"type":"profile","data":"#),
            "{what}: expected no reply, got {got}"
        );
        serde_json::from_str::<serde_json::Value>(&got).unwrap()["data"].clone()
    }

    fn expect_error(c: &mut Client, msg: &str, what: &str) {
        assert_eq!(
            text(c),
            format!(r#"{{"data":"{msg}","type":"error"}}"#),
            "{what}"
        );
    }

    fn details(addr: SocketAddr, room: &str) -> serde_json::Value {
        let r = get(addr, &format!("/details?room={room}"));
        assert!(r.starts_with("HTTP/1.1 200 "), "{r}");
        serde_json::from_str(body(&r)).unwrap()
    }

    fn case<'a>(what: &'static str, f: impl FnOnce(&mut Atk) + 'a) -> Case<'a, Atk> {
        (what, Box::new(f))
    }

    pub fn cases<'a>() -> Vec<Case<'a, Atk>> {
        vec![
            case(
                "RMS-27 /websocket without an upgrade → 400; unknown routes → 404",
                |a| {
                    let r = get(a.addr, "/websocket?room=x");
                    assert_http(
                        "/websocket",
                        &r,
                        400,
                        Some("content-type: text/plain;charset=UTF-8"),
                        "expected websocket",
                    );
                    assert!(!head(&r).contains("set-cookie"), "{r}");
                    for req in [
                        "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n",
                        "POST /details/x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
                        "GET /websocketx HTTP/1.1\r\nHost: x\r\n\r\n",
                    ] {
                        let r = http(a.addr, req);
                        assert_http(
                            req,
                            &r,
                            404,
                            Some("content-type: text/plain;charset=UTF-8"),
                            "Oh, the sadness! This route does not exist.",
                        );
                    }
                },
            ),
            case(
                "RMS-27 a room name over 256 bytes → 400 on every route that takes one",
                |a| {
                    let long = "n".repeat(257);
                    for path in ["/details", "/users"] {
                        let r = get(a.addr, &format!("{path}?room={long}"));
                        assert_http(path, &r, 400, None, "room name too long");
                    }
                    let r = upgrade(a.addr, &format!("/websocket?room={long}"));
                    assert_http("/websocket", &r, 400, None, "room name too long");
                    // Counted after decoding: 255 bytes plus one encoded byte is over, too.
                    let r = get(a.addr, &format!("/details?room={}%41%41", "n".repeat(255)));
                    assert_http("encoded", &r, 400, None, "room name too long");
                    assert_eq!(details(a.addr, &"n".repeat(256))["name"], "n".repeat(256));
                },
            ),
            case("RMS-33 a full room → 503 before the upgrade", |a| {
                let (inside, _) = hello(a.addr, &format!("/websocket?room={}", a.room));
                a.inside = Some(inside);
                let r = upgrade(a.addr, &format!("/websocket?room={}", a.room));
                assert!(r.starts_with("HTTP/1.1 503 "), "{r}");
                assert!(!r.contains(" 101 "));
            }),
            case(
                "RMS-28 junk in a bystander room is ignored without reply",
                |a| {
                    let c = a.inside.as_mut().expect("inside since RMS-33");
                    for junk in [
                        "not json",
                        "",
                        "null",
                        "5",
                        "[]",
                        r#""x""#,
                        r#"{"type":5}"#,
                        r#"{"type":null}"#,
                        r#"{"data":1}"#,
                        r#"{"type":"poll","data":null}"#,
                        r#"{"type":"poll","data":{"id":{},"answer":"a"}}"#,
                        r#"{"type":"poll","data":{"id":"p","answer":[1]}}"#,
                        r#"{"type":"poll","data":{"answer":"a"}}"#,
                        r#"{"type":"ephemeralPoll","data":"x"}"#,
                        r#"{"type":"subscribe","data":5}"#,
                        r#"{"type":"subscribe","data":":x"}"#,
                        r#"{"type":"unsubscribe","data":null}"#,
                        r#"{"type":"authenticate","data":null}"#,
                        r#"{"type":"authenticate","data":{"ts":"1","key":5}}"#,
                        r#"{"type":"counter","data":"x"}"#,
                        r#"{"type":"counter","data":{"id":[],"value":1}}"#,
                        r#"{"type":"ping","data":1}"#,
                        r#"{"type":"no such type","data":{"a":1}}"#,
                    ] {
                        c.send_text(junk);
                    }
                    c.send_binary(&[0xff, 0xfe]);
                    c.send_binary(br#"{"type":"chat","data":"binary frames are ignored"}"#);
                    probe(c, "RMS-28");
                },
            ),
            case(
                "RMS-16/17/18/19 admin messages from a non-admin do nothing",
                |a| {
                    let c = a.inside.as_mut().expect("inside since RMS-33");
                    for msg in [
                        r#"{"type":"config","data":"hacked"}"#,
                        r#"{"type":"broadcast","data":{"type":"x","data":"to all"}}"#,
                        r#"{"type":"broadcast","data":{"to":"chat","type":"chat","data":"spoof"}}"#,
                        r#"{"type":"relay","data":"chat"}"#,
                        r#"{"type":"deleteRelay"}"#,
                    ] {
                        c.send_text(msg);
                    }
                    probe(c, "non-admin");
                    let room = a.room.clone();
                    assert_eq!(details(a.addr, &room)["config"], "", "config unchanged");
                },
            ),
            case(
                "RMS-15 authenticate: stale or non-numeric ts → Wrong timestamp; wrong key → nothing",
                |a| {
                    let c = a.inside.as_mut().expect("inside since RMS-33");
                    let room = a.room.clone();
                    let old = (now_ms() - 600_000).to_string();
                    c.send_text(&format!(
                        r#"{{"type":"authenticate","data":{{"ts":"{old}","key":"{}"}}}}"#,
                        sign(&room, &old)
                    ));
                    let got = text(c);
                    let rest = got
                        .strip_prefix(&format!(
                            r#"{{"data":"Wrong timestamp. Received {old} but now is "#
                        ))
                        .and_then(|r| r.strip_suffix(r#"","type":"error"}"#))
                        .unwrap_or_else(|| panic!("RMS-15: {got}"));
                    let (now, diff) = rest.split_once(" Diff is ").expect("diff");
                    let (now, diff): (u64, u64) = (now.parse().unwrap(), diff.parse().unwrap());
                    assert_eq!(diff, now - old.parse::<u64>().unwrap(), "{got}");
                    c.send_text(r#"{"type":"authenticate","data":{"ts":"abc","key":"00"}}"#);
                    let got = text(c);
                    assert!(
                        got.starts_with(r#"{"data":"Wrong timestamp. Received abc but now is "#)
                            && got.ends_with(r#" Diff is NaN","type":"error"}"#),
                        "{got}"
                    );
                    let ts = now_ms().to_string();
                    c.send_text(&format!(
                        r#"{{"type":"authenticate","data":{{"ts":"{ts}","key":"{}"}}}}"#,
                        sign("another room", &ts)
                    ));
                    assert_eq!(probe(c, "wrong key")["role"], "user");
                },
            ),
            case(
                "RMS-04 login with non-object data → error, properties unchanged",
                |a| {
                    let mut c = a.conn();
                    c.send_text(r#"{"type":"login","data":{"name":"M"}}"#);
                    text(&mut c);
                    for data in [r#""ab""#, "5", "[1]", "true"] {
                        c.send_text(&format!(r#"{{"type":"login","data":{data}}}"#));
                        expect_error(&mut c, "login data must be an object", data);
                    }
                    assert_eq!(
                        probe(&mut c, "login")["properties"],
                        serde_json::json!({"name":"M"})
                    );
                },
            ),
            case("max_properties_bytes → Limit exceeded", |a| {
                let mut c = a.conn();
                c.send_text(&format!(
                    r#"{{"type":"login","data":{{"n":"{}"}}}}"#,
                    "p".repeat(80)
                ));
                expect_error(&mut c, "Limit exceeded: max_properties_bytes", "properties");
                assert_eq!(
                    probe(&mut c, "properties")["properties"],
                    serde_json::json!({})
                );
            }),
            case(
                "RMS-29 max_polls, max_answers_per_poll, max_id_bytes for polls",
                |a| {
                    let mut c = a.conn();
                    let mut d = a.conn();
                    let mut e = a.conn();
                    let vote = |c: &mut Client, kind: &str, id: &str, answer: &str| {
                        c.send_text(&format!(
                            r#"{{"type":"{kind}","data":{{"id":"{id}","answer":"{answer}"}}}}"#
                        ))
                    };
                    for kind in ["poll", "ephemeralPoll"] {
                        vote(&mut c, kind, "p1", "a");
                        vote(&mut c, kind, "p2", "a");
                        probe(&mut c, "two polls");
                        vote(&mut c, kind, "p3", "a");
                        let key = if kind == "poll" {
                            "max_polls"
                        } else {
                            "max_ephemeral_polls"
                        };
                        expect_error(&mut c, &format!("Limit exceeded: {key}"), kind);
                        vote(&mut d, kind, "p1", "b");
                        probe(&mut d, "second answer");
                        vote(&mut e, kind, "p1", "c");
                        expect_error(&mut e, "Limit exceeded: max_answers_per_poll", kind);
                        // The voter's own answer vanishing makes room (d moves b → c).
                        vote(&mut d, kind, "p1", "c");
                        probe(&mut d, "moved vote");
                        vote(&mut c, kind, &"i".repeat(257), "a");
                        expect_error(&mut c, "Limit exceeded: max_id_bytes", "poll id");
                        vote(&mut c, kind, "p1", &"i".repeat(257));
                        expect_error(&mut c, "Limit exceeded: max_id_bytes", "answer");
                    }
                    e.send_text(r#"{"type":"subscribe","data":"poll:p1"}"#);
                    assert_eq!(
                        text(&mut e),
                        r#"{"type":"poll","data":{"id":"p1","stats":{"a":1,"c":1}}}"#
                    );
                },
            ),
            case(
                "RMS-13/14 counters: ignored values, max_counters, max_id_bytes, out of range",
                |a| {
                    let mut c = a.conn();
                    c.send_text(r#"{"type":"subscribe","data":"counter"}"#);
                    c.send_text(r#"{"type":"counter","data":{"id":"k1","value":1}}"#);
                    assert_eq!(
                        text(&mut c),
                        r#"{"type":"counter","data":{"id":"k1","value":1}}"#
                    );
                    for value in [
                        r#""abc""#,
                        r#""0x10""#,
                        r#""Infinity""#,
                        "{}",
                        "[]",
                        r#""1e""#,
                    ] {
                        c.send_text(&format!(
                            r#"{{"type":"counter","data":{{"id":"k1","value":{value}}}}}"#
                        ));
                    }
                    c.send_text(r#"{"type":"counter","data":{"id":"k1"}}"#);
                    c.send_text(r#"{"type":"counter","data":{"id":{"x":1},"value":1}}"#);
                    probe(&mut c, "ignored counter values");
                    c.send_text(r#"{"type":"counter","data":{"id":"k1","value":1e40}}"#);
                    expect_error(&mut c, "Counter out of range", "1e40");
                    c.send_text(r#"{"type":"counter","data":{"id":"k1","value":"9999999999999999999999999999999999"}}"#);
                    expect_error(&mut c, "Counter out of range", "sum over 34 digits");
                    c.send_text(r#"{"type":"counter"}"#);
                    assert_eq!(
                        text(&mut c),
                        r#"{"type":"counter","data":{"id":"default","value":1}}"#
                    );
                    c.send_text(r#"{"type":"counter","data":{"id":"k3","value":1}}"#);
                    expect_error(&mut c, "Limit exceeded: max_counters", "max_counters");
                    c.send_text(&format!(
                        r#"{{"type":"counter","data":{{"id":"{}","value":1}}}}"#,
                        "i".repeat(257)
                    ));
                    expect_error(&mut c, "Limit exceeded: max_id_bytes", "counter id");
                    // k1 is untouched by all of it.
                    c.send_text(r#"{"type":"counter","data":{"id":"k1","value":"0.5"}}"#);
                    assert_eq!(
                        text(&mut c),
                        r#"{"type":"counter","data":{"id":"k1","value":1.5}}"#
                    );
                },
            ),
            case(
                "subscriptions: max_id_bytes and max_subscriptions_per_connection",
                |a| {
                    let mut c = a.conn();
                    c.send_text(&format!(
                        r#"{{"type":"subscribe","data":"x:{}"}}"#,
                        "i".repeat(257)
                    ));
                    expect_error(&mut c, "Limit exceeded: max_id_bytes", "subscribe");
                    c.send_text(&format!(
                        r#"{{"type":"unsubscribe","data":"{}"}}"#,
                        "i".repeat(257)
                    ));
                    expect_error(&mut c, "Limit exceeded: max_id_bytes", "unsubscribe");
                    for i in 0..4 {
                        c.send_text(&format!(r#"{{"type":"subscribe","data":"custom{i}"}}"#));
                    }
                    probe(&mut c, "four subscriptions");
                    c.send_text(r#"{"type":"subscribe","data":"custom4"}"#);
                    expect_error(
                        &mut c,
                        "Limit exceeded: max_subscriptions_per_connection",
                        "subs",
                    );
                },
            ),
            case(
                "admin limits: max_config_bytes, max_relays_per_connection; bad admin data ignored",
                |a| {
                    let mut c = a.admin();
                    c.send_text(&format!(
                        r#"{{"type":"config","data":"{}"}}"#,
                        "c".repeat(65)
                    ));
                    expect_error(&mut c, "Limit exceeded: max_config_bytes", "config");
                    c.send_text(r#"{"type":"config"}"#);
                    c.send_text(r#"{"type":"broadcast","data":{"data":"no type"}}"#);
                    c.send_text(r#"{"type":"broadcast","data":{"to":5,"type":"x"}}"#);
                    c.send_text(r#"{"type":"broadcast","data":"x"}"#);
                    c.send_text(r#"{"type":"relay","data":5}"#);
                    c.send_text(r#"{"type":"deleteRelay","data":5}"#);
                    probe(&mut c, "ignored admin messages");
                    assert_eq!(
                        details(a.addr, "attackers")["config"],
                        "",
                        "config unchanged"
                    );
                    c.send_text(r#"{"type":"relay","data":"r1"}"#);
                    c.send_text(r#"{"type":"relay","data":"r2"}"#);
                    c.send_text(&format!(
                        r#"{{"type":"relay","data":"{}"}}"#,
                        "i".repeat(257)
                    ));
                    expect_error(&mut c, "Limit exceeded: max_id_bytes", "relay id");
                    c.send_text(r#"{"type":"relay","data":"r3"}"#);
                    expect_error(
                        &mut c,
                        "Limit exceeded: max_relays_per_connection",
                        "relays",
                    );
                },
            ),
            case("RMS-23 unusable session ids are ignored", |a| {
                for s in ["a%20b".to_string(), "x".repeat(129), "%C3%A9".into()] {
                    let (c, p) = hello(a.addr, &format!("/websocket?room=attackers&session={s}"));
                    let id = p["id"].as_str().unwrap();
                    assert_eq!(id.len(), 36, "{s}: a new UUID, got {id}");
                    c.close();
                }
            }),
            case(
                "RMS-22 {\"type\":\"close\"} → Close without status",
                |a| {
                    let mut c = a.conn();
                    c.send_text(r#"{"type":"close"}"#);
                    assert_eq!(c.expect_close().0, 1005);
                },
            ),
            case("RMS-30 1048577 bytes → 1009", |a| {
                let mut c = a.inside.take().expect("inside since RMS-33");
                assert_close(
                    "RMS-30",
                    send_oversize(&mut c, 1_048_577),
                    1009,
                    Some("Message too big"),
                );
            }),
            case("invalid UTF-8 → 1007", |a| {
                let mut c = a.conn();
                send_raw(
                    &mut c,
                    &masked_frame(1, b"{\"type\":\"chat\",\"data\":\"\xed\xa0\x80\"}"),
                );
                assert_close("UTF-8", c.expect_close(), 1007, None);
            }),
        ]
    }
}

#[test]
fn rooms_bad_input_with_a_crowd() {
    use switchboard::config::Secret;
    let dir = std::env::temp_dir().join(format!("sb-app-bad-input-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let s = server_with(&[AppKind::Rooms], |c| {
        let o = &mut c.rooms_opts;
        o.store_path = dir.join("rooms.db");
        o.admin_signing_key = Some(Secret::from(rooms_app::KEY.to_string()));
        o.max_connections_per_room = rooms_app::ROOM_CAP;
        o.max_polls = 2;
        o.max_ephemeral_polls = 2;
        o.max_answers_per_poll = 2;
        o.max_counters = 2;
        o.max_subscriptions_per_connection = 4;
        o.max_relays_per_connection = 2;
        o.max_properties_bytes = 64;
        o.max_config_bytes = 64;
        // No app-level pings in the middle of a round.
        o.ping_interval_ms = 600_000;
    });
    let addr = s.addr(AppKind::Rooms).unwrap();
    let mut crowd = rooms_app::Crowd::join(addr);
    let mut atk = rooms_app::Atk::new(addr, &crowd);
    replay(&mut crowd, &mut atk, rooms_app::cases());
    drop((crowd, atk));
    s.stop(DEADLINE).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------
// pester (pester.md): the raw face (PST-02, 04, 06, 07, 15, 16, 17, 19, 20, 21, 22, 23,
// 24, 26, 27, 28), the Socket.IO face over WebSocket (PST-43, 51, 53, 61, 62, 65, 66, 67,
// 68, 69) and over polling (PST-42, 47, 51, 52, 53, 56, the POST rules).

mod pester_app {
    use super::*;
    use std::collections::VecDeque;

    pub const WS: &str = "/socket.io/?EIO=4&transport=websocket";
    pub const MAX_CHANNELS: usize = 3;
    pub const MAX_BUFFERED: usize = 16 * 1024;

    pub fn err(msg: &str) -> String {
        format!(
            r#"{{"type":"error","message":{}}}"#,
            serde_json::to_string(msg).unwrap()
        )
    }

    pub fn registered(user: &str) -> String {
        format!(r#"{{"type":"registered","userId":"{user}","timestamp":0}}"#)
    }

    pub fn poll_path(sid: &str) -> String {
        format!("/socket.io/?EIO=4&transport=polling&sid={sid}")
    }

    /// A new polling session: its sid.
    pub fn poll_sid(addr: SocketAddr) -> String {
        let r = get(addr, "/socket.io/?EIO=4&transport=polling");
        let b = body(&r);
        assert!(b.starts_with(r#"0{"sid":""#), "{r}");
        b[9..29].to_string()
    }

    pub fn post(addr: SocketAddr, sid: &str, payload: &str) -> String {
        http(
            addr,
            &format!(
                "POST {} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n{payload}",
                poll_path(sid),
                payload.len()
            ),
        )
    }

    pub fn assert_code(what: &str, r: &str, code: u8, msg: &str) {
        let status = if code == 4 { 403 } else { 400 };
        assert_http(
            what,
            r,
            status,
            Some("content-type: application/json"),
            &format!(r#"{{"code":{code},"message":"{msg}"}}"#),
        );
        assert!(
            head(r).contains("\r\naccess-control-allow-origin: *\r\n"),
            "{what}: {r}"
        );
    }

    pub fn assert_unknown_sid(addr: SocketAddr, sid: &str, what: &str) {
        assert_code(what, &get(addr, &poll_path(sid)), 1, "Session ID unknown");
    }

    /// A client on one of the faces, reading the channel protocol's JSON objects.
    pub enum User {
        Raw(Client),
        Sio(Client),
        Poll(SocketAddr, String, VecDeque<String>),
    }

    impl User {
        pub fn raw(addr: SocketAddr, id: &str) -> User {
            let mut u = User::Raw(Client::connect(addr, "/"));
            u.register(id);
            u
        }

        pub fn sio(addr: SocketAddr, id: &str) -> User {
            let mut u = User::Sio(sio(addr));
            u.register(id);
            u
        }

        pub fn poll(addr: SocketAddr, id: &str) -> User {
            let sid = poll_sid(addr);
            assert_eq!(body(&post(addr, &sid, "40")), "ok");
            let mut u = User::Poll(addr, sid, VecDeque::new());
            let connected = u.packet();
            assert!(connected.starts_with(r#"40{"sid":""#), "{connected}");
            u.register(id);
            u
        }

        fn register(&mut self, id: &str) {
            self.send(&format!(r#"{{"type":"register","userId":"{id}"}}"#));
            assert_eq!(self.recv(), registered(id));
        }

        /// Sends one channel-protocol message (JSON text).
        pub fn send(&mut self, json: &str) {
            match self {
                User::Raw(c) => c.send_text(json),
                User::Sio(c) => c.send_text(&format!(r#"42["message",{json}]"#)),
                User::Poll(addr, sid, _) => {
                    let r = post(*addr, sid, &format!(r#"42["message",{json}]"#));
                    assert_eq!(body(&r), "ok", "{r}");
                }
            }
        }

        /// The next Engine.IO packet of a polling user (one GET holds until one is queued).
        fn packet(&mut self) -> String {
            let User::Poll(addr, sid, queue) = self else {
                unreachable!("polling users only")
            };
            let start = Instant::now();
            while queue.is_empty() {
                assert!(start.elapsed() < DEADLINE, "polling: nothing arrived");
                let r = get(*addr, &poll_path(sid));
                assert!(r.starts_with("HTTP/1.1 200 "), "polling GET: {r}");
                queue.extend(body(&r).split('\u{1e}').map(String::from));
            }
            queue.pop_front().unwrap()
        }

        /// The next channel-protocol object, timestamps normalized.
        pub fn recv(&mut self) -> String {
            let raw = match self {
                User::Raw(c) => text(c),
                User::Sio(c) => unwrap_sio(&text(c)),
                User::Poll(..) => unwrap_sio(&self.packet()),
            };
            norm_timestamps(&raw)
        }
    }

    /// The object of `42["message",<object>]`.
    pub fn unwrap_sio(packet: &str) -> String {
        packet
            .strip_prefix(r#"42["message","#)
            .and_then(|p| p.strip_suffix(']'))
            .unwrap_or_else(|| panic!("expected a message event, got {packet:?}"))
            .to_string()
    }

    /// A Socket.IO session over WebSocket with `/` connected.
    pub fn sio(addr: SocketAddr) -> Client {
        let mut c = Client::connect(addr, WS);
        let open = text(&mut c);
        assert!(
            open.starts_with(r#"0{"sid":""#) && open.contains(r#""upgrades":[]"#),
            "{open}"
        );
        c.send_text("40");
        let connected = text(&mut c);
        assert!(connected.starts_with(r#"40{"sid":""#), "{connected}");
        c
    }

    /// Pairs of users, each pair in its own channel; every round each user sends a
    /// message and a typing notice; the partner gets both, in order.
    pub struct Crowd(Vec<(String, User, String, User)>);

    impl Crowd {
        /// `faces(i)` picks the faces of pair `i`'s two users.
        pub fn join(
            addr: SocketAddr,
            pairs: usize,
            faces: impl Fn(usize) -> (char, char),
        ) -> Crowd {
            let make = |face: char, id: &str| match face {
                'r' => User::raw(addr, id),
                's' => User::sio(addr, id),
                _ => User::poll(addr, id),
            };
            let list = (0..pairs)
                .map(|i| {
                    let (fa, fb) = faces(i);
                    let (a, b) = (format!("crowd{i}a"), format!("crowd{i}b"));
                    let mut ua = make(fa, &a);
                    let mut ub = make(fb, &b);
                    let ch = format!("chat_{a}_{b}");
                    ua.send(&format!(r#"{{"type":"open_channel","friendId":"{b}"}}"#));
                    assert_eq!(
                        ua.recv(),
                        format!(r#"{{"type":"channel_opened","channelId":"{ch}","friendId":"{b}","friendOnline":true,"timestamp":0}}"#)
                    );
                    assert_eq!(
                        ub.recv(),
                        format!(r#"{{"type":"channel_invite","channelId":"{ch}","fromUserId":"{a}","timestamp":0}}"#)
                    );
                    (a, ua, b, ub)
                })
                .collect();
            Crowd(list)
        }

        /// (user id, channel) of a bystander.
        pub fn member(&self, i: usize) -> (String, String) {
            let (a, _, b, _) = &self.0[i];
            (a.clone(), format!("chat_{a}_{b}"))
        }
    }

    fn say(ch: &str, round: usize, from: &str) -> String {
        format!(r#"{{"type":"message","channelId":"{ch}","text":"round {round} from {from}"}}"#)
    }

    fn heard(ch: &str, round: usize, from: &str) -> String {
        format!(
            r#"{{"type":"message","channelId":"{ch}","fromUserId":"{from}","text":"round {round} from {from}","timestamp":0}}"#
        )
    }

    fn typing(ch: &str, from: &str) -> String {
        format!(r#"{{"type":"typing","channelId":"{ch}","userId":"{from}","timestamp":0}}"#)
    }

    impl super::Crowd for Crowd {
        fn send(&mut self, round: usize) {
            for (a, ua, b, ub) in &mut self.0 {
                let ch = format!("chat_{a}_{b}");
                for (id, u) in [(&*a, &mut *ua), (&*b, &mut *ub)] {
                    u.send(&say(&ch, round, id));
                    u.send(&format!(r#"{{"type":"typing","channelId":"{ch}"}}"#));
                }
            }
        }

        fn check(&mut self, round: usize) {
            for (a, ua, b, ub) in &mut self.0 {
                let ch = format!("chat_{a}_{b}");
                assert_eq!(ub.recv(), heard(&ch, round, a), "{b}");
                assert_eq!(ub.recv(), typing(&ch, a), "{b}");
                assert_eq!(ua.recv(), heard(&ch, round, b), "{a}");
                assert_eq!(ua.recv(), typing(&ch, b), "{a}");
            }
        }
    }

    pub struct Atk {
        pub addr: SocketAddr,
        /// A bystander's user id and channel.
        victim: (String, String),
        n: usize,
        /// The id of the first user of the last `pair`.
        last: String,
    }

    impl Atk {
        pub fn new(addr: SocketAddr, crowd: &Crowd) -> Atk {
            Atk {
                addr,
                victim: crowd.member(1),
                n: 0,
                last: String::new(),
            }
        }

        fn id(&mut self) -> String {
            self.n += 1;
            format!("mallory{}", self.n)
        }

        /// Two registered attackers sharing a channel: (a, b, channel).
        fn pair(&mut self, fa: fn(SocketAddr, &str) -> User) -> (User, User, String) {
            let (x, y) = (self.id(), self.id());
            let mut ux = fa(self.addr, &x);
            let mut uy = User::raw(self.addr, &y);
            ux.send(&format!(r#"{{"type":"open_channel","friendId":"{y}"}}"#));
            ux.recv();
            uy.recv();
            // Both ids are ASCII: UTF-16 order is byte order.
            let ch = if x < y {
                format!("chat_{x}_{y}")
            } else {
                format!("chat_{y}_{x}")
            };
            self.last = x;
            (ux, uy, ch)
        }
    }

    /// `u` got nothing since its last frame: the answer to a probe is next.
    pub fn probe(u: &mut User, what: &str) {
        u.send(r#"{"type":"probe"}"#);
        assert_eq!(
            u.recv(),
            err("Unknown message type: probe"),
            "{what}: expected no reply first"
        );
    }

    fn case<'a>(what: &'static str, f: impl FnOnce(&mut Atk) + 'a) -> Case<'a, Atk> {
        (what, Box::new(f))
    }

    pub fn raw_cases<'a>() -> Vec<Case<'a, Atk>> {
        vec![
            case(
                "PST-28 plain HTTP → 200 Pester WebSocket Server; /socket.io is the raw face",
                |a| {
                    for req in [
                        "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                        "GET /any?x=1 HTTP/1.1\r\nHost: x\r\n\r\n",
                        "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
                        "GET /socket.io HTTP/1.1\r\nHost: x\r\n\r\n",
                        "DELETE /socket.iox HTTP/1.1\r\nHost: x\r\n\r\n",
                    ] {
                        let r = http(a.addr, req);
                        assert_http(
                            req,
                            &r,
                            200,
                            Some("content-type: text/plain"),
                            "Pester WebSocket Server",
                        );
                    }
                    for path in ["/socket.io", "/socket.iox?EIO=4&transport=websocket"] {
                        let mut c = Client::connect(a.addr, path);
                        c.send_text("null");
                        assert_eq!(
                            text(&mut c),
                            err("Unknown message type: undefined"),
                            "{path}"
                        );
                    }
                },
            ),
            case("PST-21/23 not JSON → Invalid JSON, also as binary", |a| {
                let mut c = Client::connect(a.addr, "/");
                for bad in ["{ not json", "", "{\"type\":\"register\"", "nul"] {
                    c.send_text(bad);
                    assert_eq!(
                        norm_timestamps(&text(&mut c)),
                        err("Invalid JSON"),
                        "{bad:?}"
                    );
                }
                c.send_binary(&[0xff, 0xfe]);
                assert_eq!(text(&mut c), err("Invalid JSON"), "binary ff fe");
                c.send_binary(br#"{"type":"register","userId":"bin"}"#);
                assert_eq!(norm_timestamps(&text(&mut c)), registered("bin"), "PST-23");
            }),
            case(
                "PST-22 JSON that is not an object → Unknown message type: undefined",
                |a| {
                    let mut c = Client::connect(a.addr, "/");
                    for bad in ["null", "5", r#""x""#, "[1]", "true", "[]", "-0.5e3"] {
                        c.send_text(bad);
                        assert_eq!(
                            text(&mut c),
                            err("Unknown message type: undefined"),
                            "{bad}"
                        );
                    }
                },
            ),
            case(
                "PST-20 unknown or odd types → Unknown message type: <type>",
                |a| {
                    let mut c = Client::connect(a.addr, "/");
                    for (msg, shown) in [
                        (r#"{"type":"bogus"}"#, "bogus"),
                        (r#"{"noType":true}"#, "undefined"),
                        (r#"{"type":null}"#, "null"),
                        (r#"{"type":5}"#, "5"),
                        (r#"{"type":true}"#, "true"),
                        (r#"{"type":["a"]}"#, r#"["a"]"#),
                        (r#"{"type":{"a":1}}"#, r#"{"a":1}"#),
                        (r#"{"type":"REGISTER","userId":"x"}"#, "REGISTER"),
                    ] {
                        c.send_text(msg);
                        assert_eq!(
                            text(&mut c),
                            err(&format!("Unknown message type: {shown}")),
                            "{msg}"
                        );
                    }
                },
            ),
            case(
                "PST-04 register without a usable userId; over max_user_id_bytes",
                |a| {
                    let mut c = Client::connect(a.addr, "/");
                    for msg in [
                        r#"{"type":"register"}"#,
                        r#"{"type":"register","userId":""}"#,
                        r#"{"type":"register","userId":5}"#,
                        r#"{"type":"register","userId":null}"#,
                        r#"{"type":"register","userId":["a"]}"#,
                    ] {
                        c.send_text(msg);
                        assert_eq!(text(&mut c), err("userId is required"), "{msg}");
                    }
                    c.send_text(&format!(
                        r#"{{"type":"register","userId":"{}"}}"#,
                        "u".repeat(257)
                    ));
                    assert_eq!(text(&mut c), err("Limit exceeded: max_user_id_bytes"));
                },
            ),
            case(
                "PST-06 unregistered: open_channel and message → Register first; typing, close_channel → nothing",
                |a| {
                    let mut u = User::Raw(Client::connect(a.addr, "/"));
                    let (_, ch) = a.victim.clone();
                    u.send(r#"{"type":"open_channel","friendId":"frank"}"#);
                    assert_eq!(u.recv(), err("Register first"));
                    u.send(&format!(
                        r#"{{"type":"message","channelId":"{ch}","text":"hi"}}"#
                    ));
                    assert_eq!(u.recv(), err("Register first"));
                    u.send(&format!(r#"{{"type":"typing","channelId":"{ch}"}}"#));
                    u.send(&format!(r#"{{"type":"close_channel","channelId":"{ch}"}}"#));
                    probe(&mut u, "PST-06");
                },
            ),
            case(
                "PST-07 open_channel with a bad friendId → Invalid friendId",
                |a| {
                    let me = a.id();
                    let mut u = User::raw(a.addr, &me);
                    for friend in [
                        format!(r#""{me}""#),
                        r#""""#.to_string(),
                        "5".into(),
                        "null".into(),
                        format!(r#""{}""#, "f".repeat(257)),
                    ] {
                        u.send(&format!(r#"{{"type":"open_channel","friendId":{friend}}}"#));
                        assert_eq!(u.recv(), err("Invalid friendId"), "{friend}");
                    }
                    u.send(r#"{"type":"open_channel"}"#);
                    assert_eq!(u.recv(), err("Invalid friendId"), "missing");
                },
            ),
            case(
                "PST-15/16 message: bad fields dropped; someone else's channel → Not in this channel",
                |a| {
                    let (mut x, mut y, ch) = a.pair(User::raw);
                    for msg in [
                        format!(r#"{{"type":"message","channelId":"{ch}","text":""}}"#),
                        format!(r#"{{"type":"message","channelId":"{ch}","text":5}}"#),
                        format!(r#"{{"type":"message","channelId":"{ch}"}}"#),
                        r#"{"type":"message","channelId":"","text":"x"}"#.into(),
                        r#"{"type":"message","channelId":5,"text":"x"}"#.into(),
                        r#"{"type":"message","text":"x"}"#.into(),
                    ] {
                        x.send(&msg);
                    }
                    probe(&mut x, "PST-15");
                    probe(&mut y, "PST-15 partner");
                    let (_, victim_ch) = a.victim.clone();
                    for ch in [victim_ch.as_str(), "chat_x_y", "does_not_exist"] {
                        x.send(&format!(
                            r#"{{"type":"message","channelId":"{ch}","text":"intrude"}}"#
                        ));
                        assert_eq!(x.recv(), err("Not in this channel"), "{ch}");
                    }
                },
            ),
            case(
                "PST-17 typing into someone else's channel → nothing to anyone",
                |a| {
                    let me = a.id();
                    let mut u = User::raw(a.addr, &me);
                    let (_, ch) = a.victim.clone();
                    u.send(&format!(r#"{{"type":"typing","channelId":"{ch}"}}"#));
                    u.send(r#"{"type":"typing","channelId":""}"#);
                    u.send(r#"{"type":"typing","channelId":5}"#);
                    u.send(r#"{"type":"typing","channelId":"does_not_exist"}"#);
                    probe(&mut u, "PST-17");
                },
            ),
            case(
                "PST-19 close_channel of someone else's channel → only channel_closed to the caller",
                |a| {
                    let me = a.id();
                    let mut u = User::raw(a.addr, &me);
                    let (_, ch) = a.victim.clone();
                    for c in [ch.as_str(), "does_not_exist", ""] {
                        u.send(&format!(r#"{{"type":"close_channel","channelId":"{c}"}}"#));
                        assert_eq!(
                            u.recv(),
                            format!(
                                r#"{{"type":"channel_closed","channelId":"{c}","timestamp":0}}"#
                            )
                        );
                    }
                    u.send(r#"{"type":"close_channel","channelId":5}"#);
                    u.send(r#"{"type":"close_channel"}"#);
                    probe(&mut u, "PST-19 non-string channelId");
                },
            ),
            case(
                "PST-26 max_channels_per_user → Limit exceeded; re-opening still works",
                |a| {
                    let me = a.id();
                    let mut u = User::raw(a.addr, &me);
                    let friends: Vec<String> = (0..=MAX_CHANNELS).map(|_| a.id()).collect();
                    for f in &friends[..MAX_CHANNELS] {
                        u.send(&format!(r#"{{"type":"open_channel","friendId":"{f}"}}"#));
                        assert!(u.recv().contains(r#""type":"channel_opened""#));
                    }
                    let last = &friends[MAX_CHANNELS];
                    u.send(&format!(r#"{{"type":"open_channel","friendId":"{last}"}}"#));
                    assert_eq!(u.recv(), err("Limit exceeded: max_channels_per_user"));
                    u.send(&format!(
                        r#"{{"type":"open_channel","friendId":"{}"}}"#,
                        friends[0]
                    ));
                    assert!(u.recv().contains(r#""type":"channel_opened""#));
                },
            ),
            case(
                "PST-02 registering the same id again → registered only",
                |a| {
                    let (mut x, mut y, ch) = a.pair(User::raw);
                    let User::Raw(c) = &mut x else { unreachable!() };
                    let me = a.last.clone();
                    c.send_text(&format!(r#"{{"type":"register","userId":"{me}"}}"#));
                    assert_eq!(norm_timestamps(&text(c)), registered(&me));
                    probe(&mut y, "PST-02: no user_left");
                    x.send(&format!(
                        r#"{{"type":"message","channelId":"{ch}","text":"still"}}"#
                    ));
                    assert!(y.recv().contains(r#""text":"still""#));
                },
            ),
            case(
                "PST-27 a raw message over max_message_bytes → 1009; the partner gets user_left",
                |a| {
                    let hurt =
                        |c: &mut Client| drop(c.ws.send(Message::text("x".repeat(1_000_001))));
                    connection_ends(a, User::raw, "PST-27", hurt, 1009, Some("Message too big"));
                },
            ),
            case("invalid UTF-8 → 1007; the partner gets user_left", |a| {
                let hurt = |c: &mut Client| send_raw(c, &masked_frame(1, b"{\"type\":\"x\xff\"}"));
                connection_ends(a, User::raw, "UTF-8", hurt, 1007, None);
            }),
            case(
                "PST-24 TCP loss → user_left, then the user is offline",
                |a| {
                    let (c, mut y, ch) = ws_pair(a, User::raw);
                    drop_tcp(c);
                    expect_left(&mut y, &ch, "PST-24");
                    let gone = a.last.clone();
                    y.send(&format!(r#"{{"type":"open_channel","friendId":"{gone}"}}"#));
                    assert!(y.recv().contains(r#""friendOnline":false"#));
                },
            ),
        ]
    }

    /// The partner sees the attacker leave `ch`.
    fn expect_left(partner: &mut User, ch: &str, what: &str) {
        let left = partner.recv();
        assert!(
            left.starts_with(&format!(r#"{{"type":"user_left","channelId":"{ch}""#)),
            "{what}: {left}"
        );
    }

    /// A registered attacker on a WebSocket face (`User::raw` or `User::sio`) in a channel
    /// with a raw partner: (its WebSocket, the partner, the channel).
    fn ws_pair(a: &mut Atk, face: fn(SocketAddr, &str) -> User) -> (Client, User, String) {
        match a.pair(face) {
            (User::Raw(c) | User::Sio(c), y, ch) => (c, y, ch),
            (User::Poll(..), ..) => unreachable!("WebSocket faces only"),
        }
    }

    /// `hurt` makes the server close a paired attacker's WebSocket with `code` (and
    /// `reason`); its partner sees it leave.
    fn connection_ends(
        a: &mut Atk,
        face: fn(SocketAddr, &str) -> User,
        what: &str,
        hurt: impl FnOnce(&mut Client),
        code: u16,
        reason: Option<&str>,
    ) {
        let (mut c, mut y, ch) = ws_pair(a, face);
        hurt(&mut c);
        assert_close(what, c.expect_close(), code, reason);
        expect_left(&mut y, &ch, what);
    }

    /// A registered Socket.IO attacker in a channel with a raw partner; `bad` closes the
    /// session: the WebSocket gets a Close without status, the partner a `user_left`.
    fn closes_session(a: &mut Atk, what: &str, bad: &[&[u8]]) {
        let hurt = |c: &mut Client| {
            for b in bad {
                match std::str::from_utf8(b) {
                    Ok(t) if !b.starts_with(b"\0") => c.send_text(t),
                    _ => c.send_binary(&b[1..]),
                }
            }
        };
        connection_ends(a, User::sio, what, hurt, 1005, None);
    }

    pub fn sio_cases<'a>() -> Vec<Case<'a, Atk>> {
        let closer = |what: &'static str, bad: &'static [&'static [u8]]| {
            case(what, move |a| closes_session(a, what, bad))
        };
        vec![
            case(
                "PST-43 refused upgrades → raw 400 with the message, no 101",
                |a| {
                    let closed = poll_sid(a.addr);
                    assert_eq!(body(&post(a.addr, &closed, "1")), "ok");
                    for (target, msg) in [
                        "/socket.io/".to_string(),
                        "/socket.io/?EIO=4".into(),
                        "/socket.io/?EIO=4&transport=flash".into(),
                        "/socket.io/?EIO=4&transport=websocket&sid=AAAAAAAAAAAAAAAAAAAA".into(),
                        format!("/socket.io/?EIO=4&transport=websocket&sid={closed}"),
                        "/socket.io/?EIO=3&transport=websocket".into(),
                        "/socket.io/?transport=websocket".into(),
                        "/socket.io/?EIO=abc&transport=websocket".into(),
                    ]
                    .into_iter()
                    .zip([
                        "Transport unknown",
                        "Transport unknown",
                        "Transport unknown",
                        "Session ID unknown",
                        "Session ID unknown",
                        "Unsupported protocol version",
                        "Unsupported protocol version",
                        "Unsupported protocol version",
                    ]) {
                        let r = upgrade(a.addr, &target);
                        assert!(
                            r.starts_with("HTTP/1.1 400 Bad Request\r\n"),
                            "{target}: {r}"
                        );
                        let h = head(&r);
                        assert!(h.contains("\r\nconnection: close\r\n"), "{r}");
                        assert!(h.contains("\r\ncontent-type: text/html\r\n"), "{r}");
                        assert!(
                            h.contains(&format!("\r\ncontent-length: {}\r\n", msg.len())),
                            "{r}"
                        );
                        assert_eq!(body(&r), msg, "{target}");
                    }
                },
            ),
            case(
                "PST-61 another namespace → 44 Invalid namespace, the session stays",
                |a| {
                    let mut c = Client::connect(a.addr, WS);
                    text(&mut c);
                    c.send_text("40/admin,");
                    assert_eq!(text(&mut c), r#"44/admin,{"message":"Invalid namespace"}"#);
                    c.send_text(r#"40/chat,{"token":"x"}"#);
                    assert_eq!(text(&mut c), r#"44/chat,{"message":"Invalid namespace"}"#);
                    c.send_text(r#"40{"token":"x"}"#);
                    assert!(text(&mut c).starts_with(r#"40{"sid":""#));
                },
            ),
            case(
                "PST-65 bad message arguments → Invalid JSON / Unknown message type: undefined",
                |a| {
                    let mut c = sio(a.addr);
                    for (input, answer) in [
                        (r#"42["message","not json"]"#, "Invalid JSON"),
                        (r#"42["message",""]"#, "Invalid JSON"),
                        (r#"42["message",null]"#, "Unknown message type: undefined"),
                        (r#"42["message"]"#, "Unknown message type: undefined"),
                        (r#"42["message",5]"#, "Unknown message type: undefined"),
                        (r#"42["message","5"]"#, "Unknown message type: undefined"),
                        (r#"42["message",[1]]"#, "Unknown message type: undefined"),
                        (
                            r#"42["message",{"type":"bogus"}]"#,
                            "Unknown message type: bogus",
                        ),
                        (
                            r#"42["message","{\"type\":\"register\"}"]"#,
                            "userId is required",
                        ),
                    ] {
                        c.send_text(input);
                        assert_eq!(unwrap_sio(&text(&mut c)), err(answer), "{input}");
                    }
                },
            ),
            case(
                "PST-66 acks: 43<id>[] after the handler's frames; other events ignored",
                |a| {
                    let mut c = sio(a.addr);
                    c.send_text(r#"421["message",{"type":"nope"}]"#);
                    assert_eq!(unwrap_sio(&text(&mut c)), err("Unknown message type: nope"));
                    assert_eq!(text(&mut c), "431[]");
                    c.send_text(r#"427["other",1]"#);
                    assert_eq!(text(&mut c), "437[]");
                    for ignored in [
                        r#"42["other",{"type":"register","userId":"x"}]"#,
                        r#"42[5,{"type":"register","userId":"x"}]"#,
                        "42",
                        "421",
                        "431[]",
                        r#"43[1,"x"]"#,
                    ] {
                        c.send_text(ignored);
                    }
                    c.send_text(r#"42["message",{"type":"probe"}]"#);
                    assert_eq!(
                        unwrap_sio(&text(&mut c)),
                        err("Unknown message type: probe"),
                        "no reply to the ignored events"
                    );
                },
            ),
            case(
                "PST-67 a binary attachment as the argument → Unknown message type: undefined",
                |a| {
                    let mut c = sio(a.addr);
                    c.send_text(r#"451-["message",{"_placeholder":true,"num":0}]"#);
                    c.send_binary(&[1, 2]);
                    assert_eq!(
                        unwrap_sio(&text(&mut c)),
                        err("Unknown message type: undefined")
                    );
                    c.send_text(r#"451-["message",{"type":"register","userId":{"_placeholder":true,"num":0}}]"#);
                    c.send_binary(b"bin");
                    assert_eq!(
                        unwrap_sio(&text(&mut c)),
                        err("userId is required"),
                        "a placeholder is no string"
                    );
                },
            ),
            case(
                "PST-69 41 leaves the namespace: user_left, the session stays, register again",
                |a| {
                    let (x, mut y, ch) = a.pair(User::sio);
                    let User::Sio(mut c) = x else { unreachable!() };
                    c.send_text("41");
                    assert!(
                        y.recv()
                            .starts_with(&format!(r#"{{"type":"user_left","channelId":"{ch}""#))
                    );
                    c.send_text("40");
                    assert!(text(&mut c).starts_with(r#"40{"sid":""#));
                    c.send_text(&format!(
                        r#"42["message",{{"type":"message","channelId":"{ch}","text":"x"}}]"#
                    ));
                    assert_eq!(unwrap_sio(&text(&mut c)), err("Register first"));
                },
            ),
            case("PST-62 an event before 40 → the session is closed", |a| {
                let mut c = Client::connect(a.addr, WS);
                text(&mut c);
                c.send_text(r#"42["message",{"type":"x"}]"#);
                assert_eq!(c.expect_close().0, 1005);
            }),
            closer("PST-52 Engine.IO packet 9zzz", &[b"9zzz"]),
            closer("an empty Engine.IO packet", &[b""]),
            closer("PST-51 a client ping 2", &[b"2"]),
            closer("a 2probe on the current transport", &[b"2probe"]),
            closer("PST-68 4abc (type not 0-6)", &[b"4abc"]),
            closer("PST-68 47", &[b"47"]),
            closer("PST-68 42{bad", &[b"42{bad"]),
            closer("PST-68 42\"x\"", &[br#"42"x""#]),
            closer("PST-68 42[]", &[b"42[]"]),
            closer("PST-68 42[{}]", &[b"42[{}]"]),
            closer("PST-68 42[\"connect\"]", &[br#"42["connect"]"#]),
            closer(
                "PST-68 42[\"removeListener\",1]",
                &[br#"42["removeListener",1]"#],
            ),
            closer("PST-68 43 ack with non-array data", &[br#"431{}"#]),
            closer("PST-68 41 with data", &[br#"41{}"#]),
            closer("PST-68 a second 40", &[b"40"]),
            closer("PST-68 44 from the client", &[br#"44{"message":"x"}"#]),
            closer(
                "PST-68 malformed attachment count",
                &[br#"45x-["message",1]"#],
            ),
            closer(
                "PST-68 4511-[] (over max_attachments)",
                &[br#"4511-["message",1]"#],
            ),
            closer(
                "PST-68 a binary frame with no attachment pending",
                &[b"\0\x01"],
            ),
            closer(
                "PST-68 a text packet while attachments are expected",
                &[
                    br#"451-["message",{"_placeholder":true,"num":0}]"#,
                    br#"42["message",1]"#,
                ],
            ),
            closer("PST-51 1 over the WebSocket closes it", &[b"1"]),
            case(
                "PST-53 a WebSocket message over maxPayload → 1009 Message too big",
                |a| {
                    let hurt =
                        |c: &mut Client| drop(c.ws.send(Message::text("x".repeat(1_000_001))));
                    connection_ends(a, User::sio, "PST-53", hurt, 1009, Some("Message too big"));
                },
            ),
            case("invalid UTF-8 → 1007; the partner gets user_left", |a| {
                let hurt =
                    |c: &mut Client| send_raw(c, &masked_frame(1, b"42[\"message\",\"\xff\"]"));
                connection_ends(a, User::sio, "UTF-8", hurt, 1007, None);
            }),
        ]
    }

    /// A registered polling attacker in a channel with a raw partner.
    pub fn poll_pair(a: &mut Atk) -> (String, User, String) {
        let (x, y, ch) = a.pair(User::poll);
        let User::Poll(_, sid, _) = x else {
            unreachable!()
        };
        (sid, y, ch)
    }

    /// `sid` was closed: the partner saw the user leave, and the sid is unknown now.
    pub fn poll_closed(a: &Atk, sid: &str, partner: &mut User, ch: &str, what: &str) {
        expect_left(partner, ch, what);
        assert_unknown_sid(a.addr, sid, what);
    }

    /// A GET for `sid` that the server holds (nothing is queued): send it, answer later.
    fn held_get(addr: SocketAddr, sid: &str) -> TcpStream {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        write!(s, "GET {} HTTP/1.1\r\nHost: x\r\n\r\n", poll_path(sid)).unwrap();
        s
    }

    pub fn answer(mut s: TcpStream) -> String {
        crate::common::read_response(&mut s)
    }

    pub fn poll_cases<'a>() -> Vec<Case<'a, Atk>> {
        vec![
            case("PST-56 the client bundle → 404", |a| {
                for path in [
                    "/socket.io/socket.io.js",
                    "/socket.io/socket.io.min.js",
                    "/socket.io/socket.io.js.map",
                ] {
                    let r = get(a.addr, path);
                    assert!(r.starts_with("HTTP/1.1 404 "), "{path}: {r}");
                }
            }),
            case(
                "PST-42 handshake errors: status, JSON body, CORS header",
                |a| {
                    let cases: [(&str, &str, u8, &str); 9] = [
                        ("GET", "/socket.io/", 0, "Transport unknown"),
                        (
                            "GET",
                            "/socket.io/?EIO=4&transport=abc",
                            0,
                            "Transport unknown",
                        ),
                        (
                            "GET",
                            "/socket.io/?EIO=3&transport=polling",
                            5,
                            "Unsupported protocol version",
                        ),
                        (
                            "GET",
                            "/socket.io/?transport=polling",
                            5,
                            "Unsupported protocol version",
                        ),
                        (
                            "GET",
                            "/socket.io/?EIO=4&transport=polling&sid=nope",
                            1,
                            "Session ID unknown",
                        ),
                        (
                            "POST",
                            "/socket.io/?EIO=4&transport=polling",
                            2,
                            "Bad handshake method",
                        ),
                        (
                            "PUT",
                            "/socket.io/?EIO=4&transport=polling",
                            2,
                            "Bad handshake method",
                        ),
                        (
                            "GET",
                            "/socket.io/?EIO=4&transport=websocket",
                            3,
                            "Bad request",
                        ),
                        (
                            "GET",
                            "/socket.io/?EIO=4&transport=polling&j=0",
                            3,
                            "Bad request",
                        ),
                    ];
                    for (method, target, code, msg) in cases {
                        let r = http(
                            a.addr,
                            &format!(
                                "{method} {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
                            ),
                        );
                        assert_code(&format!("{method} {target}"), &r, code, msg);
                    }
                },
            ),
            case(
                "PST-42 a known sid on the wrong transport, or another method → 400 code 3",
                |a| {
                    let (sid, mut y, _) = poll_pair(a);
                    let r = get(
                        a.addr,
                        &format!("/socket.io/?EIO=4&transport=websocket&sid={sid}"),
                    );
                    assert_code(
                        "websocket transport without an upgrade",
                        &r,
                        3,
                        "Bad request",
                    );
                    let r = http(
                        a.addr,
                        &format!(
                            "PUT {} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
                            poll_path(&sid)
                        ),
                    );
                    assert_code("PUT with a sid", &r, 3, "Bad request");
                    // The session survives both.
                    probe(
                        &mut User::Poll(a.addr, sid, VecDeque::new()),
                        "after code 3",
                    );
                    probe(&mut y, "partner");
                },
            ),
            case(
                "PST-47 two GETs at once → one 400 (empty), the other answered 1, S closed",
                |a| {
                    let (sid, mut y, ch) = poll_pair(a);
                    // Whichever the server reads first is the held one.
                    let (g1, g2) = (held_get(a.addr, &sid), held_get(a.addr, &sid));
                    let mut answers = [answer(g1), answer(g2)];
                    answers.sort_by_key(|r| !r.starts_with("HTTP/1.1 400 "));
                    assert_http("the second GET", &answers[0], 400, None, "");
                    assert_http("the held GET", &answers[1], 200, None, "1");
                    poll_closed(a, &sid, &mut y, &ch, "PST-47");
                },
            ),
            case(
                "PST-51 1 over polling with a GET held → the GET gets 6, the POST ok, S closed",
                |a| {
                    // Nothing tells when the server holds a GET: if the `1` overtakes it, the GET
                    // finds the session closed (400 code 1) and the case is tried again, later.
                    let mut held_seen = false;
                    for attempt in 0..6u64 {
                        let (sid, mut y, ch) = poll_pair(a);
                        let held = held_get(a.addr, &sid);
                        std::thread::sleep(Duration::from_millis(attempt * attempt * 40));
                        assert_eq!(body(&post(a.addr, &sid, "1")), "ok", "the POST of 1");
                        let r = answer(held);
                        if body(&r) == "6" {
                            held_seen = true;
                        } else {
                            assert_code("a GET after the close", &r, 1, "Session ID unknown");
                        }
                        poll_closed(a, &sid, &mut y, &ch, "PST-51 close");
                        if held_seen {
                            break;
                        }
                    }
                    assert!(held_seen, "a held GET was never answered 6");
                },
            ),
            case("PST-51 a client ping over polling → S closed", |a| {
                let (sid, mut y, ch) = poll_pair(a);
                post(a.addr, &sid, "2");
                poll_closed(a, &sid, &mut y, &ch, "PST-51 ping");
            }),
            case(
                "PST-52 a bad packet in a POST: those before it count, then S closed",
                |a| {
                    for bad in ["9zzz", "", "bnot base64!", "\u{e9}"] {
                        let (sid, mut y, ch) = poll_pair(a);
                        let payload = format!(
                            "42[\"message\",{{\"type\":\"message\",\"channelId\":\"{ch}\",\"text\":\"before\"}}]\u{1e}{bad}\u{1e}42[\"message\",{{\"type\":\"message\",\"channelId\":\"{ch}\",\"text\":\"after\"}}]"
                        );
                        post(a.addr, &sid, &payload);
                        assert!(y.recv().contains(r#""text":"before""#), "{bad:?}");
                        poll_closed(a, &sid, &mut y, &ch, "PST-52");
                    }
                    // An empty body is one undecodable packet.
                    let (sid, mut y, ch) = poll_pair(a);
                    post(a.addr, &sid, "");
                    poll_closed(a, &sid, &mut y, &ch, "PST-52 empty body");
                },
            ),
            case(
                "PST-53 a POST over maxPayload → 413, empty body, S closed",
                |a| {
                    let (sid, mut y, ch) = poll_pair(a);
                    let mut s = TcpStream::connect(a.addr).unwrap();
                    s.set_read_timeout(Some(DEADLINE)).unwrap();
                    write!(
                    s,
                    "POST {} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: 1000001\r\n\r\n",
                    poll_path(&sid)
                )
                .unwrap();
                    let _ = s.write_all(&vec![b'6'; 1_000_001]);
                    let r = answer(s);
                    assert_http("413", &r, 413, None, "");
                    poll_closed(a, &sid, &mut y, &ch, "PST-53");
                },
            ),
            case(
                "PST-44 a chunked POST over maxPayload → 413, S closed",
                |a| {
                    let (sid, mut y, ch) = poll_pair(a);
                    let mut s = TcpStream::connect(a.addr).unwrap();
                    s.set_read_timeout(Some(DEADLINE)).unwrap();
                    write!(
                        s,
                        "POST {} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
                        poll_path(&sid)
                    )
                    .unwrap();
                    let chunk = vec![b'6'; 100_000];
                    for _ in 0..11 {
                        if write!(s, "{:x}\r\n", chunk.len()).is_err()
                            || s.write_all(&chunk).is_err()
                            || s.write_all(b"\r\n").is_err()
                        {
                            break;
                        }
                    }
                    let _ = s.write_all(b"0\r\n\r\n");
                    let r = answer(s);
                    assert_http("chunked 413", &r, 413, None, "");
                    poll_closed(a, &sid, &mut y, &ch, "PST-44 chunked");
                },
            ),
            case(
                "PST-48 upgrade: a second WebSocket → 101 then Close; polling after 5 → code 3",
                |a| {
                    let (sid, mut y, ch) = poll_pair(a);
                    let ws = format!("/socket.io/?EIO=4&transport=websocket&sid={sid}");
                    let mut probe_ws = Client::connect(a.addr, &ws);
                    probe_ws.send_text("2probe");
                    assert_eq!(
                        text(&mut probe_ws),
                        "3probe",
                        "the first frame on the probe"
                    );
                    let mut second = Client::connect(a.addr, &ws);
                    assert_eq!(second.expect_close().0, 1005, "a second WebSocket for S");
                    probe_ws.send_text("5");
                    y.send(&format!(
                        r#"{{"type":"message","channelId":"{ch}","text":"over ws"}}"#
                    ));
                    let got = norm_timestamps(&unwrap_sio(&text(&mut probe_ws)));
                    assert!(got.contains(r#""text":"over ws""#), "{got}");
                    assert_code(
                        "polling after the upgrade",
                        &get(a.addr, &poll_path(&sid)),
                        3,
                        "Bad request",
                    );
                    let r = post(a.addr, &sid, "3");
                    assert_code("POST after the upgrade", &r, 3, "Bad request");
                    probe_ws.close();
                    let left = y.recv();
                    assert!(left.starts_with(r#"{"type":"user_left""#), "{left}");
                },
            ),
            case(
                "PST-48 a probe WebSocket sending anything but 5 is closed; S stays on polling",
                |a| {
                    let (sid, mut y, ch) = poll_pair(a);
                    let ws = format!("/socket.io/?EIO=4&transport=websocket&sid={sid}");
                    let mut probe_ws = Client::connect(a.addr, &ws);
                    probe_ws.send_text("2probe");
                    assert_eq!(text(&mut probe_ws), "3probe");
                    probe_ws.send_text(r#"42["message",{"type":"probe"}]"#);
                    assert_eq!(probe_ws.expect_close().0, 1005);
                    y.send(&format!(
                        r#"{{"type":"message","channelId":"{ch}","text":"still polling"}}"#
                    ));
                    let mut u = User::Poll(a.addr, sid, VecDeque::new());
                    let got = u.recv();
                    assert!(got.contains(r#""text":"still polling""#), "{got}");
                    probe(&mut u, "after the failed probe");
                },
            ),
            case(
                "max_buffered_bytes: a polling session that never polls is closed",
                |a| {
                    let (sid, mut y, ch) = poll_pair(a);
                    let text_ = "b".repeat(1000);
                    for _ in 0..(MAX_BUFFERED / 1000 + 2) {
                        y.send(&format!(
                            r#"{{"type":"message","channelId":"{ch}","text":"{text_}"}}"#
                        ));
                    }
                    poll_closed(a, &sid, &mut y, &ch, "max_buffered_bytes");
                },
            ),
            case(
                "an application/octet-stream POST → 400 code 3, S closed",
                |a| {
                    let (sid, mut y, ch) = poll_pair(a);
                    let r = http(
                        a.addr,
                        &format!(
                            "POST {} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 1\r\n\r\n6",
                            poll_path(&sid)
                        ),
                    );
                    assert_code("octet-stream", &r, 3, "Bad request");
                    poll_closed(a, &sid, &mut y, &ch, "octet-stream");
                },
            ),
        ]
    }
}

#[test]
fn pester_raw_bad_input_with_a_crowd() {
    let s = server_with(&[AppKind::Pester], |c| {
        c.pester_opts.max_channels_per_user = pester_app::MAX_CHANNELS;
    });
    let addr = s.addr(AppKind::Pester).unwrap();
    let mut crowd = pester_app::Crowd::join(addr, 15, |_| ('r', 'r'));
    let mut atk = pester_app::Atk::new(addr, &crowd);
    replay(&mut crowd, &mut atk, pester_app::raw_cases());
    drop((crowd, atk));
    s.stop(DEADLINE).unwrap();
}

#[test]
fn pester_socketio_websocket_bad_input_with_a_crowd() {
    let s = server_with(&[AppKind::Pester], |c| {
        // No heartbeat `2` in the middle of a round.
        c.pester_opts.ping_interval_ms = 600_000;
    });
    let addr = s.addr(AppKind::Pester).unwrap();
    let mut crowd =
        pester_app::Crowd::join(
            addr,
            15,
            |i| if i % 2 == 0 { ('s', 'r') } else { ('s', 's') },
        );
    let mut atk = pester_app::Atk::new(addr, &crowd);
    replay(&mut crowd, &mut atk, pester_app::sio_cases());
    drop((crowd, atk));
    s.stop(DEADLINE).unwrap();
}

#[test]
fn pester_polling_bad_input_with_a_crowd() {
    let s = server_with(&[AppKind::Pester], |c| {
        c.pester_opts.ping_interval_ms = 600_000;
        c.pester_opts.max_buffered_bytes = pester_app::MAX_BUFFERED;
    });
    let addr = s.addr(AppKind::Pester).unwrap();
    let mut crowd = pester_app::Crowd::join(addr, 15, |i| match i % 3 {
        0 => ('p', 'r'),
        1 => ('p', 's'),
        _ => ('r', 's'),
    });
    let mut atk = pester_app::Atk::new(addr, &crowd);
    replay(&mut crowd, &mut atk, pester_app::poll_cases());
    drop((crowd, atk));
    s.stop(DEADLINE).unwrap();
}

/// pester.md, polling: "second `POST` while one is being read → `400`, empty body; S
/// closed". The first POST's head and part of its body go first; nothing observable tells
/// when the server has read them, hence the sleep. The first POST, finished after the
/// close, is a request for a closed session (pester.md: "Afterwards every request for S →
/// `400` code 1"); the original answered it `ok`, after the session had gone.
#[test]
fn pester_polling_second_post_while_one_is_read() {
    let s = server_with(&[AppKind::Pester], |_| {});
    let addr = s.addr(AppKind::Pester).unwrap();
    let mut crowd = pester_app::Crowd::join(addr, 2, |_| ('r', 'r'));
    let mut atk = pester_app::Atk::new(addr, &crowd);
    let (sid, mut y, ch) = pester_app::poll_pair(&mut atk);
    let mut first = TcpStream::connect(addr).unwrap();
    first.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(
        first,
        "POST {} HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n3",
        pester_app::poll_path(&sid)
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let r = pester_app::post(addr, &sid, "3");
    assert_http("the second POST", &r, 400, None, "");
    first.write_all(b"\x1e3\x1e3\x1e3\x1e3").unwrap();
    let r = pester_app::answer(first);
    pester_app::assert_code("the first POST", &r, 1, "Session ID unknown");
    pester_app::poll_closed(&atk, &sid, &mut y, &ch, "second POST");
    use Crowd as _;
    crowd.send(0);
    crowd.check(0);
    s.stop(DEADLINE).unwrap();
}
