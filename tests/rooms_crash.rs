//! The rooms store under `kill -9` at random moments during writes (issue 8, item 4;
//! rooms.md "Each batch is atomic: a crash loses at most the last ~1 s and never leaves a
//! corrupt or half-applied state"; RMS-32 in `tests/rooms.rs` is the single-shot version).
//!
//! A loop of cycles on one store file. Each cycle spawns the real binary, reads back what
//! the last one left (through the protocol), then runs one writer per room (rooms on both
//! reactors) doing every kind of write the store keeps: counter additions, poll votes
//! (each a new answer, so the old answer row goes and a new one comes), admin config,
//! login properties, and visits (a new user record and a suffix). Each writer waits for
//! the server's answer to each write and notes when it came. At a seeded pseudo-random
//! moment the server gets SIGKILL. Then:
//!
//! - the files, copied as they are, pass `PRAGMA integrity_check`, and their rows are
//!   consistent (a vote's answer row exists, a poll has its answers, nothing dangles);
//! - per room, the stored state equals the state after exactly a prefix of that room's
//!   writes (no half-applied write, nothing from later without everything before);
//! - that prefix holds every write answered more than `flush_interval_ms` + 700 ms before
//!   the kill;
//! - the restarted server serves that same state (`/details`, the first frames, the
//!   replays of `subscribe`).
//!
//! While the writers run, a reader opens the live file read-only (WAL) over and over: every
//! committed state must hang together already, whatever moment a crash would pick. (Before
//! the rows of one event became one group, a vote could be committed without its answer
//! row; this reader saw it within a few cycles, the kill point alone only sometimes.)
//!
//! The flush interval changes per cycle: the default 1000 ms, 300 ms, and 20 ms (batch
//! boundaries all the time, so a write whose rows were split over two batches would show).
//! `ROOMS_CRASH_SEED=<n>` replays a run (the seed is printed).

mod common;

use common::{Client, DEADLINE, Proc, get};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tungstenite::Message;

const KEY: &str = "crash-key";
const CYCLES: usize = 8;
/// Added to the flush interval: how late an answered write may still be missing.
const MARGIN: Duration = Duration::from_millis(700);
const FLUSH_MS: [u64; 3] = [1000, 300, 20];
/// Visits per writer and cycle.
const MAX_VISITS: usize = 40;

/// splitmix64: small, seedable, good enough to pick moments and operations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One write, as the writer sends it. Each changes the room's state to one never seen
/// before, so the state after a prefix tells the prefix.
#[derive(Clone, Debug)]
enum Write {
    /// The writer's own connection at the start of a cycle: suffix counter + 1, its user
    /// record written.
    Open,
    Counter,
    Vote(String),
    Config(String),
    Login(u64),
    /// A new user: connects with its own session, reads its profile, closes.
    Visit(String),
}

/// What the store keeps of one room, as far as these writes touch it.
#[derive(Clone, Debug, Default, PartialEq)]
struct State {
    increment: u64,
    config: String,
    counter: Option<u64>,
    /// The writer's answer in poll `p`.
    vote: Option<String>,
    /// The writer's stored properties (`None`: no record yet).
    props: Option<String>,
    visitors: BTreeSet<String>,
}

impl State {
    /// For failure messages: the visitors as a count.
    fn brief(&self) -> String {
        format!(
            "increment {}, config {:?}, counter {:?}, vote {:?}, props {:?}, {} visitors",
            self.increment,
            self.config,
            self.counter,
            self.vote,
            self.props,
            self.visitors.len()
        )
    }

