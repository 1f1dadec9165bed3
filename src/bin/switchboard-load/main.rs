//! switchboard-load: a single-threaded mio load generator for switchboard and the
//! comparison peers (`shared/peers/`), reporting the server's CPU per delivered message.
//!
//! Every figure is measured over a window after a warm-up; server CPU comes from
//! `/proc/PID/task/*/schedstat` (ns), so pass `--server-pid`. Run it on another core than
//! the server (`taskset -c 1`). Output ends with one `RESULT key=value …` line. `floor`
//! needs no server: it measures the kernel's own cost for the fan-out's writes.

mod floor;
mod pester;
mod pool;
mod rtt_floor;
mod stats;
mod wire;

use clap::{Args, Parser, Subcommand, ValueEnum};
use pool::{Kind, Pool, Proto};
use stats::{Histogram, Window};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "switchboard-load",
    about = "Load generator for switchboard and its peers"
)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// R rooms of N subscribers and P publishers, each with at most W messages in flight.
    Fanout(FanoutArgs),
    /// K pairs echoing messages with W in flight (1: ping-pong).
    Relay(RelayArgs),
    /// C connections opened with bounded concurrency, then held idle.
    Conns(ConnsArgs),
    /// session app: M members of one room, S of them sending with W messages in flight;
    /// a message completes when its sender sees it in a snapshot.
    Session(SessionArgs),
    /// pester app: R channels of N registered users, P of each publishing `message`
    /// events with at most W in flight each; raw face or Socket.IO (`--proto sio`).
    Pester(pester::PesterArgs),
    /// No server: N loopback TCP pairs, a writer thread (pinned to CPU 0) writing F frames
    /// of S bytes to each per round, this thread reading; the kernel's cost per frame.
    Floor(floor::FloorArgs),
    /// No server: one pair's relayed ping-pong through a thread (pinned to CPU 0) that only
    /// copies bytes across; the loopback round trip's floor.
    RttFloor(rtt_floor::RttFloorArgs),
}

#[derive(Args)]
struct SessionArgs {
    #[command(flatten)]
    common: Common,
    /// The server's JWT_SECRET.
    #[arg(long, env = "JWT_SECRET")]
    secret: String,
    #[arg(long, default_value_t = 100)]
    members: usize,
    #[arg(long, default_value_t = 10)]
    senders: usize,
    #[arg(long, default_value_t = 1)]
    window: usize,
    #[arg(long, default_value_t = 64)]
    size: usize,
}

#[derive(Args, Clone)]
struct Common {
    /// Server address, e.g. 127.0.0.1:29100.
    #[arg(long)]
    addr: String,
    /// PID of the server, for its CPU time and RSS.
    #[arg(long)]
    server_pid: u32,
    #[arg(long, value_enum, default_value = "raw")]
    proto: ProtoArg,
    /// Seconds before the measured window.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Seconds measured.
    #[arg(long, default_value_t = 3.0)]
    duration: f64,
    /// Connections being opened at once.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
}

#[derive(Clone, Copy, ValueEnum)]
enum ProtoArg {
    Raw,
    Sio,
}

#[derive(Args)]
struct FanoutArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, default_value_t = 1)]
    rooms: usize,
    #[arg(long, default_value_t = 100)]
    subs: usize,
    #[arg(long, default_value_t = 1)]
    pubs: usize,
    #[arg(long, default_value_t = 1)]
    window: usize,
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Which protocol the rooms speak.
    #[arg(long, value_enum, default_value = "generic")]
    app: FanoutApp,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum FanoutApp {
    /// The peers' generic room protocol (and switchboard's bench app).
    Generic,
    /// switchboard's rooms app: subscribers send `subscribe chat`, publishers send `chat`.
    Rooms,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum Target {
    /// The generic room protocol: each pair is a room of two.
    Room,
    /// switchboard's pair app: clients paired in arrival order.
    Pair,
    /// switchboard's signal app: `/connection/A/B/K` piped to `/connection/B/A/K`.
    Signal,
}

#[derive(Args)]
struct RelayArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, value_enum, default_value = "room")]
    target: Target,
    #[arg(long, default_value_t = 50)]
    pairs: usize,
    #[arg(long, default_value_t = 1)]
    window: usize,
    #[arg(long, default_value_t = 64)]
    size: usize,
}

