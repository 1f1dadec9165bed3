//! The allocation check: a counting global allocator proves that steady-state fan-out
//! and relay allocate nothing per message and nothing per recipient after warm-up. First at the app + router level (exact counts on the calling thread),
//! then through the real reactor with raw client sockets (counts of the whole process,
//! the clients themselves allocating nothing). No timing anywhere: only counts.

mod common;

use common::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use switchboard::apps::bench::Bench;
use switchboard::apps::harness::{conn, request};
use switchboard::apps::pair::Pair;
use switchboard::apps::{App, Effect, Event, Outbox};
use switchboard::config::AppKind;

/// `System`, counting every allocation and reallocation, in the process and per thread.
struct Counting;

static PROCESS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static THREAD: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    PROCESS.fetch_add(1, Ordering::Relaxed);
    // `try_with`: allocations during thread teardown, after the slot is gone, still count
    // in PROCESS.
    let _ = THREAD.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every call is forwarded unchanged to `System`; counting touches no memory the
// caller owns.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Process-wide counts need the other tests of this binary to be quiet.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn thread_allocs() -> u64 {
    THREAD.with(Cell::get)
}

/// Allocations on this thread while `f` runs.
fn counted(f: impl FnOnce()) -> u64 {
    let before = thread_allocs();
    f();
    thread_allocs() - before
}

/// Enough messages to fill several of the frame arena's 64 KiB chunks, so that the
/// measured ones run on reclaimed chunks.
const WARM_UP: usize = 4096;
const MESSAGES: usize = 1000;

#[test]
fn bench_fanout_allocates_nothing_per_message_or_recipient() {
    let _g = serial();
    let text = "m".repeat(64);
    for members in [1u32, 10, 1000] {
        let mut app = Bench::default();
        let mut out = Outbox::default();
        let req = request("/?room=r");
        for n in 0..=members {
            app.handle(
                Event::Opened {
                    conn: conn(n),
                    req: &req,
                },
                0,
                &mut out,
            );
        }
        let mut publish = |app: &mut Bench| {
            // The reactor drains the outbox after each event and hands it back empty.
            out.effects.clear();
            out.recipients.clear();
            app.handle(
                Event::Text {
                    conn: conn(0),
                    text: &text,
                },
                0,
                &mut out,
            );
            // One fan-out effect whatever the room's size.
            assert_eq!(out.effects.len(), 1);
            assert_eq!(out.recipients.len(), members as usize);
        };
        for _ in 0..WARM_UP {
            publish(&mut app);
        }
        let allocs = counted(|| {
            for _ in 0..MESSAGES {
                publish(&mut app);
            }
        });
        // The frame is carved from the thread's arena and cloned by refcount; the reused
        // outbox does not grow.
        assert_eq!(
            allocs, 0,
            "{members} members: allocations in steady fan-out"
        );
    }
}

#[test]
fn pair_relay_allocates_nothing_per_message() {
    let _g = serial();
    let mut app = Pair::new(0, 1);
    let mut out = Outbox::default();
    let req = request("/");
    let (a, b) = (conn(1), conn(2));
    app.handle(Event::Opened { conn: a, req: &req }, 0, &mut out);
    app.handle(Event::Opened { conn: b, req: &req }, 0, &mut out);
    let text = "x".repeat(64);
    let mut relay = |app: &mut Pair, from| {
        out.effects.clear();
        app.handle(
            Event::Text {
                conn: from,
                text: &text,
            },
            0,
            &mut out,
        );
        assert!(matches!(&out.effects[..], [Effect::Send(..)]));
    };
    for _ in 0..WARM_UP {
        relay(&mut app, a);
        relay(&mut app, b);
    }
    let allocs = counted(|| {
        for _ in 0..MESSAGES / 2 {
            relay(&mut app, a);
            relay(&mut app, b);
        }
    });
    // The frame is carved from the arena and moved into the one Send.
    assert_eq!(allocs, 0, "allocations in steady pair relay");
}

