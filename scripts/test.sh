#!/usr/bin/env bash
# Sets up a fresh Debian 12/13 machine, builds everything with warnings as errors and runs the whole
# test suite: unit tests, integration tests that run ugated as a process, tests with real peers
# (curl, iperf3, ...), and a bounded fuzzing smoke of every parser (clang, ASan+UBSan).
# Env: UGATE_FUZZ_SECONDS (default 15; 0 skips fuzzing), CTEST_PARALLEL_LEVEL (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUGATE_WERROR=ON >/dev/null
ninja -C build
status=0
(cd build && ctest --output-on-failure -j "${CTEST_PARALLEL_LEVEL:-2}" --timeout 600) || status=$?
fuzz_secs=${UGATE_FUZZ_SECONDS:-15}
if [ "$fuzz_secs" != "0" ]; then
  scripts/fuzz.sh "$fuzz_secs" || status=1
fi
exit $status
