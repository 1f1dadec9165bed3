//! The bad-input matrix (issue 8, item 3), end to end over real sockets: each hostile
//! input gets its defined answer, and a pair of bystanders keeps relaying afterwards.
//!
//! Related single cases live next to their app: `tests/pair.rs` (PAR-14/15 limits and
//! UTF-8, slow reader RSS at the byte cap, SIGTERM drain with 1001), `tests/signal.rs`
//! (pipe back-pressure). The framing conformance in depth is Autobahn's
//! (`tests/autobahn/run.sh`); here each class of fault is checked once, with bystanders.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use switchboard::apps::pair::{CONNECTED, PARTNER_GONE, WAITING};
use switchboard::config::{AppKind, Config};
use switchboard::server::Server;
use tungstenite::Message;

const UPGRADE: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

fn server_with(threads: usize, apps: &[AppKind], tweak: impl FnOnce(&mut Config)) -> Server {
    let mut c = config(threads, apps);
    tweak(&mut c);
    start(c)
}

/// Two paired pair-app clients that must keep relaying whatever the others do.
struct Bystanders(Client, Client);

impl Bystanders {
    fn join(addr: SocketAddr) -> Bystanders {
        let mut a = connect_from(addr, "https://ok.example");
        a.expect_text(WAITING);
        let mut b = connect_from(addr, "https://ok.example");
        b.expect_text(CONNECTED);
        a.expect_text(CONNECTED);
        Bystanders(a, b)
    }

    fn check(&mut self, what: &str) {
        self.0.send_text(what);
        self.1.expect_text(what);
        self.1.send_text(what);
        self.0.expect_text(what);
    }
}

/// A client whose handshake carries `Origin: origin`.
fn connect_from(addr: SocketAddr, origin: &str) -> Client {
    use tungstenite::client::IntoClientRequest;
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut req = format!("ws://{addr}/").into_client_request().unwrap();
    req.headers_mut()
        .insert("Origin", origin.parse().expect("header value"));
    let (ws, _) = tungstenite::client::client(req, stream).expect("websocket handshake");
    Client { ws }
}

/// A raw socket upgraded on `path`, with the 101 head read.
fn raw_ws(addr: SocketAddr, path: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n{UPGRADE}\r\n").unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert!(head.len() < 4096, "head too long");
        s.read_exact(&mut byte).expect("101 head");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101 "), "{head:?}");
    s
}

/// One unmasked server frame: (fin, opcode, payload); `None` on EOF.
fn read_frame(s: &mut TcpStream) -> Option<(bool, u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).ok()?;
    let len = match h[1] & 0x7f {
        126 => {
            let mut l = [0u8; 2];
            s.read_exact(&mut l).ok()?;
            u16::from_be_bytes(l) as usize
        }
        127 => {
            let mut l = [0u8; 8];
            s.read_exact(&mut l).ok()?;
            u64::from_be_bytes(l) as usize
        }
        n => n as usize,
    };
    assert_eq!(h[1] & 0x80, 0, "server frames are unmasked");
    let mut payload = vec![0; len];
    s.read_exact(&mut payload).ok()?;
    Some((h[0] & 0x80 != 0, h[0] & 0x0f, payload))
}

/// Skips data and control frames until the server's Close; its code and reason.
fn read_close(s: &mut TcpStream) -> (u16, String) {
    for _ in 0..10_000 {
        let (_, op, payload) = read_frame(s).expect("a close frame before EOF");
        if op == 8 {
            if payload.len() < 2 {
                return (1005, String::new());
            }
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            return (code, String::from_utf8_lossy(&payload[2..]).into_owned());
        }
    }
    panic!("no close frame");
}

/// A masked frame with explicit first byte (FIN, RSV, opcode).
fn frame_b0(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = masked_frame(b0 & 0x0f, payload);
    f[0] = b0;
    f
}

/// Waits for EOF (or reset) on `s`, discarding what arrives; how long it took.
fn until_eof(s: &mut TcpStream, limit: Duration) -> Duration {
    let start = Instant::now();
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return start.elapsed(),
            Ok(_) => assert!(start.elapsed() < limit, "still open after {limit:?}"),
        }
    }
}

