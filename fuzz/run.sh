#!/usr/bin/env bash
# Builds every fuzz target (address sanitizer) and runs each for SECONDS (default 30),
# starting from its committed seeds in fuzz/corpus/<target>/. New corpus entries go to a
# scratch dir, so the committed seeds stay small. Any crash, leak, timeout or OOM fails.
#   fuzz/run.sh [SECONDS] [TARGET...]
# Called directly (not from a nested cargo): cargo-fuzz needs nightly flags, which
# RUSTC_BOOTSTRAP=1 unlocks on the stable toolchain.
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
for t in "${targets[@]}"; do
    mkdir -p "$scratch/$t" "fuzz/corpus/$t"
    log="$scratch/$t.log"
    echo "== fuzz $t for ${secs}s"
    if ! cargo fuzz run "$t" "$scratch/$t" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "fuzz: $t FAILED (input saved under fuzz/artifacts/$t/)"
        exit 1
    fi
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    summary+=("$t: $execs executions, no crash")
done
printf '%s\n' "${summary[@]}"
