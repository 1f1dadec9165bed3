//! rooms: Pact-style rooms (profiles, subscriptions, chat, polls, counters, admin), as
//! `shared/protocols/rooms.md` specifies.
//!
//! Inputs: `accept` (on the owner reactor, before the `101`: per-room cap, user id and
//! the session cookie), Opened, Text, Binary (ignored), Closed, Http (`/details`,
//! `/users`), Tick (server pings every `ping_interval_ms`, idle unload), Shutdown (flush
//! the store). Effects: Send, Close, Respond. No posts: every connection and request of a
//! room is handed to the room's owner reactor ([`owner_key`]), so a room is one
//! single-threaded state machine, like the Durable Object it replaces.
//!
//! Durable state goes out as row ops through a [`store::Sink`] that never blocks; see
//! `store.rs` for the thread, the batching and why everything is loaded at startup.

pub mod decimal;
mod handlers;
pub mod state;
pub mod store;
pub mod wire;

use super::{App, Event, Millis, Outbox, Route};
use crate::config::RoomsConfig;
use crate::frame::{self, Frame};
use crate::http::{Request, Response, Status};
use crate::router::{ConnId, ConnTable};
use sha2::Digest;
use state::{Conn, Counter, Poll, Room, User};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Rooms instances never post to each other.
#[derive(Debug, PartialEq)]
pub enum RoomsMsg {}

pub const TEXT_PLAIN: &str = "text/plain;charset=UTF-8";
const NOT_FOUND: &str = "Oh, the sadness! This route does not exist.";

/// The key whose owner reactor holds a room.
pub fn owner_key(room: &str) -> Vec<u8> {
    let mut k = b"rooms:".to_vec();
    k.extend_from_slice(room.as_bytes());
    k
}

/// The room a request names: first `room` parameter, form-decoded; empty → `default`.
pub fn room_name(req: &Request) -> String {
    req.query_param("room")
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "default".into())
}

fn plain(status: Status, body: &str) -> Response {
    Response {
        status,
        content_type: TEXT_PLAIN,
        extra_headers: Vec::new(),
        body: body.as_bytes().to_vec(),
    }
}

fn page(path: &str) -> Response {
    let body = format!(
        "<!doctype html><meta charset=utf-8><title>switchboard rooms</title>\
         <h1>switchboard rooms: {path}</h1>\
         <p>Connect a WebSocket to <code>/websocket?room=NAME</code>; \
         see <code>/details?room=NAME</code> and <code>/users?room=NAME</code>.</p>\n"
    );
    Response {
        status: Status::OK,
        content_type: "text/html; charset=utf-8",
        extra_headers: Vec::new(),
        body: body.into_bytes(),
    }
}

/// The answer before the upgrade (on the accepting reactor).
pub fn route(req: &Request, websocket: bool, cfg: &RoomsConfig) -> Route {
    let path = req.path.as_str();
    let takes_room = matches!(path, "/websocket" | "/details" | "/users");
    if takes_room && room_name(req).len() > cfg.max_room_name_bytes {
        return Route::Respond(plain(Status::BAD_REQUEST, "room name too long"));
    }
    match path {
        "/websocket" if websocket => Route::Upgrade {
            owner: Some(owner_key(&room_name(req))),
            headers: Vec::new(),
            max_message_bytes: None,
        },
        "/websocket" => Route::Respond(plain(Status::BAD_REQUEST, "expected websocket")),
        "/details" | "/users" => Route::Http {
            owner: Some(owner_key(&room_name(req))),
            max_body: None,
        },
        "/" | "/livemap" | "/chat" | "/poll" | "/ephemeral" => Route::Respond(page(path)),
        _ => Route::Respond(plain(Status::NOT_FOUND, NOT_FOUND)),
    }
}

/// A CSPRNG for user ids: SHA-256 of a secret seed and a counter.
struct Ids {
    seed: [u8; 32],
    n: u64,
}

