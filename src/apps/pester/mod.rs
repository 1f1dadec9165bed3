//! pester: channel pub/sub over raw WebSocket and Socket.IO v4, as
//! `shared/protocols/pester.md` specifies.
//!
//! Two faces share one user and channel space. The raw face is JSON text frames on every
//! path outside `/socket.io/`; the Socket.IO face is Engine.IO sessions (`session.rs`)
//! carrying Socket.IO packets. Both decode client input into [`channel::Msg`].
//!
//! **Where the state lives.** Users and channels are split into a control plane and a
//! data plane:
//! - *Control* (`register`, `open_channel`, `close_channel`, disconnects) changes who is
//!   who and who is in which channel. It runs on one instance, the hub
//!   (`owner_of(HUB_KEY)`), because the duplicate-login kick, pending invites and
//!   `friendOnline` all read and write the user table and the channels together: one
//!   serialisation point keeps them exact without distributed transactions. These inputs
//!   are rare (once per login or conversation).
//! - *Data* (`message`, `typing`, and the errors that need no state) is the hot path. The
//!   sender's own reactor answers it from its [`replica::Replica`] (its peers' user ids and
//!   the members of their channels, kept current by the hub) and fans the frame out,
//!   encoded once, as one [`PesterMsg::Fanout`] per destination reactor. The hub sees no
//!   chat traffic, so message throughput grows with the reactors.
//!
//! Sharding users by `owner_of(userId)` instead was rejected: `open_channel` and
//! `register` touch two users (and their channels) on different owners, so each would
//! need a multi-hop exchange, and a connection's replies would come from several reactors.
//!
//! **Order.** A connection's inputs are answered in order: while any of its inputs is at
//! the hub (the replica counts them until the hub's [`Item::Done`]), its data inputs go to
//! the hub too, behind them. Every inbox is one FIFO, so the hub's replica updates reach a
//! reactor before anything caused by them (a member's message after its `channel_invite`).
//! A disconnect goes to the hub at once, before the core answers the Close (PST-24). One
//! race stays: a message sent on a connection at the instant another login kicks it may
//! reach the channel after the kick's `user_left` (the original could not order that
//! either: the two clients race).
pub mod channel;
pub mod engineio;
pub mod replica;
pub mod session;
pub mod socketio;

use super::{App, Effect, Event, Millis, Outbox, Route};
use crate::config::{Config, PesterConfig};
use crate::frame::{self, Frame};
use crate::http::{Request, Response, Status};
use crate::router::{ConnId, ConnTable, owner_of};
use channel::{Channels, Msg, Out, Peer};
use engineio::ErrorCode;
use replica::{Local, Replica};
use session::Engine;
use std::collections::HashMap;
use std::sync::Arc;

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

/// One step of the hub's output for one reactor, applied there in order.
#[derive(Debug, PartialEq)]
pub enum Item {
    /// A frame, kick or ack for a peer of that reactor.
    Out(Out),
    /// Replica update: the user id of a peer of that reactor.
    User(Peer, Option<String>),
    /// Replica update: the members of a channel (empty: gone).
    Channel(String, Vec<(String, Peer)>),
    /// The hub has handled one more input of this peer.
    Done(Peer),
}

/// Posts between pester instances.
#[derive(Debug, PartialEq)]
pub enum PesterMsg {
    /// To the hub.
    Hub(Peer, HubInput),
    /// To a reactor: hub output for its peers and its replica, in order.
    Deliver(Vec<Item>),
    /// To a reactor: a member's `message` or `typing` for its peers, encoded once.
    Fanout {
        json: Arc<str>,
        raw: Frame,
        to: Vec<Peer>,
    },
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
fn upgrade_refusal(code: ErrorCode) -> Response {
    Response {
        status: Status::BAD_REQUEST,
        content_type: "text/html",
        extra_headers: Vec::new(),
        body: code.message().as_bytes().to_vec(),
    }
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
            Route::Respond(upgrade_refusal(code))
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
            Route::Http {
                owner,
                max_body: Some(cfg.pester_opts.max_payload),
            }
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
        Route::Http {
            owner: None,
            max_body: None,
        }
    }
}

pub struct Pester {
    me: usize,
    hub: usize,
    channels: Channels,
    replica: Replica,
    engine: Engine,
    /// This reactor's raw-face connections.
    raw: ConnTable<()>,
    /// Hub only: the reactors that hold a replica of each channel.
    replicated: HashMap<String, Vec<usize>>,
    /// Reused buffers: hub output, items and fan-out recipients per destination reactor.
    outs: Vec<Out>,
    batches: Vec<Vec<Item>>,
    fan: Vec<Vec<Peer>>,
}

