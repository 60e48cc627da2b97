#!/usr/bin/env bash
# RFC 8291 encryptions/s per core: ugate's src/webpush (bench/webpush_crypto_bench.cc) against npm
# web-push's own encrypt() (bench/webpush_npm/encrypt_bench.js), 3 KiB payloads, interleaved rounds
# in one run, medians and the ratio. web-push is installed into bench/webpush_npm/node_modules from
# the committed package-lock.json (never globally). Not a test; asserts nothing.
# Usage: bench/webpush_crypto_compare.sh [BUILD_DIR=build] [SECONDS=3] [ROUNDS=3] [BYTES=3072]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
secs=${2:-3}
rounds=${3:-3}
bytes=${4:-3072}
ninja -C "$build" webpush_crypto_bench >/dev/null
if [ ! -d bench/webpush_npm/node_modules/web-push ]; then
  npm ci --prefix bench/webpush_npm --no-audit --no-fund >/dev/null
fi
echo "node $(node --version), web-push $(node -p "require('./bench/webpush_npm/node_modules/web-push/package.json').version")"
ours=()
theirs=()
for r in $(seq "$rounds"); do
  o=$("$build/bench/webpush_crypto_bench" "$secs" "$bytes" | awk '/^encrypt/ {print $(NF-3)}')
  t=$(node bench/webpush_npm/encrypt_bench.js "$secs" "$bytes" | awk '{print $(NF-3)}')
  echo "round $r: ugate $o/s, npm web-push $t/s per core"
  ours+=("$o")
  theirs+=("$t")
done
python3 - "${ours[*]}" "${theirs[*]}" <<'PY'
import statistics, sys
o = [float(x) for x in sys.argv[1].split()]
t = [float(x) for x in sys.argv[2].split()]
r = [a / b for a, b in zip(o, t)]
print(f"median: ugate {statistics.median(o):.0f}/s, npm web-push {statistics.median(t):.0f}/s, "
      f"ratio {statistics.median(r):.2f}x (per-round ratios {', '.join(f'{x:.2f}' for x in r)})")
PY