#[test]
fn handshake_faults_get_their_answers_and_bystanders_keep_relaying() {
    for threads in [1, 4] {
        let s = server_with(threads, &[AppKind::Pair, AppKind::Signal], |c| {
            c.max_header_bytes = 1024;
            c.max_headers = 16;
            c.allowed_origins = vec!["https://ok.example".into()];
        });
        let pair = s.addr(AppKind::Pair).unwrap();
        let signal = s.addr(AppKind::Signal).unwrap();
        let mut by = Bystanders::join(pair);
        let ok_origin = "Origin: https://ok.example\r\n";
        let cases: Vec<(&str, SocketAddr, String, &str)> = vec![
            (
                "non-GET",
                pair,
                format!("POST / HTTP/1.1\r\nHost: x\r\n{ok_origin}{UPGRADE}\r\n"),
                "HTTP/1.1 400 ",
            ),
            (
                "missing Upgrade",
                pair,
                format!("GET / HTTP/1.1\r\nHost: x\r\n{ok_origin}\r\n"),
                "HTTP/1.1 426 ",
            ),
            (
                "version 8",
                pair,
                format!(
                    "GET / HTTP/1.1\r\nHost: x\r\n{ok_origin}Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
                ),
                "HTTP/1.1 426 ",
            ),
            (
                "bad key",
                pair,
                format!(
                    "GET / HTTP/1.1\r\nHost: x\r\n{ok_origin}Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n\r\n"
                ),
                "HTTP/1.1 400 ",
            ),
            (
                "oversized head",
                pair,
                format!(
                    "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n{UPGRADE}\r\n",
                    "a".repeat(2000)
                ),
                "HTTP/1.1 431 ",
            ),
            (
                "too many headers",
                pair,
                format!(
                    "GET / HTTP/1.1\r\nHost: x\r\n{}{UPGRADE}\r\n",
                    "a: b\r\n".repeat(20)
                ),
                "HTTP/1.1 431 ",
            ),
            (
                "disallowed origin",
                pair,
                format!(
                    "GET / HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\n{UPGRADE}\r\n"
                ),
                "HTTP/1.1 403 ",
            ),
            (
                "unknown path",
                signal,
                format!("GET /nope HTTP/1.1\r\nHost: x\r\n{ok_origin}{UPGRADE}\r\n"),
                "HTTP/1.1 404 ",
            ),
            (
                "not HTTP at all",
                pair,
                "\x16\x03\x01\x02\x00\x01\x00\x01\x7c\x03\x03\r\n\r\n".to_string(),
                "HTTP/1.1 400 ",
            ),
        ];
        for (what, addr, req, want) in cases {
            let r = http(addr, &req);
            assert!(r.starts_with(want), "{what}: {r}");
            if what == "version 8" {
                assert!(r.contains("Sec-WebSocket-Version: 13\r\n"), "{r}");
            }
            by.check(what);
        }
        s.stop(DEADLINE).unwrap();
    }
}

#[test]
fn slowloris_drip_and_silent_connections_are_cut_at_the_handshake_deadline() {
    let s = server_with(1, &[AppKind::Pair], |c| c.handshake_timeout_ms = 600);
    let addr = s.addr(AppKind::Pair).unwrap();
    let mut by = Bystanders::join(addr);
    let mut silent = TcpStream::connect(addr).unwrap();
    let mut drip = TcpStream::connect(addr).unwrap();
    drip.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let start = Instant::now();
    let req = format!("GET / HTTP/1.1\r\nHost: x\r\n{UPGRADE}\r\n");
    // One byte every 50 ms: progress never extends the deadline.
    let mut answer = Vec::new();
    for b in req.bytes() {
        if drip.write_all(&[b]).is_err() {
            break;
        }
        let mut buf = [0u8; 512];
        match drip.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                break;
            }
            Err(_) => {}
        }
        assert!(start.elapsed() < Duration::from_secs(5), "drip never cut");
    }
    let _ = until_eof(&mut drip, DEADLINE);
    let dripped = start.elapsed();
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert!(
        dripped >= Duration::from_millis(500) && dripped < Duration::from_secs(3),
        "drip cut after {dripped:?}"
    );
    let waited = until_eof(&mut silent, DEADLINE);
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "silent: {waited:?}"
    );
    by.check("after slowloris");
    s.stop(DEADLINE).unwrap();
}

