//! Unit tests of the pester app through the harness (virtual clock), named after the
//! spec's acceptance ids.

use super::session::{empty_400, error_response, ok_response, payload_response, too_large};
use super::*;
use crate::apps::harness::{Harness, conn, request, text_of};

const T0: Millis = 1_700_000_000_000;

fn cfg() -> PesterConfig {
    PesterConfig::default()
}

fn h_with(c: PesterConfig) -> Harness<Pester> {
    Harness::new(Pester::new(0, 1, &c, [1, 2]))
}

fn h() -> Harness<Pester> {
    h_with(cfg())
}

fn reg(user: &str, ts: Millis) -> String {
    format!(r#"{{"type":"registered","userId":"{user}","timestamp":{ts}}}"#)
}

fn err(m: &str) -> String {
    format!(r#"{{"type":"error","message":"{m}"}}"#)
}

fn opened(ch: &str, friend: &str, online: bool, ts: Millis) -> String {
    format!(
        r#"{{"type":"channel_opened","channelId":"{ch}","friendId":"{friend}","friendOnline":{online},"timestamp":{ts}}}"#
    )
}

fn invite(ch: &str, from: &str, ts: Millis) -> String {
    format!(
        r#"{{"type":"channel_invite","channelId":"{ch}","fromUserId":"{from}","timestamp":{ts}}}"#
    )
}

fn left(ch: &str, user: &str, ts: Millis) -> String {
    format!(r#"{{"type":"user_left","channelId":"{ch}","userId":"{user}","timestamp":{ts}}}"#)
}

fn closed(ch: &str, ts: Millis) -> String {
    format!(r#"{{"type":"channel_closed","channelId":"{ch}","timestamp":{ts}}}"#)
}

fn register_msg(user: &str) -> String {
    format!(r#"{{"type":"register","userId":"{user}"}}"#)
}

fn open_msg(friend: &str) -> String {
    format!(r#"{{"type":"open_channel","friendId":"{friend}"}}"#)
}

/// Opens raw connection `n` registered as `user`.
fn user(h: &mut Harness<Pester>, n: u32, name: &str) -> ConnId {
    let c = conn(n);
    h.open(c, "/");
    let now = h.now;
    h.text(c, &register_msg(name))
        .expect_texts(&[(c, &reg(name, now))]);
    c
}

/// alice and bob in `chat_alice_bob`.
fn pair(h: &mut Harness<Pester>) -> (ConnId, ConnId) {
    let a = user(h, 1, "alice");
    let b = user(h, 2, "bob");
    let now = h.now;
    h.text(a, &open_msg("bob")).expect_texts(&[
        (a, &opened("chat_alice_bob", "bob", true, now)),
        (b, &invite("chat_alice_bob", "alice", now)),
    ]);
    (a, b)
}

#[test]
fn pst_01_register() {
    let mut h = h();
    user(&mut h, 1, "alice");
}

#[test]
fn pst_02_same_register_again_only_answers() {
    let mut h = h();
    let (a, b) = pair(&mut h);
    h.text(a, &register_msg("alice"))
        .expect_texts(&[(a, &reg("alice", T0))]);
    h.text(b, r#"{"type":"message","channelId":"chat_alice_bob","text":"x"}"#)
        .expect_texts(&[(
            a,
            &format!(r#"{{"type":"message","channelId":"chat_alice_bob","fromUserId":"bob","text":"x","timestamp":{T0}}}"#),
        )]);
}

#[test]
fn pst_03_duplicate_login_kicks_the_old_connection() {
    let mut h = h();
    let g1 = user(&mut h, 1, "gina");
    let hank = user(&mut h, 2, "hank");
    h.text(g1, &open_msg("hank")).clear();
    let g2 = conn(3);
    h.open(g2, "/");
    h.text(g2, &register_msg("gina")).expect(vec![
        Effect::Send(
            g1,
            frame::text(r#"{"type":"kicked","message":"Logged in from another client"}"#),
        ),
        Effect::Close(g1, None),
        Effect::Send(hank, frame::text(&left("chat_gina_hank", "gina", T0))),
        Effect::Send(g2, frame::text(&reg("gina", T0))),
    ]);
    h.close(g1).expect_nothing();
    h.text(hank, &open_msg("gina")).expect_texts(&[
        (hank, &opened("chat_gina_hank", "gina", true, T0)),
        (g2, &invite("chat_gina_hank", "hank", T0)),
    ]);
}

#[test]
fn pst_04_register_needs_a_user_id() {
    let mut h = h();
    let a = conn(1);
    h.open(a, "/");
    for m in [
        r#"{"type":"register"}"#,
        r#"{"type":"register","userId":""}"#,
        r#"{"type":"register","userId":5}"#,
    ] {
        h.text(a, m)
            .expect_texts(&[(a, &err("userId is required"))]);
    }
    let long = format!(r#"{{"type":"register","userId":"{}"}}"#, "x".repeat(257));
    h.text(a, &long)
        .expect_texts(&[(a, &err("Limit exceeded: max_user_id_bytes"))]);
}

#[test]
fn pst_05_registering_another_id_releases_the_first() {
    let mut h = h();
    let (a, b) = pair(&mut h);
    h.text(a, &register_msg("alice2")).expect_texts(&[
        (b, &left("chat_alice_bob", "alice", T0)),
        (a, &reg("alice2", T0)),
    ]);
    h.text(b, &open_msg("alice"))
        .expect_texts(&[(b, &opened("chat_alice_bob", "alice", false, T0))]);
}

#[test]
fn pst_06_unregistered_requests() {
    let mut h = h();
    let a = conn(1);
    h.open(a, "/");
    h.text(a, &open_msg("frank"))
        .expect_texts(&[(a, &err("Register first"))]);
    h.text(a, r#"{"type":"message","channelId":"c","text":"t"}"#)
        .expect_texts(&[(a, &err("Register first"))]);
    h.text(a, r#"{"type":"typing","channelId":"c"}"#)
        .expect_nothing();
    h.text(a, r#"{"type":"close_channel","channelId":"c"}"#)
        .expect_nothing();
}

#[test]
fn pst_07_invalid_friend_ids() {
    let mut h = h();
    let e = user(&mut h, 1, "erin");
    let long = format!(
        r#"{{"type":"open_channel","friendId":"{}"}}"#,
        "y".repeat(300)
    );
    for m in [
        open_msg("erin"),
        open_msg(""),
        r#"{"type":"open_channel"}"#.into(),
        r#"{"type":"open_channel","friendId":5}"#.into(),
        long,
    ] {
        h.text(e, &m).expect_texts(&[(e, &err("Invalid friendId"))]);
    }
}

#[test]
fn pst_08_open_channel_with_friend_online() {
    let mut h = h();
    let (a, b) = pair(&mut h);
    h.text(b, &open_msg("alice")).expect_texts(&[
        (b, &opened("chat_alice_bob", "alice", true, T0)),
        (a, &invite("chat_alice_bob", "bob", T0)),
    ]);
}

#[test]
fn pst_09_channel_ids_sort_in_utf16_order() {
    use super::channel::channel_id;
    assert_eq!(channel_id("Bob", "alice"), "chat_Bob_alice");
    assert_eq!(channel_id("alice", "Bob"), "chat_Bob_alice");
    assert_eq!(channel_id("｡", "😀"), "chat_😀_｡");
    assert_eq!(channel_id("a_b", "c"), "chat_a_b_c");
    assert_eq!(channel_id("a", "b_c"), "chat_a_b_c");
}

#[test]
fn pst_10_pending_invite_reaches_friend_at_register() {
    let mut h = h();
    let a = user(&mut h, 1, "alice");
    h.text(a, &open_msg("bob"))
        .expect_texts(&[(a, &opened("chat_alice_bob", "bob", false, T0))]);
    h.advance(5000);
    let b = conn(2);
    h.open(b, "/");
    h.text(b, &register_msg("bob")).expect_texts(&[
        (b, &reg("bob", T0 + 5000)),
        (b, &invite("chat_alice_bob", "alice", T0)),
    ]);
    h.text(b, r#"{"type":"message","channelId":"chat_alice_bob","text":"hi"}"#)
        .expect_texts(&[(
            a,
            &format!(r#"{{"type":"message","channelId":"chat_alice_bob","fromUserId":"bob","text":"hi","timestamp":{}}}"#, T0 + 5000),
        )]);
}

#[test]
fn pst_11_invite_dropped_when_inviter_leaves() {
    for disconnect in [false, true] {
        let mut h = h();
        let a = user(&mut h, 1, "alice");
        h.text(a, &open_msg("bob")).clear();
        if disconnect {
            h.close(a).expect_nothing();
        } else {
            h.text(
                a,
                r#"{"type":"close_channel","channelId":"chat_alice_bob"}"#,
            )
            .expect_texts(&[(a, &closed("chat_alice_bob", T0))]);
        }
        user(&mut h, 2, "bob");
        h.expect_nothing();
    }
}

#[test]
fn pst_12_pending_invites_are_capped_and_deduplicated() {
    let mut h = h_with(PesterConfig {
        max_pending_invites_per_user: 2,
        ..cfg()
    });
    for (n, name) in [(1, "carol"), (2, "dave"), (3, "erin")] {
        let c = user(&mut h, n, name);
        h.text(c, &open_msg("bob")).clear();
        h.advance(1);
    }
    let a = user(&mut h, 4, "alice");
    let first = h.now;
    h.text(a, &open_msg("bob")).clear();
    h.advance(1);
    h.text(a, &open_msg("bob")).clear();
    let b = conn(9);
    let now = h.now;
    h.open(b, "/");
    h.text(b, &register_msg("bob")).expect_texts(&[
        (b, &reg("bob", now)),
        (b, &invite("chat_bob_erin", "erin", T0 + 2)),
        (b, &invite("chat_alice_bob", "alice", first)),
    ]);
    // Without alice: exactly the last two inviters, in order.
    let mut h = h_with(PesterConfig {
        max_pending_invites_per_user: 2,
        ..cfg()
    });
    for (n, name) in [(1, "carol"), (2, "dave"), (3, "erin")] {
        let c = user(&mut h, n, name);
        h.text(c, &open_msg("bob")).clear();
    }
    let b = conn(9);
    h.open(b, "/");
    h.text(b, &register_msg("bob")).expect_texts(&[
        (b, &reg("bob", T0)),
        (b, &invite("chat_bob_dave", "dave", T0)),
        (b, &invite("chat_bob_erin", "erin", T0)),
    ]);
}

#[test]
fn pst_13_opening_twice_sends_twice() {
    let mut h = h();
    let (a, b) = pair(&mut h);
    h.text(a, &open_msg("bob")).expect_texts(&[
        (a, &opened("chat_alice_bob", "bob", true, T0)),
        (b, &invite("chat_alice_bob", "alice", T0)),
    ]);
}

#[test]
fn pst_14_message_reaches_others_without_echo() {
    let mut h = h();
    let (a, b) = pair(&mut h);
    h.text(a, r#"{"type":"message","channelId":"chat_alice_bob","text":"Hello!"}"#)
        .expect_texts(&[(
            b,
            &format!(r#"{{"type":"message","channelId":"chat_alice_bob","fromUserId":"alice","text":"Hello!","timestamp":{T0}}}"#),
        )]);
}

#[test]
fn pst_15_messages_without_text_or_channel_are_dropped() {
    let mut h = h();
    let (a, _) = pair(&mut h);
    for m in [
        r#"{"type":"message","channelId":"chat_alice_bob","text":""}"#,
        r#"{"type":"message","channelId":"chat_alice_bob","text":5}"#,
        r#"{"type":"message","channelId":"chat_alice_bob"}"#,
        r#"{"type":"message","channelId":"","text":"x"}"#,
    ] {
        h.text(a, m).expect_nothing();
    }
}

#[test]
fn pst_16_message_from_a_non_member() {
    let mut h = h();
    let (a, _) = pair(&mut h);
    h.text(
        a,
        r#"{"type":"message","channelId":"chat_x_y","text":"nope"}"#,
    )
    .expect_texts(&[(a, &err("Not in this channel"))]);
}

#[test]
fn pst_17_typing_reaches_members_only() {
    let mut h = h();
    let (a, b) = pair(&mut h);
    let c = user(&mut h, 3, "carol");
    h.text(b, r#"{"type":"typing","channelId":"chat_alice_bob"}"#)
        .expect_texts(&[(
            a,
            &format!(r#"{{"type":"typing","channelId":"chat_alice_bob","userId":"bob","timestamp":{T0}}}"#),
        )]);
    h.text(c, r#"{"type":"typing","channelId":"chat_alice_bob"}"#)
        .expect_nothing();
}

#[test]
fn pst_18_close_channel() {
    let mut h = h();
    let (a, b) = pair(&mut h);
    h.text(
        a,
        r#"{"type":"close_channel","channelId":"chat_alice_bob"}"#,
    )
    .expect_texts(&[
        (b, &left("chat_alice_bob", "alice", T0)),
        (a, &closed("chat_alice_bob", T0)),
    ]);
    h.text(
        b,
        r#"{"type":"message","channelId":"chat_alice_bob","text":"anyone"}"#,
    )
    .expect_nothing();
}

#[test]
fn pst_19_close_channel_by_non_members() {
    let mut h = h();
    let _ = pair(&mut h);
    let c = user(&mut h, 3, "carol");
    h.text(
        c,
        r#"{"type":"close_channel","channelId":"does_not_exist"}"#,
    )
    .expect_texts(&[(c, &closed("does_not_exist", T0))]);
    h.text(
        c,
        r#"{"type":"close_channel","channelId":"chat_alice_bob"}"#,
    )
    .expect_texts(&[(c, &closed("chat_alice_bob", T0))]);
    h.text(c, r#"{"type":"close_channel","channelId":5}"#)
        .expect_nothing();
}

#[test]
fn pst_20_unknown_types() {
    let mut h = h();
    let a = conn(1);
    h.open(a, "/");
    for (m, t) in [
        (r#"{"type":"bogus"}"#, "bogus"),
        (r#"{"noType":true}"#, "undefined"),
        (r#"{"type":null}"#, "null"),
        (r#"{"type":5}"#, "5"),
        (r#"{"type":["a"]}"#, "[\\\"a\\\"]"),
    ] {
        h.text(a, m)
            .expect_texts(&[(a, &err(&format!("Unknown message type: {t}")))]);
    }
}

#[test]
fn pst_21_invalid_json() {
    let mut h = h();
    let a = conn(1);
    h.open(a, "/");
    h.text(a, "{ not json")
        .expect_texts(&[(a, &err("Invalid JSON"))]);
    h.text(a, &register_msg("a"))
        .expect_texts(&[(a, &reg("a", T0))]);
}

#[test]
fn pst_22_json_that_is_not_an_object() {
    let mut h = h();
    let (a, b) = pair(&mut h);
    for m in ["null", "5", "\"x\"", "[1]", "true"] {
        h.text(a, m)
            .expect_texts(&[(a, &err("Unknown message type: undefined"))]);
    }
    h.text(b, r#"{"type":"typing","channelId":"chat_alice_bob"}"#)
        .expect_texts(&[(
            a,
            &format!(r#"{{"type":"typing","channelId":"chat_alice_bob","userId":"bob","timestamp":{T0}}}"#),
        )]);
}

#[test]
fn pst_23_binary_frames_read_as_text() {
    let mut h = h();
    let a = conn(1);
    h.open(a, "/");
    h.binary(a, br#"{"type":"register","userId":"bin"}"#)
        .expect_texts(&[(a, &reg("bin", T0))]);
    h.binary(a, &[0xff, 0xfe])
        .expect_texts(&[(a, &err("Invalid JSON"))]);
}

#[test]
fn pst_24_disconnect_leaves_channels_and_goes_offline() {
    let mut h = h();
    let e = user(&mut h, 1, "erin");
    let f = user(&mut h, 2, "frank");
    h.text(e, &open_msg("frank")).clear();
    h.close(f)
        .expect_texts(&[(e, &left("chat_erin_frank", "frank", T0))]);
    h.text(e, &open_msg("frank"))
        .expect_texts(&[(e, &opened("chat_erin_frank", "frank", false, T0))]);
    let g = user(&mut h, 3, "gus");
    h.close(g).expect_nothing();
    h.text(e, &open_msg("gus"))
        .expect_texts(&[(e, &opened("chat_erin_gus", "gus", false, T0))]);
}

#[test]
fn pst_25_one_user_left_per_shared_channel() {
    let mut h = h();
    let (a, b) = pair(&mut h);
    let c = user(&mut h, 3, "carol");
    h.text(a, &open_msg("carol")).clear();
    let mut got: Vec<(ConnId, String)> = h
        .close(a)
        .take()
        .into_iter()
        .map(|e| match e {
            Effect::Send(to, f) => (to, text_of(&f)),
            other => panic!("{other:?}"),
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (b, left("chat_alice_bob", "alice", T0)),
            (c, left("chat_alice_carol", "alice", T0)),
        ]
    );
}

#[test]
fn pst_26_channel_limit() {
    let mut h = h_with(PesterConfig {
        max_channels_per_user: 1,
        ..cfg()
    });
    let (a, b) = pair(&mut h);
    user(&mut h, 3, "carol");
    h.text(a, &open_msg("carol"))
        .expect_texts(&[(a, &err("Limit exceeded: max_channels_per_user"))]);
    h.text(a, &open_msg("bob")).expect_texts(&[
        (a, &opened("chat_alice_bob", "bob", true, T0)),
        (b, &invite("chat_alice_bob", "alice", T0)),
    ]);
}

#[test]
fn pst_28_route_banner_and_raw_face() {
    let c = Config::default();
    for target in ["/", "/any?x=1", "/socket.io", "/socket.iox"] {
        let mut r = request(target);
        match route(&r, false, &c) {
            Route::Respond(resp) => {
                assert_eq!(
                    (resp.status.0, resp.body.as_slice()),
                    (200, BANNER.as_bytes())
                );
                assert_eq!(resp.content_type, "text/plain");
            }
            other => panic!("{other:?}"),
        }
        r.method = "POST".into();
        assert!(matches!(route(&r, false, &c), Route::Respond(x) if x.status.0 == 200));
        assert!(matches!(
            route(&r, true, &c),
            Route::Upgrade {
                owner: None,
                max_message_bytes: None,
                ..
            }
        ));
    }
}

// ---- Engine.IO and Socket.IO (virtual clock; e2e cases restated on the state machine) ----

fn http(h: &mut Harness<Pester>, c: ConnId, method: &str, target: &str, body: &[u8]) {
    let mut req = request(target);
    req.method = method.into();
    h.event(Event::Http {
        conn: c,
        req: &req,
        body,
    });
}

fn responded(h: &mut Harness<Pester>) -> Vec<(ConnId, Response)> {
    h.take()
        .into_iter()
        .map(|e| match e {
            Effect::Respond(c, r) => (c, r),
            other => panic!("expected only answers, got {other:?}"),
        })
        .collect()
}

fn sid_of(open: &str) -> String {
    let sid = &open[9..29];
    assert!(open.starts_with(r#"0{"sid":""#), "{open}");
    assert!(
        sid.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    sid.to_string()
}

/// A polling session: its sid.
fn poll_open(h: &mut Harness<Pester>, n: u32) -> String {
    http(
        h,
        conn(n),
        "GET",
        "/socket.io/?EIO=4&transport=polling&t=x",
        b"",
    );
    let mut r = responded(h);
    assert_eq!(r.len(), 1);
    let (_, resp) = r.remove(0);
    let body = String::from_utf8(resp.body.clone()).unwrap();
    assert_eq!(resp, payload_response(body.clone().into_bytes()));
    let sid = sid_of(&body);
    assert_eq!(
        body,
        format!(
            r#"0{{"sid":"{sid}","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}}"#
        )
    );
    sid
}

fn poll(sid: &str) -> String {
    format!("/socket.io/?EIO=4&transport=polling&sid={sid}")
}

/// A WebSocket-only session with `/` connected.
fn ws_session(h: &mut Harness<Pester>, n: u32) -> ConnId {
    let c = conn(n);
    h.open(c, "/socket.io/?EIO=4&transport=websocket");
    let open = match h.take().as_slice() {
        [Effect::Send(to, f)] if *to == c => text_of(f),
        other => panic!("{other:?}"),
    };
    assert!(open.contains(r#""upgrades":[],"#), "{open}");
    sid_of(&open);
    h.text(c, "40");
    match h.take().as_slice() {
        [Effect::Send(to, f)] if *to == c => {
            let t = text_of(f);
            assert!(t.starts_with(r#"40{"sid":""#) && t.len() == 32, "{t}");
        }
        other => panic!("{other:?}"),
    }
    c
}

fn sio(json: &str) -> String {
    format!(r#"42["message",{json}]"#)
}

#[test]
fn pst_40_41_open_packets() {
    let mut h = h();
    let s1 = poll_open(&mut h, 1);
    let s2 = poll_open(&mut h, 2);
    assert_ne!(s1, s2);
    ws_session(&mut h, 3);
}

#[test]
fn pst_44_to_46_polling_post_and_batched_get() {
    let mut h = h();
    let sid = poll_open(&mut h, 1);
    http(&mut h, conn(2), "POST", &poll(&sid), b"40");
    h.expect(vec![Effect::Respond(conn(2), ok_response())]);
    h.turn_end();
    http(&mut h, conn(3), "GET", &poll(&sid), b"");
    let r = responded(&mut h);
    let body = String::from_utf8(r[0].1.body.clone()).unwrap();
    assert!(
        body.starts_with(r#"40{"sid":""#) && body.len() == 32,
        "{body}"
    );
    let post = b"42[\"message\",{\"type\":\"register\",\"userId\":\"p\"}]\x1e42[\"message\",{\"type\":\"open_channel\",\"friendId\":\"q\"}]";
    http(&mut h, conn(4), "POST", &poll(&sid), post);
    h.expect(vec![Effect::Respond(conn(4), ok_response())]);
    h.turn_end();
    http(&mut h, conn(5), "GET", &poll(&sid), b"");
    let want = format!(
        "{}\x1e{}",
        sio(&reg("p", T0)),
        sio(&opened("chat_p_q", "q", false, T0))
    );
    h.expect(vec![Effect::Respond(
        conn(5),
        payload_response(want.into_bytes()),
    )]);
    // A held GET is answered at the end of the turn that queued packets.
    http(&mut h, conn(6), "GET", &poll(&sid), b"");
    h.expect_nothing();
    http(
        &mut h,
        conn(7),
        "POST",
        &poll(&sid),
        br#"42["message",{"type":"x"}]"#,
    );
    h.expect(vec![Effect::Respond(conn(7), ok_response())]);
    h.turn_end().expect(vec![Effect::Respond(
        conn(6),
        payload_response(sio(&err("Unknown message type: x")).into_bytes()),
    )]);
}

#[test]
fn pst_47_two_gets_close_the_session() {
    let mut h = h();
    let sid = poll_open(&mut h, 1);
    http(&mut h, conn(2), "GET", &poll(&sid), b"");
    http(&mut h, conn(3), "GET", &poll(&sid), b"");
    h.expect(vec![
        Effect::Respond(conn(3), empty_400()),
        Effect::Respond(conn(2), payload_response(b"1".to_vec())),
    ]);
    http(&mut h, conn(4), "GET", &poll(&sid), b"");
    h.expect(vec![Effect::Respond(
        conn(4),
        error_response(ErrorCode::SessionIdUnknown),
    )]);
}

fn upgrade_ws(sid: &str) -> String {
    format!("/socket.io/?EIO=4&transport=websocket&sid={sid}")
}

#[test]
fn pst_48_upgrade_from_polling() {
    let mut h = h();
    let sid = poll_open(&mut h, 1);
    http(&mut h, conn(2), "POST", &poll(&sid), b"40");
    h.turn_end();
    http(&mut h, conn(3), "GET", &poll(&sid), b"");
    h.clear();
    http(&mut h, conn(4), "GET", &poll(&sid), b"");
    h.expect_nothing();
    let ws = conn(5);
    h.open(ws, &upgrade_ws(&sid)).expect_nothing();
    h.text(ws, "2probe").expect(vec![
        Effect::Send(ws, frame::text("3probe")),
        Effect::Respond(conn(4), payload_response(b"6".to_vec())),
    ]);
    // While the upgrade is pending a GET is answered noop at once.
    http(&mut h, conn(6), "GET", &poll(&sid), b"");
    h.expect(vec![Effect::Respond(
        conn(6),
        payload_response(b"6".to_vec()),
    )]);
    h.text(ws, "5").expect_nothing();
    h.text(ws, r#"42["message",{"type":"register","userId":"u"}]"#)
        .expect_texts(&[(ws, &sio(&reg("u", T0)))]);
    http(&mut h, conn(7), "GET", &poll(&sid), b"");
    h.expect(vec![Effect::Respond(
        conn(7),
        error_response(ErrorCode::BadRequest),
    )]);
    let ws2 = conn(8);
    h.open(ws2, &upgrade_ws(&sid))
        .expect(vec![Effect::Close(ws2, None)]);
}

#[test]
fn pst_49_probe_without_upgrade_times_out() {
    let mut h = h();
    let sid = poll_open(&mut h, 1);
    http(&mut h, conn(2), "POST", &poll(&sid), b"40");
    h.turn_end().clear();
    http(&mut h, conn(3), "GET", &poll(&sid), b"");
    h.clear();
    let ws = conn(4);
    h.open(ws, &upgrade_ws(&sid));
    h.text(ws, "2probe").clear();
    h.advance(9000).tick().expect_nothing();
    h.advance(1000).tick().expect(vec![Effect::Close(ws, None)]);
    h.close(ws);
    http(&mut h, conn(5), "GET", &poll(&sid), b"");
    h.expect_nothing();
    http(
        &mut h,
        conn(6),
        "POST",
        &poll(&sid),
        br#"42["message",{"type":"x"}]"#,
    );
    h.clear();
    h.turn_end().expect(vec![Effect::Respond(
        conn(5),
        payload_response(sio(&err("Unknown message type: x")).into_bytes()),
    )]);
}

#[test]
fn pst_50_heartbeat() {
    let mut h = h();
    let ws = ws_session(&mut h, 1);
    h.advance(24_000).tick().expect_nothing();
    h.advance(1000).tick().expect_texts(&[(ws, "2")]);
    h.advance(1000).text(ws, "3").expect_nothing();
    h.advance(24_000).tick().expect_nothing();
    h.advance(1000).tick().expect_texts(&[(ws, "2")]);
    h.advance(19_000).tick().expect_nothing();
    h.advance(1000).tick().expect(vec![Effect::Close(ws, None)]);
    // Polling: the session is gone; the next GET gets code 1.
    let sid = poll_open(&mut h, 2);
    http(&mut h, conn(3), "POST", &poll(&sid), b"40");
    h.clear();
    h.advance(25_000).tick().expect_nothing();
    h.advance(20_000).tick().expect_nothing();
    http(&mut h, conn(4), "GET", &poll(&sid), b"");
    h.expect(vec![Effect::Respond(
        conn(4),
        error_response(ErrorCode::SessionIdUnknown),
    )]);
}

#[test]
fn pst_51_client_ping_and_close() {
    let mut h = h();
    let ws = ws_session(&mut h, 1);
    h.text(ws, "2").expect(vec![Effect::Close(ws, None)]);
    let ws = ws_session(&mut h, 2);
    h.text(ws, "1").expect(vec![Effect::Close(ws, None)]);
    let sid = poll_open(&mut h, 3);
    http(&mut h, conn(4), "GET", &poll(&sid), b"");
    http(&mut h, conn(5), "POST", &poll(&sid), b"1");
    h.expect(vec![
        Effect::Respond(conn(4), payload_response(b"6".to_vec())),
        Effect::Respond(conn(5), ok_response()),
    ]);
    http(&mut h, conn(6), "GET", &poll(&sid), b"");
    h.expect(vec![Effect::Respond(
        conn(6),
        error_response(ErrorCode::SessionIdUnknown),
    )]);
}

#[test]
fn pst_52_undecodable_packets_close_the_session() {
    let mut h = h();
    let other = ws_session(&mut h, 9);
    let ws = ws_session(&mut h, 1);
    h.text(ws, "9zzz").expect(vec![Effect::Close(ws, None)]);
    let sid = poll_open(&mut h, 2);
    http(&mut h, conn(3), "POST", &poll(&sid), b"");
    h.expect(vec![Effect::Respond(conn(3), ok_response())]);
    http(&mut h, conn(4), "GET", &poll(&sid), b"");
    h.expect(vec![Effect::Respond(
        conn(4),
        error_response(ErrorCode::SessionIdUnknown),
    )]);
    h.text(other, r#"42["message",{"type":"register","userId":"o"}]"#)
        .expect_texts(&[(other, &sio(&reg("o", T0)))]);
}

/// The owner refuses an upgrade for an unknown sid before the `101`; a known one passes.
#[test]
fn pst_43_unknown_sid_refused_before_the_upgrade() {
    let mut h = h();
    let sid = poll_open(&mut h, 1);
    let now = h.now;
    let mut headers = Vec::new();
    let unknown = request("/socket.io/?EIO=4&transport=websocket&sid=AAAAAAAAAAAAAAAAAAAA");
    let refused = h
        .app
        .accept(conn(2), &unknown, now, &mut headers)
        .expect_err("unknown sid");
    assert_eq!(refused.status, Status::BAD_REQUEST);
    assert_eq!(refused.content_type, "text/html");
    assert_eq!(refused.body, b"Session ID unknown");
    let known = request(&format!("/socket.io/?EIO=4&transport=websocket&sid={sid}"));
    assert_eq!(h.app.accept(conn(3), &known, now, &mut headers), Ok(()));
    // The raw face never looks at `sid`.
    assert_eq!(
        h.app
            .accept(conn(4), &request("/?sid=x"), now, &mut headers),
        Ok(())
    );
    assert!(headers.is_empty());
    h.expect_nothing();
}

/// A POST over `maxPayload` (the core did not read it) → `413`, the session closed: its
/// held GET gets `1`, later requests code 1. Other sessions are unaffected.
#[test]
fn pst_53_oversize_post_closes_the_session() {
    let mut h = h();
    let other = ws_session(&mut h, 9);
    let sid = poll_open(&mut h, 1);
    http(&mut h, conn(2), "GET", &poll(&sid), b"");
    h.expect_nothing();
    let mut req = request(&poll(&sid));
    req.method = "POST".into();
    req.body_too_large = true;
    h.event(Event::Http {
        conn: conn(3),
        req: &req,
        body: b"",
    });
    h.expect(vec![
        Effect::Respond(conn(3), too_large()),
        Effect::Respond(conn(2), payload_response(b"1".to_vec())),
    ]);
    http(&mut h, conn(4), "GET", &poll(&sid), b"");
    h.expect(vec![Effect::Respond(
        conn(4),
        error_response(ErrorCode::SessionIdUnknown),
    )]);
    h.text(other, r#"42["message",{"type":"register","userId":"o"}]"#)
        .expect_texts(&[(other, &sio(&reg("o", T0)))]);
}

fn post_reading(h: &mut Harness<Pester>, c: ConnId, sid: &str) {
    let mut req = request(&poll(sid));
    req.method = "POST".into();
    h.event(Event::HttpReading { conn: c, req: &req });
}

/// A second POST while one body is still being read → `400`, the session closed (the held
/// GET gets `1`); the first POST, once whole, finds the session closed (code 1). Whether
/// the second one's body is still arriving too or came whole does not matter.
#[test]
fn second_post_while_one_is_read_closes_the_session() {
    for second_is_whole in [false, true] {
        let mut h = h();
        let sid = poll_open(&mut h, 1);
        http(&mut h, conn(2), "GET", &poll(&sid), b"");
        post_reading(&mut h, conn(3), &sid);
        h.expect_nothing();
        if second_is_whole {
            http(&mut h, conn(4), "POST", &poll(&sid), b"3");
        } else {
            post_reading(&mut h, conn(4), &sid);
        }
        h.expect(vec![
            Effect::Respond(conn(4), empty_400()),
            Effect::Respond(conn(2), payload_response(b"1".to_vec())),
        ]);
        http(&mut h, conn(3), "POST", &poll(&sid), b"40");
        h.expect(vec![Effect::Respond(
            conn(3),
            error_response(ErrorCode::SessionIdUnknown),
        )]);
    }
}

/// POSTs one after the other are fine; a POST abandoned mid-body closes the session.
#[test]
fn posts_in_turn_are_fine_and_an_abandoned_one_closes_the_session() {
    let mut h = h();
    let sid = poll_open(&mut h, 1);
    for c in [3, 4] {
        post_reading(&mut h, conn(c), &sid);
        http(&mut h, conn(c), "POST", &poll(&sid), b"3");
        h.expect(vec![Effect::Respond(conn(c), ok_response())]);
    }
    http(&mut h, conn(2), "GET", &poll(&sid), b"");
    post_reading(&mut h, conn(5), &sid);
    h.close(conn(5));
    h.expect(vec![Effect::Respond(
        conn(2),
        payload_response(b"1".to_vec()),
    )]);
}

#[test]
fn pst_55_no_namespace_within_45_s() {
    let mut h = h();
    let sid = poll_open(&mut h, 1);
    h.advance(25_000).tick();
    http(&mut h, conn(2), "POST", &poll(&sid), b"3");
    h.clear();
    h.advance(19_000).tick().expect_nothing();
    h.advance(1000).tick().expect_nothing();
    http(&mut h, conn(3), "GET", &poll(&sid), b"");
    h.expect(vec![Effect::Respond(
        conn(3),
        error_response(ErrorCode::SessionIdUnknown),
    )]);
}

#[test]
fn pst_60_61_namespaces() {
    let mut h = h();
    let c = conn(1);
    h.open(c, "/socket.io/?EIO=4&transport=websocket").clear();
    h.text(c, "40/admin,")
        .expect_texts(&[(c, r#"44/admin,{"message":"Invalid namespace"}"#)]);
    h.text(c, r#"40{"token":"x"}"#);
    assert_eq!(h.take().len(), 1);
}

#[test]
fn pst_62_event_before_connect_closes() {
    let mut h = h();
    let c = conn(1);
    h.open(c, "/socket.io/?EIO=4&transport=websocket").clear();
    h.text(c, r#"42["message",{"type":"x"}]"#)
        .expect(vec![Effect::Close(c, None)]);
}

#[test]
fn pst_63_to_65_messages_over_socket_io() {
    let mut h = h();
    let a = ws_session(&mut h, 1);
    let b = ws_session(&mut h, 2);
    h.text(a, r#"42["message",{"type":"register","userId":"alice"}]"#)
        .expect_texts(&[(a, &sio(&reg("alice", T0)))]);
    h.text(b, r#"42["message",{"type":"register","userId":"bob"}]"#)
        .clear();
    h.text(
        b,
        r#"42["message",{"type":"open_channel","friendId":"alice"}]"#,
    )
    .clear();
    h.text(
        b,
        r#"42["message","{\"type\":\"message\",\"channelId\":\"chat_alice_bob\",\"text\":\"string payload\"}"]"#,
    )
    .expect_texts(&[(
        a,
        &sio(&format!(r#"{{"type":"message","channelId":"chat_alice_bob","fromUserId":"bob","text":"string payload","timestamp":{T0}}}"#)),
    )]);
    h.text(a, r#"42["message","not json"]"#)
        .expect_texts(&[(a, &sio(&err("Invalid JSON")))]);
    for m in [r#"42["message",null]"#, r#"42["message"]"#] {
        h.text(a, m)
            .expect_texts(&[(a, &sio(&err("Unknown message type: undefined")))]);
    }
}

#[test]
fn pst_66_acks() {
    let mut h = h();
    let a = ws_session(&mut h, 1);
    h.text(a, r#"421["message",{"type":"nope"}]"#)
        .expect_texts(&[(a, &sio(&err("Unknown message type: nope"))), (a, "431[]")]);
    h.text(a, r#"427["other",1]"#).expect_texts(&[(a, "437[]")]);
    h.text(a, r#"42["other",{"type":"register","userId":"x"}]"#)
        .expect_nothing();
    h.text(a, "42").expect_nothing();
    h.text(a, "421").expect_nothing();
}

#[test]
fn pst_67_binary_events() {
    let mut h = h();
    let a = ws_session(&mut h, 1);
    h.text(a, r#"451-["message",{"_placeholder":true,"num":0}]"#)
        .expect_nothing();
    h.binary(a, &[1, 2])
        .expect_texts(&[(a, &sio(&err("Unknown message type: undefined")))]);
    let sid = poll_open(&mut h, 2);
    http(&mut h, conn(3), "POST", &poll(&sid), b"40");
    h.turn_end().clear();
    http(&mut h, conn(9), "GET", &poll(&sid), b"");
    http(&mut h, conn(4), "GET", &poll(&sid), b"");
    h.clear();
    http(
        &mut h,
        conn(5),
        "POST",
        &poll(&sid),
        b"451-[\"message\",{\"_placeholder\":true,\"num\":0}]\x1ebAQI=",
    );
    h.expect(vec![Effect::Respond(conn(5), ok_response())]);
    h.turn_end().expect(vec![Effect::Respond(
        conn(4),
        payload_response(sio(&err("Unknown message type: undefined")).into_bytes()),
    )]);
}

#[test]
fn pst_68_invalid_socket_io_packets_close_the_session() {
    let mut h = h();
    let other = ws_session(&mut h, 99);
    let bad: [&[u8]; 9] = [
        b"4abc",
        b"42{bad",
        b"42\"x\"",
        b"42[]",
        b"42[\"connect\"]",
        b"",
        b"40",
        b"44",
        b"4511-[\"message\"]",
    ];
    for (i, packet) in bad.iter().enumerate() {
        let c = ws_session(&mut h, i as u32 + 1);
        if packet.is_empty() {
            h.binary(c, &[1]);
        } else {
            h.text(c, std::str::from_utf8(packet).unwrap());
        }
        h.expect(vec![Effect::Close(c, None)]);
    }
    h.text(other, r#"42["message",{"type":"register","userId":"o"}]"#)
        .expect_texts(&[(other, &sio(&reg("o", T0)))]);
}

#[test]
fn pst_69_namespace_disconnect_releases_the_user() {
    let mut h = h();
    let a = ws_session(&mut h, 1);
    let b = user(&mut h, 2, "bob");
    h.text(a, r#"42["message",{"type":"register","userId":"alice"}]"#)
        .clear();
    h.text(b, &open_msg("alice")).clear();
    h.text(a, "41")
        .expect_texts(&[(b, &left("chat_alice_bob", "alice", T0))]);
    h.text(a, "40");
    assert_eq!(h.take().len(), 1);
    h.text(
        a,
        r#"42["message",{"type":"open_channel","friendId":"bob"}]"#,
    )
    .expect_texts(&[(a, &sio(&err("Register first")))]);
}

#[test]
fn pst_70_raw_login_kicks_socket_io() {
    let mut h = h();
    let a = ws_session(&mut h, 1);
    h.text(a, r#"42["message",{"type":"register","userId":"alice"}]"#)
        .clear();
    let r = conn(2);
    h.open(r, "/");
    // The spec's send order: `kicked` (and the kick) before `registered`.
    h.text(r, &register_msg("alice")).expect_texts(&[
        (
            a,
            r#"42["message",{"type":"kicked","message":"Logged in from another client"}]"#,
        ),
        (a, "41"),
        (r, &reg("alice", T0)),
    ]);
}

#[test]
fn pst_71_mixed_faces_share_channels() {
    let mut h = h();
    let a = user(&mut h, 1, "alice");
    let b = ws_session(&mut h, 2);
    h.text(b, r#"42["message",{"type":"register","userId":"bob"}]"#)
        .clear();
    h.text(a, &open_msg("bob")).expect_texts(&[
        (a, &opened("chat_alice_bob", "bob", true, T0)),
        (b, &sio(&invite("chat_alice_bob", "alice", T0))),
    ]);
    let typing = format!(
        r#"{{"type":"typing","channelId":"chat_alice_bob","userId":"bob","timestamp":{T0}}}"#
    );
    h.text(
        b,
        r#"42["message",{"type":"typing","channelId":"chat_alice_bob"}]"#,
    )
    .expect_texts(&[(a, &typing)]);
}

/// Several reactors' instances, with posts carried between them as the inboxes would
/// (FIFO per destination), until none is left.
struct Cluster {
    apps: Vec<Harness<Pester>>,
}

impl Cluster {
    fn new(reactors: usize) -> Cluster {
        let apps = (0..reactors)
            .map(|r| Harness::new(Pester::new(r, reactors, &cfg(), [r as u64, 7])))
            .collect();
        Cluster { apps }
    }

    /// Carries posts until quiet; returns every post carried as (from, to, message kind).
    fn settle(&mut self) -> Vec<(usize, usize, &'static str)> {
        let mut carried = Vec::new();
        for _ in 0..100 {
            let mut posts = Vec::new();
            for (r, h) in self.apps.iter_mut().enumerate() {
                posts.extend(h.take_posts().into_iter().map(|(to, m)| (r, to, m)));
            }
            if posts.is_empty() {
                return carried;
            }
            for (from, to, m) in posts {
                let kind = match &m {
                    PesterMsg::Hub(..) => "hub",
                    PesterMsg::Deliver(_) => "deliver",
                    PesterMsg::Fanout { .. } => "fanout",
                };
                carried.push((from, to, kind));
                self.apps[to].event(Event::Remote(m));
            }
        }
        panic!("posts never settled");
    }

    fn text(&mut self, c: ConnId, text: &str) -> Vec<(usize, usize, &'static str)> {
        self.apps[usize::from(c.reactor)].text(c, text);
        self.settle()
    }

    /// Asserts the frames each reactor sent (in reactor order), and clears them.
    fn expect(&mut self, want: &[(ConnId, &str)]) {
        for (r, h) in self.apps.iter_mut().enumerate() {
            let mine: Vec<(ConnId, &str)> = want
                .iter()
                .filter(|(c, _)| usize::from(c.reactor) == r)
                .copied()
                .collect();
            h.expect_texts(&mine);
        }
    }
}

/// Four reactors, alice and bob on two that are not the hub: control messages go through
/// the hub, `message` and `typing` go straight from the sender's reactor to the
/// recipients' (one post per destination reactor, however many recipients live there).
#[test]
fn four_reactors_users_on_different_reactors() {
    let mut cl = Cluster::new(4);
    let hub = owner_of(HUB_KEY, 4);
    let others: Vec<usize> = (0..4).filter(|&r| r != hub).collect();
    let (ra, rb) = (others[0], others[1]);
    let c = |r: usize, n: u32| ConnId::new(r as u16, n, 1);
    let (a, b) = (c(ra, 1), c(rb, 1));
    cl.apps[ra].open(a, "/");
    cl.apps[rb].open(b, "/");
    assert_eq!(
        cl.text(a, &register_msg("alice")),
        [(ra, hub, "hub"), (hub, ra, "deliver")]
    );
    cl.text(b, &register_msg("bob"));
    cl.expect(&[(a, &reg("alice", T0)), (b, &reg("bob", T0))]);
    cl.text(a, &open_msg("bob"));
    cl.expect(&[
        (a, &opened("chat_alice_bob", "bob", true, T0)),
        (b, &invite("chat_alice_bob", "alice", T0)),
    ]);
    let hello = r#"{"type":"message","channelId":"chat_alice_bob","text":"Hello!"}"#;
    assert_eq!(cl.text(a, hello), [(ra, rb, "fanout")]);
    cl.expect(&[(
        b,
        &format!(r#"{{"type":"message","channelId":"chat_alice_bob","fromUserId":"alice","text":"Hello!","timestamp":{T0}}}"#),
    )]);
    assert_eq!(
        cl.text(b, r#"{"type":"typing","channelId":"chat_alice_bob"}"#),
        [(rb, ra, "fanout")]
    );
    cl.expect(&[(
        a,
        &format!(
            r#"{{"type":"typing","channelId":"chat_alice_bob","userId":"bob","timestamp":{T0}}}"#
        ),
    )]);
    // Errors that need the replica only never leave the sender's reactor.
    assert_eq!(
        cl.text(
            a,
            r#"{"type":"message","channelId":"chat_x_y","text":"no"}"#
        ),
        []
    );
    cl.expect(&[(a, &err("Not in this channel"))]);
    // A duplicate login of bob on the hub's reactor: the kick, then bob#2 in the channel.
    let b2 = c(hub, 9);
    cl.apps[hub].open(b2, "/");
    cl.text(b2, &register_msg("bob"));
    let kicked = r#"{"type":"kicked","message":"Logged in from another client"}"#;
    cl.apps[ra].expect_texts(&[(a, &left("chat_alice_bob", "bob", T0))]);
    cl.apps[rb].expect(vec![
        Effect::Send(b, frame::text(kicked)),
        Effect::Close(b, None),
    ]);
    cl.apps[hub].expect_texts(&[(b2, &reg("bob", T0))]);
    cl.apps[rb].close(b);
    assert_eq!(cl.settle(), [(rb, hub, "hub")]);
    cl.expect(&[]);
    cl.text(a, &open_msg("bob"));
    cl.expect(&[
        (a, &opened("chat_alice_bob", "bob", true, T0)),
        (b2, &invite("chat_alice_bob", "alice", T0)),
    ]);
    assert_eq!(cl.text(a, hello), [(ra, hub, "fanout")]);
    cl.expect(&[(
        b2,
        &format!(r#"{{"type":"message","channelId":"chat_alice_bob","fromUserId":"alice","text":"Hello!","timestamp":{T0}}}"#),
    )]);
    // alice leaves: bob#2 gets user_left, and his messages reach nobody.
    cl.apps[ra].close(a);
    cl.settle();
    cl.expect(&[(b2, &left("chat_alice_bob", "alice", T0))]);
    let hi = r#"{"type":"message","channelId":"chat_alice_bob","text":"hi"}"#;
    assert_eq!(cl.text(b2, hi), []);
    cl.expect(&[]);
}

/// One message to several members on one other reactor crosses as one post.
#[test]
fn fan_out_is_one_post_per_destination_reactor() {
    let mut cl = Cluster::new(3);
    let c = |r: usize, n: u32| ConnId::new(r as u16, n, 1);
    // `a_b`+`c` and `a`+`b_c` share `chat_a_b_c`.
    let users = [
        ("a_b", c(0, 1)),
        ("c", c(1, 1)),
        ("a", c(1, 2)),
        ("b_c", c(2, 1)),
    ];
    for (name, conn) in users {
        cl.apps[usize::from(conn.reactor)].open(conn, "/");
        cl.text(conn, &register_msg(name));
        cl.expect(&[(conn, &reg(name, T0))]);
    }
    cl.text(users[0].1, &open_msg("c"));
    cl.text(users[2].1, &open_msg("b_c"));
    for h in &mut cl.apps {
        h.clear();
    }
    let m = r#"{"type":"message","channelId":"chat_a_b_c","text":"x"}"#;
    let mut posts = cl.text(users[0].1, m);
    posts.sort_unstable();
    assert_eq!(posts, [(0, 1, "fanout"), (0, 2, "fanout")]);
    let got = format!(
        r#"{{"type":"message","channelId":"chat_a_b_c","fromUserId":"a_b","text":"x","timestamp":{T0}}}"#
    );
    cl.expect(&[(users[1].1, &got), (users[2].1, &got), (users[3].1, &got)]);
}

/// A connection on another reactor than the hub: its register goes there as one post and
/// the answer comes back as one.
#[test]
fn cross_reactor_deliveries_are_batched_per_reactor() {
    let reactors = 2;
    let hub = owner_of(HUB_KEY, reactors);
    let other = 1 - hub;
    let mut apps: Vec<Harness<Pester>> = (0..reactors)
        .map(|r| Harness::new(Pester::new(r, reactors, &cfg(), [r as u64, 7])))
        .collect();
    let c = ConnId::new(other as u16, 1, 1);
    apps[other].open(c, "/");
    apps[other].text(c, &register_msg("x"));
    let posts = apps[other].take_posts();
    assert_eq!(posts.len(), 1);
    for (to, m) in posts {
        assert_eq!(to, hub);
        apps[hub].event(Event::Remote(m));
    }
    let mut posts = apps[hub].take_posts();
    assert_eq!(posts.len(), 1);
    let (to, m) = posts.pop().unwrap();
    assert_eq!(to, other);
    apps[other].event(Event::Remote(m));
    apps[other].expect_texts(&[(c, &reg("x", T0))]);
}
