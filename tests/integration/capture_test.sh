#!/usr/bin/env bash
# capture_test.sh: transparent capture (`redirect`, `tproxy` listeners) and `ugated iptables` in
# network namespaces this script creates, with real peers (curl, python3 http.server):
#
#   bash capture_test.sh /path/to/ugated
#
# Two namespaces joined by a veth pair: CLI (10.77.0.1, fd77::1) and SRV (10.77.0.2, fd77::2),
# SRV serving files on port 8080 (python3 http.server, which logs each client's address).
# (A) outbound capture in CLI (`apply`, REDIRECT): curl as uid 0 and 1000 reaches SRV through
#     ugated running as uid 1337 (sha256 of 4 MiB, IPv4 and IPv6, access log names the original
#     destination); routes match the original destination and may send it elsewhere or reject it;
#     connecting to ugated's own port is refused (loop_detected, counted in /stats);
#     with ugated stopped, every uid but the proxy's (uid 1337, gid 1337) is blocked; ugated as
#     root with `mark` is not captured again; `apply` twice equals once; `clean` restores
#     iptables-save (IPv4 and IPv6, next to another tool's rules) and the addresses of lo.
# (B) inbound TPROXY in SRV (`apply --mode tproxy`, ugated as uid 1337 with CAP_NET_ADMIN): the
#     application sees the client's own address (upstreamSource client) or 127.0.0.6 / ::6
#     (passthrough, after a SIGHUP reload); both captures in a row (CLI's outbound ugated to SRV's
#     inbound ugated); with ugated stopped, nothing reaches the application
#     from outside; a connection to the capture port itself is refused; `clean` restores
#     iptables-save, `ip rule` and route table 133.
# (C) the legacy backend: chosen by `auto` where legacy rules exist, applied and cleaned.
#
# Needs root and network namespaces: without them it exits 77 (ctest: skipped) saying why. It never
# touches the root namespace's rules, routes or addresses; its namespaces, processes (by PID) and
# temp dir are removed on exit; a watchdog bounds the run. The last line is always
# "capture: N passed, M failed". CAPTURE_KEEP_TMP=1 keeps the temp dir.
set -euo pipefail

readonly TEST_NAME=capture
readonly WATCHDOG_SECONDS=240

# Skips come before the harness: its EXIT trap would count them as failures.
if [[ $(id -u) -ne 0 ]]; then
  echo "capture: SKIP: needs root (network namespaces, iptables, TPROXY)"
  exit 77
fi
for tool in ip iptables-save ip6tables-save iptables-legacy-save curl python3 setpriv ss; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "capture: SKIP: $tool not found (scripts/install-deps.sh installs it)"
    exit 77
  fi
done
PROBE_NS="ugc-probe-$$"
if ! ip netns add "$PROBE_NS" 2>/dev/null; then
  echo "capture: SKIP: cannot create network namespaces here"
  exit 77
fi
ip netns del "$PROBE_NS"

# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CLI="ugc-cli-$$"
SRV="ugc-srv-$$"
LEG="ugc-leg-$$"
NAMESPACES=()
test_cleanup() {
  local ns
  for ns in "${NAMESPACES[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
}

start_tmp
chmod 755 "$TMP"  # ugated runs as uid 1337 and reads its config here

