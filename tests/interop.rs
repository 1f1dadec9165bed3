//! Interop: the real npm clients of the original servers, run with Node against an
//! in-process server. Needs `npm ci --prefix tests/interop` first (the README's test
//! command does it); without it these tests fail and say so.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;
use switchboard::config::AppKind;

fn node(script: &str, args: &[String]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
    assert!(
        dir.join("node_modules").is_dir(),
        "tests/interop/node_modules is missing: run `npm ci --prefix tests/interop` (tests/run.sh does)"
    );
    let out = Command::new("node")
        .arg(dir.join(script))
        .args(args)
        .current_dir(&dir)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "{script} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn par_18_ws_client_pairs_relays_and_requeues() {
    for threads in [1, 4] {
        let s = start(config(threads, &[AppKind::Pair]));
        let url = format!("ws://{}/", s.addr(AppKind::Pair).unwrap());
        node("pair.mjs", &[url]);
        s.stop(DEADLINE).unwrap();
    }
}

#[test]
fn sig_30_cevitxe_signal_client_joins_meets_and_pipes() {
    for threads in [1, 4] {
        let s = start(config(threads, &[AppKind::Signal]));
        let url = format!("ws://{}", s.addr(AppKind::Signal).unwrap());
        node("signal.mjs", &[url]);
        s.stop(DEADLINE).unwrap();
    }
}

#[test]
fn ses_26_jsonwebtoken_tokens_and_ws_client() {
    let secret = "interop-secret-0123456789abcdef-0123";
    for threads in [1, 4] {
        let mut c = config(threads, &[AppKind::Session]);
        c.session_settings.jwt_secret = Some(switchboard::config::Secret::from(secret.to_string()));
        let s = start(c);
        let addr = s.addr(AppKind::Session).unwrap();
        node(
            "session.mjs",
            &[format!("ws://{addr}"), addr.to_string(), secret.to_string()],
        );
        s.stop(DEADLINE).unwrap();
    }
}

#[test]
fn rms_34_ws_client_logs_in_chats_votes_and_counts() {
    for threads in [1, 4] {
        let mut c = config(threads, &[AppKind::Rooms]);
        let dir =
            std::env::temp_dir().join(format!("sb-rooms-interop-{threads}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        c.rooms_opts.store_path = dir.join("rooms.db");
        let s = start(c);
        let url = format!("ws://{}", s.addr(AppKind::Rooms).unwrap());
        node("rooms.mjs", &[url]);
        s.stop(DEADLINE).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn pst_72_socket_io_client_default_websocket_polling_and_mixed() {
    for threads in [1, 4] {
        let s = start(config(threads, &[AppKind::Pester]));
        let url = format!("http://{}", s.addr(AppKind::Pester).unwrap());
        node("pester.mjs", &[url]);
        s.stop(DEADLINE).unwrap();
    }
}
