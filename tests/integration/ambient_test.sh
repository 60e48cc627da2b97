#!/usr/bin/env bash
# ambient_test.sh: ugated as an Istio ambient data plane (issue 19 §3/§4), in network namespaces
# this script creates, with a test control plane written here (ambient_cp.js: @grpc/grpc-js +
# protobufjs serving delta istio.workload.Address and istio.security.Authorization):
#
#   bash ambient_test.sh /path/to/ugated
#
# CLI (10.78.0.1) ── veth ── SRV (10.78.0.2 = workload w1, 10.78.0.3 = workload w2). SRV runs the
# control plane, one HTTP server per workload address (each says which it is) and a ugated that
# terminates HBONE on :15008 (a `mesh` listener, mTLS with a CA of this run's trust domain) and
# checks the Authorization policies. CLI captures outbound traffic (`ugated iptables apply`,
# redirect) into a ugated (uid 1337) whose xds client subscribes to the ambient types.
# (1) curl in CLI to the Service VIP 10.96.0.10:80 reaches w1:8080 over HBONE (CONNECT to
#     10.78.0.2:8080 at 10.78.0.2:15008, the client's SPIFFE identity checked by SRV); the control
#     plane saw ztunnel's node metadata and the bearer token from the token file.
# (2) a DENY policy for the client's principal: the stream is refused (403 on the CONNECT), SRV
#     logs the reason and counts it; CLI's curl fails.
# (3) the policy removed and the workload moved (w1 removed, w2 added): traffic reaches w2.
# (4) a reload without `ambient` withdraws the state: w2's address is then dialled as it is.
# Needs root, network namespaces, node and npm (the npm packages are installed into the build
# tree once); otherwise exits 77 (skipped) saying why. Namespaces, rules and processes (by PID)
# are removed on exit. The last line is "ambient: N passed, M failed".
set -euo pipefail

readonly TEST_NAME=ambient
readonly WATCHDOG_SECONDS=90

if [[ $(id -u) -ne 0 ]]; then
  echo "ambient: SKIP: needs root (network namespaces, iptables)"
  exit 77
fi
for tool in ip iptables-save curl python3 setpriv node npm flock; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "ambient: SKIP: $tool not found"
    exit 77
  fi
done
PROBE_NS="uga-probe-$$"
if ! ip netns add "$PROBE_NS" 2>/dev/null; then
  echo "ambient: SKIP: cannot create network namespaces here"
  exit 77
fi
ip netns del "$PROBE_NS"
NPM_DIR=${UGATE_BUILD_DIR:-$(dirname "$1")}/npm
# @grpc/grpc-js (with protobufjs) into the build tree once, under the lock the xds tests use.
if [[ ! -f "$NPM_DIR/node_modules/@grpc/grpc-js/package.json" ]]; then
  mkdir -p "$NPM_DIR"
  if ! flock "$NPM_DIR/.install.lock" sh -c "test -f '$NPM_DIR/node_modules/@grpc/grpc-js/package.json' || npm install --no-audit --no-fund --prefix '$NPM_DIR' @grpc/grpc-js@1.14" >/dev/null 2>&1; then
    echo "ambient: SKIP: npm could not install @grpc/grpc-js"
    exit 77
  fi
fi

# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CLI="uga-cli-$$"
SRV="uga-srv-$$"
NAMESPACES=()
test_cleanup() {
  local ns
  [[ -n "${CP_IN:-}" ]] && exec {CP_IN}>&-
  for ns in "${NAMESPACES[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
}

