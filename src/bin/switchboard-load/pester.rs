//! The pester scenario: R channels of N registered users, P of each channel publishing
//! `message` events with at most W in flight each, over the raw face or Socket.IO v4 on
//! a WebSocket (`shared/protocols/pester.md`).
//!
//! **How N users share one channel.** `open_channel` adds the caller and the friend to
//! `chat_<lo>_<hi>` (the two ids in UTF-16 order), so a channel of more than two members
//! needs ids that collide there, which the spec keeps on purpose (`a_b`+`c` and `a`+`b_c`
//! share `chat_a_b_c`). Channel r of a run is `chat_A<r>-<tag>` + `_` × K + `z<r>-<tag>`
//! (K = ⌈N/2⌉, `tag` the load generator's pid in hex); split at its j-th underscore it
//! gives the pair lo = `A<r>-<tag>` + `_` × j, hi = `_` × (K-1-j) + `z<r>-<tag>`, and
//! lo < hi since `A` sorts before `_` and `z`. Member 2j registers lo, member 2j+1
//! registers hi, and lo opens the channel to hi (which joins as the online friend); with N
//! odd the last lo opens it to an hi nobody registered (a pending invite the server drops
//! when the run's connections close). Ids are about N/2 bytes long, so the server's
//! `max_user_id_bytes` (256) allows up to about 500 members per channel.

use crate::pool::{Kind, Pool, Proto};
use crate::stats::Histogram;
use crate::{
    Common, Phases, ProtoArg, addr_of, delivery_fields, die, now_us, open_all, report, settle, wire,
};
use clap::Args;
use std::time::{Duration, Instant};

/// At most this many connections (channels × members) in one run.
const MAX_CONNS: usize = 20_000;
/// At most this many messages in flight per publisher.
const MAX_WINDOW: usize = 1024;
/// Largest `--size` (text bytes of one message).
const MAX_SIZE: usize = 65_536;
/// Time allowed for the registrations, and again for the channel joins.
const SETUP: Duration = Duration::from_secs(30);

#[derive(Args)]
pub struct PesterArgs {
    #[command(flatten)]
    pub common: Common,
    /// Channels, each with its own members.
    #[arg(long, default_value_t = 1)]
    channels: usize,
    /// Registered users per channel (at least 2).
    #[arg(long, default_value_t = 100)]
    members: usize,
    /// Members of each channel that publish (1..=members).
    #[arg(long, default_value_t = 1)]
    pubs: usize,
    /// Messages in flight per publisher.
    #[arg(long, default_value_t = 1)]
    window: usize,
    /// Bytes of each message's `text` (at least the 32-byte stamp).
    #[arg(long, default_value_t = 64)]
    size: usize,
}

/// One channel of the run: its id, its members' user ids in member order, and the
/// `open_channel` requests (member index, friend id) that put them all in it.
struct Channel {
    id: String,
    users: Vec<String>,
    opens: Vec<(usize, String)>,
}

impl Channel {
    fn new(r: usize, members: usize, tag: &str) -> Channel {
        let k = members.div_ceil(2);
        let (lo, hi) = (format!("A{r}-{tag}"), format!("z{r}-{tag}"));
        let id = format!("chat_{lo}{}{hi}", "_".repeat(k));
        let mut users = Vec::with_capacity(members);
        let mut opens = Vec::with_capacity(k);
        for j in 0..k {
            let me = format!("{lo}{}", "_".repeat(j));
            let friend = format!("{}{hi}", "_".repeat(k - 1 - j));
            opens.push((users.len(), friend.clone()));
            users.push(me);
            if users.len() < members {
                users.push(friend);
            }
        }
        Channel { id, users, opens }
    }
}

