//! signal.md acceptance cases through the harness (SIG-nn), plus routing.

use super::*;
use crate::apps::Effect;
use crate::apps::harness::{Harness, conn, request, text_of};

fn h() -> Harness<Signal> {
    Harness::new(Signal::new(SignalConfig::default()))
}

fn intro(id: &str, keys: &[&str]) -> String {
    text_of(&wire::introduction(id, keys))
}

fn closed_with(c: ConnId, code: u16, reason: &'static str) -> Effect<SignalMsg> {
    Effect::Close(c, Some((code, reason.into())))
}

/// Opens `/introduction/<id>` on connection `n`.
fn peer(h: &mut Harness<Signal>, n: u32, id: &str) -> ConnId {
    let c = conn(n);
    h.open(c, &format!("/introduction/{id}")).expect_nothing();
    c
}

#[test]
fn sig_03_introduction_registers_with_no_keys_and_sends_nothing() {
    let mut h = h();
    peer(&mut h, 1, "local-1");
    assert_eq!(h.app.registry.keys_of("local-1"), Some(vec![]));
}

/// SIG-04's state: aaaa4242 and qrst7890 joined and introduced.
fn two_peers(h: &mut Harness<Signal>) -> (ConnId, ConnId) {
    let a = peer(h, 1, "aaaa4242");
    let q = peer(h, 2, "qrst7890");
    h.text(a, r#"{"type":"Join","join":["happy-raccoon","qrs987"]}"#)
        .expect_nothing();
    h.text(
        q,
        r#"{"type":"Join","join":["qrs987","happy-raccoon","zzz"]}"#,
    );
    (a, q)
}

#[test]
fn sig_04_two_peers_are_introduced_with_common_keys_in_sender_order() {
    let mut h = h();
    let (a, q) = two_peers(&mut h);
    h.expect_texts(&[
        (q, &intro("aaaa4242", &["qrs987", "happy-raccoon"])),
        (a, &intro("qrst7890", &["qrs987", "happy-raccoon"])),
    ]);
    assert_eq!(
        intro("qrst7890", &["qrs987", "happy-raccoon"]),
        r#"{"type":"Introduction","id":"qrst7890","keys":["qrs987","happy-raccoon"]}"#
    );
}

/// SIG-05's state: cccc joined `zzz`.
fn three_peers(h: &mut Harness<Signal>) -> (ConnId, ConnId, ConnId) {
    let (a, q) = two_peers(h);
    h.clear();
    let c = peer(h, 3, "cccc");
    h.text(c, r#"{"type":"Join","join":["zzz"]}"#);
    (a, q, c)
}

#[test]
fn sig_05_only_peers_sharing_a_key_are_introduced() {
    let mut h = h();
    let (_a, q, c) = three_peers(&mut h);
    h.expect_texts(&[
        (c, &intro("qrst7890", &["zzz"])),
        (q, &intro("cccc", &["zzz"])),
    ]);
}

#[test]
fn sig_06_rejoin_reintroduces_in_the_senders_order() {
    let mut h = h();
    let (a, q, _c) = three_peers(&mut h);
    h.clear();
    h.text(a, r#"{"type":"Join","join":["happy-raccoon"]}"#)
        .expect_texts(&[
            (a, &intro("qrst7890", &["happy-raccoon", "qrs987"])),
            (q, &intro("aaaa4242", &["happy-raccoon", "qrs987"])),
        ]);
}

#[test]
fn sig_07_leave_reintroduces_the_remaining_common_keys() {
    let mut h = h();
    let (a, q, c) = three_peers(&mut h);
    h.clear();
    h.text(q, r#"{"type":"Leave","leave":["zzz"]}"#)
        .expect_texts(&[
            (q, &intro("aaaa4242", &["qrs987", "happy-raccoon"])),
            (a, &intro("qrst7890", &["qrs987", "happy-raccoon"])),
        ]);
    // cccc no longer shares anything with qrst7890.
    h.text(c, r#"{"join":[]}"#).expect_nothing();
}

#[test]
fn sig_08_type_is_not_examined() {
    let mut h = h();
    let (a, q, c) = three_peers(&mut h);
    h.text(q, r#"{"type":"Leave","leave":["zzz"]}"#);
    h.clear();
    h.text(c, r#"{"join":["qrs987"]}"#).expect_texts(&[
        (c, &intro("aaaa4242", &["qrs987"])),
        (a, &intro("cccc", &["qrs987"])),
        (c, &intro("qrst7890", &["qrs987"])),
        (q, &intro("cccc", &["qrs987"])),
    ]);
    // A Leave-typed message with `join` joins (and an extra `id` is ignored).
    h.text(c, r#"{"type":"Leave","join":["k"],"id":"x"}"#);
    h.clear();
    assert_eq!(
        h.app.registry.keys_of("cccc"),
        Some(vec!["zzz", "qrs987", "k"])
    );
}

#[test]
fn sig_09_a_silent_peer_is_never_introduced() {
    let mut h = h();
    let _silent = peer(&mut h, 1, "silent");
    let a = peer(&mut h, 2, "a");
    let b = peer(&mut h, 3, "b");
    h.text(a, r#"{"join":["k"]}"#).expect_nothing();
    h.text(b, r#"{"join":["k"]}"#)
        .expect_texts(&[(b, &intro("a", &["k"])), (a, &intro("b", &["k"]))]);
}

#[test]
fn sig_10_five_peers_yield_twenty_introductions_one_per_ordered_pair() {
    let mut h = h();
    let ids = ["p1", "p2", "p3", "p4", "p5"];
    let conns: Vec<ConnId> = (0..5).map(|i| peer(&mut h, i as u32 + 1, ids[i])).collect();
    let mut total = 0;
    for (i, &c) in conns.iter().enumerate() {
        h.text(c, r#"{"type":"Join","join":["doc"]}"#);
        // Each newcomer meets every earlier peer: it hears first, then the other.
        let want: Vec<(ConnId, String)> = (0..i)
            .flat_map(|j| {
                [
                    (c, intro(ids[j], &["doc"])),
                    (conns[j], intro(ids[i], &["doc"])),
                ]
            })
            .collect();
        total += want.len();
        let want: Vec<(ConnId, &str)> = want.iter().map(|(c, t)| (*c, t.as_str())).collect();
        h.expect_texts(&want);
    }
    assert_eq!(total, 20);
}

#[test]
fn sig_11_bad_input_is_ignored_and_nobody_is_disturbed() {
    let mut h = h();
    let bob = peer(&mut h, 1, "bob");
    h.text(bob, r#"{"join":["k"]}"#).expect_nothing();
    let m = peer(&mut h, 2, "mallory");
    for t in [
        "this is not json",
        "null",
        "5",
        "[]",
        "\"x\"",
        r#"{"leave":null}"#,
    ] {
        h.text(m, t).expect_nothing();
        h.binary(m, t.as_bytes()).expect_nothing();
    }
    assert_eq!(h.app.registry.keys_of("mallory"), Some(vec![]));
    h.text(m, r#"{"join":[1,null,"k"]}"#)
        .expect_texts(&[(m, &intro("bob", &["k"])), (bob, &intro("mallory", &["k"]))]);
    assert_eq!(h.app.registry.keys_of("mallory"), Some(vec!["k"]));
    h.text(m, r#"{"type":"Join","join":["z"]}"#)
        .expect_texts(&[(m, &intro("bob", &["k"])), (bob, &intro("mallory", &["k"]))]);
    let carol = peer(&mut h, 3, "carol");
    h.text(carol, r#"{"join":["k"]}"#).expect_texts(&[
        (carol, &intro("bob", &["k"])),
        (bob, &intro("carol", &["k"])),
        (carol, &intro("mallory", &["k"])),
        (m, &intro("carol", &["k"])),
    ]);
}

#[test]
fn sig_12_string_join_and_leave_are_one_key() {
    let mut h = h();
    let p = peer(&mut h, 1, "p");
    h.text(p, r#"{"join":"k"}"#).expect_nothing();
    assert_eq!(h.app.registry.keys_of("p"), Some(vec!["k"]));
    let q = peer(&mut h, 2, "q");
    h.text(q, r#"{"join":["abc"]}"#).expect_nothing();
    h.text(q, r#"{"leave":"b"}"#).expect_nothing();
    assert_eq!(h.app.registry.keys_of("q"), Some(vec!["abc"]));
    h.text(q, r#"{"leave":"abc","join":"abc"}"#)
        .expect_nothing();
    assert_eq!(h.app.registry.keys_of("q"), Some(vec![]));
}

#[test]
fn sig_13_binary_join_is_processed_like_text() {
    let mut h = h();
    let a = peer(&mut h, 1, "a");
    let b = peer(&mut h, 2, "b");
    h.text(a, r#"{"join":["k"]}"#).expect_nothing();
    h.binary(b, br#"{"type":"Join","join":["k"]}"#)
        .expect_texts(&[(b, &intro("a", &["k"])), (a, &intro("b", &["k"]))]);
}

#[test]
fn sig_14_duplicate_id_replaces_and_the_old_close_removes_nothing() {
    let mut h = h();
    let d1 = conn(1);
    let d2 = conn(2);
    h.open(d1, "/introduction/dup").expect_nothing();
    h.text(d1, r#"{"join":["k"]}"#).expect_nothing();
    h.open(d2, "/introduction/dup")
        .expect(vec![closed_with(d1, 1008, REPLACED)]);
    assert_eq!(h.app.registry.keys_of("dup"), Some(vec![]));
    h.text(d1, r#"{"join":["late"]}"#).expect_nothing();
    h.text(d2, r#"{"type":"Join","join":["k"]}"#)
        .expect_nothing();
    h.close(d1).expect_nothing();
    let eve = peer(&mut h, 3, "eve");
    h.text(eve, r#"{"type":"Join","join":["k"]}"#)
        .expect_texts(&[(eve, &intro("dup", &["k"])), (d2, &intro("eve", &["k"]))]);
}

#[test]
fn sig_15_a_closed_peer_is_never_introduced_again() {
    let mut h = h();
    let x = peer(&mut h, 1, "x");
    let y = peer(&mut h, 2, "y");
    h.text(x, r#"{"join":["k"]}"#).expect_nothing();
    h.close(x).expect_nothing();
    assert_eq!(h.app.registry.keys_of("x"), None);
    h.text(y, r#"{"join":["k"]}"#).expect_nothing();
    // Closed in the same turn as the Join's sender: still nobody to introduce.
    let z = peer(&mut h, 3, "z");
    h.text(z, r#"{"join":["k"]}"#);
    h.clear();
    h.close(y).expect_nothing();
    h.text(z, r#"{"join":["k"]}"#).expect_nothing();
}

fn open_conn(h: &mut Harness<Signal>, n: u32, path: &str) -> ConnId {
    let c = conn(n);
    h.open(c, path);
    c
}

#[test]
fn sig_16_buffer_goes_to_the_newcomer_in_order_with_opcodes_then_pipe() {
    let mut h = h();
    let a = open_conn(&mut h, 1, "/connection/aaaa4242/qrst7890/happy-raccoon");
    h.expect_nothing();
    h.text(a, "held-1").binary(a, &[1, 2, 3]).expect_nothing();
    let b = open_conn(&mut h, 2, "/connection/qrst7890/aaaa4242/happy-raccoon");
    h.expect(vec![
        Effect::Pipe(a, b),
        Effect::Send(b, frame::text("held-1")),
        Effect::Send(b, frame::binary(&[1, 2, 3])),
    ]);
    // The reactor relays from here; a frame that reaches the app is relayed the same way.
    h.binary(b, &[9])
        .expect(vec![Effect::Send(a, frame::binary(&[9]))]);
    h.text(a, "t")
        .expect(vec![Effect::Send(b, frame::text("t"))]);
}

#[test]
fn sig_17_send_then_close_closes_the_partner_without_status() {
    let mut h = h();
    let a = open_conn(&mut h, 1, "/connection/local/remote/k");
    let b = open_conn(&mut h, 2, "/connection/remote/local/k");
    h.clear();
    h.text(a, "DUDE!!")
        .expect(vec![Effect::Send(b, frame::text("DUDE!!"))]);
    h.close(a).expect(vec![Effect::Close(b, None)]);
    h.text(b, "hello").expect_nothing();
    h.close(b).expect_nothing();
    // Both closing in one turn: nothing to do.
    let c = open_conn(&mut h, 3, "/connection/x/y/k");
    let d = open_conn(&mut h, 4, "/connection/y/x/k");
    h.clear();
    h.close_together(&[c, d]).expect_nothing();
}

#[test]
fn sig_18_a_hold_that_closes_leaves_nothing_for_the_latecomer() {
    let mut h = h();
    let a = open_conn(&mut h, 1, "/connection/A/B/k");
    h.text(a, "x").expect_nothing();
    h.close(a).expect_nothing();
    let b = open_conn(&mut h, 2, "/connection/B/A/k");
    h.expect_nothing();
    // B is held itself: a later A pairs with it.
    let a2 = open_conn(&mut h, 3, "/connection/A/B/k");
    h.expect(vec![Effect::Pipe(b, a2)]);
}

#[test]
fn sig_19_a_newer_hold_replaces_the_older() {
    let mut h = h();
    let a = open_conn(&mut h, 1, "/connection/A/B/k");
    h.text(a, "old").expect_nothing();
    let a2 = open_conn(&mut h, 2, "/connection/A/B/k");
    h.expect(vec![closed_with(a, 1008, REPLACED)]);
    h.text(a, "late").expect_nothing();
    h.text(a2, "new").expect_nothing();
    h.close(a).expect_nothing();
    let b = open_conn(&mut h, 3, "/connection/B/A/k");
    h.expect(vec![
        Effect::Pipe(a2, b),
        Effect::Send(b, frame::text("new")),
    ]);
}

#[test]
fn sig_20_ids_with_colons_are_never_confused() {
    let mut h = h();
    open_conn(&mut h, 1, "/connection/a/b:c/k");
    open_conn(&mut h, 2, "/connection/c/a:b/k");
    h.expect_nothing();
    let x = open_conn(&mut h, 3, "/connection/a:b/c/k");
    h.expect(vec![Effect::Pipe(conn(2), x)]);
    assert_ne!(
        pipe_owner_key("a", "b:c", "k"),
        pipe_owner_key("a:b", "c", "k")
    );
    assert_eq!(
        pipe_owner_key("a:b", "c", "k"),
        pipe_owner_key("c", "a:b", "k")
    );
}

#[test]
fn sig_21_hold_buffer_over_the_cap_closes_1009() {
    let mut h = h();
    let a = open_conn(&mut h, 1, "/connection/A/B/k");
    h.binary(a, &vec![0; (1 << 20) - 1]).expect_nothing();
    h.text(a, "x").expect_nothing(); // exactly 1048576: still held
    h.text(a, "y").expect(vec![closed_with(a, 1009, HOLD_FULL)]);
    h.close(a).expect_nothing();
    open_conn(&mut h, 2, "/connection/B/A/k");
    h.expect_nothing();
}

#[test]
fn sig_22_hold_timeout_on_the_virtual_clock() {
    let mut h = Harness::new(Signal::new(SignalConfig {
        hold_timeout_secs: 30,
        ..SignalConfig::default()
    }));
    let a = open_conn(&mut h, 1, "/connection/A/B/k");
    h.advance(29_999).tick().expect_nothing();
    h.advance(1)
        .tick()
        .expect(vec![closed_with(a, 1000, HOLD_TIMEOUT)]);
    h.close(a).expect_nothing();
    h.advance(60_000).tick().expect_nothing();
    open_conn(&mut h, 2, "/connection/B/A/k");
    h.expect_nothing();

    let mut h = self::h();
    let a = open_conn(&mut h, 1, "/connection/A/B/k");
    h.advance(3_600_000).tick().expect_nothing();
    let b = open_conn(&mut h, 2, "/connection/B/A/k");
    h.expect(vec![Effect::Pipe(a, b)]);
}

#[test]
fn sig_22_a_paired_or_replaced_hold_does_not_time_out() {
    let mut h = Harness::new(Signal::new(SignalConfig {
        hold_timeout_secs: 30,
        ..SignalConfig::default()
    }));
    let a = open_conn(&mut h, 1, "/connection/A/B/k");
    let b = open_conn(&mut h, 2, "/connection/B/A/k");
    h.advance(10_000);
    let c = open_conn(&mut h, 3, "/connection/C/D/k");
    let c2 = open_conn(&mut h, 4, "/connection/C/D/k");
    h.expect(vec![Effect::Pipe(a, b), closed_with(c, 1008, REPLACED)]);
    h.close(c);
    h.advance(20_000).tick().expect_nothing();
    h.advance(10_000)
        .tick()
        .expect(vec![closed_with(c2, 1000, HOLD_TIMEOUT)]);
}

#[test]
fn sig_23_connect_alias_shares_the_hold_table() {
    let mut h = h();
    let a = open_conn(&mut h, 1, "/connect/A/B/k");
    let b = open_conn(&mut h, 2, "/connection/B/A/k");
    h.expect(vec![Effect::Pipe(a, b)]);
}

#[test]
fn sig_24_same_id_on_both_ends_pairs_with_itself() {
    let mut h = h();
    let a = open_conn(&mut h, 1, "/connection/X/X/k");
    let b = open_conn(&mut h, 2, "/connection/X/X/k");
    h.expect(vec![Effect::Pipe(a, b)]);
}

#[test]
fn sig_27_more_than_max_keys_closes_1008() {
    let mut h = h();
    let p = peer(&mut h, 1, "p");
    let keys: Vec<String> = (0..1024).map(|i| format!("k{i}")).collect();
    let msg = serde_json::json!({ "join": keys }).to_string();
    h.text(p, &msg).expect_nothing();
    h.text(p, &msg).expect_nothing(); // the same keys again: still 1024
    h.text(p, r#"{"join":["one-more"]}"#)
        .expect(vec![closed_with(p, 1008, TOO_MANY_KEYS)]);
    h.close(p).expect_nothing();
    // In one message, too.
    let q = peer(&mut h, 2, "q");
    let keys: Vec<String> = (0..1025).map(|i| format!("k{i}")).collect();
    h.text(q, &serde_json::json!({ "join": keys }).to_string())
        .expect(vec![closed_with(q, 1008, TOO_MANY_KEYS)]);
    // Keys over max_key_bytes are skipped, not counted.
    let r = peer(&mut h, 3, "r");
    h.text(r, &format!(r#"{{"join":["{}"]}}"#, "x".repeat(257)))
        .expect_nothing();
    assert_eq!(h.app.registry.keys_of("r"), Some(vec![]));
}

fn upgrade_route(path: &str) -> Route {
    route(&request(path), true, &Config::default())
}

#[test]
fn sig_01_02_route_answers_before_the_upgrade() {
    let cfg = Config::default();
    match route(&request("/?x=1"), false, &cfg) {
        Route::Respond(r) => {
            assert_eq!(r.status, Status::OK);
            assert_eq!(r.content_type, "text/html; charset=utf-8");
            assert_eq!(r.body, wire::FISH_PAGE.as_bytes());
        }
        other => panic!("{other:?}"),
    }
    for path in ["/x", "/introduction/a"] {
        assert!(
            matches!(route(&request(path), false, &cfg), Route::Respond(r) if r.status == Status::NOT_FOUND && r.body == b"Not Found")
        );
    }
    for path in [
        "/connect/qrst7890",
        "/connection/qrst7890",
        "/introduction",
        "/foo",
        "/",
    ] {
        assert!(
            matches!(upgrade_route(path), Route::Respond(r) if r.status == Status::NOT_FOUND),
            "{path}"
        );
    }
    assert!(
        matches!(upgrade_route("/introduction/%zz"), Route::Respond(r) if r.status == Status::BAD_REQUEST)
    );
    assert!(matches!(
        upgrade_route("/introduction/a"),
        Route::Upgrade { owner: Some(k), max_message_bytes: None, .. } if k == INTRO_KEY
    ));
    match upgrade_route("/connect/A/B/k") {
        Route::Upgrade {
            owner: Some(k),
            max_message_bytes: Some(m),
            ..
        } => {
            assert_eq!(k, pipe_owner_key("B", "A", "k"));
            assert_eq!(m, 16 << 20);
        }
        other => panic!("{other:?}"),
    }
}