start_tmp
chmod 755 "$TMP"
nsx() {
  local ns=$1
  shift
  ip netns exec "$ns" "$@"
}
metric() {  # metric NS 'name{labels}': the value, or 0
  local v
  v=$(nsx "$1" curl -sS --max-time 5 "http://127.0.0.1:15000/stats" 2>/dev/null | awk -v m="$2" '$1 == m { print $2 }')
  echo "${v:-0}"
}
metric_is() { [[ "$(metric "$1" "$2")" == "$3" ]]; }
ready_in() { nsx "$1" curl -sf --max-time 2 "http://127.0.0.1:15000/ready" >/dev/null 2>&1; }
# get URL: the body curl gets in CLI as uid 1000 (captured), or status 1.
get() { nsx "$CLI" setpriv --reuid 1000 --regid 1000 --clear-groups curl -sS --connect-timeout 3 --max-time 5 "$1" 2>>"$TMP/curl.err"; }
gets() { [[ "$(get "$1" 2>/dev/null)" == "$2" ]]; }
has_line() { grep -qF -- "$2" "$1"; }

say "== setup: namespaces $CLI and $SRV (ugated: $UGATED)"
ip netns add "$CLI"
NAMESPACES+=("$CLI")
ip netns add "$SRV"
NAMESPACES+=("$SRV")
ip -n "$CLI" link add veth0 type veth peer name veth1 netns "$SRV"
for ns in "$CLI" "$SRV"; do ip -n "$ns" link set lo up; done
ip -n "$CLI" addr add 10.78.0.1/24 dev veth0
ip -n "$SRV" addr add 10.78.0.2/24 dev veth1
ip -n "$SRV" addr add 10.78.0.3/24 dev veth1
ip -n "$CLI" link set veth0 up
ip -n "$SRV" link set veth1 up
ip -n "$CLI" route add 10.96.0.0/16 dev veth0  # the service range: only the capture answers it

TD=ambient.test
run ca-init "$UGATED" ca init --dir "$TMP/ca" --trust-domain "$TD" >"$TMP/ca.log" 2>&1
run issue-sleep "$UGATED" ca issue --dir "$TMP/ca" --name sleep --namespace client --out "$TMP/sleep" \
  --trust-domain "$TD" --owner 1337:1337 >"$TMP/issue-sleep.log" 2>&1
run issue-echo "$UGATED" ca issue --dir "$TMP/ca" --name echo --namespace server --out "$TMP/echo" \
  --trust-domain "$TD" >"$TMP/issue-echo.log" 2>&1
CLIENT_SPIFFE="spiffe://$TD/ns/client/sa/sleep"

for w in w1 w2; do
  mkdir -p "$TMP/www-$w"
  echo "$w" >"$TMP/www-$w/who"
done
spawn www-w1 ip netns exec "$SRV" python3 -m http.server --bind 10.78.0.2 --directory "$TMP/www-w1" 8080 >"$TMP/www-w1.log" 2>&1
spawn www-w2 ip netns exec "$SRV" python3 -m http.server --bind 10.78.0.3 --directory "$TMP/www-w2" 8080 >"$TMP/www-w2.log" 2>&1

# The control plane, in SRV, commands on a FIFO.
mkfifo "$TMP/cp.in"
exec {CP_IN}<>"$TMP/cp.in"  # read-write: opening it does not wait for the reader
spawn control-plane env NODE_PATH="$NPM_DIR/node_modules" ip netns exec "$SRV" node "$TESTS_DIR/ambient_cp.js" \
  "$TESTS_DIR/../../src/xds/proto" 0.0.0.0:0 10.96.0.10 10.78.0.2 10.78.0.3 echo "$TMP/cp.in" >"$TMP/cp.log" 2>&1
cp_listening() { grep -q '^listening ' "$TMP/cp.log"; }
if ! wait_for "the control plane" 100 cp_listening; then
  failed "the control plane did not start: $(head -c 500 "$TMP/cp.log")"
  exit 1
fi
CP_PORT=$(awk '/^listening / { print $2; exit }' "$TMP/cp.log")
pass "control plane on 10.78.0.2:$CP_PORT"
echo "tok-$$" >"$TMP/token"
chmod 644 "$TMP/token"

COMMON='"workers": 2, "admin": {"address": "127.0.0.1:15000"}, "log": {"level": "info", "accessLog": "-"},
  "limits": {"connectTimeout": "3s", "drainTimeout": "1s"},'
