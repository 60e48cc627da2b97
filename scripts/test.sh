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
failures=()  # "stage: test name" of every test that failed, repeated at the very end
tails=$(mktemp)  # the last lines of each failed test's output, repeated at the very end
trap 'rm -f "$tails"' EXIT

# run_ctest STAGE DIR ARGS...: ctest in DIR; a failure sets status and records the failed tests,
# each with the last lines of its output, so the end of the log always says what failed.
run_ctest() {
  local stage=$1 dir=$2
  shift 2
  if (cd "$dir" && ctest --output-on-failure -j "$jobs" "$@"); then return 0; fi
  status=1
  local failed="$dir/Testing/Temporary/LastTestsFailed.log"
  if [[ -s "$failed" ]]; then
    while IFS=: read -r _ name; do
      failures+=("$stage: $name")
      {
        echo "---- $stage: $name (last 40 lines of its output)"
        awk -v t="Test: $name" '$0 ~ "^[0-9]+/[0-9]+ " t "$" {on=1; next} on && /^<end of output>/ {on=0} on' \
          "$dir/Testing/Temporary/LastTest.log" | tail -n 40
      } >>"$tails"
    done <"$failed"
  else
    failures+=("$stage: ctest failed without a list of failed tests")
  fi
}

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUGATE_WERROR=ON >/dev/null
ninja -C build
run_ctest plain build --timeout 600

if [ "${UGATE_SANITIZERS:-1}" != "0" ]; then
  echo "== ASan+UBSan: the whole suite"
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUGATE_WERROR=ON \
    -DUGATE_SANITIZE=address,undefined >/dev/null
  ninja -C build-asan
  # The soak holds 15 000 connections in the plain run; 5 000 under ASan keep it well bounded.
  UGATE_SOAK_CONNECTIONS=${UGATE_SOAK_CONNECTIONS_ASAN:-5000} run_ctest asan build-asan --timeout 900
  echo "== TSan: reactor, splicer, resolver, bridge, HTTP/2, the push store, ugated with several workers, upgrades"
  cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUGATE_WERROR=ON \
    -DUGATE_SANITIZE=thread >/dev/null
  ninja -C build-tsan ugated unit_core_test unit_http_test unit_webpush_test integration_test
  # The upgrade test under TSan: its handover thread and the workers (200 streams, not 1000).
  UPGRADE_STREAMS=200 TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" run_ctest tsan build-tsan --timeout 900 \
    -R '^(integration\.|core\.(Reactor|Splicer|DnsResolver|StreamBridge|Handover)|http\.H2|webpush\.PushStore|peers\.upgrade_test)'
fi

fuzz_secs=${UGATE_FUZZ_SECONDS:-15}
if [ "$fuzz_secs" != "0" ]; then
  scripts/fuzz.sh "$fuzz_secs" || { status=1; failures+=("fuzz: see scripts/fuzz.sh output above"); }
fi
if ((${#failures[@]})); then
  cat "$tails"
  echo "== FAILED (${#failures[@]}):"
  printf '  %s\n' "${failures[@]}"
else
  echo "== all stages passed"
fi
exit $status
