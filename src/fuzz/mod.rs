//! Entry points for the cargo-fuzz targets in `fuzz/` (feature `fuzz`, never in a release
//! build). Each target is one call into this module, so the code under test stays next
//! to the crate and the targets stay three lines long (as rustls does).
//!
//! Every entry takes arbitrary bytes, must never panic, and asserts the invariants the
//! rest of the server relies on (what the parser hands on is what it promised to).

mod ops;

pub use ops::{app_ops, router_ops};

use crate::apps::{self, Route};
use crate::config::{AppKind, Config, Secret, SessionSettings};
use crate::http::{self, Intent, Parsed};
use std::io::{self, Read, Write};
use tungstenite::Message;
use tungstenite::protocol::{Role, WebSocketConfig, WebSocketContext};

/// The pre-upgrade request parser, the handshake check and every app's `route`.
pub fn http_request(data: &[u8]) {
    let Parsed::Complete(mut req, head_len) = http::parse_request(data, 32) else {
        return;
    };
    assert!(
        head_len <= data.len(),
        "the head lies inside the bytes read"
    );
    req.client_ip = Some(std::net::Ipv4Addr::LOCALHOST.into());
    let websocket = match http::intent(&req) {
        Intent::WebSocket(key) => {
            assert!(!key.is_empty(), "an accepted upgrade has a key");
            let _ = http::switching_protocols(&key, &[]);
            true
        }
        Intent::Plain => false,
        Intent::BadUpgrade(r) => {
            assert!(r.status.0 >= 400, "a bad upgrade is refused");
            return;
        }
    };
    let _ = http::origin_allowed(&["https://a.example".into()], req.header("origin"));
    let cfg = config();
    for app in AppKind::IMPLEMENTED {
        let route = match app {
            // The live route reads the wall clock for `exp`; fix it for reproducible runs.
            AppKind::Session => apps::session::route(&req, websocket, &cfg.session_settings, 0),
            _ => apps::route(app, &req, websocket, &cfg),
        };
        match route {
            Route::Respond(r) => {
                let _ = r.to_bytes();
            }
            Route::Upgrade { headers, .. } => {
                for (n, v) in &headers {
                    assert!(!n.contains(['\r', '\n']) && !v.contains(['\r', '\n']));
                }
            }
            Route::Http { .. } => {}
        }
    }
}

/// The config the fuzz entries run with: defaults plus the secrets the apps need.
pub(crate) fn config() -> Config {
    let mut cfg = Config {
        session_settings: session_settings(),
        ..Config::default()
    };
    cfg.rooms_opts.admin_signing_key = Some(Secret::from(ADMIN_KEY.to_string()));
    cfg
}

pub(crate) const JWT_KEY: &str = "0123456789abcdef0123456789abcdef";
pub(crate) const ADMIN_KEY: &str = "sekrit";

pub(crate) fn session_settings() -> SessionSettings {
    SessionSettings {
        jwt_secret: Some(Secret::from(JWT_KEY.to_string())),
        jwt_algorithms: vec!["HS256".into(), "HS384".into(), "HS512".into()],
        ..SessionSettings::default()
    }
}

/// A socket that hands out `data` in chunks of the sizes the input chose, then blocks;
/// writes (pongs, close replies) are collected like the reactor's `Outbound`.
struct MockStream<'a> {
    data: &'a [u8],
    chunks: &'a [u8],
    written: Vec<u8>,
}

impl Read for MockStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.data.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let want = match self.chunks.split_first() {
            Some((&c, rest)) => {
                self.chunks = rest;
                usize::from(c).max(1)
            }
            None => self.data.len(),
        };
        let n = want.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