cat >"$TMP/srv.json" <<JSON
{ $COMMON
  "node": {"name": "echo", "trustDomain": "$TD"}, "tls": {"certDir": "$TMP/echo"},
  "listeners": [{"name": "hbone", "kind": "mesh", "address": "0.0.0.0:15008"}],
  "routes": [{"name": "workloads", "match": {"listener": "hbone", "cidr": "10.78.0.0/24", "port": 8080}, "to": "original"}],
  "xds": {"client": {"address": "127.0.0.1:$CP_PORT", "insecure": true, "backoff": {"min": "100ms", "max": "1s"},
          "ambient": {"name": "echo", "namespace": "server"}}} }
JSON
cat >"$TMP/cli.json" <<JSON
{ $COMMON
  "node": {"name": "sleep", "trustDomain": "$TD"}, "tls": {"certDir": "$TMP/sleep"},
  "listeners": [{"name": "outbound", "kind": "redirect", "address": "0.0.0.0:15001"}],
  "xds": {"client": {"address": "10.78.0.2:$CP_PORT", "insecure": true, "backoff": {"min": "100ms", "max": "1s"},
          "node": {"id": "ztunnel~10.78.0.1~sleep.client~client.svc.cluster.local"},
          "tokenFile": "$TMP/token",
          "ambient": {"name": "sleep", "namespace": "client", "instanceIps": ["10.78.0.1"], "nodeName": "cli",
                      "clusterId": "Kubernetes"}}} }
JSON
# The same client without ambient (a reload withdraws the ambient state).
cat >"$TMP/cli-off.json" <<JSON
{ $COMMON
  "node": {"name": "sleep", "trustDomain": "$TD"}, "tls": {"certDir": "$TMP/sleep"},
  "listeners": [{"name": "outbound", "kind": "redirect", "address": "0.0.0.0:15001"}],
  "xds": {"client": {"address": "10.78.0.2:$CP_PORT", "insecure": true, "delta": true}} }
JSON
chmod 644 "$TMP/srv.json" "$TMP/cli.json" "$TMP/cli-off.json"
check "apply the outbound capture in CLI" run apply ip netns exec "$CLI" "$UGATED" iptables apply
spawn ugated-srv ip netns exec "$SRV" "$UGATED" -c "$TMP/srv.json" >"$TMP/ugated-srv.log" 2>&1
SRV_PID=$SPAWNED
spawn ugated-cli ip netns exec "$CLI" setpriv --reuid 1337 --regid 1337 --clear-groups "$UGATED" -c "$TMP/cli.json" \
  >"$TMP/ugated-cli.log" 2>&1
CLI_PID=$SPAWNED
UGATED_PID=$CLI_PID
for ns in "$SRV" "$CLI"; do
  if ! wait_for "ugated in $ns" 100 ready_in "$ns"; then
    failed "ugated did not become ready in $ns"
    cat "$TMP/ugated-srv.log" "$TMP/ugated-cli.log" | tail -20
    exit 1
  fi
done
check "SRV's ugated holds the service and w1" wait_for "SRV's ambient state" 100 metric_is "$SRV" ugate_xds_ambient_resources 2
check "CLI's ugated holds the service and w1" wait_for "CLI's ambient state" 100 metric_is "$CLI" ugate_xds_ambient_resources 2

