//! `rtt-floor`: the unloaded relay round trip with no server logic, so the `relay --pairs
//! 1` latency of a server can be read against what loopback wakeups alone cost.
//!
//! A relay thread pinned to one CPU (0 by default) runs a mio loop over two loopback
//! connections and copies whatever one side sends to the other. This thread (run it under
//! `taskset -c 1`) plays both clients of one pair, as `relay` does: it sends a 66-byte frame
//! on A, waits (edge-triggered epoll) for it on B, sends it back on B and waits for it on
//! A. Each round trip crosses the relay twice, like a relayed ping-pong.

use crate::die;
use crate::stats::Histogram;
use clap::Args;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct RttFloorArgs {
    /// Round trips measured, after as many warm-up ones.
    #[arg(long, default_value_t = 20_000)]
    count: usize,
    /// CPU of the relay thread (the server's CPU).
    #[arg(long, default_value_t = 0)]
    relay_cpu: usize,
}

/// The longest one round trip may take before the run is abandoned.
const STALL: Duration = Duration::from_secs(5);
const FRAME: usize = 66;

/// One connected loopback pair as mio streams: (relay side, client side).
fn pair(listener: &std::net::TcpListener) -> io::Result<(TcpStream, TcpStream)> {
    let client = std::net::TcpStream::connect(listener.local_addr()?)?;
    let (relay, _) = listener.accept()?;
    for s in [&client, &relay] {
        s.set_nodelay(true)?;
        s.set_nonblocking(true)?;
    }
    Ok((TcpStream::from_std(relay), TcpStream::from_std(client)))
}

/// Copies each side's input to the other until either side closes.
fn relay(mut sides: [TcpStream; 2], cpu: usize) -> io::Result<()> {
    crate::floor::pin_to(cpu)?;
    let mut poll = Poll::new()?;
    for (i, s) in sides.iter_mut().enumerate() {
        poll.registry().register(s, Token(i), Interest::READABLE)?;
    }
    let mut events = Events::with_capacity(4);
    let mut buf = [0u8; 4096];
    loop {
        poll.poll(&mut events, None)?;
        for event in events.iter() {
            let from = event.token().0;
            loop {
                match sides[from].read(&mut buf) {
                    Ok(0) => return Ok(()),
                    Ok(n) => sides[1 - from].write_all(&buf[..n])?,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
        }
    }
}

/// Reads exactly `FRAME` bytes from `side`, waiting on `poll` between reads.
fn await_frame(poll: &mut Poll, events: &mut Events, side: &mut TcpStream) -> io::Result<()> {
    let mut got = 0;
    let mut buf = [0u8; FRAME];
    let start = Instant::now();
    while got < FRAME {
        match side.read(&mut buf[got..]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if start.elapsed() > STALL {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                poll.poll(events, Some(STALL))?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

pub fn rtt_floor(a: RttFloorArgs) {
    let run = || -> io::Result<Histogram> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let (relay_a, mut side_a) = pair(&listener)?;
        let (relay_b, mut side_b) = pair(&listener)?;
        let cpu = a.relay_cpu;
        let relay = std::thread::spawn(move || relay([relay_a, relay_b], cpu));
        let mut poll = Poll::new()?;
        poll.registry()
            .register(&mut side_a, Token(0), Interest::READABLE)?;
        poll.registry()
            .register(&mut side_b, Token(1), Interest::READABLE)?;
        let mut events = Events::with_capacity(4);
        let mut frame = vec![0x81, (FRAME - 2) as u8];
        frame.resize(FRAME, b'.');
        let mut hist = Histogram::default();
        for i in 0..2 * a.count {
            let start = Instant::now();
            side_a.write_all(&frame)?;
            await_frame(&mut poll, &mut events, &mut side_b)?;
            side_b.write_all(&frame)?;
            await_frame(&mut poll, &mut events, &mut side_a)?;
            if i >= a.count {
                hist.record(start.elapsed().as_micros() as u64);
            }
        }
        drop((side_a, side_b));
        relay
            .join()
            .map_err(|_| io::Error::other("the relay thread panicked"))??;
        Ok(hist)
    };
    match run() {
        Ok(h) => println!(
            "RESULT scenario=rtt-floor count={} rtt_p50_us={} rtt_p99_us={} rtt_max_us={}",
            a.count,
            h.quantile(0.5),
            h.quantile(0.99),
            h.max()
        ),
        Err(e) => die(&format!("rtt-floor: {e}")),
    }
}