impl Write for MockStream<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The WebSocket frame reader as the reactor runs it (server role, small read buffer,
/// message and frame limits), over a stream delivering the input in arbitrary chunks.
/// Input: `[limit, n, n chunk sizes…, frames…]`.
pub fn ws_frames(data: &[u8]) {
    let Some((&limit, rest)) = data.split_first() else {
        return;
    };
    let Some((&n, rest)) = rest.split_first() else {
        return;
    };
    let n = usize::from(n % 16).min(rest.len());
    let (chunks, frames) = rest.split_at(n);
    let max = 16 + usize::from(limit) * 64;
    let cfg = WebSocketConfig::default()
        .read_buffer_size(512)
        .write_buffer_size(0)
        .max_write_buffer_size(usize::MAX)
        .max_message_size(Some(max))
        .max_frame_size(Some(max));
    let mut ctx = WebSocketContext::from_partially_read(Vec::new(), Role::Server, Some(cfg));
    let mut io = MockStream {
        data: frames,
        chunks,
        written: Vec::new(),
    };
    // Each read consumes input or ends the loop; the bound is a backstop.
    for _ in 0..=frames.len() + 1 {
        match ctx.read(&mut io) {
            // Close carries the reply tungstenite queued (1002 for a bad code), not input.
            Ok(m @ (Message::Text(_) | Message::Binary(_))) => {
                assert!(m.len() <= max, "a data message over the limit: {}", m.len());
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => {
                let d = crate::error::Disconnect::from_ws_error(&e);
                let _ = (d.label(), d.close_frame());
                break;
            }
        }
    }
    let _ = ctx.flush(&mut io);
}

/// Lossy UTF-8, as the apps read binary frames.
fn lossy(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// pester's raw-face JSON decoder and its Socket.IO argument decoder.
pub fn pester_json(data: &[u8]) {
    let text = lossy(data);
    let _ = apps::pester::channel::decode_raw(&text);
    let v = serde_json::from_str::<serde_json::Value>(&text).ok();
    let _ = apps::pester::channel::decode_sio_arg(v.as_ref());
}

/// rooms' client frame parser and the JSON helpers it echoes client data through.
pub fn rooms_message(data: &[u8]) {
    use apps::rooms::wire;
    let text = lossy(data);
    if let Some(m) = wire::parse_incoming(&text) {
        if let Some(d) = m.data {
            let _ = wire::classify(d);
            let _ = wire::id_text(d);
            if let Some(members) = wire::members(d) {
                let _ = wire::js_order(members.0.iter().map(|(k, _)| k.as_str()));
            }
            let minified = wire::minify(d.get());
            assert!(
                serde_json::from_str::<&serde_json::value::RawValue>(&minified).is_ok(),
                "minified JSON stays JSON: {minified:?}"
            );
        }
        let _ = wire::typed(&m.kind, "null");
    }
    let _ = apps::rooms::decimal::Decimal::parse(&text);
    let _ = wire::uri_component(&text);
}

/// session's chat-line handling: the text (or lossy binary) of one member, through the
/// app, into a snapshot.
pub fn session_text(data: &[u8]) {
    ops::session_line(data);
}

/// signal's Join/Leave decoder and the connection path parser.
pub fn signal_message(data: &[u8]) {
    use apps::signal::wire;
    let text = lossy(data);
    if let Some(kc) = wire::parse_key_change(&text, 64) {
        assert!(kc.join.iter().chain(&kc.leave).all(|k| k.len() <= 64));
    }
    let _ = wire::parse_path(&text, 64);
}

/// The Engine.IO packet and polling payload decoders.
pub fn engineio(data: &[u8]) {
    use apps::pester::engineio;
    let _ = engineio::decode_text(&lossy(data));
    let _ = engineio::decode_part(data);
    for _ in engineio::decode_payload(data).take(data.len() + 1) {}
}

/// The Socket.IO packet decoder.
pub fn socketio(data: &[u8]) {
    let _ = apps::pester::socketio::decode(&lossy(data));
}

/// JWT parse and verify, on the raw token and on a re-signed copy so the fuzzer gets past
/// the signature into the header and claim checks. Input: `[now, alg, token…]`.
pub fn jwt(data: &[u8]) {
    use apps::session::jwt::{self, Alg};
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let s = session_settings();
    let now = 1_700_000_000 + u64::from(sel) * 1000;
    let text = lossy(rest);
    let _ = jwt::verify(&text, Some("h"), now, &s);
    let _ = jwt::claims_of_verified(&text);
    // `header.payload` as JSON texts, signed with the real key.
    let (header, payload) = text.split_once('\n').unwrap_or((&text, "{}"));
    let alg = [Alg::HS256, Alg::HS384, Alg::HS512][usize::from(sel % 3)];
    let token = jwt::sign(alg, header, payload, JWT_KEY.as_bytes());
    if let Ok(claims) = jwt::verify(&token, Some("h"), now, &s) {
        assert!(!claims.user_id.is_empty() && !claims.room_id.is_empty());
        assert_eq!(jwt::claims_of_verified(&token), Some(claims));
    }
}

#[cfg(test)]
mod tests {
    /// Every committed seed and regression input, through its entry, without libFuzzer
    /// (`cargo test --lib --features fuzz fuzz::`).
    #[test]
    fn committed_corpus_replays() {
        let entries: [(&str, fn(&[u8])); 11] = [
            ("http_request", super::http_request),
            ("ws_frames", super::ws_frames),
            ("pester_json", super::pester_json),
            ("rooms_message", super::rooms_message),
            ("session_text", super::session_text),
            ("signal_message", super::signal_message),
            ("engineio", super::engineio),
            ("socketio", super::socketio),
            ("jwt", super::jwt),
            ("router_ops", super::router_ops),
            ("app_ops", super::app_ops),
        ];
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
        for (name, entry) in entries {
            let dir = root.join(name);
            let files = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir:?}: {e}"));
            let mut n = 0;
            for f in files {
                let path = f.expect("a readable dir entry").path();
                entry(&std::fs::read(&path).expect("a readable seed"));
                n += 1;
            }
            assert!(n > 0, "no seeds for {name}");
        }
    }
}
