//! Engine.IO v4 packets: borrowing decoders for WebSocket frames and polling payloads,
//! and the few encoders the server needs. No state here; `session.rs` holds it.

use base64::Engine as _;
use std::borrow::Cow;

/// The separator of packets in a polling payload.
pub const SEP: u8 = 0x1E;

/// One decoded Engine.IO packet.
#[derive(Debug, PartialEq)]
pub enum Packet<'a> {
    Open,
    Close,
    /// `2`, with its data (`probe` during an upgrade).
    Ping(&'a str),
    Pong(&'a str),
    /// `4`: the Socket.IO packet inside.
    Message(&'a str),
    Upgrade,
    Noop,
    /// A binary message: a WebSocket binary frame, or `b<base64>` in a payload.
    Binary(Cow<'a, [u8]>),
}

/// A text packet (a WebSocket text frame, or one part of a payload). `None`: undecodable
/// (empty, or an unknown type character).
pub fn decode_text(s: &str) -> Option<Packet<'_>> {
    let t = *s.as_bytes().first()?;
    if !t.is_ascii() {
        // Not a type character, and `s[1..]` would cut inside a multi-byte char.
        return None;
    }
    let rest = &s[1..];
    Some(match t {
        b'0' => Packet::Open,
        b'1' => Packet::Close,
        b'2' => Packet::Ping(rest),
        b'3' => Packet::Pong(rest),
        b'4' => Packet::Message(rest),
        b'5' => Packet::Upgrade,
        b'6' => Packet::Noop,
        _ => return None,
    })
}

/// One part of a polling payload: `b` + base64 is binary, anything else a text packet.
/// Parts that are not UTF-8 or not valid base64 are undecodable.
pub fn decode_part(part: &[u8]) -> Option<Packet<'_>> {
    if let Some(b64) = part.strip_prefix(b"b") {
        let data = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        return Some(Packet::Binary(Cow::Owned(data)));
    }
    decode_text(std::str::from_utf8(part).ok()?)
}

/// The packets of a polling payload, in order (an empty body is one undecodable part).
pub fn decode_payload(body: &[u8]) -> impl Iterator<Item = Option<Packet<'_>>> {
    body.split(|&b| b == SEP).map(decode_part)
}

/// Joins queued text packets into one payload.
pub fn encode_payload(packets: &[String]) -> Vec<u8> {
    let len = packets.iter().map(|p| p.len() + 1).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    for (i, p) in packets.iter().enumerate() {
        if i > 0 {
            out.push(SEP);
        }
        out.extend_from_slice(p.as_bytes());
    }
    out
}

/// The open packet: `0` + the handshake JSON, keys in engine.io's order.
pub fn open_packet(
    sid: &str,
    upgrades: bool,
    ping_interval: u64,
    ping_timeout: u64,
    max_payload: usize,
) -> String {
    let upgrades = if upgrades { r#"["websocket"]"# } else { "[]" };
    format!(
        r#"0{{"sid":"{sid}","upgrades":{upgrades},"pingInterval":{ping_interval},"pingTimeout":{ping_timeout},"maxPayload":{max_payload}}}"#
    )
}

/// Engine.IO error codes and their messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    TransportUnknown = 0,
    SessionIdUnknown = 1,
    BadHandshakeMethod = 2,
    BadRequest = 3,
    Forbidden = 4,
    UnsupportedProtocolVersion = 5,
}

impl ErrorCode {
    pub fn message(self) -> &'static str {
        match self {
            ErrorCode::TransportUnknown => "Transport unknown",
            ErrorCode::SessionIdUnknown => "Session ID unknown",
            ErrorCode::BadHandshakeMethod => "Bad handshake method",
            ErrorCode::BadRequest => "Bad request",
            ErrorCode::Forbidden => "Forbidden",
            ErrorCode::UnsupportedProtocolVersion => "Unsupported protocol version",
        }
    }

    /// The JSON body of the plain HTTP error answer.
    pub fn json(self) -> String {
        format!(
            r#"{{"code":{},"message":"{}"}}"#,
            self as u8,
            self.message()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_packets_decode_by_first_char() {
        assert_eq!(decode_text("2probe"), Some(Packet::Ping("probe")));
        assert_eq!(decode_text("3"), Some(Packet::Pong("")));
        assert_eq!(decode_text("42[1]"), Some(Packet::Message("2[1]")));
        assert_eq!(decode_text("5"), Some(Packet::Upgrade));
        assert_eq!(decode_text("1"), Some(Packet::Close));
        assert_eq!(decode_text("6"), Some(Packet::Noop));
        assert_eq!(decode_text("9zzz"), None);
        assert_eq!(decode_text(""), None);
    }

    #[test]
    fn payloads_split_on_0x1e_and_decode_base64() {
        let body = b"40\x1e42[\"message\"]\x1ebAQI=";
        let got: Vec<_> = decode_payload(body).collect();
        assert_eq!(
            got,
            vec![
                Some(Packet::Message("0")),
                Some(Packet::Message("2[\"message\"]")),
                Some(Packet::Binary(Cow::Owned(vec![1, 2]))),
            ]
        );
        assert_eq!(decode_payload(b"").collect::<Vec<_>>(), vec![None]);
        assert_eq!(decode_payload(b"b!!").collect::<Vec<_>>(), vec![None]);
        assert_eq!(decode_payload(b"3\x1e\x1e3").nth(1), Some(None));
    }

    /// Found by fuzzing (`fuzz/corpus/engineio/non_ascii_type`): a packet starting with a
    /// multi-byte character panicked slicing it, from a WebSocket text frame or a payload.
    #[test]
    fn non_ascii_type_is_undecodable() {
        assert_eq!(decode_text("\u{e9}4"), None);
        assert_eq!(decode_text("\u{FFFD}"), None);
        assert_eq!(decode_part("\u{1F600}x".as_bytes()), None);
        assert_eq!(decode_payload("4a\x1e\u{e9}".as_bytes()).nth(1), Some(None));
    }

    #[test]
    fn payload_encoding_joins_with_separator() {
        let p = encode_payload(&["2".into(), "42[1]".into()]);
        assert_eq!(p, b"2\x1e42[1]");
        assert_eq!(encode_payload(&["6".into()]), b"6");
    }

    #[test]
    fn open_packet_has_engine_io_key_order() {
        assert_eq!(
            open_packet("OS3cUvG3RTeHekdRAAAA", true, 25000, 20000, 1000000),
            r#"0{"sid":"OS3cUvG3RTeHekdRAAAA","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
        );
        assert!(open_packet("x", false, 1, 2, 3).contains(r#""upgrades":[],"#));
    }

    #[test]
    fn error_bodies() {
        assert_eq!(
            ErrorCode::SessionIdUnknown.json(),
            r#"{"code":1,"message":"Session ID unknown"}"#
        );
        assert_eq!(
            ErrorCode::UnsupportedProtocolVersion.json(),
            r#"{"code":5,"message":"Unsupported protocol version"}"#
        );
    }
}
