# shellcheck shell=bash
# lib.sh: the harness shared by the real-peer integration tests (peers_test.sh, socks_test.sh,
# sni_test.sh, soak_test.sh). Not a test itself (ctest globs *_test.sh). Source it right after
# `set -euo pipefail`:
#
#   readonly TEST_NAME=peers        # used in the summary line "NAME: N passed, M failed", the usage
#                                   # message, the temp dir name and NAME_KEEP_TMP (upper-cased)
#   readonly WATCHDOG_SECONDS=50
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Sourcing it sets up the counters, the process tracking, the EXIT/ERR/INT/TERM traps and checks the
# single argument (/path/to/ugated, left absolute in UGATED). Then the script checks its peer tools,
# calls start_tmp (temp dir + watchdog) and free_ports, writes $TMP/ugated.json and calls start_ugated.
# A script that defines test_cleanup gets it called by the EXIT trap after its processes are stopped
# (capture_test.sh deletes its network namespaces there).

# TESTS_DIR: this directory (absolute), for helpers such as tls_client.py after a test cd's away.
TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PASS=0
FAIL=0
SKIPPED=0
ERR_LINE=""
TMP=""
UGATED_PID=""
declare -A LIVE=()   # pid -> what, for every process still running that this script started
# The script's own stdout/stderr, kept so the traps can still report when a signal arrives while a
# function's output is redirected (e.g. `run ... >file`). Closed in every spawned process.
exec {OUT_FD}>&1 {ERR_FD}>&2

say() { printf '%s\n' "$*"; }
pass() { PASS=$((PASS + 1)); say "  ok    $*"; }
failed() { FAIL=$((FAIL + 1)); say "  FAIL  $*"; }
skip() { SKIPPED=$((SKIPPED + 1)); say "  SKIP  $*"; }
# check DESC CMD...: one assertion.
check() {
  local desc=$1
  shift
  if "$@"; then pass "$desc"; else failed "$desc"; fi
}
# expect_eq DESC GOT WANT / expect_ge DESC GOT MIN: integer assertions that show the numbers.
# (sni_test.sh redefines expect_eq as a string comparison.)
expect_eq() {
  if [[ "$2" =~ ^[0-9]+$ ]] && (($2 == $3)); then pass "$1 ($2)"; else failed "$1: got '$2', want $3"; fi
}
expect_ge() {
  if [[ "$2" =~ ^[0-9]+$ ]] && (($2 >= $3)); then pass "$1 ($2 >= $3)"; else failed "$1: got '$2', want >= $3"; fi
}
have() { command -v "$1" >/dev/null 2>&1; }
# skip77 WHY: this test cannot run here; ctest reports it as skipped (SKIP_RETURN_CODE 77).
skip77() {
  say "SKIP: $1"
  say "$TEST_NAME: 0 passed, 0 failed"
  trap - EXIT
  exit 77
}
# skip_all WHY: the whole script cannot run here (no root, no namespaces, a missing tool): says why
# and ends with a zero summary line, exit 0.
skip_all() {
  say "SKIP: $1"
  say "$TEST_NAME: 0 passed, 0 failed"
  trap - EXIT
  exit 0
}
sha() { sha256sum "$1" | cut -d' ' -f1; }

# ---- process tracking -------------------------------------------------------------------------

