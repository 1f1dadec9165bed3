//! `floor`: what the kernel alone costs for the fan-out's write pattern, with no server
//! logic, so a server's CPU per delivered message can be read against it.
//!
//! N loopback TCP connection pairs on 127.0.0.1. A writer thread pinned to one CPU (0 by
//! default) writes, each round, F pre-built server frames of S bytes to every connection:
//! one contiguous `write` of the F frames, or one `writev` of F slices with `--vectored`
//! (partial writes are finished with more calls, all counted). Then it waits until the
//! reader has read the whole round, as a fan-out with W = F messages in flight waits for
//! its deliveries. The reader is this thread (run it under `taskset -c 1`): one mio loop
//! (edge-triggered epoll) reading every readable socket until `WouldBlock`, as the fan-out
//! subscribers do. The writer's thread CPU over the measured rounds (schedstat, ns) is
//! reported per frame and per write call, and the reader's beside it.

use crate::die;
use crate::stats::{ctx_switches, thread_cpu_ns};
use clap::Args;
use mio::{Events, Interest, Poll, Token};
use std::io::{self, IoSlice, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct FloorArgs {
    /// Connection pairs.
    #[arg(long, default_value_t = 1000)]
    conns: usize,
    /// Frames written to each connection per round (the fan-out's W).
    #[arg(long, default_value_t = 16)]
    frames: usize,
    /// Payload bytes of each frame.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// One `writev` of F slices per connection instead of one contiguous `write`.
    #[arg(long)]
    vectored: bool,
    /// CPU of the writer thread (the server's CPU).
    #[arg(long, default_value_t = 0)]
    writer_cpu: usize,
    /// Seconds of rounds before the measured ones.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Seconds of measured rounds.
    #[arg(long, default_value_t = 3.0)]
    duration: f64,
    /// At most this many rounds in all (warm-up included).
    #[arg(long, default_value_t = 1_000_000)]
    max_rounds: u64,
}

/// The longest the writer waits for the reader to finish a round.
const ROUND_TIMEOUT: Duration = Duration::from_secs(10);

/// A server's unmasked FIN text frame of `size` payload bytes.
fn server_frame(size: usize) -> Vec<u8> {
    let mut f = vec![0x81];
    match size {
        n @ 0..=125 => f.push(n as u8),
        n @ 126..=65535 => {
            f.push(126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.resize(f.len() + size, b'.');
    f
}

pub fn pin_to(cpu: usize) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data (all zeros is the empty set), CPU_SET writes inside
    // it, and pid 0 names the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

/// `count` connected pairs: (writer side, as a server's accepted socket; reader side).
fn open_pairs(count: usize) -> io::Result<Vec<(TcpStream, TcpStream)>> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let mut pairs = Vec::with_capacity(count);
    for _ in 0..count {
        let client = TcpStream::connect(addr)?;
        let (server, _) = listener.accept()?;
        server.set_nodelay(true)?;
        client.set_nodelay(true)?;
        pairs.push((server, client));
    }
    Ok(pairs)
}

/// What the writer measured over its measured rounds.
struct Measured {
    rounds: u64,
    calls: u64,
    secs: f64,
    writer_cpu_ns: u64,
    reader_cpu_ns: u64,
    writer_ctx_switches: u64,
}

struct Writer {
    socks: Vec<TcpStream>,
    /// The round's frames for one connection, back to back.
    contiguous: Vec<u8>,
    /// The same frames, each in its own buffer (as a server's queued frames are).
    frames: Vec<Vec<u8>>,
    vectored: bool,
}

impl Writer {
    /// Writes one round to every connection; returns the write calls it took.
    fn round(&mut self) -> io::Result<u64> {
        let mut calls = 0;
        let mut iov: Vec<IoSlice> = Vec::with_capacity(self.frames.len());
        for sock in &mut self.socks {
            if self.vectored {
                iov.clear();
                iov.extend(self.frames.iter().map(|f| IoSlice::new(f)));
                let mut left = &mut iov[..];
                while !left.is_empty() {
                    let n = sock.write_vectored(left)?;
                    calls += 1;
                    if n == 0 {
                        return Err(io::ErrorKind::WriteZero.into());
                    }
                    IoSlice::advance_slices(&mut left, n);
                }
            } else {
                let mut pos = 0;
                while pos < self.contiguous.len() {
                    let n = sock.write(&self.contiguous[pos..])?;
                    calls += 1;
                    if n == 0 {
                        return Err(io::ErrorKind::WriteZero.into());
                    }
                    pos += n;
                }
            }
        }
        Ok(calls)
    }

    /// Rounds until the measured time or the round cap is reached; each waits for the
    /// reader's word that the round was read.
    fn run(
        &mut self,
        a: &FloorArgs,
        reader_tid: i32,
        read: &mpsc::Receiver<()>,
    ) -> Result<Measured, String> {
        pin_to(a.writer_cpu).map_err(|e| format!("sched_setaffinity: {e}"))?;
        let tid = gettid();
        let start = Instant::now();
        let warm_end = start + Duration::from_secs_f64(a.warmup);
        let end = warm_end + Duration::from_secs_f64(a.duration);
        // At the start of the measured rounds: time, writer CPU, reader CPU, switches.
        let mut base: Option<(Instant, u64, u64, u64)> = None;
        let (mut rounds, mut calls) = (0u64, 0u64);
        for _ in 0..a.max_rounds {
            let now = Instant::now();
            if base.is_none() && now >= warm_end {
                base = Some((
                    now,
                    thread_cpu_ns(tid),
                    thread_cpu_ns(reader_tid),
                    ctx_switches(tid),
                ));
            }
            if now >= end {
                break;
            }
            let c = self.round().map_err(|e| format!("write: {e}"))?;
            read.recv_timeout(ROUND_TIMEOUT)
                .map_err(|_| "the reader did not finish a round within 10 s".to_string())?;
            if base.is_some() {
                rounds += 1;
                calls += c;
            }
        }
        let (t0, w0, r0, s0) = base.ok_or("no measured round (raise --max-rounds)")?;
        Ok(Measured {
            rounds,
            calls,
            secs: t0.elapsed().as_secs_f64(),
            writer_cpu_ns: thread_cpu_ns(tid).saturating_sub(w0),
            reader_cpu_ns: thread_cpu_ns(reader_tid).saturating_sub(r0),
            writer_ctx_switches: ctx_switches(tid).saturating_sub(s0),
        })
    }
}

pub fn floor(a: FloorArgs) {
    if a.conns == 0 || a.frames == 0 {
        die("--conns and --frames must be at least 1");
    }
    let pairs = open_pairs(a.conns).unwrap_or_else(|e| die(&format!("loopback pairs: {e}")));
    let frame = server_frame(a.size);
    let round_bytes = (frame.len() * a.frames * a.conns) as u64;
    let (writer_socks, reader_socks): (Vec<_>, Vec<_>) = pairs.into_iter().unzip();
    let writer = Writer {
        socks: writer_socks,
        contiguous: frame.repeat(a.frames),
        frames: vec![frame.clone(); a.frames],
        vectored: a.vectored,
    };

    let mut poll = Poll::new().unwrap_or_else(|e| die(&e.to_string()));
    let mut readers = Vec::with_capacity(a.conns);
    for (i, s) in reader_socks.into_iter().enumerate() {
        s.set_nonblocking(true)
            .unwrap_or_else(|e| die(&e.to_string()));
        let mut s = mio::net::TcpStream::from_std(s);
        poll.registry()
            .register(&mut s, Token(i), Interest::READABLE)
            .unwrap_or_else(|e| die(&e.to_string()));
        readers.push(s);
    }

    let (done_tx, done_rx) = mpsc::channel();
    let reader_tid = gettid();
    let handle = std::thread::scope(|scope| {
        let args = &a;
        // The writer comes back with its sockets, so none closes while the reader reads.
        let handle = scope.spawn(move || {
            let mut writer = writer;
            let m = writer.run(args, reader_tid, &done_rx);
            (m, writer)
        });
        let mut events = Events::with_capacity(4096);
        let mut scratch = vec![0u8; 256 * 1024];
        let (mut read_total, mut rounds_read) = (0u64, 0u64);
        // The writer stops by itself; this bounds the reader even if it did not.
        let deadline =
            Instant::now() + Duration::from_secs_f64(a.warmup + a.duration) + ROUND_TIMEOUT * 2;
        while !handle.is_finished() {
            if Instant::now() > deadline {
                die("the writer did not finish in time");
            }
            if let Err(e) = poll.poll(&mut events, Some(Duration::from_millis(10)))
                && e.kind() != io::ErrorKind::Interrupted
            {
                die(&e.to_string());
            }
            for ev in events.iter() {
                let sock = &mut readers[ev.token().0];
                loop {
                    match sock.read(&mut scratch) {
                        Ok(0) => die("a loopback connection closed"),
                        Ok(n) => read_total += n as u64,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => die(&format!("read: {e}")),
                    }
                }
            }
            // The writer starts a round only after this word, so a read never spans two.
            while read_total >= (rounds_read + 1) * round_bytes {
                rounds_read += 1;
                let _ = done_tx.send(());
            }
        }
        handle.join()
    });
    let m = match handle {
        Ok((Ok(m), _writer)) => m,
        Ok((Err(e), _)) => die(&e),
        Err(_) => die("the writer thread panicked"),
    };
    let frames = (m.rounds * (a.conns * a.frames) as u64).max(1) as f64;
    let per = |ns: u64, n: f64| format!("{:.3}", ns as f64 / 1e3 / n);
    crate::report(&[
        ("scenario", "floor".into()),
        ("conns", a.conns.to_string()),
        ("frames", a.frames.to_string()),
        ("size", a.size.to_string()),
        ("frame_bytes", frame.len().to_string()),
        ("vectored", a.vectored.to_string()),
        ("rounds", m.rounds.to_string()),
        ("frames_per_s", format!("{:.0}", frames / m.secs)),
        (
            "gb_per_s",
            format!("{:.3}", frames * a.size as f64 / m.secs / 1e9),
        ),
        ("writer_us_per_frame", per(m.writer_cpu_ns, frames)),
        (
            "writer_us_per_call",
            per(m.writer_cpu_ns, m.calls.max(1) as f64),
        ),
        (
            "calls_per_conn_round",
            format!(
                "{:.3}",
                m.calls as f64 / (m.rounds.max(1) * a.conns as u64) as f64
            ),
        ),
        ("reader_us_per_frame", per(m.reader_cpu_ns, frames)),
        (
            "writer_cpu_pct",
            format!("{:.1}", m.writer_cpu_ns as f64 / 1e7 / m.secs),
        ),
        (
            "reader_cpu_pct",
            format!("{:.1}", m.reader_cpu_ns as f64 / 1e7 / m.secs),
        ),
        (
            "writer_switches_per_round",
            format!(
                "{:.2}",
                m.writer_ctx_switches as f64 / m.rounds.max(1) as f64
            ),
        ),
    ]);
}
