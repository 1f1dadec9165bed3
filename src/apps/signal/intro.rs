//! The introduction registry: peer id → (connection, document keys), and key → peers.

use super::wire::{self, KeyChange};
use crate::frame::Frame;
use crate::router::ConnId;
use std::collections::{BTreeSet, HashMap, HashSet};

struct Peer {
    conn: ConnId,
    /// In the order the peer joined them (Introductions list common keys in this order).
    keys: Vec<String>,
}

/// The key list would be longer than `max_keys_per_peer`.
#[derive(Debug, PartialEq, Eq)]
pub struct TooManyKeys;

#[derive(Default)]
pub struct Registry {
    peers: HashMap<String, Peer>,
    /// Peers holding each key, sorted so Introductions go out in a stable order.
    index: HashMap<String, BTreeSet<String>>,
}

impl Registry {
    /// Registers `conn` as `id` with no keys; returns the connection it replaces.
    pub fn register(&mut self, id: &str, conn: ConnId) -> Option<ConnId> {
        let old = self.remove(id);
        self.peers.insert(
            id.to_string(),
            Peer {
                conn,
                keys: Vec::new(),
            },
        );
        old
    }

    /// Removes `id` if it is still registered to `conn` (a replaced connection's close
    /// removes nothing).
    pub fn unregister(&mut self, id: &str, conn: ConnId) {
        if self.peers.get(id).is_some_and(|p| p.conn == conn) {
            self.remove(id);
        }
    }

    fn remove(&mut self, id: &str) -> Option<ConnId> {
        let peer = self.peers.remove(id)?;
        for k in &peer.keys {
            self.unindex(k, id);
        }
        Some(peer.conn)
    }

    fn unindex(&mut self, key: &str, id: &str) {
        if let Some(set) = self.index.get_mut(key) {
            set.remove(id);
            if set.is_empty() {
                self.index.remove(key);
            }
        }
    }

    /// New list = current keys, then `join`, minus every `leave` key, first occurrence
    /// kept (faithful). Over `max_keys` the list is left as it was.
    pub fn apply(
        &mut self,
        id: &str,
        change: KeyChange,
        max_keys: usize,
    ) -> Result<(), TooManyKeys> {
        let Some(peer) = self.peers.get_mut(id) else {
            return Ok(());
        };
        let leave: HashSet<&str> = change.leave.iter().map(String::as_str).collect();
        let mut seen = HashSet::new();
        let mut next = Vec::with_capacity(peer.keys.len() + change.join.len());
        for k in peer.keys.iter().chain(&change.join) {
            if !leave.contains(k.as_str()) && seen.insert(k.as_str()) {
                next.push(k.clone());
            }
        }
        if next.len() > max_keys {
            return Err(TooManyKeys);
        }
        let old = std::mem::replace(&mut peer.keys, next);
        let kept: HashSet<&str> = peer.keys.iter().map(String::as_str).collect();
        for k in old.iter().filter(|k| !kept.contains(k.as_str())) {
            if let Some(set) = self.index.get_mut(k.as_str()) {
                set.remove(id);
                if set.is_empty() {
                    self.index.remove(k.as_str());
                }
            }
        }
        for k in &peer.keys {
            self.index
                .entry(k.clone())
                .or_default()
                .insert(id.to_string());
        }
        Ok(())
    }

    /// The Introductions after a message from `id`: for every other peer B sharing a key,
    /// `id` hears of B, then B hears of `id`, both with the common keys in `id`'s order.
    pub fn introductions(&self, id: &str, mut emit: impl FnMut(ConnId, Frame)) {
        let Some(me) = self.peers.get(id) else { return };
        let others: BTreeSet<&str> = me
            .keys
            .iter()
            .filter_map(|k| self.index.get(k))
            .flat_map(|set| set.iter().map(String::as_str))
            .filter(|&other| other != id)
            .collect();
        let mut common: Vec<&str> = Vec::new();
        for other in others {
            let Some(peer) = self.peers.get(other) else {
                continue;
            };
            common.clear();
            common.extend(
                me.keys
                    .iter()
                    .filter(|k| {
                        self.index
                            .get(k.as_str())
                            .is_some_and(|s| s.contains(other))
                    })
                    .map(String::as_str),
            );
            emit(me.conn, wire::introduction(other, &common));
            emit(peer.conn, wire::introduction(id, &common));
        }
    }

    #[cfg(test)]
    pub fn keys_of(&self, id: &str) -> Option<Vec<&str>> {
        self.peers
            .get(id)
            .map(|p| p.keys.iter().map(String::as_str).collect())
    }
}
