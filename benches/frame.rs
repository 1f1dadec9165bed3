//! Frames on the wire: encoding a server frame once (64 B and 16 KiB), and reading a
//! masked client frame through tungstenite's `WebSocketContext::read` with the reactor's
//! configuration (`src/reactor/http_phase.rs`), which includes unmasking and UTF-8 checks.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::io::{self, Read, Write};
use switchboard::frame;
use tungstenite::Message;
use tungstenite::protocol::{Role, WebSocketConfig, WebSocketContext};

const SIZES: [usize; 2] = [64, 16 * 1024];

fn frame_encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame_encode");
    for size in SIZES {
        let payload = "x".repeat(size);
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(format!("text_{size}B"), |b| {
            b.iter(|| frame::text(black_box(&payload)))
        });
    }
    g.finish();
}

/// A masked, final client frame, as a browser sends it.
fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut f = vec![0x80 | opcode];
    match payload.len() {
        n @ 0..=125 => f.push(0x80 | n as u8),
        n @ 126..=65535 => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// An endless socket: the same run of whole frames, over and over, in reads of at most
/// the caller's buffer; writes (pongs, close replies) vanish.
struct Replay {
    data: Vec<u8>,
    pos: usize,
}

impl Read for Replay {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos = (self.pos + n) % self.data.len();
        Ok(n)
    }
}

impl Write for Replay {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn frame_decode(c: &mut Criterion) {
    let defaults = switchboard::config::Config::default();
    let mut g = c.benchmark_group("frame_decode_unmask");
    for size in SIZES {
        let frame = masked(0x1, "y".repeat(size).as_bytes());
        let mut sock = Replay {
            data: frame.repeat((64 * 1024 / frame.len()).max(4)),
            pos: 0,
        };
        let config = WebSocketConfig::default()
            .read_buffer_size(defaults.read_buffer_bytes)
            .write_buffer_size(0)
            .max_write_buffer_size(usize::MAX)
            .max_message_size(Some(1 << 20))
            .max_frame_size(Some(1 << 20));
        let mut ctx = WebSocketContext::new(Role::Server, Some(config));
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(format!("text_{size}B"), |b| {
            b.iter(|| match ctx.read(&mut sock) {
                Ok(Message::Text(t)) => black_box(t.len()),
                other => panic!("expected a text message, got {other:?}"),
            })
        });
    }
    g.finish();
}

criterion_group!(benches, frame_encode, frame_decode);
criterion_main!(benches);
