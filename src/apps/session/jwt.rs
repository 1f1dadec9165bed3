//! HS256/384/512 JWT verification as `session.md` orders it (RFC 8725 practice): length cap,
//! strict base64url, algorithm allow-list before any HMAC work, constant-time signature
//! check, then claims. Pure: the caller passes `now` and the `Host` header.

use crate::config::SessionSettings;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Map, Value};
use sha2::{Sha256, Sha384, Sha512};

/// Why a token was refused; each maps to one 401 body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    MissingToken,
    InvalidToken,
    Expired,
    NotYetValid,
    HostMismatch,
}

impl Rejection {
    /// The 401 body (session.md, checks table).
    pub fn body(self) -> &'static str {
        match self {
            Rejection::MissingToken => "missing token",
            Rejection::InvalidToken => "invalid token",
            Rejection::Expired => "token expired",
            Rejection::NotYetValid => "token not yet valid",
            Rejection::HostMismatch => "host mismatch",
        }
    }
}

/// The claims a session needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    pub user_id: String,
    pub room_id: String,
}

/// The HMAC algorithms we know. Anything else is never verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    HS256,
    HS384,
    HS512,
}

impl Alg {
    pub fn parse(name: &str) -> Option<Alg> {
        match name {
            "HS256" => Some(Alg::HS256),
            "HS384" => Some(Alg::HS384),
            "HS512" => Some(Alg::HS512),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Alg::HS256 => "HS256",
            Alg::HS384 => "HS384",
            Alg::HS512 => "HS512",
        }
    }

    /// `verify_slice` compares in constant time and refuses a tag of another length.
    fn verify(self, key: &[u8], input: &[u8], sig: &[u8]) -> bool {
        fn check<M: Mac + KeyInit>(key: &[u8], input: &[u8], sig: &[u8]) -> bool {
            let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any size");
            mac.update(input);
            mac.verify_slice(sig).is_ok()
        }
        match self {
            Alg::HS256 => check::<Hmac<Sha256>>(key, input, sig),
            Alg::HS384 => check::<Hmac<Sha384>>(key, input, sig),
            Alg::HS512 => check::<Hmac<Sha512>>(key, input, sig),
        }
    }

    fn sign(self, key: &[u8], input: &[u8]) -> Vec<u8> {
        fn mac<M: Mac + KeyInit>(key: &[u8], input: &[u8]) -> Vec<u8> {
            let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any size");
            mac.update(input);
            mac.finalize().into_bytes().to_vec()
        }
        match self {
            Alg::HS256 => mac::<Hmac<Sha256>>(key, input),
            Alg::HS384 => mac::<Hmac<Sha384>>(key, input),
            Alg::HS512 => mac::<Hmac<Sha512>>(key, input),
        }
    }
}

/// Strict base64url: URL-safe alphabet, no padding, no whitespace, unused bits zero.
fn b64(segment: &str) -> Result<Vec<u8>, Rejection> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| Rejection::InvalidToken)
}

fn object(bytes: &[u8]) -> Result<Map<String, Value>, Rejection> {
    serde_json::from_slice(bytes).map_err(|_| Rejection::InvalidToken)
}

/// The three segments, or `None` unless there are exactly three.
fn segments(token: &str) -> Option<[&str; 3]> {
    let mut it = token.split('.');
    let s = [it.next()?, it.next()?, it.next()?];
    it.next().is_none().then_some(s)
}

fn non_empty_str(payload: &Map<String, Value>, key: &str) -> Result<String, Rejection> {
    match payload.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(Rejection::InvalidToken),
    }
}

