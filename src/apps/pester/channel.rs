//! The channel protocol shared by both faces: users, channels, pending invites.
//!
//! Pure and face-blind: inputs are decoded [`Msg`]s from a [`Peer`], outputs are JSON
//! objects for peers ([`Out`]). One instance (on the hub reactor) holds the authoritative
//! state and records which peers and channels changed, so that the replicas on the other
//! reactors (`replica.rs`) can be kept up to date.

use super::Millis;
use crate::router::ConnId;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};

/// A pester connection: a raw WebSocket, or a Socket.IO socket (its session's reactor and
/// a socket number unique on that reactor).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Peer {
    Raw(ConnId),
    Sio { reactor: u16, id: u64 },
}

impl Peer {
    /// The reactor that holds the peer's connection.
    pub fn reactor(&self) -> usize {
        match self {
            Peer::Raw(c) => usize::from(c.reactor),
            Peer::Sio { reactor, .. } => usize::from(*reactor),
        }
    }
}

/// A decoded client message. String fields are `Some` when the JSON value is a string
/// (possibly empty); the handlers apply the spec's tests.
#[derive(Clone, Debug, PartialEq)]
pub enum Msg {
    InvalidJson,
    /// Any other `type`, as the error text shows it.
    Unknown(String),
    Register(Option<String>),
    OpenChannel(Option<String>),
    Message {
        channel: Option<String>,
        text: Option<String>,
    },
    Typing(Option<String>),
    CloseChannel(Option<String>),
}

impl Msg {
    /// Whether the message only reads state (membership, the sender's id) and never
    /// changes it: the sender's own reactor can answer it from its [`super::replica`].
    pub fn is_data(&self) -> bool {
        matches!(
            self,
            Msg::InvalidJson | Msg::Unknown(_) | Msg::Message { .. } | Msg::Typing(_)
        )
    }
}

/// A raw-face frame (text, or binary read as lossy UTF-8).
pub fn decode_raw(text: &str) -> Msg {
    match serde_json::from_str::<Value>(text) {
        Ok(v) => decode_value(Some(&v)),
        Err(_) => Msg::InvalidJson,
    }
}

/// The first argument of a Socket.IO `message` event (`None`: absent). A string is parsed
/// as JSON text first.
pub fn decode_sio_arg(arg: Option<&Value>) -> Msg {
    match arg {
        Some(Value::String(s)) => decode_raw(s),
        other => decode_value(other),
    }
}

fn decode_value(v: Option<&Value>) -> Msg {
    let Some(Value::Object(o)) = v else {
        return Msg::Unknown("undefined".into());
    };
    let field = |k: &str| match o.get(k) {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    };
    match o.get("type") {
        Some(Value::String(t)) => match t.as_str() {
            "register" => Msg::Register(field("userId")),
            "open_channel" => Msg::OpenChannel(field("friendId")),
            "message" => Msg::Message {
                channel: field("channelId"),
                text: field("text"),
            },
            "typing" => Msg::Typing(field("channelId")),
            "close_channel" => Msg::CloseChannel(field("channelId")),
            other => Msg::Unknown(other.to_string()),
        },
        None => Msg::Unknown("undefined".into()),
        Some(other) => Msg::Unknown(other.to_string()),
    }
}

/// What the hub tells a peer.
#[derive(Clone, Debug, PartialEq)]
pub enum Out {
    /// One JSON object (a raw frame, or the argument of a Socket.IO `message` event).
    Json(Peer, String),
    /// The peer lost its user id to another login: close it (raw) or end its namespace.
    Kick(Peer),
    /// The Socket.IO ack for an input, after everything the input sent to its peer.
    Ack(Peer, u64),
}

