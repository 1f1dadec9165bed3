//! Client side of the wire: the upgrade request, pre-masked client frames, server frames.

/// A client frame with FIN and a zero mask key: masking with zeros leaves the payload as
/// it is, so frames are built by copying, with no per-byte work (RFC 6455 allows any key).
pub fn put_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    out.push(0x80 | opcode);
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=65535 => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(payload);
}

pub fn upgrade_request(host: &str, path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes()
}

/// One server frame parsed from the front of `buf`: (opcode, payload range, total length).
pub fn parse_frame(buf: &[u8]) -> Option<(u8, std::ops::Range<usize>, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let opcode = buf[0] & 0x0f;
    let (len, start) = match buf[1] & 0x7f {
        126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
        127 if buf.len() >= 10 => (
            u64::from_be_bytes(buf[2..10].try_into().expect("8 bytes")) as usize,
            10,
        ),
        126 | 127 => return None,
        n => (n as usize, 2),
    };
    if buf.len() < start + len {
        return None;
    }
    Some((opcode, start..start + len, start + len))
}

/// The payload a publisher sends: publisher, sequence and send time in hex, padded to
/// `size` bytes (text-safe, quote-free, so it also fits inside a Socket.IO event).
pub fn stamp(out: &mut Vec<u8>, publisher: u32, seq: u32, sent_us: u64, size: usize) {
    use std::io::Write;
    let start = out.len();
    let _ = write!(out, "{publisher:08x}{seq:08x}{sent_us:016x}");
    while out.len() - start < size {
        out.push(b'.');
    }
}

pub const STAMP_LEN: usize = 32;

/// Reads back (publisher, seq, sent_us) from a stamped payload.
pub fn read_stamp(p: &[u8]) -> Option<(u32, u32, u64)> {
    if p.len() < STAMP_LEN {
        return None;
    }
    let hex = |s: &[u8]| u64::from_str_radix(std::str::from_utf8(s).ok()?, 16).ok();
    Some((
        hex(&p[0..8])? as u32,
        hex(&p[8..16])? as u32,
        hex(&p[16..32])?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_and_frames_parse() {
        let mut p = Vec::new();
        stamp(&mut p, 7, 9, 123_456, 64);
        assert_eq!(p.len(), 64);
        assert_eq!(read_stamp(&p), Some((7, 9, 123_456)));
        let server = [0x81, 3, b'a', b'b', b'c', 0x81];
        assert_eq!(parse_frame(&server), Some((1, 2..5, 5)));
        assert_eq!(parse_frame(&server[5..]), None);
    }
}