nsx() {
  local ns=$1
  shift
  ip netns exec "$ns" "$@"
}
# as UID GID CMD...: run CMD with that uid and gid and no supplementary groups.
as() {
  local uid=$1 gid=$2
  shift 2
  setpriv --reuid "$uid" --regid "$gid" --clear-groups "$@"
}
# norm: iptables-save output without comments and counters, comparable across runs.
norm() { sed -E '/^#/d; s/\[[0-9]+:[0-9]+\]//'; }
state_of() {  # state_of NS: everything apply may touch, as text
  local ns=$1
  {
    echo "== iptables"
    nsx "$ns" iptables-save | norm
    echo "== ip6tables"
    nsx "$ns" ip6tables-save | norm
    echo "== rules"
    nsx "$ns" ip -4 rule show
    nsx "$ns" ip -6 rule show
    echo "== table 133"
    # A table that never existed is an error for `ip`; the kernel keeps a table once made, empty
    # after clean: the same meaning.
    nsx "$ns" ip -4 route show table 133 2>/dev/null || true
    nsx "$ns" ip -6 route show table 133 2>/dev/null || true
    echo "== lo"
    nsx "$ns" ip addr show dev lo | grep -E 'inet6? '
  } 2>&1
}
legacy_state_of() {
  nsx "$1" iptables-legacy-save | norm
  nsx "$1" ip6tables-legacy-save | norm
}
# another_tools_rules NS: rules some other tool put there first; apply and clean must keep them.
another_tools_rules() {
  local ns=$1
  nsx "$ns" iptables -t nat -A POSTROUTING -d 198.51.100.0/24 -j RETURN
  nsx "$ns" iptables -t mangle -A PREROUTING -s 198.51.100.0/24 -j RETURN
  nsx "$ns" ip6tables -t nat -A POSTROUTING -d 2001:db8::/32 -j RETURN
  nsx "$ns" ip6tables -t mangle -A PREROUTING -s 2001:db8::/32 -j RETURN
}
expect_same() {  # expect_same DESC FILE-A FILE-B
  if cmp -s "$2" "$3"; then
    pass "$1"
  else
    failed "$1"
    diff "$2" "$3" | head -20 || true
  fi
}
# expect_lines DESC FILE REGEX N: FILE has N lines matching REGEX (grep basic syntax).
expect_lines() {
  expect_eq "$1" "$(grep -c -- "$3" "$2" || true)" "$4"
}
expect_has() {
  if [[ "$2" == *"$3"* ]]; then pass "$1"; else failed "$1: got '${2:0:300}', want '$3'"; fi
}
ns_listening() {  # ns_listening NS PORT
  [[ -n "$(nsx "$1" ss -Hltn "sport = :$2" 2>/dev/null)" ]]
}
stats_of() { nsx "$1" curl -sS --max-time 5 "http://127.0.0.1:15000/stats" 2>/dev/null || true; }
metric() {  # metric NS 'name{labels}': the value, or 0
  local v
  v=$(stats_of "$1" | awk -v m="$2" '$1 == m { print $2 }')
  echo "${v:-0}"
}
ready_in() { nsx "$1" curl -sf --max-time 2 "http://127.0.0.1:15000/ready" >/dev/null 2>&1; }

# curl_as NS UID GID URL [OUT]: fetch URL from NS as that user; the body goes to OUT (or nowhere).
curl_as() {
  local ns=$1 uid=$2 gid=$3 url=$4 out=${5:-/dev/null}
  run curl nsx "$ns" setpriv --reuid "$uid" --regid "$gid" --clear-groups \
    curl -sS -g --connect-timeout 3 --max-time 20 -o - "$url" >"$out" 2>>"$TMP/curl.err"
}
# fetch_ok DESC NS UID GID URL: the 4 MiB file arrives intact.
fetch_ok() {
  local desc=$1 out="$TMP/dl.$RANDOM"
  if curl_as "$2" "$3" "$4" "$5" "$out" && [[ "$(sha "$out")" == "$BIG_SHA" ]]; then
    pass "$desc"
  else
    failed "$desc"
  fi
  rm -f "$out"
}
# fetch_fails DESC NS UID GID URL: the connection does not get through.
fetch_fails() {
  local desc=$1
  if curl_as "$2" "$3" "$4" "$5"; then failed "$desc: it got through"; else pass "$desc"; fi
}

say "== setup: namespaces $CLI and $SRV (ugated: $UGATED)"
ip netns add "$CLI"
NAMESPACES+=("$CLI")
ip netns add "$SRV"
NAMESPACES+=("$SRV")
ip netns add "$LEG"
NAMESPACES+=("$LEG")
ip -n "$CLI" link add veth0 type veth peer name veth1 netns "$SRV"
for ns in "$CLI" "$SRV" "$LEG"; do ip -n "$ns" link set lo up; done
ip -n "$CLI" addr add 10.77.0.1/24 dev veth0
ip -n "$CLI" addr add fd77::1/64 dev veth0 nodad
ip -n "$SRV" addr add 10.77.0.2/24 dev veth1
ip -n "$SRV" addr add fd77::2/64 dev veth1 nodad
ip -n "$CLI" link set veth0 up
ip -n "$SRV" link set veth1 up

