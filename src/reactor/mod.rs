//! The reactor is the only IO: one single-threaded mio loop per core.
//!
//! It owns the poll, its own `SO_REUSEPORT` listeners, the slab of connections, their
//! tungstenite contexts and outbound queues, the deadlines and the clock. One turn:
//!
//! ```text
//! poll -> drain the inbox -> accept / read (HTTP heads, frames -> app events -> effects)
//!      -> tick (deadlines, pings, app Tick) -> reap (app Closed) -> post batches to other
//!      reactors -> flush every dirty connection once (writev) -> drop finished connections
//! ```
//!
//! Sockets are registered once for READABLE | WRITABLE (edge-triggered) and never
//! re-registered: interest is derived from state in the loop (`readable` is remembered,
//! output is flushed when queued), which saves an `epoll_ctl` per state change.
//! Batches to other reactors are posted before the flush, so a Closed handed to a key's
//! owner is queued there before the client can see its close reply.

mod app_http;
mod conn;
pub mod dispatch;
mod http_phase;
pub mod inbox;
mod outbound;
mod ws_phase;

pub use outbound::Outbound;

use crate::apps::Millis;
use crate::error::Disconnect;
use crate::metrics::ServiceStats;
use crate::server::Shared;
use conn::{Conn, Phase};
use dispatch::AppSet;
use inbox::Envelope;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const WAKER: Token = Token(0);
const LISTENER_BASE: usize = 1;
const CONN_BASE: usize = 64;
/// Messages read from one connection before others get a turn.
const READ_BUDGET: usize = 64;
/// Period of the deadline sweep and the app Tick.
const TICK_MS: Millis = 1000;

pub struct Listener {
    pub service: usize,
    /// `None` once closed for shutdown. Closed listeners keep their place, because the
    /// index is the poll token.
    sock: Option<TcpListener>,
    /// Accepting paused until then (after `EMFILE`).
    paused_until: Option<Millis>,
}

impl Listener {
    pub fn new(service: usize, sock: TcpListener) -> Listener {
        Listener {
            service,
            sock: Some(sock),
            paused_until: None,
        }
    }
}

/// A monotonic clock in wall-clock milliseconds: wall time at start plus elapsed time.
struct Clock {
    start: Instant,
    start_wall: Millis,
}

impl Clock {
    fn new() -> Clock {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as Millis);
        Clock {
            start: Instant::now(),
            start_wall: wall,
        }
    }

    fn now(&self) -> Millis {
        self.start_wall + self.start.elapsed().as_millis() as Millis
    }
}

pub struct Reactor {
    me: usize,
    shared: Arc<Shared>,
    poll: Poll,
    listeners: Vec<Listener>,
    conns: Slab<Conn>,
    /// The address each connection is counted under for the per-IP cap, by slab key. Out
    /// of `Conn` because the cap is off by default: then this stays empty.
    ip_counted: Vec<Option<std::net::IpAddr>>,
    next_generation: u32,
    apps: AppSet,
    clock: Clock,
    now: Millis,
    next_tick: Millis,
    /// Envelopes to other reactors, batched per destination for this turn.
    outgoing: Vec<Vec<Envelope>>,
    /// Posts from this reactor's apps to themselves, handled within the turn.
    local: Vec<Envelope>,
    inbox_buf: Vec<Envelope>,
    /// Connections with queued output, flushed once at the end of the turn.
    dirty: Vec<usize>,
    /// Connections whose budget ran out with input left.
    pending_reads: Vec<usize>,
    /// Connections that closed and whose app is owed a Closed (by id: see `owe_closed`).
    to_reap: Vec<(crate::router::ConnId, crate::config::AppKind)>,
    /// Connections to remove from the slab at the end of the turn.
    to_drop: Vec<usize>,
    /// A transient buffer, never holding data across calls: HTTP and discarded reads,
    /// and the small frames `Outbound::write_to` gathers into one write.
    scratch: Box<[u8]>,
    /// One socket's input on its way into tungstenite (see `conn::WsIo`).
    staged: conn::Staged,
    draining: bool,
    drain_deadline: Millis,
    reported_drained: bool,
}

