//! pester message throughput: 1,000 registered users in 500 channels, over the raw face
//! and over Socket.IO on WebSocket, with the server (one reactor) pinned to CPU 0 and the
//! load (one thread) pinned to CPU 1. Ignored by default (it measures, it does not
//! check); run it with
//! `cargo test --release --test pester_throughput -- --ignored --nocapture`.
//!
//! The load is lock-step (500 sends, then 500 blocking reads, one syscall each), so the
//! number is bounded by the one load thread as much as by the server. One run on a shared,
//! noisy 2-core machine: raw 9,300 msg/s, Socket.IO websocket 8,300 msg/s.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
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

fn pin_process(pid: u32, cpu: usize) {
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let tid: i32 = task.unwrap().file_name().to_str().unwrap().parse().unwrap();
        pin(tid, cpu);
    }
}

/// A WebSocket client on a blocking socket that reads whole unmasked server frames.
struct Ws {
    sock: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Ws {
    fn connect(a: SocketAddr, path: &str) -> Ws {
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
        Ws {
            sock,
            buf: vec![0; 64 * 1024],
            start: 0,
            end: 0,
        }
    }

    fn send(&mut self, text: &str) {
        self.sock
            .write_all(&masked_frame(0x1, text.as_bytes()))
            .unwrap();
    }

    /// The next frame's payload.
    fn recv(&mut self) -> String {
        loop {
            let b = &self.buf[self.start..self.end];
            if b.len() >= 2 {
                let (hl, len) = match b[1] & 0x7f {
                    126 if b.len() >= 4 => (4, u16::from_be_bytes([b[2], b[3]]) as usize),
                    126 | 127 => (usize::MAX / 2, 0),
                    n => (2, n as usize),
                };
                if b.len() >= hl + len {
                    let s = String::from_utf8_lossy(&b[hl..hl + len]).into_owned();
                    self.start += hl + len;
                    return s;
                }
            }
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            let n = self.sock.read(&mut self.buf[self.end..]).expect("read");
            assert!(n > 0, "EOF");
            self.end += n;
        }
    }
}

/// Connects and registers `user`; `sio` wraps every message in `42["message",…]`.
fn user(a: SocketAddr, sio: bool, name: &str) -> Ws {
    let mut ws = if sio {
        let mut ws = Ws::connect(a, "/socket.io/?EIO=4&transport=websocket");
        assert!(ws.recv().starts_with("0{"));
        ws.send("40");
        assert!(ws.recv().starts_with("40{"));
        ws
    } else {
        Ws::connect(a, "/")
    };
    ws.send(&wrap(
        sio,
        &format!(r#"{{"type":"register","userId":"{name}"}}"#),
    ));
    assert!(ws.recv().contains("registered"));
    ws
}

fn wrap(sio: bool, json: &str) -> String {
    if sio {
        format!(r#"42["message",{json}]"#)
    } else {
        json.to_string()
    }
}

/// Messages per second from 500 senders to their 500 channel partners.
fn measure(a: SocketAddr, sio: bool, rounds: usize) -> f64 {
    let tag = if sio { "s" } else { "r" };
    let mut users: Vec<Ws> = (0..1000)
        .map(|i| user(a, sio, &format!("{tag}{i:04}")))
        .collect();
    let mut msgs = Vec::new();
    for i in (0..1000).step_by(2) {
        let (me, friend) = (format!("{tag}{i:04}"), format!("{tag}{:04}", i + 1));
        users[i].send(&wrap(
            sio,
            &format!(r#"{{"type":"open_channel","friendId":"{friend}"}}"#),
        ));
        assert!(users[i].recv().contains("channel_opened"));
        assert!(users[i + 1].recv().contains("channel_invite"));
        msgs.push(wrap(
            sio,
            &format!(r#"{{"type":"message","channelId":"chat_{me}_{friend}","text":"hello, throughput"}}"#),
        ));
    }
    let start = Instant::now();
    for _ in 0..rounds {
        for (k, m) in msgs.iter().enumerate() {
            users[2 * k].send(m);
        }
        for k in 0..msgs.len() {
            assert!(users[2 * k + 1].recv().contains("hello, throughput"));
        }
    }
    (rounds * msgs.len()) as f64 / start.elapsed().as_secs_f64()
}

#[test]
#[ignore = "a measurement; run with --release --ignored --nocapture"]
fn pester_messages_between_1000_users_in_500_channels() {
    let p = Proc::spawn(&[
        "--apps",
        "pester",
        "--bind",
        "127.0.0.1",
        "--pester-port",
        "0",
        "--admin-port",
        "0",
        "--threads",
        "1",
        "--pester-ping-interval-ms",
        "600000",
    ]);
    pin_process(p.child.id(), 0);
    pin(0, 1);
    let a = p.addr("pester");
    println!("| face | messages | msg/s |\n| --- | --- | --- |");
    for sio in [false, true] {
        let rounds = 200;
        let rate = measure(a, sio, rounds);
        let face = if sio { "Socket.IO websocket" } else { "raw" };
        println!("| {face} | {} | {rate:.0} |", rounds * 500);
    }
}
