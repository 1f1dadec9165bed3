#!/usr/bin/env bash
# Builds every fuzz target (address sanitizer) and runs each for SECONDS (default 30),
# starting from its committed seeds in fuzz/corpus/<target>/. New corpus entries go to a
# scratch dir, so the committed seeds stay small. Any crash, leak, timeout or OOM fails.
#   fuzz/run.sh [SECONDS] [TARGET...]
# Called directly (not from a nested cargo): cargo-fuzz needs nightly flags, which
# RUSTC_BOOTSTRAP=1 unlocks on the stable toolchain.
# With FUZZ_DEADLINE (epoch seconds) set, each target gets SECONDS or its fair share of the
# time left before the deadline, whichever is less (at least 10 s): CI sets it so that a
# slow cold build shortens the runs instead of cutting the last targets off.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
shift || true
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi
cargo fuzz build
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
summary=()
left=${#targets[@]}
for t in "${targets[@]}"; do
    mkdir -p "$scratch/$t" "fuzz/corpus/$t"
    log="$scratch/$t.log"
    run=$secs
    if [ -n "${FUZZ_DEADLINE:-}" ]; then
        # 15 s per target of start-up and teardown on top of the fuzzing itself.
        share=$(( (FUZZ_DEADLINE - $(date +%s)) / left - 15 ))
        [ "$share" -lt "$run" ] && run=$share
        [ "$run" -lt 10 ] && run=10
    fi
    left=$((left - 1))
    echo "== fuzz $t for ${run}s"
    if ! cargo fuzz run "$t" "$scratch/$t" "fuzz/corpus/$t" -- \
        -max_total_time="$run" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "fuzz: $t FAILED (input saved under fuzz/artifacts/$t/)"
        exit 1
    fi
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    summary+=("$t: $execs executions in ${run}s, no crash")
done
printf '%s\n' "${summary[@]}"
