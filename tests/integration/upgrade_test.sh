#!/usr/bin/env bash
# upgrade_test.sh: upgrades that drop nothing (docs/OPERATIONS.md "Upgrades"), with real traffic.
#
# ugated runs from a copy of the binary in the temp dir (as if installed); the test then installs
# a different binary at that path (a copy with bytes appended, so another file with another hash)
# and runs `ugated upgrade`. Checked:
#   1. 1000 long-lived connections streaming checksummed data both ways (an echo origin), a bulk
#      transfer at full speed (spliced: bytes in pipes at the handover) checked by SHA-256, and an
#      iperf3 transfer through ugated survive the upgrade with no byte lost or duplicated;
#   2. new connections are accepted throughout (a prober connects every 20 ms: no refusal);
#   3. the new process runs the new file, took over the listeners, the admin port and the
#      connections (its /stats says how many), and the old process exits;
#   4. a new binary that fails (exits 3 at once) and a config the new binary refuses leave the old
#      process serving, and `ugated upgrade` says why with exit status 1;
#   5. SIGUSR2 upgrades the same way (the upgraded process upgrades again).
# Only loopback; every process it starts (and the upgraded ones, by the PIDs they report) is ended.
# Usage: bash upgrade_test.sh /path/to/ugated. UPGRADE_KEEP_TMP=1 keeps the temp dir.
set -euo pipefail
readonly TEST_NAME=upgrade
readonly WATCHDOG_SECONDS=180
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

have python3 || skip77 "python3 not found (scripts/install-deps.sh installs it)"
HAVE_PY=1
STREAMS=${UPGRADE_STREAMS:-1000}
start_tmp
DRIVER="$TESTS_DIR/upgrade_driver.py"
read -r ORIGIN_PORT FWD_PORT IPERF_PORT IPERF_FWD_PORT SINK_PORT BULK_PORT <<<"$(free_ports 6)"

# The "installed" binary. An upgrade runs whatever is at this path then.
mkdir -p "$TMP/bin"
cp "$UGATED" "$TMP/bin/ugated"
BIN="$TMP/bin/ugated"
# install_binary SRC: put SRC at $BIN the way package managers do (a new file renamed over the old).
install_binary() {
  cp "$1" "$BIN.new"
  chmod +x "$BIN.new"
  mv -f "$BIN.new" "$BIN"
}

cat >"$TMP/ugated.json" <<EOF
{
  "workers": 2,
  "admin": {"address": "127.0.0.1:0"},
  "log": {"accessLog": "$TMP/access.log"},
  "listeners": [
    {"name": "fwd", "kind": "tcp", "address": "127.0.0.1:$FWD_PORT", "to": "127.0.0.1:$ORIGIN_PORT"},
    {"name": "iperf", "kind": "tcp", "address": "127.0.0.1:$IPERF_FWD_PORT", "to": "127.0.0.1:$IPERF_PORT"},
    {"name": "bulk", "kind": "tcp", "address": "127.0.0.1:$BULK_PORT", "to": "127.0.0.1:$SINK_PORT"}
  ]
}
EOF

