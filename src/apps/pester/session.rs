//! Engine.IO sessions and the Socket.IO layer on top: transports (polling and
//! WebSocket), the upgrade, heartbeats, and namespace `/`.
//!
//! Sessions live on the reactor that owns their sid (sids are drawn until
//! `owner_of(sid) == me`), so every request carrying `sid=` reaches this instance. Channel
//! inputs leave through [`Engine::to_hub`]; the hub's answers come back via [`Engine::deliver`].
//!
//! Polling requests may share kept-alive connections (the core keeps them open after each
//! answer). A POST is known from its head on (`Event::HttpReading`), so a second POST
//! while one body is still arriving is refused (`400`, the session closes), as is a POST
//! abandoned mid-body; the first POST, once whole, then finds the session closed
//! (`400` code 1; the original still answered it `ok`).

use super::channel::{self, Peer};
use super::engineio::{self, ErrorCode, Packet};
use super::socketio::{self, Kind};
use super::{HubInput, Millis, PesterMsg};
use crate::apps::Outbox;
use crate::frame::{self, Frame};
use crate::http::{Request, Response, Status};
use crate::router::{ConnId, owner_of};
use serde_json::Value;
use std::collections::HashMap;

/// Engine.IO and Socket.IO settings.
#[derive(Clone, Debug)]
pub struct Settings {
    pub ping_interval_ms: u64,
    pub ping_timeout_ms: u64,
    pub upgrade_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    pub max_attachments: usize,
    pub max_buffered_bytes: usize,
    pub max_payload: usize,
}

/// A keyed generator of unguessable ids (SipHash over a secret seed and a counter).
pub struct Rng {
    seed: [u64; 2],
    counter: u64,
}

impl Rng {
    pub fn new(seed: [u64; 2]) -> Rng {
        Rng { seed, counter: 0 }
    }

    fn next(&mut self) -> u64 {
        use std::hash::{Hash, Hasher};
        self.counter += 1;
        let mut h = std::hash::DefaultHasher::new();
        (self.seed, self.counter).hash(&mut h);
        h.finish()
    }

    /// 20 characters of `A–Z a–z 0–9 - _` (120 random bits).
    pub fn id(&mut self) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let (a, b) = (self.next(), self.next());
        (0..20)
            .map(|i| {
                let bits = if i < 10 {
                    a >> (6 * i)
                } else {
                    b >> (6 * (i - 10))
                };
                ALPHABET[(bits & 63) as usize] as char
            })
            .collect()
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Role {
    Ws,
    Probe,
    Held,
    /// A POST whose body is being read.
    Posting,
}

struct Probe {
    conn: ConnId,
    opened: Millis,
    probed: bool,
}

/// A binary packet waiting for its attachments.
struct Pending {
    left: usize,
    /// The event's data and ack id (`None` for a BINARY_ACK, which is ignored).
    event: Option<(Option<Value>, Option<u64>)>,
}

struct Session {
    /// The WebSocket in use, or `None` while polling.
    ws: Option<ConnId>,
    probe: Option<Probe>,
    held: Option<ConnId>,
    /// The POST whose body is being read (`Event::HttpReading`): one at a time.
    posting: Option<ConnId>,
    queue: Vec<String>,
    queued_bytes: usize,
    next_ping: Millis,
    pong_deadline: Option<Millis>,
    /// The socket on `/`, when connected.
    socket: Option<u64>,
    connect_deadline: Option<Millis>,
    pending: Option<Pending>,
}

/// Who ended a session: the server answers a held GET `1`, a client close `6`.
#[derive(Clone, Copy, PartialEq)]
enum By {
    Server,
    Client,
}

pub struct Engine {
    me: usize,
    reactors: usize,
    s: Settings,
    rng: Rng,
    sessions: HashMap<String, Session>,
    by_conn: HashMap<ConnId, (String, Role)>,
    by_socket: HashMap<u64, String>,
    next_socket: u64,
    dirty: Vec<String>,
    /// Channel inputs for the hub, in order.
    pub to_hub: Vec<(Peer, HubInput)>,
}

type Out = Outbox<PesterMsg>;

fn cors(r: Response) -> Response {
    r.with_header("Access-Control-Allow-Origin", "*")
}

/// The plain HTTP error answer (400, or 403 for Forbidden).
pub fn error_response(code: ErrorCode) -> Response {
    let status = if code == ErrorCode::Forbidden {
        Status::FORBIDDEN
    } else {
        Status::BAD_REQUEST
    };
    cors(Response {
        status,
        content_type: "application/json",
        extra_headers: Vec::new(),
        body: code.json().into_bytes(),
    })
}

pub(super) fn empty_400() -> Response {
    Response {
        status: Status::BAD_REQUEST,
        content_type: "text/html",
        extra_headers: Vec::new(),
        body: Vec::new(),
    }
}

/// `413` with an empty body: a POST over `maxPayload` (its session is closed).
pub(super) fn too_large() -> Response {
    Response {
        status: Status::PAYLOAD_TOO_LARGE,
        content_type: "text/html",
        extra_headers: Vec::new(),
        body: Vec::new(),
    }
}

pub(super) fn payload_response(body: Vec<u8>) -> Response {
    cors(Response {
        status: Status::OK,
        content_type: "text/plain; charset=UTF-8",
        extra_headers: vec![("cache-control".into(), "no-store".into())],
        body,
    })
}

pub(super) fn ok_response() -> Response {
    cors(Response {
        status: Status::OK,
        content_type: "text/html",
        extra_headers: vec![("cache-control".into(), "no-store".into())],
        body: b"ok".to_vec(),
    })
}

impl Engine {
    pub fn new(me: usize, reactors: usize, s: Settings, seed: [u64; 2]) -> Engine {
        Engine {
            me,
            reactors,
            s,
            rng: Rng::new(seed),
            sessions: HashMap::new(),
            by_conn: HashMap::new(),
            by_socket: HashMap::new(),
            next_socket: 0,
            dirty: Vec::new(),
            to_hub: Vec::new(),
        }
    }

