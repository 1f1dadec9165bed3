//! session: JWT-authenticated chat rooms with whole-room snapshots (`session.md`).
//!
//! Before the upgrade, [`route`] verifies the token ([`jwt`]) and names the `roomId` as the
//! owner key, so every member of a room lives on one reactor and no posts are needed.
//!
//! Inputs: Opened (join), Text and Binary (chat lines), Closed (leave), TurnEnd (flush the
//! coalesced snapshots), Tick (free rooms empty for `empty_room_ttl_secs`), Shutdown.
//! Effects: snapshots (`SendLatest` when coalescing, so a slow reader holds at most one
//! unsent snapshot; plain `Send` per change otherwise, as the original) and 1008 closes.
//! Deadline: the empty-room sweep on Tick (a rejoin also checks it, so it is exact).

pub mod jwt;
pub mod snapshot;
#[cfg(test)]
mod tests;

use super::{App, Event, Millis, Outbox, Route};
use crate::config::SessionSettings;
use crate::frame;
use crate::http::{Request, Response, Status};
use crate::router::{ConnId, ConnTable};
use std::collections::{HashMap, VecDeque};

/// Session instances never talk to each other: a room lives on its owner reactor.
#[derive(Debug, PartialEq)]
pub enum SessionMsg {}

pub const ROOM_FULL: &str = "Room is full";
pub const DUPLICATE_USER: &str = "Duplicate user";

/// The 401 answer for a refused token.
pub fn unauthorized(r: jwt::Rejection) -> Response {
    Response {
        status: Status::UNAUTHORIZED,
        content_type: "text/plain; charset=utf-8",
        extra_headers: vec![("WWW-Authenticate".into(), "Bearer".into())],
        body: r.body().as_bytes().to_vec(),
    }
}

/// The token check of a request at Unix time `now` (seconds): the first `token` query
/// parameter, then [`jwt::verify`].
pub fn admit(req: &Request, s: &SessionSettings, now: u64) -> Result<jwt::Claims, jwt::Rejection> {
    let token = req
        .query_param("token")
        .filter(|t| !t.is_empty())
        .ok_or(jwt::Rejection::MissingToken)?;
    jwt::verify(&token, req.header("host"), now, s)
}

/// The answer before the upgrade. Plain HTTP gets 426; a refused token 401 (logged with
/// its reason and the peer, never the token); a good one upgrades on the room's owner.
pub fn route(req: &Request, websocket: bool, s: &SessionSettings, now: u64) -> Route {
    if !websocket {
        return Route::Respond(Response::text(Status::UPGRADE_REQUIRED, "Upgrade Required"));
    }
    match admit(req, s, now) {
        Ok(claims) => Route::Upgrade {
            owner: Some(claims.room_id.into_bytes()),
            headers: Vec::new(),
            max_message_bytes: None,
        },
        Err(r) => {
            tracing::info!(reason = r.body(), peer = ?req.client_ip, "session: token refused");
            Route::Respond(unauthorized(r))
        }
    }
}

/// Unix time in whole seconds, for [`route`] (called by the reactor, never by `handle`).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

struct Member {
    conn: ConnId,
    user: String,
    /// `user` as a JSON string, serialized once at join.
    user_json: String,
}

#[derive(Default)]
struct Room {
    /// Join order.
    members: Vec<Member>,
    /// Each accepted message as its JSON object, oldest first.
    history: VecDeque<String>,
    /// Changed in this turn, snapshot not yet sent (coalescing).
    dirty: bool,
    /// When the last member left.
    empty_since: Option<Millis>,
}

pub struct Session {
    history_size: usize,
    max_users: usize,
    max_units: usize,
    coalesce: bool,
    empty_ttl_ms: Millis,
    max_rooms: usize,
    draining: bool,
    rooms: HashMap<String, Room>,
    /// Accepted members of this reactor and their room.
    members: ConnTable<String>,
    /// Rooms changed in this turn (coalescing).
    dirty: Vec<String>,
    /// The snapshot under construction, reused.
    buf: String,
}

impl Session {
    pub fn new(s: &SessionSettings) -> Session {
        Session {
            history_size: s.history_size,
            max_users: s.max_users_per_room,
            max_units: s.max_message_units,
            coalesce: s.coalesce_snapshots,
            empty_ttl_ms: s.empty_room_ttl_secs.saturating_mul(1000),
            max_rooms: s.max_rooms,
            draining: false,
            rooms: HashMap::new(),
            members: ConnTable::new(),
            dirty: Vec::new(),
            buf: String::new(),
        }
    }

    /// Rooms held (including empty rooms that keep their history).
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    fn expired(&self, room: &Room, now: Millis) -> bool {
        room.members.is_empty()
            && room
                .empty_since
                .is_some_and(|t| now.saturating_sub(t) >= self.empty_ttl_ms)
    }

