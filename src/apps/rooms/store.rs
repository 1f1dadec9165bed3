//! Durable room state in an embedded SQLite database (rusqlite, bundled).
//!
//! Why SQLite: its crash safety is the most tested of any embedded store; in WAL mode a
//! `kill -9` loses at most the transactions not yet committed and never leaves a torn
//! one, and the file can be inspected with the `sqlite3` shell. (redb would also do;
//! SQLite wins on tooling and on decades of power-loss testing.)
//!
//! The app never touches the database: it pushes small [`Op`]s (one row each) into a
//! [`Sink`], which for the real server is a channel to the store thread. That thread
//! coalesces ops by row (a stream of counter updates becomes one upsert) and commits one
//! transaction at most `flush_interval_ms` after the first pending op, or at once on
//! [`Op::Flush`] (graceful shutdown), and a last time when every sender is gone. A failed
//! commit keeps the batch, marks the store unhealthy and retries.
//!
//! The rows one event changes (a vote: the poll, the answer that went, the answer that
//! came, the vote; a connection: the suffix counter and the user record) travel as one
//! [`Op::Group`], and a batch only ends between channel messages, so a crash never leaves
//! half of an event in the file (a vote pointing at an answer row that is not there yet).
//!
//! Loading (decision): every room is read once at startup ([`open`]) and handed to the
//! reactor that owns it, so a room's first use never blocks a reactor on the disk. An
//! idle room is "unloaded" by dropping its ephemeral state; its persisted part stays in
//! memory, which is what the next load would read anyway.

use crate::apps::Millis;
use rusqlite::{Connection, params};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One row change. Rows are keyed by room and the ids shown.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Increment {
        room: Arc<str>,
        value: u64,
    },
    Config {
        room: Arc<str>,
        text: String,
    },
    Poll {
        room: Arc<str>,
        poll: String,
        seq: u64,
    },
    /// An answer appeared at `pos` (`None`: it disappeared).
    Answer {
        room: Arc<str>,
        poll: String,
        answer: String,
        pos: Option<u64>,
    },
    /// A user's vote (`None`: removed).
    Vote {
        room: Arc<str>,
        poll: String,
        user: String,
        answer: Option<String>,
    },
    Counter {
        room: Arc<str>,
        id: String,
        seq: u64,
        value: String,
    },
    User {
        room: Arc<str>,
        id: String,
        suffix: u64,
        props: String,
        last_seen: Millis,
    },
    /// Commit what is pending now.
    Flush,
    /// The ops of one event, always committed in the same transaction.
    Group(Vec<Op>),
}

/// Where the app puts its row changes. Never blocks.
pub trait Sink: Send {
    fn push(&mut self, op: Op);

    /// The ops of one event, which must land in the store together.
    fn push_group(&mut self, ops: Vec<Op>) {
        for op in ops {
            self.push(op);
        }
    }
}

/// The real sink: a channel to the store thread.
pub struct ChannelSink(pub mpsc::Sender<Op>);

impl Sink for ChannelSink {
    fn push(&mut self, op: Op) {
        // The thread outlives every reactor; a send can only fail after it died, and
        // then there is nowhere left to write.
        let _ = self.0.send(op);
    }

    fn push_group(&mut self, mut ops: Vec<Op>) {
        match ops.len() {
            0 => {}
            1 => self.push(ops.pop().expect("one op")),
            _ => self.push(Op::Group(ops)),
        }
    }
}

/// A sink that drops everything (tests that do not look at the store).
pub struct NullSink;

impl Sink for NullSink {
    fn push(&mut self, _op: Op) {}
}

/// A sink that records ops (unit tests).
#[derive(Clone, Default)]
pub struct MemSink(pub Arc<std::sync::Mutex<Vec<Op>>>);

impl Sink for MemSink {
    fn push(&mut self, op: Op) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(op);
    }
}