/// Waits until `want` messages for which `count` is true have arrived; an error object,
/// a closed connection or `SETUP` passing ends the run.
fn expect(pool: &mut Pool, want: usize, what: &str, count: impl Fn(&[u8]) -> bool) {
    let deadline = Instant::now() + SETUP;
    let mut seen = 0;
    while seen < want {
        pool.turn(Duration::from_millis(10))
            .unwrap_or_else(|e| die(&e.to_string()));
        for ev in &pool.inbox {
            match &ev.kind {
                Kind::Message(r) => {
                    let body = &pool.arena[r.clone()];
                    if body.starts_with(br#"{"type":"error""#) {
                        die(&format!(
                            "waiting for {what}: {}",
                            String::from_utf8_lossy(body)
                        ));
                    }
                    if count(body) {
                        seen += 1;
                    }
                }
                Kind::Closed => die(&format!("a connection closed while waiting for {what}")),
                Kind::Opened => {}
            }
        }
        pool.flush();
        if Instant::now() > deadline {
            die(&format!(
                "{seen} of {want} {what} within {} s",
                SETUP.as_secs()
            ));
        }
    }
}

pub fn pester(a: PesterArgs) {
    let c = &a.common;
    let addr = addr_of(&c.addr);
    if !addr.ip().is_loopback() {
        die("pester: --addr must be a loopback address (127.0.0.1)");
    }
    let total = a.channels.saturating_mul(a.members);
    if a.members < 2 || a.channels == 0 || total > MAX_CONNS {
        die(&format!(
            "pester: need --members >= 2, --channels >= 1 and channels x members <= {MAX_CONNS}"
        ));
    }
    if a.pubs == 0 || a.pubs > a.members {
        die("pester: need 1 <= --pubs <= --members");
    }
    if a.window > MAX_WINDOW || a.size > MAX_SIZE {
        die(&format!(
            "pester: need --window <= {MAX_WINDOW} and --size <= {MAX_SIZE}"
        ));
    }
    let (proto, path) = match c.proto {
        ProtoArg::Raw => (Proto::Raw, "/"),
        ProtoArg::Sio => (Proto::SioJson, "/socket.io/?EIO=4&transport=websocket"),
    };
    let tag = format!("{:x}", std::process::id());
    let chans: Vec<Channel> = (0..a.channels)
        .map(|r| Channel::new(r, a.members, &tag))
        .collect();
    let mut pool = Pool::new(addr, proto).unwrap_or_else(|e| die(&e.to_string()));
    let keys = open_all(&mut pool, &vec![path.to_string(); total], c.concurrency);
    let key = |r: usize, i: usize| keys[r * a.members + i];

    for (r, ch) in chans.iter().enumerate() {
        for (i, u) in ch.users.iter().enumerate() {
            let m = format!(r#"{{"type":"register","userId":"{u}"}}"#);
            pool.send(key(r, i), m.as_bytes());
        }
    }
    pool.flush();
    expect(&mut pool, total, "registrations", |b| {
        b.starts_with(br#"{"type":"registered""#)
    });
    let mut answers = 0;
    for (r, ch) in chans.iter().enumerate() {
        for (i, friend) in &ch.opens {
            let m = format!(r#"{{"type":"open_channel","friendId":"{friend}"}}"#);
            pool.send(key(r, *i), m.as_bytes());
            // channel_opened, and channel_invite when the friend is one of ours.
            answers += 1 + usize::from(*i + 1 < a.members);
        }
    }
    pool.flush();
    expect(&mut pool, answers, "channel joins", |b| {
        b.starts_with(br#"{"type":"channel_opened""#)
            || b.starts_with(br#"{"type":"channel_invite""#)
    });
    settle(&mut pool, 200);

    // Publisher g = r * pubs + k is member k of channel r.
    let publishers: Vec<(usize, usize)> = (0..a.channels)
        .flat_map(|r| (0..a.pubs).map(move |k| (r, k)))
        .collect();
    let prefixes: Vec<Vec<u8>> = chans
        .iter()
        .map(|ch| format!(r#"{{"type":"message","channelId":"{}","text":""#, ch.id).into_bytes())
        .collect();
    let receivers = (a.members - 1) as u32;
    let window = a.window.max(1);
    let mut ring = vec![vec![0u32; window]; publishers.len()];
    let mut next_seq = vec![0u32; publishers.len()];
    let start = Instant::now();
    let mut payload = Vec::with_capacity(a.size + 256);
    let mut send = |pool: &mut Pool, g: usize, next_seq: &mut [u32], ring: &mut [Vec<u32>]| {
        let seq = next_seq[g];
        next_seq[g] += 1;
        ring[g][seq as usize % window] = receivers;
        let (r, k) = publishers[g];
        payload.clear();
        payload.extend_from_slice(&prefixes[r]);
        wire::stamp(&mut payload, g as u32, seq, now_us(start), a.size);
        payload.extend_from_slice(br#""}"#);
        pool.send(key(r, k), &payload);
    };
    for g in 0..publishers.len() {
        for _ in 0..window {
            send(&mut pool, g, &mut next_seq, &mut ring);
        }
    }
    pool.flush();
    let mut hist = Histogram::default();
    let (mut delivered, mut completed, mut other) = (0u64, 0u64, 0u64);
    let mut phases = Phases::new(
        c,
        start,
        "no message delivered for 5 s (lost messages or a stalled server)",
    );
    while let Some(now) = phases.next_turn() {
        let measuring = phases.measuring();
        pool.turn(Duration::from_millis(10))
            .unwrap_or_else(|e| die(&e.to_string()));
        let t = now_us(start);
        let inbox = std::mem::take(&mut pool.inbox);
        for ev in &inbox {
            match &ev.kind {
                Kind::Message(r) => {
                    let body = &pool.arena[r.clone()];
                    let Some((g, seq, sent)) = wire::pester_text(body).and_then(wire::read_stamp)
                    else {
                        if body.starts_with(br#"{"type":"error""#) {
                            die(&format!(
                                "during the run: {}",
                                String::from_utf8_lossy(body)
                            ));
                        }
                        other += 1;
                        continue;
                    };
                    phases.progress(now);
                    if measuring {
                        delivered += 1;
                        hist.record(t.saturating_sub(sent));
                    }
                    let g = g as usize;
                    let Some(slot) = ring.get_mut(g).map(|r| &mut r[seq as usize % window]) else {
                        continue;
                    };
                    *slot = slot.saturating_sub(1);
                    if *slot == 0 {
                        if measuring {
                            completed += 1;
                        }
                        send(&mut pool, g, &mut next_seq, &mut ring);
                    }
                }
                Kind::Closed => die("a connection closed during the run"),
                Kind::Opened => {}
            }
        }
        pool.inbox = inbox;
        pool.flush();
    }
    let m = phases.finish();
    let mut fields = vec![
        ("scenario", "pester".to_string()),
        (
            "proto",
            match c.proto {
                ProtoArg::Raw => "raw",
                ProtoArg::Sio => "sio",
            }
            .into(),
        ),
        ("channels", a.channels.to_string()),
        ("members", a.members.to_string()),
        ("pubs", a.pubs.to_string()),
        ("window", window.to_string()),
        ("size", a.size.to_string()),
    ];
    fields.extend(delivery_fields(delivered, a.size, &m, &hist));
    fields.extend([
        // Messages every other member of the channel got.
        ("completed", completed.to_string()),
        (
            "completed_per_s",
            format!("{:.0}", completed as f64 / m.secs),
        ),
        ("other", other.to_string()),
    ]);
    report(&fields);
    pool.close_all();
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard::apps::pester::channel::channel_id;

    #[test]
    fn every_member_lands_in_its_channel_under_a_unique_id() {
        let mut seen = std::collections::HashSet::new();
        for members in [2, 3, 4, 99, 100] {
            for r in [0, 1, 10] {
                let ch = Channel::new(r, members, "1f2e");
                assert_eq!(ch.users.len(), members);
                assert_eq!(ch.opens.len(), members.div_ceil(2));
                for (i, friend) in &ch.opens {
                    let me = &ch.users[*i];
                    assert_eq!(channel_id(me, friend), ch.id, "{me} + {friend}");
                    match ch.users.get(i + 1) {
                        Some(next) => assert_eq!(next, friend),
                        None => assert_eq!(*i, members - 1),
                    }
                }
                for u in &ch.users {
                    assert!(u.len() <= 256);
                    assert!(!u.contains('"') && !u.contains('\\'));
                    assert!(seen.insert((members, u.clone())), "{u} twice");
                }
            }
        }
        assert_eq!(Channel::new(0, 4, "ab").id, "chat_A0-ab__z0-ab");
        assert_eq!(
            Channel::new(0, 4, "ab").users,
            ["A0-ab", "_z0-ab", "A0-ab_", "z0-ab"]
        );
    }
}
