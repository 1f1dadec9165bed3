//! The rooms wire format: borrowing parsers for client frames and encoders for server
//! frames with the spec's exact key order.
//!
//! Client JSON that the server echoes (chat messages, broadcast and relay data, login
//! property values) is kept as the client wrote it with `serde_json`'s `RawValue` and only
//! minified ([`minify`]).

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::fmt::{self, Write as _};

/// The members of a JSON object in order, values as written; a repeated key keeps its
/// first position and its last value (as `JSON.parse`).
#[derive(Debug, Default)]
pub struct Members<'a>(pub Vec<(String, &'a RawValue)>);

impl<'a> Members<'a> {
    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for Members<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'a>, A::Error> {
                let mut out: Vec<(String, &'a RawValue)> = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, &'de RawValue>()? {
                    match out.iter_mut().find(|(ok, _)| *ok == k) {
                        Some(slot) => slot.1 = v,
                        None => out.push((k, v)),
                    }
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// An object's members, or `None` when `raw` is not an object.
pub fn members(raw: &RawValue) -> Option<Members<'_>> {
    serde_json::from_str(raw.get()).ok()
}

/// A client frame: `{"type":<string>,"data":<any>}`; `None` for anything else.
pub struct Incoming<'a> {
    pub kind: String,
    pub data: Option<&'a RawValue>,
}

pub fn parse_incoming(text: &str) -> Option<Incoming<'_>> {
    let m: Members<'_> = serde_json::from_str(text).ok()?;
    let kind: String = serde_json::from_str(m.get("type")?.get()).ok()?;
    Some(Incoming {
        kind,
        data: m.get("data"),
    })
}

/// What a raw JSON value is, for the spec's type rules.
#[derive(Debug, PartialEq)]
pub enum Json<'a> {
    Null,
    Bool(bool),
    /// An integer literal (`-?\d+`), as written.
    Int(&'a str),
    /// Any other number, as written.
    Number(&'a str),
    Str(String),
    Array,
    Object,
}

pub fn classify(raw: &RawValue) -> Json<'_> {
    let t = raw.get().trim();
    match t.as_bytes().first() {
        Some(b'n') => Json::Null,
        Some(b't') => Json::Bool(true),
        Some(b'f') => Json::Bool(false),
        Some(b'"') => serde_json::from_str(t).map_or(Json::Null, Json::Str),
        Some(b'[') => Json::Array,
        Some(b'{') => Json::Object,
        _ if t.bytes().all(|c| c.is_ascii_digit() || c == b'-') => Json::Int(t),
        _ => Json::Number(t),
    }
}

/// The text of an id that may be a string or an integer (`-0` is `0`, as `String(-0)`).
pub fn id_text(raw: &RawValue) -> Option<String> {
    match classify(raw) {
        Json::Str(s) => Some(s),
        Json::Int("-0") => Some("0".into()),
        Json::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// Removes insignificant whitespace from valid JSON text, leaving strings untouched.
pub fn minify(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    minify_into(json, &mut out);
    out
}

pub fn minify_into(json: &str, out: &mut String) {
    let mut in_str = false;
    let mut escaped = false;
    for c in json.chars() {
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            out.push(c);
            in_str = c == '"';
        }
    }
}

/// Appends `s` as a JSON string (JavaScript `JSON.stringify` escaping).
pub fn push_str(out: &mut String, s: &str) {
    // serde_json writes exactly JSON.stringify's escapes; writing to a String cannot fail.
    out.push_str(&serde_json::to_string(s).expect("a str always serializes"));
}

pub fn json_str(s: &str) -> String {
    let mut out = String::new();
    push_str(&mut out, s);
    out
}

/// `{"data":"<text>","type":"error"}`.
pub fn error(text: &str) -> String {
    let mut out = String::from("{\"data\":");
    push_str(&mut out, text);
    out.push_str(",\"type\":\"error\"}");
    out
}

/// `{"type":"<kind>","data":<data>}` with `data` already JSON.
pub fn typed(kind: &str, data: &str) -> String {
    let mut out = String::with_capacity(20 + kind.len() + data.len());
    out.push_str("{\"type\":");
    push_str(&mut out, kind);
    out.push_str(",\"data\":");
    out.push_str(data);
    out.push('}');
    out
}

/// `{"type":"<kind>"}`.
pub fn typed_bare(kind: &str) -> String {
    let mut out = String::from("{\"type\":");
    push_str(&mut out, kind);
    out.push('}');
    out
}

/// Whether a key is integer-like for JS key order: the canonical decimal of an integer
/// 0 ≤ n ≤ 4294967294.
pub fn integer_key(k: &str) -> Option<u64> {
    if k.is_empty() || k.len() > 10 || !k.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if k.len() > 1 && k.starts_with('0') {
        return None;
    }
    k.parse::<u64>().ok().filter(|&n| n <= 4_294_967_294)
}

/// Indices of `keys` (in insertion order) in JS key order.
pub fn js_order<'a, I: IntoIterator<Item = &'a str>>(keys: I) -> Vec<usize> {
    let keys: Vec<&str> = keys.into_iter().collect();
    let mut ints: Vec<(u64, usize)> = Vec::new();
    let mut rest = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        match integer_key(k) {
            Some(n) => ints.push((n, i)),
            None => rest.push(i),
        }
    }
    ints.sort_unstable();
    ints.into_iter().map(|(_, i)| i).chain(rest).collect()
}

/// Writes a `{"k":v,…}` object from members whose values are already JSON.
pub fn push_object<'a, I: IntoIterator<Item = (&'a str, &'a str)>>(out: &mut String, members: I) {
    out.push('{');
    let mut first = true;
    for (k, v) in members {
        if !first {
            out.push(',');
        }
        first = false;
        push_str(out, k);
        out.push(':');
        out.push_str(v);
    }
    out.push('}');
}

/// `encodeURIComponent`.
pub fn uri_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_strictly() {
        assert!(parse_incoming("not json").is_none());
        assert!(parse_incoming("null").is_none());
        assert!(parse_incoming("5").is_none());
        assert!(parse_incoming("[]").is_none());
        assert!(parse_incoming(r#"{"type":5}"#).is_none());
        assert!(parse_incoming(r#"{"data":1}"#).is_none());
        let m = parse_incoming(r#"{"type":"a","data":{ "x" : [1, 2] },"type":"chat"}"#).unwrap();
        assert_eq!(m.kind, "chat");
        assert_eq!(minify(m.data.unwrap().get()), r#"{"x":[1,2]}"#);
    }

    #[test]
    fn minify_keeps_strings_and_numbers() {
        assert_eq!(
            minify(r#"{ "a b" : "x \" y" , "n" : 1.50e3 }"#),
            r#"{"a b":"x \" y","n":1.50e3}"#
        );
        assert_eq!(minify(r#""\\" "#), r#""\\""#);
    }

    #[test]
    fn js_key_order_puts_integer_keys_first() {
        let keys = ["b", "2", "a", "1", "01", "4294967295"];
        let order: Vec<&str> = js_order(keys).into_iter().map(|i| keys[i]).collect();
        assert_eq!(order, ["1", "2", "b", "a", "01", "4294967295"]);
    }

    #[test]
    fn uri_component_matches_js() {
        assert_eq!(uri_component("a b/é~"), "a%20b%2F%C3%A9~");
    }
}
