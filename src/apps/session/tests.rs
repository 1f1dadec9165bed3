//! Unit tests of the session app through the harness (session.md SES-*).

use super::*;
use crate::apps::Effect;
use crate::apps::harness::{Harness, conn, request, text_of};
use crate::config::Secret;

const KEY: &str = "0123456789abcdef0123456789abcdef";
const HOST: &str = "127.0.0.1:8000";

fn settings() -> SessionSettings {
    SessionSettings {
        jwt_secret: Some(Secret::from(KEY.to_string())),
        ..SessionSettings::default()
    }
}

fn h_with(tweak: impl FnOnce(&mut SessionSettings)) -> Harness<Session> {
    let mut s = settings();
    tweak(&mut s);
    Harness::new(Session::new(&s))
}

fn h() -> Harness<Session> {
    h_with(|_| {})
}

fn target(user: &str, room: &str) -> String {
    let t = jwt::mint(user, room, HOST, 1_700_000_000, 0, KEY.as_bytes());
    format!("/?token={t}")
}

/// Joins `c` and ends the turn (the join's snapshots stay pending).
fn join(h: &mut Harness<Session>, c: ConnId, user: &str, room: &str) {
    h.open(c, &target(user, room)).turn_end();
}

fn iso(ms: Millis) -> String {
    let mut s = String::new();
    snapshot::iso_millis(ms, &mut s);
    s
}

fn users(list: &[&str]) -> String {
    let quoted: Vec<String> = list.iter().map(|u| format!("\"{u}\"")).collect();
    format!("\"connectedUsers\":[{}]", quoted.join(","))
}

fn close(c: ConnId, reason: &'static str) -> Effect<SessionMsg> {
    Effect::Close(c, Some((1008, reason.into())))
}

