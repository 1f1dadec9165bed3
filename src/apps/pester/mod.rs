//! pester: channel pub/sub over raw WebSocket and Socket.IO v4, as
//! `shared/protocols/pester.md` specifies.
//!
//! Two faces share one user and channel space. The raw face is JSON text frames on every
//! path outside `/socket.io/`; the Socket.IO face is Engine.IO sessions (`session.rs`)
//! carrying Socket.IO packets. Both decode client input into [`channel::Msg`] and hand it
//! to the hub: the one instance (on `owner_of(HUB_KEY)`) that holds users and channels.
//! Posts to one reactor arrive in order, so each connection's inputs are handled in order
//! and its replies leave in order. The hub sends raw frames straight to their `ConnId`s
//! and Socket.IO output as one [`PesterMsg::Deliver`] per destination reactor.

pub mod channel;
pub mod engineio;
pub mod session;
pub mod socketio;

use super::{App, Effect, Event, Millis, Outbox, Route};
use crate::config::{Config, PesterConfig};
use crate::frame;
use crate::http::{Request, Response, Status};
use crate::router::{ConnId, ConnTable, owner_of};
use channel::{Channels, Msg, Out, Peer};
use engineio::ErrorCode;
use session::Engine;

/// The key whose owner reactor holds the channel state.
pub const HUB_KEY: &[u8] = b"pester:hub";

pub const BANNER: &str = "Pester WebSocket Server";

/// An input for the hub.
#[derive(Debug, PartialEq)]
pub enum HubInput {
    Msg {
        msg: Msg,
        ack: Option<u64>,
    },
    /// A Socket.IO event other than `message` that asked for an ack.
    AckOnly(u64),
    Disconnect,
}

/// What the hub sends to a Socket.IO socket.
#[derive(Debug, PartialEq)]
pub enum Delivery {
    Json(String),
    Kick,
    Ack(u64),
}

/// Posts between pester instances.
#[derive(Debug, PartialEq)]
pub enum PesterMsg {
    /// To the hub.
    Hub(Peer, HubInput),
    /// To a session reactor: hub output for its sockets, in order.
    Deliver(Vec<(u64, Delivery)>),
}

fn is_engine_path(path: &str) -> bool {
    path.starts_with("/socket.io/")
}

fn is_bundle(path: &str) -> bool {
    let name = path.trim_start_matches("/socket.io/");
    let name = name.strip_suffix(".map").unwrap_or(name);
    matches!(
        name,
        "socket.io.js" | "socket.io.min.js" | "socket.io.msgpack.min.js" | "socket.io.esm.min.js"
    )
}

/// The raw 400 that refuses a WebSocket upgrade on `/socket.io/`.
fn upgrade_refusal(code: ErrorCode) -> Route {
    Route::Respond(Response {
        status: Status::BAD_REQUEST,
        content_type: "text/html",
        extra_headers: Vec::new(),
        body: code.message().as_bytes().to_vec(),
    })
}

/// The answer before the upgrade: the stateless Engine.IO checks (the owner reactor makes
/// the session checks), the raw face, the banner.
pub fn route(req: &Request, websocket: bool, cfg: &Config) -> Route {
    if !is_engine_path(&req.path) {
        return if websocket {
            Route::Upgrade {
                owner: None,
                headers: Vec::new(),
                max_message_bytes: None,
            }
        } else {
            Route::Respond(Response::text(Status::OK, BANNER))
        };
    }
    if !websocket && is_bundle(&req.path) {
        return Route::Respond(Response::status(Status::NOT_FOUND));
    }
    if !websocket && req.method == "OPTIONS" {
        let mut r = Response::text(Status(204, "No Content"), "")
            .with_header("Access-Control-Allow-Origin", "*")
            .with_header("Access-Control-Allow-Methods", "GET,POST");
        if let Some(h) = req.header("access-control-request-headers") {
            r = r.with_header("Access-Control-Allow-Headers", h);
        }
        return Route::Respond(r.with_header("Vary", "Access-Control-Request-Headers"));
    }
    let fail = |code| {
        if websocket {
            upgrade_refusal(code)
        } else {
            Route::Respond(session::error_response(code))
        }
    };
    let transport = req.query_param("transport");
    if !matches!(transport.as_deref(), Some("polling" | "websocket")) {
        return fail(ErrorCode::TransportUnknown);
    }
    if !crate::http::origin_allowed(&cfg.allowed_origins, req.header("origin")) {
        return fail(ErrorCode::Forbidden);
    }
    let max_message_bytes = Some(cfg.pester_opts.max_payload);
    if let Some(sid) = req.query_param("sid") {
        let owner = Some(sid.into_bytes());
        return if websocket {
            Route::Upgrade {
                owner,
                headers: Vec::new(),
                max_message_bytes,
            }
        } else {
            Route::Http { owner }
        };
    }
    if req.method != "GET" {
        return fail(ErrorCode::BadHandshakeMethod);
    }
    if transport.as_deref() == Some("websocket") && !websocket {
        return fail(ErrorCode::BadRequest);
    }
    if req.query_param("EIO").as_deref() != Some("4") {
        return fail(ErrorCode::UnsupportedProtocolVersion);
    }
    if req.query_param("j").is_some() {
        return fail(ErrorCode::BadRequest);
    }
    if websocket {
        Route::Upgrade {
            owner: None,
            headers: Vec::new(),
            max_message_bytes,
        }
    } else {
        Route::Http { owner: None }
    }
}

