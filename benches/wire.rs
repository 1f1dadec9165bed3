//! Parsers and encoders of the apps' wire protocols: HTTP upgrade heads, JWT verify,
//! Engine.IO and Socket.IO packets, pester messages, session snapshots, rooms
//! chat/poll/counter, signal key changes and introductions. Parsers report bytes per
//! second; whole app messages (parse, state, encode) report messages per second.

use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use std::collections::HashMap;
use std::hint::black_box;
use switchboard::apps::harness::{conn, request};
use switchboard::apps::pester::{channel, engineio, socketio};
use switchboard::apps::rooms::{Rooms, store};
use switchboard::apps::session::{Session, jwt};
use switchboard::apps::signal::wire as signal;
use switchboard::apps::{App, Effect, Event, Outbox};
use switchboard::config::{RoomsConfig, Secret, SessionSettings};
use switchboard::http;

type Group<'a> = BenchmarkGroup<'a, criterion::measurement::WallTime>;

fn bytes<'a>(g: &mut Group<'a>, name: &str, input: &str, mut f: impl FnMut(&str)) {
    g.throughput(Throughput::Bytes(input.len() as u64));
    g.bench_function(name, |b| b.iter(|| f(black_box(input))));
}

fn http_parse(c: &mut Criterion) {
    let head = b"GET /websocket?room=lobby HTTP/1.1\r\nHost: 127.0.0.1:8787\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://localhost\r\n\r\n";
    let mut g = c.benchmark_group("http_parse");
    g.throughput(Throughput::Bytes(head.len() as u64));
    g.bench_function("upgrade_head", |b| {
        b.iter(|| http::parse_request(black_box(head), 64))
    });
    g.finish();
}

const KEY: &str = "0123456789abcdef0123456789abcdef";
const HOST: &str = "127.0.0.1:8000";
const NOW: u64 = 1_700_000_000;

fn session_settings() -> SessionSettings {
    SessionSettings {
        jwt_secret: Some(Secret::from(KEY.to_string())),
        ..SessionSettings::default()
    }
}

fn jwt_verify(c: &mut Criterion) {
    let settings = session_settings();
    let token = jwt::mint("alice", "room-1", HOST, NOW, 3600, KEY.as_bytes());
    assert!(jwt::verify(&token, Some(HOST), NOW, &settings).is_ok());
    let mut g = c.benchmark_group("jwt");
    bytes(&mut g, "verify_hs256", &token, |t| {
        black_box(jwt::verify(t, Some(HOST), NOW, &settings).is_ok());
    });
    g.finish();
}

const SIO_MESSAGE: &str =
    r#"42["message",{"type":"message","channelId":"alice:bob","text":"hello there, bob"}]"#;

fn engineio_parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("engineio_parse");
    bytes(&mut g, "ws_text_packet", SIO_MESSAGE, |s| {
        black_box(engineio::decode_text(s));
    });
    let payload = [SIO_MESSAGE, "2", SIO_MESSAGE, "40"].join("\u{1e}");
    assert_eq!(engineio::decode_payload(payload.as_bytes()).count(), 4);
    bytes(&mut g, "polling_payload_4", &payload, |s| {
        for p in engineio::decode_payload(s.as_bytes()) {
            black_box(p);
        }
    });
    g.finish();
}

fn pester_wire(c: &mut Criterion) {
    let raw = r#"{"type":"message","channelId":"alice:bob","text":"hello there, bob"}"#;
    assert!(matches!(
        channel::decode_raw(raw),
        channel::Msg::Message { .. }
    ));
    let mut g = c.benchmark_group("pester");
    bytes(&mut g, "raw_message_parse", raw, |s| {
        black_box(channel::decode_raw(s));
    });
    // A Socket.IO event inside an Engine.IO message packet, down to the channel message.
    bytes(&mut g, "socketio_message_parse", SIO_MESSAGE, |s| {
        let Some(engineio::Packet::Message(sio)) = engineio::decode_text(s) else {
            panic!("an Engine.IO message packet");
        };
        let p = socketio::decode(sio).expect("a valid Socket.IO event");
        let arg = p.data.as_ref().and_then(|d| d.get(1));
        black_box(channel::decode_sio_arg(arg));
    });
    let out = r#"{"type":"message","channelId":"alice:bob","from":"alice","text":"hello there, bob","ts":1700000000000}"#;
    bytes(&mut g, "socketio_message_encode", out, |s| {
        black_box(socketio::message(s));
    });
    g.finish();
}

