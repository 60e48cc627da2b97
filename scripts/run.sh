#!/usr/bin/env bash
# Sets up a fresh Debian 12/13 machine, builds ugated and runs it. Without arguments ugated runs its
# embedded default config (loopback only, admin on http://127.0.0.1:15000, dials nothing); any
# arguments are passed to ugated, e.g. `scripts/run.sh --config configs/examples/forward.json`.
set -euo pipefail
cd "$(dirname "$0")/.."
UGATE_DEPS_MINIMAL=${UGATE_DEPS_MINIMAL:-0} scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build ugated
exec build/ugated "$@"
