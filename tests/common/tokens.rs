//! Session tokens for the end-to-end tests: the SES-11 matrix of refused tokens and a
//! valid token of an exact size (session.md, "Handshake: token verification").

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::net::SocketAddr;
use switchboard::apps::session::jwt::{self, Alg};

/// A valid token of exactly `len` bytes (a padding claim and header field find the size).
pub fn sized_token(host: &str, len: usize, key: &[u8]) -> String {
    for hpad in 0..4 {
        let header = format!(r#"{{"alg":"HS256","p":"{}"}}"#, "h".repeat(hpad));
        for n in (len * 3 / 4).saturating_sub(200)..len {
            let p = format!(
                r#"{{"userId":"big","roomId":"r1","host":"{host}","x":"{}"}}"#,
                "a".repeat(n)
            );
            let t = jwt::sign(Alg::HS256, &header, &p, key);
            if t.len() == len {
                return t;
            }
            if t.len() > len {
                break;
            }
        }
    }
    panic!("no token of {len} bytes");
}

/// The SES-11 matrix: every token here is refused with 401 and no upgrade.
pub fn bad_tokens(addr: SocketAddr, key: &[u8]) -> Vec<(&'static str, String)> {
    let host = addr.to_string();
    let payload = format!(r#"{{"userId":"alice","roomId":"r1","host":"{host}"}}"#);
    let p64 = URL_SAFE_NO_PAD.encode(&payload);
    let hs = |alg: &str| URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
    let good = jwt::sign(Alg::HS256, r#"{"alg":"HS256","typ":"JWT"}"#, &payload, key);
    let segs: Vec<&str> = good.split('.').collect();
    let sig = URL_SAFE_NO_PAD.decode(segs[2]).unwrap();
    let mut flipped = sig.clone();
    flipped[5] ^= 0x10;
    let join = |h: &str, p: &str, s: &str| format!("{h}.{p}.{s}");
    // 16-byte header needs "==" in padded base64: {"alg":"HS256" }
    let h16 = r#"{"alg":"HS256" }"#;
    let t16 = jwt::sign(Alg::HS256, h16, &payload, key);
    let h16_64: &str = t16.split('.').next().unwrap();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = alphabet.find(h16_64.chars().last().unwrap()).unwrap();
    let noncanon = format!(
        "{}{}",
        &h16_64[..h16_64.len() - 1],
        alphabet.as_bytes()[last | 1] as char
    );
    let rest16: Vec<&str> = t16.split('.').skip(1).collect();
    let sig_std = if segs[2].contains(['-', '_']) {
        segs[2].replace('-', "+").replace('_', "/")
    } else {
        format!("{}/", &segs[2][..segs[2].len() - 1])
    };
    let big = sized_token(&host, 8193, key);
    vec![
        ("alg none", join(&hs("none"), &p64, "")),
        ("alg None", join(&hs("None"), &p64, segs[2])),
        ("alg NONE", join(&hs("NONE"), &p64, "c2ln")),
        ("RS256", join(&hs("RS256"), &p64, segs[2])),
        (
            "HS512 not allowed",
            jwt::sign(Alg::HS512, r#"{"alg":"HS512"}"#, &payload, key),
        ),
        (
            "flipped bit",
            join(segs[0], segs[1], &URL_SAFE_NO_PAD.encode(&flipped)),
        ),
        (
            "truncated signature",
            join(segs[0], segs[1], &URL_SAFE_NO_PAD.encode(&sig[..31])),
        ),
        ("empty signature", join(segs[0], segs[1], "")),
        (
            "padded segment",
            join(&format!("{h16_64}=="), rest16[0], rest16[1]),
        ),
        (
            "non-canonical last char",
            join(&noncanon, rest16[0], rest16[1]),
        ),
        ("two segments", format!("{}.{}", segs[0], segs[1])),
        ("four segments", format!("{good}.{}", segs[2])),
        ("standard alphabet", join(segs[0], segs[1], &sig_std)),
        (
            "header not JSON",
            jwt::sign(Alg::HS256, "alg=HS256", &payload, key),
        ),
        (
            "payload not JSON",
            jwt::sign(Alg::HS256, r#"{"alg":"HS256"}"#, "userId=alice", key),
        ),
        (
            "payload []",
            jwt::sign(Alg::HS256, r#"{"alg":"HS256"}"#, "[]", key),
        ),
        ("8193 bytes", big),
        (
            "wrong secret",
            jwt::sign(
                Alg::HS256,
                r#"{"alg":"HS256"}"#,
                &payload,
                b"not the secret, 32 bytes long!!!",
            ),
        ),
    ]
}
