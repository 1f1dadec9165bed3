//! Routing is data: connection ids, tables keyed by them, and the owner of a key.
//!
//! Nothing here knows sockets or message formats. A [`ConnId`] names a connection anywhere
//! in the process; [`ConnTable`] maps a reactor's own connections to app state in one
//! array index; [`owner_of`] picks the reactor that owns a key's state.

mod table;

pub use table::ConnTable;

/// A connection anywhere in the process: its reactor, its slab slot, and the generation
/// that slot had when the connection took it. Slots are reused, generations are not, so a
/// late send to a closed connection is dropped, never delivered to a newcomer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    pub reactor: u16,
    pub slot: u32,
    pub generation: u32,
}

impl ConnId {
    pub const fn new(reactor: u16, slot: u32, generation: u32) -> ConnId {
        ConnId {
            reactor,
            slot,
            generation,
        }
    }
}

/// FNV-1a, 64 bit: stable across processes and builds, unlike `std`'s `RandomState`.
pub fn stable_hash(key: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The reactor that owns `key` among `reactors` reactors.
pub fn owner_of(key: &[u8], reactors: usize) -> usize {
    debug_assert!(reactors > 0, "there is always at least one reactor");
    (stable_hash(key) % reactors.max(1) as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_is_stable_and_in_range() {
        assert_eq!(stable_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        for n in 1..8 {
            for key in ["room-1", "lobby", "x:y"] {
                let o = owner_of(key.as_bytes(), n);
                assert!(o < n);
                assert_eq!(o, owner_of(key.as_bytes(), n));
            }
        }
    }
}