WWW="$TMP/www"
mkdir -p "$WWW"
head -c $((4 * 1024 * 1024)) /dev/urandom >"$WWW/big.bin"
chmod -R a+rX "$WWW"
BIG_SHA=$(sha "$WWW/big.bin")
spawn http-server ip netns exec "$SRV" python3 -u -m http.server --bind :: --directory "$WWW" 8080 \
  >"$TMP/http.log" 2>&1
if ! wait_for "the application in $SRV" 50 ns_listening "$SRV" 8080; then
  failed "http.server did not start"
  exit 1
fi
fetch_ok "no capture yet: CLI reaches SRV directly (IPv4)" "$CLI" 0 0 "http://10.77.0.2:8080/big.bin"
fetch_ok "no capture yet: CLI reaches SRV directly (IPv6)" "$CLI" 0 0 "http://[fd77::2]:8080/big.bin"

# ---------------------------------------------------------------------------------------------
say "== (A) outbound capture (REDIRECT) in $CLI"
another_tools_rules "$CLI"
state_of "$CLI" >"$TMP/cli.before"
out=$(run print nsx "$CLI" "$UGATED" iptables print 2>&1) || true
expect_has "print shows the outbound capture" "$out" "-A ISTIO_OUTPUT -j ISTIO_REDIRECT"
expect_has "print shows IPv6 rules" "$out" "-A ISTIO_OUTPUT -o lo -s ::6/128 -j RETURN"
state_of "$CLI" >"$TMP/cli.printed"
expect_same "print changes nothing" "$TMP/cli.before" "$TMP/cli.printed"

check "apply" run apply nsx "$CLI" "$UGATED" iptables apply
state_of "$CLI" >"$TMP/cli.applied1"
check "apply again" run apply nsx "$CLI" "$UGATED" iptables apply
state_of "$CLI" >"$TMP/cli.applied2"
expect_same "apply twice equals apply once" "$TMP/cli.applied1" "$TMP/cli.applied2"
n=$(grep -c -- '-A ISTIO_OUTPUT -j ISTIO_REDIRECT' "$TMP/cli.applied2" || true)
expect_eq "the catch-all outbound rule, once per family" "$n" 2
if grep -q -- '-A POSTROUTING -d 198.51.100.0/24 -j RETURN' "$TMP/cli.applied2"; then
  pass "another tool's rules are kept"
else
  failed "another tool's rules are gone"
fi

# Both ugateds: admin on their namespace's own loopback, access log on stdout (their log file).
COMMON_CONFIG='"workers": 2, "admin": {"address": "127.0.0.1:15000"},
  "log": {"level": "info", "accessLog": "-"}, "limits": {"connectTimeout": "3s", "drainTimeout": "1s"},'
