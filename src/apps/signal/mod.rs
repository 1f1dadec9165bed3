//! signal: cevitxe peer introduction and socket piping, as `shared/protocols/signal.md`
//! specifies.
//!
//! Inputs: Opened, Text, Binary, Closed, Tick. Effects: Introductions, closes, the held
//! buffer sent to the newcomer, and [`Effect::Pipe`](super::Effect::Pipe). Deadline: the
//! optional hold timeout, checked on the tick.
//!
//! Placement (a departure from "registry per document key"): every introduction
//! connection is handed to the owner reactor of one key, [`INTRO_KEY`], so the registry is
//! one plain map with no posts. Introductions are a small control plane (one Join per
//! document open); spreading them would need cross-reactor key lists to keep "common keys
//! in A's order" and SIG-15's ordering, for no measurable gain. The hot path, the pipes,
//! is spread: each pipe's two sockets go to the owner of [`pipe_owner_key`] at upgrade,
//! and from then on the reactor relays frames without calling the app.

mod hold;
mod intro;
pub mod wire;

use super::{App, Effect, Event, Millis, Outbox, Route};
use crate::config::{Config, SignalConfig};
use crate::frame;
use crate::http::{Request, Response, Status};
use crate::router::{ConnId, ConnTable};
use hold::{HoldKey, Holds};
use intro::Registry;
use wire::{Endpoint, PathError};

/// The key whose owner reactor holds every introduction connection.
pub const INTRO_KEY: &[u8] = b"signal:introductions";

pub const REPLACED: &str = "Replaced by a newer connection";
pub const TOO_MANY_KEYS: &str = "Too many keys";
pub const HOLD_FULL: &str = "Hold buffer full";
pub const HOLD_TIMEOUT: &str = "Hold timeout";

/// signal's instances never post to each other.
#[derive(Debug, PartialEq)]
pub enum SignalMsg {}

