//! signal's wire formats: the paths (Express route matching and percent-decoding), the
//! Join/Leave messages in, the Introductions out, and the fish page.

use crate::frame::{self, Frame};
use serde::Serialize;
use serde_json::{Map, Value};

/// `GET /` (faithful, no trailing newline).
pub const FISH_PAGE: &str = "<body style=\"background: black; display:flex; justify-content: center; align-items: center; font-size: 18em;\">🐟</body>";

/// What a WebSocket path asks for, with its parameters decoded.
#[derive(Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `/introduction/:localId`.
    Introduction { id: String },
    /// `/connection/:localId/:remoteId/:key` or `/connect/…`.
    Connection {
        local: String,
        remote: String,
        key: String,
    },
}

/// Why a path is refused before the upgrade.
#[derive(Debug, PartialEq, Eq)]
pub enum PathError {
    /// No route matches (404).
    NotFound,
    /// A parameter does not decode, or is longer than `max_id_bytes` (400).
    BadRequest,
}

/// Matches `path` (without the query) as Express would: literal prefixes case-insensitive,
/// one trailing `/` tolerated, each parameter one non-empty segment, percent-decoded.
pub fn parse_path(path: &str, max_id_bytes: usize) -> Result<Endpoint, PathError> {
    let rest = path.strip_prefix('/').ok_or(PathError::NotFound)?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let segs: Vec<&str> = rest.split('/').collect();
    let Some((first, params)) = segs.split_first() else {
        return Err(PathError::NotFound);
    };
    let want = if first.eq_ignore_ascii_case("introduction") {
        1
    } else if first.eq_ignore_ascii_case("connection") || first.eq_ignore_ascii_case("connect") {
        3
    } else {
        return Err(PathError::NotFound);
    };
    if params.len() != want || params.iter().any(|p| p.is_empty()) {
        return Err(PathError::NotFound);
    }
    let decode = |s: &str| match percent_decode_strict(s) {
        Some(d) if d.len() <= max_id_bytes => Ok(d),
        _ => Err(PathError::BadRequest),
    };
    if want == 1 {
        return Ok(Endpoint::Introduction {
            id: decode(params[0])?,
        });
    }
    Ok(Endpoint::Connection {
        local: decode(params[0])?,
        remote: decode(params[1])?,
        key: decode(params[2])?,
    })
}

/// `decodeURIComponent`: every `%` must start two hex digits and the result must be UTF-8.
fn percent_decode_strict(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_string());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hi = hex(*b.get(i + 1)?)?;
            let lo = hex(*b.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// The keys one introduction message joins and leaves, in message order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct KeyChange {
    pub join: Vec<String>,
    pub leave: Vec<String>,
}