    fn apply(&mut self, w: &Write) {
        match w {
            Write::Open => {
                self.increment += 1;
                self.props.get_or_insert_with(|| "{}".into());
            }
            Write::Counter => self.counter = Some(self.counter.unwrap_or(0) + 1),
            Write::Vote(a) => self.vote = Some(a.clone()),
            Write::Config(c) => self.config = c.clone(),
            Write::Login(n) => self.props = Some(format!(r#"{{"n":{n}}}"#)),
            Write::Visit(v) => {
                self.increment += 1;
                self.visitors.insert(v.clone());
            }
        }
    }
}

struct Room {
    name: String,
    /// The state the last check found (what this cycle starts from).
    state: State,
    next: u64,
}

fn writer_id(room: &str) -> String {
    format!("w-{room}")
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sb-rooms-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn spawn(store: &Path, flush_ms: u64) -> Proc {
    let flush = flush_ms.to_string();
    Proc::spawn_rooms(store, KEY, &["--rooms-flush-interval-ms", &flush])
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn sign(room: &str, ts: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(format!("{room}{ts}{KEY}").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn text(c: &mut Client) -> String {
    match c.recv() {
        Message::Text(t) => t.to_string(),
        other => panic!("expected text, got {other:?}"),
    }
}

/// Two rooms owned by each of the two reactors.
fn room_names() -> Vec<String> {
    let owner = |n: &str| switchboard::router::owner_of(&switchboard::apps::rooms::owner_key(n), 2);
    let mut names = Vec::new();
    for r in 0..2 {
        names.extend(
            (0..)
                .map(|i| format!("crash-{i}"))
                .filter(|n| owner(n) == r)
                .take(2),
        );
    }
    names
}

/// The state of `room` as the restarted server serves it (`/details`, the first frames,
/// the replays of `subscribe`), and the writer's connection, whose opening is the first
/// write of the new cycle. Visitors are not visible this way (only in the files).
fn read_back(addr: SocketAddr, room: &str) -> (State, Client) {
    let d = get(addr, &format!("/details?room={room}"));
    let d: serde_json::Value = serde_json::from_str(d.split_once("\r\n\r\n").unwrap().1).unwrap();
    let w = writer_id(room);
    let mut c = Client::connect(addr, &format!("/websocket?room={room}&session={w}"));
    let config: serde_json::Value = serde_json::from_str(&text(&mut c)).unwrap();
    assert_eq!(config["type"], "config");
    let profile: serde_json::Value = serde_json::from_str(&text(&mut c)).unwrap();
    assert_eq!(profile["data"]["id"], w);
    let props = profile["data"]["properties"].to_string();
    c.send_text(r#"{"type":"subscribe","data":"counter:c"}"#);
    c.send_text(r#"{"type":"subscribe","data":"poll:p"}"#);
    c.send_text(r#"{"type":"profile"}"#);
    let mut state = State {
        increment: d["increment"].as_u64().unwrap(),
        config: config["data"].as_str().unwrap().to_string(),
        props: Some(props),
        ..State::default()
    };
    assert_eq!(
        d["config"], config["data"],
        "/details and the config frame agree"
    );
    loop {
        let f: serde_json::Value = serde_json::from_str(&text(&mut c)).unwrap();
        match f["type"].as_str().unwrap() {
            "profile" => break,
            "counter" => state.counter = Some(f["data"]["value"].as_u64().expect("an integer")),
            "poll" => {
                let stats = f["data"]["stats"].as_object().unwrap();
                assert_eq!(stats.len(), 1, "{room}: one voter, one answer: {f}");
                let (answer, n) = stats.iter().next().unwrap();
                assert_eq!(n, 1, "{room}: {f}");
                state.vote = Some(answer.clone());
            }
            other => panic!("{room}: unexpected {other}: {f}"),
        }
    }
    assert_eq!(
        d["pollCount"].as_u64(),
        Some(u64::from(state.vote.is_some())),
        "{room}: a stored poll without its vote"
    );
    // `/details` was read before the writer connected. Its record existed iff its suffix
    // is not the one this connection just drew.
    if profile["data"]["suffix"].as_u64() > d["increment"].as_u64() {
        state.props = None;
    }
    (state, c)
}

/// The rows hang together: every vote's answer row exists, every answer row has a vote,
/// every poll has answers and every answer its poll (one snapshot: a read transaction).
/// The outer error is SQLite's, the inner one the verdict.
fn check_rows(db: &rusqlite::Connection) -> rusqlite::Result<Result<(), String>> {
    const CHECKS: [(&str, &str); 3] = [
        (
            "votes whose answer row is missing",
            "SELECT count(*) FROM votes v WHERE NOT EXISTS (SELECT 1 FROM answers a WHERE a.room = v.room AND a.poll = v.poll AND a.answer = v.answer)",
        ),
        (
            "answer rows nobody voted for",
            "SELECT count(*) FROM answers a WHERE NOT EXISTS (SELECT 1 FROM votes v WHERE a.room = v.room AND a.poll = v.poll AND a.answer = v.answer)",
        ),
        (
            "polls without answers, or answers without their poll",
            "SELECT (SELECT count(*) FROM polls p WHERE NOT EXISTS (SELECT 1 FROM answers a WHERE a.room = p.room AND a.poll = p.poll)) + (SELECT count(*) FROM answers a WHERE NOT EXISTS (SELECT 1 FROM polls p WHERE a.room = p.room AND a.poll = p.poll))",
        ),
    ];
    db.execute_batch("BEGIN")?;
    let mut verdict = Ok(());
    for (what, sql) in CHECKS {
        let n: i64 = match db.query_row(sql, [], |r| r.get(0)) {
            Ok(n) => n,
            Err(e) => {
                let _ = db.execute_batch("ROLLBACK");
                return Err(e);
            }
        };
        if n != 0 {
            verdict = Err(format!("{n} {what}"));
            break;
        }
    }
    db.execute_batch("COMMIT")?;
    Ok(verdict)
}

/// Reads the live store (another process's WAL database, read-only) over and over while
/// the server writes: every committed state must already hang together, whatever moment a
/// crash picks. Returns the number of snapshots checked.
fn watch_live(
    store: PathBuf,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Result<usize, String>> {
    std::thread::spawn(move || {
        use rusqlite::OpenFlags;
        let db = rusqlite::Connection::open_with_flags(
            &store,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| e.to_string())?;
        db.busy_timeout(Duration::from_secs(1))
            .map_err(|e| e.to_string())?;
        let mut snapshots = 0;
        while !stop.load(Ordering::Relaxed) {
            match check_rows(&db) {
                Ok(Ok(())) => snapshots += 1,
                Ok(Err(e)) => return Err(format!("a committed state, read live: {e}")),
                // The server was killed under the reader, or the file was busy.
                Err(_) => {}
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(snapshots)
    })
}

/// Copies the database files as the kill left them and checks the copy; the rows of each
/// room as a [`State`].
fn check_files(store: &Path, names: &[String]) -> Vec<State> {
    let copy = store.with_file_name("copy.db");
    for suffix in ["", "-wal"] {
        let from = PathBuf::from(format!("{}{suffix}", store.display()));
        let to = PathBuf::from(format!("{}{suffix}", copy.display()));
        let _ = std::fs::remove_file(&to);
        if from.exists() {
            std::fs::copy(&from, &to).unwrap();
        }
    }
    let _ = std::fs::remove_file(format!("{}-shm", copy.display()));
    let db = rusqlite::Connection::open(&copy).expect("the store opens");
    let ok: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check runs");
    assert_eq!(ok, "ok", "PRAGMA integrity_check");
    if let Err(e) = check_rows(&db).expect("the checks run") {
        panic!("the files after the kill: {e}");
    }
    let states = names
        .iter()
        .map(|room| {
            let mut s = State::default();
            if let Ok((config, increment)) = db.query_row(
                "SELECT config, increment FROM rooms WHERE room = ?1",
                [room],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
            ) {
                s.config = config;
                s.increment = increment as u64;
            }
            s.counter = db
                .query_row(
                    "SELECT value FROM counters WHERE room = ?1 AND counter = 'c'",
                    [room],
                    |r| r.get::<_, String>(0),
                )
                .ok()
                .map(|v| v.parse().expect("an integer counter"));
            s.vote = db
                .query_row(
                    "SELECT answer FROM votes WHERE room = ?1 AND poll = 'p' AND user = ?2",
                    [room, &writer_id(room)],
                    |r| r.get(0),
                )
                .ok();
            s.props = db
                .query_row(
                    "SELECT props FROM users WHERE room = ?1 AND user = ?2",
                    [room, &writer_id(room)],
                    |r| r.get(0),
                )
                .ok();
            let mut q = db
                .prepare("SELECT user FROM users WHERE room = ?1 AND user LIKE 'v-%'")
                .unwrap();
            s.visitors = q
                .query_map([room], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            s
        })
        .collect();
    drop(db);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", copy.display()));
    }
    states
}

/// What one writer did: each write, and when its answer came (`None`: no answer before
/// the kill; it may or may not be stored).
type Log = Vec<(Write, Option<Instant>)>;

/// Sends writes until the server dies; `c` is the room's admin connection, subscribed to
/// its counter and poll. Each answer is checked against the live state.
fn write_until_killed(
    addr: SocketAddr,
    room: &str,
    mut c: Client,
    mut state: State,
    mut rng: Rng,
    next: &mut u64,
    stop: &AtomicBool,
) -> Log {
    let mut log = Vec::new();
    let mut visits = 0;
    while !stop.load(Ordering::Relaxed) {
        *next += 1;
        let n = *next;
        let w = match rng.below(10) {
            3..=5 => Write::Vote(format!("a{n}")),
            6 => Write::Config(format!("cfg-{n}")),
            7 | 8 => Write::Login(n),
            // Each visit is a TCP connection: a few per cycle are enough.
            9 if visits < MAX_VISITS => {
                visits += 1;
                Write::Visit(format!("v-{room}-{n}"))
            }
            _ => Write::Counter,
        };
        let sent = match &w {
            Write::Counter => c.ws.send(Message::text(
                r#"{"type":"counter","data":{"id":"c","value":1}}"#,
            )),
            Write::Vote(a) => c.ws.send(Message::text(format!(
                r#"{{"type":"poll","data":{{"id":"p","answer":"{a}"}}}}"#
            ))),
            Write::Config(v) => c.ws.send(Message::text(format!(
                r#"{{"type":"config","data":"{v}"}}"#
            ))),
            Write::Login(n) => c.ws.send(Message::text(format!(
                r#"{{"type":"login","data":{{"n":{n}}}}}"#
            ))),
            Write::Visit(_) | Write::Open => Ok(()),
        };
        state.apply(&w);
        if sent.is_err() {
            log.push((w, None));
            break;
        }
        let answer = match &w {
            Write::Visit(v) => visit(addr, room, v),
            _ => next_text(&mut c),
        };
        let Some(answer) = answer else {
            log.push((w, None));
            break;
        };
        let want = match &w {
            Write::Counter => format!(
                r#"{{"type":"counter","data":{{"id":"c","value":{}}}}}"#,
                state.counter.unwrap()
            ),
            Write::Vote(a) => {
                format!(r#"{{"type":"poll","data":{{"id":"p","stats":{{"{a}":1}}}}}}"#)
            }
            Write::Config(v) => format!(r#"{{"type":"config","data":"{v}"}}"#),
            Write::Login(n) => format!(r#""properties":{{"n":{n}}}"#),
            Write::Visit(_) => format!(r#""suffix":{},"#, state.increment),
            Write::Open => unreachable!("not sent here"),
        };
        assert!(answer.contains(&want), "{room}: {w:?} answered {answer}");
        log.push((w, Some(Instant::now())));
    }
    log
}

/// The next text frame, or `None` once the server is gone.
fn next_text(c: &mut Client) -> Option<String> {
    loop {
        match c.ws.read() {
            Ok(Message::Text(t)) => return Some(t.to_string()),
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(_) => return None,
        }
    }
}

/// A visitor with its own session: its profile (the answer), then it leaves.
fn visit(addr: SocketAddr, room: &str, v: &str) -> Option<String> {
    use tungstenite::client::IntoClientRequest;
    let stream = std::net::TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let req = format!("ws://{addr}/websocket?room={room}&session={v}")
        .into_client_request()
        .unwrap();
    let (ws, _) = tungstenite::client::client(req, stream).ok()?;
    let mut c = Client { ws };
    next_text(&mut c)?;
    let profile = next_text(&mut c)?;
    c.close();
    Some(profile)
}

#[test]
fn kill_9_at_random_moments_leaves_a_consistent_store_at_most_a_second_behind() {
    let seed = std::env::var("ROOMS_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| now_ms() ^ u64::from(std::process::id()));
    eprintln!("rooms crash seed {seed} (ROOMS_CRASH_SEED={seed} replays the plan)");
    let mut rng = Rng(seed);
    let dir = temp_dir();
    let store = dir.join("rooms.db");
    let mut rooms: Vec<Room> = room_names()
        .into_iter()
        .map(|name| Room {
            name,
            state: State::default(),
            next: 0,
        })
        .collect();
    let names: Vec<String> = rooms.iter().map(|r| r.name.clone()).collect();
    let started = Instant::now();
    let (mut lost_answered, mut live_snapshots) = (0, 0);
    for cycle in 0..CYCLES {
        let flush_ms = FLUSH_MS[cycle % FLUSH_MS.len()];
        let window = Duration::from_millis(flush_ms) + MARGIN;
        let mut p = spawn(&store, flush_ms);
        let addr = p.addr("rooms");
        // What the last kill left is what the restarted server serves.
        let mut writers = Vec::new();
        for room in &mut rooms {
            let (mut served, mut c) = read_back(addr, &room.name);
            served.visitors = room.state.visitors.clone();
            assert!(
                served == room.state,
                "cycle {cycle}, {}: served after the restart: {}; in the files: {}",
                room.name,
                served.brief(),
                room.state.brief()
            );
            let opened = Instant::now();
            let ts = now_ms().to_string();
            c.send_text(&format!(
                r#"{{"type":"authenticate","data":{{"ts":"{ts}","key":"{}"}}}}"#,
                sign(&room.name, &ts)
            ));
            assert!(text(&mut c).contains(r#""role":"admin""#));
            writers.push((c, opened));
        }
        let kill_after = Duration::from_millis(200 + rng.below(flush_ms + 700 + 1200));
        let stop = Arc::new(AtomicBool::new(false));
        let handles: Vec<_> = rooms
            .iter()
            .zip(writers)
            .map(|(room, (c, opened))| {
                let (name, state, mut next) = (room.name.clone(), room.state.clone(), room.next);
                let mut start = state.clone();
                start.apply(&Write::Open);
                let writer_rng = Rng(rng.next());
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut log = vec![(Write::Open, Some(opened))];
                    log.extend(write_until_killed(
                        addr, &name, c, start, writer_rng, &mut next, &stop,
                    ));
                    (log, next)
                })
            })
            .collect();
        let watching = Arc::new(AtomicBool::new(false));
        let watcher = watch_live(store.clone(), watching.clone());
        std::thread::sleep(kill_after);
        p.signal(libc::SIGKILL);
        let killed = Instant::now();
        stop.store(true, Ordering::Relaxed);
        let _ = p.child.wait();
        watching.store(true, Ordering::Relaxed);
        let snapshots = watcher
            .join()
            .expect("the watcher panicked")
            .unwrap_or_else(|e| panic!("cycle {cycle}: {e}"));
        live_snapshots += snapshots;
        let logs: Vec<(Log, u64)> = handles
            .into_iter()
            .map(|h| h.join().expect("a writer panicked"))
            .collect();
        let stored = check_files(&store, &names);
        let mut summary = Vec::new();
        for ((room, (log, next)), found) in rooms.iter_mut().zip(logs).zip(stored) {
            room.next = next;
            // The state after each prefix of this cycle's writes.
            let mut s = room.state.clone();
            let mut matched = (s == found).then_some(0);
            for (i, (w, _)) in log.iter().enumerate() {
                s.apply(w);
                if s == found {
                    matched = Some(i + 1);
                }
            }
            let Some(k) = matched else {
                let tail: Vec<&Write> = log.iter().rev().take(8).rev().map(|(w, _)| w).collect();
                panic!(
                    "cycle {cycle}, {}: the store holds a state that no prefix of the {} writes gives (a half-applied write?)\nstored: {}\nbefore the cycle: {}\nlast writes: {tail:?}",
                    room.name,
                    log.len(),
                    found.brief(),
                    room.state.brief(),
                );
            };
            // Every write answered longer than the window before the kill is in.
            let must = log
                .iter()
                .rposition(|(_, at)| at.is_some_and(|t| killed.duration_since(t) > window))
                .map_or(0, |i| i + 1);
            assert!(
                k >= must,
                "cycle {cycle}, {}: only {k} of the writes stored, but {must} were answered more than {window:?} before the kill",
                room.name
            );
            let answered = log.iter().filter(|(_, at)| at.is_some()).count();
            lost_answered += answered.saturating_sub(k);
            summary.push(format!("{} {k}/{}", room.name, log.len()));
            room.state = found;
        }
        eprintln!(
            "cycle {cycle}: flush {flush_ms} ms, killed after {kill_after:?}, {snapshots} live snapshots checked; stored/written: {}",
            summary.join(", ")
        );
    }
    eprintln!(
        "{CYCLES} kills in {:?}; {lost_answered} answered writes lost (all within the window); {live_snapshots} live snapshots consistent",
        started.elapsed()
    );
    assert!(live_snapshots > 0, "the live store was never read");
    // A last start: the store still opens and serves the last state.
    let p = spawn(&store, 1000);
    for room in &rooms {
        let (mut served, _) = read_back(p.addr("rooms"), &room.name);
        served.visitors = room.state.visitors.clone();
        assert!(
            served == room.state,
            "{}: after the last kill: {}; in the files: {}",
            room.name,
            served.brief(),
            room.state.brief()
        );
    }
    drop(p);
    let _ = std::fs::remove_dir_all(&dir);
}