    /// A fresh sid owned by this reactor.
    fn new_sid(&mut self) -> String {
        loop {
            let sid = self.rng.id();
            if owner_of(sid.as_bytes(), self.reactors) == self.me
                && !self.sessions.contains_key(&sid)
            {
                return sid;
            }
        }
    }

    fn create(&mut self, ws: Option<ConnId>, now: Millis) -> String {
        let sid = self.new_sid();
        self.sessions.insert(
            sid.clone(),
            Session {
                ws,
                probe: None,
                held: None,
                posting: None,
                queue: Vec::new(),
                queued_bytes: 0,
                next_ping: now + self.s.ping_interval_ms,
                pong_deadline: None,
                socket: None,
                connect_deadline: Some(now + self.s.connect_timeout_ms),
                pending: None,
            },
        );
        if let Some(c) = ws {
            self.by_conn.insert(c, (sid.clone(), Role::Ws));
        }
        sid
    }

    fn open_packet(&self, sid: &str, upgrades: bool) -> String {
        engineio::open_packet(
            sid,
            upgrades,
            self.s.ping_interval_ms,
            self.s.ping_timeout_ms,
            self.s.max_payload,
        )
    }

    /// Whether `sid` is an open session of this reactor.
    pub fn knows(&self, sid: &str) -> bool {
        self.sessions.contains_key(sid)
    }

    pub fn owns(&self, conn: ConnId) -> bool {
        self.by_conn.contains_key(&conn)
    }

    /// A POST whose body is still arriving. A second POST while the first is read (this
    /// one, or a whole one in [`Engine::http`]): `400`, and the session closes (engine.io's
    /// "data request overlap"). Every other request waits for its body.
    pub fn http_reading(&mut self, conn: ConnId, req: &Request, out: &mut Out) {
        if req.method != "POST" || req.query_param("transport").as_deref() != Some("polling") {
            return;
        }
        let Some(sid) = req.query_param("sid") else {
            return;
        };
        let Some(sess) = self.sessions.get_mut(&sid) else {
            return;
        };
        if sess.ws.is_some() {
            return;
        }
        if sess.posting.is_some() {
            out.respond(conn, empty_400());
            return self.close(&sid, By::Server, out);
        }
        sess.posting = Some(conn);
        self.by_conn.insert(conn, (sid, Role::Posting));
    }