/// The owner key of the pipe between `a` and `b` on `key`: the same for both directions,
/// and unambiguous whatever bytes the ids hold (each part is length-prefixed).
pub fn pipe_owner_key(a: &str, b: &str, key: &str) -> Vec<u8> {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut out = b"signal:pipe:".to_vec();
    for part in [lo, hi, key] {
        out.extend_from_slice(&(part.len() as u32).to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out
}

/// The answer before the upgrade: the fish page, the two WebSocket endpoints, 404/400.
pub fn route(req: &Request, websocket: bool, cfg: &Config) -> Route {
    if !websocket {
        if req.method == "GET" && req.path == "/" {
            return Route::Respond(Response {
                status: Status::OK,
                content_type: "text/html; charset=utf-8",
                extra_headers: Vec::new(),
                body: wire::FISH_PAGE.as_bytes().to_vec(),
            });
        }
        return Route::Respond(Response::status(Status::NOT_FOUND));
    }
    let limits = &cfg.signal_limits;
    match wire::parse_path(&req.path, limits.max_id_bytes) {
        Ok(Endpoint::Introduction { .. }) => Route::Upgrade {
            owner: Some(INTRO_KEY.to_vec()),
            headers: Vec::new(),
            max_message_bytes: None,
        },
        Ok(Endpoint::Connection { local, remote, key }) => Route::Upgrade {
            owner: Some(pipe_owner_key(&local, &remote, &key)),
            headers: Vec::new(),
            max_message_bytes: Some(limits.max_pipe_message_bytes),
        },
        Err(PathError::NotFound) => Route::Respond(Response::status(Status::NOT_FOUND)),
        Err(PathError::BadRequest) => Route::Respond(Response::status(Status::BAD_REQUEST)),
    }
}

/// What one of this reactor's connections is.
enum Side {
    /// An introduction connection registered (or once registered) as this id.
    Intro { id: String },
    /// A connection endpoint waiting for its partner; its messages are buffered.
    Held { key: HoldKey },
    /// Piped to `partner`: the reactor relays; the app only handles the close.
    Piped { partner: ConnId },
    /// Closed by the app (replaced, limit, timeout); its Closed changes nothing.
    Done,
}

pub struct Signal {
    limits: SignalConfig,
    sides: ConnTable<Side>,
    registry: Registry,
    holds: Holds,
}

impl Signal {
    pub fn new(limits: SignalConfig) -> Signal {
        let hold_timeout_ms = limits.hold_timeout_secs.saturating_mul(1000);
        Signal {
            holds: Holds::new(limits.hold_buffer_bytes, hold_timeout_ms),
            limits,
            sides: ConnTable::new(),
            registry: Registry::default(),
        }
    }

    fn opened(&mut self, conn: ConnId, req: &Request, now: Millis, out: &mut Outbox<SignalMsg>) {
        match wire::parse_path(&req.path, self.limits.max_id_bytes) {
            Ok(Endpoint::Introduction { id }) => {
                if let Some(old) = self.registry.register(&id, conn) {
                    self.finish(old, 1008, REPLACED, out);
                }
                self.sides.insert(conn, Side::Intro { id });
            }
            Ok(Endpoint::Connection { local, remote, key }) => {
                let key = HoldKey::new(local, remote, key);
                if let Some((partner, buffered)) = self.holds.take_reciprocal(&key) {
                    // Pipe first: the newcomer is then exempt from the slow-consumer cap,
                    // and the buffer (bounded by hold_buffer_bytes) goes out before
                    // anything the reactor relays.
                    out.pipe(partner, conn);
                    for f in buffered {
                        out.send(conn, f);
                    }
                    self.sides.insert(partner, Side::Piped { partner: conn });
                    self.sides.insert(conn, Side::Piped { partner });
                    return;
                }
                if let Some(old) = self.holds.hold(key.clone(), conn, now) {
                    self.finish(old, 1008, REPLACED, out);
                }
                self.sides.insert(conn, Side::Held { key });
            }
            Err(_) => {
                // `route` refused this path before the upgrade; reaching here is a bug.
                debug_assert!(false, "opened on a path route() refuses: {}", req.path);
                self.sides.insert(conn, Side::Done);
                out.close(conn, 1011, "Unexpected path");
            }
        }
    }

    /// Closes `conn` for a reason of the app's, forgetting its state now so its later
    /// Closed touches nothing.
    fn finish(
        &mut self,
        conn: ConnId,
        code: u16,
        reason: &'static str,
        out: &mut Outbox<SignalMsg>,
    ) {
        if let Some(side) = self.sides.get_mut(conn) {
            match std::mem::replace(side, Side::Done) {
                Side::Intro { id } => self.registry.unregister(&id, conn),
                Side::Held { key } => self.holds.release(&key, conn),
                Side::Piped { .. } | Side::Done => {}
            }
        }
        out.close(conn, code, reason);
    }

    fn message(&mut self, conn: ConnId, opcode: u8, data: &[u8], out: &mut Outbox<SignalMsg>) {
        match self.sides.get(conn) {
            Some(Side::Intro { id }) => {
                let text = String::from_utf8_lossy(data);
                let Some(change) = wire::parse_key_change(&text, self.limits.max_key_bytes) else {
                    return;
                };
                let id = id.clone();
                if self
                    .registry
                    .apply(&id, change, self.limits.max_keys_per_peer)
                    .is_err()
                {
                    return self.finish(conn, 1008, TOO_MANY_KEYS, out);
                }
                self.registry.introductions(&id, |to, f| out.send(to, f));
            }
            Some(Side::Held { key }) => {
                if self.holds.buffer(key, conn, opcode, data).is_err() {
                    self.finish(conn, 1009, HOLD_FULL, out);
                }
            }
            // The reactor relays piped frames itself; this covers a frame that reached the
            // app anyway, with the same result.
            Some(Side::Piped { partner }) => out.send(*partner, frame::transient(opcode, data)),
            Some(Side::Done) | None => {}
        }
    }

    fn closed(&mut self, conn: ConnId, out: &mut Outbox<SignalMsg>) {
        match self.sides.remove(conn) {
            Some(Side::Intro { id }) => self.registry.unregister(&id, conn),
            Some(Side::Held { key }) => self.holds.release(&key, conn),
            Some(Side::Piped { partner }) => {
                // The partner gets what was relayed to it, then a Close without status.
                if let Some(side) = self.sides.get_mut(partner) {
                    *side = Side::Done;
                }
                out.effects.push(Effect::Close(partner, None));
            }
            Some(Side::Done) | None => {}
        }
    }

    fn tick(&mut self, now: Millis, out: &mut Outbox<SignalMsg>) {
        while let Some(conn) = self.holds.next_expired(now) {
            self.finish(conn, 1000, HOLD_TIMEOUT, out);
        }
    }
}

impl App for Signal {
    type Msg = SignalMsg;

    fn handle(&mut self, event: Event<'_, SignalMsg>, now: Millis, out: &mut Outbox<SignalMsg>) {
        match event {
            Event::Opened { conn, req } => self.opened(conn, req, now, out),
            Event::Text { conn, text } => self.message(conn, frame::OP_TEXT, text.as_bytes(), out),
            Event::Binary { conn, data } => self.message(conn, frame::OP_BINARY, data, out),
            Event::Closed { conn } => self.closed(conn, out),
            Event::Tick => self.tick(now, out),
            Event::Remote(never) => match never {},
            Event::Http { .. } | Event::HttpReading { .. } | Event::TurnEnd | Event::Shutdown => {}
        }
    }
}

#[cfg(test)]
mod tests;