#[test]
fn per_ip_cap_answers_429_and_frees_on_close() {
    let s = server_with(2, &[AppKind::Pair], |c| c.max_connections_per_ip = 3);
    let addr = s.addr(AppKind::Pair).unwrap();
    let mut by = Bystanders::join(addr);
    let third = raw_ws(addr, "/");
    let r = http(addr, &format!("GET / HTTP/1.1\r\nHost: x\r\n{UPGRADE}\r\n"));
    assert!(r.starts_with("HTTP/1.1 429 "), "{r}");
    by.check("at the cap");
    drop(third);
    eventually("the slot to free", || {
        http(addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 426 ")
    });
    s.stop(DEADLINE).unwrap();
}

/// An upgrade attempt: the socket on `101`, `None` on any other answer.
fn try_ws(addr: SocketAddr, path: &str) -> Option<TcpStream> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n{UPGRADE}\r\n").unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 4096 {
        if s.read_exact(&mut byte).is_err() {
            break;
        }
        head.push(byte[0]);
    }
    head.starts_with(b"HTTP/1.1 101 ").then_some(s)
}

/// The per-IP count of a socket handed to its room's owner reactor (bench app, four
/// reactors) goes with it and is released there when it closes: with a cap of one, a
/// second upgrade is refused while one is open, and each room in turn can be joined.
#[test]
fn per_ip_count_follows_a_hand_off_and_frees_on_close() {
    let s = server_with(4, &[AppKind::Bench], |c| c.max_connections_per_ip = 1);
    let addr = s.addr(AppKind::Bench).unwrap();
    for room in ["a", "b", "c", "d", "e", "f", "g", "h"] {
        let path = format!("/?room={room}");
        let mut open = None;
        eventually("the previous upgrade's count to be released", || {
            open = try_ws(addr, &path);
            open.is_some()
        });
        let r = http(
            addr,
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\n{UPGRADE}\r\n"),
        );
        assert!(r.starts_with("HTTP/1.1 429 "), "{r}");
        drop(open);
    }
    s.stop(DEADLINE).unwrap();
}