    /// A polling request (routed here by `route`, which made the stateless checks).
    pub fn http(&mut self, conn: ConnId, req: &Request, body: &[u8], now: Millis, out: &mut Out) {
        let Some(sid) = req.query_param("sid") else {
            let sid = self.create(None, now);
            let open = self.open_packet(&sid, true);
            return out.respond(conn, payload_response(open.into_bytes()));
        };
        let Some(sess) = self.sessions.get_mut(&sid) else {
            return out.respond(conn, error_response(ErrorCode::SessionIdUnknown));
        };
        match sess.posting {
            Some(p) if p == conn => {
                sess.posting = None;
                self.by_conn.remove(&conn);
            }
            // A POST that came whole while another one's body is still being read.
            Some(_) if req.method == "POST" => {
                out.respond(conn, empty_400());
                return self.close(&sid, By::Server, out);
            }
            _ => {}
        }
        if req.query_param("transport").as_deref() != Some("polling") || sess.ws.is_some() {
            return out.respond(conn, error_response(ErrorCode::BadRequest));
        }
        match req.method.as_str() {
            "GET" => {
                if sess.held.is_some() {
                    out.respond(conn, empty_400());
                    return self.close(&sid, By::Server, out);
                }
                if !sess.queue.is_empty() {
                    let body = engineio::encode_payload(&sess.queue);
                    sess.queue.clear();
                    sess.queued_bytes = 0;
                    out.respond(conn, payload_response(body));
                } else if sess.probe.as_ref().is_some_and(|p| p.probed) {
                    out.respond(conn, payload_response(b"6".to_vec()));
                } else {
                    sess.held = Some(conn);
                    self.by_conn.insert(conn, (sid, Role::Held));
                }
            }
            "POST" if req.body_too_large => {
                out.respond(conn, too_large());
                self.close(&sid, By::Server, out);
            }
            "POST" => {
                let octet = req
                    .header("content-type")
                    .is_some_and(|t| t.trim().starts_with("application/octet-stream"));
                if octet {
                    out.respond(conn, error_response(ErrorCode::BadRequest));
                    return self.close(&sid, By::Server, out);
                }
                for packet in engineio::decode_payload(body) {
                    if !self.sessions.contains_key(&sid) {
                        break;
                    }
                    match packet {
                        Some(p) => self.packet(&sid, p, now, out),
                        None => self.close(&sid, By::Server, out),
                    }
                }
                out.respond(conn, ok_response());
            }
            _ => out.respond(conn, error_response(ErrorCode::BadRequest)),
        }
    }

    /// A WebSocket on `/socket.io/`: a new session, or a probe of a polling one.
    pub fn ws_open(&mut self, conn: ConnId, req: &Request, now: Millis, out: &mut Out) {
        let Some(sid) = req.query_param("sid") else {
            let sid = self.create(Some(conn), now);
            let open = self.open_packet(&sid, false);
            return out.send(conn, frame::text(&open));
        };
        let Some(sess) = self.sessions.get_mut(&sid) else {
            // `accept` refused unknown sids before the 101; this one closed in between.
            return out.effects.push(crate::apps::Effect::Close(conn, None));
        };
        if sess.ws.is_some() || sess.probe.is_some() {
            return out.effects.push(crate::apps::Effect::Close(conn, None));
        }
        sess.probe = Some(Probe {
            conn,
            opened: now,
            probed: false,
        });
        self.by_conn.insert(conn, (sid, Role::Probe));
    }

    pub fn ws_text(&mut self, conn: ConnId, text: &str, now: Millis, out: &mut Out) {
        let Some((sid, role)) = self.by_conn.get(&conn).cloned() else {
            return;
        };
        if role == Role::Probe {
            return self.probe_packet(&sid, conn, engineio::decode_text(text), out);
        }
        match engineio::decode_text(text) {
            Some(p) => self.packet(&sid, p, now, out),
            None => self.close(&sid, By::Server, out),
        }
    }

