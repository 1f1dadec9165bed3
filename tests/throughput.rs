//! Relay throughput: signal's pipe against pair's relay, in the same run, with the server
//! pinned to CPU 0 and the load (one sender, one receiver) pinned to CPU 1. Ignored by
//! default (it measures, it does not check); run it with
//! `cargo test --test throughput -- --ignored --nocapture` (add `--release` for numbers
//! that mean anything).

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

fn pin(pid: i32, cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and sched_setaffinity get
    // pointers to that local set only.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Pins every thread of process `pid` to `cpu`.
fn pin_process(pid: u32, cpu: usize) {
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let tid: i32 = task.unwrap().file_name().to_str().unwrap().parse().unwrap();
        pin(tid, cpu);
    }
}

fn raw_ws(a: SocketAddr, path: &str) -> TcpStream {
    let mut sock = TcpStream::connect(a).unwrap();
    sock.set_nodelay(true).unwrap();
    sock.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(sock, "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        sock.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    sock
}

/// Counts unmasked server frames on a socket.
struct Frames {
    sock: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Frames {
    fn new(sock: TcpStream) -> Frames {
        Frames {
            sock,
            buf: vec![0; 1 << 20],
            start: 0,
            end: 0,
        }
    }

    /// The length of the next complete frame's payload, if buffered.
    fn parse_one(&mut self) -> Option<usize> {
        let b = &self.buf[self.start..self.end];
        if b.len() < 2 {
            return None;
        }
        let (hl, len) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (4, u16::from_be_bytes([b[2], b[3]]) as usize),
            127 if b.len() >= 10 => (
                10,
                u64::from_be_bytes(b[2..10].try_into().unwrap()) as usize,
            ),
            126 | 127 => return None,
            n => (2, n as usize),
        };
        if b.len() < hl + len {
            return None;
        }
        self.start += hl + len;
        Some(len)
    }

    /// Reads `n` frames, bumping `seen` as they arrive.
    fn take(&mut self, n: usize, seen: &AtomicUsize) {
        let mut got = 0;
        while got < n {
            while got < n && self.parse_one().is_some() {
                got += 1;
            }
            seen.store(got, Ordering::Release);
            if got == n {
                break;
            }
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            let r = self
                .sock
                .read(&mut self.buf[self.end..])
                .expect("receiver read");
            assert!(r > 0, "receiver EOF after {got} frames");
            self.end += r;
        }
    }
}

/// Sends `n` text messages of `size` bytes from `tx` to `rx`, keeping at most ~512 KiB in
/// flight (under pair's 1 MiB slow-consumer cap); returns messages per second.
fn run(tx: &mut TcpStream, rx: Frames, n: usize, size: usize) -> f64 {
    let frame = masked_frame(0x1, &vec![b'a'; size]);
    let window = ((512 * 1024) / (size + 8)).max(1);
    let per_write = (64 * 1024 / frame.len()).clamp(1, window);
    let batch: Vec<u8> = frame.repeat(per_write);
    let seen = Arc::new(AtomicUsize::new(0));
    let seen2 = seen.clone();
    let start = Instant::now();
    let reader = std::thread::spawn(move || {
        pin(0, 1);
        let mut rx = rx;
        rx.take(n, &seen2);
    });
    let mut sent = 0;
    while sent < n {
        let k = per_write.min(n - sent);
        let mut spins = 0u64;
        while sent + k - seen.load(Ordering::Acquire) > window {
            spins += 1;
            assert!(start.elapsed() < DEADLINE * 6, "stalled after {sent}");
            if spins.is_multiple_of(64) {
                std::thread::yield_now();
            }
        }
        tx.write_all(&batch[..k * frame.len()]).unwrap();
        sent += k;
    }
    reader.join().unwrap();
    n as f64 / start.elapsed().as_secs_f64()
}

#[test]
#[ignore = "a measurement; run with --ignored --nocapture"]
fn pipe_vs_pair_relay_throughput() {
    let p = Proc::spawn(&[
        "--apps",
        "pair,signal",
        "--bind",
        "127.0.0.1",
        "--pair-port",
        "0",
        "--signal-port",
        "0",
        "--admin-port",
        "0",
        "--threads",
        "1",
        "--pair-max-message-bytes",
        "65536",
    ]);
    pin_process(p.child.id(), 0);
    pin(0, 1);
    println!("| relay | message | msg/s | MB/s |\n| --- | --- | --- | --- |");
    for (size, n) in [(64usize, 200_000usize), (16 * 1024, 20_000)] {
        for app in ["pair", "signal"] {
            let a = p.addr(app);
            let (mut tx, rx) = if app == "pair" {
                let rx = raw_ws(a, "/");
                let mut rx = Frames::new(rx);
                rx.take(1, &AtomicUsize::new(0)); // waiting
                let tx = raw_ws(a, "/");
                let mut txf = Frames::new(tx.try_clone().unwrap());
                txf.take(1, &AtomicUsize::new(0)); // connected
                rx.take(1, &AtomicUsize::new(0)); // connected
                (tx, rx)
            } else {
                let key = format!("/connection/s/r/bench-{size}");
                let tx = raw_ws(a, &key);
                let rx = raw_ws(a, &format!("/connection/r/s/bench-{size}"));
                (tx, Frames::new(rx))
            };
            let rate = run(&mut tx, rx, n, size);
            println!(
                "| {app} | {size} B | {rate:.0} | {:.1} |",
                rate * size as f64 / 1e6
            );
        }
    }
}
