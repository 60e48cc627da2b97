#!/usr/bin/env bash
# Time from start to a full discovery table: N ugated (default 3; try 20), each in its own network
# namespace on one bridge, discovery on with the default interval (120 s, so only the start
# announcements and the unicast answers to them can fill the tables). All N are started at once;
# the clock runs from the first start until every node's /discovery lists the other N-1. Also
# prints each node's CPU time at that point (/proc/PID/stat). Needs root. Not a test.
#   bash bench/discovery_table.sh build/ugated [N]
set -euo pipefail
UGATED=$(readlink -f "$1")
N=${2:-3}
((N >= 2 && N <= 200)) || { echo "N must be 2..200" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "needs root (network namespaces)" >&2; exit 77; }
TAG=ugdb$$
TMP=$(mktemp -d /tmp/ugate-discovery-bench.XXXXXX)
PIDS=()
cleanup() {
  local p i
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  for ((i = 0; i < N; i++)); do ip netns del "$TAG-$i" 2>/dev/null || true; done
  ip netns del "$TAG-br" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
ip netns add "$TAG-br"
ip -n "$TAG-br" link add br0 type bridge mcast_snooping 0
ip -n "$TAG-br" link set br0 up
for ((i = 0; i < N; i++)); do
  ns=$TAG-$i
  ip netns add "$ns"
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0
  ip -n "$ns" link set lo up
  ip link add eth0 netns "$ns" type veth peer name "p$i" netns "$TAG-br"
  ip -n "$TAG-br" link set "p$i" master br0 up
  ip -n "$ns" addr add "10.203.$((i / 250)).$((i % 250 + 1))/16" dev eth0
  ip -n "$ns" link set eth0 up
  "$UGATED" id --data-dir "$TMP/n$i" --name "n$i" >/dev/null 2>&1
  cat >"$TMP/n$i.json" <<JSON
{ "node": { "name": "n$i", "dataDir": "$TMP/n$i" }, "workers": 1,
  "admin": { "address": "127.0.0.1:15000" },
  "discovery": { "enabled": true, "interfaces": ["eth0"] } }
JSON
done
full() {  # full I: node I lists N-1 neighbours
  local c
  c=$(ip netns exec "$TAG-$1" curl -sf --max-time 2 http://127.0.0.1:15000/discovery | jq '.neighbours | length' 2>/dev/null) || return 1
  [[ "$c" == $((N - 1)) ]]
}
t0=$(date +%s.%N)
for ((i = 0; i < N; i++)); do
  ip netns exec "$TAG-$i" "$UGATED" -c "$TMP/n$i.json" >"$TMP/n$i.log" 2>&1 &
  PIDS+=($!)
done
pending=$(seq 0 $((N - 1)))
deadline=$((SECONDS + 60))
while [[ -n "$pending" ]] && ((SECONDS < deadline)); do
  next=""
  for i in $pending; do full "$i" || next+=" $i"; done
  pending=$next
done
t1=$(date +%s.%N)
[[ -z "$pending" ]] || { echo "not full after 60 s: nodes$pending" >&2; exit 1; }
# From the logs (ms timestamps): the first line any node wrote, the first "announcing" line (its
# sockets are open) and, per node, the line of its N-1th neighbour.
from_logs=$(python3 - "$TMP" "$N" <<'PY'
import datetime, glob, sys
tmp, n = sys.argv[1], int(sys.argv[2])
def ts(line):
    return datetime.datetime.strptime(line[:23], "%Y-%m-%dT%H:%M:%S.%f").timestamp()
first = announcing = None
full = []
for i in range(n):
    lines = open(f"{tmp}/n{i}.log").read().splitlines()
    stamps = [l for l in lines if l[:2] == "20"]
    first = min(first or 1e18, ts(stamps[0]))
    a = [ts(l) for l in stamps if "discovery: announcing" in l]
    announcing = max(announcing or 0, a[0])
    seen = [ts(l) for l in stamps if "discovery: neighbour" in l and "expired" not in l]
    full.append(seen[n - 2])
print(f"{(max(full) - first) * 1000:.0f} {(max(full) - announcing) * 1000:.0f}")
PY
)
read -r since_first since_last_up <<<"$from_logs"
ticks=$(getconf CLK_TCK)
cpu=0
for p in "${PIDS[@]}"; do
  read -r -a st <"/proc/$p/stat"
  cpu=$((cpu + st[13] + st[14]))
done
printf 'nodes %d: every table full %s ms after the first ugated logged its first line, %s ms after the last one opened its sockets (from the logs); seen full by polling after %.2f s; CPU of all ugated %.2f s (%d ms each, startup included)\n' \
  "$N" "$since_first" "$since_last_up" "$(echo "$t1 - $t0" | bc -l)" "$(echo "$cpu / $ticks" | bc -l)" $((cpu * 1000 / ticks / N))
