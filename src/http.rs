//! HTTP before the upgrade: parse the request head (httparse), check the WebSocket
//! handshake, and build the plain answers. Pure functions; the reactor does the IO.

use base64::Engine as _;
use std::net::{IpAddr, SocketAddr};

/// An owned copy of what apps and limits need from a request head.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub method: String,
    /// The path as sent (percent-encoded), without the query.
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    /// Header names lower-cased, values as sent, in order.
    pub headers: Vec<(String, String)>,
    /// HTTP minor version (1 for HTTP/1.1).
    pub minor_version: u8,
    /// The client address: the TCP peer, or a trusted proxy's `X-Forwarded-For` entry.
    pub client_ip: Option<IpAddr>,
    /// Set by the core when the body was longer than the route's `max_body` and was not
    /// read (see [`crate::apps::Route::Http`]).
    pub body_too_large: bool,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of query parameter `key`, percent-decoded (`+` is a space, as in
    /// Node's `querystring`). Invalid UTF-8 after decoding is replaced lossily.
    pub fn query_param(&self, key: &str) -> Option<String> {
        query_pairs(&self.query)
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}

/// Iterates the decoded `key=value` pairs of a query string.
pub fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|s| !s.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k, true), percent_decode(v, true))
    })
}

/// Decodes `%XX` escapes (and `+` as a space when `plus_is_space`); malformed escapes
/// stay as written, as in Node's `querystring.unescape`.
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The outcome of parsing the bytes read so far.
#[derive(Debug)]
pub enum Parsed {
    /// More bytes are needed.
    Partial,
    /// A complete head of `head_len` bytes; anything after it belongs to the next protocol.
    Complete(Request, usize),
    /// The request is refused before routing, with this status.
    Reject(Status),
}

