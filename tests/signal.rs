//! signal end to end over real sockets (signal.md SIG-*), with one reactor and with four.

mod common;

use common::*;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use switchboard::apps::signal::wire::FISH_PAGE;
use switchboard::config::{AppKind, Config};
use switchboard::server::Server;
use tungstenite::Message;

fn server(threads: usize) -> Server {
    start(config(threads, &[AppKind::Signal]))
}

fn server_with(threads: usize, tweak: impl FnOnce(&mut Config)) -> Server {
    let mut c = config(threads, &[AppKind::Signal]);
    tweak(&mut c);
    start(c)
}

fn addr(s: &Server) -> SocketAddr {
    s.addr(AppKind::Signal).unwrap()
}

fn upgrade_head(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
}

fn join(c: &mut Client, keys: &[&str]) {
    c.send_text(&serde_json::json!({"type": "Join", "id": "ignored", "join": keys}).to_string());
}

/// The exact bytes, written out (serde_json's `json!` would sort the keys).
fn intro(id: &str, keys: &[&str]) -> String {
    format!(
        r#"{{"type":"Introduction","id":{},"keys":{}}}"#,
        serde_json::to_string(id).unwrap(),
        serde_json::to_string(keys).unwrap()
    )
}

/// Two piped clients: `local` opened first, `remote` paired with it.
fn piped(a: SocketAddr, key: &str) -> (Client, Client) {
    let local = Client::connect(a, &format!("/connection/local/remote/{key}"));
    let remote = Client::connect(a, &format!("/connection/remote/local/{key}"));
    (local, remote)
}

/// Reads until the server's close (or EOF), failing on any data frame.
fn expect_no_data_until_end(c: &mut Client) {
    let start = Instant::now();
    while start.elapsed() < DEADLINE {
        match c.ws.read() {
            Ok(Message::Text(t)) => panic!("unexpected text {t:?}"),
            Ok(Message::Binary(b)) => panic!("unexpected binary {b:?}"),
            Ok(_) => {}
            Err(_) => return,
        }
    }
    panic!("the connection never ended");
}

#[test]
fn sig_01_fish_page_and_404() {
    let s = server(1);
    let r = get(addr(&s), "/");
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert!(
        r.contains("Content-Type: text/html; charset=utf-8\r\n"),
        "{r}"
    );
    assert!(r.ends_with(&format!("\r\n\r\n{FISH_PAGE}")), "{r}");
    let r = get(addr(&s), "/x");
    assert!(r.starts_with("HTTP/1.1 404 Not Found\r\n"), "{r}");
    assert!(r.ends_with("\r\n\r\nNot Found"), "{r}");
}

#[test]
fn sig_02_unknown_websocket_paths_are_refused_before_the_upgrade() {
    let s = server(1);
    for path in [
        "/connect/qrst7890",
        "/connection/qrst7890",
        "/introduction",
        "/foo",
    ] {
        let r = http(addr(&s), &upgrade_head(path));
        assert!(r.starts_with("HTTP/1.1 404 "), "{path}: {r}");
    }
    let r = http(addr(&s), &upgrade_head("/introduction/%zz"));
    assert!(r.starts_with("HTTP/1.1 400 "), "{r}");
    // The server still works.
    let mut c = Client::connect(addr(&s), "/introduction/ok?x=1");
    c.ws.send(Message::Ping(vec![1].into())).unwrap();
    c.expect_silence(50);
}

/// SIG-29: the original's own cases, restated.
#[test]
fn sig_29_originals_cases() {
    for threads in [1, 4] {
        let s = server(threads);
        let a = addr(&s);
        // The introduction connection registers the peer; two peers joining a key are
        // introduced to each other with that key.
        let mut local = Client::connect(a, "/introduction/aaaa4242");
        let mut remote = Client::connect(a, "/introduction/qrst7890");
        join(&mut local, &["happy-raccoon"]);
        // A Ping round trip: the server has handled the Join before the next one.
        local.ws.send(Message::Ping(vec![].into())).unwrap();
        local.expect_silence(100);
        join(&mut remote, &["happy-raccoon"]);
        remote.expect_text(&intro("aaaa4242", &["happy-raccoon"]));
        local.expect_text(&intro("qrst7890", &["happy-raccoon"]));
        // Piping both ways, `DUDE!!` sent as soon as local's socket opens.
        let mut l = Client::connect(a, "/connection/aaaa4242/qrst7890/happy-raccoon");
        l.send_text("DUDE!!");
        let mut r = Client::connect(a, "/connection/qrst7890/aaaa4242/happy-raccoon");
        r.expect_text("DUDE!!");
        r.send_text("hello");
        l.expect_text("hello");
        l.close();
        assert_eq!(r.expect_close().0, 1005);
        s.stop(DEADLINE).unwrap();
    }
}

