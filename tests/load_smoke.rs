//! The load generator end to end against the real server, briefly: every scenario the
//! comparison runs must deliver, count and report what it measures. It checks that the
//! figures exist and are consistent, never how fast anything is.

mod common;

use common::Proc;
use std::collections::HashMap;
use std::process::Command;

/// Runs `switchboard-load` with `args`, then `--server-pid` and a short window; returns its
/// RESULT fields.
fn load(server: &Proc, args: &[&str]) -> HashMap<String, String> {
    let pid = server.child.id().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard-load"))
        .args(args)
        .args(["--server-pid", &pid, "--warmup", "0.2", "--duration", "0.5"])
        .output()
        .expect("run switchboard-load");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("RESULT "))
        .unwrap_or_else(|| panic!("{args:?}: no RESULT line in {stdout}\n{stderr}"));
    line.split_whitespace()
        .skip(1)
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("key=value");
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn num(fields: &HashMap<String, String>, key: &str) -> f64 {
    fields
        .get(key)
        .unwrap_or_else(|| panic!("no {key} in {fields:?}"))
        .parse()
        .unwrap_or_else(|_| panic!("{key} is not a number in {fields:?}"))
}

fn server() -> Proc {
    Proc::spawn(&[
        "--apps",
        "bench,pair,signal",
        "--bind",
        "127.0.0.1",
        "--bench-port",
        "0",
        "--pair-port",
        "0",
        "--signal-port",
        "0",
        "--no-admin",
        "--threads",
        "1",
    ])
}

#[test]
fn fanout_delivers_every_size_and_reports_server_cpu() {
    let s = server();
    let addr = s.addr("bench").to_string();
    // 64 B, 4 KiB (16-bit length, only the stamp kept) and 70,000 B (64-bit length, read
    // in many pieces).
    for size in ["64", "4096", "70000"] {
        let r = load(
            &s,
            &[
                "fanout", "--addr", &addr, "--subs", "20", "--window", "4", "--size", size,
            ],
        );
        assert!(num(&r, "delivered") > 0.0, "{size}: {r:?}");
        assert!(num(&r, "msgs_per_s") > 0.0, "{size}: {r:?}");
        assert!(num(&r, "server_us_per_msg") > 0.0, "{size}: {r:?}");
        assert!(num(&r, "p50_us") <= num(&r, "p99_us"), "{size}: {r:?}");
        assert_eq!(r["size"], size);
    }
}

#[test]
fn relay_through_a_room_the_pair_app_and_the_signal_pipe() {
    let s = server();
    for (target, service) in [("room", "bench"), ("pair", "pair"), ("signal", "signal")] {
        let addr = s.addr(service).to_string();
        let r = load(
            &s,
            &[
                "relay", "--addr", &addr, "--target", target, "--pairs", "4", "--window", "2",
            ],
        );
        assert!(num(&r, "msgs_per_s") > 0.0, "{target}: {r:?}");
        assert!(num(&r, "rtt_p50_us") > 0.0, "{target}: {r:?}");
    }
}

#[test]
fn conns_counts_handshakes_and_idle_memory() {
    let s = server();
    let addr = s.addr("bench").to_string();
    let r = load(&s, &["conns", "--addr", &addr, "--count", "300"]);
    assert!(num(&r, "handshakes_per_s") > 0.0, "{r:?}");
    assert!(num(&r, "server_us_per_handshake") > 0.0, "{r:?}");
}
