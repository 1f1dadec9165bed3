//! HTTP/1.1 keep-alive on plain requests answered by an app (pester.md: "clients reuse
//! connections for successive polls"), over real sockets: one connection carries whole
//! polling sessions, also across reactors; pipelined requests are answered in order;
//! `Connection: close`, HTTP/1.0, unread bodies and `http_keep_alive_ms = 0` close after
//! the answer; an idle connection is closed without an answer.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use switchboard::config::{AppKind, Config};

const POLL: &str = "/socket.io/?EIO=4&transport=polling";

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s
}

fn get_req(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")
}

fn post_req(sid: &str, payload: &str) -> String {
    format!(
        "POST {POLL}&sid={sid} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n{payload}",
        payload.len()
    )
}

/// Sends `request` on `s` and reads one answer.
fn ask(s: &mut TcpStream, request: &str) -> String {
    s.write_all(request.as_bytes()).unwrap();
    read_response(s)
}

fn body(r: &str) -> &str {
    r.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

fn assert_kept_alive(what: &str, r: &str) {
    let head = r
        .split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    assert!(
        head.contains("\r\nconnection: keep-alive\r\n")
            && head.contains("\r\nkeep-alive: timeout=5\r\n"),
        "{what}: {r}"
    );
}

/// The answer says `Connection: close` and the server closes after it.
fn assert_closed_after(what: &str, s: &mut TcpStream, r: &str) {
    assert!(r.contains("\r\nConnection: close\r\n"), "{what}: {r}");
    let mut rest = Vec::new();
    let n = s.read_to_end(&mut rest);
    assert!(
        matches!(n, Ok(0)),
        "{what}: expected EOF after the answer, got {n:?} {rest:?}"
    );
}

/// The sid in an open packet body (`0{"sid":"…"`).
fn sid_of(r: &str) -> String {
    let b = body(r);
    assert!(b.starts_with(r#"0{"sid":""#), "not an open packet: {r}");
    b[9..29].to_string()
}

fn pester(threads: usize, tune: impl FnOnce(&mut Config)) -> switchboard::server::Server {
    let mut c = config(threads, &[AppKind::Pester]);
    tune(&mut c);
    start(c)
}

#[test]
fn polling_sessions_run_over_one_kept_alive_connection() {
    for threads in [1, 4] {
        let s = pester(threads, |_| {});
        let addr = s.addr(AppKind::Pester).unwrap();
        let mut conn = connect(addr);
        // Eight sessions on one connection: with 4 reactors their owners differ, so the
        // connection moves between reactors with each request.
        for round in 0..8 {
            let r = ask(&mut conn, &get_req(POLL));
            assert_kept_alive("handshake", &r);
            let sid = sid_of(&r);
            let r = ask(&mut conn, &post_req(&sid, "40"));
            assert!(r.starts_with("HTTP/1.1 200 ") && body(&r) == "ok", "{r}");
            assert_kept_alive("POST", &r);
            let r = ask(&mut conn, &get_req(&format!("{POLL}&sid={sid}")));
            assert!(body(&r).starts_with(r#"40{"sid":""#), "round {round}: {r}");
            assert_kept_alive("GET", &r);
        }
        // The same connection then upgrades to the raw face and works as a WebSocket.
        let mut ws = Client::upgrade(conn, addr, "/");
        ws.send_text(r#"{"type":"register","userId":"kept"}"#);
        let m = ws.recv();
        let m = m.to_text().unwrap();
        assert!(
            m.starts_with(r#"{"type":"registered","userId":"kept""#),
            "{m}"
        );
        s.stop(DEADLINE).unwrap();
    }
}

#[test]
fn pipelined_requests_are_answered_in_order_even_behind_a_held_get() {
    for threads in [1, 4] {
        let s = pester(threads, |_| {});
        let addr = s.addr(AppKind::Pester).unwrap();
        // Two handshakes in one write.
        let mut a = connect(addr);
        a.write_all(format!("{}{}", get_req(POLL), get_req(POLL)).as_bytes())
            .unwrap();
        let (first, second) = (read_response(&mut a), read_response(&mut a));
        let sid = sid_of(&first);
        assert_ne!(sid, sid_of(&second));
        // A GET held open with a handshake right behind it: both are answered once a
        // POST (on another connection) gives the GET something to carry.
        a.write_all(
            format!("{}{}", get_req(&format!("{POLL}&sid={sid}")), get_req(POLL)).as_bytes(),
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let r = http(addr, &post_req(&sid, "40"));
        assert!(body(&r) == "ok", "{r}");
        let held = read_response(&mut a);
        assert!(body(&held).starts_with(r#"40{"sid":""#), "{held}");
        let behind = read_response(&mut a);
        sid_of(&behind);
        assert_kept_alive("behind the held GET", &behind);
        s.stop(DEADLINE).unwrap();
    }
}

#[test]
fn the_client_or_an_unread_body_can_ask_to_close() {
    let s = pester(1, |_| {});
    let addr = s.addr(AppKind::Pester).unwrap();
    let mut c = connect(addr);
    let r = ask(
        &mut c,
        &format!("GET {POLL} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    );
    sid_of(&r);
    assert_closed_after("Connection: close", &mut c, &r);

    let mut c = connect(addr);
    let r = ask(&mut c, &format!("GET {POLL} HTTP/1.0\r\n\r\n"));
    sid_of(&r);
    assert_closed_after("HTTP/1.0", &mut c, &r);

    let mut c = connect(addr);
    let r = ask(
        &mut c,
        &format!("GET {POLL} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
    );
    assert_kept_alive("HTTP/1.0 with keep-alive", &r);
    let r = ask(&mut c, &get_req("/"));
    assert!(r.starts_with("HTTP/1.1 200 "), "the banner: {r}");

    // The banner route does not read bodies: the rest of this one is not a request.
    let mut c = connect(addr);
    let r = ask(
        &mut c,
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 14\r\n\r\nGET / HTTP/1.1",
    );
    assert!(r.starts_with("HTTP/1.1 200 "), "{r}");
    assert_closed_after("an unread body", &mut c, &r);

    // An oversize POST body is refused from its head, unread: 413, then close.
    let mut c = connect(addr);
    let sid = sid_of(&ask(&mut c, &get_req(POLL)));
    let r = ask(
        &mut c,
        &format!("POST {POLL}&sid={sid} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000001\r\n\r\n"),
    );
    assert!(r.starts_with("HTTP/1.1 413 "), "{r}");
    assert_closed_after("413", &mut c, &r);
    s.stop(DEADLINE).unwrap();
}

#[test]
fn keep_alive_off_closes_after_every_answer() {
    let s = pester(1, |c| c.http_keep_alive_ms = 0);
    let addr = s.addr(AppKind::Pester).unwrap();
    let mut c = connect(addr);
    let r = ask(&mut c, &get_req(POLL));
    sid_of(&r);
    assert_closed_after("http_keep_alive_ms = 0", &mut c, &r);
    s.stop(DEADLINE).unwrap();
}

#[test]
fn an_idle_kept_alive_connection_is_closed_without_an_answer() {
    let s = pester(1, |c| c.http_keep_alive_ms = 300);
    let addr = s.addr(AppKind::Pester).unwrap();
    let mut c = connect(addr);
    let r = ask(&mut c, &get_req(POLL));
    sid_of(&r);
    let start = Instant::now();
    let mut rest = Vec::new();
    let n = c.read_to_end(&mut rest);
    // The sweep runs once a second: 300 ms of idleness is noticed within about 1.3 s.
    assert!(
        matches!(n, Ok(0)),
        "expected a quiet close, got {n:?} {rest:?}"
    );
    assert!(
        start.elapsed() < DEADLINE,
        "closed after {:?}",
        start.elapsed()
    );

    // The admin port keeps alive too (metrics scrapers reuse connections).
    let mut admin = connect(s.admin_addr().unwrap());
    for _ in 0..3 {
        let r = ask(&mut admin, &get_req("/healthz"));
        assert!(r.starts_with("HTTP/1.1 200 ") && body(&r) == "ok", "{r}");
    }
    s.stop(DEADLINE).unwrap();
}
