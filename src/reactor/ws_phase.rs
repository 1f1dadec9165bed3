//! Open WebSockets: reading frames into app events, queueing frames, closing, flushing.

use super::conn::{Phase, WsIo};
use super::dispatch::CoreEvent;
use super::inbox::Envelope;
use super::{READ_BUDGET, Reactor};
use crate::error::Disconnect;
use crate::frame::{self, Frame};
use crate::metrics::bump;
use crate::router::ConnId;
use std::borrow::Cow;
use std::io::{self, Read};
use tungstenite::Message;

/// What [`Reactor::queue_local`] did with a frame.
enum Queued {
    /// Queued for a connection of this service.
    Yes(u8),
    /// The connection is closed or closing: the frame is dropped.
    Gone,
    /// Over the outbound cap: the connection is a slow consumer.
    Slow,
}

/// What one tungstenite read produced, with the connection borrow released.
enum Read1 {
    Text(tungstenite::Utf8Bytes),
    Binary(bytes::Bytes),
    Control,
    PeerClosed,
    Blocked,
    Failed(Disconnect),
}

impl Reactor {
    pub(super) fn on_readable(&mut self, key: usize) {
        let Some(c) = self.conns.get(key) else { return };
        if !c.readable {
            return;
        }
        if c.paused {
            return;
        }
        match c.phase {
            Phase::Http { .. } => self.read_http(key),
            Phase::HttpBody { .. } => self.read_body(key),
            Phase::HttpApp(_) => self.watch_http_app(key),
            Phase::Ws(_) => self.read_ws(key),
            Phase::Closing { .. } => self.discard_input(key),
            Phase::Dead => {}
        }
    }

