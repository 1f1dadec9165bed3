//! Unit tests of the pure app, one per acceptance case of rooms.md (RMS-nn).

use super::*;
use crate::apps::Effect;
use crate::apps::harness::{Harness, conn, text_of};
use crate::config::{RoomsConfig, Secret};
use store::{MemSink, Op};

const KEY: &str = "sekrit";

fn cfg() -> RoomsConfig {
    RoomsConfig {
        admin_signing_key: Some(Secret::from(KEY.to_string())),
        ..RoomsConfig::default()
    }
}

struct T {
    h: Harness<Rooms>,
    ops: MemSink,
}

fn t_with(cfg: RoomsConfig) -> T {
    let ops = MemSink::default();
    let app = Rooms::new(&cfg, HashMap::new(), Box::new(ops.clone()), [7; 32]);
    T {
        h: Harness::new(app),
        ops,
    }
}

fn t() -> T {
    t_with(cfg())
}

fn req(target: &str, cookie: Option<&str>) -> Request {
    let mut r = crate::apps::harness::request(target);
    r.client_ip = Some("127.0.0.1".parse().unwrap());
    if let Some(c) = cookie {
        r.headers.push(("cookie".into(), c.into()));
    }
    r
}

fn room_id(name: &str) -> String {
    state::hex(&sha2::Sha256::digest(name.as_bytes()))
}

fn p(uid: &str, suffix: u64, props: &str, role: &str) -> String {
    format!(
        r#"{{"suffix":{suffix},"properties":{props},"id":"{uid}","connectionDetails":{{"ip":"127.0.0.1"}},"role":"{role}"}}"#
    )
}

fn profile(uid: &str, suffix: u64, props: &str, role: &str) -> String {
    format!(
        r#"{{"type":"profile","data":{}}}"#,
        p(uid, suffix, props, role)
    )
}

impl T {
    /// Accept and open `c` at `target`; returns the user id and the 101 headers.
    fn connect_req(&mut self, c: ConnId, r: &Request) -> (String, Vec<(String, String)>) {
        let mut headers = Vec::new();
        let now = self.h.now;
        self.h
            .app
            .accept(c, r, now, &mut headers)
            .expect("accepted");
        self.h.open_req(c, r);
        let uid = headers
            .iter()
            .find(|(n, _)| n == "X-Session-Id")
            .map(|(_, v)| v.clone())
            .expect("X-Session-Id");
        (uid, headers)
    }

    /// Connects to room `r` and swallows the first frames.
    fn join(&mut self, c: ConnId, target: &str) -> String {
        let uid = self.connect_req(c, &req(target, None)).0;
        self.h.clear();
        uid
    }

    fn texts(&mut self) -> Vec<(ConnId, String)> {
        self.h
            .take()
            .into_iter()
            .map(|e| match e {
                Effect::Send(to, f) => (to, text_of(&f)),
                other => panic!("expected a send, got {other:?}"),
            })
            .collect()
    }

    fn http(&mut self, target: &str) -> String {
        let r = req(target, None);
        let c = conn(900);
        self.h.event(Event::Http {
            conn: c,
            req: &r,
            body: b"",
        });
        match &self.h.take()[..] {
            [Effect::Respond(to, resp)] if *to == c => {
                assert_eq!(resp.content_type, TEXT_PLAIN);
                String::from_utf8(resp.body.clone()).unwrap()
            }
            other => panic!("expected one answer, got {other:?}"),
        }
    }

    fn ops(&self) -> Vec<Op> {
        std::mem::take(&mut *self.ops.0.lock().unwrap())
    }
}