impl Pester {
    /// The instance on reactor `me` of `reactors`; `seed` keys its session ids.
    pub fn new(me: usize, reactors: usize, cfg: &PesterConfig, seed: [u64; 2]) -> Pester {
        Pester {
            me,
            hub: owner_of(HUB_KEY, reactors),
            channels: Channels::new(cfg.limits()),
            replica: Replica::new(me),
            engine: Engine::new(me, reactors, cfg.settings(), seed),
            raw: ConnTable::new(),
            replicated: HashMap::new(),
            outs: Vec::new(),
            batches: (0..reactors).map(|_| Vec::new()).collect(),
            fan: (0..reactors).map(|_| Vec::new()).collect(),
        }
    }

    /// The reactor that holds users and channels.
    pub fn hub(&self) -> usize {
        self.hub
    }

    /// One input of a connection of this reactor: answered here when the replica can,
    /// else at the hub.
    fn input(&mut self, from: Peer, input: HubInput, now: Millis, out: &mut Outbox<PesterMsg>) {
        let data = match &input {
            HubInput::Msg { msg, .. } => msg.is_data(),
            HubInput::AckOnly(_) => true,
            HubInput::Disconnect => false,
        };
        if data && !self.replica.is_busy(&from) {
            return self.local(from, input, now, out);
        }
        match input {
            HubInput::Disconnect => self.replica.forget(&from),
            _ => self.replica.begin(from),
        }
        if self.hub == self.me {
            self.hub_handle(from, input, now, out);
        } else {
            out.post(self.hub, PesterMsg::Hub(from, input));
        }
    }

    /// Forwards what the engine produced (which may produce more).
    fn pump(&mut self, now: Millis, out: &mut Outbox<PesterMsg>) {
        while !self.engine.to_hub.is_empty() {
            let inputs = std::mem::take(&mut self.engine.to_hub);
            for (peer, input) in inputs {
                self.input(peer, input, now, out);
            }
        }
    }

    /// A data message answered from the replica.
    fn local(&mut self, from: Peer, input: HubInput, now: Millis, out: &mut Outbox<PesterMsg>) {
        let (msg, ack) = match input {
            HubInput::Msg { msg, ack } => (msg, ack),
            HubInput::AckOnly(id) => return self.apply_out(Out::Ack(from, id), now, out),
            HubInput::Disconnect => return,
        };
        match self.replica.handle(from, &msg, now) {
            Local::Reply(json) => self.apply_out(Out::Json(from, json), now, out),
            Local::Fan { json, to } => self.fan_out(json, to, out),
            Local::Nothing => {}
        }
        if let Some(id) = ack {
            self.apply_out(Out::Ack(from, id), now, out);
        }
    }

    /// One frame for several peers: local ones now, one post per other reactor.
    fn fan_out(&mut self, json: String, mut to: Vec<Peer>, out: &mut Outbox<PesterMsg>) {
        let raw = frame::transient_text(&json);
        let json: Arc<str> = json.into();
        let (me, fan) = (self.me, &mut self.fan);
        to.retain(|&p| {
            let r = p.reactor();
            if r != me
                && let Some(list) = fan.get_mut(r)
            {
                list.push(p);
            }
            r == me
        });
        self.deliver_locals(&to, &json, &raw, out);
        for r in 0..self.fan.len() {
            if !self.fan[r].is_empty() {
                let to = std::mem::take(&mut self.fan[r]);
                let (json, raw) = (json.clone(), raw.clone());
                out.post(r, PesterMsg::Fanout { json, raw, to });
            }
        }
    }

    /// One fan-out's delivery to this reactor's `peers`: the raw ones as one fan-out
    /// effect; each Socket.IO one through its session, with the packet and its frame built
    /// on first use and shared by all of them.
    fn deliver_locals(
        &mut self,
        peers: &[Peer],
        json: &str,
        raw: &Frame,
        out: &mut Outbox<PesterMsg>,
    ) {
        let raw_peers = peers.iter().filter_map(|p| match *p {
            Peer::Raw(c) => Some(c),
            Peer::Sio { .. } => None,
        });
        out.fan_out(raw.clone(), raw_peers);
        let mut sio: Option<(String, Frame)> = None;
        for p in peers {
            if let Peer::Sio { id, .. } = *p {
                let (packet, frame) = sio.get_or_insert_with(|| {
                    let packet = format!("4{}", socketio::message(json));
                    let frame = frame::transient_text(&packet);
                    (packet, frame)
                });
                self.engine.deliver_packet(id, packet, frame, out)
            }
        }
    }

    /// Hub output for a peer of this reactor.
    fn apply_out(&mut self, o: Out, now: Millis, out: &mut Outbox<PesterMsg>) {
        let (id, d) = match o {
            Out::Json(Peer::Raw(c), json) => return out.send(c, frame::transient_text(&json)),
            Out::Kick(Peer::Raw(c)) => return out.effects.push(Effect::Close(c, None)),
            Out::Ack(Peer::Raw(_), _) => return,
            Out::Json(Peer::Sio { id, .. }, json) => (id, Delivery::Json(json)),
            Out::Kick(Peer::Sio { id, .. }) => (id, Delivery::Kick),
            Out::Ack(Peer::Sio { id, .. }, n) => (id, Delivery::Ack(n)),
        };
        self.engine.deliver(id, d, now, out);
    }