/// Reads a Join/Leave message. `None` when it is not a JSON object (ignored by the app).
/// `type` is not examined (faithful); `join`/`leave` may be an array (its strings count,
/// other elements are skipped) or one string; keys over `max_key_bytes` are skipped.
pub fn parse_key_change(text: &str, max_key_bytes: usize) -> Option<KeyChange> {
    // Duplicate members: the last one wins, as in `JSON.parse`.
    let mut obj: Map<String, Value> = serde_json::from_str(text).ok()?;
    let mut keys = |field: &str| -> Vec<String> {
        let list = match obj.remove(field) {
            Some(Value::String(s)) => vec![s],
            Some(Value::Array(items)) => items
                .into_iter()
                .filter_map(|v| match v {
                    Value::String(s) => Some(s),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        list.into_iter()
            .filter(|k| k.len() <= max_key_bytes)
            .collect()
    };
    Some(KeyChange {
        join: keys("join"),
        leave: keys("leave"),
    })
}

#[derive(Serialize)]
struct Introduction<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    keys: &'a [&'a str],
}

/// `{"type":"Introduction","id":"<id>","keys":[…]}`, keys in the given order.
pub fn introduction(id: &str, keys: &[&str]) -> Frame {
    let json = serde_json::to_vec(&Introduction {
        kind: "Introduction",
        id,
        keys,
    })
    .expect("serializing strings to a Vec cannot fail");
    frame::encode(frame::OP_TEXT, &json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apps::harness::text_of;

    fn conn(l: &str, r: &str, k: &str) -> Result<Endpoint, PathError> {
        Ok(Endpoint::Connection {
            local: l.into(),
            remote: r.into(),
            key: k.into(),
        })
    }

    #[test]
    fn paths_match_like_express() {
        let intro = |id: &str| Ok(Endpoint::Introduction { id: id.to_string() });
        assert_eq!(parse_path("/introduction/local-1", 256), intro("local-1"));
        assert_eq!(parse_path("/introduction/al%20ice", 256), intro("al ice"));
        assert_eq!(parse_path("/Introduction/a%2Fb:c/", 256), intro("a/b:c"));
        assert_eq!(parse_path("/introduction/a+b", 256), intro("a+b"));
        assert_eq!(
            parse_path("/connection/a/b:c/k", 256),
            conn("a", "b:c", "k")
        );
        assert_eq!(parse_path("/CONNECT/A/B/k/", 256), conn("A", "B", "k"));
        for p in [
            "/",
            "",
            "/foo",
            "/introduction",
            "/introduction/",
            "/introduction//",
            "/introduction/a/b",
            "/introduction/a//",
            "/connect/qrst7890",
            "/connection/qrst7890",
            "/connection/a//k",
            "/connection/a/b/k/x",
        ] {
            assert_eq!(parse_path(p, 256), Err(PathError::NotFound), "{p:?}");
        }
        for p in [
            "/introduction/%zz",
            "/introduction/%4",
            "/introduction/%ff",
            "/connection/a/b/%E2%9C",
        ] {
            assert_eq!(parse_path(p, 256), Err(PathError::BadRequest), "{p:?}");
        }
        let long = "x".repeat(257);
        assert_eq!(
            parse_path(&format!("/introduction/{long}"), 256),
            Err(PathError::BadRequest)
        );
        assert_eq!(
            parse_path(&format!("/connection/a/b/{}", &long[1..]), 256),
            conn("a", "b", &long[1..])
        );
    }

    #[test]
    fn key_changes_ignore_non_objects_and_skip_non_strings() {
        for t in ["this is not json", "null", "5", "[]", "\"x\"", "", "{"] {
            assert_eq!(parse_key_change(t, 256), None, "{t:?}");
        }
        let kc = |join: &[&str], leave: &[&str]| {
            Some(KeyChange {
                join: join.iter().map(|s| s.to_string()).collect(),
                leave: leave.iter().map(|s| s.to_string()).collect(),
            })
        };
        assert_eq!(parse_key_change(r#"{"leave":null}"#, 256), kc(&[], &[]));
        assert_eq!(
            parse_key_change(r#"{"join":[1,null,"k",{"a":1}]}"#, 256),
            kc(&["k"], &[])
        );
        assert_eq!(
            parse_key_change(r#"{"type":"Leave","join":"k","leave":5}"#, 256),
            kc(&["k"], &[])
        );
        assert_eq!(
            parse_key_change(r#"{"join":["a"],"join":["b"],"leave":["c"]}"#, 256),
            kc(&["b"], &["c"])
        );
        assert_eq!(
            parse_key_change(r#"{"join":["abcd","abc"]}"#, 3),
            kc(&["abc"], &[])
        );
    }

    #[test]
    fn introduction_has_exact_shape_and_escapes() {
        let f = introduction("qrst7890", &["qrs987", "happy-raccoon"]);
        assert_eq!(
            text_of(&f),
            r#"{"type":"Introduction","id":"qrst7890","keys":["qrs987","happy-raccoon"]}"#
        );
        let f = introduction("a\"b\u{1}/é", &[]);
        assert_eq!(
            text_of(&f),
            "{\"type\":\"Introduction\",\"id\":\"a\\\"b\\u0001/é\",\"keys\":[]}"
        );
    }
}