cat >"$TMP/cli.json" <<EOF
{
  $COMMON_CONFIG
  "listeners": [
    {"name": "outbound", "kind": "redirect", "address": "0.0.0.0:15001"},
    {"name": "outbound6", "kind": "redirect", "address": "[::]:15001"},
    {"name": "inbound", "kind": "redirect", "address": "0.0.0.0:15006", "upstreamSource": "passthrough"},
    {"name": "inbound6", "kind": "redirect", "address": "[::]:15006", "upstreamSource": "passthrough"}
  ],
  "routes": [
    {"name": "moved", "match": {"listener": ["outbound", "outbound6"], "port": 8081}, "to": "10.77.0.2:8080"},
    {"name": "blocked", "match": {"listener": "outbound", "cidr": "10.77.0.2/32", "port": 9999}, "to": "reject"}
  ]
}
EOF
chmod 644 "$TMP/cli.json"
# start_ns_ugated NS NAME UID CONFIG [SETPRIV-OPTIONS...]: ugated in NS as UID (and gid UID), log in
# $TMP/ugated-NAME.log (appended), its PID in NS_PID once /ready answers.
start_ns_ugated() {
  local ns=$1 name=$2 uid=$3 config=$4
  shift 4
  spawn "ugated-$name" ip netns exec "$ns" setpriv --reuid "$uid" --regid "$uid" --clear-groups "$@" \
    "$UGATED" -c "$config" >>"$TMP/ugated-$name.log" 2>&1
  NS_PID=$SPAWNED
  UGATED_PID=$NS_PID
  if ! wait_for "ugated in $ns" 50 ready_in "$ns"; then
    failed "ugated (uid $uid $*) did not become ready in $ns"
    cp "$TMP/ugated-$name.log" "$TMP/ugated.log"  # shown by the EXIT trap
    exit 1
  fi
  pass "ugated runs in $ns as uid $uid $* (pid $NS_PID)"
}
start_cli_ugated() {  # start_cli_ugated UID CONFIG: sets CLI_PID
  start_ns_ugated "$CLI" cli "$1" "$2"
  CLI_PID=$NS_PID
}
start_cli_ugated 1337 "$TMP/cli.json"

fetch_ok "uid 0 in CLI -> SRV:8080 through ugated (IPv4, sha256)" "$CLI" 0 0 "http://10.77.0.2:8080/big.bin"
fetch_ok "uid 1000 in CLI -> SRV:8080 through ugated (IPv4, sha256)" "$CLI" 1000 1000 "http://10.77.0.2:8080/big.bin"
fetch_ok "uid 1000 in CLI -> SRV:8080 through ugated (IPv6, sha256)" "$CLI" 1000 1000 "http://[fd77::2]:8080/big.bin"
expect_eq "outbound connections counted" "$(metric "$CLI" 'ugate_listener_connections_total{listener="outbound"}')" 2
expect_eq "outbound6 connections counted" "$(metric "$CLI" 'ugate_listener_connections_total{listener="outbound6"}')" 1
expect_lines "access log: redirect streams to the original destination (IPv4)" "$TMP/ugated-cli.log" \
  '"kind":"redirect","listener":"outbound",.*"original_dst":"10.77.0.2:8080".*"close":"ok"' 2
expect_lines "access log: redirect stream to the original destination (IPv6)" "$TMP/ugated-cli.log" \
  '"listener":"outbound6",.*"original_dst":"\[fd77::2\]:8080".*"close":"ok"' 1

say "-- no capture loop"
# Straight to the capture port: the proxy's own uid is not captured, root's loopback traffic
# neither; the original destination is then ugated itself.
fetch_fails "uid 1337 -> 10.77.0.1:15001 (ugated itself) is refused" "$CLI" 1337 1337 "http://10.77.0.1:15001/"
fetch_fails "uid 0 -> 127.0.0.1:15001 is refused" "$CLI" 0 0 "http://127.0.0.1:15001/"
fetch_fails "uid 0 -> [::1]:15001 is refused" "$CLI" 0 0 "http://[::1]:15001/"
expect_eq "loops counted (IPv4)" "$(metric "$CLI" 'ugate_listener_closes_total{listener="outbound",reason="loop_detected"}')" 2
expect_eq "loops counted (IPv6)" "$(metric "$CLI" 'ugate_listener_closes_total{listener="outbound6",reason="loop_detected"}')" 1
expect_lines "access log: loops with their reason" "$TMP/ugated-cli.log" \
  '"listener":"outbound",.*"close":"loop_detected"' 2
if grep -q 'refused: loop_detected: original destination 127.0.0.1:15001 is this listener' "$TMP/ugated-cli.log"; then
  pass "log says why"
else
  failed "no log line for the loop"
fi
fetch_ok "other streams are untouched by the refusals" "$CLI" 0 0 "http://10.77.0.2:8080/big.bin"

