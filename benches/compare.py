#!/usr/bin/env python3
"""Side-by-side benchmark: switchboard (its `bench` app) against the peers of ../shared/peers.

Each server runs pinned to CPU 0, the load generator to CPU 1. Servers are interleaved and
the whole round is repeated; the table shows medians (min..max) and switchboard/peer
ratios of every figure. Each fan-out scenario also gets a "floor" column: switchboard-load's
`floor` scenario (no server; a writer thread on CPU 0 writes the same frames, W at a time,
to as many loopback TCP connections, read on CPU 1), i.e. the kernel's own cost for that
write pattern. Everything binds 127.0.0.1; every run is bounded in time.

  benches/compare.py [--reps 3] [--peers uws,tt4k,tt,ws,socketio] [--quick] [--no-floor]
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
    ("burst 1000 subs, 64 in flight", ["fanout", "--subs", "1000", "--window", "64"], ["server_us_per_msg", "msgs_per_s", "p99_us"]),
    ("fanout 1000 subs, 4 KiB, 16 in flight", ["fanout", "--subs", "1000", "--window", "16", "--size", "4096"], ["server_us_per_msg", "msgs_per_s", "gb_per_s", "p99_us"]),
    ("relay 50 pairs ping-pong", ["relay", "--target", "room", "--pairs", "50", "--window", "1"], ["server_us_per_msg", "msgs_per_s", "rtt_p50_us", "rtt_p99_us"]),
    ("relay 1 pair unloaded", ["relay", "--target", "room", "--pairs", "1", "--window", "1"], ["rtt_p50_us", "rtt_p99_us"]),
    ("10k idle connections", ["conns", "--count", "10000", "--concurrency", "200"], ["rss_per_conn_bytes", "handshakes_per_s", "server_us_per_handshake"]),
]
LOWER_IS_BETTER = re.compile(r"_us|rss_")

# The kernel floor of each fan-out scenario: the same connections, frames per round and size.
FLOOR = {
    "fanout 100 subs, 1 in flight": ["--conns", "100", "--frames", "1"],
    "fanout 1000 subs, 16 in flight": ["--conns", "1000", "--frames", "16"],
    "burst 1000 subs, 64 in flight": ["--conns", "1000", "--frames", "64"],
    "fanout 1000 subs, 4 KiB, 16 in flight": ["--conns", "1000", "--frames", "16", "--size", "4096"],
}
# Scenario figure -> the floor's figure that stands for it.
FLOOR_FIGURES = {"server_us_per_msg": "writer_us_per_frame", "msgs_per_s": "frames_per_s", "gb_per_s": "gb_per_s"}
FLOOR_DETAIL = ["writer_us_per_frame", "writer_us_per_call", "calls_per_conn_round", "reader_us_per_frame", "frames_per_s", "gb_per_s"]


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


def timing(quick):
    return ["--warmup", "0.5", "--duration", "1.5"] if quick else ["--warmup", "1", "--duration", "3"]


def run_load(args, port, pid, proto, quick):
    cmd = (["taskset", "-c", "1", os.path.join(RELEASE, "switchboard-load")] + args[:1]
           + ["--addr", f"127.0.0.1:{port}", "--server-pid", str(pid), "--proto", proto]
           + args[1:] + (timing(quick) if args[0] != "conns" else []))
    return run_cmd(cmd)


def run_floor(args, quick):
    """The floor scenario: no server; its writer thread pins itself to CPU 0, the reader runs on CPU 1."""
    cmd = ["taskset", "-c", "1", os.path.join(RELEASE, "switchboard-load"), "floor", "--writer-cpu", "0"] + args + timing(quick)
    return run_cmd(cmd)


def run_cmd(cmd):
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
    ap.add_argument("--no-floor", action="store_true", help="skip the kernel floor runs")
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
        if not a.no_floor:
            for label, fargs in FLOOR.items():
                res, err = run_floor(fargs, a.quick)
                if res:
                    results.setdefault((label, "floor"), []).append(res)
                else:
                    errors[(label, "floor")] = err
                print(f"rep {rep + 1} {'floor':11} {label}: {'ok' if res else err}", file=sys.stderr)
    columns = servers + ([] if a.no_floor else ["floor"])
    print_table(columns, results, errors)


def fmt(v):
    return f"{v:.3g}" if v < 1000 else f"{v:,.0f}"


def figure_runs(results, label, server, fig):
    if server == "floor":
        fig = FLOOR_FIGURES.get(fig)
    return [float(r[fig]) for r in results.get((label, server), []) if fig in r]


def print_table(servers, results, errors):
    print(f"\nServer on CPU 0, load on CPU 1; median (min..max) of the runs; ratio = switchboard/peer"
          f" (for floor: switchboard/floor, the floor being the writer thread's CPU per frame).\n")
    for label, _, figures in SCENARIOS:
        cols = [s for s in servers if s != "floor" or label in FLOOR]
        print(f"### {label}\n")
        print("| figure | " + " | ".join(cols) + " |")
        print("|---" * (len(cols) + 1) + "|")
        for fig in figures:
            cells = []
            base = None
            for server in cols:
                runs = figure_runs(results, label, server, fig)
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
    floors = [label for label in FLOOR if (label, "floor") in results]
    if floors:
        print("### kernel floor (no server: writer thread on CPU 0, reader on CPU 1)\n")
        print("| scenario | floor args | " + " | ".join(FLOOR_DETAIL) + " |")
        print("|---|---" + "|---" * len(FLOOR_DETAIL) + "|")
        for label in floors:
            cells = []
            for fig in FLOOR_DETAIL:
                runs = [float(r[fig]) for r in results[(label, "floor")] if fig in r]
                cells.append(f"{fmt(statistics.median(runs))} ({fmt(min(runs))}..{fmt(max(runs))})" if runs else "-")
            print(f"| {label} | `{' '.join(FLOOR[label])}` | " + " | ".join(cells) + " |")
        print()
    for (label, server), err in sorted(errors.items()):
        print(f"- {server} / {label}: {err}")


if __name__ == "__main__":
    main()
