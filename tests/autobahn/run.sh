#!/usr/bin/env bash
# Autobahn|Testsuite fuzzingclient against switchboard's echo app, gated on
# tests/autobahn/expected.json: every case's behaviour (and close behaviour) must match
# the committed file. Prints "N passed, N failed" and exits non-zero on any difference.
#
#   tests/autobahn/run.sh            # debug build (what cargo test built), all cases
#   AUTOBAHN_PROFILE=release tests/autobahn/run.sh   # against the release binary
#   AUTOBAHN_CASES='1.*,2.*' tests/autobahn/run.sh   # a subset (the gate then checks only those)
#   AUTOBAHN_UPDATE=1 tests/autobahn/run.sh          # rewrite expected.json from this run
#
# wstest needs Python 2.7: it goes into target/autobahn-venv (virtualenv<20.22 under the
# pyenv 2.7 interpreter, pinned dependencies), made once.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
work=$root/target/autobahn
venv=$root/target/autobahn-venv
mkdir -p "$work"

if [[ ! -x $venv/bin/wstest ]]; then
    py2=${AUTOBAHN_PYTHON2:-}
    if [[ -z $py2 ]]; then
        for cand in "$HOME"/.pyenv/versions/2.7*/bin/python2.7 "$(command -v python2.7 || true)"; do
            [[ -x $cand ]] && { py2=$cand; break; }
        done
    fi
    [[ -n $py2 ]] || { echo "autobahn: no Python 2.7 found (set AUTOBAHN_PYTHON2)" >&2; exit 1; }
    echo "autobahn: making $venv with $py2"
    rm -rf "$venv" "$root/target/autobahn-bootstrap"
    "$py2" -m pip install -q --disable-pip-version-check --target "$root/target/autobahn-bootstrap" 'virtualenv<20.22'
    PYTHONPATH=$root/target/autobahn-bootstrap "$py2" -m virtualenv -q "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check 'setuptools==44.0.0'
    "$venv/bin/pip" install -q --disable-pip-version-check 'Twisted==19.10.0' \
        'autobahntestsuite==25.10.1' 'pyOpenSSL==19.1.0' 'cryptography==3.3.2' \
        'incremental==16.10.1' 'zope.interface==4.6.0'
fi

# Debug by default: the whole suite takes about a minute against it (9.* ~40 s), while a
# release build would add several minutes of compiling to CI.
profile=${AUTOBAHN_PROFILE:-debug}
if [[ $profile == release ]]; then
    cargo build --release --bin switchboard
else
    cargo build --bin switchboard
fi
bin=$root/target/$profile/switchboard

# Limits large enough for the 9.* cases (16 MiB messages, echoed whole).
"$bin" --apps echo --bind 127.0.0.1 --echo-port 0 --admin-port 0 --threads 2 \
    --echo-max-message-bytes 16777216 --max-outbound-bytes 67108864 \
    --log-level warn >"$work/server.out" 2>"$work/server.log" &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT
addr=
for _ in $(seq 1 100); do
    addr=$(sed -n 's/^switchboard listening .*echo=\([^ ]*\).*/\1/p' "$work/server.out")
    [[ -n $addr ]] && break
    sleep 0.1
done
[[ -n $addr ]] || { echo "autobahn: server did not start" >&2; cat "$work/server.log" >&2; exit 1; }

cases=${AUTOBAHN_CASES:-*}
python3 - "$work/fuzzingclient.json" "$addr" "$cases" "$work/reports" <<'PY'
import json, sys
path, addr, cases, outdir = sys.argv[1:]
json.dump({
    "outdir": outdir,
    "servers": [{"agent": "switchboard", "url": "ws://%s" % addr}],
    "cases": cases.split(","),
    "exclude-cases": [],
    "exclude-agent-cases": {},
}, open(path, "w"), indent=2)
PY
rm -rf "$work/reports"
start=$(date +%s)
(cd "$work" && "$venv/bin/wstest" -m fuzzingclient -s fuzzingclient.json) >"$work/wstest.log" 2>&1 || {
    echo "autobahn: wstest failed" >&2; tail -20 "$work/wstest.log" >&2; exit 1;
}
echo "autobahn: suite ran in $(( $(date +%s) - start )) s"
kill -0 "$server" 2>/dev/null || { echo "autobahn: the server died" >&2; cat "$work/server.log" >&2; exit 1; }

python3 "$root/tests/autobahn/gate.py" "$work/reports/index.json" "$root/tests/autobahn/expected.json" "$cases"