say "-- routes see the original destination and may override it"
fetch_ok "a route sends SRV:8081 to SRV:8080" "$CLI" 0 0 "http://10.77.0.2:8081/big.bin"
fetch_ok "the same route for IPv6 ([fd77::2]:8081 -> 10.77.0.2:8080)" "$CLI" 0 0 "http://[fd77::2]:8081/big.bin"
fetch_fails "a reject route for SRV:9999" "$CLI" 0 0 "http://10.77.0.2:9999/"
expect_lines "access log: the route and where it sent the stream" "$TMP/ugated-cli.log" \
  '"original_dst":"10.77.0.2:8081","route":"moved","upstream":"10.77.0.2:8080".*"close":"ok"' 1
expect_lines "access log: the rejected stream" "$TMP/ugated-cli.log" \
  '"original_dst":"10.77.0.2:9999","route":"blocked".*"close":"route_rejected"' 1

say "-- capture is enforced: with ugated stopped only the proxy's uid/gid get out"
stop_pid "$CLI_PID"
unset "LIVE[$CLI_PID]"
fetch_fails "uid 0 is blocked (IPv4)" "$CLI" 0 0 "http://10.77.0.2:8080/big.bin"
fetch_fails "uid 1000 is blocked (IPv4)" "$CLI" 1000 1000 "http://10.77.0.2:8080/big.bin"
fetch_fails "uid 1338 is blocked (IPv4)" "$CLI" 1338 1338 "http://10.77.0.2:8080/big.bin"
fetch_fails "uid 1000 is blocked (IPv6)" "$CLI" 1000 1000 "http://[fd77::2]:8080/big.bin"
fetch_ok "uid 1337 goes direct (IPv4)" "$CLI" 1337 1337 "http://10.77.0.2:8080/big.bin"
fetch_ok "uid 1337 goes direct (IPv6)" "$CLI" 1337 1337 "http://[fd77::2]:8080/big.bin"
fetch_ok "gid 1337 (uid 2000) goes direct" "$CLI" 2000 1337 "http://10.77.0.2:8080/big.bin"

say "-- the proxy's SO_MARK is never captured: ugated as root with mark 1337"
sed 's/"kind": "redirect", "address": "0.0.0.0:15001"/&, "mark": 1337/; s/"kind": "redirect", "address": "\[::\]:15001"/&, "mark": 1337/' \
  "$TMP/cli.json" >"$TMP/cli-mark.json"
chmod 644 "$TMP/cli-mark.json"
start_cli_ugated 0 "$TMP/cli-mark.json"
fetch_ok "uid 1000 through ugated (root, marked upstream) (IPv4)" "$CLI" 1000 1000 "http://10.77.0.2:8080/big.bin"
fetch_ok "uid 1000 through ugated (root, marked upstream) (IPv6)" "$CLI" 1000 1000 "http://[fd77::2]:8080/big.bin"
expect_eq "one capture per fetch (no re-capture of the marked upstream)" \
  "$(metric "$CLI" 'ugate_listener_connections_total{listener="outbound"}')" 1
stop_pid "$CLI_PID"
unset "LIVE[$CLI_PID]"

check "clean" run clean nsx "$CLI" "$UGATED" iptables clean
state_of "$CLI" >"$TMP/cli.cleaned"
expect_same "after clean: iptables-save, ip6tables-save and lo as before apply" "$TMP/cli.before" "$TMP/cli.cleaned"
out=$(run clean nsx "$CLI" "$UGATED" iptables clean 2>&1) || true
expect_has "clean again: nothing to remove" "$out" "IPv4 (nft): nothing to remove"

# ---------------------------------------------------------------------------------------------
say "== (B) inbound capture (TPROXY) in $SRV"
another_tools_rules "$SRV"
state_of "$SRV" >"$TMP/srv.before"
check "apply --mode tproxy" run apply nsx "$SRV" "$UGATED" iptables apply --mode tproxy
state_of "$SRV" >"$TMP/srv.applied1"
check "apply --mode tproxy again" run apply nsx "$SRV" "$UGATED" iptables apply --mode tproxy
state_of "$SRV" >"$TMP/srv.applied2"
expect_same "apply twice equals apply once (rules, ip rule, table 133)" "$TMP/srv.applied1" "$TMP/srv.applied2"
expect_eq "one fwmark rule per family" "$(grep -c 'fwmark 0x539 lookup 133' "$TMP/srv.applied2" || true)" 2
expect_eq "one local default route per family" "$(grep -c '^local default dev lo' "$TMP/srv.applied2" || true)" 2