#[derive(Args)]
struct ConnsArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, default_value_t = 10_000)]
    count: usize,
    /// Request path of each connection [default: room `idle` of the generic protocol, for
    /// `--proto`]
    #[arg(long)]
    path: Option<String>,
}

fn addr_of(s: &str) -> SocketAddr {
    s.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .unwrap_or_else(|| die(&format!("bad --addr {s}")))
}

fn die(msg: &str) -> ! {
    eprintln!("switchboard-load: {msg}");
    std::process::exit(2)
}

fn path_for(proto: Proto, room: &str) -> String {
    match proto {
        Proto::Raw => format!("/?room={room}"),
        Proto::Sio | Proto::SioJson => {
            format!("/socket.io/?EIO=4&transport=websocket&room={room}")
        }
    }
}

/// Opens `paths` with at most `concurrency` handshakes in flight; returns the keys.
fn open_all(pool: &mut Pool, paths: &[String], concurrency: usize) -> Vec<usize> {
    let mut keys = Vec::with_capacity(paths.len());
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut next = 0;
    while pool.open + pool.failed < paths.len() {
        while next < paths.len() && next - (pool.open + pool.failed) < concurrency {
            keys.push(
                pool.connect(&paths[next])
                    .unwrap_or_else(|e| die(&format!("connect: {e}"))),
            );
            next += 1;
        }
        pool.turn(Duration::from_millis(50))
            .unwrap_or_else(|e| die(&e.to_string()));
        pool.flush();
        if Instant::now() > deadline {
            die("connections did not open within 120 s");
        }
    }
    if pool.failed > 0 {
        die(&format!("{} connections failed", pool.failed));
    }
    keys
}

fn now_us(start: Instant) -> u64 {
    start.elapsed().as_micros() as u64
}

/// The RESULT fields of a fan-out: deliveries (one per recipient of each message) per
/// second, payload bandwidth, both processes' CPU per delivery and in all, latency.
fn delivery_fields(
    delivered: u64,
    size: usize,
    m: &stats::Measured,
    hist: &Histogram,
) -> Vec<(&'static str, String)> {
    let rate = delivered as f64 / m.secs;
    vec![
        ("delivered", delivered.to_string()),
        ("msgs_per_s", format!("{rate:.0}")),
        // Payload bytes delivered (frame headers not counted).
        ("gb_per_s", format!("{:.3}", rate * size as f64 / 1e9)),
        (
            "server_us_per_msg",
            format!("{:.3}", m.server_cpu_us / delivered.max(1) as f64),
        ),
        (
            "load_us_per_msg",
            format!("{:.3}", m.own_cpu_us / delivered.max(1) as f64),
        ),
        (
            "server_cpu_pct",
            format!("{:.1}", 100.0 * m.server_cpu_us / (m.secs * 1e6)),
        ),
        (
            "load_cpu_pct",
            format!("{:.1}", 100.0 * m.own_cpu_us / (m.secs * 1e6)),
        ),
        ("p50_us", hist.quantile(0.5).to_string()),
        ("p99_us", hist.quantile(0.99).to_string()),
        ("max_us", hist.max().to_string()),
    ]
}

fn report(fields: &[(&str, String)]) {
    let line: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("RESULT {}", line.join(" "));
}

/// The warm-up, then the measured window, with a guard against a stalled run: one value
/// drives the loop of every timed scenario.
struct Phases {
    server_pid: u32,
    warm_end: Instant,
    end: Instant,
    window: Option<Window>,
    last_progress: Instant,
    stall: &'static str,
}

impl Phases {
    /// Warm-up from `start` for `--warmup` s, then `--duration` s measured; `stall` is the
    /// message to die with after 5 s without progress.
    fn new(c: &Common, start: Instant, stall: &'static str) -> Phases {
        let warm_end = start + Duration::from_secs_f64(c.warmup);
        Phases {
            server_pid: c.server_pid,
            warm_end,
            end: warm_end + Duration::from_secs_f64(c.duration),
            window: None,
            last_progress: Instant::now(),
            stall,
        }
    }