#[test]
fn framing_faults_close_with_their_codes_and_bystanders_keep_relaying() {
    for threads in [1, 4] {
        let s = server_with(threads, &[AppKind::Pair, AppKind::Echo], |c| {
            c.echo.max_message_bytes = 1000;
        });
        let echo = s.addr(AppKind::Echo).unwrap();
        let mut by = Bystanders::join(s.addr(AppKind::Pair).unwrap());
        let mut unmasked = vec![0x81, 2];
        unmasked.extend_from_slice(b"hi");
        let mut huge_header = vec![0x82, 0x80 | 127];
        huge_header.extend_from_slice(&(1u64 << 62).to_be_bytes());
        huge_header.extend_from_slice(&[1, 2, 3, 4]);
        let mut fragmented_over = frame_b0(0x02, &[7; 600]);
        fragmented_over.extend(frame_b0(0x80, &[7; 600]));
        let mut fragmented_bad_utf8 = frame_b0(0x01, "h€".as_bytes().split_at(3).0);
        fragmented_bad_utf8.extend(frame_b0(0x80, &[0xff]));
        let mut continuation_alone = frame_b0(0x80, b"x");
        continuation_alone.extend(frame_b0(0x81, b"y"));
        let mut text_inside_fragment = frame_b0(0x01, b"a");
        text_inside_fragment.extend(frame_b0(0x81, b"b"));
        let close_with = |code: u16| masked_frame(8, &code.to_be_bytes());
        let cases: Vec<(&str, Vec<u8>, u16)> = vec![
            ("unmasked frame", unmasked, 1002),
            ("reserved data opcode 3", frame_b0(0x83, b"x"), 1002),
            ("reserved control opcode 11", frame_b0(0x8b, b"x"), 1002),
            ("RSV1 without an extension", frame_b0(0xc1, b"x"), 1002),
            ("RSV3", frame_b0(0x91, b"x"), 1002),
            ("fragmented ping", frame_b0(0x09, b"x"), 1002),
            ("ping over 125 bytes", masked_frame(9, &[0; 126]), 1002),
            ("continuation without a start", continuation_alone, 1002),
            (
                "new message inside a fragmented one",
                text_inside_fragment,
                1002,
            ),
            ("invalid UTF-8", masked_frame(1, &[b'h', 0xff]), 1007),
            ("invalid UTF-8 across fragments", fragmented_bad_utf8, 1007),
            ("close code 999", close_with(999), 1002),
            ("close code 1005", close_with(1005), 1002),
            ("close code 1016", close_with(1016), 1002),
            ("close code 5000", close_with(5000), 1002),
            ("close with a 1-byte payload", masked_frame(8, &[3]), 1002),
            ("message over the limit", masked_frame(2, &[7; 1001]), 1009),
            ("fragments over the limit", fragmented_over, 1009),
            ("a 2^62-byte frame header alone", huge_header, 1009),
        ];
        for (what, bytes, code) in cases {
            let mut c = raw_ws(echo, "/");
            // The connection works before the fault.
            c.write_all(&masked_frame(1, b"ok")).unwrap();
            assert_eq!(
                read_frame(&mut c),
                Some((true, 1, b"ok".to_vec())),
                "{what}"
            );
            c.write_all(&bytes).unwrap();
            assert_eq!(read_close(&mut c).0, code, "{what}");
            until_eof(&mut c, DEADLINE);
            by.check(what);
        }
        // Good close codes are echoed back.
        for code in [1000u16, 1001, 3000, 4999] {
            let mut c = raw_ws(echo, "/");
            c.write_all(&masked_frame(8, &code.to_be_bytes())).unwrap();
            assert_eq!(read_close(&mut c).0, code);
        }
        // The limit is exact: 1000 bytes pass.
        let mut c = raw_ws(echo, "/");
        c.write_all(&masked_frame(2, &[7; 1000])).unwrap();
        assert_eq!(read_frame(&mut c), Some((true, 2, vec![7; 1000])));
        s.stop(DEADLINE).unwrap();
    }
}

#[test]
fn a_peer_that_never_pongs_is_dropped_after_interval_plus_timeout() {
    let s = server_with(1, &[AppKind::Pair, AppKind::Echo], |c| {
        c.ws_ping_interval_ms = 1000;
        c.ws_pong_timeout_ms = 1000;
    });
    let mut by = Bystanders::join(s.addr(AppKind::Pair).unwrap());
    let mut mute = raw_ws(s.addr(AppKind::Echo).unwrap(), "/");
    // Never answers: reads (and ignores) the server's Pings until the TCP connection ends.
    // It only records: the main thread asserts, so a failure says what was seen.
    let watcher = std::thread::spawn(move || {
        let start = Instant::now();
        let mut ops = Vec::new();
        // Generous bounds: a loaded CI machine can delay the 1 s sweep.
        mute.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        while let Some((_, op, _)) = read_frame(&mut mute) {
            ops.push(op);
            if start.elapsed() > Duration::from_secs(10) {
                break;
            }
        }
        (ops, start.elapsed())
    });
    // The bystanders keep talking (any input counts as life).
    for i in 0..100 {
        if watcher.is_finished() {
            break;
        }
        by.check(&format!("alive {i}"));
        std::thread::sleep(Duration::from_millis(100));
    }
    let (ops, waited) = watcher.join().expect("the watcher only records");
    assert!(
        !ops.is_empty() && ops.iter().all(|&op| op == 9),
        "only Pings, then the drop without a Close; saw opcodes {ops:?} in {waited:?}"
    );
    // 2 s of silence, swept on the 1 s tick.
    assert!(
        waited >= Duration::from_millis(1900) && waited < Duration::from_millis(6000),
        "dropped after {waited:?} (opcodes {ops:?})"
    );
    by.check("after the mute peer");
    s.stop(DEADLINE).unwrap();
}