cat >"$TMP/srv.json" <<EOF
{
  $COMMON_CONFIG
  "listeners": [
    {"name": "inbound", "kind": "tproxy", "address": "0.0.0.0:15006", "upstreamSource": "client", "mark": 1337},
    {"name": "inbound6", "kind": "tproxy", "address": "[::]:15006", "upstreamSource": "client", "mark": 1337}
  ]
}
EOF
chmod 644 "$TMP/srv.json"
start_ns_ugated "$SRV" srv 1337 "$TMP/srv.json" --inh-caps +net_admin --ambient-caps +net_admin
SRV_PID=$NS_PID

# fetch_seen_as DESC UID WANT4 WANT6: uid UID in CLI fetches from SRV over IPv4 and IPv6 (sha256);
# the application's log shows the client as WANT4 and WANT6.
fetch_seen_as() {
  local desc=$1 uid=$2 before seen
  before=$(wc -l <"$TMP/http.log")
  fetch_ok "$desc (IPv4, sha256)" "$CLI" "$uid" "$uid" "http://10.77.0.2:8080/big.bin"
  fetch_ok "$desc (IPv6, sha256)" "$CLI" "$uid" "$uid" "http://[fd77::2]:8080/big.bin"
  seen=$(tail -n +"$((before + 1))" "$TMP/http.log")
  expect_has "the application sees $3" "$seen" "$3 - - "
  expect_has "the application sees $4" "$seen" "$4 - - "
}
fetch_seen_as "CLI -> SRV:8080 captured by TPROXY, client's own source" 1000 10.77.0.1 fd77::1
expect_lines "access log: tproxy stream to the original destination (IPv4)" "$TMP/ugated-srv.log" \
  '"kind":"tproxy","listener":"inbound",.*"original_dst":"10.77.0.2:8080".*"close":"ok"' 1
expect_lines "access log: tproxy stream to the original destination (IPv6)" "$TMP/ugated-srv.log" \
  '"listener":"inbound6",.*"src":"\[fd77::1\]:[0-9]*",.*"original_dst":"\[fd77::2\]:8080".*"close":"ok"' 1

say "-- no capture loop"
fetch_fails "CLI -> SRV:15006 (the capture port itself) is refused" "$CLI" 0 0 "http://10.77.0.2:15006/"
expect_eq "loop counted" "$(metric "$SRV" 'ugate_listener_closes_total{listener="inbound",reason="loop_detected"}')" 1

say "-- upstreamSource passthrough (SIGHUP reload): the application sees 127.0.0.6 / ::6"
sed 's/"upstreamSource": "client", "mark": 1337/"upstreamSource": "passthrough"/g' "$TMP/srv.json" >"$TMP/srv2.json"
cp "$TMP/srv2.json" "$TMP/srv.json"
kill -HUP "$SRV_PID"
if wait_for "the reload" 50 grep -q 'reloaded' "$TMP/ugated-srv.log"; then pass "reloaded"; else failed "no reload"; fi
fetch_seen_as "CLI -> SRV:8080 captured, passthrough source" 0 127.0.0.6 ::6

