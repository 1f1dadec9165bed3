//! The snapshot JSON, byte for byte: `{"messages":[…],"connectedUsers":[…]}`.
//!
//! Each message and each user id is serialized once, when it is accepted or joins; a
//! snapshot is then a concatenation of those pieces into one reused buffer, framed once
//! and shared by every member.

use crate::apps::Millis;
use std::fmt::Write as _;

/// A JSON string literal, escaped as `JSON.stringify` does (serde_json matches it).
pub fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("a str always serializes")
}

/// `{"userId":…,"msg":…,"ts":"…"}` for one accepted message.
pub fn message_json(user_json: &str, msg: &str, ts: Millis) -> String {
    let mut out = String::with_capacity(user_json.len() + msg.len() + 56);
    out.push_str(r#"{"userId":"#);
    out.push_str(user_json);
    out.push_str(r#","msg":"#);
    out.push_str(&json_string(msg));
    out.push_str(r#","ts":""#);
    iso_millis(ts, &mut out);
    out.push_str(r#""}"#);
    out
}

/// Writes the snapshot of `messages` (JSON objects) and `users` (JSON strings) into `out`.
pub fn write<'a>(
    out: &mut String,
    messages: impl Iterator<Item = &'a str>,
    users: impl Iterator<Item = &'a str>,
) {
    out.clear();
    out.push_str(r#"{"messages":["#);
    join(out, messages);
    out.push_str(r#"],"connectedUsers":["#);
    join(out, users);
    out.push_str("]}");
}

fn join<'a>(out: &mut String, items: impl Iterator<Item = &'a str>) {
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(item);
    }
}

/// `YYYY-MM-DDTHH:MM:SS.sssZ` (UTC) for `ms` since the Unix epoch, as `Date.toISOString`.
pub fn iso_millis(ms: Millis, out: &mut String) {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        ms % 1000
    );
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iso(ms: Millis) -> String {
        let mut s = String::new();
        iso_millis(ms, &mut s);
        s
    }

    #[test]
    fn iso_timestamps_match_to_iso_string() {
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso(1_795_346_857_536), "2026-11-22T11:27:37.536Z");
        assert_eq!(iso(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso(4_107_542_399_999), "2100-02-28T23:59:59.999Z");
        assert_eq!(iso(1_709_251_199_007), "2024-02-29T23:59:59.007Z");
    }

    #[test]
    fn ses_18_escaping_like_json_stringify() {
        let msg = "a\"b\\c\n\u{1}/\u{2028}";
        let j = message_json(&json_string("alice"), msg, 0);
        assert_eq!(
            j,
            "{\"userId\":\"alice\",\"msg\":\"a\\\"b\\\\c\\n\\u0001/\u{2028}\",\"ts\":\"1970-01-01T00:00:00.000Z\"}"
        );
        assert!(j.as_bytes().windows(3).any(|w| w == [0xe2, 0x80, 0xa8]));
        assert_eq!(
            json_string("\u{8}\t\u{c}\r\u{1f}\u{7f}"),
            "\"\\b\\t\\f\\r\\u001f\u{7f}\""
        );
    }

    #[test]
    fn empty_and_full_shapes() {
        let mut out = String::new();
        write(&mut out, [].into_iter(), [r#""alice""#].into_iter());
        assert_eq!(out, r#"{"messages":[],"connectedUsers":["alice"]}"#);
        write(
            &mut out,
            [r#"{"a":1}"#, r#"{"b":2}"#].into_iter(),
            [r#""a""#, r#""b""#].into_iter(),
        );
        assert_eq!(
            out,
            r#"{"messages":[{"a":1},{"b":2}],"connectedUsers":["a","b"]}"#
        );
    }
}
