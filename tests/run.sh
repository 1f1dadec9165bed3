#!/usr/bin/env bash
# The test command: installs the interop clients from the npm registry, then runs every
# Rust test (unit, end to end, interop). Works on a fresh machine with cargo and node.
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --prefix tests/interop --no-audit --no-fund --loglevel=error
cargo test --all-targets "$@"
