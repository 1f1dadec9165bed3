//! pester end to end: the raw face (the original's own protocol tests, restated) and the
//! Engine.IO HTTP face, over real sockets on 127.0.0.1 port 0, with 1 and 4 reactors.

mod common;

use common::*;
use std::net::SocketAddr;
use switchboard::config::AppKind;
use tungstenite::Message;

fn expect(c: &mut Client, want: &str) {
    match c.recv() {
        Message::Text(t) => assert_eq!(norm_timestamps(t.as_str()), want),
        other => panic!("expected {want}, got {other:?}"),
    }
}

fn raw(addr: SocketAddr, user: &str) -> Client {
    let mut c = Client::connect(addr, "/");
    c.send_text(&format!(r#"{{"type":"register","userId":"{user}"}}"#));
    expect(
        &mut c,
        &format!(r#"{{"type":"registered","userId":"{user}","timestamp":0}}"#),
    );
    c
}

fn each_threads(f: impl Fn(SocketAddr)) {
    for threads in [1, 4] {
        let s = start(config(threads, &[AppKind::Pester]));
        f(s.addr(AppKind::Pester).unwrap());
        s.stop(DEADLINE).unwrap();
    }
}

#[test]
fn pst_raw_protocol_walkthrough() {
    each_threads(|addr| {
        let mut alice = raw(addr, "alice");
        // open_channel with the friend offline, then online.
        alice.send_text(r#"{"type":"open_channel","friendId":"bob"}"#);
        expect(
            &mut alice,
            r#"{"type":"channel_opened","channelId":"chat_alice_bob","friendId":"bob","friendOnline":false,"timestamp":0}"#,
        );
        let mut bob = raw(addr, "bob");
        expect(
            &mut bob,
            r#"{"type":"channel_invite","channelId":"chat_alice_bob","fromUserId":"alice","timestamp":0}"#,
        );
        alice.send_text(r#"{"type":"open_channel","friendId":"bob"}"#);
        expect(
            &mut alice,
            r#"{"type":"channel_opened","channelId":"chat_alice_bob","friendId":"bob","friendOnline":true,"timestamp":0}"#,
        );
        expect(
            &mut bob,
            r#"{"type":"channel_invite","channelId":"chat_alice_bob","fromUserId":"alice","timestamp":0}"#,
        );
        // message without echo, typing.
        alice.send_text(r#"{"type":"message","channelId":"chat_alice_bob","text":"Hello!"}"#);
        expect(
            &mut bob,
            r#"{"type":"message","channelId":"chat_alice_bob","fromUserId":"alice","text":"Hello!","timestamp":0}"#,
        );
        bob.send_text(r#"{"type":"typing","channelId":"chat_alice_bob"}"#);
        expect(
            &mut alice,
            r#"{"type":"typing","channelId":"chat_alice_bob","userId":"bob","timestamp":0}"#,
        );
        // errors: invalid JSON, unknown type, null; the connection keeps working.
        alice.send_text("{ not json");
        expect(&mut alice, r#"{"type":"error","message":"Invalid JSON"}"#);
        alice.send_text(r#"{"type":"bogus"}"#);
        expect(
            &mut alice,
            r#"{"type":"error","message":"Unknown message type: bogus"}"#,
        );
        alice.send_text("null");
        expect(
            &mut alice,
            r#"{"type":"error","message":"Unknown message type: undefined"}"#,
        );
        // close_channel.
        alice.send_text(r#"{"type":"close_channel","channelId":"chat_alice_bob"}"#);
        expect(
            &mut bob,
            r#"{"type":"user_left","channelId":"chat_alice_bob","userId":"alice","timestamp":0}"#,
        );
        expect(
            &mut alice,
            r#"{"type":"channel_closed","channelId":"chat_alice_bob","timestamp":0}"#,
        );
        // No echo reached alice: her next reply is the first thing she reads.
        alice.send_text(r#"{"type":"open_channel","friendId":"bob"}"#);
        expect(
            &mut alice,
            r#"{"type":"channel_opened","channelId":"chat_alice_bob","friendId":"bob","friendOnline":true,"timestamp":0}"#,
        );
        expect(
            &mut bob,
            r#"{"type":"channel_invite","channelId":"chat_alice_bob","fromUserId":"alice","timestamp":0}"#,
        );
        // user_left on disconnect, then the user is offline.
        alice.close();
        expect(
            &mut bob,
            r#"{"type":"user_left","channelId":"chat_alice_bob","userId":"alice","timestamp":0}"#,
        );
        bob.send_text(r#"{"type":"open_channel","friendId":"alice"}"#);
        expect(
            &mut bob,
            r#"{"type":"channel_opened","channelId":"chat_alice_bob","friendId":"alice","friendOnline":false,"timestamp":0}"#,
        );
    });
}

#[test]
fn pst_03_kick_on_duplicate_login() {
    each_threads(|addr| {
        let mut g1 = raw(addr, "gina");
        let mut hank = raw(addr, "hank");
        g1.send_text(r#"{"type":"open_channel","friendId":"hank"}"#);
        g1.recv();
        hank.recv();
        let mut g2 = Client::connect(addr, "/");
        g2.send_text(r#"{"type":"register","userId":"gina"}"#);
        expect(
            &mut g1,
            r#"{"type":"kicked","message":"Logged in from another client"}"#,
        );
        assert_eq!(g1.expect_close().0, 1005);
        expect(
            &mut hank,
            r#"{"type":"user_left","channelId":"chat_gina_hank","userId":"gina","timestamp":0}"#,
        );
        expect(
            &mut g2,
            r#"{"type":"registered","userId":"gina","timestamp":0}"#,
        );
        hank.send_text(r#"{"type":"open_channel","friendId":"gina"}"#);
        expect(
            &mut hank,
            r#"{"type":"channel_opened","channelId":"chat_gina_hank","friendId":"gina","friendOnline":true,"timestamp":0}"#,
        );
        expect(
            &mut g2,
            r#"{"type":"channel_invite","channelId":"chat_gina_hank","fromUserId":"hank","timestamp":0}"#,
        );
    });
}

#[test]
fn pst_06_error_before_register_and_27_oversize() {
    each_threads(|addr| {
        let mut a = Client::connect(addr, "/any/path?x=1");
        a.send_text(r#"{"type":"open_channel","friendId":"frank"}"#);
        expect(&mut a, r#"{"type":"error","message":"Register first"}"#);
        let mut b = raw(addr, "b");
        a.send_text(&"x".repeat(1_000_001));
        assert_eq!(a.expect_close().0, 1009);
        b.send_text(r#"{"type":"nope"}"#);
        expect(
            &mut b,
            r#"{"type":"error","message":"Unknown message type: nope"}"#,
        );
    });
}

#[test]
fn pst_28_plain_http_banner() {
    each_threads(|addr| {
        for req in [
            format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n"),
            format!("GET /any?x=1 HTTP/1.1\r\nHost: {addr}\r\n\r\n"),
            format!("POST /x HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n"),
            format!("GET /socket.io HTTP/1.1\r\nHost: {addr}\r\n\r\n"),
        ] {
            let r = http(addr, &req);
            assert!(r.starts_with("HTTP/1.1 200 "), "{r}");
            assert!(r.contains("Content-Type: text/plain\r\n"), "{r}");
            assert!(r.ends_with("\r\n\r\nPester WebSocket Server"), "{r}");
        }
        let mut c = Client::connect(addr, "/socket.io");
        c.send_text("5");
        expect(
            &mut c,
            r#"{"type":"error","message":"Unknown message type: undefined"}"#,
        );
    });
}

fn body(r: &str) -> &str {
    r.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

#[test]
fn pst_40_42_54_56_engine_io_over_http() {
    each_threads(|addr| {
        let r = get(addr, "/socket.io/?EIO=4&transport=polling&t=x");
        assert!(r.starts_with("HTTP/1.1 200 "), "{r}");
        assert!(
            r.contains("Content-Type: text/plain; charset=UTF-8\r\n"),
            "{r}"
        );
        assert!(r.contains("Access-Control-Allow-Origin: *\r\n"), "{r}");
        assert!(r.contains("cache-control: no-store\r\n"), "{r}");
        let b = body(&r);
        assert!(b.starts_with(r#"0{"sid":""#) && b.ends_with(r#","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#), "{b}");
        for (path, status, code, msg) in [
            ("/socket.io/", 400, 0, "Transport unknown"),
            (
                "/socket.io/?EIO=4&transport=abc",
                400,
                0,
                "Transport unknown",
            ),
            (
                "/socket.io/?EIO=3&transport=polling",
                400,
                5,
                "Unsupported protocol version",
            ),
            (
                "/socket.io/?transport=polling",
                400,
                5,
                "Unsupported protocol version",
            ),
            (
                "/socket.io/?EIO=4&transport=polling&sid=nope",
                400,
                1,
                "Session ID unknown",
            ),
            (
                "/socket.io/?EIO=4&transport=websocket",
                400,
                3,
                "Bad request",
            ),
        ] {
            let r = get(addr, path);
            assert!(r.starts_with(&format!("HTTP/1.1 {status} ")), "{path}: {r}");
            assert!(r.contains("Access-Control-Allow-Origin: *\r\n"), "{r}");
            assert_eq!(body(&r), format!(r#"{{"code":{code},"message":"{msg}"}}"#));
        }
        let r = http(
            addr,
            "POST /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        );
        assert_eq!(body(&r), r#"{"code":2,"message":"Bad handshake method"}"#);
        let r = http(
            addr,
            "OPTIONS /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nAccess-Control-Request-Headers: content-type\r\n\r\n",
        );
        assert!(r.starts_with("HTTP/1.1 204 "), "{r}");
        for h in [
            "Access-Control-Allow-Origin: *",
            "Access-Control-Allow-Methods: GET,POST",
            "Access-Control-Allow-Headers: content-type",
            "Vary: Access-Control-Request-Headers",
        ] {
            assert!(r.contains(h), "{h}: {r}");
        }
        assert!(get(addr, "/socket.io/socket.io.js").starts_with("HTTP/1.1 404 "));
    });
}

fn poll_sid(addr: SocketAddr) -> String {
    let r = get(addr, "/socket.io/?EIO=4&transport=polling");
    body(&r)[9..29].to_string()
}

fn post(addr: SocketAddr, sid: &str, payload: &str) -> String {
    http(
        addr,
        &format!(
            "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n{payload}",
            payload.len()
        ),
    )
}

#[test]
fn pst_44_46_polling_session_talks_to_raw_user() {
    each_threads(|addr| {
        let mut bob = raw(addr, "bob");
        let sid = poll_sid(addr);
        let r = post(addr, &sid, "40");
        assert!(r.starts_with("HTTP/1.1 200 ") && body(&r) == "ok", "{r}");
        let r = get(
            addr,
            &format!("/socket.io/?EIO=4&transport=polling&sid={sid}"),
        );
        assert!(body(&r).starts_with(r#"40{"sid":""#), "{r}");
        let r = post(
            addr,
            &sid,
            "42[\"message\",{\"type\":\"register\",\"userId\":\"p\"}]\x1e42[\"message\",{\"type\":\"open_channel\",\"friendId\":\"bob\"}]",
        );
        assert_eq!(body(&r), "ok");
        expect(
            &mut bob,
            r#"{"type":"channel_invite","channelId":"chat_bob_p","fromUserId":"p","timestamp":0}"#,
        );
        let r = get(
            addr,
            &format!("/socket.io/?EIO=4&transport=polling&sid={sid}"),
        );
        assert_eq!(
            norm_timestamps(body(&r)),
            "42[\"message\",{\"type\":\"registered\",\"userId\":\"p\",\"timestamp\":0}]\x1e42[\"message\",{\"type\":\"channel_opened\",\"channelId\":\"chat_bob_p\",\"friendId\":\"bob\",\"friendOnline\":true,\"timestamp\":0}]"
        );
        // A held GET is answered when bob writes.
        let addr2 = addr;
        let sid2 = sid.clone();
        let held = std::thread::spawn(move || {
            get(
                addr2,
                &format!("/socket.io/?EIO=4&transport=polling&sid={sid2}"),
            )
        });
        std::thread::sleep(std::time::Duration::from_millis(100));
        bob.send_text(r#"{"type":"message","channelId":"chat_bob_p","text":"hi"}"#);
        let r = held.join().unwrap();
        assert_eq!(
            norm_timestamps(body(&r)),
            r#"42["message",{"type":"message","channelId":"chat_bob_p","fromUserId":"bob","text":"hi","timestamp":0}]"#
        );
    });
}

#[test]
fn pst_41_60_63_socket_io_over_websocket() {
    each_threads(|addr| {
        let mut c = Client::connect(addr, "/socket.io/?EIO=4&transport=websocket");
        match c.recv() {
            Message::Text(t) => assert!(t.contains(r#""upgrades":[],"#), "{t}"),
            other => panic!("{other:?}"),
        }
        c.send_text("40");
        match c.recv() {
            Message::Text(t) => assert!(t.starts_with(r#"40{"sid":""#), "{t}"),
            other => panic!("{other:?}"),
        }
        c.send_text(r#"42["message",{"type":"register","userId":"alice"}]"#);
        expect(
            &mut c,
            r#"42["message",{"type":"registered","userId":"alice","timestamp":0}]"#,
        );
        c.send_text(r#"421["message",{"type":"nope"}]"#);
        expect(
            &mut c,
            r#"42["message",{"type":"error","message":"Unknown message type: nope"}]"#,
        );
        expect(&mut c, "431[]");
        c.send_text("42{bad");
        assert_eq!(c.expect_close().0, 1005);
    });
}

/// PST-44, chunked variant: a POST with `Transfer-Encoding: chunked` is de-chunked (the
/// chunks split across writes); `maxPayload` counts the decoded bytes.
#[test]
fn pst_44_chunked_post_is_dechunked() {
    each_threads(|addr| {
        let sid = poll_sid(addr);
        let head = format!(
            "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nContent-Type: text/plain;charset=UTF-8\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        use std::io::{Read, Write};
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(b"1\r\n4\r\n").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        s.write_all(b"1;x=y\r\n0\r\n0\r\n\r\n").unwrap();
        let mut r = String::new();
        let _ = s.read_to_string(&mut r);
        assert!(r.starts_with("HTTP/1.1 200 ") && body(&r) == "ok", "{r}");
        let r = get(
            addr,
            &format!("/socket.io/?EIO=4&transport=polling&sid={sid}"),
        );
        assert!(body(&r).starts_with(r#"40{"sid":""#), "{r}");
        let bad = http(
            addr,
            &format!(
                "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
            ),
        );
        assert!(bad.starts_with("HTTP/1.1 400 "), "{bad}");
    });
}
