//! Hot-path micro benchmarks: frame encoding, HTTP head parsing, and a pair relay through
//! the pure app. Each reports throughput.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use switchboard::apps::pair::Pair;
use switchboard::apps::{App, Event, Outbox};
use switchboard::frame;
use switchboard::http;
use switchboard::router::ConnId;

fn frame_encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame_encode");
    for size in [64usize, 16 * 1024] {
        let payload = vec![b'x'; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(format!("{size}B"), |b| {
            b.iter(|| frame::binary(black_box(&payload)))
        });
    }
    g.finish();
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

fn pair_relay(c: &mut Criterion) {
    let mut app = Pair::new(0, 1);
    let mut out = Outbox::default();
    let req = http::Request::default();
    let (a, b) = (ConnId::new(0, 1, 1), ConnId::new(0, 2, 1));
    app.handle(Event::Opened { conn: a, req: &req }, 0, &mut out);
    app.handle(Event::Opened { conn: b, req: &req }, 0, &mut out);
    out.effects.clear();
    let mut g = c.benchmark_group("pair_relay");
    g.throughput(Throughput::Elements(1));
    g.bench_function("64B_text", |bench| {
        let text = "x".repeat(64);
        bench.iter(|| {
            app.handle(
                Event::Text {
                    conn: a,
                    text: black_box(&text),
                },
                0,
                &mut out,
            );
            out.effects.clear();
        })
    });
    g.finish();
}

criterion_group!(benches, frame_encode, http_parse, pair_relay);
criterion_main!(benches);
