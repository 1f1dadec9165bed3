//! Socket.IO v5 packets: `<type>[<attachments>-][<nsp>,][<ack id>][<JSON>]`. A borrowing
//! header parser, the payload checks of socket.io-parser, and the server's encoders.

use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Connect,
    Disconnect,
    Event,
    Ack,
    ConnectError,
    BinaryEvent,
    BinaryAck,
}

/// A decoded packet; `data` has passed the checks for its kind.
#[derive(Debug, PartialEq)]
pub struct Packet<'a> {
    pub kind: Kind,
    pub attachments: usize,
    pub nsp: &'a str,
    pub ack: Option<u64>,
    pub data: Option<Value>,
}

/// Event names a client may not emit.
const RESERVED: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// Decodes one text packet. `None`: invalid (the session is closed).
pub fn decode(s: &str) -> Option<Packet<'_>> {
    let b = s.as_bytes();
    let kind = match b.first()? {
        b'0' => Kind::Connect,
        b'1' => Kind::Disconnect,
        b'2' => Kind::Event,
        b'3' => Kind::Ack,
        b'4' => Kind::ConnectError,
        b'5' => Kind::BinaryEvent,
        b'6' => Kind::BinaryAck,
        _ => return None,
    };
    let mut i = 1;
    let mut attachments = 0;
    if matches!(kind, Kind::BinaryEvent | Kind::BinaryAck) {
        let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 || b.get(i + digits) != Some(&b'-') {
            return None;
        }
        attachments = s[i..i + digits].parse().ok()?;
        i += digits + 1;
    }
    let mut nsp = "/";
    if b.get(i) == Some(&b'/') {
        let end = b[i..]
            .iter()
            .position(|&c| c == b',')
            .map_or(b.len(), |p| i + p);
        nsp = &s[i..end];
        i = (end + 1).min(b.len());
    }
    let mut ack = None;
    let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    if digits > 0 {
        ack = Some(s[i..i + digits].parse().ok()?);
        i += digits;
    }
    let data = if i < b.len() {
        Some(serde_json::from_str::<Value>(&s[i..]).ok()?)
    } else {
        None
    };
    let valid = match (kind, &data) {
        (Kind::Connect, d) => matches!(d, None | Some(Value::Object(_))),
        (Kind::Disconnect, d) => d.is_none(),
        (Kind::ConnectError, d) => matches!(d, Some(Value::String(_) | Value::Object(_))),
        // An event without data is ignored by the session, not refused here.
        (Kind::Event | Kind::BinaryEvent, None) => true,
        (Kind::Event | Kind::BinaryEvent, Some(Value::Array(a))) => match a.first() {
            Some(Value::Number(_)) => true,
            Some(Value::String(name)) => !RESERVED.contains(&name.as_str()),
            _ => false,
        },
        (Kind::Event | Kind::BinaryEvent, Some(_)) => false,
        (Kind::Ack | Kind::BinaryAck, d) => matches!(d, Some(Value::Array(_))),
    };
    valid.then_some(Packet {
        kind,
        attachments,
        nsp,
        ack,
        data,
    })
}

/// `0` CONNECT answer on `/`.
pub fn connect(socket_id: &str) -> String {
    format!(r#"0{{"sid":"{socket_id}"}}"#)
}

/// `4` CONNECT_ERROR for a namespace we do not serve.
pub fn invalid_namespace(nsp: &str) -> String {
    format!(r#"4{nsp},{{"message":"Invalid namespace"}}"#)
}

/// `2` EVENT `message` carrying one JSON object.
pub fn message(json: &str) -> String {
    let mut s = String::with_capacity(json.len() + 13);
    s.push_str(r#"2["message","#);
    s.push_str(json);
    s.push(']');
    s
}

/// `3` ACK with no arguments.
pub fn ack(id: u64) -> String {
    format!("3{id}[]")
}

pub const DISCONNECT: &str = "1";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(s: &str) -> Packet<'_> {
        decode(s).unwrap_or_else(|| panic!("{s:?} should decode"))
    }

    #[test]
    fn connect_packets() {
        let p = ok("0");
        assert_eq!((p.kind, p.nsp, p.data), (Kind::Connect, "/", None));
        assert_eq!(ok(r#"0{"token":"x"}"#).data, Some(json!({"token":"x"})));
        let p = ok("0/admin,");
        assert_eq!((p.nsp, p.data), ("/admin", None));
        assert_eq!(ok("0/admin").nsp, "/admin");
        assert!(decode("0[1]").is_none(), "CONNECT data must be an object");
        assert!(decode(r#"4{"message":"x"}"#).is_some());
    }

    #[test]
    fn events_with_ack_ids_and_namespaces() {
        let p = ok(r#"21["message",{"type":"nope"}]"#);
        assert_eq!((p.kind, p.ack), (Kind::Event, Some(1)));
        assert_eq!(p.data, Some(json!(["message", {"type": "nope"}])));
        let p = ok(r#"2/chat,7["x"]"#);
        assert_eq!((p.nsp, p.ack), ("/chat", Some(7)));
        assert_eq!(ok("2").data, None);
        assert_eq!(ok("21").ack, Some(1));
        assert!(decode("2[5]").is_some(), "numeric event names are valid");
    }

    #[test]
    fn pst_68_invalid_packets_are_refused() {
        for bad in [
            "abc",
            "{bad",
            r#"2"x""#,
            "2[]",
            r#"2["connect"]"#,
            r#"2["removeListener",1]"#,
            "2{}",
            "1{}",
            "3",
            "3{}",
            "511-[]",
            "5x-[]",
            "5-[]",
            "",
            "9",
            "4",
        ] {
            assert!(decode(bad).is_none(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn binary_event_counts_attachments() {
        let p = ok(r#"51-["message",{"_placeholder":true,"num":0}]"#);
        assert_eq!((p.kind, p.attachments), (Kind::BinaryEvent, 1));
        let p = ok("611-[]");
        assert_eq!((p.kind, p.attachments), (Kind::BinaryAck, 11));
    }

    #[test]
    fn encoders() {
        assert_eq!(connect("abc"), r#"0{"sid":"abc"}"#);
        assert_eq!(
            invalid_namespace("/admin"),
            r#"4/admin,{"message":"Invalid namespace"}"#
        );
        assert_eq!(message(r#"{"a":1}"#), r#"2["message",{"a":1}]"#);
        assert_eq!(ack(1), "31[]");
    }
}