# Processes the upgrades start are children of ugated, not of this shell: ended by their PIDs
# (read from `ugated upgrade`'s answer), checked to be our binary first.
UPGRADED=()
test_cleanup() {
  local pid
  for pid in "${UPGRADED[@]}"; do
    [[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == "$TMP/bin/"* ]] || continue
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${UPGRADED[@]}"; do
    for _ in $(seq 30); do [[ -d /proc/$pid && "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]] || break; sleep 0.1; done
    [[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == "$TMP/bin/"* ]] && kill -KILL "$pid" 2>/dev/null || true
  done
}
# gone PID: PID has exited (or is a zombie waiting for its new parent).
gone() { [[ ! -d /proc/$1 || "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" == Z ]]; }
# stat_value NAME: a sample's value from /stats of whoever serves the admin port now.
stat_value() { admin /stats | awk -v n="$1" '$1 == n && !f { print $2; f = 1 }'; }
# upgrade_pid OUT: the new PID in `ugated upgrade`'s answer ("upgraded: pid N ...").
upgrade_pid() { sed -n 's/^upgraded: pid \([0-9]*\) .*/\1/p' "$1"; }

ORIG_BINARY=$UGATED
spawn origin python3 "$DRIVER" origin "$ORIGIN_PORT"
spawn sink python3 "$DRIVER" sink "$SINK_PORT"
HAVE_IPERF=0
if have iperf3; then
  HAVE_IPERF=1
  spawn iperf3-server iperf3 -s -1 -B 127.0.0.1 -p "$IPERF_PORT" >"$TMP/iperf-server.log" 2>&1
fi
UGATED=$BIN  # ugated runs the installed copy: an upgrade starts what is at that path then
start_ugated
await_admin_port
await_ugated_ready
wait_for "the origin" 50 listening "$ORIGIN_PORT"
OLD_PID=$UGATED_PID

# The next binary, ready before the traffic starts (copying it takes a while on a busy machine).
cp "$ORIG_BINARY" "$TMP/ugated.next"
printf 'a different binary\n' >>"$TMP/ugated.next"

say "== 1-3: upgrade to a different binary under $STREAMS streams, an iperf3 transfer and a prober"
spawn streams python3 "$DRIVER" streams "$FWD_PORT" "$STREAMS" 20 "$TMP/streams.ready" >"$TMP/streams.json"
STREAMS_PID=$SPAWNED
wait_for "$STREAMS streams to be connected" 300 test -f "$TMP/streams.ready"
pass "$STREAMS streams connected through ugated"
if ((HAVE_IPERF)); then
  wait_for "iperf3 server" 50 listening "$IPERF_PORT"
  spawn iperf3 iperf3 -c 127.0.0.1 -p "$IPERF_FWD_PORT" -t 10 -J >"$TMP/iperf.json"
  IPERF_PID=$SPAWNED
fi
wait_for "the sink" 50 listening "$SINK_PORT"
spawn bulk python3 "$DRIVER" bulk "$BULK_PORT" 10 >"$TMP/bulk.json"
BULK_PID=$SPAWNED
spawn prober python3 "$DRIVER" probe "$FWD_PORT" 12 >"$TMP/probe.json"
PROBE_PID=$SPAWNED
sleep 2
install_binary "$TMP/ugated.next"
check "the installed binary is now a different file" test "$(sha "$BIN")" != "$(sha "$ORIG_BINARY")"
rc=0
"$BIN" upgrade --admin "127.0.0.1:$ADMIN_PORT" >"$TMP/upgrade1.out" 2>&1 || rc=$?
say "  ...   $(cat "$TMP/upgrade1.out")"
expect_eq "ugated upgrade exits 0" "$rc" 0
NEW_PID=$(upgrade_pid "$TMP/upgrade1.out")
[[ -n "$NEW_PID" ]] && UPGRADED+=("$NEW_PID")
check "the answer names the new process" test -n "$NEW_PID"
check "the new process runs the new binary" test "$(readlink "/proc/$NEW_PID/exe" 2>/dev/null)" == "$BIN"
check "the new binary is the one installed (hash)" test "$(sha "/proc/$NEW_PID/exe")" == "$(sha "$TMP/ugated.next")"
HANDED=$(sed -n 's/.* and \([0-9]*\) connections handed over.*/\1/p' "$TMP/upgrade1.out")
expect_ge "connections handed over (the streams, the bulk one, iperf3's two)" "${HANDED:-0}" $((STREAMS + 1 + 2 * HAVE_IPERF))
wait_for "the old process to exit" 100 gone "$OLD_PID" && pass "the old process exited after the handover"
reap "$OLD_PID" || true
UGATED_PID=""

rc=0
reap "$STREAMS_PID" || rc=$?
expect_eq "the stream driver exits 0" "$rc" 0
say "  ...   streams: $(cat "$TMP/streams.json")"
expect_eq "streams that got back exactly what they sent" "$(jq -r .ok "$TMP/streams.json")" "$STREAMS"
expect_eq "streams that lost, duplicated or reordered a byte or broke" "$(jq -r .failed "$TMP/streams.json")" 0
reap "$PROBE_PID" || true
say "  ...   prober: $(cat "$TMP/probe.json")"
expect_eq "new connections refused or failed during the upgrade" "$(jq -r .failed "$TMP/probe.json")" 0
expect_ge "new connections served during the upgrade" "$(jq -r .ok "$TMP/probe.json")" 20
rc=0
reap "$BULK_PID" || rc=$?
say "  ...   bulk: $(cat "$TMP/bulk.json")"
check "the bulk transfer: the sink got exactly the bytes sent (count and SHA-256)" test "$(jq -r .match "$TMP/bulk.json")" == true
expect_ge "the bulk transfer moved at least 64 MiB" "$(jq -r .received "$TMP/bulk.json")" $((64 << 20))
if ((HAVE_IPERF)); then
  rc=0
  reap "$IPERF_PID" || rc=$?
  # iperf3 itself stops counting at the receiver when the time is up, so its two totals differ by
  # what was in flight then; what it proves is a transfer that carries on through the upgrade
  # with its control connection intact (a lost or doubled byte there ends the test with an error).
  expect_eq "iperf3 across the upgrade exits 0" "$rc" 0
  check "iperf3 reports no error" test "$(jq -r '.error // "none"' "$TMP/iperf.json")" == none
  expect_ge "iperf3's receiver got data" "$(jq -r '.end.sum_received.bytes | floor' "$TMP/iperf.json")" 1
else
  skip "iperf3 not found: the iperf3 transfer is skipped"
fi
ADOPTED=$(stat_value ugate_upgrade_connections_adopted_total)
expect_ge "the new process's /stats: connections adopted" "${ADOPTED:-0}" "$STREAMS"
check "the admin port is served by the new process" test "$(stat_value ugate_upgrade_connections_adopted_total)" == "$ADOPTED"
# Closed in the new process: their access-log lines come from it, with their listener.
wait_for "access-log lines of adopted streams" 50 bash -c "[ \$(grep -c '\"listener\":\"fwd\"' '$TMP/access.log') -ge $STREAMS ]" &&
  pass "the adopted streams are in the access log when they close"

say "== 4: a new binary that fails, and a config it refuses, leave the running process serving"
printf '#!/bin/sh\necho "broken build" >&2\nexit 3\n' >"$TMP/broken.sh"
install_binary "$TMP/broken.sh"
rc=0
"$TMP/ugated.next" upgrade --admin "127.0.0.1:$ADMIN_PORT" >"$TMP/upgrade2.out" 2>&1 || rc=$?
say "  ...   $(cat "$TMP/upgrade2.out")"
expect_eq "ugated upgrade to a failing binary exits 1" "$rc" 1
check "it says how the new process ended" grep -q "exited with status 3" "$TMP/upgrade2.out"
check "the running process is still the same and serves" bash -c "! test -d /proc/$NEW_PID || [ \$(awk '{print \$3}' /proc/$NEW_PID/stat) != Z ]"
rc=0
timeout 10 python3 "$DRIVER" probe "$FWD_PORT" 1 >"$TMP/probe2.json" || rc=$?
expect_eq "connections after the failed upgrade fail" "$(jq -r .failed "$TMP/probe2.json")" 0
expect_ge "connections after the failed upgrade succeed" "$(jq -r .ok "$TMP/probe2.json")" 10
install_binary "$TMP/ugated.next"
cp "$TMP/ugated.json" "$TMP/ugated.json.good"
printf '{"listeners": [{"name": "x", "kind": "nope"}]}\n' >"$TMP/ugated.json"
rc=0
"$BIN" upgrade --admin "127.0.0.1:$ADMIN_PORT" >"$TMP/upgrade3.out" 2>&1 || rc=$?
say "  ...   $(cat "$TMP/upgrade3.out")"
expect_eq "ugated upgrade with a config the new process refuses exits 1" "$rc" 1
check "it says the new process exited with status 2" grep -q "exited with status 2" "$TMP/upgrade3.out"
cp "$TMP/ugated.json.good" "$TMP/ugated.json"
rc=0
timeout 10 python3 "$DRIVER" probe "$FWD_PORT" 1 >"$TMP/probe3.json" || rc=$?
expect_eq "and the running process still serves" "$(jq -r .failed "$TMP/probe3.json")" 0
expect_eq "ugate_upgrades_total{result=\"error\"}" "$(stat_value 'ugate_upgrades_total{result="error"}')" 2

say "== 5: SIGUSR2 upgrades too (the upgraded process upgrades again)"
spawn streams python3 "$DRIVER" streams "$FWD_PORT" 20 6 "$TMP/streams2.ready" >"$TMP/streams2.json"
STREAMS_PID=$SPAWNED
wait_for "20 streams to be connected" 100 test -f "$TMP/streams2.ready"
kill -USR2 "$NEW_PID"
wait_for "the process upgraded by SIGUSR2 to exit" 100 gone "$NEW_PID" && pass "SIGUSR2: the process handed over and exited"
# Every process logs to the same file (the new one inherits the old one's stderr): the last
# "upgraded: pid N" line names the process SIGUSR2 started.
NEXT_PID=$(grep -o 'upgrade: upgraded: pid [0-9]*' "$TMP/ugated.log" | tail -n 1 | awk '{print $4}')
if [[ -n "$NEXT_PID" && "$NEXT_PID" != "$NEW_PID" ]]; then UPGRADED+=("$NEXT_PID"); fi
check "a new process serves after SIGUSR2" test -n "$NEXT_PID" -a "$NEXT_PID" != "$NEW_PID"
rc=0
reap "$STREAMS_PID" || rc=$?
expect_eq "20 streams across the SIGUSR2 upgrade got back exactly what they sent" "$(jq -r .ok "$TMP/streams2.json")" 20