say "-- sidecar to sidecar: CLI's outbound capture, then SRV's inbound capture"
check "apply in CLI again" run apply nsx "$CLI" "$UGATED" iptables apply
start_cli_ugated 1337 "$TMP/cli.json"
srv_before=$(grep -c '"kind":"tproxy"' "$TMP/ugated-srv.log" || true)
cli_before=$(grep -c '"kind":"redirect","listener":"outbound6\?".*"original_dst":"[^"]*:8080".*"close":"ok"' "$TMP/ugated-cli.log" || true)
fetch_ok "uid 1000 in CLI -> SRV:8080 through both ugateds (IPv4)" "$CLI" 1000 1000 "http://10.77.0.2:8080/big.bin"
fetch_ok "uid 1000 in CLI -> SRV:8080 through both ugateds (IPv6)" "$CLI" 1000 1000 "http://[fd77::2]:8080/big.bin"
expect_eq "CLI's ugated took both" \
  "$(($(grep -c '"kind":"redirect","listener":"outbound6\?".*"original_dst":"[^"]*:8080".*"close":"ok"' "$TMP/ugated-cli.log" || true) - cli_before))" 2
expect_eq "SRV's ugated took both" "$(($(grep -c '"kind":"tproxy"' "$TMP/ugated-srv.log" || true) - srv_before))" 2
stop_pid "$CLI_PID"
unset "LIVE[$CLI_PID]"
check "clean in CLI" run clean nsx "$CLI" "$UGATED" iptables clean
state_of "$CLI" >"$TMP/cli.cleaned2"
expect_same "CLI as before again" "$TMP/cli.before" "$TMP/cli.cleaned2"

say "-- capture is enforced: with ugated stopped nothing from outside reaches the application"
stop_pid "$SRV_PID"
unset "LIVE[$SRV_PID]"
fetch_fails "CLI -> SRV:8080 is blocked (IPv4)" "$CLI" 0 0 "http://10.77.0.2:8080/big.bin"
fetch_fails "CLI -> SRV:8080 is blocked (IPv6)" "$CLI" 0 0 "http://[fd77::2]:8080/big.bin"
fetch_ok "local traffic in SRV is not captured" "$SRV" 1000 1000 "http://10.77.0.2:8080/big.bin"

check "clean --mode tproxy" run clean nsx "$SRV" "$UGATED" iptables clean --mode tproxy
state_of "$SRV" >"$TMP/srv.cleaned"
expect_same "after clean: iptables-save, ip6tables-save, ip rule, table 133 and lo as before" \
  "$TMP/srv.before" "$TMP/srv.cleaned"
fetch_ok "after clean CLI reaches SRV directly" "$CLI" 0 0 "http://10.77.0.2:8080/big.bin"

# ---------------------------------------------------------------------------------------------
say "== (C) legacy backend in $LEG"
nsx "$LEG" iptables-legacy -t nat -A POSTROUTING -d 198.51.100.0/24 -j RETURN
nsx "$LEG" iptables-legacy -t mangle -A PREROUTING -s 198.51.100.0/24 -j RETURN
nsx "$LEG" ip6tables-legacy -t nat -A POSTROUTING -d 2001:db8::/32 -j RETURN
nsx "$LEG" ip6tables-legacy -t mangle -A PREROUTING -s 2001:db8::/32 -j RETURN
legacy_state_of "$LEG" >"$TMP/leg.before"
nsx "$LEG" iptables-nft-save 2>/dev/null | norm >"$TMP/leg.nft.before"
out=$(run apply nsx "$LEG" "$UGATED" iptables apply --mode tproxy 2>&1) || true
expect_has "auto picks the backend that holds rules" "$out" "IPv4 (legacy): 30 rules installed"
n=$(legacy_state_of "$LEG" | grep -c -- '-A ISTIO_TPROXY' || true)
expect_eq "TPROXY rules in legacy tables" "$n" 2
expect_eq "nothing in the nft tables" "$(nsx "$LEG" iptables-nft-save 2>/dev/null | norm | grep -c ISTIO || true)" 0
check "clean --backend legacy" run clean nsx "$LEG" "$UGATED" iptables clean --mode tproxy --backend legacy
legacy_state_of "$LEG" >"$TMP/leg.cleaned"
expect_same "after clean: iptables-legacy-save as before" "$TMP/leg.before" "$TMP/leg.cleaned"
nsx "$LEG" iptables-nft-save 2>/dev/null | norm >"$TMP/leg.nft.after"
expect_same "nft tables untouched" "$TMP/leg.nft.before" "$TMP/leg.nft.after"

say "(ran in $((SECONDS - START_SECONDS)) s)"