    pub fn ws_binary(&mut self, conn: ConnId, data: &[u8], now: Millis, out: &mut Out) {
        let Some((sid, role)) = self.by_conn.get(&conn).cloned() else {
            return;
        };
        if role == Role::Probe {
            return self.probe_packet(&sid, conn, None, out);
        }
        self.packet(&sid, Packet::Binary(data.into()), now, out);
    }

    fn probe_packet(&mut self, sid: &str, conn: ConnId, p: Option<Packet<'_>>, out: &mut Out) {
        let Some(sess) = self.sessions.get_mut(sid) else {
            return;
        };
        match p {
            Some(Packet::Ping("probe")) => {
                out.send(conn, frame::text("3probe"));
                if let Some(probe) = &mut sess.probe {
                    probe.probed = true;
                }
                if let Some(held) = sess.held.take() {
                    self.by_conn.remove(&held);
                    out.respond(held, payload_response(b"6".to_vec()));
                }
            }
            Some(Packet::Upgrade) => {
                sess.probe = None;
                sess.ws = Some(conn);
                self.by_conn.insert(conn, (sid.to_string(), Role::Ws));
                if let Some(held) = sess.held.take() {
                    self.by_conn.remove(&held);
                    out.respond(held, payload_response(b"6".to_vec()));
                }
                for p in sess.queue.drain(..) {
                    out.send(conn, frame::text(&p));
                }
                sess.queued_bytes = 0;
            }
            _ => {
                sess.probe = None;
                self.by_conn.remove(&conn);
                out.effects.push(crate::apps::Effect::Close(conn, None));
            }
        }
    }

    /// One packet on the session's current transport.
    fn packet(&mut self, sid: &str, p: Packet<'_>, now: Millis, out: &mut Out) {
        match p {
            Packet::Close => self.close(sid, By::Client, out),
            // The server pings; a client ping is an invalid heartbeat direction.
            Packet::Ping(_) => self.close(sid, By::Server, out),
            Packet::Pong(_) => {
                if let Some(sess) = self.sessions.get_mut(sid)
                    && sess.pong_deadline.take().is_some()
                {
                    sess.next_ping = now + self.s.ping_interval_ms;
                }
            }
            Packet::Message(m) => self.sio_text(sid, m, now, out),
            Packet::Binary(data) => self.sio_binary(sid, &data, now, out),
            Packet::Open | Packet::Upgrade | Packet::Noop => {}
        }
    }

    /// Queues (polling) or sends (WebSocket) one text packet.
    fn emit(&mut self, sid: &str, packet: String, out: &mut Out) {
        let Some(sess) = self.sessions.get_mut(sid) else {
            return;
        };
        if let Some(ws) = sess.ws {
            return out.send(ws, frame::text(&packet));
        }
        sess.queued_bytes += packet.len();
        sess.queue.push(packet);
        if sess.queued_bytes > self.s.max_buffered_bytes {
            return self.close(sid, By::Server, out);
        }
        if sess.held.is_some() {
            self.dirty.push(sid.to_string());
        }
    }

    fn sio_text(&mut self, sid: &str, text: &str, now: Millis, out: &mut Out) {
        let Some(sess) = self.sessions.get_mut(sid) else {
            return;
        };
        let decoded = if sess.pending.is_some() {
            None
        } else {
            socketio::decode(text)
        };
        let Some(p) = decoded else {
            return self.close(sid, By::Server, out);
        };
        match p.kind {
            Kind::Connect if p.nsp != "/" => {
                let e = socketio::invalid_namespace(p.nsp);
                self.emit(sid, format!("4{e}"), out);
            }
            Kind::Connect if sess.socket.is_some() => self.close(sid, By::Server, out),
            Kind::Connect => {
                let id = self.next_socket;
                self.next_socket += 1;
                sess.socket = Some(id);
                sess.connect_deadline = None;
                self.by_socket.insert(id, sid.to_string());
                let answer = socketio::connect(&self.rng.id());
                self.emit(sid, format!("4{answer}"), out);
            }
            _ if p.kind == Kind::ConnectError || p.nsp != "/" || sess.socket.is_none() => {
                self.close(sid, By::Server, out)
            }
            Kind::Disconnect => {
                if let Some(id) = sess.socket.take() {
                    sess.connect_deadline = Some(now + self.s.connect_timeout_ms);
                    self.by_socket.remove(&id);
                    self.to_hub.push((self.peer(id), HubInput::Disconnect));
                }
            }
            Kind::Event => self.event(sid, p.data, p.ack),
            Kind::BinaryEvent | Kind::BinaryAck if p.attachments > self.s.max_attachments => {
                self.close(sid, By::Server, out)
            }
            Kind::BinaryEvent | Kind::BinaryAck => {
                let event = (p.kind == Kind::BinaryEvent).then_some((p.data, p.ack));
                if p.attachments == 0 {
                    if let Some((data, ack)) = event {
                        self.event(sid, data, ack);
                    }
                } else {
                    sess.pending = Some(Pending {
                        left: p.attachments,
                        event,
                    });
                }
            }
            Kind::Ack | Kind::ConnectError => {}
        }
    }

