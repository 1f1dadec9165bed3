//! Per-thread frame arena: hot-path frames carved from recycled chunks, so that steady
//! fan-out and relay allocate nothing per message.
//!
//! A carved frame is a `Bytes` slice of a shared chunk; cloning it for N recipients is N
//! refcount increments. When the current chunk is spent it joins a short ring of spares,
//! and a spare whose frames have all been written and dropped is reclaimed in place
//! (`BytesMut::try_reclaim`), so once warm the arena allocates only when more chunks are
//! in flight than the ring holds.
//!
//! A carved frame pins its whole chunk while it lives, so they are for sending now, not
//! for keeping: apps cache frames made with [`super::encode`], and the outbound queue
//! copies out frames stuck behind a blocked socket (`Outbound::unpin`).

use super::{Frame, header_len, put_header};
use bytes::{BufMut, BytesMut};
use std::cell::RefCell;
use std::collections::VecDeque;

/// Bytes per chunk: several large frames or about a thousand small ones.
const CHUNK_BYTES: usize = 64 * 1024;
/// Largest encoded frame carved from a chunk; bigger ones get their own allocation,
/// whose cost is small next to copying them.
pub const MAX_CARVED_BYTES: usize = 16 * 1024 + 4;
/// Spent chunks kept for reuse. Beyond this a spent chunk is left to be freed by its
/// last frame, which bounds what the arena itself holds to `(1 + SPARES) * CHUNK_BYTES`.
const SPARES: usize = 8;

#[derive(Default)]
struct Arena {
    /// The chunk being carved; `None` until the first frame.
    current: Option<BytesMut>,
    spares: VecDeque<BytesMut>,
}

impl Arena {
    fn carve(&mut self, opcode: u8, payload: &[u8]) -> Frame {
        let need = header_len(payload.len()) + payload.len();
        let chunk = match &mut self.current {
            Some(c) if c.capacity() >= need => c,
            _ => self.refill(),
        };
        put_header(chunk, opcode, payload.len());
        chunk.put_slice(payload);
        chunk.split().freeze()
    }

    /// Replaces the spent chunk with a reclaimed spare, or a new chunk while warming up.
    fn refill(&mut self) -> &mut BytesMut {
        if let Some(spent) = self.current.take()
            && self.spares.len() < SPARES
        {
            self.spares.push_back(spent);
        }
        let mut next = None;
        for _ in 0..self.spares.len() {
            let mut chunk = self.spares.pop_front().expect("len checked");
            if chunk.try_reclaim(CHUNK_BYTES) {
                next = Some(chunk);
                break;
            }
            self.spares.push_back(chunk);
        }
        self.current
            .insert(next.unwrap_or_else(|| BytesMut::with_capacity(CHUNK_BYTES)))
    }
}

thread_local! {
    static ARENA: RefCell<Arena> = RefCell::new(Arena::default());
}

/// A final frame with `payload` for sending now (see the module docs): carved from this
/// thread's arena when it is small enough, otherwise encoded on its own.
pub fn transient(opcode: u8, payload: &[u8]) -> Frame {
    if header_len(payload.len()) + payload.len() > MAX_CARVED_BYTES {
        return super::encode(opcode, payload);
    }
    ARENA.with(|a| a.borrow_mut().carve(opcode, payload))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::OP_TEXT;

    #[test]
    fn carved_frames_are_well_formed_and_independent() {
        let a = transient(OP_TEXT, b"one");
        let b = transient(OP_TEXT, b"two!");
        assert_eq!(&a[..], b"\x81\x03one");
        assert_eq!(&b[..], b"\x81\x04two!");
        let big = transient(OP_TEXT, &vec![b'x'; MAX_CARVED_BYTES]);
        assert_eq!(big.len(), MAX_CARVED_BYTES + 4);
    }

    #[test]
    fn chunks_are_reclaimed_once_their_frames_are_dropped() {
        let mut arena = Arena::default();
        let first = arena.carve(OP_TEXT, b"warm");
        let chunk_start = first.as_ptr();
        drop(first);
        // Spend well over the ring's worth of chunks, dropping every frame at once.
        for _ in 0..(SPARES + 2) * CHUNK_BYTES / 1000 {
            drop(arena.carve(OP_TEXT, &[b'y'; 996]));
        }
        // With nothing pinned the first chunk keeps coming back.
        let seen = (0..CHUNK_BYTES / 1000 * 3)
            .map(|_| arena.carve(OP_TEXT, &[b'z'; 996]).as_ptr())
            .any(|p| p == chunk_start);
        assert!(seen, "the first chunk was never reused");
        assert!(arena.spares.len() <= SPARES);
    }

    #[test]
    fn a_pinned_chunk_is_not_reused() {
        let mut arena = Arena::default();
        let pinned = arena.carve(OP_TEXT, b"keep me");
        for _ in 0..(SPARES + 2) * CHUNK_BYTES / 1000 {
            drop(arena.carve(OP_TEXT, &[b'y'; 996]));
        }
        assert_eq!(&pinned[..], b"\x81\x07keep me");
    }
}
