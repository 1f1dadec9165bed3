//! Client side of the wire: the upgrade request, pre-masked client frames, server frames.

/// A client frame with FIN and a zero mask key: masking with zeros leaves the payload as
/// it is, so frames are built by copying, with no per-byte work (RFC 6455 allows any key).
pub fn put_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    put_frame_parts(out, opcode, &[payload]);
}

/// [`put_frame`] of the concatenation of `parts`, without joining them first.
pub fn put_frame_parts(out: &mut Vec<u8>, opcode: u8, parts: &[&[u8]]) {
    out.push(0x80 | opcode);
    match parts.iter().map(|p| p.len()).sum::<usize>() {
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
    for p in parts {
        out.extend_from_slice(p);
    }
}

/// A client frame holding the Socket.IO event `42["message",<arg>]`: the argument is
/// `payload` as a JSON string (`quoted`; `payload` must need no escaping) or, unquoted,
/// `payload` itself, which must then be JSON (an object for pester).
pub fn put_sio_message(out: &mut Vec<u8>, payload: &[u8], quoted: bool) {
    if quoted {
        put_frame_parts(out, 0x1, &[b"42[\"message\",\"", payload, b"\"]"]);
    } else {
        put_frame_parts(out, 0x1, &[b"42[\"message\",", payload, b"]"]);
    }
}

/// The argument of a server's Socket.IO `42["message",<arg>]` packet, as
/// [`put_sio_message`] writes it: without its quotes when `quoted`.
pub fn sio_message_arg(packet: &[u8], quoted: bool) -> Option<&[u8]> {
    if quoted {
        packet
            .strip_prefix(b"42[\"message\",\"")?
            .strip_suffix(b"\"]")
    } else {
        packet.strip_prefix(b"42[\"message\",")?.strip_suffix(b"]")
    }
}

/// The `text` of a pester `message` object as the server writes it,
/// `{"type":"message","channelId":…,"fromUserId":…,"text":"…","timestamp":N}`, read from
/// the end; `None` for any other object, or a text holding a `"` (stamps never do).
pub fn pester_text(obj: &[u8]) -> Option<&[u8]> {
    let b = obj.strip_suffix(b"}")?;
    let digits = b.iter().rev().take_while(|c| c.is_ascii_digit()).count();
    let b = b[..b.len() - digits]
        .strip_suffix(b",\"timestamp\":")?
        .strip_suffix(b"\"")?;
    let open = b.iter().rposition(|&c| c == b'"')?;
    b[..=open].ends_with(b"\"text\":\"").then(|| &b[open + 1..])
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

    #[test]
    fn frames_from_parts_match_one_payload() {
        for n in [0, 125, 126, 65535, 65536] {
            let body = vec![b'x'; n];
            let (mut one, mut parts) = (Vec::new(), Vec::new());
            put_frame(&mut one, 0x1, &body);
            put_frame_parts(&mut parts, 0x1, &[&body[..n / 3], &body[n / 3..], b""]);
            assert_eq!(one, parts, "{n} bytes");
        }
    }

    /// Unmasks a client frame built with the zero key: its payload.
    fn client_payload(frame: &[u8]) -> &[u8] {
        assert_eq!(frame[0], 0x81);
        let n = (frame[1] & 0x7f) as usize;
        assert!(n < 126 && frame[1] & 0x80 != 0);
        assert_eq!(&frame[2..6], &[0, 0, 0, 0]);
        assert_eq!(frame.len(), 6 + n);
        &frame[6..]
    }

    #[test]
    fn sio_message_events_round_trip() {
        let obj = br#"{"type":"register","userId":"u1"}"#;
        let mut f = Vec::new();
        put_sio_message(&mut f, obj, false);
        let p = client_payload(&f);
        assert_eq!(p, br#"42["message",{"type":"register","userId":"u1"}]"#);
        assert_eq!(sio_message_arg(p, false), Some(&obj[..]));
        let mut f = Vec::new();
        put_sio_message(&mut f, b"abc", true);
        let p = client_payload(&f);
        assert_eq!(p, br#"42["message","abc"]"#);
        assert_eq!(sio_message_arg(p, true), Some(&b"abc"[..]));
        assert_eq!(sio_message_arg(b"40{\"sid\":\"x\"}", false), None);
        assert_eq!(sio_message_arg(br#"42["other",{}]"#, false), None);
    }

    #[test]
    fn pester_text_is_read_from_the_servers_message() {
        let mut text = Vec::new();
        stamp(&mut text, 3, 41, 99, 64);
        let obj = format!(
            r#"{{"type":"message","channelId":"chat_A0-1_____z0-1","fromUserId":"A0-1__","text":"{}","timestamp":1795346839578}}"#,
            std::str::from_utf8(&text).unwrap()
        );
        let got = pester_text(obj.as_bytes()).expect("a message");
        assert_eq!(got, &text[..]);
        assert_eq!(read_stamp(got), Some((3, 41, 99)));
        for other in [
            r#"{"type":"typing","channelId":"chat_a_b","userId":"a","timestamp":1}"#,
            r#"{"type":"error","message":"Not in this channel"}"#,
            r#"{"type":"user_left","channelId":"chat_a_b","userId":"a","timestamp":17}"#,
            r#"{"type":"message","channelId":"c","fromUserId":"a","text":"q\"x","timestamp":1}"#,
        ] {
            assert_eq!(pester_text(other.as_bytes()), None, "{other}");
        }
        assert_eq!(
            pester_text(
                br#"{"type":"message","channelId":"c","fromUserId":"a","text":"hi","timestamp":1}"#
            ),
            Some(&b"hi"[..])
        );
    }
}
