//! Server-to-client WebSocket frames, encoded once and shared by reference.
//!
//! A [`Frame`] is the complete wire form (header plus unmasked payload) in one refcounted
//! buffer. Sending it to N connections costs N reference clones, never N encodings.

use bytes::{BufMut, Bytes, BytesMut};

mod arena;
pub use arena::{MAX_CARVED_BYTES, transient};

/// An encoded server frame: header and payload, ready for `writev`.
pub type Frame = Bytes;

pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;

/// Length of the header of an unmasked server frame carrying `len` payload bytes.
pub fn header_len(len: usize) -> usize {
    match len {
        0..=125 => 2,
        126..=65535 => 4,
        _ => 10,
    }
}

/// Appends the header of a final, unmasked frame to `out`.
pub fn put_header(out: &mut BytesMut, opcode: u8, len: usize) {
    out.put_u8(0x80 | opcode);
    match len {
        0..=125 => out.put_u8(len as u8),
        126..=65535 => {
            out.put_u8(126);
            out.put_u16(len as u16);
        }
        _ => {
            out.put_u8(127);
            out.put_u64(len as u64);
        }
    }
}

/// One final frame with `payload`, in a single allocation of its own: for frames that are
/// kept (cached, held). Frames sent at once and dropped come from [`transient`].
pub fn encode(opcode: u8, payload: &[u8]) -> Frame {
    let mut out = BytesMut::with_capacity(header_len(payload.len()) + payload.len());
    put_header(&mut out, opcode, payload.len());
    out.put_slice(payload);
    out.freeze()
}

/// A text frame for sending now, from the thread's arena: see [`transient`].
pub fn transient_text(payload: &str) -> Frame {
    transient(OP_TEXT, payload.as_bytes())
}

pub fn text(payload: &str) -> Frame {
    encode(OP_TEXT, payload.as_bytes())
}

pub fn binary(payload: &[u8]) -> Frame {
    encode(OP_BINARY, payload)
}

/// A Close frame with `code` and `reason`; reasons are cut at 123 bytes on a char boundary.
pub fn close(code: u16, reason: &str) -> Frame {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = Vec::with_capacity(2 + end);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    encode(OP_CLOSE, &payload)
}

/// A Close frame with no status code (the client sees 1005).
pub fn close_empty() -> Frame {
    encode(OP_CLOSE, &[])
}

pub fn ping() -> Frame {
    Bytes::from_static(&[0x80 | OP_PING, 0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_sizes_switch_at_126_and_65536() {
        assert_eq!(&text("hi")[..], &[0x81, 2, b'h', b'i']);
        let f = binary(&[7; 126]);
        assert_eq!(&f[..4], &[0x82, 126, 0, 126]);
        assert_eq!(f.len(), 130);
        let f = binary(&vec![0; 65536]);
        assert_eq!(&f[..10], &[0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(f.len(), 65546);
    }

    #[test]
    fn close_reason_is_cut_on_a_char_boundary() {
        let f = close(1008, &"é".repeat(100));
        assert_eq!(f[0], 0x88);
        let len = f[1] as usize;
        assert!(len <= 125);
        assert!(std::str::from_utf8(&f[4..]).is_ok());
        assert_eq!(&close(1001, "Server shutting down")[2..4], &[0x03, 0xE9]);
    }
}