#[test]
fn ses_01_first_join_gets_empty_room() {
    let mut h = h();
    let a = conn(1);
    h.open(a, &target("alice", "r1")).expect_nothing();
    h.turn_end()
        .expect_texts(&[(a, r#"{"messages":[],"connectedUsers":["alice"]}"#)]);
    h.turn_end().expect_nothing();
}

#[test]
fn ses_02_second_join_reaches_both() {
    let mut h = h();
    let (a, b) = (conn(1), conn(2));
    join(&mut h, a, "alice", "r1");
    h.clear();
    join(&mut h, b, "bob", "r1");
    let s = r#"{"messages":[],"connectedUsers":["alice","bob"]}"#;
    h.expect_texts(&[(a, s), (b, s)]);
}

#[test]
fn ses_03_message_snapshot_with_virtual_clock_ts() {
    let mut h = h();
    let (a, b) = (conn(1), conn(2));
    join(&mut h, a, "alice", "r1");
    join(&mut h, b, "bob", "r1");
    h.clear();
    h.advance(536);
    let ts = iso(h.now);
    assert_eq!(ts, "2023-11-14T22:13:20.536Z");
    h.text(a, "Hello, world!").turn_end();
    let s = format!(
        r#"{{"messages":[{{"userId":"alice","msg":"Hello, world!","ts":"{ts}"}}],"connectedUsers":["alice","bob"]}}"#
    );
    h.expect_texts(&[(a, &s), (b, &s)]);
}

#[test]
fn ses_04_binary_is_lossy_utf8() {
    let mut h = h();
    let b = conn(2);
    join(&mut h, b, "bob", "r1");
    h.clear();
    h.binary(b, b"bin")
        .binary(b, &[0x68, 0x69, 0xff])
        .turn_end();
    let ts = iso(h.now);
    let s = format!(
        "{{\"messages\":[{{\"userId\":\"bob\",\"msg\":\"bin\",\"ts\":\"{ts}\"}},{{\"userId\":\"bob\",\"msg\":\"hi\u{FFFD}\",\"ts\":\"{ts}\"}}],{}}}",
        users(&["bob"])
    );
    h.expect_texts(&[(b, &s)]);
    assert!(
        s.as_bytes()
            .windows(5)
            .any(|w| w == [0x68, 0x69, 0xef, 0xbf, 0xbd])
    );
}

#[test]
fn ses_05_utf16_length_cap() {
    let mut h = h();
    let (a, b) = (conn(1), conn(2));
    join(&mut h, a, "alice", "r1");
    join(&mut h, b, "bob", "r1");
    h.clear();
    let emoji = "😀".repeat(500);
    h.text(a, &emoji).turn_end();
    assert_eq!(drain_texts(&mut h).len(), 2, "1000 units are accepted");
    h.text(a, &"x".repeat(1001)).turn_end().expect_nothing();
    h.text(a, "").turn_end();
    let ts = iso(h.now);
    let s = format!(
        r#"{{"messages":[{{"userId":"alice","msg":"{emoji}","ts":"{ts}"}},{{"userId":"alice","msg":"","ts":"{ts}"}}],{}}}"#,
        users(&["alice", "bob"])
    );
    h.expect_texts(&[(a, &s), (b, &s)]);
    // The connection stays open: bob still talks to alice.
    h.text(b, "still here").turn_end();
    assert_eq!(drain_texts(&mut h).len(), 2);
}

/// Every pending frame as (conn, text), cleared.
fn drain_texts(h: &mut Harness<Session>) -> Vec<(ConnId, String)> {
    let mut got = Vec::new();
    for e in pending(h) {
        match e {
            Effect::Send(c, f) | Effect::SendLatest(c, f) => got.push((c, text_of(&f))),
            other => panic!("unexpected {other:?}"),
        }
    }
    got
}

/// Takes the pending effects out of the harness.
fn pending(h: &mut Harness<Session>) -> Vec<Effect<SessionMsg>> {
    h.take_effects()
}

#[test]
fn ses_06_rolling_window() {
    let mut h = h();
    let a = conn(1);
    join(&mut h, a, "alice", "r1");
    h.clear();
    for i in 0..105 {
        h.text(a, &format!("m{i}")).turn_end();
    }
    let got = drain_texts(&mut h);
    let last = &got.last().unwrap().1;
    let v: serde_json::Value = serde_json::from_str(last).unwrap();
    let msgs: Vec<&str> = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["msg"].as_str().unwrap())
        .collect();
    let want: Vec<String> = (5..105).map(|i| format!("m{i}")).collect();
    assert_eq!(msgs, want);
    h.text(a, "m105").turn_end();
    let got = drain_texts(&mut h);
    let v: serde_json::Value = serde_json::from_str(&got[0].1).unwrap();
    let msgs = v["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 100);
    assert_eq!(msgs[0]["msg"], "m6");
    assert_eq!(msgs[99]["msg"], "m105");
}

#[test]
fn ses_07_duplicate_user_keeps_the_first() {
    let mut h = h();
    let (a, b, a2) = (conn(1), conn(2), conn(3));
    join(&mut h, a, "alice", "r1");
    join(&mut h, b, "bob", "r1");
    h.clear();
    h.open(a2, &target("alice", "r1"))
        .expect(vec![close(a2, DUPLICATE_USER)]);
    h.turn_end().expect_nothing();
    h.close(a2).turn_end().expect_nothing();
    h.text(b, "after duplicate").turn_end();
    let ts = iso(h.now);
    let s = format!(
        r#"{{"messages":[{{"userId":"bob","msg":"after duplicate","ts":"{ts}"}}],{}}}"#,
        users(&["alice", "bob"])
    );
    h.expect_texts(&[(a, &s), (b, &s)]);
}

#[test]
fn ses_08_room_full_before_duplicate() {
    let mut h = h_with(|s| s.max_users_per_room = 2);
    let (a, b, c, a2) = (conn(1), conn(2), conn(3), conn(4));
    join(&mut h, a, "alice", "r1");
    join(&mut h, b, "bob", "r1");
    h.clear();
    h.open(c, &target("carol", "r1"))
        .expect(vec![close(c, ROOM_FULL)]);
    h.open(a2, &target("alice", "r1"))
        .expect(vec![close(a2, ROOM_FULL)]);
    h.close_together(&[c, a2]).turn_end().expect_nothing();
    // Other rooms are unaffected, and a place frees up when someone leaves.
    h.close(b).turn_end();
    h.expect_texts(&[(a, &format!(r#"{{"messages":[],{}}}"#, users(&["alice"])))]);
    let c2 = conn(5);
    join(&mut h, c2, "carol", "r1");
    let s = format!(r#"{{"messages":[],{}}}"#, users(&["alice", "carol"]));
    h.expect_texts(&[(a, &s), (c2, &s)]);
}

#[test]
fn ses_09_leave_updates_the_rest() {
    let mut h = h();
    let (a, b) = (conn(1), conn(2));
    join(&mut h, a, "alice", "r1");
    join(&mut h, b, "bob", "r1");
    h.clear();
    h.close(b).turn_end();
    h.expect_texts(&[(a, r#"{"messages":[],"connectedUsers":["alice"]}"#)]);
    // A rejoin moves to the end of the list.
    let b2 = conn(3);
    join(&mut h, b2, "bob", "r1");
    h.clear();
    h.close(a).turn_end().clear();
    let a = conn(4);
    join(&mut h, a, "alice", "r1");
    let s = format!(r#"{{"messages":[],{}}}"#, users(&["bob", "alice"]));
    h.expect_texts(&[(b2, &s), (a, &s)]);
}

fn req(target: &str, host: Option<&str>) -> Request {
    let mut r = request(target);
    if let Some(host) = host {
        r.headers.push(("host".into(), host.into()));
    }
    r
}

fn token(payload: &str) -> String {
    jwt::sign(
        jwt::Alg::HS256,
        r#"{"alg":"HS256"}"#,
        payload,
        KEY.as_bytes(),
    )
}

fn good() -> String {
    token(&format!(
        r#"{{"userId":"alice","roomId":"r1","host":"{HOST}"}}"#
    ))
}

/// The 401 body of a refused route, checking the response's exact headers.
fn refused(r: Route) -> String {
    match r {
        Route::Respond(resp) => {
            let bytes = String::from_utf8(resp.to_bytes()).unwrap();
            assert!(
                bytes.starts_with("HTTP/1.1 401 Unauthorized\r\n"),
                "{bytes}"
            );
            assert!(bytes.contains("\r\nContent-Type: text/plain; charset=utf-8\r\n"));
            assert!(bytes.contains("\r\nWWW-Authenticate: Bearer\r\n"));
            assert!(bytes.contains("\r\nConnection: close\r\n"));
            String::from_utf8(resp.body).unwrap()
        }
        other => panic!("expected 401, got {other:?}"),
    }
}

fn route_at(target: &str, s: &SessionSettings) -> Route {
    route(&req(target, Some(HOST)), true, s, 1_700_000_000)
}

#[test]
fn ses_10_query_forms() {
    let s = settings();
    let t = good();
    let enc: String = t.replace('.', "%2E").replace('-', "%2D");
    for target in [
        format!("/?token={t}&a=1"),
        format!("/?a=1&token={t}"),
        format!("/some/where?token={t}"),
        format!("/?token={enc}"),
        format!("/?token={t}&token=junk"),
    ] {
        match route_at(&target, &s) {
            Route::Upgrade { owner, .. } => assert_eq!(owner.as_deref(), Some(&b"r1"[..])),
            other => panic!("{target}: {other:?}"),
        }
    }
    for target in [format!("/?xtoken={t}"), "/".into(), "/?token=".into()] {
        assert_eq!(refused(route_at(&target, &s)), "missing token", "{target}");
    }
    assert_eq!(refused(route_at("/?token=a.b.c", &s)), "invalid token");
}

#[test]
fn ses_12_to_15_route_answers_with_the_reason() {
    let s = settings();
    let now = 1_700_000_000u64;
    let p = |extra: &str| format!(r#"{{"userId":"alice","roomId":"r1","host":"{HOST}"{extra}}}"#);
    let hs384 = jwt::sign(
        jwt::Alg::HS384,
        r#"{"alg":"HS384"}"#,
        &p(""),
        KEY.as_bytes(),
    );
    assert_eq!(
        refused(route_at(&format!("/?token={hs384}"), &s)),
        "invalid token"
    );
    let mut all = settings();
    all.jwt_algorithms = vec!["HS256".into(), "HS384".into(), "HS512".into()];
    assert!(matches!(
        route_at(&format!("/?token={hs384}"), &all),
        Route::Upgrade { .. }
    ));
    let expired = token(&p(&format!(r#","exp":{}"#, now - 1)));
    assert_eq!(
        refused(route_at(&format!("/?token={expired}"), &s)),
        "token expired"
    );
    let early = token(&p(&format!(r#","nbf":{}"#, now + 10)));
    assert_eq!(
        refused(route_at(&format!("/?token={early}"), &s)),
        "token not yet valid"
    );
    let no_user = token(&format!(r#"{{"roomId":"r1","host":"{HOST}"}}"#));
    assert_eq!(
        refused(route_at(&format!("/?token={no_user}"), &s)),
        "invalid token"
    );
    let other_host = token(r#"{"userId":"alice","roomId":"r1","host":"localhost:1"}"#);
    assert_eq!(
        refused(route_at(&format!("/?token={other_host}"), &s)),
        "host mismatch"
    );
}

#[test]
fn ses_17_plain_http_gets_426() {
    match route(&req("/", Some(HOST)), false, &settings(), 0) {
        Route::Respond(r) => {
            assert_eq!(r.status.0, 426);
            assert_eq!(r.content_type, "text/plain");
            assert_eq!(r.body, b"Upgrade Required");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn ses_18_escaping_in_a_snapshot() {
    let mut h = h();
    let a = conn(1);
    join(&mut h, a, "alice", "r1");
    h.clear();
    h.text(a, "a\"b\\c\n\u{1}/\u{2028}").turn_end();
    let got = drain_texts(&mut h);
    let want = format!(
        "\"msg\":\"a\\\"b\\\\c\\n\\u0001/\u{2028}\",\"ts\":\"{}\"",
        iso(h.now)
    );
    assert!(got[0].1.contains(&want), "{}", got[0].1);
}

#[test]
fn ses_19_coalescing_on_one_snapshot_per_turn() {
    let mut h = h();
    let (a, b) = (conn(1), conn(2));
    join(&mut h, a, "alice", "r1");
    join(&mut h, b, "bob", "r1");
    h.clear();
    h.text(a, "1").text(b, "2").text(a, "3").expect_nothing();
    h.turn_end();
    let got = drain_texts(&mut h);
    assert_eq!(got.len(), 2, "one per member");
    assert_eq!(got[0].1, got[1].1);
    assert_eq!((got[0].0, got[1].0), (a, b));
    let v: serde_json::Value = serde_json::from_str(&got[0].1).unwrap();
    assert_eq!(v["messages"].as_array().unwrap().len(), 3);
}

#[test]
fn ses_19_coalescing_off_one_snapshot_per_change() {
    let mut h = h_with(|s| s.coalesce_snapshots = false);
    let (a, b) = (conn(1), conn(2));
    h.open(a, &target("alice", "r1"))
        .expect_texts(&[(a, r#"{"messages":[],"connectedUsers":["alice"]}"#)]);
    h.open(b, &target("bob", "r1"));
    let s = r#"{"messages":[],"connectedUsers":["alice","bob"]}"#;
    h.expect_texts(&[(a, s), (b, s)]);
    h.text(a, "1").text(b, "2").text(a, "3");
    let effects = pending(&mut h);
    assert_eq!(effects.len(), 6);
    for (i, pair) in effects.chunks(2).enumerate() {
        let (Effect::Send(c0, f0), Effect::Send(c1, f1)) = (&pair[0], &pair[1]) else {
            panic!("plain sends when not coalescing: {pair:?}");
        };
        assert_eq!((*c0, *c1), (a, b));
        assert!(f0 == f1, "one frame shared by every member");
        let v: serde_json::Value = serde_json::from_str(&text_of(f0)).unwrap();
        assert_eq!(v["messages"].as_array().unwrap().len(), i + 1);
    }
    h.turn_end().expect_nothing();
}

#[test]
fn ses_20_snapshots_are_latest_frames_shared_by_members() {
    // The replacement itself is the outbound queue's (reactor/outbound.rs, SES-20 test);
    // the app's part is to hand every snapshot over as the "latest" frame, one buffer.
    let mut h = h();
    let (a, b) = (conn(1), conn(2));
    join(&mut h, a, "alice", "r1");
    join(&mut h, b, "bob", "r1");
    let effects = pending(&mut h);
    let frames: Vec<_> = effects
        .iter()
        .map(|e| match e {
            Effect::SendLatest(_, f) => f.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(frames.len(), 3);
    assert_eq!(frames[1].as_ptr(), frames[2].as_ptr(), "one serialization");
}

#[test]
fn ses_22_rooms_are_isolated() {
    let mut h = h();
    let (a1, a2, b2) = (conn(1), conn(2), conn(3));
    join(&mut h, a1, "alice", "r1");
    join(&mut h, a2, "alice", "r2");
    join(&mut h, b2, "bob", "r2");
    h.clear();
    h.text(a1, "only r1").turn_end();
    let got = drain_texts(&mut h);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, a1);
    h.close(a1).turn_end().expect_nothing();
    h.text(b2, "r2").turn_end();
    let got = drain_texts(&mut h);
    assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), vec![a2, b2]);
}

#[test]
fn ses_23_empty_room_keeps_history_for_an_hour() {
    let mut h = h();
    let (a, b) = (conn(1), conn(2));
    join(&mut h, a, "alice", "r1");
    join(&mut h, b, "bob", "r1");
    h.text(a, "kept").turn_end();
    h.close_together(&[a, b]).turn_end();
    h.clear();
    h.advance(10 * 60_000).tick();
    let a2 = conn(3);
    join(&mut h, a2, "alice", "r1");
    let got = drain_texts(&mut h);
    assert!(got[0].1.contains(r#""msg":"kept""#), "{}", got[0].1);
    h.close(a2).turn_end().expect_nothing();
    h.advance(3_600_000 - 1).tick();
    assert_eq!(h.app.room_count(), 1);
    h.advance(1).tick();
    assert_eq!(h.app.room_count(), 0);
    let a3 = conn(4);
    join(&mut h, a3, "alice", "r1");
    h.expect_texts(&[(a3, r#"{"messages":[],"connectedUsers":["alice"]}"#)]);
    // Without a tick, a rejoin after the hour also starts afresh.
    h.text(a3, "again").close(a3).advance(3_600_000).turn_end();
    join(&mut h, conn(5), "alice", "r1");
    h.expect_texts(&[(conn(5), r#"{"messages":[],"connectedUsers":["alice"]}"#)]);
}

#[test]
fn max_rooms_refuses_a_new_room_only() {
    let mut h = h_with(|s| s.max_rooms = 1);
    let (a, b, c) = (conn(1), conn(2), conn(3));
    join(&mut h, a, "alice", "r1");
    h.clear();
    h.open(b, &target("bob", "r2")).expect(vec![Effect::Close(
        b,
        Some((1013, "Too many rooms".into())),
    )]);
    join(&mut h, c, "carol", "r1");
    assert_eq!(drain_texts(&mut h).len(), 2);
    // Before the upgrade the owner answers 503 for a new room, and lets an existing one in.
    let new_room = crate::apps::harness::request(&target("dave", "r3"));
    let refused = h.app.accept(conn(4), &new_room, h.now, &mut Vec::new());
    assert_eq!(refused.map_err(|r| r.status.0), Err(503));
    let old_room = crate::apps::harness::request(&target("erin", "r1"));
    assert!(
        h.app
            .accept(conn(5), &old_room, h.now, &mut Vec::new())
            .is_ok()
    );
}

#[test]
fn non_members_and_shutdown_are_quiet() {
    let mut h = h();
    let (a, x) = (conn(1), conn(9));
    join(&mut h, a, "alice", "r1");
    h.clear();
    h.text(x, "who?").close(x).turn_end().expect_nothing();
    h.event(Event::Shutdown);
    h.text(a, "late").turn_end().expect_nothing();
}
