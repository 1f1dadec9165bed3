//! pair end to end over real sockets (pair.md PAR-*), with one reactor and with four.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use switchboard::apps::pair::{CONNECTED, PARTNER_GONE, WAITING};
use switchboard::config::{AppKind, Config};
use switchboard::server::Server;
use tungstenite::Message;

fn server(threads: usize) -> Server {
    start(config(threads, &[AppKind::Pair]))
}

fn server_with(threads: usize, tweak: impl FnOnce(&mut Config)) -> Server {
    let mut c = config(threads, &[AppKind::Pair]);
    tweak(&mut c);
    start(c)
}

/// Connects a client and checks its greeting.
fn join(s: &Server, greeting: &str) -> Client {
    let mut c = Client::connect(s.addr(AppKind::Pair).unwrap(), "/");
    c.expect_text(greeting);
    c
}

/// Two clients paired with each other (c1 waited, c2 arrived).
fn pair(s: &Server) -> (Client, Client) {
    let c1 = join(s, WAITING);
    let c2 = join(s, CONNECTED);
    let mut c1 = c1;
    c1.expect_text(CONNECTED);
    (c1, c2)
}

#[test]
fn par_01_to_06_pairing_order_bytes_and_relay() {
    for threads in [1, 4] {
        let s = server(threads);
        let addr = s.addr(AppKind::Pair).unwrap();
        let mut c1 = Client::connect(addr, "/");
        match c1.recv() {
            Message::Text(t) => assert_eq!(
                t.as_bytes(),
                b"\xe2\x8c\x9b Waiting for another entrepreneur...",
                "PAR-01 exact bytes"
            ),
            other => panic!("{other:?}"),
        }
        c1.send_text("talking to nobody");
        // PAR-02: after a Ping/Pong round trip the server has read that frame.
        c1.ws.send(Message::Ping(vec![1].into())).unwrap();
        loop {
            match c1.ws.read().unwrap() {
                Message::Pong(_) => break,
                Message::Ping(_) => {}
                other => panic!("{other:?}"),
            }
        }
        let mut c2 = Client::connect(addr, "/whatever?x=1");
        c2.expect_text(CONNECTED);
        c1.expect_text(CONNECTED);
        c2.expect_silence(100);
        c1.send_text("Hello from client!");
        c2.expect_text("Hello from client!");
        c2.send_text("hi");
        c1.expect_text("hi");
        c2.send_binary(&[0x68, 0x69, 0xff]);
        match c1.recv() {
            Message::Text(t) => assert_eq!(t.as_bytes(), &[0x68, 0x69, 0xef, 0xbf, 0xbd]),
            other => panic!("PAR-05 wants a text frame, got {other:?}"),
        }
        c1.send_text("");
        c2.expect_text("");
        c1.expect_silence(50);
        s.stop(DEADLINE).unwrap();
    }
}

#[test]
fn par_07_to_09_partner_leaves_and_orphan_is_requeued() {
    for threads in [1, 4] {
        let s = server(threads);
        let (c1, mut c2) = pair(&s);
        // PAR-08: c1 leaves, nobody waiting.
        c1.close();
        c2.expect_text(PARTNER_GONE);
        c2.expect_text(WAITING);
        let mut c5 = join(&s, CONNECTED);
        c2.expect_text(CONNECTED);
        c2.send_text("to c5");
        c5.expect_text("to c5");
        // PAR-09: c5 leaves while c6 waits: c2 pairs with c6 at once.
        let (mut c3, mut c4) = pair(&s);
        let mut c6 = join(&s, WAITING);
        c5.close();
        c2.expect_text(PARTNER_GONE);
        c2.expect_text(CONNECTED);
        c6.expect_text(CONNECTED);
        c6.send_text("six");
        c2.expect_text("six");
        // PAR-07: earlier pairs are untouched.
        c3.send_text("three");
        c4.expect_text("three");
        s.stop(DEADLINE).unwrap();
    }
}

#[test]
fn par_10_waiting_client_leaves_silently() {
    for threads in [1, 4] {
        let s = server(threads);
        let c1 = join(&s, WAITING);
        c1.close();
        let mut c2 = join(&s, WAITING);
        c2.expect_silence(50);
        s.stop(DEADLINE).unwrap();
    }
}