    fn apply_item(&mut self, item: Item, now: Millis, out: &mut Outbox<PesterMsg>) {
        match item {
            Item::Out(o) => self.apply_out(o, now, out),
            Item::User(p, u) => self.replica.set_user(p, u),
            Item::Channel(ch, members) => self.replica.set_channel(ch, members),
            Item::Done(p) => self.replica.done(&p),
        }
    }

    fn push_item(&mut self, r: usize, item: Item, now: Millis, out: &mut Outbox<PesterMsg>) {
        if r == self.me {
            self.apply_item(item, now, out);
        } else if let Some(batch) = self.batches.get_mut(r) {
            batch.push(item);
        }
    }

    /// The hub handles one input: the channel protocol, then replica updates, the output,
    /// and `Done` for the sender, as one post per reactor.
    fn hub_handle(
        &mut self,
        from: Peer,
        input: HubInput,
        now: Millis,
        out: &mut Outbox<PesterMsg>,
    ) {
        let done = !matches!(input, HubInput::Disconnect);
        match input {
            HubInput::Msg { msg, ack } => self.channels.handle(from, msg, ack, now, &mut self.outs),
            HubInput::AckOnly(id) => self.channels.ack_only(from, id, &mut self.outs),
            HubInput::Disconnect => self.channels.disconnect(from, now, &mut self.outs),
        }
        let (peers, chans) = self.channels.take_touched();
        for p in peers {
            let user = self.channels.user_of(&p).map(str::to_string);
            self.push_item(p.reactor(), Item::User(p, user), now, out);
        }
        for ch in chans {
            let members = self.channels.members(&ch);
            let mut now_at: Vec<usize> = members.iter().map(|(_, p)| p.reactor()).collect();
            now_at.sort_unstable();
            now_at.dedup();
            let before = if now_at.is_empty() {
                self.replicated.remove(&ch)
            } else {
                self.replicated.insert(ch.clone(), now_at.clone())
            };
            let mut to = now_at;
            to.extend(before.unwrap_or_default());
            to.sort_unstable();
            to.dedup();
            for r in to {
                self.push_item(r, Item::Channel(ch.clone(), members.clone()), now, out);
            }
        }
        for o in std::mem::take(&mut self.outs) {
            self.push_item(o.peer().reactor(), Item::Out(o), now, out);
        }
        if done {
            self.push_item(from.reactor(), Item::Done(from), now, out);
        }
        for r in 0..self.batches.len() {
            if !self.batches[r].is_empty() {
                let batch = std::mem::take(&mut self.batches[r]);
                out.post(r, PesterMsg::Deliver(batch));
            }
        }
    }

    fn raw_input(&mut self, conn: ConnId, text: &str, now: Millis, out: &mut Outbox<PesterMsg>) {
        let msg = channel::decode_raw(text);
        self.input(Peer::Raw(conn), HubInput::Msg { msg, ack: None }, now, out);
    }
}

impl App for Pester {
    type Msg = PesterMsg;

    /// On the sid's owner, before the `101`: an upgrade for a sid that is unknown (never
    /// issued, or closed) gets the raw 400 instead (PST-43).
    fn accept(
        &mut self,
        _conn: ConnId,
        req: &Request,
        _now: Millis,
        _headers: &mut Vec<(String, String)>,
    ) -> Result<(), Response> {
        match req.query_param("sid") {
            Some(sid) if is_engine_path(&req.path) && !self.engine.knows(&sid) => {
                Err(upgrade_refusal(ErrorCode::SessionIdUnknown))
            }
            _ => Ok(()),
        }
    }

    fn handle(&mut self, event: Event<'_, PesterMsg>, now: Millis, out: &mut Outbox<PesterMsg>) {
        match event {
            Event::Opened { conn, req } => {
                if is_engine_path(&req.path) {
                    self.engine.ws_open(conn, req, now, out);
                } else {
                    self.raw.insert(conn, ());
                }
            }
            Event::HttpReading { conn, req } => self.engine.http_reading(conn, req, out),
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
                    self.input(Peer::Raw(conn), HubInput::Disconnect, now, out);
                } else {
                    self.engine.closed(conn, out);
                }
            }
            Event::Remote(PesterMsg::Hub(peer, input)) => self.hub_handle(peer, input, now, out),
            Event::Remote(PesterMsg::Deliver(batch)) => {
                for item in batch {
                    self.apply_item(item, now, out);
                }
            }
            Event::Remote(PesterMsg::Fanout { json, raw, to }) => {
                self.deliver_locals(&to, &json, &raw, out);
            }
            Event::Tick => self.engine.tick(now, out),
            Event::TurnEnd => self.engine.flush(out),
            Event::Shutdown => self.engine.shutdown(out),
        }
        self.pump(now, out);
    }
}

#[cfg(test)]
mod tests;