impl Reactor {
    pub fn new(me: usize, shared: Arc<Shared>, poll: Poll, listeners: Vec<Listener>) -> Reactor {
        let clock = Clock::new();
        let now = clock.now();
        let reactors = shared.reactors;
        Reactor {
            me,
            apps: AppSet::new(me, reactors, &shared.config, shared.take_rooms_boot(me)),
            shared,
            poll,
            listeners,
            conns: Slab::with_capacity(1024),
            ip_counted: Vec::new(),
            next_generation: 1,
            clock,
            now,
            next_tick: now + TICK_MS,
            outgoing: (0..reactors).map(|_| Vec::new()).collect(),
            local: Vec::new(),
            inbox_buf: Vec::new(),
            dirty: Vec::new(),
            pending_reads: Vec::new(),
            to_reap: Vec::new(),
            to_drop: Vec::new(),
            scratch: vec![0; 64 * 1024].into_boxed_slice(),
            staged: conn::Staged::new(64 * 1024),
            draining: false,
            drain_deadline: Millis::MAX,
            reported_drained: false,
        }
    }

    fn stats(&self, service: impl Into<usize>) -> &ServiceStats {
        &self.shared.stats[self.me].services[service.into()]
    }

    /// Runs until shutdown has drained (or its grace period ran out).
    pub fn run(mut self) -> io::Result<()> {
        for (i, l) in self.listeners.iter_mut().enumerate() {
            if let Some(sock) = l.sock.as_mut() {
                self.poll.registry().register(
                    sock,
                    Token(LISTENER_BASE + i),
                    Interest::READABLE,
                )?;
            }
        }
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self.poll_timeout();
            if let Err(e) = self.poll.poll(&mut events, Some(timeout))
                && e.kind() != io::ErrorKind::Interrupted
            {
                return Err(e);
            }
            self.now = self.clock.now();
            self.drain_inbox();
            for event in events.iter() {
                match event.token() {
                    WAKER => {}
                    Token(t) if t < CONN_BASE => self.accept(t - LISTENER_BASE),
                    Token(t) => {
                        let key = t - CONN_BASE;
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            if let Some(c) = self.conns.get_mut(key) {
                                c.readable = true;
                            }
                            self.on_readable(key);
                        }
                        if event.is_writable() {
                            self.mark_dirty(key);
                        }
                    }
                }
            }
            self.retry_paused_listeners();
            for key in std::mem::take(&mut self.pending_reads) {
                self.on_readable(key);
            }
            self.pump_local();
            if self.now >= self.next_tick {
                self.next_tick = self.now + TICK_MS;
                self.sweep();
                self.apps_tick();
            }
            self.end_turn();
            if self.draining && self.finished_draining() {
                return Ok(());
            }
        }
    }

    fn poll_timeout(&self) -> Duration {
        if !self.pending_reads.is_empty() || !self.local.is_empty() {
            return Duration::ZERO;
        }
        let mut wake = self.next_tick;
        for l in &self.listeners {
            if let Some(t) = l.paused_until {
                wake = wake.min(t);
            }
        }
        if self.draining {
            wake = wake.min(self.drain_deadline);
        }
        Duration::from_millis(wake.saturating_sub(self.clock.now()).min(TICK_MS))
    }

    /// Reaps closed connections, posts batches, flushes, drops: the end of every turn.
    fn end_turn(&mut self) {
        self.reap();
        self.apps_turn_end();
        self.reap();
        for (dest, batch) in self.outgoing.iter_mut().enumerate() {
            if !batch.is_empty() {
                self.shared.inboxes[dest].push_all(batch);
            }
        }
        let mut dirty = std::mem::take(&mut self.dirty);
        for key in dirty.drain(..) {
            self.flush(key);
        }
        self.dirty = dirty;
        let mut to_drop = std::mem::take(&mut self.to_drop);
        for key in to_drop.drain(..) {
            self.remove(key);
        }
        self.to_drop = to_drop;
    }

    fn drain_inbox(&mut self) {
        let mut buf = std::mem::take(&mut self.inbox_buf);
        self.shared.inboxes[self.me].drain_into(&mut buf);
        for envelope in buf.drain(..) {
            self.receive(envelope);
        }
        self.inbox_buf = buf;
    }

    /// Handles posts this reactor's apps made to themselves, until none are left.
    fn pump_local(&mut self) {
        while !self.local.is_empty() {
            for envelope in std::mem::take(&mut self.local) {
                self.receive(envelope);
            }
        }
    }

    fn receive(&mut self, envelope: Envelope) {
        match envelope {
            Envelope::Frame(to, frame) => self.deliver_local(to, frame),
            Envelope::Close(to, close) => self.app_close_local(to, close),
            Envelope::App(msg) => self.dispatch_remote(msg),
            Envelope::Handoff(h) => self.adopt(*h),
            Envelope::Respond(to, r) => self.app_respond(to, r),
            Envelope::Shutdown => self.begin_shutdown(),
        }
    }

    fn accept(&mut self, index: usize) {
        loop {
            let Some(l) = self.listeners.get_mut(index) else {
                return;
            };
            if l.paused_until.is_some() {
                return;
            }
            let Some(sock) = l.sock.as_mut() else { return };
            match sock.accept() {
                Ok((sock, peer)) => {
                    let service = l.service;
                    self.admit(sock, peer, service);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE/ENFILE and friends: back off instead of spinning on the
                    // still-readable listener.
                    tracing::warn!(error = %e, "accept failed; pausing the listener for 100 ms");
                    l.paused_until = Some(self.now + 100);
                    return;
                }
            }
        }
    }

    fn retry_paused_listeners(&mut self) {
        for i in 0..self.listeners.len() {
            if let Some(t) = self.listeners[i].paused_until
                && self.now >= t
            {
                self.listeners[i].paused_until = None;
                self.accept(i);
            }
        }
    }

    /// Inserts a connection into the slab and registers it.
    fn insert(&mut self, sock: mio::net::TcpStream, service: usize, phase: Phase) -> Option<usize> {
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1).max(1);
        let id = crate::router::ConnId::new(self.me as u16, key as u32, generation);
        let app = crate::config::AppKind::ALL.get(service).copied();
        const { assert!(crate::metrics::SERVICES <= u8::MAX as usize) };
        let service = service as u8;
        let conn = entry.insert(Conn {
            sock,
            id,
            service,
            app,
            phase,
            out: Outbound::default(),
            readable: true,
            paused: false,
            pipe: None,
            dirty: false,
            opened: false,
            active: false,
            counted: false,
            deadline: self.now + self.shared.config.handshake_timeout_ms,
            last_recv: self.now,
            last_write: self.now,
            rate_count: 0,
        });
        if let Err(e) = self.poll.registry().register(
            &mut conn.sock,
            Token(CONN_BASE + key),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            tracing::warn!(error = %e, "cannot register a connection");
            self.conns.remove(key);
            return None;
        }
        Some(key)
    }

    /// Removes a finished connection and releases what it was counted in.
    fn remove(&mut self, key: usize) {
        let Some(mut conn) = self.conns.try_remove(key) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut conn.sock);
        if conn.active {
            self.stats(conn.service).active(-1);
        }
        if conn.counted {
            self.shared.connections.fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(ip) = self.take_ip(key) {
            self.shared.release_ip(ip);
        }
    }

    /// Remembers that connection `key` is counted under `ip` for the per-IP cap.
    fn set_ip(&mut self, key: usize, ip: Option<std::net::IpAddr>) {
        if ip.is_none() && key >= self.ip_counted.len() {
            return;
        }
        if key >= self.ip_counted.len() {
            self.ip_counted.resize(key + 1, None);
        }
        self.ip_counted[key] = ip;
    }

    /// Forgets (and returns) the address connection `key` is counted under, as it leaves
    /// the slab.
    fn take_ip(&mut self, key: usize) -> Option<std::net::IpAddr> {
        self.ip_counted.get_mut(key).and_then(Option::take)
    }

    fn mark_dirty(&mut self, key: usize) {
        if let Some(c) = self.conns.get_mut(key)
            && !c.dirty
        {
            c.dirty = true;
            self.dirty.push(key);
        }
    }

    /// Deadlines: handshakes, pings and pong timeouts, write stalls, lingering closes.
    fn sweep(&mut self) {
        let cfg = &self.shared.config;
        let silence = cfg.ws_ping_interval_ms + cfg.ws_pong_timeout_ms;
        let stall = cfg.write_stall_timeout_ms;
        let ping_every = cfg.ws_ping_interval_ms;
        let now = self.now;
        let mut timed_out = Vec::new();
        let mut ping = Vec::new();
        for (key, c) in self.conns.iter_mut() {
            if c.out.is_empty() && now.saturating_sub(c.last_write) >= TICK_MS {
                c.out.release();
            }
            let stalled =
                stall > 0 && !c.out.is_empty() && now.saturating_sub(c.last_write) >= stall;
            match &c.phase {
                Phase::Http(_) | Phase::HttpBody(_) if now >= c.deadline => {
                    timed_out.push((key, None))
                }
                // Silent for interval + timeout, and a Ping went out after the last input:
                // the tick may fall just short of the Ping's deadline, and a peer is never
                // dropped before it was asked. The last Ping went out at `deadline - interval`
                // (the upgrade sets both clocks to the same instant).
                Phase::Ws(_)
                    if now.saturating_sub(c.last_recv) >= silence
                        && c.deadline.saturating_sub(ping_every) > c.last_recv =>
                {
                    timed_out.push((key, Some(Disconnect::PingTimeout)))
                }
                Phase::Ws(_) if stalled => timed_out.push((key, Some(Disconnect::WriteStall))),
                Phase::Ws(_) if now >= c.deadline => {
                    c.deadline = now + ping_every;
                    ping.push(key);
                }
                Phase::Closing { .. } if now >= c.deadline || stalled => {
                    timed_out.push((key, None))
                }
                _ => {}
            }
        }
        for (key, reason) in timed_out {
            match reason {
                Some(r) => self.end(key, r),
                None => self.handshake_timeout_or_drop(key),
            }
        }
        let frame = crate::frame::ping();
        for key in ping {
            if let Some(c) = self.conns.get_mut(key) {
                if c.out.is_empty() {
                    c.last_write = now;
                }
                c.out.push(frame.clone());
            }
            self.mark_dirty(key);
        }
    }

    fn begin_shutdown(&mut self) {
        if self.draining {
            return;
        }
        self.draining = true;
        self.drain_deadline = self.now + self.shared.config.shutdown_grace_ms;
        // App listeners close now; the admin listener stays so /readyz can say 503.
        for l in self.listeners.iter_mut() {
            if l.service != crate::metrics::ADMIN
                && let Some(mut sock) = l.sock.take()
            {
                let _ = self.poll.registry().deregister(&mut sock);
            }
        }
        self.apps_shutdown();
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            let Some(c) = self.conns.get(key) else {
                continue;
            };
            match c.phase {
                Phase::Ws(_) => self.end(key, Disconnect::Shutdown),
                Phase::Http(_) if usize::from(c.service) != crate::metrics::ADMIN => {
                    self.drop_now(key)
                }
                _ => {}
            }
        }
    }

    /// True once every reactor has drained (or the grace period is over). A reactor that
    /// is done early keeps answering the admin port until then.
    fn finished_draining(&mut self) -> bool {
        if self.now >= self.drain_deadline {
            return true;
        }
        if !self.reported_drained && self.drained() {
            self.reported_drained = true;
            if self.shared.undrained.fetch_sub(1, Ordering::AcqRel) == 1 {
                for inbox in &self.shared.inboxes {
                    inbox.wake();
                }
            }
        }
        self.shared.undrained.load(Ordering::Acquire) == 0
    }

    /// Drained: no connection left but admin ones.
    fn drained(&self) -> bool {
        self.conns
            .iter()
            .all(|(_, c)| usize::from(c.service) == crate::metrics::ADMIN)
    }

    fn drop_now(&mut self, key: usize) {
        if let Some(c) = self.conns.get_mut(key)
            && !matches!(c.phase, Phase::Dead)
        {
            c.phase = Phase::Dead;
            self.to_drop.push(key);
        }
    }
}