#[test]
fn sig_29_five_peers_yield_exactly_twenty_introductions() {
    for threads in [1, 4] {
        let s = server(threads);
        let mut peers: Vec<Client> = (0..5)
            .map(|i| Client::connect(addr(&s), &format!("/introduction/peer-{i}")))
            .collect();
        for p in &mut peers {
            join(p, &["doc"]);
        }
        // Each peer hears of each of the four others at least once (later Joins may
        // repeat an Introduction: the total over all peers is 20 exactly).
        let mut total = 0;
        for (i, p) in peers.iter_mut().enumerate() {
            let mut heard = std::collections::BTreeSet::new();
            while heard.len() < 4 {
                match p.recv() {
                    Message::Text(t) => {
                        let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                        assert_eq!(v["type"], "Introduction");
                        assert_eq!(v["keys"], serde_json::json!(["doc"]));
                        let id = v["id"].as_str().unwrap().to_string();
                        assert_ne!(id, format!("peer-{i}"));
                        heard.insert(id);
                        total += 1;
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
        for p in &mut peers {
            p.expect_silence(100);
        }
        assert_eq!(total, 20);
        s.stop(DEADLINE).unwrap();
    }
}

#[test]
fn sig_16_held_frames_keep_order_and_opcodes_then_pipe_both_ways() {
    for threads in [1, 4] {
        let s = server(threads);
        let a = addr(&s);
        let mut first = Client::connect(a, "/connection/aaaa4242/qrst7890/happy-raccoon");
        first.send_text("held-1");
        first.send_binary(&[1, 2, 3]);
        let mut second = Client::connect(a, "/connection/qrst7890/aaaa4242/happy-raccoon");
        second.expect_text("held-1");
        assert_eq!(second.recv(), Message::binary(vec![1, 2, 3]));
        for i in 0..20u8 {
            second.send_binary(&[i, 0xff]);
            second.send_text(&format!("t{i}"));
            first.send_text(&format!("f{i}"));
        }
        for i in 0..20u8 {
            assert_eq!(first.recv(), Message::binary(vec![i, 0xff]));
            first.expect_text(&format!("t{i}"));
            second.expect_text(&format!("f{i}"));
        }
        s.stop(DEADLINE).unwrap();
    }
}

#[test]
fn sig_17_send_then_close_delivers_then_closes_and_nothing_flows_back() {
    for threads in [1, 4] {
        let s = server(threads);
        let (mut local, mut remote) = piped(addr(&s), "k17");
        // One write with both frames: the server reads them in one go.
        local.ws.write(Message::text("DUDE!!")).unwrap();
        local.ws.close(None).unwrap();
        let _ = local.ws.flush();
        remote.expect_text("DUDE!!");
        remote.send_text("hello");
        assert_eq!(remote.expect_close(), (1005, String::new()));
        expect_no_data_until_end(&mut local);
        s.stop(DEADLINE).unwrap();
    }
}

#[test]
fn sig_25_pings_are_answered_per_connection_and_never_forwarded() {
    let s = server(4);
    let (mut local, mut remote) = piped(addr(&s), "k25");
    remote.ws.send(Message::Ping(b"p".to_vec().into())).unwrap();
    loop {
        match remote.ws.read().unwrap() {
            Message::Pong(p) => {
                assert_eq!(&p[..], b"p");
                break;
            }
            Message::Ping(_) => {}
            other => panic!("{other:?}"),
        }
    }
    local.expect_silence(200);
    remote.send_text("after");
    local.expect_text("after");
}

#[test]
fn sig_26_limits_close_1009_and_the_partner_too() {
    for threads in [1, 4] {
        let s = server(threads);
        let a = addr(&s);
        let mut p = Client::connect(a, "/introduction/big");
        p.send_text(&format!(r#"{{"join":["{}"]}}"#, "x".repeat(65537 - 13)));
        assert_eq!(p.expect_close(), (1009, "Message too big".into()));
        let (mut local, mut remote) = piped(a, "k26");
        let max = vec![7u8; 16 << 20];
        local.send_binary(&max);
        assert_eq!(remote.recv(), Message::binary(max));
        let _ = local.ws.send(Message::binary(vec![7u8; (16 << 20) + 1]));
        assert_eq!(local.expect_close(), (1009, "Message too big".into()));
        assert_eq!(remote.expect_close().0, 1005);
        s.stop(DEADLINE).unwrap();
    }
}

#[test]
fn sig_15_a_closed_peer_is_never_introduced_after_its_close_completed() {
    for threads in [1, 4] {
        let s = server(threads);
        let a = addr(&s);
        let mut stay = Client::connect(a, "/introduction/stay");
        join(&mut stay, &["k"]);
        for _round in 0..20 {
            let mut gone = Client::connect(a, "/introduction/gone");
            join(&mut gone, &["k"]);
            gone.expect_text(&intro("stay", &["k"]));
            stay.expect_text(&intro("gone", &["k"]));
            // Returns once the closing handshake completed (the server's reply and EOF).
            gone.close();
            join(&mut stay, &["k"]);
            stay.expect_silence(30);
        }
        s.stop(DEADLINE).unwrap();
    }
}

#[test]
fn sig_20_23_24_pairing_rules_over_sockets() {
    let s = server(4);
    let a = addr(&s);
    let mut x = Client::connect(a, "/connection/a/b%3Ac/k");
    let mut y = Client::connect(a, "/connection/c/a:b/k");
    x.send_text("to-nobody");
    y.expect_silence(100);
    let mut z = Client::connect(a, "/connection/a:b/c/k");
    z.send_text("to-y");
    y.expect_text("to-y");
    let mut old = Client::connect(a, "/connect/A/B/k");
    old.send_text("alias");
    let mut new = Client::connect(a, "/connection/B/A/k");
    new.expect_text("alias");
    let mut s1 = Client::connect(a, "/connection/X/X/k");
    let mut s2 = Client::connect(a, "/connection/X/X/k");
    s2.send_text("self");
    s1.expect_text("self");
}

/// A raw upgraded socket (for writing frames without a client library).
fn raw_ws(a: SocketAddr, path: &str) -> TcpStream {
    let mut sock = TcpStream::connect(a).unwrap();
    sock.set_read_timeout(Some(DEADLINE)).unwrap();
    sock.write_all(upgrade_head(path).as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        sock.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
        assert!(head.len() < 4096, "head too long");
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    sock
}

/// SIG-28: B never reads while A sends; A's reads pause, RSS stays bounded, neither side
/// is closed, and once B reads it gets every message in order.
#[test]
fn sig_28_flow_control_pauses_the_sender_and_bounds_memory() {
    let p = Proc::spawn(&[
        "--apps",
        "signal",
        "--bind",
        "127.0.0.1",
        "--signal-port",
        "0",
        "--admin-port",
        "0",
        "--threads",
        "2",
    ]);
    let a = p.addr("signal");
    let mut sender = raw_ws(a, "/connection/fast/slow/k28");
    let mut slow = Client::connect(a, "/connection/slow/fast/k28");
    let before = rss_kib(p.child.id());
    let chunk = 64 * 1024;
    let frame = masked_frame(0x2, &vec![0x5a; chunk]);
    sender.set_nonblocking(true).unwrap();
    // Write until the sender's socket has accepted nothing for 500 ms (capped at 256 MiB).
    let (mut frames, mut offset) = (0usize, 0usize);
    let mut last_progress = Instant::now();
    while last_progress.elapsed() < Duration::from_millis(500) {
        assert!(frames < 4096, "the server never stopped reading the sender");
        match sender.write(&frame[offset..]) {
            Ok(n) => {
                offset += n;
                if offset == frame.len() {
                    frames += 1;
                    offset = 0;
                }
                last_progress = Instant::now();
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("sender write failed: {e}"),
        }
    }
    let after = rss_kib(p.child.id());
    assert!(
        after < before + 24 * 1024,
        "RSS grew from {before} KiB to {after} KiB after {frames} frames"
    );
    // Now the slow side reads everything; the sender finishes its partial frame.
    let started = frames + usize::from(offset > 0);
    let reader = std::thread::spawn(move || {
        for _ in 0..started {
            match slow.recv() {
                Message::Binary(b) => assert_eq!(b.len(), chunk),
                other => panic!("{other:?}"),
            }
        }
        slow
    });
    sender.set_nonblocking(false).unwrap();
    sender.set_write_timeout(Some(DEADLINE)).unwrap();
    if offset > 0 {
        sender.write_all(&frame[offset..]).unwrap();
    }
    let mut slow = reader.join().expect("the slow side read every frame");
    sender.write_all(&masked_frame(0x1, b"still open")).unwrap();
    slow.expect_text("still open");
    assert!(frames > 16, "only {frames} frames before the pause");
}

#[test]
fn sig_21_hold_buffer_full_closes_1009() {
    let s = server_with(1, |c| c.signal_limits.hold_buffer_bytes = 1000);
    let a = addr(&s);
    let mut held = Client::connect(a, "/connection/A/B/k");
    held.send_binary(&[0; 1000]);
    held.send_binary(&[0]);
    assert_eq!(held.expect_close(), (1009, "Hold buffer full".into()));
    let mut b = Client::connect(a, "/connection/B/A/k");
    b.expect_silence(100);
}

/// A full default hold (exactly 1 MiB of payload, over the 1 MiB outbound cap once framed)
/// reaches the newcomer whole: a piped side is never closed as a slow consumer.
#[test]
fn sig_21_a_full_hold_buffer_is_delivered_whole() {
    let s = server(4);
    let a = addr(&s);
    let mut held = Client::connect(a, "/connection/full/late/k");
    let chunk = vec![3u8; 64 * 1024];
    for _ in 0..16 {
        held.send_binary(&chunk);
    }
    held.ws.send(Message::Ping(vec![].into())).unwrap();
    held.expect_silence(100);
    let mut late = Client::connect(a, "/connection/late/full/k");
    for _ in 0..16 {
        assert_eq!(late.recv(), Message::binary(chunk.clone()));
    }
    held.send_text("then live");
    late.expect_text("then live");
}