    fn read_ws(&mut self, key: usize) {
        self.staged.reset();
        for round in 0.. {
            // Staged bytes belong to this connection only: finish them before yielding.
            if round >= READ_BUDGET && self.staged.is_empty() {
                // Budget spent with input left: continue next turn, after the others.
                self.pending_reads.push(key);
                return;
            }
            let Some(c) = self.conns.get_mut(key) else {
                return;
            };
            if c.paused && self.staged.is_empty() {
                return;
            }
            // A paused side finishes what is staged but takes nothing more from its socket.
            self.staged.hold = c.paused;
            let Phase::Ws(ctx) = &mut c.phase else { return };
            let mut io = WsIo {
                sock: &mut c.sock,
                out: &mut c.out,
                bytes_in: 0,
                bytes_queued: 0,
                staged: &mut self.staged,
            };
            let result = match ctx.read(&mut io) {
                Ok(Message::Text(t)) => Read1::Text(t),
                Ok(Message::Binary(b)) => Read1::Binary(b),
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => Read1::Control,
                Ok(Message::Close(_)) => {
                    // Queue the close reply now; it is flushed after the app has been told.
                    let _ = ctx.flush(&mut io);
                    Read1::PeerClosed
                }
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    Read1::Blocked
                }
                Err(e) => Read1::Failed(Disconnect::from_ws_error(&e)),
            };
            let (bytes_in, queued) = (io.bytes_in, io.bytes_queued);
            if bytes_in > 0 {
                c.last_recv = self.now;
            }
            let (id, app, service, pipe) = (c.id, c.app, c.service, c.pipe);
            if queued > 0 {
                self.mark_dirty(key);
            }
            let limit = self.shared.config.max_messages_per_sec;
            if limit > 0
                && matches!(result, Read1::Text(_) | Read1::Binary(_))
                && self.conns[key].over_rate(self.now, limit)
            {
                return self.end(key, Disconnect::RateLimited);
            }
            if let Some(to) = pipe {
                match result {
                    Read1::Text(t) => {
                        self.relay(key, to, frame::transient(frame::OP_TEXT, t.as_bytes()));
                        continue;
                    }
                    Read1::Binary(b) => {
                        self.relay(key, to, frame::transient(frame::OP_BINARY, &b));
                        continue;
                    }
                    _ => {}
                }
            }
            let stats = self.stats(service);
            bump(&stats.bytes_in, bytes_in);
            match result {
                Read1::Text(t) => {
                    bump(&stats.messages_in, 1);
                    if let Some(app) = app {
                        self.dispatch(app, CoreEvent::Text { conn: id, text: &t });
                    }
                }
                Read1::Binary(b) => {
                    bump(&stats.messages_in, 1);
                    if let Some(app) = app {
                        self.dispatch(app, CoreEvent::Binary { conn: id, data: &b });
                    }
                }
                Read1::Control => {}
                Read1::PeerClosed => return self.end(key, Disconnect::ClientClose),
                Read1::Blocked => {
                    if let Some(c) = self.conns.get_mut(key) {
                        // Held back by a pause, the socket may still have input.
                        c.readable = self.staged.held;
                    }
                    return;
                }
                Read1::Failed(reason) => return self.end(key, reason),
            }
        }
    }

    /// A piped frame from `from` to `to`: queued without the slow-consumer cap; when the
    /// partner's queue passes the high-water mark, `from` stops being read until it drains.
    fn relay(&mut self, from: usize, to: ConnId, frame: Frame) {
        bump(&self.stats(self.conns[from].service).messages_in, 1);
        let key = to.slot as usize;
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        if c.id != to || !c.is_open_ws() {
            return;
        }
        if c.out.is_empty() {
            c.last_write = self.now;
        }
        c.out.push(frame);
        let over = c.out.queued() > self.shared.config.pipe_high_water_bytes;
        let service = c.service;
        bump(&self.stats(service).messages_out, 1);
        self.mark_dirty(key);
        if over {
            self.conns[from].paused = true;
        }
    }

    /// Resumes the reader piped into `key` once `key`'s queue is back under high water.
    fn resume_pipe_source(&mut self, key: usize) {
        let high_water = self.shared.config.pipe_high_water_bytes;
        let Some(c) = self.conns.get(key) else { return };
        let Some(src) = c.pipe else { return };
        if c.out.queued() > high_water {
            return;
        }
        let s = src.slot as usize;
        if let Some(sc) = self.conns.get_mut(s)
            && sc.id == src
            && sc.paused
        {
            sc.paused = false;
            self.pending_reads.push(s);
        }
    }

    /// Pipes two open connections of this reactor to each other.
    pub(super) fn pipe(&mut self, a: ConnId, b: ConnId) {
        let local_open = |r: &Reactor, id: ConnId| {
            usize::from(id.reactor) == r.me
                && r.conns
                    .get(id.slot as usize)
                    .is_some_and(|c| c.id == id && c.is_open_ws())
        };
        if !local_open(self, a) || !local_open(self, b) {
            debug_assert!(
                usize::from(a.reactor) == self.me && usize::from(b.reactor) == self.me,
                "both sides of a pipe live on one reactor"
            );
            return;
        }
        self.conns[a.slot as usize].pipe = Some(b);
        self.conns[b.slot as usize].pipe = Some(a);
    }

    /// Queues `frame` as `to`'s latest frame, replacing an unsent older latest one.
    pub(super) fn deliver_latest(&mut self, to: ConnId, frame: Frame) {
        let key = to.slot as usize;
        let cap = self.shared.config.max_outbound_bytes;
        if usize::from(to.reactor) != self.me {
            debug_assert!(false, "send_latest goes to this reactor's connections");
            return;
        }
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        if c.id != to || !c.is_open_ws() {
            return;
        }
        if c.out.is_empty() {
            c.last_write = self.now;
        }
        c.out.push_latest(frame);
        if c.out.queued() > cap {
            return self.end(key, Disconnect::SlowConsumer);
        }
        let service = c.service;
        bump(&self.stats(service).messages_out, 1);
        self.mark_dirty(key);
    }

    /// Reads and throws away input on a closing connection until EOF.
    fn discard_input(&mut self, key: usize) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        loop {
            match c.sock.read(&mut self.scratch) {
                Ok(0) => {
                    c.readable = false;
                    // The peer finished: nothing more to wait for once our output is out.
                    if c.out.is_empty() {
                        self.drop_now(key);
                    }
                    return;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    c.readable = false;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.drop_now(key),
            }
        }
    }

    /// Ends an open connection for `reason`: the wire answer the reason calls for, the
    /// app's Closed at the end of the turn, and the metrics.
    pub(super) fn end(&mut self, key: usize, reason: Disconnect) {
        let linger = self.now + self.shared.config.close_linger_ms;
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        if !c.is_open_ws() {
            return;
        }
        let service = c.service;
        match (reason, reason.close_frame()) {
            (_, Some((code, why))) => {
                if reason == Disconnect::SlowConsumer {
                    c.out.discard_unsent();
                }
                if c.out.is_empty() {
                    c.last_write = self.now;
                }
                c.out.push(frame::close(code, why));
                c.phase = Phase::Closing {
                    linger: true,
                    half_closed: false,
                };
                c.deadline = linger;
                self.mark_dirty(key);
            }
            (Disconnect::ClientClose, None) => {
                c.phase = Phase::Closing {
                    linger: false,
                    half_closed: false,
                };
                c.deadline = linger;
                self.mark_dirty(key);
            }
            (_, None) => {
                c.phase = Phase::Dead;
                self.to_drop.push(key);
            }
        }
        self.stats(service).disconnect(reason);
        self.owe_closed(key);
    }

    /// The app closes one of this reactor's connections.
    pub(super) fn app_close_local(&mut self, to: ConnId, close: Option<(u16, Cow<'static, str>)>) {
        let key = to.slot as usize;
        let linger = self.now + self.shared.config.close_linger_ms;
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        if c.id != to || !c.is_open_ws() {
            return;
        }
        let f = match &close {
            Some((code, reason)) => frame::close(*code, reason),
            None => frame::close_empty(),
        };
        if c.out.is_empty() {
            c.last_write = self.now;
        }
        c.out.push(f);
        c.phase = Phase::Closing {
            linger: true,
            half_closed: false,
        };
        c.deadline = linger;
        let service = c.service;
        self.mark_dirty(key);
        self.stats(service).disconnect(Disconnect::AppClose);
        self.owe_closed(key);
    }

    /// Notes that the app is owed `key`'s Closed. The id is kept, not the slot: a close
    /// found by the end-of-turn flush is reaped in the next turn, after the slot may have
    /// been freed and reused by a new connection.
    pub(super) fn owe_closed(&mut self, key: usize) {
        if let Some(c) = self.conns.get_mut(key)
            && c.opened
        {
            c.opened = false;
            if let Some(app) = c.app {
                self.to_reap.push((c.id, app));
            }
        }
    }

    /// Tells the apps about the closes noted so far. Every connection closed in the turn
    /// is already marked, so frames the apps send to any of them are dropped.
    pub(super) fn reap(&mut self) {
        while !self.to_reap.is_empty() {
            for (id, app) in std::mem::take(&mut self.to_reap) {
                self.dispatch(app, CoreEvent::Closed { conn: id });
            }
            self.pump_local();
        }
    }

    /// Queues `frame` for `to`, here or on its reactor.
    pub(super) fn send(&mut self, to: ConnId, frame: Frame) {
        let dest = usize::from(to.reactor);
        if dest == self.me {
            self.deliver_local(to, frame);
        } else if let Some(batch) = self.outgoing.get_mut(dest) {
            batch.push(Envelope::Frame(to, frame));
        }
    }

    /// [`Reactor::send`] of one frame to each of `to`, with what is the same for all of
    /// them (the cap, the clock, the metrics) done once.
    pub(super) fn fan_out(&mut self, frame: Frame, to: &[ConnId]) {
        let me = self.me;
        let mut sent = 0u64;
        let mut service = None;
        let mut slow = Vec::new();
        for &id in to {
            if usize::from(id.reactor) != me {
                if let Some(batch) = self.outgoing.get_mut(usize::from(id.reactor)) {
                    batch.push(Envelope::Frame(id, frame.clone()));
                }
                continue;
            }
            match self.queue_local(id, frame.clone()) {
                Queued::Yes(s) => {
                    // The members of one app are all on its service; count per run of one.
                    if service != Some(s) {
                        if let Some(s) = service {
                            self.count_out(s, sent);
                        }
                        (service, sent) = (Some(s), 0);
                    }
                    sent += 1;
                }
                Queued::Gone => {}
                Queued::Slow => slow.push(id.slot as usize),
            }
        }
        if let Some(s) = service {
            self.count_out(s, sent);
        }
        for key in slow {
            self.end(key, Disconnect::SlowConsumer);
        }
    }

    pub(super) fn deliver_local(&mut self, to: ConnId, frame: Frame) {
        match self.queue_local(to, frame) {
            Queued::Yes(service) => self.count_out(service, 1),
            Queued::Gone => {}
            Queued::Slow => self.end(to.slot as usize, Disconnect::SlowConsumer),
        }
    }

    /// Queues `frame` for the local connection `to` if it is still open, and marks it
    /// dirty; one slab lookup, as this is the hot path.
    fn queue_local(&mut self, to: ConnId, frame: Frame) -> Queued {
        let key = to.slot as usize;
        let Some(c) = self.conns.get_mut(key) else {
            return Queued::Gone;
        };
        if c.id != to || !c.is_open_ws() {
            return Queued::Gone;
        }
        // A piped side is never a slow consumer: its partner is paused instead, and what
        // an app sends it (a hold buffer) is bounded by the app.
        if c.pipe.is_none() && c.out.queued() + frame.len() > self.shared.config.max_outbound_bytes
        {
            return Queued::Slow;
        }
        if c.out.is_empty() {
            c.last_write = self.now;
        }
        c.out.push(frame);
        if !c.dirty {
            c.dirty = true;
            self.dirty.push(key);
        }
        Queued::Yes(c.service)
    }

    fn count_out(&self, service: u8, messages: u64) {
        bump(
            &self.shared.stats[self.me].services[usize::from(service)].messages_out,
            messages,
        );
    }

    /// Writes a connection's queue once; finishes a closing connection once it is empty.
    pub(super) fn flush(&mut self, key: usize) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        c.dirty = false;
        if matches!(c.phase, Phase::Dead) {
            return;
        }
        let result = c.out.write_to(&mut c.sock, &mut self.scratch);
        let service = c.service;
        match result {
            Ok(n) => {
                if n > 0 {
                    c.last_write = self.now;
                    bump(
                        &self.shared.stats[self.me].services[usize::from(service)].bytes_out,
                        n as u64,
                    );
                }
                if !c.out.is_empty() {
                    // Blocked: what waits must not pin shared arena chunks.
                    c.out.unpin();
                }
            }
            Err(_) => {
                if c.is_open_ws() {
                    return self.end(key, Disconnect::ConnectionLost);
                }
                return self.drop_now(key);
            }
        }
        if c.pipe.is_some() {
            self.resume_pipe_source(key);
        }
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        if !c.out.is_empty() {
            return;
        }
        if let Phase::Closing {
            linger,
            half_closed,
        } = &mut c.phase
        {
            if !*linger {
                return self.drop_now(key);
            }
            if !*half_closed {
                *half_closed = true;
                let _ = c.sock.shutdown(std::net::Shutdown::Write);
                // Input may already be waiting (or EOF seen): look again.
                c.readable = true;
                self.pending_reads.push(key);
            }
        }
    }
}