/// A stored poll: id, creation seq, answers in order as (answer, pos, voter ids).
pub type LoadedPoll = (String, u64, Vec<(String, u64, Vec<String>)>);

/// A room as read from the store.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Loaded {
    pub config: String,
    pub increment: u64,
    pub polls: Vec<LoadedPoll>,
    /// (counter id, seq, decimal text), creation order.
    pub counters: Vec<(String, u64, String)>,
    /// (user id, suffix, properties JSON, last seen)
    pub users: Vec<(String, u64, String, Millis)>,
}

/// The running store thread.
pub struct Store {
    tx: Option<mpsc::Sender<Op>>,
    thread: Option<JoinHandle<()>>,
    pub healthy: Arc<AtomicBool>,
}

impl Store {
    pub fn sink(&self) -> ChannelSink {
        ChannelSink(self.tx.clone().expect("the sender lives until join"))
    }

    /// Waits for the thread to write everything (after every sink is dropped).
    pub fn join(mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

const SCHEMA: &str = "
PRAGMA journal_mode=WAL;
PRAGMA synchronous=NORMAL;
CREATE TABLE IF NOT EXISTS rooms(room TEXT PRIMARY KEY, config TEXT NOT NULL DEFAULT '', increment INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS polls(room TEXT, poll TEXT, seq INTEGER, PRIMARY KEY(room, poll));
CREATE TABLE IF NOT EXISTS answers(room TEXT, poll TEXT, answer TEXT, pos INTEGER, PRIMARY KEY(room, poll, answer));
CREATE TABLE IF NOT EXISTS votes(room TEXT, poll TEXT, user TEXT, answer TEXT, PRIMARY KEY(room, poll, user));
CREATE TABLE IF NOT EXISTS counters(room TEXT, counter TEXT, seq INTEGER, value TEXT, PRIMARY KEY(room, counter));
CREATE TABLE IF NOT EXISTS users(room TEXT, user TEXT, suffix INTEGER, props TEXT, last_seen INTEGER, PRIMARY KEY(room, user));
";

/// Opens (or creates) the database, deletes user records unused for `ttl_days` (0:
/// never), reads every room, and starts the writer thread.
pub fn open(
    path: &Path,
    flush_interval_ms: u64,
    ttl_days: u64,
    now: Millis,
) -> Result<(Store, HashMap<String, Loaded>), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let db = Connection::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    db.execute_batch(SCHEMA)
        .map_err(|e| format!("cannot prepare {}: {e}", path.display()))?;
    if ttl_days > 0 {
        let cutoff = now.saturating_sub(ttl_days * 86_400_000);
        db.execute(
            "DELETE FROM users WHERE last_seen < ?1",
            params![cutoff as i64],
        )
        .map_err(|e| format!("cannot expire users: {e}"))?;
    }
    let rooms = load(&db).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let (tx, rx) = mpsc::channel();
    let healthy = Arc::new(AtomicBool::new(true));
    let h = healthy.clone();
    let interval = Duration::from_millis(flush_interval_ms.max(1));
    let thread = std::thread::Builder::new()
        .name("rooms-store".into())
        .spawn(move || writer(db, rx, interval, h))
        .map_err(|e| format!("cannot start the store thread: {e}"))?;
    Ok((
        Store {
            tx: Some(tx),
            thread: Some(thread),
            healthy,
        },
        rooms,
    ))
}

fn load(db: &Connection) -> rusqlite::Result<HashMap<String, Loaded>> {
    let mut rooms: HashMap<String, Loaded> = HashMap::new();
    let mut q = db.prepare("SELECT room, config, increment FROM rooms")?;
    let mut rows = q.query([])?;
    while let Some(r) = rows.next()? {
        let room = rooms.entry(r.get(0)?).or_default();
        room.config = r.get(1)?;
        room.increment = r.get::<_, i64>(2)? as u64;
    }
    let mut q = db.prepare("SELECT room, poll, seq FROM polls ORDER BY room, seq")?;
    let mut rows = q.query([])?;
    while let Some(r) = rows.next()? {
        let room = rooms.entry(r.get(0)?).or_default();
        room.polls
            .push((r.get(1)?, r.get::<_, i64>(2)? as u64, Vec::new()));
    }
    let mut q =
        db.prepare("SELECT room, poll, answer, pos FROM answers ORDER BY room, poll, pos")?;
    let mut rows = q.query([])?;
    while let Some(r) = rows.next()? {
        let room: String = r.get(0)?;
        let poll: String = r.get(1)?;
        if let Some(p) = rooms
            .get_mut(&room)
            .and_then(|l| l.polls.iter_mut().find(|p| p.0 == poll))
        {
            p.2.push((r.get(2)?, r.get::<_, i64>(3)? as u64, Vec::new()));
        }
    }
    let mut q = db.prepare("SELECT room, poll, user, answer FROM votes ORDER BY rowid")?;
    let mut rows = q.query([])?;
    while let Some(r) = rows.next()? {
        let (room, poll, answer): (String, String, String) = (r.get(0)?, r.get(1)?, r.get(3)?);
        if let Some(a) = rooms
            .get_mut(&room)
            .and_then(|l| l.polls.iter_mut().find(|p| p.0 == poll))
            .and_then(|p| p.2.iter_mut().find(|a| a.0 == answer))
        {
            a.2.push(r.get(2)?);
        }
    }
    let mut q = db.prepare("SELECT room, counter, seq, value FROM counters ORDER BY room, seq")?;
    let mut rows = q.query([])?;
    while let Some(r) = rows.next()? {
        let room = rooms.entry(r.get(0)?).or_default();
        room.counters
            .push((r.get(1)?, r.get::<_, i64>(2)? as u64, r.get(3)?));
    }
    let mut q =
        db.prepare("SELECT room, user, suffix, props, last_seen FROM users ORDER BY rowid")?;
    let mut rows = q.query([])?;
    while let Some(r) = rows.next()? {
        let room = rooms.entry(r.get(0)?).or_default();
        room.users.push((
            r.get(1)?,
            r.get::<_, i64>(2)? as u64,
            r.get(3)?,
            r.get::<_, i64>(4)? as u64,
        ));
    }
    Ok(rooms)
}

/// The row an op writes, for coalescing.
fn row_key(op: &Op) -> Option<(u8, Arc<str>, String, String)> {
    Some(match op {
        Op::Increment { room, .. } => (0, room.clone(), String::new(), String::new()),
        Op::Config { room, .. } => (1, room.clone(), String::new(), String::new()),
        Op::Poll { room, poll, .. } => (2, room.clone(), poll.clone(), String::new()),
        Op::Answer {
            room, poll, answer, ..
        } => (3, room.clone(), poll.clone(), answer.clone()),
        Op::Vote {
            room, poll, user, ..
        } => (4, room.clone(), poll.clone(), user.clone()),
        Op::Counter { room, id, .. } => (5, room.clone(), id.clone(), String::new()),
        Op::User { room, id, .. } => (6, room.clone(), id.clone(), String::new()),
        Op::Flush | Op::Group(_) => return None,
    })
}

type Pending = (HashMap<(u8, Arc<str>, String, String), usize>, Vec<Op>);

fn writer(
    mut db: Connection,
    rx: mpsc::Receiver<Op>,
    interval: Duration,
    healthy: Arc<AtomicBool>,
) {
    let mut pending: Pending = (HashMap::new(), Vec::new());
    let mut deadline: Option<Instant> = None;
    loop {
        let got = match deadline {
            None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
            Some(d) => rx.recv_timeout(d.saturating_duration_since(Instant::now())),
        };
        let now_flush = match got {
            Ok(Op::Flush) => true,
            Ok(op) => {
                add(&mut pending, op);
                deadline.get_or_insert_with(|| Instant::now() + interval);
                false
            }
            Err(mpsc::RecvTimeoutError::Timeout) => true,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // Every sender is gone: write the rest, retrying for a while.
                for _ in 0..50 {
                    if pending.1.is_empty() || commit(&mut db, &mut pending, &healthy) {
                        break;
                    }
                    std::thread::sleep(interval.min(Duration::from_millis(200)));
                }
                return;
            }
        };
        if now_flush && !pending.1.is_empty() {
            deadline = if commit(&mut db, &mut pending, &healthy) {
                None
            } else {
                Some(Instant::now() + interval)
            };
        } else if now_flush {
            deadline = None;
        }
    }
}

fn add(pending: &mut Pending, op: Op) {
    if let Op::Group(ops) = op {
        return ops.into_iter().for_each(|op| add(pending, op));
    }
    let Some(key) = row_key(&op) else { return };
    match pending.0.get(&key) {
        Some(&i) => pending.1[i] = op,
        None => {
            pending.0.insert(key, pending.1.len());
            pending.1.push(op);
        }
    }
}

/// Writes the batch in one transaction; on failure keeps it for a retry.
fn commit(db: &mut Connection, pending: &mut Pending, healthy: &AtomicBool) -> bool {
    match write_batch(db, &pending.1) {
        Ok(()) => {
            pending.0.clear();
            pending.1.clear();
            healthy.store(true, Ordering::Relaxed);
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "rooms store: write failed, will retry");
            healthy.store(false, Ordering::Relaxed);
            false
        }
    }
}