#[test]
fn par_13_plain_http_gets_426() {
    let s = server(1);
    let r = get(s.addr(AppKind::Pair).unwrap(), "/");
    assert!(r.starts_with("HTTP/1.1 426 Upgrade Required\r\n"), "{r}");
    assert!(r.contains("Content-Type: text/plain\r\n"));
    assert!(r.ends_with("\r\n\r\nUpgrade Required"));
}

#[test]
fn par_14_message_limit_is_exact() {
    for threads in [1, 4] {
        let s = server(threads);
        let (mut c1, mut c2) = pair(&s);
        let max = "a".repeat(65536);
        c1.send_text(&max);
        c2.expect_text(&max);
        c1.send_text(&format!("{max}b"));
        assert_eq!(c1.expect_close(), (1009, "Message too big".into()));
        c2.expect_text(PARTNER_GONE);
        c2.expect_text(WAITING);
        s.stop(DEADLINE).unwrap();
    }
}

#[test]
fn par_15_invalid_utf8_closes_1007_and_partner_requeues() {
    let s = server(2);
    let (mut c1, mut c2) = pair(&s);
    c1.ws
        .get_mut()
        .write_all(&masked_frame(0x1, &[0x68, 0xff]))
        .unwrap();
    assert_eq!(c1.expect_close().0, 1007);
    c2.expect_text(PARTNER_GONE);
    c2.expect_text(WAITING);
    // Other clients are unaffected.
    let mut c3 = join(&s, CONNECTED);
    c2.expect_text(CONNECTED);
    c3.send_text("still here");
    c2.expect_text("still here");
    s.stop(DEADLINE).unwrap();
}

#[test]
fn unmasked_frame_closes_1002() {
    let s = server(1);
    let (mut c1, mut c2) = pair(&s);
    c1.ws.get_mut().write_all(&[0x81, 2, b'h', b'i']).unwrap();
    assert_eq!(c1.expect_close().0, 1002);
    c2.expect_text(PARTNER_GONE);
    s.stop(DEADLINE).unwrap();
}

/// PAR-17: 1,000 clients, 500 pairs, 100 numbered messages each way, in order, once.
#[test]
fn par_17_thousand_clients_relay_exactly_once_in_order() {
    for threads in [1, 4] {
        let s = server(threads);
        let addr = s.addr(AppKind::Pair).unwrap();
        let mut clients: Vec<Client> = Vec::new();
        for i in 0..1000 {
            let mut c = Client::connect(addr, "/");
            if i % 2 == 0 {
                c.expect_text(WAITING);
            } else {
                c.expect_text(CONNECTED);
                clients
                    .last_mut()
                    .expect("an odd client follows a waiting one")
                    .expect_text(CONNECTED);
            }
            clients.push(c);
        }
        for (i, c) in clients.iter_mut().enumerate() {
            for n in 0..100 {
                c.ws.write(Message::text(format!("{i}:{n}"))).unwrap();
            }
            c.ws.flush().unwrap();
        }
        for (i, c) in clients.iter_mut().enumerate() {
            let partner = i ^ 1;
            for n in 0..100 {
                c.expect_text(&format!("{partner}:{n}"));
            }
        }
        for c in clients.iter_mut().step_by(97) {
            c.expect_silence(20);
        }
        if threads > 1 {
            // The kernel spread the sockets, so most pairs crossed reactors.
            let used = s
                .shared()
                .stats
                .iter()
                .filter(|r| {
                    r.services[3]
                        .connections_total
                        .load(std::sync::atomic::Ordering::Relaxed)
                        > 0
                })
                .count();
            assert!(used >= 2, "connections landed on {used} reactor(s)");
        }
        s.stop(Duration::from_secs(20)).unwrap();
    }
}

