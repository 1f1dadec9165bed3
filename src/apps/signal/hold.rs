//! The hold table: connection endpoints waiting for their reciprocal side, keyed by the
//! tuple (local, remote, key) so ids containing `:` stay unambiguous (fixed).

use super::Millis;
use crate::frame::{self, Frame};
use crate::router::ConnId;
use std::collections::{HashMap, VecDeque};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HoldKey {
    local: String,
    remote: String,
    key: String,
}

impl HoldKey {
    pub fn new(local: String, remote: String, key: String) -> HoldKey {
        HoldKey { local, remote, key }
    }

    /// The key the other side of this pipe is held under.
    fn reciprocal(&self) -> HoldKey {
        HoldKey::new(self.remote.clone(), self.local.clone(), self.key.clone())
    }
}

struct Hold {
    conn: ConnId,
    /// Encoded frames, opcodes kept, in arrival order.
    frames: Vec<Frame>,
    payload_bytes: usize,
}

/// The buffer would pass `hold_buffer_bytes`.
#[derive(Debug)]
pub struct Full;

pub struct Holds {
    cap: usize,
    /// 0: no timeout.
    timeout_ms: Millis,
    map: HashMap<HoldKey, Hold>,
    /// (deadline, key, conn) in hold order; the timeout is constant, so deadlines ascend.
    deadlines: VecDeque<(Millis, HoldKey, ConnId)>,
}

impl Holds {
    pub fn new(cap: usize, timeout_ms: Millis) -> Holds {
        Holds {
            cap,
            timeout_ms,
            map: HashMap::new(),
            deadlines: VecDeque::new(),
        }
    }

    /// Removes and returns the connection held under the reciprocal of `key`, with its
    /// buffer.
    pub fn take_reciprocal(&mut self, key: &HoldKey) -> Option<(ConnId, Vec<Frame>)> {
        self.map
            .remove(&key.reciprocal())
            .map(|h| (h.conn, h.frames))
    }

    /// Holds `conn` under `key` with an empty buffer; returns the connection it replaces.
    pub fn hold(&mut self, key: HoldKey, conn: ConnId, now: Millis) -> Option<ConnId> {
        if self.timeout_ms > 0 {
            self.deadlines
                .push_back((now.saturating_add(self.timeout_ms), key.clone(), conn));
        }
        let hold = Hold {
            conn,
            frames: Vec::new(),
            payload_bytes: 0,
        };
        self.map.insert(key, hold).map(|old| old.conn)
    }

    /// Buffers one message of `conn`; over the cap the hold is removed.
    pub fn buffer(
        &mut self,
        key: &HoldKey,
        conn: ConnId,
        opcode: u8,
        data: &[u8],
    ) -> Result<(), Full> {
        let Some(h) = self.map.get_mut(key).filter(|h| h.conn == conn) else {
            return Ok(());
        };
        h.payload_bytes = h.payload_bytes.saturating_add(data.len());
        if h.payload_bytes > self.cap {
            self.map.remove(key);
            return Err(Full);
        }
        h.frames.push(frame::encode(opcode, data));
        Ok(())
    }

    /// Removes the hold of `key` if it is still `conn`'s (a replaced hold's close never
    /// touches the newer one).
    pub fn release(&mut self, key: &HoldKey, conn: ConnId) {
        if self.map.get(key).is_some_and(|h| h.conn == conn) {
            self.map.remove(key);
        }
    }

    /// The next connection whose hold timed out by `now`, its hold removed.
    pub fn next_expired(&mut self, now: Millis) -> Option<ConnId> {
        while let Some((deadline, _, _)) = self.deadlines.front() {
            if *deadline > now {
                return None;
            }
            let (_, key, conn) = self.deadlines.pop_front().expect("front exists");
            if self.map.get(&key).is_some_and(|h| h.conn == conn) {
                self.map.remove(&key);
                return Some(conn);
            }
        }
        None
    }
}