impl Ids {
    fn uuid_v4(&mut self) -> String {
        let mut h = sha2::Sha256::new();
        h.update(self.seed);
        h.update(self.n.to_le_bytes());
        self.n += 1;
        let d = h.finalize();
        let mut b = [0u8; 16];
        b.copy_from_slice(&d[..16]);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let x = state::hex(&b);
        format!(
            "{}-{}-{}-{}-{}",
            &x[..8],
            &x[8..12],
            &x[12..16],
            &x[16..20],
            &x[20..]
        )
    }
}

/// A session id is usable if it is 1–128 bytes of `0x21`–`0x7E`.
fn usable_session(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// `?session=`, else the room's session cookie; unusable ids count as absent.
pub fn session_id(req: &Request, room_id: &str) -> Option<String> {
    if let Some(s) = req.query_param("session").filter(|s| !s.is_empty()) {
        return usable_session(&s).then_some(s);
    }
    let name = format!("{room_id}_session");
    let value = req
        .headers
        .iter()
        .filter(|(n, _)| n == "cookie")
        .flat_map(|(_, v)| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| k.trim() == name)
        .map(|(_, v)| crate::http::percent_decode(v.trim(), false))?;
    usable_session(&value).then_some(value)
}

pub struct Rooms {
    cfg: RoomsConfig,
    rooms: HashMap<Arc<str>, Room>,
    conns: ConnTable<Conn>,
    /// User ids chosen in `accept`, picked up by Opened.
    pending: HashMap<ConnId, String>,
    /// (deadline, connection), in deadline order: every connection has the same period.
    pings: VecDeque<(Millis, ConnId)>,
    sink: Box<dyn store::Sink>,
    /// The row changes of the event being handled, pushed as one group at its end.
    ops: Vec<store::Op>,
    ids: Ids,
    signing_key: Option<String>,
}

impl Rooms {
    /// An instance holding the rooms `loaded` from the store (those this reactor owns).
    pub fn new(
        cfg: &RoomsConfig,
        loaded: HashMap<String, store::Loaded>,
        sink: Box<dyn store::Sink>,
        seed: [u8; 32],
    ) -> Rooms {
        let mut rooms = HashMap::new();
        for (name, l) in loaded {
            let name: Arc<str> = name.into();
            rooms.insert(name.clone(), room_from_store(name, l));
        }
        Rooms {
            signing_key: cfg
                .admin_signing_key
                .as_ref()
                .map(|k| String::from_utf8_lossy(k.bytes()).into_owned())
                .filter(|k| !k.is_empty()),
            cfg: cfg.clone(),
            rooms,
            conns: ConnTable::new(),
            pending: HashMap::new(),
            pings: VecDeque::new(),
            sink,
            ops: Vec::new(),
            ids: Ids { seed, n: 0 },
        }
    }

    /// The room named `name`, loaded (activated) at `now` if it was not.
    fn room(&mut self, name: &str, now: Millis) -> &mut Room {
        let room = self
            .rooms
            .entry(name.into())
            .or_insert_with(|| Room::new(name.into()));
        if room.bootup.is_none() {
            room.activate(now);
            room.empty_since = now;
        }
        room
    }

    /// On the owner reactor just before the `101`: the per-room cap, then the user id and
    /// the headers of the answer.
    pub fn accept(
        &mut self,
        conn: ConnId,
        req: &Request,
        now: Millis,
        headers: &mut Vec<(String, String)>,
    ) -> Result<(), Response> {
        let name = room_name(req);
        let max = self.cfg.max_connections_per_room;
        let room = self.room(&name, now);
        if room.conns.len() >= max {
            return Err(plain(
                Status::SERVICE_UNAVAILABLE,
                "Too many connections in this room",
            ));
        }
        let room_id = room.id.clone();
        let user = session_id(req, &room_id).unwrap_or_else(|| self.ids.uuid_v4());
        headers.push((
            "Set-Cookie".into(),
            format!(
                "{room_id}_session={}; SameSite=None; Secure",
                wire::uri_component(&user)
            ),
        ));
        headers.push(("X-Session-Id".into(), user.clone()));
        if !self.cfg.server_header.is_empty() {
            headers.push(("X-Socket-Server".into(), self.cfg.server_header.clone()));
        }
        self.pending.insert(conn, user);
        Ok(())
    }

    /// Notes a row change of the current event (see [`App::handle`]).
    fn push(&mut self, op: store::Op) {
        self.ops.push(op);
    }

    /// Queues `f` for `to` and notes the time for `/users`.
    fn send(&mut self, to: ConnId, f: Frame, now: Millis, out: &mut Outbox<RoomsMsg>) {
        if let Some(c) = self.conns.get_mut(to) {
            c.last_comm = now;
        }
        out.send(to, f);
    }

    fn send_text(&mut self, to: ConnId, text: &str, now: Millis, out: &mut Outbox<RoomsMsg>) {
        self.send(to, frame::text(text), now, out);
    }

    fn opened(&mut self, conn: ConnId, req: &Request, now: Millis, out: &mut Outbox<RoomsMsg>) {
        let name = room_name(req);
        let user_id = match self.pending.remove(&conn) {
            Some(u) => u,
            None => {
                let room_id = self.room(&name, now).id.clone();
                session_id(req, &room_id).unwrap_or_else(|| self.ids.uuid_v4())
            }
        };
        let ip = req
            .client_ip
            .map_or_else(|| "unknown".to_string(), |ip| ip.to_canonical().to_string());
        let room = self.room(&name, now);
        room.increment += 1;
        room.since_restart += 1;
        let (increment, seq) = (room.increment, room.next_user_seq);
        let user = room.users.entry(user_id.clone()).or_insert_with(|| User {
            suffix: increment,
            props: Vec::new(),
            last_seen: now,
            conns: 0,
            seq,
        });
        if user.seq == seq {
            room.next_user_seq += 1;
        }
        user.conns += 1;
        user.last_seen = now;
        let user_op = store::Op::User {
            room: room.name.clone(),
            id: user_id.clone(),
            suffix: user.suffix,
            props: user.props_json(false),
            last_seen: now,
        };
        room.conns.push(conn);
        let room_name = room.name.clone();
        let config = wire::typed("config", &wire::json_str(&room.config));
        self.push(store::Op::Increment {
            room: room_name.clone(),
            value: increment,
        });
        self.push(user_op);
        let next_ping = now + self.cfg.ping_interval_ms;
        self.conns.insert(
            conn,
            Conn {
                room: room_name,
                user: user_id,
                ip,
                admin: false,
                subs: Vec::new(),
                relays: 0,
                last_comm: now,
                next_ping,
            },
        );
        self.pings.push_back((next_ping, conn));
        self.send_text(conn, &config, now, out);
        let profile = self.profile_frame(conn);
        self.send_text(conn, &profile, now, out);
    }

    /// `{"type":"profile","data":<private details>}`.
    fn profile_frame(&self, conn: ConnId) -> String {
        wire::typed("profile", &self.private_details(conn))
    }

    /// `{"suffix":…,"properties":{…all…},"id":…,"connectionDetails":{"ip":…},"role":…}`.
    fn private_details(&self, conn: ConnId) -> String {
        let Some(c) = self.conns.get(conn) else {
            return "null".into();
        };
        let Some(u) = self.rooms.get(&c.room).and_then(|r| r.users.get(&c.user)) else {
            return "null".into();
        };
        format!(
            "{{\"suffix\":{},\"properties\":{},\"id\":{},\"connectionDetails\":{{\"ip\":{}}},\"role\":\"{}\"}}",
            u.suffix,
            u.props_json(false),
            wire::json_str(&c.user),
            wire::json_str(&c.ip),
            if c.admin { "admin" } else { "user" }
        )
    }

    fn closed(&mut self, conn: ConnId, now: Millis, out: &mut Outbox<RoomsMsg>) {
        self.pending.remove(&conn);
        let Some(c) = self.conns.remove(conn) else {
            return;
        };
        let Some(room) = self.rooms.get_mut(&c.room) else {
            return;
        };
        room.conns.retain(|&x| x != conn);
        if room.conns.is_empty() {
            room.empty_since = now;
        }
        for (kind, id) in &c.subs {
            room.remove_sub(conn, kind, id);
        }
        room.relays.retain(|(x, _)| *x != conn);
        let mut frames = Vec::new();
        let mut user_op = None;
        if let Some(u) = room.users.get_mut(&c.user) {
            u.conns -= 1;
            u.last_seen = now;
            user_op = Some(store::Op::User {
                room: room.name.clone(),
                id: c.user.clone(),
                suffix: u.suffix,
                props: u.props_json(false),
                last_seen: now,
            });
            if u.conns == 0 {
                let ids: Vec<String> = room
                    .ephemeral
                    .js_ids()
                    .into_iter()
                    .map(String::from)
                    .collect();
                for id in ids {
                    let Some(p) = room.ephemeral.map.get_mut(&id) else {
                        continue;
                    };
                    if p.unvote(&c.user).is_some() {
                        frames.push((id.clone(), p.frame("ephemeralPoll", &id)));
                    }
                }
            }
        }
        let mut sends = Vec::new();
        for (id, f) in frames {
            room.subscribers("ephemeralPoll", &id, |to| sends.push((to, f.clone())));
        }
        if let Some(op) = user_op {
            self.push(op);
        }
        for (to, f) in sends {
            self.send(to, f, now, out);
        }
    }

    fn tick(&mut self, now: Millis, out: &mut Outbox<RoomsMsg>) {
        let mut ping: Option<Frame> = None;
        while let Some(&(due, conn)) = self.pings.front() {
            if due > now {
                break;
            }
            self.pings.pop_front();
            let Some(c) = self.conns.get_mut(conn) else {
                continue;
            };
            if c.next_ping != due {
                continue;
            }
            let next = due + self.cfg.ping_interval_ms;
            c.next_ping = next;
            self.pings.push_back((next, conn));
            let f = ping
                .get_or_insert_with(|| {
                    frame::text(&format!("{{\"type\":\"ping\",\"data\":{now}}}"))
                })
                .clone();
            self.send(conn, f, now, out);
        }
        let idle = self.cfg.room_idle_unload_secs.saturating_mul(1000);
        self.rooms.retain(|_, r| {
            if r.bootup.is_none() || !r.conns.is_empty() || now - r.empty_since < idle {
                return true;
            }
            r.deactivate();
            r.persisted_anything()
        });
    }

    fn http(&mut self, conn: ConnId, req: &Request, now: Millis, out: &mut Outbox<RoomsMsg>) {
        let name = room_name(req);
        let body = match req.path.as_str() {
            "/details" => self.details(&name, now),
            "/users" => self.users(&name, now),
            _ => return out.respond(conn, plain(Status::NOT_FOUND, NOT_FOUND)),
        };
        out.respond(conn, plain(Status::OK, &body));
    }

    fn details(&mut self, name: &str, now: Millis) -> String {
        self.room(name, now);
        let room = &self.rooms[name];
        let mut users: Vec<&str> = Vec::new();
        for &c in &room.conns {
            if let Some(x) = self.conns.get(c)
                && !users.contains(&x.user.as_str())
            {
                users.push(x.user.as_str());
            }
        }
        let unique = users.len();
        let bootup = room.bootup.unwrap_or(now);
        format!(
            "{{\"id\":\"{}\",\"name\":{},\"count\":{},\"uniqueCount\":{},\"increment\":{},\"incrementSinceRestart\":{},\"pollCount\":{},\"config\":{},\"ephemeralPollCount\":{},\"bootupTime\":{},\"uptime\":{}}}",
            room.id,
            wire::json_str(&room.name),
            room.conns.len(),
            unique,
            room.increment,
            room.since_restart,
            room.polls.len(),
            wire::json_str(&room.config),
            room.ephemeral.len(),
            bootup,
            now.saturating_sub(bootup)
        )
    }

    fn users(&mut self, name: &str, now: Millis) -> String {
        self.room(name, now);
        let room = &self.rooms[name];
        // User ids of open connections, in the users' creation order, then JS key order.
        let mut ids: Vec<(&str, u64)> = Vec::new();
        for &c in &room.conns {
            if let Some(x) = self.conns.get(c)
                && !ids.iter().any(|(u, _)| *u == x.user)
                && let Some(u) = room.users.get(&x.user)
            {
                ids.push((x.user.as_str(), u.seq));
            }
        }
        ids.sort_by_key(|&(_, seq)| seq);
        let order = wire::js_order(ids.iter().map(|(u, _)| *u));
        let mut out = format!("{{\"ts\":{now},\"users\":[");
        let mut first = true;
        for i in order {
            let uid = ids[i].0;
            let Some(u) = room.users.get(uid) else {
                continue;
            };
            for &c in &room.conns {
                let Some(x) = self.conns.get(c).filter(|x| x.user == uid) else {
                    continue;
                };
                if !first {
                    out.push(',');
                }
                first = false;
                out.push_str(&format!(
                    "{{\"suffix\":{},\"properties\":{},\"lastCommunication\":{}}}",
                    u.suffix,
                    u.props_json(true),
                    x.last_comm
                ));
            }
        }
        out.push_str("]}");
        out
    }
}

fn room_from_store(name: Arc<str>, l: store::Loaded) -> Room {
    let mut room = Room::new(name);
    room.config = l.config;
    room.increment = l.increment;
    for (id, seq, answers) in l.polls {
        let mut p = Poll::default();
        for (a, pos, voters) in answers {
            p.next_pos = p.next_pos.max(pos + 1);
            for v in &voters {
                p.votes.insert(v.clone(), a.clone());
            }
            if !voters.is_empty() {
                p.answers.push((a, voters.len() as u64, pos));
            }
        }
        room.next_poll_seq = room.next_poll_seq.max(seq + 1);
        room.polls.insert(id, p);
    }
    for (id, seq, value) in l.counters {
        if let Some(Ok(value)) = decimal::Decimal::parse(&value) {
            room.next_counter_seq = room.next_counter_seq.max(seq + 1);
            room.counters.insert(id, Counter { value, seq });
        }
    }
    for (id, suffix, props, last_seen) in l.users {
        let props = serde_json::from_str::<wire::Members<'_>>(&props)
            .map(|m| {
                m.0.into_iter()
                    .map(|(k, v)| (k, wire::minify(v.get())))
                    .collect()
            })
            .unwrap_or_default();
        let seq = room.next_user_seq;
        room.next_user_seq += 1;
        room.users.insert(
            id,
            User {
                suffix,
                props,
                last_seen,
                conns: 0,
                seq,
            },
        );
    }
    room
}

impl App for Rooms {
    type Msg = RoomsMsg;

    /// Every row change an event makes reaches the store as one group, so the store never
    /// holds half of an event.
    fn handle(&mut self, event: Event<'_, RoomsMsg>, now: Millis, out: &mut Outbox<RoomsMsg>) {
        match event {
            Event::Opened { conn, req } => self.opened(conn, req, now, out),
            Event::Text { conn, text } => self.text(conn, text, now, out),
            Event::Binary { conn, .. } => {
                if let Some(c) = self.conns.get_mut(conn) {
                    c.last_comm = now;
                }
            }
            Event::Closed { conn } => self.closed(conn, now, out),
            Event::Http { conn, req, .. } => self.http(conn, req, now, out),
            Event::Tick => self.tick(now, out),
            Event::Shutdown => self.sink.push(store::Op::Flush),
            Event::TurnEnd | Event::Remote(_) | Event::HttpReading { .. } => {}
        }
        match self.ops.len() {
            0 => {}
            // The common case keeps the buffer.
            1 => self.sink.push(self.ops.pop().expect("one op")),
            _ => self.sink.push_group(std::mem::take(&mut self.ops)),
        }
    }
}

#[cfg(test)]
mod tests;
