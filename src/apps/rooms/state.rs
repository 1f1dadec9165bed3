//! The state of one room: users, polls, counters, connections and subscriptions.
//! Plain data with small helpers; the message handling lives in `handlers.rs`.

use super::decimal::Decimal;
use super::wire;
use crate::apps::Millis;
use crate::frame::{self, Frame};
use crate::router::ConnId;
use std::collections::HashMap;
use std::sync::Arc;

/// A user record of one room.
#[derive(Debug, Clone)]
pub struct User {
    pub suffix: u64,
    /// Members in the order sent, values as minified JSON.
    pub props: Vec<(String, String)>,
    pub last_seen: Millis,
    /// Open connections of this user in the room.
    pub conns: usize,
    /// Creation order, for JS key order of user ids in `/users`.
    pub seq: u64,
}

impl User {
    pub fn props_json(&self, public: bool) -> String {
        let mut out = String::new();
        wire::push_object(
            &mut out,
            self.props
                .iter()
                .filter(|(k, _)| !public || (!k.starts_with('_') && k != "subscriptions"))
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        out
    }

    /// `{"suffix":2,"properties":{…public…}}`.
    pub fn public_json(&self) -> String {
        format!(
            "{{\"suffix\":{},\"properties\":{}}}",
            self.suffix,
            self.props_json(true)
        )
    }
}

/// A poll: answers in insertion order with their voters.
#[derive(Debug, Default)]
pub struct Poll {
    /// (answer, votes, store position)
    pub answers: Vec<(String, u64, u64)>,
    /// user id → answer
    pub votes: HashMap<String, String>,
    pub next_pos: u64,
    /// The stats frame, built once per change.
    frame: Option<Frame>,
}

/// What a vote changed, for the store.
#[derive(Debug, Default, PartialEq)]
pub struct VoteChange {
    pub gone: Option<String>,
    pub created: Option<(String, u64)>,
}

impl Poll {
    pub fn has_answer(&self, a: &str) -> bool {
        self.answers.iter().any(|(x, _, _)| x == a)
    }

    /// Removes `user`'s vote; returns the answer and whether that answer disappeared.
    pub fn unvote(&mut self, user: &str) -> Option<(String, bool)> {
        let answer = self.votes.remove(user)?;
        self.frame = None;
        let i = self.answers.iter().position(|(a, _, _)| *a == answer)?;
        self.answers[i].1 -= 1;
        let gone = self.answers[i].1 == 0;
        if gone {
            self.answers.remove(i);
        }
        Some((answer, gone))
    }

    /// Moves `user`'s vote to `answer`.
    pub fn vote(&mut self, user: &str, answer: &str) -> VoteChange {
        let mut change = VoteChange::default();
        if let Some((old, true)) = self.unvote(user) {
            change.gone = Some(old);
        }
        match self.answers.iter_mut().find(|(a, _, _)| a == answer) {
            Some(a) => a.1 += 1,
            None => {
                let pos = self.next_pos;
                self.next_pos += 1;
                self.answers.push((answer.to_string(), 1, pos));
                change.created = Some((answer.to_string(), pos));
            }
        }
        self.votes.insert(user.to_string(), answer.to_string());
        self.frame = None;
        change
    }

    /// `{"type":"<kind>","data":{"id":…,"stats":{…}}}`, cached until the next change.
    pub fn frame(&mut self, kind: &str, id: &str) -> Frame {
        if let Some(f) = &self.frame {
            return f.clone();
        }
        let mut data = String::from("{\"id\":");
        wire::push_str(&mut data, id);
        data.push_str(",\"stats\":");
        let order = wire::js_order(self.answers.iter().map(|(a, _, _)| a.as_str()));
        let counts: Vec<String> = self.answers.iter().map(|(_, n, _)| n.to_string()).collect();
        wire::push_object(
            &mut data,
            order
                .iter()
                .map(|&i| (self.answers[i].0.as_str(), counts[i].as_str())),
        );
        data.push('}');
        let f = frame::text(&wire::typed(kind, &data));
        self.frame = Some(f.clone());
        f
    }
}

/// Entries keyed by id, remembering creation order.
#[derive(Debug)]
pub struct Keyed<T> {
    pub map: HashMap<String, T>,
    pub order: Vec<String>,
}

impl<T> Default for Keyed<T> {
    fn default() -> Self {
        Keyed {
            map: HashMap::new(),
            order: Vec::new(),
        }
    }
}

impl<T> Keyed<T> {
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn insert(&mut self, id: String, v: T) {
        if self.map.insert(id.clone(), v).is_none() {
            self.order.push(id);
        }
    }