#[test]
fn silent_and_half_sent_requests_are_closed_at_the_deadline() {
    let s = server_with(1, |c| c.handshake_timeout_ms = 300);
    let addr = s.addr(AppKind::Pair).unwrap();
    let mut silent = TcpStream::connect(addr).unwrap();
    let mut half = TcpStream::connect(addr).unwrap();
    half.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    let (c1, mut c2) = pair(&s);
    let start = Instant::now();
    for sock in [&mut silent, &mut half] {
        sock.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut buf = Vec::new();
        let _ = sock.read_to_end(&mut buf);
        assert!(
            buf.is_empty() || buf.starts_with(b"HTTP/1.1 408"),
            "{}",
            String::from_utf8_lossy(&buf)
        );
    }
    let waited = start.elapsed();
    assert!(waited < Duration::from_secs(4), "closed after {waited:?}");
    let mut c1 = c1;
    c1.send_text("unaffected");
    c2.expect_text("unaffected");
    s.stop(DEADLINE).unwrap();
}

#[test]
fn oversized_request_head_gets_431() {
    let s = server_with(1, |c| c.max_header_bytes = 1024);
    let big = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(2000));
    let r = http(s.addr(AppKind::Pair).unwrap(), &big);
    assert!(r.starts_with("HTTP/1.1 431 "), "{r}");
    let many = format!("GET / HTTP/1.1\r\n{}\r\n", "a: b\r\n".repeat(100));
    let r = http(s.addr(AppKind::Pair).unwrap(), &many);
    assert!(r.starts_with("HTTP/1.1 431 "), "{r}");
}

#[test]
fn bad_handshakes_get_clear_answers() {
    let s = server(1);
    let addr = s.addr(AppKind::Pair).unwrap();
    let base = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let r = http(addr, &format!("{base}Sec-WebSocket-Version: 8\r\n\r\n"));
    assert!(
        r.starts_with("HTTP/1.1 426 ") && r.contains("Sec-WebSocket-Version: 13\r\n"),
        "{r}"
    );
    let r = http(
        addr,
        "POST / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    );
    assert!(r.starts_with("HTTP/1.1 400 "), "{r}");
    let r = http(
        addr,
        "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: nope\r\n\r\n",
    );
    assert!(r.starts_with("HTTP/1.1 400 "), "{r}");
}

#[test]
fn origins_and_per_ip_caps_refuse_before_the_upgrade() {
    let s = server_with(1, |c| {
        c.allowed_origins = vec!["https://ok.example".into()];
        c.max_connections_per_ip = 2;
    });
    let addr = s.addr(AppKind::Pair).unwrap();
    let head = |origin: &str| {
        format!(
            "GET / HTTP/1.1\r\nHost: x\r\nOrigin: {origin}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
    };
    let r = http(addr, &head("https://evil.example"));
    assert!(r.starts_with("HTTP/1.1 403 "), "{r}");
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut sock = TcpStream::connect(addr).unwrap();
        sock.write_all(head("https://ok.example").as_bytes())
            .unwrap();
        let mut buf = [0u8; 12];
        sock.set_read_timeout(Some(DEADLINE)).unwrap();
        sock.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"HTTP/1.1 101");
        open.push(sock);
    }
    let r = http(addr, &head("https://ok.example"));
    assert!(r.starts_with("HTTP/1.1 429 "), "{r}");
}

#[test]
fn global_cap_answers_503() {
    let s = server_with(1, |c| c.max_connections = 2);
    let (_c1, _c2) = pair(&s);
    let r = get(s.addr(AppKind::Pair).unwrap(), "/");
    assert!(r.starts_with("HTTP/1.1 503 "), "{r}");
}

#[test]
fn admin_endpoints_and_metrics() {
    let s = server(2);
    let admin = s.admin_addr().unwrap();
    let (mut c1, mut c2) = pair(&s);
    c1.send_text("x");
    c2.expect_text("x");
    let r = get(admin, "/healthz");
    assert!(
        r.starts_with("HTTP/1.1 200 OK\r\n") && r.ends_with("ok"),
        "{r}"
    );
    let r = get(admin, "/readyz");
    assert!(r.ends_with("ready"), "{r}");
    let r = get(admin, "/metrics");
    assert!(
        r.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
        "{r}"
    );
    assert!(
        r.contains("switchboard_connections_active{app=\"pair\"} 2\n"),
        "{r}"
    );
    assert!(
        r.contains("switchboard_messages_in_total{app=\"pair\"} 1\n"),
        "{r}"
    );
    assert!(r.contains("switchboard_handshake_rejects_total"), "{r}");
    let r = get(admin, "/nope");
    assert!(r.starts_with("HTTP/1.1 404 "), "{r}");
    // Apps' ports do not serve /healthz.
    let r = get(s.addr(AppKind::Pair).unwrap(), "/healthz");
    assert!(r.starts_with("HTTP/1.1 426 "), "{r}");
}

