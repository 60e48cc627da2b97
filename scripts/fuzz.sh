#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan) and runs each for SECONDS (default 30) on a
# scratch copy of its seed corpus. Any crash fails the script; the crashing input is kept in
# build-fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DUGATE_BUILD_FUZZERS=ON -DUGATE_BUILD_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build-fuzz $(cd fuzz && ls *_fuzz.cc | sed 's/\.cc$//')
mkdir -p build-fuzz/artifacts
for src in fuzz/*_fuzz.cc; do
  name=$(basename "$src" _fuzz.cc)
  work=$(mktemp -d)
  cp -r "fuzz/corpus/$name/." "$work/"
  echo "fuzz: $name for ${secs}s"
  status=0
  build-fuzz/fuzz/${name}_fuzz -max_total_time="$secs" -print_final_stats=1 \
    -artifact_prefix=build-fuzz/artifacts/${name}- "$work" >"$work.log" 2>&1 || status=$?
  grep -E 'stat::number_of_executed_units|ERROR|SUMMARY' "$work.log" || true
  [ "$status" -ne 0 ] && tail -40 "$work.log"
  rm -rf "$work" "$work.log"
  if [ "$status" -ne 0 ]; then echo "fuzz: $name FAILED (see build-fuzz/artifacts)"; exit 1; fi
done
echo "fuzz: all targets clean"