impl Out {
    pub fn peer(&self) -> Peer {
        match self {
            Out::Json(p, _) | Out::Kick(p) | Out::Ack(p, _) => *p,
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_user_id_bytes: usize,
    pub max_channels_per_user: usize,
    pub max_pending_invites_per_user: usize,
}

#[derive(Debug)]
struct Invite {
    channel: String,
    from: String,
    ts: Millis,
}

pub struct Channels {
    limits: Limits,
    users: HashMap<String, Peer>,
    peers: HashMap<Peer, String>,
    /// Channel → member user ids, in join order.
    channels: HashMap<String, Vec<String>>,
    /// User → channels, in join order.
    joined: HashMap<String, Vec<String>>,
    /// Invitee → pending invites, oldest first.
    invites: HashMap<String, VecDeque<Invite>>,
    /// Peers whose user id and channels whose members changed since the last
    /// [`Channels::take_touched`] (the replicas to update).
    touched_peers: Vec<Peer>,
    touched_chans: Vec<String>,
}

fn q(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serializes")
}

pub(super) fn error(message: &str) -> String {
    format!(r#"{{"type":"error","message":{}}}"#, q(message))
}

/// `chat_` + both ids in UTF-16 order, joined with `_`.
pub fn channel_id(a: &str, b: &str) -> String {
    let (lo, hi) = if a.encode_utf16().cmp(b.encode_utf16()).is_le() {
        (a, b)
    } else {
        (b, a)
    };
    format!("chat_{lo}_{hi}")
}

impl Channels {
    pub fn new(limits: Limits) -> Channels {
        Channels {
            limits,
            users: HashMap::new(),
            peers: HashMap::new(),
            channels: HashMap::new(),
            joined: HashMap::new(),
            invites: HashMap::new(),
            touched_peers: Vec::new(),
            touched_chans: Vec::new(),
        }
    }

    /// The user id `peer` is registered as.
    pub fn user_of(&self, peer: &Peer) -> Option<&str> {
        self.peers.get(peer).map(String::as_str)
    }

    /// The members of `ch` in join order, with their connections.
    pub fn members(&self, ch: &str) -> Vec<(String, Peer)> {
        self.channels
            .get(ch)
            .into_iter()
            .flatten()
            .filter_map(|u| Some((u.clone(), *self.users.get(u)?)))
            .collect()
    }

    /// The peers and channels changed since the last call (each at most once).
    pub fn take_touched(&mut self) -> (Vec<Peer>, Vec<String>) {
        let mut peers = std::mem::take(&mut self.touched_peers);
        let mut chans = std::mem::take(&mut self.touched_chans);
        dedup(&mut peers);
        dedup(&mut chans);
        (peers, chans)
    }

    /// Whether `user` is registered now.
    pub fn online(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }

    pub fn handle(
        &mut self,
        from: Peer,
        msg: Msg,
        ack: Option<u64>,
        now: Millis,
        out: &mut Vec<Out>,
    ) {
        match msg {
            Msg::InvalidJson => out.push(Out::Json(from, error("Invalid JSON"))),
            Msg::Unknown(t) => out.push(Out::Json(
                from,
                error(&format!("Unknown message type: {t}")),
            )),
            Msg::Register(id) => self.register(from, id, now, out),
            Msg::OpenChannel(friend) => self.open_channel(from, friend, now, out),
            Msg::Message { channel, text } => self.message(from, channel, text, now, out),
            Msg::Typing(channel) => self.typing(from, channel, now, out),
            Msg::CloseChannel(channel) => self.close_channel(from, channel, now, out),
        }
        if let Some(id) = ack {
            out.push(Out::Ack(from, id));
        }
    }

    /// A Socket.IO event that is not `message` but wants an ack.
    pub fn ack_only(&self, from: Peer, id: u64, out: &mut Vec<Out>) {
        out.push(Out::Ack(from, id));
    }

    /// The connection ended: if it still holds its user id, the user goes offline.
    pub fn disconnect(&mut self, peer: Peer, now: Millis, out: &mut Vec<Out>) {
        if let Some(user) = self.peers.remove(&peer) {
            self.touched_peers.push(peer);
            self.users.remove(&user);
            self.leave_all(&user, now, out);
        }
    }

    fn register(&mut self, c: Peer, id: Option<String>, now: Millis, out: &mut Vec<Out>) {
        let Some(id) = id.filter(|s| !s.is_empty()) else {
            return out.push(Out::Json(c, error("userId is required")));
        };
        if id.len() > self.limits.max_user_id_bytes {
            return out.push(Out::Json(c, error("Limit exceeded: max_user_id_bytes")));
        }
        let registered = format!(
            r#"{{"type":"registered","userId":{},"timestamp":{now}}}"#,
            q(&id)
        );
        if self.peers.get(&c) == Some(&id) {
            return out.push(Out::Json(c, registered));
        }
        self.touched_peers.push(c);
        if let Some(old) = self.peers.remove(&c) {
            self.users.remove(&old);
            self.leave_all(&old, now, out);
        }
        if let Some(d) = self.users.remove(&id) {
            self.peers.remove(&d);
            self.touched_peers.push(d);
            out.push(Out::Json(
                d,
                r#"{"type":"kicked","message":"Logged in from another client"}"#.into(),
            ));
            out.push(Out::Kick(d));
            self.leave_all(&id, now, out);
        }
        self.users.insert(id.clone(), c);
        self.peers.insert(c, id.clone());
        out.push(Out::Json(c, registered));
        for inv in self.invites.remove(&id).unwrap_or_default() {
            out.push(Out::Json(c, invite_json(&inv.channel, &inv.from, inv.ts)));
            self.join(&inv.channel, &id);
        }
    }

    fn open_channel(&mut self, c: Peer, friend: Option<String>, now: Millis, out: &mut Vec<Out>) {
        let Some(me) = self.peers.get(&c).cloned() else {
            return out.push(Out::Json(c, error("Register first")));
        };
        let Some(friend) = friend
            .filter(|f| !f.is_empty() && *f != me && f.len() <= self.limits.max_user_id_bytes)
        else {
            return out.push(Out::Json(c, error("Invalid friendId")));
        };
        let ch = channel_id(&me, &friend);
        let member = self.is_member(&ch, &me);
        let count = self.joined.get(&me).map_or(0, Vec::len);
        if !member && count >= self.limits.max_channels_per_user {
            return out.push(Out::Json(c, error("Limit exceeded: max_channels_per_user")));
        }
        self.join(&ch, &me);
        let friend_peer = self.users.get(&friend).copied();
        out.push(Out::Json(
            c,
            format!(
                r#"{{"type":"channel_opened","channelId":{},"friendId":{},"friendOnline":{},"timestamp":{now}}}"#,
                q(&ch),
                q(&friend),
                friend_peer.is_some()
            ),
        ));
        match friend_peer {
            Some(fp) => {
                self.join(&ch, &friend);
                out.push(Out::Json(fp, invite_json(&ch, &me, now)));
            }
            None => {
                let max = self.limits.max_pending_invites_per_user;
                let list = self.invites.entry(friend).or_default();
                if !list.iter().any(|i| i.channel == ch) {
                    list.push_back(Invite {
                        channel: ch,
                        from: me,
                        ts: now,
                    });
                    while list.len() > max {
                        list.pop_front();
                    }
                }
            }
        }
    }

    fn message(
        &mut self,
        c: Peer,
        channel: Option<String>,
        text: Option<String>,
        now: Millis,
        out: &mut Vec<Out>,
    ) {
        let Some(me) = self.peers.get(&c) else {
            return out.push(Out::Json(c, error("Register first")));
        };
        let (Some(ch), Some(text)) = (
            channel.filter(|s| !s.is_empty()),
            text.filter(|s| !s.is_empty()),
        ) else {
            return;
        };
        if !self.is_member(&ch, me) {
            return out.push(Out::Json(c, error("Not in this channel")));
        }
        let json = message_json(&ch, me, &text, now);
        self.to_others(&ch, me, &json, out);
    }

    fn typing(&mut self, c: Peer, channel: Option<String>, now: Millis, out: &mut Vec<Out>) {
        let (Some(me), Some(ch)) = (self.peers.get(&c), channel) else {
            return;
        };
        if ch.is_empty() || !self.is_member(&ch, me) {
            return;
        }
        let json = typing_json(&ch, me, now);
        self.to_others(&ch, me, &json, out);
    }

    fn close_channel(&mut self, c: Peer, channel: Option<String>, now: Millis, out: &mut Vec<Out>) {
        let (Some(me), Some(ch)) = (self.peers.get(&c).cloned(), channel) else {
            return;
        };
        if self.is_member(&ch, &me) {
            if let Some(list) = self.joined.get_mut(&me) {
                list.retain(|x| *x != ch);
            }
            self.leave(&ch, &me, now, out);
        }
        out.push(Out::Json(
            c,
            format!(
                r#"{{"type":"channel_closed","channelId":{},"timestamp":{now}}}"#,
                q(&ch)
            ),
        ));
    }

    fn is_member(&self, ch: &str, user: &str) -> bool {
        self.channels
            .get(ch)
            .is_some_and(|m| m.iter().any(|u| u == user))
    }

    fn join(&mut self, ch: &str, user: &str) {
        let members = self.channels.entry(ch.to_string()).or_default();
        if !members.iter().any(|u| u == user) {
            members.push(user.to_string());
            self.touched_chans.push(ch.to_string());
            self.joined
                .entry(user.to_string())
                .or_default()
                .push(ch.to_string());
        }
    }

    fn to_others(&self, ch: &str, me: &str, json: &str, out: &mut Vec<Out>) {
        for u in self.channels.get(ch).into_iter().flatten() {
            if u != me
                && let Some(&p) = self.users.get(u)
            {
                out.push(Out::Json(p, json.to_string()));
            }
        }
    }

    /// `user` leaves every channel (the caller has already unregistered it).
    fn leave_all(&mut self, user: &str, now: Millis, out: &mut Vec<Out>) {
        for ch in self.joined.remove(user).unwrap_or_default() {
            self.leave(&ch, user, now, out);
        }
    }

    /// Removes `user` from `ch` (not from `joined`), tells the rest, drops the invites it
    /// sent there, and deletes the channel when nobody is left.
    fn leave(&mut self, ch: &str, user: &str, now: Millis, out: &mut Vec<Out>) {
        let Some(members) = self.channels.get_mut(ch) else {
            return;
        };
        members.retain(|u| u != user);
        let empty = members.is_empty();
        self.touched_chans.push(ch.to_string());
        let json = format!(
            r#"{{"type":"user_left","channelId":{},"userId":{},"timestamp":{now}}}"#,
            q(ch),
            q(user)
        );
        self.to_others(ch, user, &json, out);
        if empty {
            self.channels.remove(ch);
        }
        self.invites.retain(|_, list| {
            list.retain(|i| i.channel != ch || (i.from != user && !empty));
            !list.is_empty()
        });
    }
}

pub(super) fn message_json(ch: &str, from: &str, text: &str, now: Millis) -> String {
    format!(
        r#"{{"type":"message","channelId":{},"fromUserId":{},"text":{},"timestamp":{now}}}"#,
        q(ch),
        q(from),
        q(text)
    )
}

pub(super) fn typing_json(ch: &str, user: &str, now: Millis) -> String {
    format!(
        r#"{{"type":"typing","channelId":{},"userId":{},"timestamp":{now}}}"#,
        q(ch),
        q(user)
    )
}

/// Removes repeats, keeping first occurrences in order.
fn dedup<T: PartialEq>(v: &mut Vec<T>) {
    let mut i = 0;
    while i < v.len() {
        if v[..i].contains(&v[i]) {
            v.remove(i);
        } else {
            i += 1;
        }
    }
}

fn invite_json(ch: &str, from: &str, ts: Millis) -> String {
    format!(
        r#"{{"type":"channel_invite","channelId":{},"fromUserId":{},"timestamp":{ts}}}"#,
        q(ch),
        q(from)
    )
}