#[test]
fn a_socket_not_writable_past_the_stall_deadline_is_dropped() {
    let s = server_with(1, &[AppKind::Pair], |c| {
        c.write_stall_timeout_ms = 500;
        c.max_outbound_bytes = 256 << 20;
    });
    let addr = s.addr(AppKind::Pair).unwrap();
    let mut by = Bystanders::join(addr);
    let mut stuck = Client::connect(addr, "/");
    stuck.expect_text(WAITING);
    let mut sender = Client::connect(addr, "/");
    sender.expect_text(CONNECTED);
    stuck.expect_text(CONNECTED);
    // `stuck` never reads again; `sender` pushes until the server gives up on `stuck`.
    let chunk = "s".repeat(60_000);
    sender
        .ws
        .get_mut()
        .set_read_timeout(Some(Duration::from_millis(5)))
        .unwrap();
    let start = Instant::now();
    let mut gone = false;
    for _ in 0..2000 {
        sender.ws.write(Message::text(chunk.as_str())).unwrap();
        sender.ws.flush().unwrap();
        if let Ok(Message::Text(t)) = sender.ws.read() {
            assert_eq!(t.as_str(), PARTNER_GONE);
            gone = true;
            break;
        }
        if start.elapsed() > Duration::from_secs(8) {
            break;
        }
    }
    assert!(gone, "the stalled partner was never dropped");
    sender
        .ws
        .get_mut()
        .set_read_timeout(Some(DEADLINE))
        .unwrap();
    sender.expect_text(WAITING);
    by.check("after the stall");
    drop(stuck);
    s.stop(DEADLINE).unwrap();
}

#[test]
fn a_message_flood_is_closed_at_the_rate_limit_and_a_steady_client_is_not() {
    let s = server_with(2, &[AppKind::Pair, AppKind::Echo], |c| {
        c.max_messages_per_sec = 50;
    });
    let echo = s.addr(AppKind::Echo).unwrap();
    let mut by = Bystanders::join(s.addr(AppKind::Pair).unwrap());
    let mut flood = raw_ws(echo, "/");
    let burst: Vec<u8> = (0..200).flat_map(|_| masked_frame(1, b"f")).collect();
    flood.write_all(&burst).unwrap();
    assert_eq!(read_close(&mut flood), (1008, "Too many messages".into()));
    by.check("after the flood");
    // 30 messages a second for 2 s stays under the limit.
    let mut steady = Client::connect(echo, "/");
    for i in 0..60 {
        steady.send_text(&format!("{i}"));
        steady.expect_text(&format!("{i}"));
        std::thread::sleep(Duration::from_millis(33));
    }
    s.stop(DEADLINE).unwrap();
}