    fn join(&mut self, conn: ConnId, req: &Request, now: Millis, out: &mut Outbox<SessionMsg>) {
        let token = req.query_param("token").unwrap_or_default();
        let Some(claims) = jwt::claims_of_verified(&token) else {
            // route() refused such tokens already; a request that skipped it is a core bug.
            debug_assert!(false, "session upgrade without a verified token");
            return out.close(conn, 1008, "Invalid token");
        };
        if self
            .rooms
            .get(&claims.room_id)
            .is_some_and(|r| self.expired(r, now))
        {
            self.rooms.remove(&claims.room_id);
        }
        if !self.rooms.contains_key(&claims.room_id) && self.rooms.len() >= self.max_rooms {
            return out.close(conn, 1013, "Too many rooms");
        }
        let room = self.rooms.entry(claims.room_id.clone()).or_default();
        // Full is checked before duplicate (faithful); a rejected join changes nothing.
        if room.members.len() >= self.max_users {
            return out.close(conn, 1008, ROOM_FULL);
        }
        if room.members.iter().any(|m| m.user == claims.user_id) {
            return out.close(conn, 1008, DUPLICATE_USER);
        }
        room.members.push(Member {
            conn,
            user_json: snapshot::json_string(&claims.user_id),
            user: claims.user_id,
        });
        room.empty_since = None;
        self.members.insert(conn, claims.room_id.clone());
        self.changed(claims.room_id, out);
    }

    fn message(&mut self, conn: ConnId, text: &str, now: Millis, out: &mut Outbox<SessionMsg>) {
        let Some(room_id) = self.members.get(conn) else {
            return;
        };
        let units: usize = text.chars().map(char::len_utf16).sum();
        if units > self.max_units {
            return; // dropped silently (faithful)
        }
        let room = self
            .rooms
            .get_mut(room_id)
            .expect("a member's room exists while it has members");
        let user_json = &room
            .members
            .iter()
            .find(|m| m.conn == conn)
            .expect("a member is listed in its room")
            .user_json;
        room.history
            .push_back(snapshot::message_json(user_json, text, now));
        while room.history.len() > self.history_size {
            room.history.pop_front();
        }
        let room_id = room_id.clone();
        self.changed(room_id, out);
    }

    fn leave(&mut self, conn: ConnId, now: Millis, out: &mut Outbox<SessionMsg>) {
        let Some(room_id) = self.members.remove(conn) else {
            return; // rejected or unknown: no snapshot
        };
        let room = self
            .rooms
            .get_mut(&room_id)
            .expect("a member's room exists while it has members");
        room.members.retain(|m| m.conn != conn);
        if room.members.is_empty() {
            room.empty_since = Some(now);
        }
        self.changed(room_id, out);
    }

    /// A change: mark the room for the end of the turn, or publish now.
    fn changed(&mut self, room_id: String, out: &mut Outbox<SessionMsg>) {
        if self.draining {
            return;
        }
        if !self.coalesce {
            return self.publish(&room_id, out);
        }
        let room = self.rooms.get_mut(&room_id).expect("changed rooms exist");
        if !room.dirty {
            room.dirty = true;
            self.dirty.push(room_id);
        }
    }

    /// One serialization, the same frame to every current member.
    fn publish(&mut self, room_id: &str, out: &mut Outbox<SessionMsg>) {
        let Some(room) = self.rooms.get_mut(room_id) else {
            return;
        };
        room.dirty = false;
        if room.members.is_empty() {
            return;
        }
        snapshot::write(
            &mut self.buf,
            room.history.iter().map(String::as_str),
            room.members.iter().map(|m| m.user_json.as_str()),
        );
        let f = frame::text(&self.buf);
        let members = room.members.iter().map(|m| m.conn);
        if self.coalesce {
            members.for_each(|to| out.send_latest(to, f.clone()));
        } else {
            out.fan_out(f, members);
        }
    }

    fn turn_end(&mut self, out: &mut Outbox<SessionMsg>) {
        let mut dirty = std::mem::take(&mut self.dirty);
        for room_id in dirty.drain(..) {
            self.publish(&room_id, out);
        }
        self.dirty = dirty;
    }

    fn sweep(&mut self, now: Millis) {
        let ttl = self.empty_ttl_ms;
        self.rooms.retain(|_, r| {
            !(r.members.is_empty() && r.empty_since.is_some_and(|t| now.saturating_sub(t) >= ttl))
        });
    }
}

impl App for Session {
    type Msg = SessionMsg;

    /// `max_rooms`: a token for a new room while the owner already holds `max_rooms` rooms
    /// gets `503` before the upgrade (the count is per owner reactor).
    fn accept(
        &mut self,
        _conn: ConnId,
        req: &Request,
        now: Millis,
        _headers: &mut Vec<(String, String)>,
    ) -> Result<(), Response> {
        let token = req.query_param("token").unwrap_or_default();
        let Some(claims) = jwt::claims_of_verified(&token) else {
            return Ok(());
        };
        let stale = self
            .rooms
            .get(&claims.room_id)
            .is_some_and(|r| self.expired(r, now));
        let new_room = stale || !self.rooms.contains_key(&claims.room_id);
        let live = self.rooms.len() - usize::from(stale);
        if new_room && live >= self.max_rooms {
            return Err(Response::status(Status::SERVICE_UNAVAILABLE));
        }
        Ok(())
    }

    fn handle(&mut self, event: Event<'_, SessionMsg>, now: Millis, out: &mut Outbox<SessionMsg>) {
        match event {
            Event::Opened { conn, req } => self.join(conn, req, now, out),
            Event::Text { conn, text } => self.message(conn, text, now, out),
            Event::Binary { conn, data } => {
                self.message(conn, &String::from_utf8_lossy(data), now, out)
            }
            Event::Closed { conn } => self.leave(conn, now, out),
            Event::TurnEnd => self.turn_end(out),
            Event::Tick => self.sweep(now),
            Event::Shutdown => self.draining = true,
            Event::Remote(m) => match m {},
            Event::HttpReading { .. } => {}
            Event::Http { conn, .. } => out.respond(
                conn,
                Response::text(Status::UPGRADE_REQUIRED, "Upgrade Required"),
            ),
        }
    }
}