    fn sio_binary(&mut self, sid: &str, _data: &[u8], now: Millis, out: &mut Out) {
        let _ = now;
        let Some(sess) = self.sessions.get_mut(sid) else {
            return;
        };
        let Some(pending) = &mut sess.pending else {
            return self.close(sid, By::Server, out);
        };
        pending.left -= 1;
        if pending.left > 0 {
            return;
        }
        // Placeholders stay in place: an object fails every string test, as a Buffer did.
        if let Some(Pending {
            event: Some((data, ack)),
            ..
        }) = sess.pending.take()
        {
            self.event(sid, data, ack);
        }
    }

    fn peer(&self, id: u64) -> Peer {
        Peer::Sio {
            reactor: self.me as u16,
            id,
        }
    }

    /// An EVENT on `/` (already validated): `message` goes to the channel protocol.
    fn event(&mut self, sid: &str, data: Option<Value>, ack: Option<u64>) {
        let Some(id) = self.sessions.get(sid).and_then(|s| s.socket) else {
            return;
        };
        let Some(Value::Array(args)) = data else {
            return;
        };
        let input = match args.first() {
            Some(Value::String(name)) if name == "message" => HubInput::Msg {
                msg: channel::decode_sio_arg(args.get(1)),
                ack,
            },
            _ => match ack {
                Some(ack) => HubInput::AckOnly(ack),
                None => return,
            },
        };
        self.to_hub.push((self.peer(id), input));
    }

    /// What the hub sends to a socket of this reactor.
    /// A fan-out's packet for socket `id`: its shared frame over WebSocket, a copy of the
    /// packet into the polling queue otherwise.
    pub fn deliver_packet(&mut self, id: u64, packet: &str, frame: &Frame, out: &mut Out) {
        let Some(sid) = self.by_socket.get(&id) else {
            return;
        };
        let Some(sess) = self.sessions.get(sid) else {
            return;
        };
        if let Some(ws) = sess.ws {
            return out.send(ws, frame.clone());
        }
        let sid = sid.clone();
        self.emit(&sid, packet.to_string(), out);
    }

    pub fn deliver(&mut self, id: u64, d: super::Delivery, now: Millis, out: &mut Out) {
        let Some(sid) = self.by_socket.get(&id).cloned() else {
            return;
        };
        match d {
            super::Delivery::Json(json) => {
                self.emit(&sid, format!("4{}", socketio::message(&json)), out)
            }
            super::Delivery::Ack(n) => self.emit(&sid, format!("4{}", socketio::ack(n)), out),
            super::Delivery::Kick => {
                self.by_socket.remove(&id);
                if let Some(sess) = self.sessions.get_mut(&sid) {
                    sess.socket = None;
                    sess.connect_deadline = Some(now + self.s.connect_timeout_ms);
                }
                self.emit(&sid, format!("4{}", socketio::DISCONNECT), out);
            }
        }
    }

