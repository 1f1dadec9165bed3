//! pester end to end, the unhappy paths: upgrade refusals (PST-43), limits (PST-53), loss
//! of the transport, bad input on both faces, the heartbeat timeout and shutdown, with 1
//! and 4 reactors. After each fault another user must still be served.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use switchboard::config::{AppKind, Config};
use tungstenite::Message;

const WS: &str = "/socket.io/?EIO=4&transport=websocket";

fn each_threads_with(tune: impl Fn(&mut Config), f: impl Fn(SocketAddr)) {
    for threads in [1, 4] {
        let mut c = config(threads, &[AppKind::Pester]);
        tune(&mut c);
        let s = start(c);
        f(s.addr(AppKind::Pester).unwrap());
        s.stop(DEADLINE).unwrap();
    }
}

fn each_threads(f: impl Fn(SocketAddr)) {
    each_threads_with(|_| {}, f);
}

fn expect(c: &mut Client, want: &str) {
    match c.recv() {
        Message::Text(t) => assert_eq!(norm_timestamps(t.as_str()), want),
        other => panic!("expected {want}, got {other:?}"),
    }
}

fn body(r: &str) -> &str {
    r.split_once("\r\n\r\n").map_or("", |(_, b)| b)
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

/// A Socket.IO session over WebSocket with `/` connected.
fn sio(addr: SocketAddr) -> Client {
    let mut c = Client::connect(addr, WS);
    match c.recv() {
        Message::Text(t) => assert!(t.starts_with(r#"0{"sid":""#), "{t}"),
        other => panic!("{other:?}"),
    }
    c.send_text("40");
    match c.recv() {
        Message::Text(t) => assert!(t.starts_with(r#"40{"sid":""#), "{t}"),
        other => panic!("{other:?}"),
    }
    c
}

fn sio_user(addr: SocketAddr, user: &str) -> Client {
    let mut c = sio(addr);
    c.send_text(&format!(
        r#"42["message",{{"type":"register","userId":"{user}"}}]"#
    ));
    expect(
        &mut c,
        &format!(r#"42["message",{{"type":"registered","userId":"{user}","timestamp":0}}]"#),
    );
    c
}

fn poll_sid(addr: SocketAddr) -> String {
    let r = get(addr, "/socket.io/?EIO=4&transport=polling");
    body(&r)[9..29].to_string()
}

fn poll_path(sid: &str) -> String {
    format!("/socket.io/?EIO=4&transport=polling&sid={sid}")
}

fn post(addr: SocketAddr, sid: &str, payload: &str) -> String {
    http(
        addr,
        &format!(
            "POST {} HTTP/1.1\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n{payload}",
            poll_path(sid),
            payload.len()
        ),
    )
}

fn assert_unknown_sid(addr: SocketAddr, sid: &str) {
    let r = get(addr, &poll_path(sid));
    assert!(r.starts_with("HTTP/1.1 400 "), "{r}");
    assert_eq!(body(&r), r#"{"code":1,"message":"Session ID unknown"}"#);
}

/// alice (raw) and bob (raw) still talk: the server and other users are unaffected.
fn others_unaffected(addr: SocketAddr, tag: &str) {
    let (a, b) = (format!("a{tag}"), format!("b{tag}"));
    let mut alice = raw(addr, &a);
    let mut bob = raw(addr, &b);
    alice.send_text(&format!(r#"{{"type":"open_channel","friendId":"{b}"}}"#));
    let ch = format!("chat_{a}_{b}");
    expect(
        &mut alice,
        &format!(
            r#"{{"type":"channel_opened","channelId":"{ch}","friendId":"{b}","friendOnline":true,"timestamp":0}}"#
        ),
    );
    expect(
        &mut bob,
        &format!(
            r#"{{"type":"channel_invite","channelId":"{ch}","fromUserId":"{a}","timestamp":0}}"#
        ),
    );
    alice.send_text(&format!(
        r#"{{"type":"message","channelId":"{ch}","text":"still here"}}"#
    ));
    expect(
        &mut bob,
        &format!(
            r#"{{"type":"message","channelId":"{ch}","fromUserId":"{a}","text":"still here","timestamp":0}}"#
        ),
    );
}

/// Sends a WebSocket upgrade request for `target` and reads the answer to EOF.
fn upgrade_answer(addr: SocketAddr, target: &str) -> String {
    http(
        addr,
        &format!(
            "GET {target} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ),
    )
}

#[test]
fn pst_43_upgrade_refusals_are_raw_400s_before_any_101() {
    each_threads(|addr| {
        // A sid that existed and was closed counts as unknown too.
        let closed = poll_sid(addr);
        assert_eq!(body(&post(addr, &closed, "1")), "ok");
        for (target, msg) in [
            ("/socket.io/".to_string(), "Transport unknown"),
            (
                "/socket.io/?EIO=4&transport=websocket&sid=AAAAAAAAAAAAAAAAAAAA".into(),
                "Session ID unknown",
            ),
            (
                format!("/socket.io/?EIO=4&transport=websocket&sid={closed}"),
                "Session ID unknown",
            ),
            (
                "/socket.io/?EIO=3&transport=websocket".into(),
                "Unsupported protocol version",
            ),
        ] {
            let r = upgrade_answer(addr, &target);
            assert!(
                r.starts_with("HTTP/1.1 400 Bad Request\r\n"),
                "{target}: {r}"
            );
            assert!(!r.contains(" 101 "), "{r}");
            let head = format!("{}\r\n", r.split("\r\n\r\n").next().unwrap()).to_ascii_lowercase();
            assert!(head.contains("\r\nconnection: close\r\n"), "{r}");
            assert!(head.contains("\r\ncontent-type: text/html\r\n"), "{r}");
            assert_eq!(body(&r), msg, "{target}");
        }
        others_unaffected(addr, "43");
    });
}

#[test]
fn pst_53_oversize_websocket_message_and_post() {
    each_threads(|addr| {
        let mut c = sio(addr);
        c.send_text(&"x".repeat(1_000_001));
        assert_eq!(c.expect_close(), (1009, "Message too big".to_string()));

        let sid = poll_sid(addr);
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        let head = format!(
            "POST {} HTTP/1.1\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: 1000001\r\n\r\n",
            poll_path(&sid)
        );
        s.write_all(head.as_bytes()).unwrap();
        // The server answers from the head; the rest of the body may be refused.
        let _ = s.write_all(&vec![b'4'; 1_000_001]);
        let mut r = Vec::new();
        let _ = s.read_to_end(&mut r);
        let r = String::from_utf8_lossy(&r);
        assert!(r.starts_with("HTTP/1.1 413 "), "{r}");
        assert_eq!(body(&r), "");
        assert_unknown_sid(addr, &sid);
        // Exactly maxPayload is accepted.
        let sid = poll_sid(addr);
        let r = post(
            addr,
            &sid,
            &format!("40{}", "\x1e6".repeat((1_000_000 - 2) / 2)),
        );
        assert!(r.starts_with("HTTP/1.1 200 "), "{}", &r[..r.len().min(200)]);
        others_unaffected(addr, "53");
    });
}

#[test]
fn loss_of_the_transport_closes_the_session() {
    each_threads(|addr| {
        let mut bob = raw(addr, "bob");
        // WebSocket: the TCP connection just goes away.
        let mut alice = sio_user(addr, "alice");
        alice.send_text(r#"42["message",{"type":"open_channel","friendId":"bob"}]"#);
        expect(
            &mut alice,
            r#"42["message",{"type":"channel_opened","channelId":"chat_alice_bob","friendId":"bob","friendOnline":true,"timestamp":0}]"#,
        );
        expect(
            &mut bob,
            r#"{"type":"channel_invite","channelId":"chat_alice_bob","fromUserId":"alice","timestamp":0}"#,
        );
        alice
            .ws
            .get_ref()
            .shutdown(std::net::Shutdown::Both)
            .unwrap();
        drop(alice);
        expect(
            &mut bob,
            r#"{"type":"user_left","channelId":"chat_alice_bob","userId":"alice","timestamp":0}"#,
        );
        // Polling: the client gives up its held GET.
        let sid = poll_sid(addr);
        let r = post(
            addr,
            &sid,
            "40\x1e42[\"message\",{\"type\":\"register\",\"userId\":\"p\"}]\x1e42[\"message\",{\"type\":\"open_channel\",\"friendId\":\"bob\"}]",
        );
        assert_eq!(body(&r), "ok");
        expect(
            &mut bob,
            r#"{"type":"channel_invite","channelId":"chat_bob_p","fromUserId":"p","timestamp":0}"#,
        );
        let r = get(addr, &poll_path(&sid));
        assert!(body(&r).starts_with("40"), "{r}");
        let mut held = TcpStream::connect(addr).unwrap();
        write!(
            held,
            "GET {} HTTP/1.1\r\nHost: {addr}\r\n\r\n",
            poll_path(&sid)
        )
        .unwrap();
        // Give the server time to take the GET; nothing is queued, so it is held.
        std::thread::sleep(Duration::from_millis(200));
        drop(held);
        expect(
            &mut bob,
            r#"{"type":"user_left","channelId":"chat_bob_p","userId":"p","timestamp":0}"#,
        );
        assert_unknown_sid(addr, &sid);
        others_unaffected(addr, "lost");
    });
}

#[test]
fn bad_input_on_both_faces_leaves_others_unaffected() {
    each_threads(|addr| {
        let mut r = Client::connect(addr, "/");
        for (input, answer) in [
            ("null", "Unknown message type: undefined"),
            ("{ not json", "Invalid JSON"),
            ("[1]", "Unknown message type: undefined"),
            (r#"{"type":null}"#, "Unknown message type: null"),
        ] {
            r.send_text(input);
            expect(
                &mut r,
                &format!(r#"{{"type":"error","message":"{answer}"}}"#),
            );
        }
        r.send_binary(&[0xff, 0xfe]);
        expect(&mut r, r#"{"type":"error","message":"Invalid JSON"}"#);

        let mut s = sio(addr);
        for (input, answer) in [
            (r#"42["message","not json"]"#, "Invalid JSON"),
            (r#"42["message",null]"#, "Unknown message type: undefined"),
            (r#"42["message"]"#, "Unknown message type: undefined"),
        ] {
            s.send_text(input);
            expect(
                &mut s,
                &format!(r#"42["message",{{"type":"error","message":"{answer}"}}]"#),
            );
        }
        s.send_text(r#"451-["message",{"_placeholder":true,"num":0}]"#);
        s.send_binary(&[1, 2]);
        expect(
            &mut s,
            r#"42["message",{"type":"error","message":"Unknown message type: undefined"}]"#,
        );
        s.send_text("40/admin,");
        expect(&mut s, r#"44/admin,{"message":"Invalid namespace"}"#);
        // Malformed packets close their session only.
        for bad in [
            "9zzz",
            "4abc",
            "42{bad",
            r#"42["connect"]"#,
            "44",
            "4511-[]",
        ] {
            let mut c = sio(addr);
            c.send_text(bad);
            assert_eq!(c.expect_close().0, 1005, "{bad}");
        }
        let mut c = sio(addr);
        c.send_binary(&[1]);
        assert_eq!(
            c.expect_close().0,
            1005,
            "binary with no attachment pending"
        );
        // Polling: a bad packet closes the session; unknown sids are refused.
        let sid = poll_sid(addr);
        assert_eq!(body(&post(addr, &sid, "9zzz")), "ok");
        assert_unknown_sid(addr, &sid);
        assert_unknown_sid(addr, "nope");
        // The earlier connections still work.
        r.send_text(r#"{"type":"bogus"}"#);
        expect(
            &mut r,
            r#"{"type":"error","message":"Unknown message type: bogus"}"#,
        );
        s.send_text(r#"421["message",{"type":"nope"}]"#);
        expect(
            &mut s,
            r#"42["message",{"type":"error","message":"Unknown message type: nope"}]"#,
        );
        expect(&mut s, "431[]");
        others_unaffected(addr, "bad");
    });
}

#[test]
fn heartbeat_timeout_closes_the_session() {
    let tune = |c: &mut Config| {
        c.pester_opts.ping_interval_ms = 300;
        c.pester_opts.ping_timeout_ms = 300;
    };
    each_threads_with(tune, |addr| {
        let mut bob = raw(addr, "hb_bob");
        let mut alice = sio_user(addr, "hb_alice");
        alice.send_text(r#"42["message",{"type":"open_channel","friendId":"hb_bob"}]"#);
        expect(
            &mut alice,
            r#"42["message",{"type":"channel_opened","channelId":"chat_hb_alice_hb_bob","friendId":"hb_bob","friendOnline":true,"timestamp":0}]"#,
        );
        expect(
            &mut bob,
            r#"{"type":"channel_invite","channelId":"chat_hb_alice_hb_bob","fromUserId":"hb_alice","timestamp":0}"#,
        );
        // Answered pings keep the session; an unanswered one ends it.
        expect(&mut alice, "2");
        alice.send_text("3");
        expect(&mut alice, "2");
        assert_eq!(alice.expect_close().0, 1005);
        expect(
            &mut bob,
            r#"{"type":"user_left","channelId":"chat_hb_alice_hb_bob","userId":"hb_alice","timestamp":0}"#,
        );
        // Polling: the ping waits in the queue; nobody answers it.
        let sid = poll_sid(addr);
        let r = get(addr, &poll_path(&sid));
        assert_eq!(body(&r), "2");
        let start = Instant::now();
        loop {
            let r = get(addr, &poll_path(&sid));
            if body(&r) == r#"{"code":1,"message":"Session ID unknown"}"# {
                break;
            }
            assert!(start.elapsed() < DEADLINE, "session never expired: {r}");
        }
        others_unaffected(addr, "hb");
    });
}

#[test]
fn shutdown_sends_the_close_packet_to_polling_sessions() {
    for threads in [1, 4] {
        let s = start(config(threads, &[AppKind::Pester]));
        let addr = s.addr(AppKind::Pester).unwrap();
        let sid = poll_sid(addr);
        assert_eq!(body(&post(addr, &sid, "40")), "ok");
        let r = get(addr, &poll_path(&sid));
        assert!(body(&r).starts_with("40"), "{r}");
        let path = poll_path(&sid);
        let held = std::thread::spawn(move || get(addr, &path));
        std::thread::sleep(Duration::from_millis(200));
        let mut ws = sio(addr);
        s.stop(DEADLINE).unwrap();
        let r = held.join().unwrap();
        assert!(r.starts_with("HTTP/1.1 200 "), "{r}");
        assert_eq!(body(&r), "1");
        let close = ws.expect_close();
        assert!(close.0 == 1001 || close.0 == 1005, "{close:?}");
    }
}