fn is_uuid_v4(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 36
        && [8, 13, 18, 23].iter().all(|&i| b[i] == b'-')
        && b[14] == b'4'
        && matches!(b[19], b'8' | b'9' | b'a' | b'b')
        && s.bytes()
            .enumerate()
            .all(|(i, c)| [8, 13, 18, 23].contains(&i) || matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

#[test]
fn rms_01_connect_headers_and_first_frames() {
    let mut t = t();
    let a = conn(1);
    let (uid, headers) = t.connect_req(a, &req("/websocket?room=r", None));
    assert!(is_uuid_v4(&uid), "{uid}");
    let rid = room_id("r");
    assert_eq!(
        headers,
        vec![
            (
                "Set-Cookie".to_string(),
                format!("{rid}_session={uid}; SameSite=None; Secure")
            ),
            ("X-Session-Id".to_string(), uid.clone()),
            (
                "X-Socket-Server".to_string(),
                "Pact Studio <workwithpact.com>".to_string()
            ),
        ]
    );
    t.h.expect_texts(&[
        (a, r#"{"type":"config","data":""}"#),
        (a, &profile(&uid, 1, "{}", "user")),
    ]);
    // An empty server header sends none.
    let mut t = t_with(RoomsConfig {
        server_header: String::new(),
        ..cfg()
    });
    let (_, headers) = t.connect_req(a, &req("/websocket?room=r", None));
    assert_eq!(headers.len(), 2);
}

#[test]
fn rms_02_second_connection_and_details() {
    let mut t = t();
    let start = t.h.now;
    t.join(conn(1), "/websocket?room=r");
    t.h.advance(5);
    let (uid, _) = t.connect_req(conn(2), &req("/websocket?room=r", None));
    t.h.expect_texts(&[
        (conn(2), r#"{"type":"config","data":""}"#),
        (conn(2), &profile(&uid, 2, "{}", "user")),
    ]);
    t.h.advance(10);
    let want = format!(
        r#"{{"id":"{}","name":"r","count":2,"uniqueCount":2,"increment":2,"incrementSinceRestart":2,"pollCount":0,"config":"","ephemeralPollCount":0,"bootupTime":{start},"uptime":15}}"#,
        room_id("r")
    );
    assert_eq!(t.http("/details?room=r"), want);
}

#[test]
fn rms_03_login_and_profile() {
    let mut t = t();
    let a = conn(1);
    let uid = t.join(a, "/websocket?room=r");
    let props = r#"{"name":"Alice","_email":"a@x","color":"red"}"#;
    t.h.text(a, &format!(r#"{{"type":"login","data":{props}}}"#))
        .expect_texts(&[(a, &profile(&uid, 1, props, "user"))]);
    t.h.text(a, r#"{"type":"profile"}"#)
        .expect_texts(&[(a, &profile(&uid, 1, props, "user"))]);
    assert!(
        t.ops()
            .iter()
            .any(|o| matches!(o, Op::User { props: p, .. } if p == props))
    );
}

#[test]
fn rms_04_login_without_data_and_with_a_string() {
    let mut t = t();
    let a = conn(1);
    let uid = t.join(a, "/websocket?room=r");
    t.h.text(a, r#"{"type":"login","data":{"x":1}}"#).clear();
    t.h.text(a, r#"{"type":"login"}"#)
        .expect_texts(&[(a, &profile(&uid, 1, "{}", "user"))]);
    t.h.text(a, r#"{"type":"login","data":{"x":1}}"#).clear();
    t.h.text(a, r#"{"type":"login","data":"ab"}"#)
        .expect_texts(&[(
            a,
            r#"{"data":"login data must be an object","type":"error"}"#,
        )]);
    t.h.text(a, r#"{"type":"profile"}"#)
        .expect_texts(&[(a, &profile(&uid, 1, r#"{"x":1}"#, "user"))]);
    // Over max_properties_bytes: error, properties unchanged.
    let big = format!(
        r#"{{"type":"login","data":{{"x":"{}"}}}}"#,
        "y".repeat(16_400)
    );
    t.h.text(a, &big).expect_texts(&[(
        a,
        r#"{"data":"Limit exceeded: max_properties_bytes","type":"error"}"#,
    )]);
    t.h.text(a, r#"{"type":"profile"}"#)
        .expect_texts(&[(a, &profile(&uid, 1, r#"{"x":1}"#, "user"))]);
}

#[test]
fn rms_05_chat_reaches_chat_subscribers_only() {
    let mut t = t();
    let (a, b) = (conn(1), conn(2));
    t.join(a, "/websocket?room=r");
    t.join(b, "/websocket?room=r");
    t.h.text(a, r#"{"type":"subscribe","data":"chat"}"#)
        .expect_nothing();
    t.h.text(b, r#"{"type":"subscribe","data":"chat:room42"}"#)
        .expect_nothing();
    t.h.text(b, r#"{"type":"login","data":{"name":"Bob"}}"#)
        .clear();
    t.h.text(b, r#"{"type":"chat","data":"Chat message goes here :)"}"#)
        .expect_texts(&[(
            a,
            r#"{"type":"chat","data":{"message":"Chat message goes here :)","user":{"suffix":2,"properties":{"name":"Bob"}}}}"#,
        )]);
}

#[test]
fn rms_06_chat_echoes_json_with_public_properties() {
    let mut t = t();
    let a = conn(1);
    t.join(a, "/websocket?room=r");
    t.h.text(
        a,
        r#"{"type":"login","data":{"name":"Alice","_email":"a@x","color":"red"}}"#,
    )
    .clear();
    t.h.text(a, r#"{"type":"subscribe","data":"chat"}"#);
    let user = r#""user":{"suffix":1,"properties":{"name":"Alice","color":"red"}}"#;
    t.h.text(a, r#"{"type":"chat","data":{"any":["json"]}}"#)
        .expect_texts(&[(
            a,
            &format!(r#"{{"type":"chat","data":{{"message":{{"any":["json"]}},{user}}}}}"#),
        )]);
    t.h.text(a, r#"{"type":"chat"}"#)
        .expect_texts(&[(a, &format!(r#"{{"type":"chat","data":{{{user}}}}}"#))]);
    t.h.text(a, r#"{"type":"chat","data":{ "a" : 1 }}"#)
        .expect_texts(&[(
            a,
            &format!(r#"{{"type":"chat","data":{{"message":{{"a":1}},{user}}}}}"#),
        )]);
}

fn poll_frame(kind: &str, id: &str, stats: &str) -> String {
    format!(r#"{{"type":"{kind}","data":{{"id":"{id}","stats":{stats}}}}}"#)
}

#[test]
fn rms_07_poll_votes_and_replay() {
    let mut t = t();
    let (a, b) = (conn(1), conn(2));
    t.join(a, "/websocket?room=r");
    t.join(b, "/websocket?room=r");
    t.h.text(
        b,
        r#"{"type":"poll","data":{"id":"test poll","answer":"hello"}}"#,
    )
    .expect_nothing();
    let one = poll_frame("poll", "test poll", r#"{"hello":1}"#);
    t.h.text(a, r#"{"type":"subscribe","data":"poll"}"#)
        .expect_texts(&[(a, &one)]);
    t.h.text(b, r#"{"type":"subscribe","data":"poll:test poll"}"#)
        .expect_texts(&[(b, &one)]);
    let two = poll_frame("poll", "test poll", r#"{"hello":1,"goodbye":1}"#);
    t.h.text(
        a,
        r#"{"type":"poll","data":{"id":"test poll","answer":"goodbye"}}"#,
    )
    .expect_texts(&[(a, &two), (b, &two)]);
    let back = poll_frame("poll", "test poll", r#"{"hello":2}"#);
    t.h.text(
        a,
        r#"{"type":"poll","data":{"id":"test poll","answer":"hello"}}"#,
    )
    .expect_texts(&[(a, &back), (b, &back)]);
}

#[test]
fn rms_08_stats_in_js_key_order_and_integer_ids() {
    let mut t = t();
    let (a, b) = (conn(1), conn(2));
    t.join(a, "/websocket?room=r");
    t.join(b, "/websocket?room=r");
    t.h.text(a, r#"{"type":"subscribe","data":"poll"}"#);
    t.h.text(a, r#"{"type":"poll","data":{"id":"p2","answer":"2"}}"#)
        .clear();
    t.h.text(b, r#"{"type":"poll","data":{"id":"p2","answer":"1"}}"#)
        .expect_texts(&[(a, &poll_frame("poll", "p2", r#"{"1":1,"2":1}"#))]);
    t.h.text(b, r#"{"type":"poll","data":{"id":5,"answer":7}}"#)
        .expect_texts(&[(a, &poll_frame("poll", "5", r#"{"7":1}"#))]);
}

#[test]
fn rms_09_revote_moves_a_vanished_answer_last() {
    let mut t = t();
    let (u1, u2, w) = (conn(1), conn(2), conn(3));
    t.join(u1, "/websocket?room=r");
    t.join(u2, "/websocket?room=r");
    t.join(w, "/websocket?room=r");
    t.h.text(w, r#"{"type":"subscribe","data":"poll"}"#);
    t.h.text(u1, r#"{"type":"poll","data":{"id":"q","answer":"a"}}"#);
    t.h.text(u2, r#"{"type":"poll","data":{"id":"q","answer":"b"}}"#)
        .clear();
    t.h.text(u1, r#"{"type":"poll","data":{"id":"q","answer":"a"}}"#)
        .expect_texts(&[(w, &poll_frame("poll", "q", r#"{"b":1,"a":1}"#))]);
}

#[test]
fn rms_10_unsubscribe_all_and_one_id() {
    let mut t = t();
    let (a, b) = (conn(1), conn(2));
    t.join(a, "/websocket?room=r");
    t.join(b, "/websocket?room=r");
    t.h.text(a, r#"{"type":"subscribe","data":"poll"}"#);
    t.h.text(b, r#"{"type":"subscribe","data":"poll"}"#);
    t.h.text(a, r#"{"type":"unsubscribe","data":"poll"}"#)
        .expect_nothing();
    t.h.text(b, r#"{"type":"poll","data":{"id":"x","answer":"1"}}"#)
        .expect_texts(&[(b, &poll_frame("poll", "x", r#"{"1":1}"#))]);
    t.h.text(a, r#"{"type":"subscribe","data":"poll"}"#).clear();
    t.h.text(a, r#"{"type":"subscribe","data":"poll:x"}"#)
        .clear();
    t.h.text(a, r#"{"type":"unsubscribe","data":"poll:x"}"#)
        .expect_nothing();
    let f = poll_frame("poll", "x", r#"{"1":1,"2":1}"#);
    t.h.text(a, r#"{"type":"poll","data":{"id":"x","answer":"2"}}"#)
        .expect_texts(&[(b, &f), (a, &f)]);
}

#[test]
fn rms_11_ephemeral_vote_leaves_with_the_user() {
    let mut t = t();
    let (a, b) = (conn(1), conn(2));
    t.join(a, "/websocket?room=r");
    t.join(b, "/websocket?room=r");
    t.h.text(a, r#"{"type":"subscribe","data":"ephemeralPoll:e1"}"#)
        .expect_nothing();
    t.h.text(
        b,
        r#"{"type":"ephemeralPoll","data":{"id":"e1","answer":"yes"}}"#,
    )
    .expect_texts(&[(a, &poll_frame("ephemeralPoll", "e1", r#"{"yes":1}"#))]);
    t.h.text(
        a,
        r#"{"type":"ephemeralPoll","data":{"id":"e1","answer":"no"}}"#,
    )
    .expect_texts(&[(a, &poll_frame("ephemeralPoll", "e1", r#"{"yes":1,"no":1}"#))]);
    t.h.close(b)
        .expect_texts(&[(a, &poll_frame("ephemeralPoll", "e1", r#"{"no":1}"#))]);
    // Ephemeral polls are never stored.
    assert!(
        !t.ops()
            .iter()
            .any(|o| matches!(o, Op::Poll { .. } | Op::Vote { .. }))
    );
}

#[test]
fn rms_12_ephemeral_vote_stays_while_the_session_has_a_connection() {
    let mut t = t();
    let (s1, s1b, w) = (conn(1), conn(2), conn(3));
    t.join(s1, "/websocket?room=r&session=s1");
    t.join(s1b, "/websocket?room=r&session=s1");
    t.join(w, "/websocket?room=r");
    t.h.text(w, r#"{"type":"subscribe","data":"ephemeralPoll"}"#);
    t.h.text(
        s1,
        r#"{"type":"ephemeralPoll","data":{"id":"ep","answer":"A"}}"#,
    )
    .expect_texts(&[(w, &poll_frame("ephemeralPoll", "ep", r#"{"A":1}"#))]);
    t.h.text(
        s1b,
        r#"{"type":"ephemeralPoll","data":{"id":"ep","answer":"B"}}"#,
    )
    .expect_texts(&[(w, &poll_frame("ephemeralPoll", "ep", r#"{"B":1}"#))]);
    t.h.close(s1).expect_nothing();
    t.h.close(s1b)
        .expect_texts(&[(w, &poll_frame("ephemeralPoll", "ep", "{}"))]);
    assert!(
        t.http("/details?room=r")
            .contains(r#""ephemeralPollCount":1"#)
    );
}

fn counter(id: &str, v: &str) -> String {
    format!(r#"{{"type":"counter","data":{{"id":"{id}","value":{v}}}}}"#)
}

#[test]
fn rms_13_counters_add_and_replay() {
    let mut t = t();
    let (a, b) = (conn(1), conn(2));
    t.join(a, "/websocket?room=r");
    t.join(b, "/websocket?room=r");
    t.h.text(
        a,
        r#"{"type":"subscribe","data":"counter:order_subtotals"}"#,
    );
    for (v, want) in [("17.75", "17.75"), ("-15.14", "2.61"), (r#""0.1""#, "2.71")] {
        t.h.text(
            b,
            &format!(r#"{{"type":"counter","data":{{"id":"order_subtotals","value":{v}}}}}"#),
        )
        .expect_texts(&[(a, &counter("order_subtotals", want))]);
    }
    t.h.text(b, r#"{"type":"counter","data":{"id":"order_subtotals"}}"#)
        .expect_nothing();
    t.h.text(b, r#"{"type":"counter"}"#).expect_nothing();
    t.h.text(a, r#"{"type":"subscribe","data":"counter"}"#)
        .expect_texts(&[
            (a, &counter("order_subtotals", "2.71")),
            (a, &counter("default", "1")),
        ]);
    assert!(t.ops().contains(&Op::Counter {
        room: "r".into(),
        id: "order_subtotals".into(),
        seq: 0,
        value: "2.71".into()
    }));
}

#[test]
fn rms_14_exact_decimals_and_coercion() {
    let mut t = t();
    let a = conn(1);
    t.join(a, "/websocket?room=r");
    t.h.text(a, r#"{"type":"subscribe","data":"counter:c"}"#);
    let steps = [
        ("0.1", "0.1"),
        ("0.2", "0.3"),
        ("1e2", "100.3"),
        ("-100.3", "0"),
        (r#""  3 ""#, "3"),
        ("true", "4"),
        ("null", "4"),
        ("false", "4"),
        (r#""""#, "4"),
    ];
    for (v, want) in steps {
        t.h.text(
            a,
            &format!(r#"{{"type":"counter","data":{{"id":"c","value":{v}}}}}"#),
        )
        .expect_texts(&[(a, &counter("c", want))]);
    }
    for v in [r#""abc""#, r#""0x10""#, r#""Infinity""#, "{}", "[]"] {
        t.h.text(
            a,
            &format!(r#"{{"type":"counter","data":{{"id":"c","value":{v}}}}}"#),
        )
        .expect_nothing();
    }
    // Out of range: error, counter unchanged.
    let huge = format!("9{}", "9".repeat(33));
    t.h.text(
        a,
        &format!(r#"{{"type":"counter","data":{{"id":"c","value":{huge}}}}}"#),
    )
    .expect_texts(&[(a, r#"{"data":"Counter out of range","type":"error"}"#)]);
    t.h.text(a, r#"{"type":"counter","data":{"id":"c","value":1e40}}"#)
        .expect_texts(&[(a, r#"{"data":"Counter out of range","type":"error"}"#)]);
    t.h.text(a, r#"{"type":"counter","data":{"id":"c","value":-4}}"#)
        .expect_texts(&[(a, &counter("c", "0"))]);
    // Ids: falsy → default, integers → text, others ignored.
    t.h.text(a, r#"{"type":"subscribe","data":"counter"}"#)
        .clear();
    t.h.text(a, r#"{"type":"counter","data":{"id":0,"value":1}}"#)
        .expect_texts(&[(a, &counter("default", "1"))]);
    t.h.text(a, r#"{"type":"counter","data":{"id":12,"value":1}}"#)
        .expect_texts(&[(a, &counter("12", "1"))]);
    t.h.text(a, r#"{"type":"counter","data":{"id":true,"value":1}}"#)
        .expect_nothing();
}

fn sign(room: &str, ts: &str) -> String {
    state::hex(&sha2::Sha256::digest(format!("{room}{ts}{KEY}").as_bytes()))
}

#[test]
fn rms_15_authenticate() {
    let mut t = t();
    let (a, b) = (conn(1), conn(2));
    let uid = t.join(a, "/websocket?room=r");
    let ub = t.join(b, "/websocket?room=r");
    let now = t.h.now;
    let old = now - 600_000;
    t.h.text(
        a,
        &format!(r#"{{"type":"authenticate","data":{{"ts":{old},"key":"{}"}}}}"#, sign("r", &old.to_string())),
    )
    .expect_texts(&[(
        a,
        &format!(r#"{{"data":"Wrong timestamp. Received {old} but now is {now} Diff is 600000","type":"error"}}"#),
    )]);
    t.h.text(a, r#"{"type":"authenticate","data":{"ts":"abc","key":"x"}}"#)
        .expect_texts(&[(
            a,
            &format!(r#"{{"data":"Wrong timestamp. Received abc but now is {now} Diff is NaN","type":"error"}}"#),
        )]);
    let ts = (now - 1000).to_string();
    let key = sign("r", &ts).to_uppercase();
    t.h.text(
        a,
        &format!(r#"{{"type":"authenticate","data":{{"ts":"{ts}","key":"{key}"}}}}"#),
    )
    .expect_texts(&[(a, &profile(&uid, 1, "{}", "admin"))]);
    t.h.text(
        b,
        &format!(
            r#"{{"type":"authenticate","data":{{"ts":"{ts}","key":"{}"}}}}"#,
            sign("other", &ts)
        ),
    )
    .expect_nothing();
    t.h.text(b, r#"{"type":"profile"}"#)
        .expect_texts(&[(b, &profile(&ub, 2, "{}", "user"))]);
    // No signing key: even the key computed with `undefined` does nothing.
    let mut t = t_with(RoomsConfig::default());
    t.join(a, "/websocket?room=r");
    let undefined = state::hex(&sha2::Sha256::digest(format!("r{ts}undefined").as_bytes()));
    t.h.text(
        a,
        &format!(r#"{{"type":"authenticate","data":{{"ts":"{ts}","key":"{undefined}"}}}}"#),
    )
    .expect_nothing();
    t.h.text(
        a,
        r#"{"type":"authenticate","data":{"ts":"abc","key":"x"}}"#,
    )
    .expect_nothing();
}

/// Makes `c` an admin.
fn admin(t: &mut T, c: ConnId, room: &str) {
    let ts = t.h.now.to_string();
    t.h.text(
        c,
        &format!(
            r#"{{"type":"authenticate","data":{{"ts":{ts},"key":"{}"}}}}"#,
            sign(room, &ts)
        ),
    );
    let got = t.texts();
    assert!(
        got.len() == 1 && got[0].1.contains(r#""role":"admin""#),
        "{got:?}"
    );
}

#[test]
fn rms_16_config_from_admins_only() {
    let mut t = t();
    let (a, b) = (conn(1), conn(2));
    t.join(a, "/websocket?room=r");
    t.join(b, "/websocket?room=r");
    t.h.text(b, r#"{"type":"config","data":"hacked"}"#)
        .expect_nothing();
    assert!(t.http("/details?room=r").contains(r#""config":"""#));
    admin(&mut t, a, "r");
    let f = r#"{"type":"config","data":"{\"theme\":\"dark\"}"}"#;
    t.h.text(a, r#"{"type":"config","data":"{\"theme\":\"dark\"}"}"#)
        .expect_texts(&[(a, f), (b, f)]);
    let c = conn(3);
    t.connect_req(c, &req("/websocket?room=r", None));
    let first = t.texts().remove(0);
    assert_eq!(first, (c, f.to_string()));
    t.h.text(a, r#"{"type":"config","data":{"a":1}}"#);
    assert!(
        t.texts()
            .iter()
            .all(|(_, x)| x == r#"{"type":"config","data":"{\"a\":1}"}"#)
    );
    assert!(t.ops().contains(&Op::Config {
        room: "r".into(),
        text: r#"{"a":1}"#.into()
    }));
    let big = format!(r#"{{"type":"config","data":"{}"}}"#, "x".repeat(65_537));
    t.h.text(a, &big).expect_texts(&[(
        a,
        r#"{"data":"Limit exceeded: max_config_bytes","type":"error"}"#,
    )]);
}

#[test]
fn rms_17_broadcast() {
    let mut t = t();
    let (a, b, w) = (conn(1), conn(2), conn(3));
    t.join(a, "/websocket?room=r");
    t.join(b, "/websocket?room=r");
    t.join(w, "/websocket?room=r");
    t.h.text(w, r#"{"type":"subscribe","data":"weather"}"#);
    admin(&mut t, a, "r");
    let f = r#"{"type":"whatsup","data":[1,2,"abc"]}"#;
    t.h.text(
        a,
        r#"{"type":"broadcast","data":{"type":"whatsup","data":[1, 2, "abc"]}}"#,
    )
    .expect_texts(&[(a, f), (b, f), (w, f)]);
    t.h.text(
        a,
        r#"{"type":"broadcast","data":{"to":"weather","type":"weather_forecast","data":"Cloudy"}}"#,
    )
    .expect_texts(&[(w, r#"{"type":"weather_forecast","data":"Cloudy"}"#)]);
    t.h.text(a, r#"{"type":"broadcast","data":{"type":"x"}}"#)
        .expect_texts(&[
            (a, r#"{"type":"x"}"#),
            (b, r#"{"type":"x"}"#),
            (w, r#"{"type":"x"}"#),
        ]);
    t.h.text(a, r#"{"type":"broadcast","data":{"data":1}}"#)
        .expect_nothing();
    t.h.text(a, r#"{"type":"broadcast","data":{"type":"x","to":5}}"#)
        .expect_nothing();
    t.h.text(a, r#"{"type":"broadcast","data":{"type":"x","to":":x"}}"#)
        .expect_nothing();
    t.h.text(b, r#"{"type":"broadcast","data":{"type":"x"}}"#)
        .expect_nothing();
}

#[test]
fn rms_18_relay_copies_after_effects() {
    let mut t = t();
    let (a, b, s) = (conn(1), conn(2), conn(3));
    t.join(a, "/websocket?room=r");
    let ub = t.join(b, "/websocket?room=r");
    t.join(s, "/websocket?room=r");
    t.h.text(b, r#"{"type":"subscribe","data":"weather"}"#);
    t.h.text(s, r#"{"type":"subscribe","data":"chat"}"#);
    t.h.text(b, r#"{"type":"relay","data":"report"}"#)
        .expect_nothing();
    admin(&mut t, a, "r");
    t.h.text(a, r#"{"type":"relay","data":"report"}"#)
        .expect_nothing();
    let pb = p(&ub, 2, "{}", "user");
    t.h.text(b, r#"{"type":"report","data":{ "spam" : true }}"#)
        .expect_texts(&[(
            a,
            &format!(r#"{{"data":{{"type":"report","data":{{"spam":true}},"user":{pb}}},"type":"relay:report"}}"#),
        )]);
    t.h.text(b, r#"{"type":"report"}"#).expect_texts(&[(
        a,
        &format!(r#"{{"data":{{"type":"report","user":{pb}}},"type":"relay:report"}}"#),
    )]);
    t.h.text(a, r#"{"type":"relay","data":"chat"}"#);
    t.h.text(b, r#"{"type":"chat","data":"hi"}"#)
        .expect_texts(&[
            (
                s,
                r#"{"type":"chat","data":{"message":"hi","user":{"suffix":2,"properties":{}}}}"#,
            ),
            (
                a,
                &format!(
                    r#"{{"data":{{"type":"chat","data":"hi","user":{pb}}},"type":"relay:chat"}}"#
                ),
            ),
        ]);
}

#[test]
fn rms_19_delete_relay_is_per_admin() {
    let mut t = t();
    let (x, y, b) = (conn(1), conn(2), conn(3));
    t.join(x, "/websocket?room=r");
    t.join(y, "/websocket?room=r");
    t.join(b, "/websocket?room=r");
    admin(&mut t, x, "r");
    admin(&mut t, y, "r");
    t.h.text(x, r#"{"type":"relay","data":"report"}"#);
    t.h.text(y, r#"{"type":"relay","data":"report"}"#);
    t.h.text(x, r#"{"type":"relay","data":"other"}"#);
    t.h.text(b, r#"{"type":"report"}"#);
    assert_eq!(
        t.texts().iter().map(|(c, _)| *c).collect::<Vec<_>>(),
        [x, y]
    );
    t.h.text(x, r#"{"type":"deleteRelay","data":"report"}"#)
        .clear();
    t.h.text(b, r#"{"type":"deleteRelay"}"#).clear();
    t.h.text(b, r#"{"type":"report"}"#);
    assert_eq!(t.texts().iter().map(|(c, _)| *c).collect::<Vec<_>>(), [y]);
    t.h.text(b, r#"{"type":"other"}"#);
    assert_eq!(t.texts().iter().map(|(c, _)| *c).collect::<Vec<_>>(), [x]);
    t.h.text(x, r#"{"type":"deleteRelay"}"#).clear();
    t.h.text(b, r#"{"type":"other"}"#).expect_nothing();
    t.h.text(b, r#"{"type":"report"}"#);
    assert_eq!(t.texts().iter().map(|(c, _)| *c).collect::<Vec<_>>(), [y]);
}

#[test]
fn rms_20_subscriptions_belong_to_the_connection() {
    let mut t = t();
    let (s1, s2, o) = (conn(1), conn(2), conn(3));
    let uid = t.join(s1, "/websocket?room=r&session=same");
    t.join(s2, "/websocket?room=r&session=same");
    t.join(o, "/websocket?room=r");
    t.h.text(s1, r#"{"type":"subscribe","data":"chat"}"#);
    t.h.text(o, r#"{"type":"chat","data":1}"#);
    assert_eq!(t.texts().iter().map(|(c, _)| *c).collect::<Vec<_>>(), [s1]);
    t.h.text(s1, r#"{"type":"profile"}"#)
        .expect_texts(&[(s1, &profile(&uid, 1, "{}", "user"))]);
    t.h.text(s2, r#"{"type":"profile"}"#)
        .expect_texts(&[(s2, &profile(&uid, 1, "{}", "user"))]);
}

#[test]
fn rms_21_server_pings_every_25_s() {
    let mut t = t();
    let a = conn(1);
    t.join(a, "/websocket?room=r");
    t.h.advance(24_999).tick().expect_nothing();
    t.h.advance(1).tick();
    let now = t.h.now;
    t.h.expect_texts(&[(a, &format!(r#"{{"type":"ping","data":{now}}}"#))]);
    t.h.advance(25_000).tick();
    let now = t.h.now;
    t.h.expect_texts(&[(a, &format!(r#"{{"type":"ping","data":{now}}}"#))]);
    t.h.text(a, r#"{"type":"ping","data":1}"#).expect_nothing();
    t.h.close(a).advance(25_000).tick().expect_nothing();
}

#[test]
fn rms_22_close_message() {
    let mut t = t();
    let (a, b, w) = (conn(1), conn(2), conn(3));
    t.join(a, "/websocket?room=r");
    let ub = t.join(b, "/websocket?room=r");
    t.join(w, "/websocket?room=r");
    admin(&mut t, a, "r");
    t.h.text(a, r#"{"type":"relay","data":"close"}"#);
    t.h.text(w, r#"{"type":"subscribe","data":"ephemeralPoll"}"#);
    t.h.text(
        b,
        r#"{"type":"ephemeralPoll","data":{"id":"e","answer":"x"}}"#,
    )
    .clear();
    t.h.text(b, r#"{"type":"close"}"#).expect(vec![
        Effect::Close(b, None),
        Effect::Send(
            a,
            frame::text(&format!(
                r#"{{"data":{{"type":"close","user":{}}},"type":"relay:close"}}"#,
                p(&ub, 2, "{}", "user")
            )),
        ),
    ]);
    t.h.close(b)
        .expect_texts(&[(w, &poll_frame("ephemeralPoll", "e", "{}"))]);
}

#[test]
fn rms_23_resume_by_session_parameter() {
    let mut t = t();
    let a = conn(1);
    let rid = room_id("r");
    let (uid, h1) = t.connect_req(a, &req("/websocket?room=r", None));
    t.h.text(a, r#"{"type":"login","data":{"name":"Alice"}}"#)
        .clear();
    t.h.close(a).clear();
    let a2 = conn(2);
    let (uid2, h2) = t.connect_req(a2, &req(&format!("/websocket?room=r&session={uid}"), None));
    assert_eq!((uid2.as_str(), &h2[0]), (uid.as_str(), &h1[0]));
    t.h.expect_texts(&[
        (a2, r#"{"type":"config","data":""}"#),
        (a2, &profile(&uid, 1, r#"{"name":"Alice"}"#, "user")),
    ]);
    assert!(t.http("/details?room=r").contains(r#""increment":2"#));
    let (own, h3) = t.connect_req(conn(3), &req("/websocket?room=r&session=my-own-id", None));
    assert_eq!(own, "my-own-id");
    assert_eq!(
        h3[0].1,
        format!("{rid}_session=my-own-id; SameSite=None; Secure")
    );
    t.h.expect_texts(&[
        (conn(3), r#"{"type":"config","data":""}"#),
        (conn(3), &profile("my-own-id", 3, "{}", "user")),
    ]);
    let (fresh, _) = t.connect_req(conn(4), &req("/websocket?room=r&session=a%20b", None));
    assert!(is_uuid_v4(&fresh), "{fresh}");
    let long = "x".repeat(129);
    let (fresh, _) = t.connect_req(
        conn(5),
        &req(&format!("/websocket?room=r&session={long}"), None),
    );
    assert!(is_uuid_v4(&fresh), "{fresh}");
}

#[test]
fn rms_24_resume_by_cookie_and_precedence() {
    let mut t = t();
    let a = conn(1);
    let uid = t.join(a, "/websocket?room=r");
    t.h.close(a);
    let cookie = format!("other=1; {}_session={uid}; x=2", room_id("r"));
    let (got, _) = t.connect_req(conn(2), &req("/websocket?room=r", Some(&cookie)));
    assert_eq!(got, uid);
    t.h.expect_texts(&[
        (conn(2), r#"{"type":"config","data":""}"#),
        (conn(2), &profile(&uid, 1, "{}", "user")),
    ]);
    let (got, _) = t.connect_req(conn(3), &req("/websocket?room=r&session=q", Some(&cookie)));
    assert_eq!(got, "q");
    // A cookie for another room does not count.
    let (got, _) = t.connect_req(conn(4), &req("/websocket?room=r2", Some(&cookie)));
    assert_ne!(got, uid);
}

#[test]
fn rms_26_details_and_users_shapes() {
    let mut t = t();
    let (a, b) = (conn(1), conn(2));
    t.join(a, "/websocket?room=r");
    t.join(b, "/websocket?room=r");
    t.h.text(a, r#"{"type":"login","data":{"name":"Alice","_e":1}}"#)
        .clear();
    t.h.text(a, r#"{"type":"poll","data":{"id":"p","answer":"x"}}"#);
    t.h.text(
        a,
        r#"{"type":"ephemeralPoll","data":{"id":"e","answer":"x"}}"#,
    );
    admin(&mut t, a, "r");
    t.h.text(a, r#"{"type":"config","data":"x"}"#).clear();
    t.h.advance(3);
    let d = t.http("/details?room=r");
    assert!(
        d.contains(r#""pollCount":1,"config":"x","ephemeralPollCount":1,"#),
        "{d}"
    );
    let u = t.http("/users?room=r");
    let now = t.h.now;
    assert_eq!(
        u,
        format!(
            r#"{{"ts":{now},"users":[{{"suffix":1,"properties":{{"name":"Alice"}},"lastCommunication":{}}},{{"suffix":2,"properties":{{}},"lastCommunication":{}}}]}}"#,
            now - 3,
            now - 3
        )
    );
}

#[test]
fn rms_27_routes() {
    let c = cfg();
    let plain_body = |r: Route| match r {
        Route::Respond(resp) => (resp.status.0, String::from_utf8(resp.body).unwrap()),
        other => panic!("{other:?}"),
    };
    let r = |t: &str| req(t, None);
    assert_eq!(
        plain_body(route(&r("/websocket"), false, &c)),
        (400, "expected websocket".into())
    );
    assert_eq!(
        plain_body(route(&r("/nope"), false, &c)),
        (404, "Oh, the sadness! This route does not exist.".into())
    );
    assert_eq!(plain_body(route(&r("/"), false, &c)).0, 200);
    let long = format!("/details?room={}", "a".repeat(257));
    assert_eq!(
        plain_body(route(&r(&long), false, &c)),
        (400, "room name too long".into())
    );
    assert_eq!(room_name(&r("/x?room=")), "default");
    assert_eq!(room_name(&r("/x?room=a+b")), "a b");
    assert_eq!(room_name(&r("/x?room=a%20b")), "a b");
    match route(&r("/websocket?room=a%20b"), true, &c) {
        Route::Upgrade { owner, .. } => assert_eq!(owner, Some(owner_key("a b"))),
        other => panic!("{other:?}"),
    }
}

#[test]
fn rms_28_bad_input_is_ignored() {
    let mut t = t();
    let (a, b) = (conn(1), conn(2));
    t.join(a, "/websocket?room=r");
    t.join(b, "/websocket?room=r");
    t.h.text(b, r#"{"type":"subscribe","data":"chat"}"#);
    for bad in [
        "not json",
        "null",
        "5",
        "[]",
        r#"{"type":5}"#,
        r#"{"data":1}"#,
        r#"{"type":"poll","data":null}"#,
        r#"{"type":"poll","data":{"id":{},"answer":"a"}}"#,
        r#"{"type":"poll","data":"x"}"#,
        r#"{"type":"poll","data":{"id":"p"}}"#,
        r#"{"type":"subscribe","data":5}"#,
        r#"{"type":"subscribe","data":null}"#,
        r#"{"type":"subscribe","data":":x"}"#,
        r#"{"type":"authenticate","data":null}"#,
        r#"{"type":"authenticate","data":{"ts":1,"key":5}}"#,
        r#"{"type":"counter","data":"x"}"#,
        r#"{"type":"broadcast","data":{"type":"x"}}"#,
        r#"{"type":"deleteRelay","data":5}"#,
        r#"{"type":"nope","data":{"x":1}}"#,
        r#"{"type":"poll","data":{"id":123456789012345678901234567890,"answer":1.5}}"#,
    ] {
        t.h.text(a, bad).expect_nothing();
    }
    t.h.binary(a, &[0xff, 0, 1]).expect_nothing();
    t.h.text(a, r#"{"type":"chat","data":"still here"}"#)
        .expect_texts(&[(
            b,
            r#"{"type":"chat","data":{"message":"still here","user":{"suffix":1,"properties":{}}}}"#,
        )]);
}

#[test]
fn rms_29_limits() {
    let mut t = t_with(RoomsConfig {
        max_polls: 1,
        max_answers_per_poll: 2,
        max_counters: 1,
        max_subscriptions_per_connection: 2,
        max_relays_per_connection: 1,
        ..cfg()
    });
    let a = conn(1);
    t.join(a, "/websocket?room=r");
    t.h.text(a, r#"{"type":"subscribe","data":"poll"}"#);
    t.h.text(a, r#"{"type":"poll","data":{"id":"p1","answer":"a"}}"#)
        .clear();
    t.h.text(a, r#"{"type":"poll","data":{"id":"p2","answer":"a"}}"#)
        .expect_texts(&[(a, r#"{"data":"Limit exceeded: max_polls","type":"error"}"#)]);
    t.h.text(a, r#"{"type":"poll","data":{"id":"p1","answer":"b"}}"#)
        .expect_texts(&[(a, &poll_frame("poll", "p1", r#"{"b":1}"#))]);
    let long = "i".repeat(257);
    t.h.text(
        a,
        &format!(r#"{{"type":"poll","data":{{"id":"{long}","answer":"a"}}}}"#),
    )
    .expect_texts(&[(
        a,
        r#"{"data":"Limit exceeded: max_id_bytes","type":"error"}"#,
    )]);
    t.h.text(a, &format!(r#"{{"type":"subscribe","data":"{long}"}}"#))
        .expect_texts(&[(
            a,
            r#"{"data":"Limit exceeded: max_id_bytes","type":"error"}"#,
        )]);
    t.h.text(a, r#"{"type":"subscribe","data":"x"}"#)
        .expect_nothing();
    t.h.text(a, r#"{"type":"subscribe","data":"y"}"#)
        .expect_texts(&[(
            a,
            r#"{"data":"Limit exceeded: max_subscriptions_per_connection","type":"error"}"#,
        )]);
    t.h.text(a, r#"{"type":"counter","data":{"id":"c1","value":1}}"#);
    t.h.text(a, r#"{"type":"counter","data":{"id":"c2","value":1}}"#)
        .expect_texts(&[(
            a,
            r#"{"data":"Limit exceeded: max_counters","type":"error"}"#,
        )]);
    let ephemeral =
        |id: &str| format!(r#"{{"type":"ephemeralPoll","data":{{"id":"{id}","answer":"a"}}}}"#);
    t.h.text(a, &ephemeral("e1"));
    t.h.text(a, &ephemeral("e2")).expect_nothing();
    let mut t2 = t_with(RoomsConfig {
        max_ephemeral_polls: 1,
        max_answers_per_poll: 1,
        ..cfg()
    });
    let (b, c) = (conn(2), conn(3));
    t2.join(b, "/websocket?room=r");
    t2.join(c, "/websocket?room=r");
    t2.h.text(b, &ephemeral("e1"));
    t2.h.text(b, &ephemeral("e2")).expect_texts(&[(
        b,
        r#"{"data":"Limit exceeded: max_ephemeral_polls","type":"error"}"#,
    )]);
    t2.h.text(
        c,
        r#"{"type":"ephemeralPoll","data":{"id":"e1","answer":"b"}}"#,
    )
    .expect_texts(&[(
        c,
        r#"{"data":"Limit exceeded: max_answers_per_poll","type":"error"}"#,
    )]);
    // The sole voter of the only answer may move: the old answer makes room.
    t2.h.text(
        b,
        r#"{"type":"ephemeralPoll","data":{"id":"e1","answer":"b"}}"#,
    )
    .expect_nothing();
    admin(&mut t, a, "r");
    t.h.text(a, r#"{"type":"relay","data":"x"}"#)
        .expect_nothing();
    t.h.text(a, r#"{"type":"relay","data":"y"}"#)
        .expect_texts(&[(
            a,
            r#"{"data":"Limit exceeded: max_relays_per_connection","type":"error"}"#,
        )]);
}

#[test]
fn rms_33_room_cap_refuses_before_the_upgrade() {
    let mut t = t_with(RoomsConfig {
        max_connections_per_room: 1,
        ..cfg()
    });
    t.join(conn(1), "/websocket?room=r");
    let mut headers = Vec::new();
    let now = t.h.now;
    let r =
        t.h.app
            .accept(conn(2), &req("/websocket?room=r", None), now, &mut headers);
    assert_eq!(r.unwrap_err().status.0, 503);
    // Another room is not affected.
    t.join(conn(3), "/websocket?room=other");
}

#[test]
fn rooms_are_isolated_and_persisted_state_reloads() {
    let mut t = t();
    let (a, b) = (conn(1), conn(2));
    t.join(a, "/websocket?room=a");
    let ub = t.join(b, "/websocket?room=b&session=same");
    t.h.text(a, r#"{"type":"subscribe","data":"chat"}"#);
    t.h.text(b, r#"{"type":"chat","data":1}"#).expect_nothing();
    t.h.text(b, r#"{"type":"poll","data":{"id":"p","answer":"x"}}"#);
    t.h.text(b, r#"{"type":"counter","data":{"id":"c","value":"2.5"}}"#);
    t.h.text(b, r#"{"type":"login","data":{"n":1}}"#).clear();
    t.h.event(Event::Shutdown);
    let ops = t.ops();
    assert_eq!(ops.last(), Some(&Op::Flush));
    // Replay the ops into a Loaded room, as the store would.
    let mut l = store::Loaded::default();
    for op in ops {
        match op {
            Op::Increment { value, .. } => l.increment = value,
            Op::Poll { poll, seq, .. } => l.polls.push((poll, seq, Vec::new())),
            Op::Answer {
                answer,
                pos: Some(pos),
                ..
            } => l.polls[0].2.push((answer, pos, Vec::new())),
            Op::Vote { user, .. } => l.polls[0].2[0].2.push(user),
            Op::Counter { id, seq, value, .. } => l.counters = vec![(id, seq, value)],
            Op::User {
                id,
                suffix,
                props,
                last_seen,
                room,
            } if &*room == "b" => {
                l.users.retain(|u| u.0 != id);
                l.users.push((id, suffix, props, last_seen));
            }
            _ => {}
        }
    }
    let loaded = HashMap::from([("b".to_string(), l)]);
    let app = Rooms::new(&cfg(), loaded, Box::new(store::NullSink), [1; 32]);
    let mut t = T {
        h: Harness::new(app),
        ops: MemSink::default(),
    };
    let (uid, _) = t.connect_req(conn(5), &req("/websocket?room=b&session=same", None));
    assert_eq!(uid, ub);
    t.h.expect_texts(&[
        (conn(5), r#"{"type":"config","data":""}"#),
        (conn(5), &profile(&ub, 1, r#"{"n":1}"#, "user")),
    ]);
    t.h.text(conn(5), r#"{"type":"subscribe","data":"poll"}"#)
        .expect_texts(&[(conn(5), &poll_frame("poll", "p", r#"{"x":1}"#))]);
    t.h.text(conn(5), r#"{"type":"subscribe","data":"counter"}"#)
        .expect_texts(&[(conn(5), &counter("c", "2.5"))]);
    assert!(
        t.http("/details?room=b")
            .contains(r#""increment":2,"incrementSinceRestart":1"#)
    );
}

#[test]
fn idle_rooms_unload_their_ephemeral_state() {
    let mut t = t();
    let a = conn(1);
    t.join(a, "/websocket?room=r");
    t.h.text(
        a,
        r#"{"type":"ephemeralPoll","data":{"id":"e","answer":"x"}}"#,
    );
    t.h.close(a);
    t.h.advance(59_000).tick();
    assert!(
        t.http("/details?room=r")
            .contains(r#""ephemeralPollCount":1"#)
    );
    t.h.advance(2_000).tick();
    let now = t.h.now;
    let d = t.http("/details?room=r");
    assert!(
        d.contains(&format!(
            r#""ephemeralPollCount":0,"bootupTime":{now},"uptime":0"#
        )),
        "{d}"
    );
    assert!(
        d.contains(r#""increment":1,"incrementSinceRestart":0"#),
        "{d}"
    );
}

/// A sink that keeps each push as it came: a single op, or a group.
#[derive(Clone, Default)]
struct Pushes(std::sync::Arc<std::sync::Mutex<Vec<Vec<Op>>>>);

impl store::Sink for Pushes {
    fn push(&mut self, op: Op) {
        self.0.lock().unwrap().push(vec![op]);
    }

    fn push_group(&mut self, ops: Vec<Op>) {
        self.0.lock().unwrap().push(ops);
    }
}

/// rooms.md "Each batch is atomic … never … half-applied": every row an event changes
/// reaches the sink in one push, so a batch boundary (a crash) never splits an event.
#[test]
fn the_rows_of_one_event_reach_the_store_in_one_push() {
    let pushes = Pushes::default();
    let app = Rooms::new(&cfg(), HashMap::new(), Box::new(pushes.clone()), [7; 32]);
    let mut t = T {
        h: Harness::new(app),
        ops: MemSink::default(),
    };
    let take = || std::mem::take(&mut *pushes.0.lock().unwrap());
    let a = conn(1);
    t.join(a, "/websocket?room=r&session=u");
    let opened = take();
    assert_eq!(opened.len(), 1, "{opened:?}");
    assert!(matches!(
        &opened[0][..],
        [Op::Increment { .. }, Op::User { .. }]
    ));
    t.h.text(a, r#"{"type":"poll","data":{"id":"p","answer":"x"}}"#);
    let first = take();
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(matches!(
        &first[0][..],
        [Op::Poll { .. }, Op::Answer { .. }, Op::Vote { .. }]
    ));
    // A new answer: the old one goes, the new one comes, the vote moves, together.
    t.h.text(a, r#"{"type":"poll","data":{"id":"p","answer":"y"}}"#);
    let moved = take();
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert!(matches!(
        &moved[0][..],
        [
            Op::Answer { pos: None, .. },
            Op::Answer { pos: Some(_), .. },
            Op::Vote { .. }
        ]
    ));
    t.h.text(a, r#"{"type":"counter"}"#);
    assert!(matches!(&take()[..], [one] if matches!(&one[..], [Op::Counter { .. }])));
}
