//! What one reactor knows of the channel state, for the hot path: the user id of each of
//! its peers and the members of each channel one of its peers belongs to. The hub keeps
//! it current with [`super::Item`]s; `message` and `typing` (and errors that need no
//! state) are answered here, on the sender's reactor, without a trip to the hub.
//!
//! A peer with inputs still at the hub is *busy*: its later inputs go to the hub too, in
//! order, so its replies never overtake each other and the replica is never read before
//! the hub's answer to the peer's own `register` or `open_channel` has arrived.

use super::Millis;
use super::channel::{Msg, Peer, error, message_json, typing_json};
use std::collections::HashMap;

/// The answer to a data message.
#[derive(Debug, PartialEq)]
pub enum Local {
    /// One JSON object for the sender.
    Reply(String),
    /// One JSON object for these peers (the other members, in join order).
    Fan {
        json: String,
        to: Vec<Peer>,
    },
    Nothing,
}

pub struct Replica {
    me: usize,
    users: HashMap<Peer, String>,
    channels: HashMap<String, Vec<(String, Peer)>>,
    /// Inputs sent to the hub and not yet answered with `Done`, per peer.
    busy: HashMap<Peer, u32>,
}

impl Replica {
    pub fn new(me: usize) -> Replica {
        Replica {
            me,
            users: HashMap::new(),
            channels: HashMap::new(),
            busy: HashMap::new(),
        }
    }

    pub fn set_user(&mut self, peer: Peer, user: Option<String>) {
        match user {
            Some(u) if peer.reactor() == self.me => {
                self.users.insert(peer, u);
            }
            _ => {
                self.users.remove(&peer);
            }
        }
    }

    /// Kept only while one of the members is a peer of this reactor.
    pub fn set_channel(&mut self, ch: String, members: Vec<(String, Peer)>) {
        if members.iter().any(|(_, p)| p.reactor() == self.me) {
            self.channels.insert(ch, members);
        } else {
            self.channels.remove(&ch);
        }
    }

    pub fn is_busy(&self, peer: &Peer) -> bool {
        self.busy.contains_key(peer)
    }

    /// An input of `peer` went to the hub.
    pub fn begin(&mut self, peer: Peer) {
        *self.busy.entry(peer).or_default() += 1;
    }

    /// The hub answered one input of `peer`.
    pub fn done(&mut self, peer: &Peer) {
        if let Some(n) = self.busy.get_mut(peer) {
            *n -= 1;
            if *n == 0 {
                self.busy.remove(peer);
            }
        }
    }

    /// `peer` is gone: answers still on their way change nothing.
    pub fn forget(&mut self, peer: &Peer) {
        self.busy.remove(peer);
    }

    /// A data message (see [`Msg::is_data`]) from an idle peer, as the hub would answer it.
    pub fn handle(&self, from: Peer, msg: &Msg, now: Millis) -> Local {
        let me = self.users.get(&from);
        match msg {
            Msg::InvalidJson => Local::Reply(error("Invalid JSON")),
            Msg::Unknown(t) => Local::Reply(error(&format!("Unknown message type: {t}"))),
            Msg::Message { channel, text } => {
                let Some(me) = me else {
                    return Local::Reply(error("Register first"));
                };
                let (Some(ch), Some(text)) = (channel, text) else {
                    return Local::Nothing;
                };
                if ch.is_empty() || text.is_empty() {
                    return Local::Nothing;
                }
                match self.others(ch, me) {
                    Some(to) => Local::Fan {
                        json: message_json(ch, me, text, now),
                        to,
                    },
                    None => Local::Reply(error("Not in this channel")),
                }
            }
            Msg::Typing(Some(ch)) if !ch.is_empty() => {
                let Some(me) = me else {
                    return Local::Nothing;
                };
                match self.others(ch, me) {
                    Some(to) => Local::Fan {
                        json: typing_json(ch, me, now),
                        to,
                    },
                    None => Local::Nothing,
                }
            }
            _ => Local::Nothing,
        }
    }

    /// The other members of `ch`, or `None` when `me` is not a member.
    fn others(&self, ch: &str, me: &str) -> Option<Vec<Peer>> {
        let members = self.channels.get(ch)?;
        if !members.iter().any(|(u, _)| u == me) {
            return None;
        }
        Some(
            members
                .iter()
                .filter(|(u, _)| u != me)
                .map(|(_, p)| *p)
                .collect(),
        )
    }
}