    /// Ids in JS key order.
    pub fn js_ids(&self) -> Vec<&str> {
        wire::js_order(self.order.iter().map(String::as_str))
            .into_iter()
            .map(|i| self.order[i].as_str())
            .collect()
    }
}

#[derive(Debug)]
pub struct Counter {
    pub value: Decimal,
    pub seq: u64,
}

/// Subscribers of one event type.
#[derive(Debug, Default)]
pub struct TypeSubs {
    pub all: Vec<ConnId>,
    pub by_id: HashMap<String, Vec<ConnId>>,
}

/// The room's state. The persisted part survives unloading; the rest is reset.
#[derive(Debug)]
pub struct Room {
    pub name: Arc<str>,
    /// Lowercase hex SHA-256 of the name.
    pub id: String,
    pub config: String,
    pub increment: u64,
    pub polls: Keyed<Poll>,
    pub next_poll_seq: u64,
    pub counters: Keyed<Counter>,
    pub next_counter_seq: u64,
    pub users: HashMap<String, User>,
    pub next_user_seq: u64,
    // Not persisted:
    /// When the room was loaded; `None` while unloaded.
    pub bootup: Option<Millis>,
    pub since_restart: u64,
    pub ephemeral: Keyed<Poll>,
    /// Open connections, oldest first.
    pub conns: Vec<ConnId>,
    pub subs: HashMap<String, TypeSubs>,
    /// (admin connection, message type), in registration order.
    pub relays: Vec<(ConnId, String)>,
    pub empty_since: Millis,
}

impl Room {
    pub fn new(name: Arc<str>) -> Room {
        use sha2::Digest;
        let id = hex(&sha2::Sha256::digest(name.as_bytes()));
        Room {
            name,
            id,
            config: String::new(),
            increment: 0,
            polls: Keyed::default(),
            next_poll_seq: 0,
            counters: Keyed::default(),
            next_counter_seq: 0,
            users: HashMap::new(),
            next_user_seq: 0,
            bootup: None,
            since_restart: 0,
            ephemeral: Keyed::default(),
            conns: Vec::new(),
            subs: HashMap::new(),
            relays: Vec::new(),
            empty_since: 0,
        }
    }

    /// Whether anything of this room would survive a restart.
    pub fn persisted_anything(&self) -> bool {
        self.increment > 0
            || !self.config.is_empty()
            || !self.polls.is_empty()
            || !self.counters.is_empty()
            || !self.users.is_empty()
    }

    /// Loads the room on first use.
    pub fn activate(&mut self, now: Millis) {
        if self.bootup.is_none() {
            self.bootup = Some(now);
            self.since_restart = 0;
        }
    }

    /// Drops what does not survive an unload (ephemeral polls, counters since load).
    pub fn deactivate(&mut self) {
        self.bootup = None;
        self.since_restart = 0;
        self.ephemeral = Keyed::default();
        self.subs.clear();
        self.relays.clear();
    }

    /// Connections subscribed to `kind:id` or `kind:all`, each once.
    pub fn subscribers(&self, kind: &str, id: &str, mut f: impl FnMut(ConnId)) {
        let Some(t) = self.subs.get(kind) else { return };
        for &c in &t.all {
            f(c);
        }
        if id == "all" {
            return;
        }
        if let Some(list) = t.by_id.get(id) {
            for &c in list {
                if !t.all.contains(&c) {
                    f(c);
                }
            }
        }
    }

    pub fn add_sub(&mut self, conn: ConnId, kind: &str, id: &str) {
        let t = self.subs.entry(kind.to_string()).or_default();
        let list = if id == "all" {
            &mut t.all
        } else {
            t.by_id.entry(id.to_string()).or_default()
        };
        if !list.contains(&conn) {
            list.push(conn);
        }
    }

    pub fn remove_sub(&mut self, conn: ConnId, kind: &str, id: &str) {
        let Some(t) = self.subs.get_mut(kind) else {
            return;
        };
        if id == "all" {
            t.all.retain(|&c| c != conn);
        } else if let Some(list) = t.by_id.get_mut(id) {
            list.retain(|&c| c != conn);
            if list.is_empty() {
                t.by_id.remove(id);
            }
        }
        if t.all.is_empty() && t.by_id.is_empty() {
            self.subs.remove(kind);
        }
    }
}

/// Per-connection state (on the room's owner reactor).
#[derive(Debug)]
pub struct Conn {
    pub room: Arc<str>,
    pub user: String,
    pub ip: String,
    pub admin: bool,
    /// (event type, id)
    pub subs: Vec<(String, String)>,
    pub relays: usize,
    pub last_comm: Millis,
    pub next_ping: Millis,
}

pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        use std::fmt::Write;
        let _ = write!(s, "{b:02x}");
    }
    s
}
