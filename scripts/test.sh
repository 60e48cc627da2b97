#!/usr/bin/env bash
# Sets up a fresh Debian 12/13 machine, builds everything with warnings as errors and runs the whole
# test suite: unit tests, integration tests that run ugated as a process, tests with real peers
# (curl, openssl, iperf3, ...), the suite again under ASan+UBSan, the multi-threaded tests under TSan,
# and a bounded fuzzing run of every parser (clang, ASan+UBSan).
# Env: UGATE_FUZZ_SECONDS (default 15; 0 skips fuzzing), UGATE_SANITIZERS (default 1; 0 skips the
# sanitizer builds), CTEST_PARALLEL_LEVEL (default 2), UGATE_SOAK_CONNECTIONS_ASAN (default 5000:
# connections the soak holds under ASan; the plain run holds 15 000).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
jobs=${CTEST_PARALLEL_LEVEL:-2}
status=0

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUGATE_WERROR=ON >/dev/null
ninja -C build
(cd build && ctest --output-on-failure -j "$jobs" --timeout 600) || status=1

if [ "${UGATE_SANITIZERS:-1}" != "0" ]; then
  echo "== ASan+UBSan: the whole suite"
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUGATE_WERROR=ON \
    -DUGATE_SANITIZE=address,undefined >/dev/null
  ninja -C build-asan
  # The soak holds 15 000 connections in the plain run; 5 000 under ASan keep it well bounded.
  (cd build-asan && UGATE_SOAK_CONNECTIONS=${UGATE_SOAK_CONNECTIONS_ASAN:-5000} \
    ctest --output-on-failure -j "$jobs" --timeout 900) || status=1
  echo "== TSan: reactor, splicer, resolver, bridge, HTTP/2 and ugated with several workers"
  cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUGATE_WERROR=ON \
    -DUGATE_SANITIZE=thread >/dev/null
  ninja -C build-tsan ugated unit_core_test unit_http_test integration_test
  (cd build-tsan && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
    ctest --output-on-failure -j "$jobs" --timeout 900 \
    -R '^(integration\.|core\.(Reactor|Splicer|DnsResolver|StreamBridge)|http\.H2)') || status=1
fi

fuzz_secs=${UGATE_FUZZ_SECONDS:-15}
if [ "$fuzz_secs" != "0" ]; then
  scripts/fuzz.sh "$fuzz_secs" || status=1
fi
exit $status