fn write_batch(db: &mut Connection, ops: &[Op]) -> rusqlite::Result<()> {
    let tx = db.transaction()?;
    for op in ops {
        match op {
            Op::Increment { room, value } => tx
                .prepare_cached("INSERT INTO rooms(room, increment) VALUES(?1, ?2) ON CONFLICT(room) DO UPDATE SET increment = excluded.increment")?
                .execute(params![&**room, *value as i64])?,
            Op::Config { room, text } => tx
                .prepare_cached("INSERT INTO rooms(room, config) VALUES(?1, ?2) ON CONFLICT(room) DO UPDATE SET config = excluded.config")?
                .execute(params![&**room, text])?,
            Op::Poll { room, poll, seq } => tx
                .prepare_cached("INSERT OR REPLACE INTO polls(room, poll, seq) VALUES(?1, ?2, ?3)")?
                .execute(params![&**room, poll, *seq as i64])?,
            Op::Answer { room, poll, answer, pos: Some(pos) } => tx
                .prepare_cached("INSERT OR REPLACE INTO answers(room, poll, answer, pos) VALUES(?1, ?2, ?3, ?4)")?
                .execute(params![&**room, poll, answer, *pos as i64])?,
            Op::Answer { room, poll, answer, pos: None } => tx
                .prepare_cached("DELETE FROM answers WHERE room = ?1 AND poll = ?2 AND answer = ?3")?
                .execute(params![&**room, poll, answer])?,
            Op::Vote { room, poll, user, answer: Some(answer) } => tx
                .prepare_cached("INSERT OR REPLACE INTO votes(room, poll, user, answer) VALUES(?1, ?2, ?3, ?4)")?
                .execute(params![&**room, poll, user, answer])?,
            Op::Vote { room, poll, user, answer: None } => tx
                .prepare_cached("DELETE FROM votes WHERE room = ?1 AND poll = ?2 AND user = ?3")?
                .execute(params![&**room, poll, user])?,
            Op::Counter { room, id, seq, value } => tx
                .prepare_cached("INSERT OR REPLACE INTO counters(room, counter, seq, value) VALUES(?1, ?2, ?3, ?4)")?
                .execute(params![&**room, id, *seq as i64, value])?,
            Op::User { room, id, suffix, props, last_seen } => tx
                .prepare_cached("INSERT INTO users(room, user, suffix, props, last_seen) VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(room, user) DO UPDATE SET suffix = excluded.suffix, props = excluded.props, last_seen = excluded.last_seen")?
                .execute(params![&**room, id, *suffix as i64, props, *last_seen as i64])?,
            // Flushes never reach a batch; `add` flattens groups.
            Op::Flush | Op::Group(_) => 0,
        };
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_round_trip_through_the_file() {
        let dir = std::env::temp_dir().join(format!("sb-rooms-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("rooms.db");
        let (store, rooms) = open(&path, 10, 30, 1_000).unwrap();
        assert!(rooms.is_empty());
        let mut sink = store.sink();
        let r: Arc<str> = "r".into();
        sink.push(Op::Increment {
            room: r.clone(),
            value: 1,
        });
        sink.push(Op::Increment {
            room: r.clone(),
            value: 2,
        });
        sink.push(Op::Config {
            room: r.clone(),
            text: "x".into(),
        });
        sink.push(Op::Poll {
            room: r.clone(),
            poll: "p".into(),
            seq: 0,
        });
        for (a, pos) in [("b", 1), ("a", 0)] {
            sink.push(Op::Answer {
                room: r.clone(),
                poll: "p".into(),
                answer: a.into(),
                pos: Some(pos),
            });
        }
        sink.push(Op::Vote {
            room: r.clone(),
            poll: "p".into(),
            user: "u1".into(),
            answer: Some("a".into()),
        });
        sink.push(Op::Vote {
            room: r.clone(),
            poll: "p".into(),
            user: "u2".into(),
            answer: Some("b".into()),
        });
        sink.push(Op::Counter {
            room: r.clone(),
            id: "c".into(),
            seq: 0,
            value: "2.61".into(),
        });
        sink.push(Op::User {
            room: r.clone(),
            id: "u1".into(),
            suffix: 1,
            props: "{}".into(),
            last_seen: 1_000,
        });
        drop(sink);
        store.join();
        let (store, rooms) = open(&path, 10, 30, 2_000).unwrap();
        let l = &rooms["r"];
        assert_eq!((l.increment, l.config.as_str()), (2, "x"));
        assert_eq!(
            l.polls,
            vec![(
                "p".to_string(),
                0,
                vec![
                    ("a".to_string(), 0, vec!["u1".to_string()]),
                    ("b".to_string(), 1, vec!["u2".to_string()])
                ]
            )]
        );
        assert_eq!(l.counters, vec![("c".to_string(), 0, "2.61".to_string())]);
        assert_eq!(l.users.len(), 1);
        store.join();
        // A user unused for longer than the TTL is gone on the next load.
        let (store, rooms) = open(&path, 10, 1, 1_000 + 86_400_001).unwrap();
        assert!(rooms["r"].users.is_empty());
        store.join();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_group_is_written_like_its_ops() {
        let dir = std::env::temp_dir().join(format!("sb-rooms-group-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("rooms.db");
        let (store, _) = open(&path, 10, 0, 1_000).unwrap();
        let mut sink = store.sink();
        let r: Arc<str> = "r".into();
        sink.push_group(vec![
            Op::Poll {
                room: r.clone(),
                poll: "p".into(),
                seq: 0,
            },
            Op::Answer {
                room: r.clone(),
                poll: "p".into(),
                answer: "a".into(),
                pos: Some(0),
            },
            Op::Vote {
                room: r.clone(),
                poll: "p".into(),
                user: "u".into(),
                answer: Some("a".into()),
            },
        ]);
        sink.push_group(vec![Op::Increment {
            room: r.clone(),
            value: 7,
        }]);
        drop(sink);
        store.join();
        let (store, rooms) = open(&path, 10, 0, 1_000).unwrap();
        let l = &rooms["r"];
        assert_eq!(l.increment, 7);
        assert_eq!(
            l.polls,
            vec![(
                "p".to_string(),
                0,
                vec![("a".to_string(), 0, vec!["u".to_string()])]
            )]
        );
        store.join();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