/// Opens a WebSocket by hand; the answer head is read byte by byte so nothing after it
/// is consumed.
fn raw_ws(addr: SocketAddr, path: &str) -> TcpStream {
    let mut sock = TcpStream::connect(addr).expect("tcp connect");
    sock.set_nodelay(true).unwrap();
    sock.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(
        sock,
        "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert!(head.len() < 4096, "answer head too long");
        sock.read_exact(&mut b).expect("answer head");
        head.push(b[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "not upgraded");
    sock
}

/// A client socket and a preallocated buffer: reading frames allocates nothing.
struct Peer {
    sock: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Peer {
    fn new(sock: TcpStream) -> Peer {
        Peer {
            sock,
            buf: vec![0; 1 << 20],
            start: 0,
            end: 0,
        }
    }

    fn connect(addr: SocketAddr, path: &str) -> Peer {
        Peer::new(raw_ws(addr, path))
    }

    /// The opcode of the next complete frame, if buffered.
    fn next_frame(&mut self) -> Option<u8> {
        let b = &self.buf[self.start..self.end];
        if b.len() < 2 {
            return None;
        }
        let (head, len) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (4, u16::from_be_bytes([b[2], b[3]]) as usize),
            126 | 127 => return None, // no test frame is that long
            n => (2, n as usize),
        };
        if b.len() < head + len {
            return None;
        }
        self.start += head + len;
        Some(b[0] & 0x0f)
    }

    /// Reads until `n` data frames arrived (control frames are skipped); the socket's read
    /// timeout bounds every wait.
    fn take(&mut self, n: usize) {
        let mut got = 0;
        while got < n {
            while got < n {
                match self.next_frame() {
                    Some(1 | 2) => got += 1,
                    Some(_) => {}
                    None => break,
                }
            }
            if got == n {
                break;
            }
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            let r = self.sock.read(&mut self.buf[self.end..]).expect("read");
            assert!(r > 0, "EOF after {got} of {n} frames");
            self.end += r;
        }
    }
}

const BATCH: usize = 16;
const WARM_ROUNDS: usize = 32;
const ROUNDS: usize = 128;

/// Allocations the process may make in a measured window for reasons that do not scale
/// with messages (a tick or sweep landing in it). One allocation per message would add
/// thousands.
const HOUSEKEEPING: u64 = 64;

/// Process-wide allocations during `ROUNDS` rounds of `round`, after warm-up.
fn measured(mut round: impl FnMut()) -> u64 {
    for _ in 0..WARM_ROUNDS {
        round();
    }
    let before = PROCESS.load(Ordering::Relaxed);
    for _ in 0..ROUNDS {
        round();
    }
    PROCESS.load(Ordering::Relaxed) - before
}

const SUBSCRIBERS: usize = 10;

/// Allocations and published messages: one publisher, `SUBSCRIBERS` receivers, one room.
fn bench_fanout_through_reactor(threads: usize, size: usize) -> (u64, u64) {
    let server = start(config(threads, &[AppKind::Bench]));
    let addr = server.addr(AppKind::Bench).unwrap();
    let mut subs: Vec<Peer> = (0..SUBSCRIBERS)
        .map(|_| Peer::connect(addr, "/?room=alloc"))
        .collect();
    let mut publisher = raw_ws(addr, "/?room=alloc");
    let batch = masked_frame(0x1, &vec![b'p'; size]).repeat(BATCH);
    let allocs = measured(|| {
        publisher.write_all(&batch).expect("publish");
        for s in &mut subs {
            s.take(BATCH);
        }
    });
    (allocs, (ROUNDS * BATCH) as u64)
}

/// Allocations and relayed messages between two connections of `kind` (pair: through
/// the app; signal: through `Effect::Pipe`, no app event).
fn relay_through_reactor(kind: AppKind, threads: usize, size: usize) -> (u64, u64) {
    let server = start(config(threads, &[kind]));
    let addr = server.addr(kind).unwrap();
    let (mut a, mut b) = if kind == AppKind::Pair {
        let mut a = Peer::connect(addr, "/");
        a.take(1); // waiting
        let mut b = Peer::connect(addr, "/");
        b.take(1); // connected
        a.take(1); // connected
        (a, b)
    } else {
        (
            Peer::connect(addr, "/connection/a/b/alloc"),
            Peer::connect(addr, "/connection/b/a/alloc"),
        )
    };
    let batch = masked_frame(0x1, &vec![b'r'; size]).repeat(BATCH);
    let allocs = measured(|| {
        a.sock.write_all(&batch).expect("send");
        b.take(BATCH);
        b.sock.write_all(&batch).expect("send");
        a.take(BATCH);
    });
    (allocs, (2 * ROUNDS * BATCH) as u64)
}

/// The whole server path (tungstenite read and unmask, dispatch, effects, the frame
/// arena, outbound queue, `writev`) allocates nothing per message, at 64 B and at 8000 B
/// (over the 4 KiB read buffer): fan-out through the bench app, relay through the pair
/// app, and the signal pipe, which relays in the reactor with no app event.
#[test]
fn reactor_paths_allocate_nothing_per_message() {
    let _g = serial();
    for size in [64, 8000] {
        for threads in [1, 4] {
            let cases = [
                ("fan-out", bench_fanout_through_reactor(threads, size)),
                (
                    "pair relay",
                    relay_through_reactor(AppKind::Pair, threads, size),
                ),
                (
                    "signal pipe",
                    relay_through_reactor(AppKind::Signal, threads, size),
                ),
            ];
            for (path, (allocs, messages)) in cases {
                eprintln!(
                    "{path}, {size} B, {threads} reactors: {allocs} allocations for {messages} \
                     messages ({:.3} per message)",
                    allocs as f64 / messages as f64
                );
                assert!(
                    allocs <= HOUSEKEEPING,
                    "{path}, {size} B, {threads} reactors: {allocs} allocations for \
                     {messages} messages, more than the {HOUSEKEEPING} of housekeeping"
                );
            }
        }
    }
}