/// Parses a request head. `max_headers` bounds the header count (431 over it).
pub fn parse_request(buf: &[u8], max_headers: usize) -> Parsed {
    let mut storage = vec![httparse::EMPTY_HEADER; max_headers];
    let mut req = httparse::Request::new(&mut storage);
    match req.parse(buf) {
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Ok(httparse::Status::Complete(head_len)) => {
            let target = req.path.unwrap_or("/");
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            let headers = req
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_ascii_lowercase(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            Parsed::Complete(
                Request {
                    method: req.method.unwrap_or("").to_string(),
                    path: path.to_string(),
                    query: query.to_string(),
                    headers,
                    minor_version: req.version.unwrap_or(1),
                    client_ip: None,
                    body_too_large: false,
                },
                head_len,
            )
        }
        Err(httparse::Error::TooManyHeaders) => Parsed::Reject(Status::HEADERS_TOO_LARGE),
        Err(_) => Parsed::Reject(Status::BAD_REQUEST),
    }
}

/// The client address for limits and logs: the TCP peer, or, when the peer is a trusted
/// proxy, the right-most `X-Forwarded-For` entry that is not itself trusted.
pub fn client_ip(peer: SocketAddr, xff: Option<&str>, trusted: &[IpAddr]) -> IpAddr {
    let peer_ip = peer.ip();
    if !trusted.contains(&peer_ip) {
        return peer_ip;
    }
    let Some(xff) = xff else { return peer_ip };
    xff.rsplit(',')
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .find(|ip| !trusted.contains(ip))
        .unwrap_or(peer_ip)
}

/// An HTTP status with its reason phrase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status(pub u16, pub &'static str);

impl Status {
    pub const OK: Status = Status(200, "OK");
    pub const BAD_REQUEST: Status = Status(400, "Bad Request");
    pub const UNAUTHORIZED: Status = Status(401, "Unauthorized");
    pub const FORBIDDEN: Status = Status(403, "Forbidden");
    pub const NOT_FOUND: Status = Status(404, "Not Found");
    pub const REQUEST_TIMEOUT: Status = Status(408, "Request Timeout");
    pub const PAYLOAD_TOO_LARGE: Status = Status(413, "Payload Too Large");
    pub const UPGRADE_REQUIRED: Status = Status(426, "Upgrade Required");
    pub const TOO_MANY_REQUESTS: Status = Status(429, "Too Many Requests");
    pub const HEADERS_TOO_LARGE: Status = Status(431, "Request Header Fields Too Large");
    pub const SERVICE_UNAVAILABLE: Status = Status(503, "Service Unavailable");
}

/// A complete plain HTTP response that closes the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: Status,
    pub content_type: &'static str,
    pub extra_headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(status: Status, body: &str) -> Response {
        Response {
            status,
            content_type: "text/plain",
            extra_headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    /// A status answer whose body is its reason phrase.
    pub fn status(status: Status) -> Response {
        Response::text(status, status.1)
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.extra_headers.push((name.into(), value.into()));
        self
    }

    /// The response on the wire, closing the connection after it.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_bytes_with(None)
    }

    /// The response on the wire; `keep_alive: Some(seconds)` keeps the connection open for
    /// the next request and says for how long (`Keep-Alive: timeout=`, as Node's HTTP
    /// server does, so clients drop an idle connection before the server does).
    pub fn to_bytes_with(&self, keep_alive: Option<u64>) -> Vec<u8> {
        let connection = match keep_alive {
            Some(secs) => format!("Connection: keep-alive\r\nKeep-Alive: timeout={secs}\r\n"),
            None => "Connection: close\r\n".to_string(),
        };
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{connection}",
            self.status.0,
            self.status.1,
            self.content_type,
            self.body.len()
        );
        for (n, v) in &self.extra_headers {
            out.push_str(n);
            out.push_str(": ");
            out.push_str(v);
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// What a request head asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Intent {
    /// A valid WebSocket upgrade; the value is `Sec-WebSocket-Key`.
    WebSocket(String),
    /// A plain HTTP request (no `Upgrade: websocket`).
    Plain,
    /// An upgrade attempt that is malformed.
    BadUpgrade(Response),
}

fn has_token(value: Option<&str>, token: &str) -> bool {
    value.is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// Whether the client lets the connection stay open after the answer: HTTP/1.1 unless it
/// sent `Connection: close`, HTTP/1.0 only with `Connection: keep-alive` (RFC 9112 9.3).
pub fn wants_keep_alive(req: &Request) -> bool {
    let connection = req.header("connection");
    if has_token(connection, "close") {
        return false;
    }
    req.minor_version >= 1 || has_token(connection, "keep-alive")
}

/// Whether the request has a body in the stream (`Content-Length` other than 0, or any
/// `Transfer-Encoding`): one the core did not read cannot be skipped to reach the next
/// request, so its answer closes the connection.
pub fn has_body(req: &Request) -> bool {
    req.header("transfer-encoding").is_some()
        || req
            .header("content-length")
            .is_some_and(|v| v.trim() != "0")
}

/// Classifies a request and validates the RFC 6455 handshake fields.
pub fn intent(req: &Request) -> Intent {
    if !has_token(req.header("upgrade"), "websocket") {
        return Intent::Plain;
    }
    if req.method != "GET" || req.minor_version < 1 {
        return Intent::BadUpgrade(Response::text(
            Status::BAD_REQUEST,
            "WebSocket upgrade needs GET over HTTP/1.1",
        ));
    }
    if !has_token(req.header("connection"), "upgrade") {
        return Intent::BadUpgrade(Response::text(
            Status::BAD_REQUEST,
            "Missing Connection: Upgrade",
        ));
    }
    if req.header("sec-websocket-version").map(str::trim) != Some("13") {
        return Intent::BadUpgrade(
            Response::text(Status::UPGRADE_REQUIRED, "Unsupported WebSocket version")
                .with_header("Sec-WebSocket-Version", "13"),
        );
    }
    let key = req.header("sec-websocket-key").map(str::trim).unwrap_or("");
    let valid_key = base64::engine::general_purpose::STANDARD
        .decode(key)
        .is_ok_and(|k| k.len() == 16);
    if !valid_key {
        return Intent::BadUpgrade(Response::text(
            Status::BAD_REQUEST,
            "Invalid Sec-WebSocket-Key",
        ));
    }
    Intent::WebSocket(key.to_string())
}

/// The `101 Switching Protocols` answer for `key`, with any extra headers (cookies).
pub fn switching_protocols(key: &str, extra_headers: &[(String, String)]) -> Vec<u8> {
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut out = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
    );
    for (n, v) in extra_headers {
        out.push_str(n);
        out.push_str(": ");
        out.push_str(v);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// Whether `origin` passes the configured list (empty list: any origin).
pub fn origin_allowed(allowed: &[String], origin: Option<&str>) -> bool {
    if allowed.is_empty() {
        return true;
    }
    origin.is_some_and(|o| {
        allowed
            .iter()
            .any(|a| a == "*" || a.eq_ignore_ascii_case(o))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Request {
        match parse_request(s.as_bytes(), 16) {
            Parsed::Complete(r, n) => {
                assert_eq!(n, s.len());
                r
            }
            other => panic!("{other:?}"),
        }
    }

    const UPGRADE: &str = "GET /chat?room=a%20b&x=1+2 HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

    #[test]
    fn parses_path_query_and_headers() {
        let r = parse(UPGRADE);
        assert_eq!(r.path, "/chat");
        assert_eq!(r.query_param("room").as_deref(), Some("a b"));
        assert_eq!(r.query_param("x").as_deref(), Some("1 2"));
        assert_eq!(r.header("host"), Some("h"));
        assert_eq!(
            intent(&r),
            Intent::WebSocket("dGhlIHNhbXBsZSBub25jZQ==".into())
        );
    }

    #[test]
    fn partial_and_too_many_headers() {
        assert!(matches!(
            parse_request(b"GET / HTTP/1.1\r\nHo", 16),
            Parsed::Partial
        ));
        let many = format!("GET / HTTP/1.1\r\n{}\r\n", "a: b\r\n".repeat(20));
        assert!(matches!(
            parse_request(many.as_bytes(), 16),
            Parsed::Reject(Status::HEADERS_TOO_LARGE)
        ));
        assert!(matches!(
            parse_request(b"\x00\x01 garbage\r\n\r\n", 16),
            Parsed::Reject(Status::BAD_REQUEST)
        ));
    }

    #[test]
    fn bad_handshakes_are_named() {
        let v12 = UPGRADE.replace("Version: 13", "Version: 12");
        match intent(&parse(&v12)) {
            Intent::BadUpgrade(r) => {
                assert_eq!(r.status.0, 426);
                assert!(
                    r.to_bytes()
                        .windows(24)
                        .any(|w| w == b"Sec-WebSocket-Version: 1")
                );
            }
            other => panic!("{other:?}"),
        }
        let badkey = UPGRADE.replace("dGhlIHNhbXBsZSBub25jZQ==", "short");
        assert!(matches!(intent(&parse(&badkey)), Intent::BadUpgrade(r) if r.status.0 == 400));
        let post = UPGRADE.replace("GET", "POST");
        assert!(matches!(intent(&parse(&post)), Intent::BadUpgrade(r) if r.status.0 == 400));
        assert_eq!(intent(&parse("GET / HTTP/1.1\r\n\r\n")), Intent::Plain);
    }

    #[test]
    fn accept_key_matches_rfc_example() {
        let r = String::from_utf8(switching_protocols("dGhlIHNhbXBsZSBub25jZQ==", &[])).unwrap();
        assert!(r.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    }

    #[test]
    fn percent_decoding_keeps_malformed_escapes() {
        assert_eq!(percent_decode("%41%zz%4", false), "A%zz%4");
        assert_eq!(percent_decode("%E2%9C%93", false), "✓");
        assert_eq!(percent_decode("%ff", false), "\u{FFFD}");
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let peer = SocketAddr::new(proxy, 1);
        assert_eq!(client_ip(peer, Some("1.2.3.4, 5.6.7.8"), &[]), proxy);
        assert_eq!(
            client_ip(peer, Some("1.2.3.4, 5.6.7.8, 10.0.0.1"), &[proxy]),
            "5.6.7.8".parse::<IpAddr>().unwrap()
        );
    }
}

/// Progress of decoding a `Transfer-Encoding: chunked` body.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunked {
    /// More bytes are needed.
    Partial,
    /// The whole body, decoded, and how many raw bytes it took (what follows is the next
    /// request on a kept-alive connection).
    Complete(Vec<u8>, usize),
    /// The decoded body would be larger than the cap.
    TooLarge,
    /// Not valid chunked encoding.
    Invalid,
}

/// Decodes a chunked body from the bytes read so far (chunk extensions and trailers are
/// accepted and ignored). `max` caps the decoded size, checked as chunks arrive.
pub fn dechunk(raw: &[u8], max: usize) -> Chunked {
    let line_end = |from: usize| {
        raw[from..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map(|i| from + i)
    };
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let Some(eol) = line_end(pos) else {
            // A size line longer than any sane one is not coming.
            return if raw.len() - pos > 1024 {
                Chunked::Invalid
            } else {
                Chunked::Partial
            };
        };
        let line = &raw[pos..eol];
        let digits = line.split(|&b| b == b';').next().unwrap_or(&[]);
        let digits = std::str::from_utf8(digits).map(str::trim).unwrap_or("");
        if digits.is_empty() || digits.len() > 15 {
            return Chunked::Invalid;
        }
        let Ok(size) = usize::from_str_radix(digits, 16) else {
            return Chunked::Invalid;
        };
        pos = eol + 2;
        if size == 0 {
            // Trailer lines up to an empty line.
            loop {
                let Some(eol) = line_end(pos) else {
                    return Chunked::Partial;
                };
                if eol == pos {
                    return Chunked::Complete(body, eol + 2);
                }
                pos = eol + 2;
            }
        }
        if body.len() + size > max {
            return Chunked::TooLarge;
        }
        if raw.len() < pos + size + 2 {
            return Chunked::Partial;
        }
        if &raw[pos + size..pos + size + 2] != b"\r\n" {
            return Chunked::Invalid;
        }
        body.extend_from_slice(&raw[pos..pos + size]);
        pos += size + 2;
    }
}

#[cfg(test)]
mod chunked_tests {
    use super::*;

    #[test]
    fn chunked_bodies_decode_in_pieces_and_respect_the_cap() {
        let raw = b"2\r\n40\r\n3;ext=1\r\nabc\r\n0\r\nX-T: 1\r\n\r\n";
        for cut in 0..raw.len() {
            assert_eq!(dechunk(&raw[..cut], 100), Chunked::Partial, "cut at {cut}");
        }
        assert_eq!(
            dechunk(raw, 100),
            Chunked::Complete(b"40abc".to_vec(), raw.len())
        );
        let mut pipelined = raw.to_vec();
        pipelined.extend_from_slice(b"GET / HTTP/1.1\r\n");
        assert_eq!(
            dechunk(&pipelined, 100),
            Chunked::Complete(b"40abc".to_vec(), raw.len())
        );
        assert_eq!(dechunk(b"0\r\n\r\n", 0), Chunked::Complete(Vec::new(), 5));
        assert_eq!(dechunk(raw, 4), Chunked::TooLarge);
        assert_eq!(dechunk(b"zz\r\n", 100), Chunked::Invalid);
        assert_eq!(dechunk(b"2\r\nabcd\r\n", 100), Chunked::Invalid);
        assert_eq!(dechunk(&[b'1'; 2000], 100), Chunked::Invalid);
    }
}
