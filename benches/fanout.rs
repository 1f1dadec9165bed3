//! The app + router part of fan-out and relay: a published message through the `bench`
//! app to rooms of 1, 100 and 10,000 other members (one lookup, one encoding, one queued
//! reference per member), and a message through the pair relay. Throughput counts
//! delivered messages (one per `Effect::Send`, one per recipient of an `Effect::FanOut`),
//! checked once before timing.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use switchboard::apps::bench::Bench;
use switchboard::apps::harness::{conn, request};
use switchboard::apps::pair::Pair;
use switchboard::apps::{App, Effect, Event, Outbox};

fn sends<M>(out: &Outbox<M>) -> usize {
    out.effects
        .iter()
        .map(|e| match e {
            Effect::Send(..) => 1,
            Effect::FanOut { start, end, .. } => end - start,
            _ => 0,
        })
        .sum()
}

fn router_publish(c: &mut Criterion) {
    let mut g = c.benchmark_group("router_publish");
    let text = "m".repeat(64);
    for members in [1usize, 100, 10_000] {
        let mut app = Bench::default();
        let mut out = Outbox::default();
        let req = request("/?room=bench");
        // The publisher plus `members` receivers.
        for n in 0..=members as u32 {
            app.handle(
                Event::Opened {
                    conn: conn(n),
                    req: &req,
                },
                0,
                &mut out,
            );
        }
        let publish = |app: &mut Bench, out: &mut Outbox<_>| {
            out.effects.clear();
            out.recipients.clear();
            let event = Event::Text {
                conn: conn(0),
                text: black_box(&text),
            };
            app.handle(event, 0, out);
        };
        publish(&mut app, &mut out);
        assert_eq!(sends(&out), members, "one send per other member");
        g.throughput(Throughput::Elements(members as u64));
        g.bench_function(format!("{members}_members_64B"), |b| {
            b.iter(|| publish(&mut app, &mut out))
        });
    }
    g.finish();
}

fn pair_relay(c: &mut Criterion) {
    let mut app = Pair::new(0, 1);
    let mut out = Outbox::default();
    let req = request("/");
    let (a, b) = (conn(1), conn(2));
    app.handle(Event::Opened { conn: a, req: &req }, 0, &mut out);
    app.handle(Event::Opened { conn: b, req: &req }, 0, &mut out);
    let text = "x".repeat(64);
    let relay = |app: &mut Pair, out: &mut Outbox<_>| {
        out.effects.clear();
        let event = Event::Text {
            conn: a,
            text: black_box(&text),
        };
        app.handle(event, 0, out);
    };
    relay(&mut app, &mut out);
    assert_eq!(sends(&out), 1, "the partner gets the message");
    let mut g = c.benchmark_group("pair_relay");
    g.throughput(Throughput::Elements(1));
    g.bench_function("64B_text", |bench| bench.iter(|| relay(&mut app, &mut out)));
    g.finish();
}

criterion_group!(benches, router_publish, pair_relay);
criterion_main!(benches);