/// PAR-16 against the real binary, so its RSS is the server's alone.
#[test]
fn par_16_slow_reader_is_closed_at_the_byte_cap_and_rss_stays_bounded() {
    let p = Proc::spawn(&[
        "--apps",
        "pair",
        "--bind",
        "127.0.0.1",
        "--pair-port",
        "0",
        "--admin-port",
        "0",
        "--threads",
        "2",
    ]);
    let addr = p.addr("pair");
    let mut c1 = Client::connect(addr, "/");
    c1.expect_text(WAITING);
    let mut c2 = Client::connect(addr, "/");
    c2.expect_text(CONNECTED);
    c1.expect_text(CONNECTED);
    let before = rss_kib(p.child.id());
    // c2 never reads; c1 sends 64 MiB in 64 KiB messages.
    let chunk = "z".repeat(65536);
    let mut gone = false;
    c1.ws
        .get_mut()
        .set_read_timeout(Some(Duration::from_millis(1)))
        .unwrap();
    for _ in 0..1024 {
        c1.ws.write(Message::text(chunk.as_str())).unwrap();
        c1.ws.flush().unwrap();
        if let Ok(Message::Text(t)) = c1.ws.read() {
            assert_eq!(t.as_str(), PARTNER_GONE);
            gone = true;
            break;
        }
    }
    assert!(gone, "c1 was never told its partner is gone");
    c1.ws.get_mut().set_read_timeout(Some(DEADLINE)).unwrap();
    c1.expect_text(WAITING);
    let after = rss_kib(p.child.id());
    assert!(
        after < before + 16 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    // c2 finally reads: queued data, then close 1008.
    assert_eq!(c2.expect_close(), (1008, "Slow consumer".into()));
}

/// SIGTERM: readiness 503 while draining, close 1001 to clients, exit 0 in the grace period.
#[test]
fn sigterm_drains_with_1001_and_exits_zero() {
    let mut p = Proc::spawn(&[
        "--apps",
        "pair",
        "--bind",
        "127.0.0.1",
        "--pair-port",
        "0",
        "--admin-port",
        "0",
        "--threads",
        "2",
        "--shutdown-grace-ms",
        "3000",
        "--close-linger-ms",
        "2500",
    ]);
    let addr = p.addr("pair");
    let admin = p.addr("admin");
    let (mut c1, mut c2) = {
        let mut a = Client::connect(addr, "/");
        a.expect_text(WAITING);
        let mut b = Client::connect(addr, "/");
        b.expect_text(CONNECTED);
        a.expect_text(CONNECTED);
        (a, b)
    };
    // A raw client that never answers the close keeps the server draining for a while.
    let mut mute = TcpStream::connect(addr).unwrap();
    mute.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").unwrap();
    // Make sure the mute client is upgraded (it waits alone) before the signal.
    let mut head = [0u8; 12];
    mute.set_read_timeout(Some(DEADLINE)).unwrap();
    mute.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 101");
    let started = Instant::now();
    p.signal(libc::SIGTERM);
    assert_eq!(c1.expect_close(), (1001, "Server shutting down".into()));
    assert_eq!(c2.expect_close(), (1001, "Server shutting down".into()));
    let r = get(admin, "/readyz");
    assert!(
        r.starts_with("HTTP/1.1 503 ") && r.ends_with("draining"),
        "{r}"
    );
    let status = loop {
        if let Some(st) = p.child.try_wait().unwrap() {
            break st;
        }
        assert!(started.elapsed() < Duration::from_secs(8), "did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}\n{}", p.log());
    drop(mute);
}