fn session_snapshot(c: &mut Criterion) {
    let mut app = Session::new(&session_settings());
    let mut out = Outbox::default();
    let (a, b) = (conn(1), conn(2));
    for (c, user) in [(a, "alice"), (b, "bob")] {
        let t = jwt::mint(user, "room-1", HOST, NOW, 0, KEY.as_bytes());
        let req = request(&format!("/?token={t}"));
        app.handle(Event::Opened { conn: c, req: &req }, 0, &mut out);
    }
    let text = "a chat line of a realistic length, say sixty-four bytes or so..";
    let mut now = 1_700_000_000_000;
    let mut turn = |app: &mut Session, out: &mut Outbox<_>| {
        out.effects.clear();
        now += 1;
        app.handle(Event::Text { conn: a, text }, now, out);
        app.handle(Event::TurnEnd, now, out);
    };
    // Fill the history window, so each message also drops the oldest.
    for _ in 0..200 {
        turn(&mut app, &mut out);
    }
    let latest = out
        .effects
        .iter()
        .filter(|e| matches!(e, Effect::SendLatest(..)))
        .count();
    assert_eq!(latest, 2, "one snapshot per member");
    let mut g = c.benchmark_group("session");
    g.throughput(Throughput::Elements(1));
    g.bench_function("message_to_snapshot_2_members", |bench| {
        bench.iter(|| turn(&mut app, &mut out))
    });
    g.finish();
}

fn rooms_messages(c: &mut Criterion) {
    let mut app = Rooms::new(
        &RoomsConfig::default(),
        HashMap::new(),
        Box::new(store::NullSink),
        [7; 32],
    );
    let mut out = Outbox::default();
    let a = conn(1);
    let mut req = request("/?room=bench");
    req.client_ip = Some("127.0.0.1".parse().unwrap());
    app.handle(Event::Opened { conn: a, req: &req }, 0, &mut out);
    for kind in ["chat", "poll", "counter"] {
        let sub = format!(r#"{{"type":"subscribe","data":"{kind}"}}"#);
        app.handle(
            Event::Text {
                conn: a,
                text: &sub,
            },
            0,
            &mut out,
        );
    }
    let mut g = c.benchmark_group("rooms");
    g.throughput(Throughput::Elements(1));
    // Alternating inputs keep poll answers and counter values bounded.
    let cases: [(&str, [&str; 2]); 3] = [
        (
            "chat",
            [r#"{"type":"chat","data":{"text":"hello room"}}"#; 2],
        ),
        (
            "poll_vote",
            [
                r#"{"type":"poll","data":{"id":"p1","answer":"yes"}}"#,
                r#"{"type":"poll","data":{"id":"p1","answer":"no"}}"#,
            ],
        ),
        (
            "counter_add",
            [
                r#"{"type":"counter","data":{"id":"c1","value":1}}"#,
                r#"{"type":"counter","data":{"id":"c1","value":-1}}"#,
            ],
        ),
    ];
    for (name, inputs) in cases {
        let mut i = 0;
        let mut step = |app: &mut Rooms, out: &mut Outbox<_>| {
            out.effects.clear();
            out.recipients.clear();
            i ^= 1;
            let text = black_box(inputs[i]);
            app.handle(Event::Text { conn: a, text }, 0, out);
        };
        step(&mut app, &mut out);
        assert!(
            matches!(&out.effects[..], [Effect::FanOut { start, end, .. }]
                if out.recipients[*start..*end] == [a]),
            "{name}: one frame to the subscriber, got {:?}",
            out.effects
        );
        g.bench_function(format!("{name}_to_1_subscriber"), |b| {
            b.iter(|| step(&mut app, &mut out))
        });
    }
    g.finish();
}

fn signal_wire(c: &mut Criterion) {
    let mut g = c.benchmark_group("signal");
    let change = r#"{"type":"Join","join":["key-one","key-two","key-three"],"leave":"key-old"}"#;
    assert!(signal::parse_key_change(change, 256).is_some_and(|k| k.join.len() == 3));
    bytes(&mut g, "key_change_parse", change, |s| {
        black_box(signal::parse_key_change(s, 256));
    });
    let keys = ["key-one", "key-two", "key-three"];
    let len = signal::introduction("peer-1234", &keys).len();
    g.throughput(Throughput::Bytes(len as u64));
    g.bench_function("introduction_encode", |b| {
        b.iter(|| signal::introduction(black_box("peer-1234"), black_box(&keys)))
    });
    g.finish();
}

criterion_group!(
    benches,
    http_parse,
    jwt_verify,
    engineio_parse,
    pester_wire,
    session_snapshot,
    rooms_messages,
    signal_wire
);
criterion_main!(benches);