fn spawn(apps: &str, extra: &[&str]) -> Proc {
    let mut args = vec![
        "--apps",
        apps,
        "--bind",
        "127.0.0.1",
        "--admin-port",
        "0",
        "--threads",
        "2",
    ];
    let port_flags = ["--pair-port", "--bench-port", "--echo-port"];
    for (flag, app) in port_flags.iter().zip(["pair", "bench", "echo"]) {
        if apps.split(',').any(|a| a == app) {
            args.extend([*flag, "0"]);
        }
    }
    args.extend_from_slice(extra);
    Proc::spawn(&args)
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// A room member that never reads while another floods the room: closed 1008 at the byte
/// cap, RSS bounded, and the member that reads gets every message.
#[test]
fn a_reader_that_never_reads_is_cut_at_the_cap_and_the_room_is_unaffected() {
    let p = spawn("bench", &[]);
    let addr = p.addr("bench");
    let mut flooder = Client::connect(addr, "/?room=r");
    let mut reader = Client::connect(addr, "/?room=r");
    let mut sleeper = Client::connect(addr, "/?room=r");
    // Everyone is in the room before the flood.
    flooder.send_text("hello");
    reader.expect_text("hello");
    sleeper.expect_text("hello");
    let before = rss_kib(p.child.id());
    let chunk = "z".repeat(16 * 1024);
    // 32 MiB through the room in batches of 256 KiB, each read by `reader` before the next
    // (a reader that keeps up); `sleeper` never reads.
    for _ in 0..128 {
        for _ in 0..16 {
            flooder.ws.write(Message::text(chunk.as_str())).unwrap();
        }
        flooder.ws.flush().unwrap();
        for _ in 0..16 {
            match reader.recv() {
                Message::Text(t) => assert_eq!(t.len(), 16 * 1024),
                other => panic!("reader got {other:?}"),
            }
        }
    }
    let after = rss_kib(p.child.id());
    eprintln!("room flood: RSS {before} KiB before, {after} KiB after 32 MiB");
    assert!(
        after < before + 16 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    flooder.send_text("still here");
    reader.expect_text("still here");
    assert_eq!(sleeper.expect_close(), (1008, "Slow consumer".into()));
}

#[test]
fn ten_thousand_connect_close_cycles_leave_fds_and_rss_at_baseline() {
    let p = spawn("pair,echo", &[]);
    let (pid, echo) = (p.child.id(), p.addr("echo"));
    let mut by = Bystanders::join(p.addr("pair"));
    let cycle = |i: usize| {
        if i.is_multiple_of(2) {
            let mut c = Client::connect(echo, "/");
            c.send_text("x");
            c.expect_text("x");
            c.close();
        } else {
            // Abrupt: upgrade, then drop the TCP connection.
            drop(raw_ws(echo, "/"));
        }
    };
    for i in 0..500 {
        cycle(i);
    }
    let settle = |what: &str, want: usize| {
        eventually(what, || fd_count(pid) <= want);
    };
    let fds = fd_count(pid);
    let rss = rss_kib(pid);
    let start = Instant::now();
    for i in 0..10_000 {
        cycle(i);
    }
    let took = start.elapsed();
    settle("fds back at baseline", fds);
    let rss_after = rss_kib(pid);
    eprintln!(
        "churn: 10000 cycles in {took:?}; fds {fds} -> {}; RSS {rss} KiB -> {rss_after} KiB",
        fd_count(pid)
    );
    assert!(
        rss_after < rss + 4 * 1024,
        "RSS grew from {rss} KiB to {rss_after} KiB"
    );
    by.check("after the churn");
}

fn mute_peer(addr: SocketAddr) -> TcpStream {
    let s = raw_ws(addr, "/");
    s.set_read_timeout(None).unwrap();
    s
}

fn wait_exit(p: &mut Proc, limit: Duration) -> (std::process::ExitStatus, Duration) {
    let start = Instant::now();
    loop {
        if let Some(st) = p.child.try_wait().unwrap() {
            return (st, start.elapsed());
        }
        assert!(start.elapsed() < limit, "did not exit within {limit:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn sigterm_with_a_peer_that_never_answers_exits_at_the_grace_deadline() {
    let mut p = spawn(
        "echo",
        &["--shutdown-grace-ms", "1000", "--close-linger-ms", "20000"],
    );
    let _mute = mute_peer(p.addr("echo"));
    p.signal(libc::SIGTERM);
    let (status, took) = wait_exit(&mut p, Duration::from_secs(5));
    assert!(status.success(), "{status:?}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
        "exited after {took:?}"
    );
}

#[test]
fn a_second_signal_exits_at_once() {
    use std::os::unix::process::ExitStatusExt;
    let mut p = spawn(
        "echo",
        &["--shutdown-grace-ms", "20000", "--close-linger-ms", "20000"],
    );
    let _mute = mute_peer(p.addr("echo"));
    p.signal(libc::SIGTERM);
    let admin = p.addr("admin");
    eventually("draining", || get(admin, "/readyz").ends_with("draining"));
    p.signal(libc::SIGINT);
    let (status, took) = wait_exit(&mut p, Duration::from_secs(2));
    assert!(
        status.code() == Some(128 + libc::SIGINT) || status.signal() == Some(libc::SIGINT),
        "{status:?}"
    );
    assert!(took < Duration::from_millis(1000), "took {took:?}");
}
