#!/usr/bin/env python3
"""Side-by-side benchmark: switchboard (its `bench` app) against the peers of ../shared/peers.

Each server runs pinned to CPU 0, the load generator to CPU 1. Servers are interleaved and
the whole round is repeated; the table shows medians (min..max) and switchboard/peer
ratios of every figure. Everything binds 127.0.0.1; every run is bounded in time.

  benches/compare.py [--reps 3] [--peers uws,tt4k,tt,ws,socketio] [--quick]
"""
import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = os.path.normpath(os.path.join(ROOT, "..", "shared", "peers"))
RELEASE = os.path.join(ROOT, "target", "release")
PEER_TARGET = os.environ.get("PEERS_TARGET", os.path.join(PEERS, "tokio-tungstenite", "target"))
SB_PORT = 29100

PEER_PORTS = {"uws": 29101, "ws": 29102, "socketio": 29103, "tt": 29104, "tt4k": 29105}


def peer_cmd(name):
    return {
        "uws": ["node", os.path.join(PEERS, "uws", "server.js")],
        "ws": ["node", os.path.join(PEERS, "ws", "server.js")],
        "socketio": ["node", os.path.join(PEERS, "socketio", "server.js")],
        "tt": [os.path.join(PEER_TARGET, "release", "peer-tokio-tungstenite")],
        "tt4k": ["env", "WS_BUF=4096", os.path.join(PEER_TARGET, "release", "peer-tokio-tungstenite")],
    }[name]


# (label, scenario args, the figures to tabulate)
SCENARIOS = [
    ("fanout 100 subs, 1 in flight", ["fanout", "--subs", "100", "--window", "1"], ["server_us_per_msg", "msgs_per_s", "p50_us", "p99_us"]),
    ("fanout 1000 subs, 16 in flight", ["fanout", "--subs", "1000", "--window", "16"], ["server_us_per_msg", "msgs_per_s", "p99_us"]),
    ("relay 50 pairs ping-pong", ["relay", "--target", "room", "--pairs", "50", "--window", "1"], ["server_us_per_msg", "msgs_per_s", "rtt_p50_us", "rtt_p99_us"]),
    ("relay 1 pair unloaded", ["relay", "--target", "room", "--pairs", "1", "--window", "1"], ["rtt_p50_us", "rtt_p99_us"]),
    ("10k idle connections", ["conns", "--count", "10000", "--concurrency", "200"], ["rss_per_conn_bytes", "handshakes_per_s", "server_us_per_handshake"]),
]
LOWER_IS_BETTER = re.compile(r"_us|rss_")


def wait_port(port, proc, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def start(name, log):
    if name == "switchboard":
        cmd = [os.path.join(RELEASE, "switchboard"), "--apps", "bench", "--bind", "127.0.0.1",
               "--bench-port", str(SB_PORT), "--no-admin", "--threads", "1"]
        port = SB_PORT
    else:
        cmd, port = peer_cmd(name), PEER_PORTS[name]
    env = dict(os.environ, PORT=str(port))
    env.pop("SWITCHBOARD_APPS", None)
    proc = subprocess.Popen(["taskset", "-c", "0"] + cmd, env=env, stdout=log, stderr=log)
    wait_port(port, proc)
    return proc, port


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_load(args, port, pid, proto, quick):
    timing = ["--warmup", "0.5", "--duration", "1.5"] if quick else ["--warmup", "1", "--duration", "3"]
    cmd = (["taskset", "-c", "1", os.path.join(RELEASE, "switchboard-load")] + args[:1]
           + ["--addr", f"127.0.0.1:{port}", "--server-pid", str(pid), "--proto", proto]
           + args[1:] + (timing if args[0] != "conns" else []))
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    line = next((l for l in out.stdout.splitlines() if l.startswith("RESULT ")), None)
    if line is None:
        return None, (out.stderr.strip().splitlines() or ["no output"])[-1]
    return dict(kv.split("=", 1) for kv in line.split()[1:]), None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--peers", default="uws,tt4k,tt,ws,socketio")
    ap.add_argument("--quick", action="store_true", help="shorter windows (a smoke run)")
    ap.add_argument("--no-install", action="store_true")
    a = ap.parse_args()
    peers = [p for p in a.peers.split(",") if p]
    if shutil.which("taskset") is None:
        sys.exit("taskset is needed (util-linux)")
    subprocess.run(["cargo", "build", "--release", "-q", "--bin", "switchboard", "--bin", "switchboard-load"], cwd=ROOT, check=True)
    if peers and not a.no_install:
        subprocess.run(["bash", "-c", f"source '{PEERS}/peers.sh' && peers_install"], check=True)
    servers = ["switchboard"] + peers
    results = {}  # (scenario, server) -> list of dicts
    errors = {}
    log = open(os.path.join(os.environ.get("TMPDIR", "/tmp"), "switchboard-compare.log"), "a")
    for rep in range(a.reps):
        for server in servers:
            proc, port = start(server, log)
            try:
                proto = "sio" if server == "socketio" else "raw"
                for label, args, _ in SCENARIOS:
                    res, err = run_load(args, port, proc.pid, proto, a.quick)
                    if res:
                        results.setdefault((label, server), []).append(res)
                    else:
                        errors[(label, server)] = err
                    print(f"rep {rep + 1} {server:11} {label}: {'ok' if res else err}", file=sys.stderr)
            finally:
                stop(proc)
    print_table(servers, results, errors)


def fmt(v):
    return f"{v:.3g}" if v < 1000 else f"{v:,.0f}"


def print_table(servers, results, errors):
    print(f"\nServer on CPU 0, load on CPU 1; median (min..max) of the runs; ratio = switchboard/peer.\n")
    for label, _, figures in SCENARIOS:
        print(f"### {label}\n")
        print("| figure | " + " | ".join(servers) + " |")
        print("|---" * (len(servers) + 1) + "|")
        for fig in figures:
            cells = []
            base = None
            for server in servers:
                runs = [float(r[fig]) for r in results.get((label, server), []) if fig in r]
                if not runs:
                    cells.append("failed" if (label, server) in errors else "-")
                    continue
                med = statistics.median(runs)
                if server == "switchboard":
                    base = med
                cell = f"{fmt(med)} ({fmt(min(runs))}..{fmt(max(runs))})"
                if server != "switchboard" and base and med:
                    cell += f" ×{base / med:.2f}"
                cells.append(cell)
            better = "lower is better" if LOWER_IS_BETTER.search(fig) else "higher is better"
            print(f"| {fig} ({better}) | " + " | ".join(cells) + " |")
        print()
    for (label, server), err in sorted(errors.items()):
        print(f"- {server} / {label}: {err}")


if __name__ == "__main__":
    main()
