//! Operation sequences (`Arbitrary`) against the router tables and every app state
//! machine, through [`Harness`] as the reactor would drive them.
//!
//! The driver models the reactor's promises: Opened only after `route` said Upgrade and
//! `accept` agreed, Closed exactly once per opened connection (also after the app closed
//! it), posts delivered FIFO, a Respond ends an HTTP exchange. It checks what the reactor
//! relies on: effects name live connections, frames are well formed, close codes are
//! sendable, pipes join two open sockets.

use super::{ADMIN_KEY, JWT_KEY, config};
use crate::apps::harness::Harness;
use crate::apps::{self, App, Effect, Event, Route};
use crate::config::{AppKind, Config};
use crate::frame;
use crate::http::Request;
use crate::router::{ConnId, ConnTable, owner_of};
use arbitrary::{Arbitrary, Unstructured};
use sha2::Digest;
use std::collections::{HashMap, VecDeque};
use std::fmt::Debug;

const SLOTS: u32 = 8;

#[derive(Arbitrary, Debug)]
enum Target {
    Known(u8),
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum Body {
    /// A template of the app's protocol with `@` replaced by the string.
    Known(u8, String),
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum Op {
    Open {
        slot: u8,
        target: Target,
    },
    Text {
        slot: u8,
        body: Body,
    },
    Binary {
        slot: u8,
        data: Vec<u8>,
    },
    Close {
        slot: u8,
    },
    CloseTogether {
        a: u8,
        b: u8,
    },
    Http {
        slot: u8,
        post: bool,
        /// The body arrives after the head: the app hears `HttpReading` first.
        announced: bool,
        target: Target,
        body: Body,
    },
    Tick {
        advance: u16,
    },
    TurnEnd,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum State {
    Free,
    Ws,
    Http,
}

/// The paths a client of each app opens (`{t:user:room}`: a session token, `{sid}`: the
/// last Engine.IO session id the app handed out).
fn targets(kind: AppKind) -> &'static [&'static str] {
    match kind {
        AppKind::Pester => &[
            "/",
            "/socket.io/?EIO=4&transport=websocket",
            "/socket.io/?EIO=4&transport=polling",
            "/socket.io/?EIO=4&transport=polling&sid={sid}",
            "/socket.io/?EIO=4&transport=websocket&sid={sid}",
            "/socket.io/?EIO=3&transport=polling",
        ],
        AppKind::Session => &["/?token={t:a:r1}", "/?token={t:b:r1}", "/?token={t:a:r2}"],
        AppKind::Rooms => &[
            "/websocket?room=r1",
            "/websocket?room=r2",
            "/details?room=r1",
            "/users?room=r1",
        ],
        AppKind::Pair => &["/"],
        AppKind::Signal => &[
            "/introduction/a",
            "/introduction/b",
            "/connection/a/b/k",
            "/connection/b/a/k",
            "/connect/a/b/k",
        ],
        AppKind::Bench => &["/?room=a", "/?room=b", "/"],
        AppKind::Echo => &["/"],
    }
}

/// Messages of each app's protocol; `@` is replaced by fuzzer text.
fn templates(kind: AppKind) -> &'static [&'static str] {
    match kind {
        AppKind::Pester => &[
            r#"{"type":"register","userId":"@"}"#,
            r#"{"type":"open_channel","friendId":"@"}"#,
            r#"{"type":"message","channelId":"@","text":"hi"}"#,
            r#"{"type":"typing","channelId":"@"}"#,
            r#"{"type":"close_channel","channelId":"@"}"#,
            "40",
            "40@",
            r#"42["message",@]"#,
            r#"421["message",{"type":"register","userId":"@"}]"#,
            "2probe",
            "5",
            "3",
            "4@",
            "1",
        ],
        AppKind::Session => &["@", ""],
        AppKind::Rooms => &[
            r#"{"type":"login","data":{"name":"@","_email":"a@x"}}"#,
            r#"{"type":"profile"}"#,
            r#"{"type":"subscribe","data":"@"}"#,
            r#"{"type":"unsubscribe","data":"@"}"#,
            r#"{"type":"chat","data":@}"#,
            r#"{"type":"poll","data":{"id":"p","answer":"@"}}"#,
            r#"{"type":"counter","data":{"id":"c","value":@}}"#,
            "{auth}",
            r#"{"type":"config","data":"@"}"#,
            r#"{"type":"broadcast","data":{"to":"@","type":"x","data":1}}"#,
            r#"{"type":"relay","data":"@"}"#,
            r#"{"type":"deleteRelay","data":"@"}"#,
            r#"{"type":"close"}"#,
            r#"{"type":"ping","data":@}"#,
        ],
        AppKind::Pair => &[r#"{"type":"@"}"#, "@"],
        AppKind::Signal => &[
            r#"{"type":"Join","join":["@"]}"#,
            r#"{"type":"Leave","leave":["@"]}"#,
            r#"{"join":"@","leave":["k"]}"#,
        ],
        AppKind::Bench | AppKind::Echo => &["@"],
    }
}

/// Drives one app instance on reactor 0 of 1 and checks the effects it leaves.
struct Driver<A: App> {
    kind: AppKind,
    cfg: Config,
    h: Harness<A>,
    state: [State; SLOTS as usize],
    generation: [u32; SLOTS as usize],
    remote: VecDeque<A::Msg>,
    sid: String,
}

impl<A: App> Driver<A>
where
    A::Msg: PartialEq + Debug,
{
    fn new(kind: AppKind, app: A) -> Self {
        Driver {
            kind,
            cfg: config(),
            h: Harness::new(app),
            state: [State::Free; SLOTS as usize],
            generation: [1; SLOTS as usize],
            remote: VecDeque::new(),
            sid: String::new(),
        }
    }

    fn id(&self, slot: u8) -> (usize, ConnId) {
        let s = u32::from(slot) % SLOTS;
        (s as usize, ConnId::new(0, s, self.generation[s as usize]))
    }

    fn live(&self, c: ConnId, want: State) -> bool {
        let s = c.slot as usize;
        c.reactor == 0 && s < self.state.len() && self.generation[s] == c.generation && {
            self.state[s] == want
        }
    }

    fn target(&self, t: &Target) -> String {
        match t {
            Target::Raw(s) => s.clone(),
            Target::Known(i) => {
                let all = targets(self.kind);
                let t = all[usize::from(*i) % all.len()].replace("{sid}", &self.sid);
                match t.split_once("{t:") {
                    Some((head, rest)) => {
                        let (spec, tail) = rest.split_once('}').unwrap_or((rest, ""));
                        let (user, room) = spec.split_once(':').unwrap_or((spec, "r"));
                        let now = self.h.now / 1000;
                        let tok =
                            apps::session::jwt::mint(user, room, "h", now, 0, JWT_KEY.as_bytes());
                        format!("{head}{tok}{tail}")
                    }
                    None => t,
                }
            }
        }
    }

    fn body(&self, b: &Body) -> String {
        match b {
            Body::Raw(s) => s.clone(),
            Body::Known(i, arg) => {
                let all = templates(self.kind);
                let t = all[usize::from(*i) % all.len()];
                if t == "{auth}" {
                    return self.rooms_auth("r1");
                }
                t.replace('@', arg)
            }
        }
    }

    /// A valid rooms admin `authenticate` for `room` at the current time.
    fn rooms_auth(&self, room: &str) -> String {
        let ts = self.h.now.to_string();
        let digest = sha2::Sha256::digest(format!("{room}{ts}{ADMIN_KEY}"));
        let key = apps::rooms::state::hex(&digest);
        format!(r#"{{"type":"authenticate","data":{{"ts":"{ts}","key":"{key}"}}}}"#)
    }

    fn request(&self, method: &str, target: &str) -> Request {
        let mut req = crate::apps::harness::request(target);
        req.method = method.into();
        req.headers = vec![("host".into(), "h".into())];
        req.client_ip = Some(std::net::Ipv4Addr::LOCALHOST.into());
        req
    }

    fn route(&self, req: &Request, websocket: bool) -> Route {
        match self.kind {
            AppKind::Session => apps::session::route(
                req,
                websocket,
                &self.cfg.session_settings,
                self.h.now / 1000,
            ),
            kind => apps::route(kind, req, websocket, &self.cfg),
        }
    }

    fn op(&mut self, op: &Op) {
        match op {
            Op::Open { slot, target } => {
                let (s, id) = self.id(*slot);
                if self.state[s] != State::Free {
                    return;
                }
                let req = self.request("GET", &self.target(target));
                if let Route::Upgrade { .. } = self.route(&req, true) {
                    let mut headers = Vec::new();
                    let now = self.h.now;
                    if self.h.app.accept(id, &req, now, &mut headers).is_ok() {
                        self.state[s] = State::Ws;
                        self.h.open_req(id, &req);
                        self.settle();
                    }
                }
            }
            Op::Text { slot, body } => {
                let (s, id) = self.id(*slot);
                if self.state[s] == State::Ws {
                    let text = self.body(body);
                    self.h.text(id, &text);
                    self.settle();
                }
            }
            Op::Binary { slot, data } => {
                let (s, id) = self.id(*slot);
                if self.state[s] == State::Ws {
                    self.h.binary(id, data);
                    self.settle();
                }
            }
            Op::Close { slot } => self.close(&[*slot]),
            Op::CloseTogether { a, b } => self.close(&[*a, *b]),
            Op::Http {
                slot,
                post,
                announced,
                target,
                body,
            } => {
                let (s, id) = self.id(*slot);
                if self.state[s] != State::Free {
                    return;
                }
                let req = self.request(if *post { "POST" } else { "GET" }, &self.target(target));
                if let Route::Http { .. } = self.route(&req, false) {
                    self.state[s] = State::Http;
                    if *announced {
                        self.h.event(Event::HttpReading {
                            conn: id,
                            req: &req,
                        });
                        self.settle();
                        if !self.live(id, State::Http) {
                            // Answered from the head.
                            return;
                        }
                    }
                    let body = self.body(body);
                    self.h.event(Event::Http {
                        conn: id,
                        req: &req,
                        body: body.as_bytes(),
                    });
                    self.settle();
                }
            }
            Op::Tick { advance } => {
                self.h.advance(u64::from(*advance) * 10).tick();
                self.settle();
            }
            Op::TurnEnd => {
                self.h.turn_end();
                self.settle();
            }
        }
    }

    /// Closes these slots in one turn (the client went away); Closed once each.
    fn close(&mut self, slots: &[u8]) {
        let mut ids = Vec::new();
        for &slot in slots {
            let (s, id) = self.id(slot);
            if self.state[s] != State::Free && !ids.contains(&id) {
                ids.push(id);
            }
        }
        self.finish(&ids);
    }

    fn finish(&mut self, ids: &[ConnId]) {
        if ids.is_empty() {
            return;
        }
        for id in ids {
            let s = id.slot as usize;
            self.state[s] = State::Free;
            self.generation[s] += 1;
        }
        self.h.close_together(ids);
        self.settle();
    }

    /// Checks the effects so far, then plays what the reactor would do next: remote
    /// messages in order, Closed for the connections the app closed.
    fn settle(&mut self) {
        let mut closed = Vec::new();
        // Posts can answer posts; the bound keeps a ping-pong bug from hanging the fuzzer.
        for _ in 0..10_000 {
            for e in self.h.take_effects() {
                self.check(e, &mut closed);
            }
            let Some(msg) = self.remote.pop_front() else {
                break;
            };
            self.h.event(Event::Remote(msg));
        }
        closed.retain(|id| self.live(*id, State::Ws));
        closed.dedup();
        if !closed.is_empty() {
            self.finish(&closed);
        }
    }

    fn check(&mut self, e: Effect<A::Msg>, closed: &mut Vec<ConnId>) {
        match e {
            Effect::FanOut { .. } => unreachable!("the harness hands fan-outs over as sends"),
            Effect::Send(to, f) | Effect::SendLatest(to, f) => {
                assert!(
                    self.live(to, State::Ws),
                    "send to a socket that is not open: {to:?}"
                );
                if let Some(text) = check_frame(&f) {
                    remember_sid(&mut self.sid, text);
                }
            }
            Effect::Close(to, code) => {
                assert!(
                    self.live(to, State::Ws),
                    "close of a socket that is not open: {to:?}"
                );
                if let Some((code, reason)) = code {
                    assert!(
                        sendable_close_code(code),
                        "close code {code} cannot be sent"
                    );
                    assert!(reason.len() <= 123, "close reason over 123 bytes");
                }
                closed.push(to);
            }
            Effect::Respond(to, r) => {
                assert!(self.live(to, State::Http), "answer to no request: {to:?}");
                let s = to.slot as usize;
                self.state[s] = State::Free;
                self.generation[s] += 1;
                if let Ok(body) = std::str::from_utf8(&r.body) {
                    remember_sid(&mut self.sid, body);
                }
                let _ = r.to_bytes();
            }
            Effect::Pipe(a, b) => {
                assert!(a != b, "a socket piped to itself");
                assert!(
                    self.live(a, State::Ws) && self.live(b, State::Ws),
                    "pipe of a closed socket"
                );
            }
            Effect::Post(r, m) => {
                assert_eq!(r, 0, "post to a reactor that does not exist");
                self.remote.push_back(m);
            }
        }
    }

    fn run(&mut self, data: &[u8]) {
        let mut u = Unstructured::new(data);
        for _ in 0..256 {
            let Ok(op) = Op::arbitrary(&mut u) else { break };
            self.op(&op);
            if u.is_empty() {
                break;
            }
        }
        self.h.event(Event::Shutdown);
        self.settle();
        let all: Vec<u8> = (0..SLOTS as u8).collect();
        self.close(&all);
    }
}

/// The text of a well-formed, final, unmasked server frame (`None` for other opcodes).
fn check_frame(f: &[u8]) -> Option<&str> {
    assert!(f.len() >= 2, "frame shorter than its header");
    assert_eq!(f[0] & 0xF0, 0x80, "FIN set, no RSV bits");
    assert_eq!(f[1] & 0x80, 0, "server frames are unmasked");
    let (start, len) = match f[1] {
        126 => (4, usize::from(u16::from_be_bytes([f[2], f[3]]))),
        127 => (
            10,
            u64::from_be_bytes(f[2..10].try_into().expect("8 bytes")) as usize,
        ),
        n => (2, usize::from(n)),
    };
    assert_eq!(f.len(), start + len, "frame length matches its header");
    let payload = &f[start..];
    match f[0] & 0x0F {
        frame::OP_TEXT => Some(std::str::from_utf8(payload).expect("text frames hold UTF-8")),
        frame::OP_BINARY => None,
        op => panic!("apps send only data frames, got opcode {op}"),
    }
}

/// Close codes an endpoint may put on the wire (RFC 6455 7.4).
fn sendable_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

fn remember_sid(sid: &mut String, text: &str) {
    if let Some((_, rest)) = text.split_once(r#""sid":""#)
        && let Some((s, _)) = rest.split_once('"')
    {
        *sid = s.to_string();
    }
}

/// Op sequences against one app, chosen by the first byte.
pub fn app_ops(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let cfg = config();
    match which % 7 {
        0 => {
            let app = apps::pester::Pester::new(0, 1, &cfg.pester_opts, [1, 2]);
            Driver::new(AppKind::Pester, app).run(rest);
        }
        1 => Driver::new(
            AppKind::Session,
            apps::session::Session::new(&cfg.session_settings),
        )
        .run(rest),
        2 => {
            let sink = Box::new(apps::rooms::store::NullSink);
            let app = apps::rooms::Rooms::new(&cfg.rooms_opts, HashMap::new(), sink, [7; 32]);
            Driver::new(AppKind::Rooms, app).run(rest);
        }
        3 => Driver::new(AppKind::Pair, apps::pair::Pair::new(0, 1)).run(rest),
        4 => Driver::new(
            AppKind::Signal,
            apps::signal::Signal::new(cfg.signal_limits.clone()),
        )
        .run(rest),
        5 => Driver::new(AppKind::Echo, apps::echo::Echo).run(rest),
        _ => Driver::new(AppKind::Bench, apps::bench::Bench::default()).run(rest),
    }
}

/// One session member's chat line (text if UTF-8, else binary) into a room of two.
pub(crate) fn session_line(data: &[u8]) {
    let cfg = config();
    let mut d = Driver::new(
        AppKind::Session,
        apps::session::Session::new(&cfg.session_settings),
    );
    d.op(&Op::Open {
        slot: 0,
        target: Target::Known(0),
    });
    d.op(&Op::Open {
        slot: 1,
        target: Target::Known(1),
    });
    d.op(&Op::TurnEnd);
    assert_eq!(d.state[..2], [State::Ws, State::Ws], "both members joined");
    match std::str::from_utf8(data) {
        Ok(text) => d.op(&Op::Text {
            slot: 0,
            body: Body::Raw(text.into()),
        }),
        Err(_) => d.op(&Op::Binary {
            slot: 0,
            data: data.to_vec(),
        }),
    }
    d.op(&Op::TurnEnd);
}

#[derive(Arbitrary, Debug)]
enum RouterOp {
    Insert {
        slot: u8,
        generation: u8,
        value: u16,
    },
    Remove {
        slot: u8,
        generation: u8,
    },
    Get {
        slot: u8,
        generation: u8,
    },
    Join {
        slot: u8,
        room: u8,
    },
    Leave {
        slot: u8,
    },
    Publish {
        slot: u8,
        data: Vec<u8>,
    },
}

/// `ConnTable` against a map, `owner_of` in range, and the bench room fan-out against a
/// membership model: a publish reaches exactly the other members of the sender's room.
pub fn router_ops(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let mut table = ConnTable::new();
    let mut model: HashMap<u32, (u32, u16)> = HashMap::new();
    let mut bench = Driver::new(AppKind::Bench, apps::bench::Bench::default());
    let mut rooms: HashMap<ConnId, u8> = HashMap::new();
    for _ in 0..512 {
        let Ok(op) = RouterOp::arbitrary(&mut u) else {
            break;
        };
        match op {
            RouterOp::Insert {
                slot,
                generation,
                value,
            } => {
                let (s, g) = (u32::from(slot % 32), u32::from(generation % 4));
                table.insert(ConnId::new(0, s, g), value);
                model.insert(s, (g, value));
            }
            RouterOp::Remove { slot, generation } => {
                let (s, g) = (u32::from(slot % 32), u32::from(generation % 4));
                let want = match model.get(&s) {
                    Some(&(mg, v)) if mg == g => model.remove(&s).map(|_| v),
                    _ => None,
                };
                assert_eq!(table.remove(ConnId::new(0, s, g)), want);
            }
            RouterOp::Get { slot, generation } => {
                let (s, g) = (u32::from(slot % 32), u32::from(generation % 4));
                let want = model.get(&s).filter(|(mg, _)| *mg == g).map(|(_, v)| v);
                assert_eq!(table.get(ConnId::new(0, s, g)), want);
            }
            RouterOp::Join { slot, room } => {
                let (s, id) = bench.id(slot);
                if bench.state[s] == State::Free {
                    let room = room % 3;
                    bench.op(&Op::Open {
                        slot,
                        target: Target::Raw(format!("/?room={room}")),
                    });
                    rooms.insert(id, room);
                    for n in 1..8 {
                        assert!(owner_of(room.to_string().as_bytes(), n) < n);
                    }
                }
            }
            RouterOp::Leave { slot } => {
                let (_, id) = bench.id(slot);
                rooms.remove(&id);
                bench.op(&Op::Close { slot });
            }
            RouterOp::Publish { slot, data } => {
                let (s, from) = bench.id(slot);
                if bench.state[s] != State::Ws {
                    continue;
                }
                bench.h.binary(from, &data);
                let mut got: Vec<ConnId> = bench
                    .h
                    .take_effects()
                    .into_iter()
                    .map(|e| match e {
                        Effect::Send(to, f) => {
                            assert_eq!(f, frame::binary(&data), "relayed unchanged");
                            to
                        }
                        other => panic!("bench only sends, got {other:?}"),
                    })
                    .collect();
                let mut want: Vec<ConnId> = rooms
                    .iter()
                    .filter(|(c, r)| **c != from && Some(*r) == rooms.get(&from))
                    .map(|(c, _)| *c)
                    .collect();
                got.sort();
                want.sort();
                assert_eq!(got, want, "a publish reaches exactly the other members");
            }
        }
        assert_eq!(table.len(), model.len());
        assert_eq!(table.iter(0).count(), model.len());
    }
}