/// Verifies `token` (already taken from the query, non-empty) against `settings` at Unix
/// time `now` (seconds), for a request whose `Host` header is `host`.
pub fn verify(
    token: &str,
    host: Option<&str>,
    now: u64,
    settings: &SessionSettings,
) -> Result<Claims, Rejection> {
    use Rejection::*;
    if token.is_empty() {
        return Err(MissingToken);
    }
    if token.len() > settings.max_token_bytes {
        return Err(InvalidToken);
    }
    let [h64, p64, s64] = segments(token).ok_or(InvalidToken)?;
    let (header, payload, sig) = (b64(h64)?, b64(p64)?, b64(s64)?);
    let header = object(&header)?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .filter(|a| settings.jwt_algorithms.iter().any(|allowed| allowed == a))
        .and_then(Alg::parse)
        .ok_or(InvalidToken)?;
    if header.contains_key("crit") {
        return Err(InvalidToken);
    }
    let key = settings.jwt_secret.as_ref().ok_or(InvalidToken)?.bytes();
    let signed = &token[..h64.len() + 1 + p64.len()];
    if !alg.verify(key, signed.as_bytes(), &sig) {
        return Err(InvalidToken);
    }
    let payload = object(&payload)?;
    let (now, leeway) = (now as f64, settings.jwt_leeway_secs as f64);
    if let Some(exp) = payload.get("exp") {
        let exp = exp.as_f64().ok_or(InvalidToken)?;
        if now >= exp + leeway {
            return Err(Expired);
        }
    }
    if let Some(nbf) = payload.get("nbf") {
        let nbf = nbf.as_f64().ok_or(InvalidToken)?;
        if nbf > now + leeway {
            return Err(NotYetValid);
        }
    }
    let claims = Claims {
        user_id: non_empty_str(&payload, "userId")?,
        room_id: non_empty_str(&payload, "roomId")?,
    };
    if settings.check_host {
        let claim = payload.get("host").and_then(Value::as_str);
        if claim.is_none() || claim != host {
            return Err(HostMismatch);
        }
    }
    Ok(claims)
}

/// The claims of a token [`verify`] already accepted for this same request (the core
/// hands the app the request head it routed), without checking it again.
pub fn claims_of_verified(token: &str) -> Option<Claims> {
    let [_, p64, _] = segments(token)?;
    let payload = object(&b64(p64).ok()?).ok()?;
    Some(Claims {
        user_id: non_empty_str(&payload, "userId").ok()?,
        room_id: non_empty_str(&payload, "roomId").ok()?,
    })
}

/// Signs `header` and `payload` (JSON texts, used as given) into a compact JWS.
pub fn sign(alg: Alg, header: &str, payload: &str, key: &[u8]) -> String {
    let mut token = URL_SAFE_NO_PAD.encode(header);
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(payload));
    let sig = alg.sign(key, token.as_bytes());
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(sig));
    token
}

/// The payload of a development token, keys in the spec's order.
#[derive(serde::Serialize)]
struct DevClaims<'a> {
    #[serde(rename = "userId")]
    user_id: &'a str,
    #[serde(rename = "roomId")]
    room_id: &'a str,
    host: &'a str,
    iat: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<u64>,
}

