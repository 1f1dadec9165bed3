//! session end to end over real sockets (session.md SES-*), with one reactor and with four.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;
use switchboard::apps::session::jwt::{self, Alg};
use switchboard::config::{AppKind, Config, Secret};
use switchboard::server::Server;
use tungstenite::Message;

const KEY: &str = "e2e-secret-0123456789abcdef-0123456789";

fn server_with(threads: usize, tweak: impl FnOnce(&mut Config)) -> Server {
    let mut c = config(threads, &[AppKind::Session]);
    c.session_settings.jwt_secret = Some(Secret::from(KEY.to_string()));
    tweak(&mut c);
    start(c)
}

fn server(threads: usize) -> Server {
    server_with(threads, |_| {})
}

fn now() -> u64 {
    switchboard::apps::session::unix_now()
}

fn token(user: &str, room: &str, addr: SocketAddr) -> String {
    jwt::mint(user, room, &addr.to_string(), now(), 0, KEY.as_bytes())
}

fn join(addr: SocketAddr, user: &str, room: &str) -> Client {
    Client::connect(addr, &format!("/?token={}", token(user, room, addr)))
}

fn text(c: &mut Client) -> String {
    match c.recv() {
        Message::Text(t) => t.to_string(),
        other => panic!("expected a snapshot, got {other:?}"),
    }
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

/// Reads snapshots until one satisfies `done` (bounded by the read deadline).
fn until(c: &mut Client, mut done: impl FnMut(&serde_json::Value) -> bool) -> String {
    let start = Instant::now();
    while start.elapsed() < DEADLINE {
        let s = text(c);
        if done(&json(&s)) {
            return s;
        }
    }
    panic!("no matching snapshot before the deadline");
}

fn msgs(v: &serde_json::Value) -> Vec<String> {
    v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["msg"].as_str().unwrap().to_string())
        .collect()
}