    /// The time at the top of a loop turn, or `None` once the measured window is over.
    /// Starts the window when the warm-up ends.
    fn next_turn(&mut self) -> Option<Instant> {
        let now = Instant::now();
        if self.window.is_none() && now >= self.warm_end {
            self.window = Some(Window::start(self.server_pid));
        }
        if now >= self.end {
            return None;
        }
        if now - self.last_progress > Duration::from_secs(5) {
            die(self.stall);
        }
        Some(now)
    }

    fn measuring(&self) -> bool {
        self.window.is_some()
    }

    /// A message arrived: the stall guard starts again.
    fn progress(&mut self, now: Instant) {
        self.last_progress = now;
    }

    fn finish(self) -> stats::Measured {
        self.window
            .expect("the window started before the end")
            .finish()
    }
}

fn fanout(a: FanoutArgs) {
    let c = &a.common;
    let proto = proto_of(c.proto);
    let mut pool = Pool::new(addr_of(&c.addr), proto).unwrap_or_else(|e| die(&e.to_string()));
    if a.app == FanoutApp::Generic {
        // Only the stamp is read back: large payloads are not copied again.
        pool.keep = wire::STAMP_LEN;
    }
    let members = a.subs + a.pubs;
    let mut paths = Vec::new();
    for r in 0..a.rooms {
        for _ in 0..members {
            paths.push(match a.app {
                FanoutApp::Generic => path_for(proto, &format!("fanout-{r}")),
                FanoutApp::Rooms => format!("/websocket?room=fanout-{r}"),
            });
        }
    }
    let keys = open_all(&mut pool, &paths, c.concurrency);
    if a.app == FanoutApp::Rooms {
        for r in 0..a.rooms {
            for s in 0..a.subs {
                pool.send(
                    keys[r * members + s],
                    br#"{"type":"subscribe","data":"chat"}"#,
                );
            }
        }
        pool.flush();
    }
    // Give the server a moment to finish joins (Socket.IO joins after the connect ack).
    settle(&mut pool, 300);
    let publishers: Vec<usize> = (0..a.rooms)
        .flat_map(|r| (0..a.pubs).map(move |p| r * members + a.subs + p))
        .map(|i| keys[i])
        .collect();
    // Rooms: only subscribers get chats (publishers do not subscribe).
    let receivers = match a.app {
        FanoutApp::Generic => (members - 1) as u32,
        FanoutApp::Rooms => a.subs as u32,
    };
    let rooms_app = a.app == FanoutApp::Rooms;
    let window = a.window.max(1);
    let mut ring = vec![vec![0u32; window]; publishers.len()];
    let mut next_seq = vec![0u32; publishers.len()];
    let start = Instant::now();
    let mut payload = Vec::with_capacity(a.size + 32);
    let mut send = |pool: &mut Pool, p: usize, next_seq: &mut [u32], ring: &mut [Vec<u32>]| {
        let seq = next_seq[p];
        next_seq[p] += 1;
        ring[p][seq as usize % window] = receivers;
        payload.clear();
        if rooms_app {
            payload.extend_from_slice(br#"{"type":"chat","data":""#);
        }
        wire::stamp(&mut payload, p as u32, seq, now_us(start), a.size);
        if rooms_app {
            payload.extend_from_slice(br#""}"#);
        }
        pool.send(publishers[p], &payload);
    };
    for p in 0..publishers.len() {
        for _ in 0..window {
            send(&mut pool, p, &mut next_seq, &mut ring);
        }
    }
    pool.flush();
    let mut hist = Histogram::default();
    let mut delivered = 0u64;
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
                    let mut body = &pool.arena[r.clone()];
                    if rooms_app {
                        const MARK: &[u8] = br#""message":""#;
                        match body.windows(MARK.len()).position(|w| w == MARK) {
                            Some(i) => body = &body[i + MARK.len()..],
                            None => continue,
                        }
                    }
                    let Some((p, seq, sent)) = wire::read_stamp(body) else {
                        continue;
                    };
                    phases.progress(now);
                    if measuring {
                        delivered += 1;
                        hist.record(t.saturating_sub(sent));
                    }
                    let p = p as usize;
                    let Some(slot) = ring.get_mut(p).map(|r| &mut r[seq as usize % window]) else {
                        continue;
                    };
                    *slot = slot.saturating_sub(1);
                    if *slot == 0 {
                        send(&mut pool, p, &mut next_seq, &mut ring);
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
        ("scenario", "fanout".into()),
        ("rooms", a.rooms.to_string()),
        ("subs", a.subs.to_string()),
        ("pubs", a.pubs.to_string()),
        ("window", window.to_string()),
        ("size", a.size.to_string()),
    ];
    fields.extend(delivery_fields(delivered, a.size, &m, &hist));
    report(&fields);
    pool.close_all();
}

/// Runs the loop for `ms` without sending anything of ours.
fn settle(pool: &mut Pool, ms: u64) {
    let end = Instant::now() + Duration::from_millis(ms);
    while Instant::now() < end {
        let _ = pool.turn(Duration::from_millis(10));
        pool.flush();
    }
}

fn proto_of(p: ProtoArg) -> Proto {
    match p {
        ProtoArg::Raw => Proto::Raw,
        ProtoArg::Sio => Proto::Sio,
    }
}

/// Opens the relay pairs; returns (initiator, echoer) keys.
fn open_pairs(pool: &mut Pool, a: &RelayArgs, proto: Proto) -> Vec<(usize, usize)> {
    match a.target {
        Target::Room | Target::Signal => {
            let mut paths = Vec::new();
            for i in 0..a.pairs {
                if a.target == Target::Room {
                    paths.push(path_for(proto, &format!("relay-{i}")));
                    paths.push(path_for(proto, &format!("relay-{i}")));
                } else {
                    paths.push(format!("/connection/a{i}/b{i}/k{i}"));
                    paths.push(format!("/connection/b{i}/a{i}/k{i}"));
                }
            }
            let keys = open_all(pool, &paths, a.common.concurrency);
            settle(pool, 200);
            keys.chunks(2).map(|k| (k[0], k[1])).collect()
        }
        Target::Pair => {
            // Pairing is by arrival order: open one at a time, each after its greeting.
            let mut keys = Vec::new();
            for _ in 0..a.pairs * 2 {
                let k = pool.connect("/").unwrap_or_else(|e| die(&e.to_string()));
                keys.push(k);
                let deadline = Instant::now() + Duration::from_secs(10);
                let mut greeted = false;
                while !greeted {
                    let _ = pool.turn(Duration::from_millis(10));
                    greeted = pool
                        .inbox
                        .iter()
                        .any(|e| e.key == k && matches!(e.kind, Kind::Message(_)));
                    pool.flush();
                    if Instant::now() > deadline {
                        die("pair greeting did not arrive");
                    }
                }
            }
            settle(pool, 100);
            keys.chunks(2).map(|k| (k[0], k[1])).collect()
        }
    }
}

fn relay(a: RelayArgs) {
    let c = a.common.clone();
    let proto = proto_of(c.proto);
    let mut pool = Pool::new(addr_of(&c.addr), proto).unwrap_or_else(|e| die(&e.to_string()));
    let pairs = open_pairs(&mut pool, &a, proto);
    let mut role = std::collections::HashMap::new();
    for (i, &(init, echo)) in pairs.iter().enumerate() {
        role.insert(init, (i, true));
        role.insert(echo, (i, false));
    }
    let start = Instant::now();
    let mut payload = Vec::new();
    let mut seq = 0u32;
    for (i, &(init, _)) in pairs.iter().enumerate() {
        for _ in 0..a.window.max(1) {
            payload.clear();
            wire::stamp(&mut payload, i as u32, seq, now_us(start), a.size);
            seq += 1;
            pool.send(init, &payload);
        }
    }
    pool.flush();
    let mut hist = Histogram::default();
    let mut relayed = 0u64;
    let mut phases = Phases::new(&c, start, "no message relayed for 5 s");
    while let Some(now) = phases.next_turn() {
        let measuring = phases.measuring();
        pool.turn(Duration::from_millis(10))
            .unwrap_or_else(|e| die(&e.to_string()));
        let t = now_us(start);
        let inbox = std::mem::take(&mut pool.inbox);
        for ev in &inbox {
            let Kind::Message(r) = &ev.kind else {
                if matches!(ev.kind, Kind::Closed) {
                    die("a connection closed during the run");
                }
                continue;
            };
            let Some(&(i, initiator)) = role.get(&ev.key) else {
                continue;
            };
            phases.progress(now);
            if measuring {
                relayed += 1;
            }
            let body = pool.arena[r.clone()].to_vec();
            if initiator {
                if let Some((_, _, sent)) = wire::read_stamp(&body)
                    && measuring
                {
                    hist.record(t.saturating_sub(sent));
                }
                payload.clear();
                wire::stamp(&mut payload, i as u32, seq, t, a.size);
                seq = seq.wrapping_add(1);
                pool.send(pairs[i].0, &payload);
            } else {
                pool.send(pairs[i].1, &body);
            }
        }
        pool.inbox = inbox;
        pool.flush();
    }
    let m = phases.finish();
    report(&[
        ("scenario", "relay".into()),
        ("pairs", a.pairs.to_string()),
        ("window", a.window.to_string()),
        ("size", a.size.to_string()),
        ("relayed", relayed.to_string()),
        ("msgs_per_s", format!("{:.0}", relayed as f64 / m.secs)),
        (
            "mb_per_s",
            format!("{:.1}", relayed as f64 * a.size as f64 / m.secs / 1e6),
        ),
        (
            "server_us_per_msg",
            format!("{:.3}", m.server_cpu_us / relayed.max(1) as f64),
        ),
        (
            "load_us_per_msg",
            format!("{:.3}", m.own_cpu_us / relayed.max(1) as f64),
        ),
        ("rtt_p50_us", hist.quantile(0.5).to_string()),
        ("rtt_p99_us", hist.quantile(0.99).to_string()),
        ("rtt_max_us", hist.max().to_string()),
    ]);
    pool.close_all();
}

fn conns(a: ConnsArgs) {
    let c = &a.common;
    let proto = proto_of(c.proto);
    let mut pool = Pool::new(addr_of(&c.addr), proto).unwrap_or_else(|e| die(&e.to_string()));
    let before = stats::rss_kib(c.server_pid);
    let path = a.path.clone().unwrap_or_else(|| path_for(proto, "idle"));
    let paths = vec![path; a.count];
    let w = Window::start(c.server_pid);
    open_all(&mut pool, &paths, c.concurrency);
    let m = w.finish();
    settle(&mut pool, 1000);
    let after = stats::rss_kib(c.server_pid);
    report(&[
        ("scenario", "conns".into()),
        ("count", a.count.to_string()),
        (
            "handshakes_per_s",
            format!("{:.0}", a.count as f64 / m.secs),
        ),
        (
            "server_us_per_handshake",
            format!("{:.1}", m.server_cpu_us / a.count as f64),
        ),
        ("rss_before_kib", before.to_string()),
        ("rss_after_kib", after.to_string()),
        (
            "rss_per_conn_bytes",
            format!(
                "{:.0}",
                (after.saturating_sub(before) as f64 * 1024.0) / a.count as f64
            ),
        ),
    ]);
    pool.close_all();
}

fn session(a: SessionArgs) {
    let c = &a.common;
    let mut pool = Pool::new(addr_of(&c.addr), Proto::Raw).unwrap_or_else(|e| die(&e.to_string()));
    let host = addr_of(&c.addr).to_string();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let paths: Vec<String> = (0..a.members)
        .map(|i| {
            let t = switchboard::apps::session::jwt::mint(
                &format!("load-{i}"),
                "load-room",
                &host,
                now,
                3600,
                a.secret.as_bytes(),
            );
            format!("/?token={t}")
        })
        .collect();
    let keys = open_all(&mut pool, &paths, c.concurrency);
    settle(&mut pool, 500);
    let senders = &keys[..a.senders.min(keys.len())];
    let start = Instant::now();
    // Outstanding stamps per sender, oldest first.
    let mut outstanding: Vec<std::collections::VecDeque<Vec<u8>>> =
        vec![Default::default(); senders.len()];
    let mut seq = 0u32;
    let send = |pool: &mut Pool,
                s: usize,
                out: &mut [std::collections::VecDeque<Vec<u8>>],
                seq: &mut u32| {
        let mut p = Vec::new();
        wire::stamp(&mut p, s as u32, *seq, now_us(start), a.size);
        *seq += 1;
        pool.send(senders[s], &p);
        out[s].push_back(p[..wire::STAMP_LEN].to_vec());
    };
    for s in 0..senders.len() {
        for _ in 0..a.window.max(1) {
            send(&mut pool, s, &mut outstanding, &mut seq);
        }
    }
    pool.flush();
    let (mut accepted, mut snapshots, mut bytes) = (0u64, 0u64, 0u64);
    let mut hist = Histogram::default();
    let sender_of: std::collections::HashMap<usize, usize> =
        senders.iter().enumerate().map(|(i, &k)| (k, i)).collect();
    let mut phases = Phases::new(c, start, "no snapshot completed a message for 5 s");
    while let Some(now) = phases.next_turn() {
        let measuring = phases.measuring();
        pool.turn(Duration::from_millis(10))
            .unwrap_or_else(|e| die(&e.to_string()));
        let t = now_us(start);
        let inbox = std::mem::take(&mut pool.inbox);
        for ev in &inbox {
            let Kind::Message(r) = &ev.kind else {
                if matches!(ev.kind, Kind::Closed) {
                    die("a member was closed");
                }
                continue;
            };
            if measuring {
                snapshots += 1;
                bytes += r.len() as u64;
            }
            let Some(&s) = sender_of.get(&ev.key) else {
                continue;
            };
            let body = &pool.arena[r.clone()];
            let mut done = 0;
            while let Some(stamp) = outstanding[s].get(done) {
                if body.windows(stamp.len()).any(|w| w == &stamp[..]) {
                    done += 1;
                } else {
                    break;
                }
            }
            for _ in 0..done {
                let stamp = outstanding[s].pop_front().expect("counted above");
                phases.progress(now);
                if measuring {
                    accepted += 1;
                    if let Some((_, _, sent)) = wire::read_stamp(&stamp) {
                        hist.record(t.saturating_sub(sent));
                    }
                }
                send(&mut pool, s, &mut outstanding, &mut seq);
            }
        }
        pool.inbox = inbox;
        pool.flush();
    }
    let m = phases.finish();
    report(&[
        ("scenario", "session".into()),
        ("members", a.members.to_string()),
        ("senders", a.senders.to_string()),
        ("window", a.window.to_string()),
        ("accepted", accepted.to_string()),
        ("accepted_per_s", format!("{:.0}", accepted as f64 / m.secs)),
        (
            "snapshots_per_s",
            format!("{:.0}", snapshots as f64 / m.secs),
        ),
        (
            "bytes_per_accepted",
            format!("{:.0}", bytes as f64 / accepted.max(1) as f64),
        ),
        (
            "server_us_per_accepted",
            format!("{:.2}", m.server_cpu_us / accepted.max(1) as f64),
        ),
        (
            "server_us_per_snapshot",
            format!("{:.3}", m.server_cpu_us / snapshots.max(1) as f64),
        ),
        ("p50_us", hist.quantile(0.5).to_string()),
        ("p99_us", hist.quantile(0.99).to_string()),
    ]);
    pool.close_all();
}

fn main() {
    match Cli::parse().scenario {
        Scenario::Session(a) => session(a),
        Scenario::Fanout(a) => fanout(a),
        Scenario::Relay(a) => relay(a),
        Scenario::Conns(a) => conns(a),
        Scenario::Floor(a) => floor::floor(a),
        Scenario::RttFloor(a) => rtt_floor::rtt_floor(a),
        Scenario::Pester(a) => pester::pester(a),
    }
}