pub struct Pester {
    me: usize,
    hub: usize,
    channels: Channels,
    engine: Engine,
    /// This reactor's raw-face connections.
    raw: ConnTable<()>,
    /// Reused buffers: hub output, and deliveries per destination reactor.
    outs: Vec<Out>,
    batches: Vec<Vec<(u64, Delivery)>>,
}

impl Pester {
    /// The instance on reactor `me` of `reactors`; `seed` keys its session ids.
    pub fn new(me: usize, reactors: usize, cfg: &PesterConfig, seed: [u64; 2]) -> Pester {
        Pester {
            me,
            hub: owner_of(HUB_KEY, reactors),
            channels: Channels::new(cfg.limits()),
            engine: Engine::new(me, reactors, cfg.settings(), seed),
            raw: ConnTable::new(),
            outs: Vec::new(),
            batches: (0..reactors).map(|_| Vec::new()).collect(),
        }
    }

    /// The reactor that holds users and channels.
    pub fn hub(&self) -> usize {
        self.hub
    }

    fn send_hub(&mut self, peer: Peer, input: HubInput, now: Millis, out: &mut Outbox<PesterMsg>) {
        if self.hub == self.me {
            self.hub_handle(peer, input, now, out);
        } else {
            out.post(self.hub, PesterMsg::Hub(peer, input));
        }
    }

    /// Forwards what the engine produced for the hub (which may produce more).
    fn pump(&mut self, now: Millis, out: &mut Outbox<PesterMsg>) {
        while !self.engine.to_hub.is_empty() {
            let inputs = std::mem::take(&mut self.engine.to_hub);
            for (peer, input) in inputs {
                self.send_hub(peer, input, now, out);
            }
        }
    }

    fn hub_handle(
        &mut self,
        from: Peer,
        input: HubInput,
        now: Millis,
        out: &mut Outbox<PesterMsg>,
    ) {
        match input {
            HubInput::Msg { msg, ack } => self.channels.handle(from, msg, ack, now, &mut self.outs),
            HubInput::AckOnly(id) => self.channels.ack_only(from, id, &mut self.outs),
            HubInput::Disconnect => self.channels.disconnect(from, now, &mut self.outs),
        }
        for o in std::mem::take(&mut self.outs) {
            let (peer, d) = match o {
                Out::Json(Peer::Raw(c), json) => {
                    out.send(c, frame::text(&json));
                    continue;
                }
                Out::Kick(Peer::Raw(c)) => {
                    out.effects.push(Effect::Close(c, None));
                    continue;
                }
                Out::Ack(Peer::Raw(_), _) => continue,
                Out::Json(p, json) => (p, Delivery::Json(json)),
                Out::Kick(p) => (p, Delivery::Kick),
                Out::Ack(p, n) => (p, Delivery::Ack(n)),
            };
            if let Peer::Sio { reactor, id } = peer
                && let Some(batch) = self.batches.get_mut(usize::from(reactor))
            {
                batch.push((id, d));
            }
        }
        for r in 0..self.batches.len() {
            if self.batches[r].is_empty() {
                continue;
            }
            let batch = std::mem::take(&mut self.batches[r]);
            if r == self.me {
                self.deliver(batch, now, out);
            } else {
                out.post(r, PesterMsg::Deliver(batch));
            }
        }
    }

    fn deliver(&mut self, batch: Vec<(u64, Delivery)>, now: Millis, out: &mut Outbox<PesterMsg>) {
        for (id, d) in batch {
            self.engine.deliver(id, d, now, out);
        }
    }

    fn raw_input(&mut self, conn: ConnId, text: &str, now: Millis, out: &mut Outbox<PesterMsg>) {
        let msg = channel::decode_raw(text);
        self.send_hub(Peer::Raw(conn), HubInput::Msg { msg, ack: None }, now, out);
    }
}

impl App for Pester {
    type Msg = PesterMsg;

    fn handle(&mut self, event: Event<'_, PesterMsg>, now: Millis, out: &mut Outbox<PesterMsg>) {
        match event {
            Event::Opened { conn, req } => {
                if is_engine_path(&req.path) {
                    self.engine.ws_open(conn, req, now, out);
                } else {
                    self.raw.insert(conn, ());
                }
            }
            Event::Http { conn, req, body } => self.engine.http(conn, req, body, now, out),
            Event::Text { conn, text } => {
                if self.raw.get(conn).is_some() {
                    self.raw_input(conn, text, now, out);
                } else {
                    self.engine.ws_text(conn, text, now, out);
                }
            }
            Event::Binary { conn, data } => {
                if self.raw.get(conn).is_some() {
                    self.raw_input(conn, &String::from_utf8_lossy(data), now, out);
                } else {
                    self.engine.ws_binary(conn, data, now, out);
                }
            }
            Event::Closed { conn } => {
                if self.raw.remove(conn).is_some() {
                    self.send_hub(Peer::Raw(conn), HubInput::Disconnect, now, out);
                } else {
                    self.engine.closed(conn, out);
                }
            }
            Event::Remote(PesterMsg::Hub(peer, input)) => self.hub_handle(peer, input, now, out),
            Event::Remote(PesterMsg::Deliver(batch)) => self.deliver(batch, now, out),
            Event::Tick => self.engine.tick(now, out),
            Event::TurnEnd => self.engine.flush(out),
            Event::Shutdown => self.engine.shutdown(out),
        }
        self.pump(now, out);
    }
}

#[cfg(test)]
mod tests;