say "-- (1) the Service VIP reaches w1 over HBONE"
out=$(get http://10.96.0.10/who || true)
if [[ "$out" == w1 ]]; then pass "curl 10.96.0.10:80/who in CLI (captured): w1"; else failed "curl 10.96.0.10:80/who: got '$out', want w1"; fi
expect_eq "CLI counted an ambient connection" "$(metric "$CLI" ugate_ambient_outbound_total)" 1
expect_eq "SRV allowed one ambient stream" "$(metric "$SRV" 'ugate_ambient_inbound_total{verdict="allowed"}')" 1
check "SRV's access log: an HTTP/2 CONNECT on :15008 to 10.78.0.2:8080" \
  wait_for "SRV's access-log line" 50 grep -qE '"kind":"h2","listener":"hbone".*"upstream":"10.78.0.2:8080".*"close":"ok"' "$TMP/ugated-srv.log"
check "CLI's access log: the VIP dialled as w1:8080" \
  grep -qE '"original_dst":"10.96.0.10:80".*"upstream":"10.78.0.2:8080"' "$TMP/ugated-cli.log"
check "the control plane saw ztunnel's node id" grep -qF "node=ztunnel~10.78.0.1~sleep.client~client.svc.cluster.local" "$TMP/cp.log"
check "... its metadata" grep -qF "meta=CLUSTER_ID=Kubernetes,INSTANCE_IPS=10.78.0.1,NAME=sleep,NAMESPACE=client,NODE_NAME=cli" "$TMP/cp.log"
check "... and the bearer token from the token file" grep -qF "auth=Bearer tok-$$" "$TMP/cp.log"

xds_doc=$(nsx "$CLI" curl -sS --max-time 5 http://127.0.0.1:15000/xds 2>/dev/null || true)
check "/xds shows the ambient state" grep -qF '"workloads": 1, "services": 1, "policies": 0' <<<"$xds_doc"

say "-- (2) a DENY policy for the client's principal"
echo "deny $CLIENT_SPIFFE" >&"$CP_IN"
check "SRV's ugated holds the policy" wait_for "the policy on SRV" 100 metric_is "$SRV" ugate_xds_ambient_resources 3
if get http://10.96.0.10/who >/dev/null 2>&1; then failed "the captured connection got through"; else pass "the captured connection is refused"; fi
expect_eq "SRV counted the denial" "$(metric "$SRV" 'ugate_ambient_inbound_total{verdict="denied"}')" 1
check "SRV logged the reason" wait_for "the log line" 50 has_line "$TMP/ugated-srv.log" "ambient: denied by policy server/deny"

say "-- (3) the policy removed and the workload moved to w2"
echo "allow" >&"$CP_IN"
echo "move" >&"$CP_IN"
check "the traffic moves to w2" wait_for "w2" 100 gets http://10.96.0.10/who w2
check "CLI's access log: the VIP dialled as w2:8080" \
  grep -qE '"original_dst":"10.96.0.10:80".*"upstream":"10.78.0.3:8080".*"close":"ok"' "$TMP/ugated-cli.log"
say "-- (3b) w2 said to run as another service account: its certificate no longer matches"
echo "impostor other" >&"$CP_IN"
wrong="not the expected spiffe://$TD/ns/server/sa/other"
refused_by_pin() { ! get http://10.96.0.10/who >/dev/null 2>&1 && grep -qF "$wrong" "$TMP/ugated-cli.log"; }
check "CLI refuses the HBONE hop whose SPIFFE ID is not the workload's" wait_for "the refusal" 100 refused_by_pin
grep -F "$wrong" "$TMP/ugated-cli.log" | head -n 1 | sed 's/^/    /'
echo "impostor echo" >&"$CP_IN"
check "w2 as its own service account again: served" wait_for "w2" 100 gets http://10.96.0.10/who w2

say "-- (4) a reload without xds.client.ambient withdraws the ambient state"
cp "$TMP/cli-off.json" "$TMP/cli.json"
kill -HUP "$CLI_PID"
check "CLI holds no ambient resources" wait_for "the reload" 100 metric_is "$CLI" ugate_xds_ambient_resources 0
before=$(metric "$CLI" ugate_ambient_outbound_total)
out=$(get http://10.78.0.3:8080/who || true)
if [[ "$out" == w2 ]]; then pass "w2's address is dialled as it is: w2"; else failed "10.78.0.3:8080: got '$out'"; fi
expect_eq "not counted as ambient" "$(metric "$CLI" ugate_ambient_outbound_total)" "$before"
check "no NACK on either side" bash -c "! grep -q nack= '$TMP/cp.log'"
check "clean the capture" run clean ip netns exec "$CLI" "$UGATED" iptables clean