/// A raw upgrade request; returns the whole answer.
fn upgrade(addr: SocketAddr, target: &str) -> String {
    http(
        addr,
        &format!(
            "GET {target} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        ),
    )
}

fn assert_401(addr: SocketAddr, target: &str, body: &str) {
    let r = upgrade(addr, target);
    assert!(
        r.starts_with("HTTP/1.1 401 Unauthorized\r\n"),
        "{target}: {r}"
    );
    assert!(
        r.contains("\r\nContent-Type: text/plain; charset=utf-8\r\n"),
        "{r}"
    );
    assert!(r.contains("\r\nWWW-Authenticate: Bearer\r\n"), "{r}");
    assert!(r.ends_with(&format!("\r\n\r\n{body}")), "{target}: {r}");
    assert!(!r.contains("101 Switching"));
}

/// `YYYY-MM-DDTHH:MM:SS.sssZ`, within a minute of now.
fn assert_iso_now(ts: &str) {
    let b = ts.as_bytes();
    assert_eq!(b.len(), 24, "{ts}");
    for (i, &c) in b.iter().enumerate() {
        let want_digit = !matches!(i, 4 | 7 | 10 | 13 | 16 | 19 | 23);
        assert_eq!(c.is_ascii_digit(), want_digit, "{ts}");
    }
    assert_eq!(
        (b[4], b[7], b[10], b[13], b[16], b[19], b[23]),
        (b'-', b'-', b'T', b':', b':', b'.', b'Z')
    );
    let mut mine = String::new();
    switchboard::apps::session::snapshot::iso_millis(now() * 1000, &mut mine);
    assert_eq!(
        &ts[..15],
        &mine[..15],
        "same ten minutes as the test's clock"
    );
}

#[test]
fn ses_01_to_03_exact_snapshot_json() {
    for threads in [1, 4] {
        let s = server(threads);
        let addr = s.addr(AppKind::Session).unwrap();
        let mut a = join(addr, "alice", "r1");
        assert_eq!(
            text(&mut a),
            r#"{"messages":[],"connectedUsers":["alice"]}"#
        );
        let mut b = join(addr, "bob", "r1");
        let both = r#"{"messages":[],"connectedUsers":["alice","bob"]}"#;
        assert_eq!(text(&mut b), both);
        assert_eq!(text(&mut a), both);
        a.send_text("Hello, world!");
        let got = text(&mut a);
        assert_eq!(text(&mut b), got, "the same bytes to every member");
        let prefix = r#"{"messages":[{"userId":"alice","msg":"Hello, world!","ts":""#;
        let suffix = r#""}],"connectedUsers":["alice","bob"]}"#;
        assert!(got.starts_with(prefix) && got.ends_with(suffix), "{got}");
        assert_iso_now(&got[prefix.len()..got.len() - suffix.len()]);
        // SES-04 over the wire: binary frames are lossy UTF-8 text.
        b.send_binary(&[0x68, 0x69, 0xff]);
        let got = text(&mut a);
        assert!(got.contains("\"msg\":\"hi\u{FFFD}\""), "{got}");
        // SES-09: bob leaves.
        b.close();
        let got = text(&mut a);
        assert!(got.ends_with(r#""connectedUsers":["alice"]}"#), "{got}");
        s.stop(DEADLINE).unwrap();
    }
}

#[test]
fn ses_06_rolling_window_past_100() {
    for threads in [1, 4] {
        let s = server(threads);
        let addr = s.addr(AppKind::Session).unwrap();
        let mut a = join(addr, "alice", "r1");
        text(&mut a);
        for i in 0..105 {
            a.send_text(&format!("m{i}"));
        }
        let last = until(&mut a, |v| {
            msgs(v).last().map(String::as_str) == Some("m104")
        });
        let want: Vec<String> = (5..105).map(|i| format!("m{i}")).collect();
        assert_eq!(msgs(&json(&last)), want);
        a.send_text("m105");
        let last = until(&mut a, |v| {
            msgs(v).last().map(String::as_str) == Some("m105")
        });
        let want: Vec<String> = (6..106).map(|i| format!("m{i}")).collect();
        assert_eq!(msgs(&json(&last)), want);
        s.stop(DEADLINE).unwrap();
    }
}

#[test]
fn ses_07_duplicate_rejected_first_keeps_working() {
    for threads in [1, 4] {
        let s = server(threads);
        let addr = s.addr(AppKind::Session).unwrap();
        let mut a = join(addr, "alice", "r1");
        text(&mut a);
        let mut b = join(addr, "bob", "r1");
        text(&mut b);
        text(&mut a);
        let mut a2 = join(addr, "alice", "r1");
        assert_eq!(a2.expect_close(), (1008, "Duplicate user".into()));
        a.expect_silence(100);
        b.expect_silence(10);
        b.send_text("after duplicate");
        for c in [&mut a, &mut b] {
            let got = text(c);
            assert!(got.contains(r#""msg":"after duplicate""#), "{got}");
            assert!(
                got.ends_with(r#""connectedUsers":["alice","bob"]}"#),
                "{got}"
            );
        }
        a.send_text("still here");
        assert!(text(&mut b).contains("still here"));
        s.stop(DEADLINE).unwrap();
    }
}

#[test]
fn ses_08_hundred_members_then_room_full() {
    let s = server(4);
    let addr = s.addr(AppKind::Session).unwrap();
    let mut members: Vec<Client> = (0..100)
        .map(|i| {
            let mut c = join(addr, &format!("u{i}"), "big");
            let v = json(&text(&mut c));
            assert_eq!(v["connectedUsers"].as_array().unwrap().len(), i + 1);
            c
        })
        .collect();
    let mut extra = join(addr, "u100", "big");
    assert_eq!(extra.expect_close(), (1008, "Room is full".into()));
    // The room still works: the first member's latest snapshot lists all 100.
    members[99].send_text("hello");
    let got = until(&mut members[0], |v| msgs(v) == ["hello"]);
    assert_eq!(json(&got)["connectedUsers"].as_array().unwrap().len(), 100);
    s.stop(DEADLINE).unwrap();
}

#[test]
fn ses_10_query_forms() {
    let s = server(4);
    let addr = s.addr(AppKind::Session).unwrap();
    let t = token("alice", "q", addr);
    let enc: String = t.replace('.', "%2E");
    for (i, target) in [
        format!("/?token={t}&a=1"),
        format!("/?a=1&token={t}"),
        format!("/some/where?token={t}"),
        format!("/?token={enc}"),
    ]
    .iter()
    .enumerate()
    {
        let mut c = Client::connect(addr, target);
        assert!(text(&mut c).contains("alice"), "{i}");
        c.close();
    }
    assert_401(addr, &format!("/?xtoken={t}"), "missing token");
    assert_401(addr, "/", "missing token");
    s.stop(DEADLINE).unwrap();
}

#[test]
fn ses_11_jwt_matrix_gets_401_before_the_upgrade() {
    let s = server(2);
    let addr = s.addr(AppKind::Session).unwrap();
    for (name, t) in tokens::bad_tokens(addr, KEY.as_bytes()) {
        if name == "8193 bytes" {
            assert_eq!(t.len(), 8193);
        }
        let r = upgrade(addr, &format!("/?token={t}"));
        assert!(
            r.starts_with("HTTP/1.1 401 Unauthorized\r\n") && r.ends_with("\r\n\r\ninvalid token"),
            "{name}: {r}"
        );
    }
    // The cap is exact: 8192 bytes pass.
    let t = tokens::sized_token(&addr.to_string(), 8192, KEY.as_bytes());
    let mut c = Client::connect(addr, &format!("/?token={t}"));
    assert!(text(&mut c).contains("big"));
    // The good token still works afterwards.
    let mut c = join(addr, "alice", "r1");
    assert!(text(&mut c).contains("alice"));
    s.stop(DEADLINE).unwrap();
}

#[test]
fn ses_12_to_15_reasons_over_the_wire() {
    let s = server_with(1, |c| c.session_settings.jwt_leeway_secs = 0);
    let addr = s.addr(AppKind::Session).unwrap();
    let h = addr.to_string();
    let sign = |p: String| jwt::sign(Alg::HS256, r#"{"alg":"HS256"}"#, &p, KEY.as_bytes());
    let exp = sign(format!(
        r#"{{"userId":"a","roomId":"r","host":"{h}","exp":{}}}"#,
        now() - 1
    ));
    assert_401(addr, &format!("/?token={exp}"), "token expired");
    let nbf = sign(format!(
        r#"{{"userId":"a","roomId":"r","host":"{h}","nbf":{}}}"#,
        now() + 10
    ));
    assert_401(addr, &format!("/?token={nbf}"), "token not yet valid");
    let no_user = sign(format!(r#"{{"roomId":"r","host":"{h}"}}"#));
    assert_401(addr, &format!("/?token={no_user}"), "invalid token");
    let other = sign(r#"{"userId":"a","roomId":"r","host":"localhost:1"}"#.into());
    assert_401(addr, &format!("/?token={other}"), "host mismatch");
    s.stop(DEADLINE).unwrap();
    let s = server_with(1, |c| c.session_settings.check_host = false);
    let addr = s.addr(AppKind::Session).unwrap();
    let mut c = Client::connect(addr, &format!("/?token={other}"));
    assert!(text(&mut c).contains(r#"["a"]"#));
    s.stop(DEADLINE).unwrap();
}

#[test]
fn ses_17_plain_http_gets_426() {
    let s = server(1);
    let r = get(s.addr(AppKind::Session).unwrap(), "/?token=x");
    assert!(r.starts_with("HTTP/1.1 426 Upgrade Required\r\n"), "{r}");
    assert!(r.contains("\r\nContent-Type: text/plain\r\n"), "{r}");
    assert!(r.ends_with("\r\n\r\nUpgrade Required"), "{r}");
    s.stop(DEADLINE).unwrap();
}

#[test]
fn ses_21_oversize_closes_1009_others_unaffected() {
    for threads in [1, 4] {
        let s = server(threads);
        let addr = s.addr(AppKind::Session).unwrap();
        let mut a = join(addr, "alice", "r1");
        text(&mut a);
        let mut b = join(addr, "bob", "r1");
        text(&mut b);
        text(&mut a);
        b.send_text(&"x".repeat(65537));
        assert_eq!(b.expect_close(), (1009, "Message too big".into()));
        let got = text(&mut a);
        assert!(got.ends_with(r#""connectedUsers":["alice"]}"#), "{got}");
        a.send_text(&"y".repeat(1000));
        assert!(text(&mut a).contains(&"y".repeat(1000)));
        s.stop(DEADLINE).unwrap();
    }
}

#[test]
fn ses_22_rooms_on_different_reactors_are_isolated() {
    let s = server(4);
    let addr = s.addr(AppKind::Session).unwrap();
    let mut a1 = join(addr, "alice", "r1");
    text(&mut a1);
    let mut a2 = join(addr, "alice", "r2");
    text(&mut a2);
    a1.send_text("r1 only");
    assert!(text(&mut a1).contains("r1 only"));
    a2.expect_silence(100);
    s.stop(DEADLINE).unwrap();
}

fn bin() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"));
    c.env_remove("PORT").env_remove("JWT_SECRET");
    c
}

#[test]
fn ses_24_token_subcommand_mints_accepted_tokens() {
    let s = server(2);
    let addr = s.addr(AppKind::Session).unwrap();
    let host = addr.to_string();
    let out = bin()
        .args(["token", "--user", "alice", "--room", "r1", "--host", &host])
        .env("JWT_SECRET", KEY)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let t = stdout.strip_suffix('\n').expect("one line");
    assert!(!t.contains('\n'));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr, format!("ws://{host}/?token={t}\n"));
    let payload = String::from_utf8(
        URL_SAFE_NO_PAD
            .decode(t.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    let keys: Vec<&str> = ["\"userId\"", "\"roomId\"", "\"host\"", "\"iat\"", "\"exp\""]
        .into_iter()
        .filter(|k| payload.contains(k))
        .collect();
    assert_eq!(keys.len(), 5, "{payload}");
    let pos: Vec<usize> = keys.iter().map(|k| payload.find(k).unwrap()).collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "key order: {payload}");
    let v = json(&payload);
    assert_eq!(
        v["exp"].as_u64().unwrap() - v["iat"].as_u64().unwrap(),
        86_400
    );
    let mut c = Client::connect(addr, &format!("/?token={t}"));
    assert_eq!(
        text(&mut c),
        r#"{"messages":[],"connectedUsers":["alice"]}"#
    );
    let out = bin()
        .args([
            "token", "--user", "bob", "--room", "r1", "--host", &host, "--ttl", "0",
        ])
        .env("JWT_SECRET", KEY)
        .output()
        .unwrap();
    let t = String::from_utf8(out.stdout).unwrap();
    let payload = URL_SAFE_NO_PAD
        .decode(t.trim().split('.').nth(1).unwrap())
        .unwrap();
    assert!(!String::from_utf8(payload).unwrap().contains("exp"));
    let mut b = Client::connect(addr, &format!("/?token={}", t.trim()));
    assert!(text(&mut b).ends_with(r#"["alice","bob"]}"#));
    let out = bin()
        .args(["token", "--user", "u", "--room", "r"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("JWT_SECRET"), "{err}");
    s.stop(DEADLINE).unwrap();
}

/// SES-16 and SES-25 share the spawned binary's log file, so they run in sequence.
#[test]
fn ses_16_and_25_logs_secrets_and_startup() {
    // The default app set (SES-25 is about it), every port 0: a default port may be held
    // by a developer's running server.
    let store = std::env::temp_dir()
        .join(format!("switchboard-ses25-{}.db", std::process::id()))
        .to_string_lossy()
        .into_owned();
    let args = [
        "--bind",
        "127.0.0.1",
        "--session-port",
        "0",
        "--pair-port",
        "0",
        "--pester-port",
        "0",
        "--rooms-port",
        "0",
        "--signal-port",
        "0",
        "--admin-port",
        "0",
        "--rooms-store-path",
        &store,
    ];
    // SES-25: no secret → pair runs, session does not, and the log says why.
    let p = Proc::spawn_env(&args, &[]);
    assert!(p.addrs.iter().all(|(k, _)| k != "session"), "{:?}", p.addrs);
    let mut c = Client::connect(p.addr("pair"), "/");
    c.expect_text(switchboard::apps::pair::WAITING);
    eventually("the reason in the log", || {
        p.log()
            .contains("session app not started: JWT_SECRET is not set")
    });
    drop(p);
    // A 16-byte secret: session serves, one warning.
    let p = Proc::spawn_env(&args, &[("JWT_SECRET", "0123456789abcdef")]);
    let addr = p.addr("session");
    let t = jwt::mint(
        "alice",
        "r1",
        &addr.to_string(),
        now(),
        60,
        b"0123456789abcdef",
    );
    let mut c = Client::connect(addr, &format!("/?token={t}"));
    assert!(text(&mut c).contains("alice"));
    let log = p.log();
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(warnings[0].contains("16 bytes") && warnings[0].contains("RFC 7518"));
    // SES-16: refused tokens never reach the log, nor any segment of them.
    let bad = jwt::mint(
        "mallory",
        "r1",
        &addr.to_string(),
        now(),
        60,
        b"a different secret",
    );
    let r = upgrade(addr, &format!("/?token={bad}&other=1"));
    assert!(r.starts_with("HTTP/1.1 401"), "{r}");
    let expired = jwt::mint(
        "eve",
        "r1",
        &addr.to_string(),
        now() - 100,
        1,
        b"0123456789abcdef",
    );
    assert!(upgrade(addr, &format!("/?token={expired}")).starts_with("HTTP/1.1 401"));
    eventually("two refusals logged", || {
        p.log().matches("session: token refused").count() == 2
    });
    let log = p.log();
    for t in [&bad, &expired] {
        for seg in t.split('.') {
            assert!(!log.contains(seg), "a token segment was logged:\n{log}");
        }
    }
    assert!(
        log.contains("token expired") && log.contains("127.0.0.1"),
        "{log}"
    );
    assert!(!log.contains("0123456789abcdef"), "the secret was logged");
    // And the accepted token is not logged either.
    assert!(!log.contains(t.split('.').nth(2).unwrap()));
    drop(p);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{store}{suffix}"));
    }
}

#[test]
fn snapshot_frame_bytes_on_the_wire() {
    let s = server(1);
    let addr = s.addr(AppKind::Session).unwrap();
    let mut raw = TcpStream::connect(addr).unwrap();
    raw.set_read_timeout(Some(DEADLINE)).unwrap();
    let t = token("raw", "sizes", addr);
    write!(
        raw,
        "GET /?token={t} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .unwrap();
    let mut buf = [0u8; 4096];
    let mut got = Vec::new();
    let start = Instant::now();
    while !got.windows(7).any(|w| w == b"\"raw\"]}") && start.elapsed() < DEADLINE {
        let n = raw.read(&mut buf).unwrap();
        assert!(n > 0, "closed early");
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    let snap = br#"{"messages":[],"connectedUsers":["raw"]}"#;
    let frame = [&[0x81, snap.len() as u8][..], snap].concat();
    assert!(got.ends_with(&frame), "{text}");
    s.stop(DEADLINE).unwrap();
}

/// A raw member: the socket after the 101 (reads are drained by a thread).
fn raw_member(addr: SocketAddr, user: &str, room: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    s.set_read_timeout(Some(DEADLINE * 6)).unwrap();
    let t = token(user, room, addr);
    write!(
        s,
        "GET /?token={t} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .unwrap();
    s
}

/// Reads until `marker` went by; returns the bytes read.
fn drain_until(mut s: TcpStream, marker: &[u8]) -> u64 {
    let mut buf = vec![0u8; 64 * 1024];
    let mut tail: Vec<u8> = Vec::new();
    let mut total = 0u64;
    loop {
        let n = s.read(&mut buf).expect("member reads until the marker");
        assert!(n > 0, "closed before the marker");
        total += n as u64;
        tail.extend_from_slice(&buf[..n]);
        if tail.windows(marker.len()).any(|w| w == marker) {
            return total;
        }
        let keep = tail.len().saturating_sub(marker.len());
        tail.drain(..keep);
    }
}

/// Closing-note numbers (run with `--ignored --nocapture`): a room of 100 members, 10 of
/// them sending messages as fast as they can, coalescing on and off.
#[test]
#[ignore = "measurement, not a check"]
fn measure_room_of_100_with_10_senders() {
    for coalesce in [true, false] {
        // Without coalescing each message costs ~750 KB of snapshots: keep that run short.
        let per_sender: usize = if coalesce { 1000 } else { 50 };
        let s = server_with(2, |c| {
            c.session_settings.coalesce_snapshots = coalesce;
            // Without coalescing every member must take every snapshot; do not cut a
            // lagging test reader as a slow consumer.
            c.max_outbound_bytes = 256 << 20;
        });
        let addr = s.addr(AppKind::Session).unwrap();
        let members: Vec<TcpStream> = (0..100)
            .map(|i| raw_member(addr, &format!("u{i}"), "bench"))
            .collect();
        // Let the joins settle: the last member sees itself listed.
        std::thread::sleep(std::time::Duration::from_millis(500));
        let marker = br#""msg":"ENDMARK""#;
        let start = Instant::now();
        let readers: Vec<_> = members
            .iter()
            .map(|m| {
                let m = m.try_clone().unwrap();
                std::thread::spawn(move || drain_until(m, marker))
            })
            .collect();
        let senders: Vec<_> = members[..10]
            .iter()
            .enumerate()
            .map(|(j, m)| {
                let mut m = m.try_clone().unwrap();
                std::thread::spawn(move || {
                    for k in 0..per_sender {
                        let f = masked_frame(1, format!("sender {j} message {k}").as_bytes());
                        m.write_all(&f).unwrap();
                    }
                })
            })
            .collect();
        for t in senders {
            t.join().unwrap();
        }
        let stats = &s.shared().stats;
        let service = switchboard::metrics::service_of(AppKind::Session);
        let total = 10 * per_sender as u64;
        let msgs_in = || -> u64 {
            stats
                .iter()
                .map(|r| {
                    r.services[service]
                        .messages_in
                        .load(std::sync::atomic::Ordering::Relaxed)
                })
                .sum()
        };
        eventually("every message read by the server", || msgs_in() >= total);
        let mut last = members[10].try_clone().unwrap();
        last.write_all(&masked_frame(1, b"ENDMARK")).unwrap();
        let bytes: u64 = readers.into_iter().map(|t| t.join().unwrap()).sum();
        let secs = start.elapsed().as_secs_f64();
        println!(
            "coalesce={coalesce}: {total} messages in {secs:.3} s = {:.0} msg/s; {} bytes to members, {:.0} bytes per accepted message",
            total as f64 / secs,
            bytes,
            bytes as f64 / (total + 1) as f64
        );
        drop(members);
        s.stop(DEADLINE).unwrap();
    }
}

/// A new room past `max_rooms` (per owner reactor) gets 503 before the upgrade; an
/// existing room still takes members.
#[test]
fn max_rooms_answers_503_before_the_upgrade() {
    let s = server_with(1, |c| c.session_settings.max_rooms = 1);
    let addr = s.addr(AppKind::Session).unwrap();
    let mut a = join(addr, "alice", "r1");
    text(&mut a);
    let answer = upgrade(addr, &format!("/?token={}", token("bob", "r2", addr)));
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    let mut c = join(addr, "carol", "r1");
    text(&mut c);
    s.stop(DEADLINE).unwrap();
}