    /// Ends a session: its transports, its held GET, and its Socket.IO connection.
    fn close(&mut self, sid: &str, by: By, out: &mut Out) {
        let Some(mut sess) = self.sessions.remove(sid) else {
            return;
        };
        if let Some(id) = sess.socket.take() {
            self.by_socket.remove(&id);
            self.to_hub.push((self.peer(id), HubInput::Disconnect));
        }
        if let Some(p) = sess.probe.take() {
            self.by_conn.remove(&p.conn);
            out.effects.push(crate::apps::Effect::Close(p.conn, None));
        }
        if let Some(ws) = sess.ws {
            self.by_conn.remove(&ws);
            out.effects.push(crate::apps::Effect::Close(ws, None));
        }
        if let Some(posting) = sess.posting.take() {
            // Its body is still read; it is then answered as a request for a closed session.
            self.by_conn.remove(&posting);
        }
        if let Some(held) = sess.held.take() {
            self.by_conn.remove(&held);
            let body = match by {
                By::Client => b"6".to_vec(),
                By::Server => {
                    sess.queue.push("1".into());
                    engineio::encode_payload(&sess.queue)
                }
            };
            out.respond(held, payload_response(body));
        }
    }

    /// A connection of ours went away.
    pub fn closed(&mut self, conn: ConnId, out: &mut Out) {
        let Some((sid, role)) = self.by_conn.remove(&conn) else {
            return;
        };
        match role {
            Role::Probe => {
                if let Some(s) = self.sessions.get_mut(&sid) {
                    s.probe = None;
                }
            }
            Role::Ws => {
                if let Some(s) = self.sessions.get_mut(&sid) {
                    s.ws = None;
                }
                self.close(&sid, By::Client, out);
            }
            Role::Held => {
                if let Some(s) = self.sessions.get_mut(&sid) {
                    s.held = None;
                }
                self.close(&sid, By::Client, out);
            }
            // The client left in the middle of a POST body, or it never finished (408):
            // engine.io closes the session ("data request connection closed prematurely").
            Role::Posting => {
                if let Some(s) = self.sessions.get_mut(&sid) {
                    s.posting = None;
                }
                self.close(&sid, By::Server, out);
            }
        }
    }

    /// Heartbeats, upgrade and connect timeouts.
    pub fn tick(&mut self, now: Millis, out: &mut Out) {
        let mut expired = Vec::new();
        let mut pings = Vec::new();
        for (sid, sess) in &mut self.sessions {
            if let Some(p) = &sess.probe
                && now >= p.opened + self.s.upgrade_timeout_ms
            {
                self.by_conn.remove(&p.conn);
                out.effects.push(crate::apps::Effect::Close(p.conn, None));
                sess.probe = None;
            }
            let pong_missed = sess.pong_deadline.is_some_and(|d| now >= d);
            let no_namespace = sess.connect_deadline.is_some_and(|d| now >= d);
            if pong_missed || no_namespace {
                expired.push(sid.clone());
            } else if sess.pong_deadline.is_none() && now >= sess.next_ping {
                sess.pong_deadline = Some(now + self.s.ping_timeout_ms);
                pings.push(sid.clone());
            }
        }
        for sid in expired {
            self.close(&sid, By::Server, out);
        }
        for sid in pings {
            self.emit(&sid, "2".into(), out);
        }
        self.flush(out);
    }

    /// Answers held GETs that have packets queued (at the end of a turn, so one answer
    /// carries everything the turn produced).
    pub fn flush(&mut self, out: &mut Out) {
        for sid in std::mem::take(&mut self.dirty) {
            let Some(sess) = self.sessions.get_mut(&sid) else {
                continue;
            };
            if sess.queue.is_empty() {
                continue;
            }
            if let Some(held) = sess.held.take() {
                self.by_conn.remove(&held);
                let body = engineio::encode_payload(&sess.queue);
                sess.queue.clear();
                sess.queued_bytes = 0;
                out.respond(held, payload_response(body));
            }
        }
    }

    /// The server is draining: every session ends (polling GETs get `1`).
    pub fn shutdown(&mut self, out: &mut Out) {
        let sids: Vec<String> = self.sessions.keys().cloned().collect();
        for sid in sids {
            self.close(&sid, By::Server, out);
        }
    }
}