# spawn WHAT CMD...: start CMD in the background, track its PID in LIVE; the PID is left in SPAWNED.
SPAWNED=""
spawn() {
  local what=$1
  shift
  "$@" {OUT_FD}>&- {ERR_FD}>&- &
  SPAWNED=$!
  LIVE[$SPAWNED]=$what
}
# reap PID: wait for a tracked PID, stop tracking it (the PID may be reused once reaped), return its
# exit status.
reap() {
  local rc=0
  wait "$1" || rc=$?
  unset "LIVE[$1]"
  return "$rc"
}
# run WHAT CMD...: like running CMD in the foreground, but tracked, and interruptible by the watchdog.
run() {
  local what=$1
  shift
  spawn "$what" "$@"
  reap "$SPAWNED"
}
# ours PID: true while PID is alive and still a child of this shell (guards against PID reuse).
ours() {
  local st ppid
  st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  st=${st##*) }
  read -r _ ppid _ <<<"$st"
  [[ "$ppid" == "$$" ]]
}
stop_pid() {
  local pid=$1 i
  ours "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  kill -CONT "$pid" 2>/dev/null || true  # a stopped process (kill -STOP in a test) must run to exit
  for ((i = 0; i < 30; i++)); do
    ours "$pid" || break
    # A child that exited but was not reaped yet is a zombie: that's gone enough.
    [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" == Z ]] && break
    sleep 0.1
  done
  if ours "$pid" && [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]]; then
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM ERR
  set +e
  exec 1>&"$OUT_FD" 2>&"$ERR_FD"
  # ugated first (so it does not log the backends going away), then the peers, then the watchdog.
  if [[ -n "$UGATED_PID" && -n "${LIVE[$UGATED_PID]:-}" ]]; then stop_pid "$UGATED_PID"; fi
  local pid
  for pid in "${!LIVE[@]}"; do
    [[ "${LIVE[$pid]}" == watchdog ]] && continue
    stop_pid "$pid"
  done
  for pid in "${!LIVE[@]}"; do stop_pid "$pid"; done
  # The script's own teardown (network namespaces, ...), once its processes are gone.
  if declare -F test_cleanup >/dev/null; then test_cleanup; fi
  if ((rc != 0 || FAIL != 0)) && [[ -n "$TMP" && -f "$TMP/ugated.log" ]]; then
    say "---- ugated log (last 30 lines) ----"
    tail -n 30 "$TMP/ugated.log"
    say "------------------------------------"
  fi
  local keep_var="${TEST_NAME^^}_KEEP_TMP"
  if [[ -n "$TMP" && "${!keep_var:-0}" == 1 ]]; then
    say "$keep_var=1: kept $TMP"
  elif [[ -n "$TMP" ]]; then
    rm -rf -- "$TMP"
  fi
  if ((rc != 0 && FAIL == 0)); then
    FAIL=$((FAIL + 1))
    say "  FAIL  aborted (exit $rc${ERR_LINE:+, last failing command at line $ERR_LINE})"
  fi
  say "$TEST_NAME: $PASS passed, $FAIL failed"
  if ((FAIL != 0 && rc == 0)); then rc=1; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'ERR_LINE=$LINENO' ERR
trap 'exec 1>&"$OUT_FD" 2>&"$ERR_FD"; say "  FAIL  interrupted (watchdog: over ${WATCHDOG_SECONDS}s, or a signal)"; FAIL=$((FAIL + 1)); exit 124' INT TERM

# ---- setup ------------------------------------------------------------------------------------

# The one argument: the ugated binary (made absolute in UGATED). Sourced, so $# and $1 are the script's.
if [[ $# -ne 1 ]]; then
  say "usage: bash ${TEST_NAME}_test.sh /path/to/ugated" >&2
  exit 2
fi
UGATED=$1
[[ "$UGATED" == /* ]] || UGATED="$PWD/$UGATED"
if [[ ! -x "$UGATED" ]]; then
  say "$TEST_NAME: $UGATED is not an executable" >&2
  exit 2
fi

# start_tmp: make the temp dir (TMP), note START_SECONDS, start the watchdog.
start_tmp() {
  TMP=$(mktemp -d "${TMPDIR:-/tmp}/ugate-$TEST_NAME.XXXXXX")
  # shellcheck disable=SC2034  # used by the sourcing script
  START_SECONDS=$SECONDS

  # Watchdog: a bash blocked in the `read` builtin (no child process of its own) that signals this
  # script when the time is up. The TERM trap above then exits, and the EXIT trap stops everything.
  mkfifo "$TMP/watchdog.fifo"
  # shellcheck disable=SC2016  # $1..$3 expand in the inner bash
  spawn watchdog bash -c 'exec 3<>"$1"; read -r -t "$2" -u 3 _ || true; kill -TERM "$3" 2>/dev/null' \
    _ "$TMP/watchdog.fifo" "$WATCHDOG_SECONDS" "$$"
}

# free_ports N: N distinct TCP ports, each free on both 127.0.0.1 and ::1 (when IPv6 is there),
# from below the ephemeral range and claimed across the tests running in parallel (free_ports.py).
# Uses python3 when HAVE_PY=1, else random ports not in /proc/net/tcp{,6}.
free_ports() {
  if ((${HAVE_PY:-0})); then
    python3 "$TESTS_DIR/free_ports.py" "$1"
  else
    # No python3: random ports not in /proc/net/tcp{,6} (any state).
    local used out=() p
    used=$(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | while read -r _ addr _; do
      [[ "$addr" == *:* ]] && echo $((16#${addr##*:}))
    done | sort -u)
    while ((${#out[@]} < $1)); do
      p=$((20000 + RANDOM % 40000))
      grep -qx "$p" <<<"$used" && continue
      [[ " ${out[*]} " == *" $p "* ]] && continue
      out+=("$p")
    done
    echo "${out[*]}"
  fi
}

# shellcheck disable=SC2034  # used by the sourcing script
HAVE_V6=0
# shellcheck disable=SC2034
if [[ -f /proc/net/if_inet6 ]] && grep -q ' lo$' /proc/net/if_inet6; then HAVE_V6=1; fi

# free_udp_ports N: N UDP ports free on 127.0.0.1, claimed like free_ports' (python3).
free_udp_ports() {
  python3 "$TESTS_DIR/free_ports.py" --udp "$1"
}

# listening PORT [6]: is something listening on PORT (in /proc/net/tcp or tcp6)?
listening() {
  local f=/proc/net/tcp
  [[ "${2:-}" == 6 ]] && f=/proc/net/tcp6
  awk -v p="$(printf '%04X' "$1")" 'NR > 1 && $4 == "0A" { split($2, a, ":"); if (a[2] == p) f = 1 } END { exit !f }' "$f"
}
# wait_for DESC TRIES CMD...: poll CMD every 0.1 s.
wait_for() {
  local desc=$1 tries=$2 i
  shift 2
  for ((i = 0; i < tries; i++)); do
    if "$@"; then return 0; fi
    sleep 0.1
  done
  say "  ...   timed out waiting for $desc"
  return 1
}

# nat_namespaces GW NAT INNER NET: three network namespaces in a line, GW (NET.1.1 on g0) ── NAT
# (NET.1.2 on n0 | NET.2.1 on n1) ── INNER (NET.2.2 on a0, default route via the NAT). NAT is a home
# router: outbound connections are masqueraded, nothing new comes in. Status 1 when namespaces
# cannot be made here; the caller deletes them (test_cleanup).
nat_namespaces() {
  local gw=$1 nat=$2 inner=$3 net=$4 ns
  ip netns add "$gw" 2>/dev/null || return 1
  ip netns add "$nat"
  ip netns add "$inner"
  ip link add g0 netns "$gw" type veth peer name n0 netns "$nat"
  ip link add n1 netns "$nat" type veth peer name a0 netns "$inner"
  ip -n "$gw" addr add "$net.1.1/24" dev g0
  ip -n "$nat" addr add "$net.1.2/24" dev n0
  ip -n "$nat" addr add "$net.2.1/24" dev n1
  ip -n "$inner" addr add "$net.2.2/24" dev a0
  for ns in "$gw" "$nat" "$inner"; do ip -n "$ns" link set lo up; done
  ip -n "$gw" link set g0 up
  ip -n "$nat" link set n0 up
  ip -n "$nat" link set n1 up
  ip -n "$inner" link set a0 up
  ip -n "$inner" route add default via "$net.2.1"
  ip netns exec "$nat" sysctl -qw net.ipv4.ip_forward=1
  ip netns exec "$nat" iptables -t nat -A POSTROUTING -o n0 -j MASQUERADE
  ip netns exec "$nat" iptables -A FORWARD -i n0 -o n1 -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  ip netns exec "$nat" iptables -A FORWARD -i n0 -o n1 -j DROP
}

# ---- ugated nodes in namespaces (mesh_test.sh, quic_mesh_test.sh) ------------------------------
# A script sets NODE_ADMIN[NAME] (the admin port in NAME's config) and starts each node with
# `spawn_node NAME NS`. Scripts with other needs define their own metric() after sourcing this file.

# spawn_node NAME NS: start ugated in a namespace on $TMP/NAME.json (log $TMP/NAME.log).
declare -A NODE_PID=() NODE_NS=() NODE_ADMIN=()
spawn_node() {
  spawn "ugated-$1" ip netns exec "$2" "$UGATED" -c "$TMP/$1.json" >>"$TMP/$1.log" 2>&1
  NODE_PID[$1]=$SPAWNED
  NODE_NS[$1]=$2
}
# nadmin NODE PATH: an admin GET inside the node's namespace.
nadmin() { ip netns exec "${NODE_NS[$1]}" curl -sS --max-time 5 "http://127.0.0.1:${NODE_ADMIN[$1]}$2"; }
# metric NODE KEY: the value of NODE's /stats line whose first field is KEY (0 when absent).
metric() {
  local v
  v=$(nadmin "$1" /stats 2>/dev/null | awk -v k="$2" '$1 == k && !f { print $2; f = 1 }')
  echo "${v:-0}"
}
node_ready() { ours "${NODE_PID[$1]}" && nadmin "$1" /ready >/dev/null 2>&1; }
# await_node NAME: one assertion that NAME answers /ready within 10 s; aborts the script if not.
await_node() {
  if wait_for "$1 /ready" 100 node_ready "$1"; then pass "$1 is up"; else
    failed "$1 did not become ready"
    tail -n 20 "$TMP/$1.log"
    exit 1
  fi
}

# ---- ugated -----------------------------------------------------------------------------------

# start_ugated: run ugated on $TMP/ugated.json (log in $TMP/ugated.log), tracked; its PID in UGATED_PID.
start_ugated() {
  spawn ugated "$UGATED" -c "$TMP/ugated.json" >"$TMP/ugated.log" 2>&1
  UGATED_PID=$SPAWNED
}
# ugated_port WHAT: the port ugated bound for `admin` or for the listener named WHAT, read from its
# log ("admin on http://IP:PORT", "listener NAME (KIND) on IP:PORT"). With port 0 in the config the
# kernel picks a port that no other process can take between choosing and binding it.
ugated_port() {
  local line
  if [[ "$1" == admin ]]; then
    line=$(grep -m1 -o 'admin on http://[^ ]*' "$TMP/ugated.log" 2>/dev/null) || return 1
  else
    line=$(grep -m1 -o "listener $1 ([^)]*) on [^ ]*" "$TMP/ugated.log" 2>/dev/null) || return 1
  fi
  printf '%s\n' "${line##*:}"
}
# await_admin_port: wait until ugated logged its admin port, then set ADMIN_PORT from it.
await_admin_port() {
  if ! wait_for "ugated's admin port in its log" 50 ugated_port admin >/dev/null; then
    failed "ugated did not start (no admin port in its log)"
    exit 1
  fi
  ADMIN_PORT=$(ugated_port admin)
}
ugated_alive() { [[ -n "${LIVE[$UGATED_PID]:-}" ]] && ours "$UGATED_PID"; }
# admin PATH: GET an admin endpoint on ADMIN_PORT (bash /dev/tcp, so it works without curl too).
admin() {
  local reply
  exec 9<>"/dev/tcp/127.0.0.1/$ADMIN_PORT" || return 1
  printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$1" >&9
  reply=$(timeout 5 cat <&9) || { exec 9<&-; return 1; }
  exec 9<&-
  [[ "$reply" == "HTTP/1."?" 200"* ]] || return 1
  printf '%s\n' "${reply#*$'\r\n\r\n'}"
}
ready() { ugated_alive && admin /ready >/dev/null 2>&1; }
# await_ugated_ready: one assertion that ugated answers /ready within 5 s; aborts the script if not.
await_ugated_ready() {
  if ! wait_for "ugated /ready" 50 ready; then
    failed "ugated did not become ready"
    exit 1
  fi
  pass "ugated is up and /ready (pid $UGATED_PID)"
}