/// A development token (`switchboard token`): HS256, issued at `now`, valid `ttl`
/// seconds (0: no `exp`).
pub fn mint(user: &str, room: &str, host: &str, now: u64, ttl: u64, key: &[u8]) -> String {
    let claims = DevClaims {
        user_id: user,
        room_id: room,
        host,
        iat: now,
        exp: (ttl > 0).then(|| now.saturating_add(ttl)),
    };
    let payload = serde_json::to_string(&claims).expect("plain structs serialize");
    sign(Alg::HS256, r#"{"alg":"HS256","typ":"JWT"}"#, &payload, key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    const NOW: u64 = 1_700_000_000;
    const HOST: &str = "127.0.0.1:8000";
    const KEY: &str = "0123456789abcdef0123456789abcdef";
    const HS256: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

    fn settings() -> SessionSettings {
        SessionSettings {
            jwt_secret: Some(Secret::from(KEY.to_string())),
            ..SessionSettings::default()
        }
    }

    fn payload() -> String {
        format!(r#"{{"userId":"alice","roomId":"r1","host":"{HOST}","iat":{NOW}}}"#)
    }

    fn tok(header: &str, payload: &str) -> String {
        sign(Alg::HS256, header, payload, KEY.as_bytes())
    }

    fn check(token: &str) -> Result<Claims, Rejection> {
        verify(token, Some(HOST), NOW, &settings())
    }

    fn alice() -> Claims {
        Claims {
            user_id: "alice".into(),
            room_id: "r1".into(),
        }
    }

    /// Replaces segment `i` of `token`.
    fn with_segment(token: &str, i: usize, seg: &str) -> String {
        let mut s: Vec<&str> = token.split('.').collect();
        s[i] = seg;
        s.join(".")
    }

    #[test]
    fn valid_token_is_accepted() {
        assert_eq!(check(&tok(HS256, &payload())), Ok(alice()));
        // Header fields other than alg and crit are ignored, never fetched.
        let h = r#"{"alg":"HS256","kid":"k","jku":"http://x/","typ":"x"}"#;
        assert_eq!(check(&tok(h, &payload())), Ok(alice()));
    }

    #[test]
    fn ses_11_alg_none_and_non_hmac_are_rejected() {
        let p64 = URL_SAFE_NO_PAD.encode(payload());
        for alg in ["none", "None", "NONE", "RS256", "ES256", "hs256", ""] {
            let h64 = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}"}}"#));
            for sig in ["", "c2ln"] {
                let t = format!("{h64}.{p64}.{sig}");
                assert_eq!(check(&t), Err(Rejection::InvalidToken), "{alg} {sig:?}");
            }
            // Even correctly HMAC-signed under a foreign alg name.
            let h = format!(r#"{{"alg":"{alg}"}}"#);
            assert_eq!(check(&tok(&h, &payload())), Err(Rejection::InvalidToken));
        }
        assert_eq!(
            check(&tok(r#"{"typ":"JWT"}"#, &payload())),
            Err(Rejection::InvalidToken)
        );
        assert_eq!(
            check(&tok(r#"{"alg":"HS256","crit":["exp"]}"#, &payload())),
            Err(Rejection::InvalidToken)
        );
    }

    #[test]
    fn ses_11_hs512_when_not_allowed() {
        let t = sign(Alg::HS512, r#"{"alg":"HS512"}"#, &payload(), KEY.as_bytes());
        assert_eq!(check(&t), Err(Rejection::InvalidToken));
    }

    #[test]
    fn ses_11_bad_signatures() {
        let good = tok(HS256, &payload());
        let sig = URL_SAFE_NO_PAD
            .decode(good.rsplit('.').next().unwrap())
            .unwrap();
        for bit in [0, 7, 100, 255] {
            let mut s = sig.clone();
            s[bit / 8] ^= 1 << (bit % 8);
            let t = with_segment(&good, 2, &URL_SAFE_NO_PAD.encode(&s));
            assert_eq!(check(&t), Err(Rejection::InvalidToken), "bit {bit}");
        }
        let short = with_segment(&good, 2, &URL_SAFE_NO_PAD.encode(&sig[..31]));
        assert_eq!(check(&short), Err(Rejection::InvalidToken));
        let long = [&sig[..], &[0]].concat();
        let long = with_segment(&good, 2, &URL_SAFE_NO_PAD.encode(long));
        assert_eq!(check(&long), Err(Rejection::InvalidToken));
        assert_eq!(
            check(&with_segment(&good, 2, "")),
            Err(Rejection::InvalidToken)
        );
        let wrong_key = sign(
            Alg::HS256,
            HS256,
            &payload(),
            b"another secret, also 32 bytes!!",
        );
        assert_eq!(check(&wrong_key), Err(Rejection::InvalidToken));
        // A payload changed after signing.
        let other = URL_SAFE_NO_PAD.encode(payload().replace("alice", "mallory"));
        assert_eq!(
            check(&with_segment(&good, 1, &other)),
            Err(Rejection::InvalidToken)
        );
    }

    #[test]
    fn ses_11_strict_base64url() {
        // A header whose encoding needs padding: {"alg":"HS256"} is 15 bytes.
        let h = r#"{"alg":"HS256"}"#;
        let good = tok(h, &payload());
        assert!(check(&good).is_ok());
        let h64 = good.split('.').next().unwrap();
        assert_eq!(h64.len() % 4, 0, "15 bytes need no padding");
        let h = r#"{"alg":"HS256" }"#; // 16 bytes: two padding chars in standard base64
        let good = tok(h, &payload());
        assert!(check(&good).is_ok());
        let h64 = good.split('.').next().unwrap().to_string();
        assert_eq!(h64.len() % 4, 2);
        let padded = with_segment(&good, 0, &format!("{h64}=="));
        assert_eq!(check(&padded), Err(Rejection::InvalidToken));
        // Unused trailing bits set: the last char of a 2-mod-4 segment carries 4 unused bits.
        let last = h64.chars().last().unwrap();
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let idx = alphabet.find(last).unwrap();
        assert_eq!(idx & 0xf, 0);
        let noncanon = alphabet.as_bytes()[idx | 1] as char;
        let bad = format!("{}{noncanon}", &h64[..h64.len() - 1]);
        assert_eq!(
            URL_SAFE_NO_PAD.decode(&bad).ok(),
            None,
            "decoder refuses trailing bits"
        );
        assert_eq!(
            check(&with_segment(&good, 0, &bad)),
            Err(Rejection::InvalidToken)
        );
        // Standard-alphabet characters and whitespace.
        let sig = good.rsplit('.').next().unwrap();
        for (from, to) in [('-', '+'), ('_', '/')] {
            let s: String = if sig.contains(from) {
                sig.replace(from, &to.to_string())
            } else {
                format!("{}{to}", &sig[..sig.len() - 1])
            };
            assert_eq!(
                check(&with_segment(&good, 2, &s)),
                Err(Rejection::InvalidToken)
            );
        }
        let spaced = with_segment(&good, 1, &format!(" {}", good.split('.').nth(1).unwrap()));
        assert_eq!(check(&spaced), Err(Rejection::InvalidToken));
    }

    #[test]
    fn ses_11_segment_count_json_and_size() {
        let good = tok(HS256, &payload());
        let mut s = good.split('.');
        let two = format!("{}.{}", s.next().unwrap(), s.next().unwrap());
        assert_eq!(check(&two), Err(Rejection::InvalidToken));
        assert_eq!(check(&format!("{good}.")), Err(Rejection::InvalidToken));
        assert_eq!(check(&format!("{good}.e30")), Err(Rejection::InvalidToken));
        assert_eq!(check("abc"), Err(Rejection::InvalidToken));
        assert_eq!(
            check(&tok("not json", &payload())),
            Err(Rejection::InvalidToken)
        );
        assert_eq!(check(&tok("[]", &payload())), Err(Rejection::InvalidToken));
        assert_eq!(check(&tok(HS256, "not json")), Err(Rejection::InvalidToken));
        assert_eq!(check(&tok(HS256, "[]")), Err(Rejection::InvalidToken));
        assert_eq!(check(&tok(HS256, "\"x\"")), Err(Rejection::InvalidToken));
        // Padded out to exactly the cap: accepted; one byte more: refused.
        let pad = |n: usize| {
            format!(
                r#"{{"userId":"alice","roomId":"r1","host":"{HOST}","x":"{}"}}"#,
                "a".repeat(n)
            )
        };
        let base = tok(HS256, &pad(0)).len();
        // Each 3 payload bytes add 4 token chars; search the pad that lands on 8192.
        let n = (0..7000)
            .find(|&n| tok(HS256, &pad(n)).len() >= 8192)
            .unwrap();
        let t = tok(HS256, &pad(n));
        assert!(base < 8192);
        if t.len() == 8192 {
            assert!(check(&t).is_ok());
        }
        let over = (n..n + 4)
            .map(|n| tok(HS256, &pad(n)))
            .find(|t| t.len() == 8193)
            .unwrap();
        assert_eq!(check(&over), Err(Rejection::InvalidToken));
        assert_eq!(check(""), Err(Rejection::MissingToken));
    }

    #[test]
    fn ses_12_hs384_hs512_opt_in() {
        let t384 = sign(Alg::HS384, r#"{"alg":"HS384"}"#, &payload(), KEY.as_bytes());
        let t512 = sign(Alg::HS512, r#"{"alg":"HS512"}"#, &payload(), KEY.as_bytes());
        assert_eq!(check(&t384), Err(Rejection::InvalidToken));
        assert_eq!(check(&t512), Err(Rejection::InvalidToken));
        let mut s = settings();
        s.jwt_algorithms = vec!["HS256".into(), "HS384".into(), "HS512".into()];
        for t in [&t384, &t512, &tok(HS256, &payload())] {
            assert_eq!(verify(t, Some(HOST), NOW, &s), Ok(alice()));
        }
        // An HS512 MAC under an HS256 header is the wrong length.
        let mixed = with_segment(&tok(HS256, &payload()), 2, t512.rsplit('.').next().unwrap());
        assert_eq!(
            verify(&mixed, Some(HOST), NOW, &s),
            Err(Rejection::InvalidToken)
        );
    }

    fn claims(extra: &str) -> String {
        format!(r#"{{"userId":"alice","roomId":"r1","host":"{HOST}"{extra}}}"#)
    }

    #[test]
    fn ses_13_exp_and_nbf_with_leeway() {
        let expired = tok(HS256, &claims(&format!(r#","exp":{}"#, NOW - 1)));
        assert_eq!(check(&expired), Err(Rejection::Expired));
        let at_now = tok(HS256, &claims(&format!(r#","exp":{NOW}"#)));
        assert_eq!(
            check(&at_now),
            Err(Rejection::Expired),
            "now < exp is required"
        );
        let mut lenient = settings();
        lenient.jwt_leeway_secs = 5;
        assert_eq!(verify(&expired, Some(HOST), NOW, &lenient), Ok(alice()));
        let later = tok(HS256, &claims(&format!(r#","exp":{}"#, NOW + 1)));
        assert_eq!(check(&later), Ok(alice()));
        let fractional = tok(HS256, &claims(&format!(r#","exp":{}.5"#, NOW)));
        assert_eq!(check(&fractional), Ok(alice()));
        let bad = tok(HS256, &claims(r#","exp":"x""#));
        assert_eq!(check(&bad), Err(Rejection::InvalidToken));
        let early = tok(HS256, &claims(&format!(r#","nbf":{}"#, NOW + 10)));
        assert_eq!(check(&early), Err(Rejection::NotYetValid));
        let mut wide = settings();
        wide.jwt_leeway_secs = 10;
        assert_eq!(verify(&early, Some(HOST), NOW, &wide), Ok(alice()));
        let nbf_now = tok(HS256, &claims(&format!(r#","nbf":{NOW}"#)));
        assert_eq!(check(&nbf_now), Ok(alice()));
        let bad = tok(HS256, &claims(r#","nbf":null"#));
        assert_eq!(check(&bad), Err(Rejection::InvalidToken));
        assert_eq!(check(&tok(HS256, &claims(""))), Ok(alice()), "no exp");
    }

    #[test]
    fn ses_14_missing_or_wrong_claims() {
        let host = format!(r#""host":"{HOST}""#);
        for p in [
            format!(r#"{{"roomId":"r1",{host}}}"#),
            format!(r#"{{"userId":5,"roomId":"r1",{host}}}"#),
            format!(r#"{{"userId":"alice","roomId":"",{host}}}"#),
            format!(r#"{{"userId":"alice",{host}}}"#),
            format!(r#"{{"userId":"","roomId":"r1",{host}}}"#),
            format!(r#"{{"userId":null,"roomId":"r1",{host}}}"#),
        ] {
            assert_eq!(check(&tok(HS256, &p)), Err(Rejection::InvalidToken), "{p}");
        }
    }

    #[test]
    fn ses_15_host_claim() {
        let other = tok(
            HS256,
            r#"{"userId":"alice","roomId":"r1","host":"localhost:1"}"#,
        );
        let none = tok(HS256, r#"{"userId":"alice","roomId":"r1"}"#);
        let number = tok(HS256, r#"{"userId":"alice","roomId":"r1","host":1}"#);
        for t in [&other, &none, &number] {
            assert_eq!(check(t), Err(Rejection::HostMismatch));
        }
        assert_eq!(
            verify(&tok(HS256, &payload()), None, NOW, &settings()),
            Err(Rejection::HostMismatch),
            "no Host header"
        );
        let mut off = settings();
        off.check_host = false;
        for t in [&other, &none, &number] {
            assert_eq!(verify(t, Some(HOST), NOW, &off), Ok(alice()));
        }
    }

    #[test]
    fn mint_orders_keys_and_verifies() {
        let t = mint("alice", "r1", HOST, NOW, 60, KEY.as_bytes());
        let p = URL_SAFE_NO_PAD
            .decode(t.split('.').nth(1).unwrap())
            .unwrap();
        assert_eq!(
            String::from_utf8(p).unwrap(),
            format!(
                r#"{{"userId":"alice","roomId":"r1","host":"{HOST}","iat":{NOW},"exp":{}}}"#,
                NOW + 60
            )
        );
        assert_eq!(check(&t), Ok(alice()));
        let t = mint("alice", "r1", HOST, NOW, 0, KEY.as_bytes());
        let p = URL_SAFE_NO_PAD
            .decode(t.split('.').nth(1).unwrap())
            .unwrap();
        assert!(!String::from_utf8(p).unwrap().contains("exp"));
        assert_eq!(claims_of_verified(&t), Some(alice()));
    }
}
