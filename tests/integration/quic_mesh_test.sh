#!/usr/bin/env bash
# quic_mesh_test.sh: the mesh over QUIC (ALPN ugate / ugater, include/ugate/mux.h) between ugated
# processes, in network namespaces this script creates (and deletes), with a real NAT in between.
#
#   bash quic_mesh_test.sh /path/to/ugated
#
#   ns GW (10.203.1.1) ── ns NAT (10.203.1.2 | 10.203.2.1, MASQUERADE, no inbound) ── ns N (10.203.2.2)
#
# ns GW: gateway g (a `quic` listener with ALPN ugate+ugater on 15443/udp, a `mesh` listener on
# 15008/tcp, SOCKS on 1080); node a (SOCKS 1085, upstream g over QUIC); node a2 (SOCKS 1086,
# upstream g with transport auto whose QUIC port is blackholed by an iptables DROP).
# ns N (behind the NAT): node n (upstream g over QUIC: its association, ALPN ugater); node m
# (upstream g with transport auto; the NAT drops its UDP, so it associates over HTTP/2).
# Checked, with curl through SOCKS and sha256 of every transfer:
# 1. a -> QUIC -> g -> g's loopback: 8 MiB byte-identical, by name and by node ID; 20 parallel
#    streams; a port g does not expose is refused (not_exposed: logged on g, counted);
# 2. reverse accept over QUIC: n behind the NAT associates; g's /nodes lists it and n's /nodes shows
#    the association connected; a client at g reaches n's loopback by name (8 MiB verified) and by
#    node ID; 20 parallel 8 MiB and 100 parallel 1 MiB streams that g opens to n, every byte
#    verified; g's SIGHUP reload keeps the QUIC association; a circuit a -> g -> n over QUIC with
#    a's identity asserted by g and logged by n; n refuses a port it does not expose (logged on n);
# 3. transport auto: m's QUIC attempt gets no answer (UDP dropped at the NAT), it falls back to
#    HTTP/2 (logged, ugate_mesh_auto_fallbacks_total) and g reaches m; a2's pooled connection falls
#    back the same way and its client's stream goes through;
# and the per-transport metrics (ugate_quic_mesh_*, ugate_mesh_transport_*); last, every node exits 0
# on SIGTERM (a, then the gateway, each with QUIC connections open).
#
# Needs root (network namespaces, iptables inside them). Every process is tracked by PID and ended in
# the EXIT trap, then the namespaces are deleted. The last line is "quic_mesh: N passed, M failed".
set -euo pipefail

readonly TEST_NAME=quic_mesh
readonly WATCHDOG_SECONDS=180
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in ip iptables python3 curl; do have "$tool" || skip_all "$tool not found (scripts/install-deps.sh installs it)"; done
[[ $(id -u) == 0 ]] || skip_all "needs root for network namespaces"

NS_GW=ugq-gw-$$
NS_NAT=ugq-nat-$$
NS_N=ugq-n-$$
test_cleanup() {
  local ns
  for ns in "$NS_N" "$NS_NAT" "$NS_GW"; do ip netns del "$ns" 2>/dev/null || true; done
}
nat_namespaces "$NS_GW" "$NS_NAT" "$NS_N" 10.203 || skip_all "cannot create network namespaces here"
in_gw() { ip netns exec "$NS_GW" "$@"; }
in_nat() { ip netns exec "$NS_NAT" "$@"; }
# UDP blocked: m's QUIC port and a2's go nowhere (no ICMP answer either: a silent firewall).
in_nat iptables -A FORWARD -p udp --dport 15445 -j DROP
in_gw iptables -A OUTPUT -o lo -p udp --dport 15444 -j DROP

start_tmp
cd "$TMP"
say "== identities and servers (ugated: $UGATED)"
TD=qmesh.test
run ca-init "$UGATED" ca init --dir ca --trust-domain "$TD" >ca.log 2>&1
for n in g a a2 n m; do
  run "issue-$n" "$UGATED" ca issue --dir ca --name "$n" --out "$n" --trust-domain "$TD" >"issue-$n.log" 2>&1
done
G_ID=$(head -n1 issue-g.log)
A_ID=$(head -n1 issue-a.log)
A2_ID=$(head -n1 issue-a2.log)
N_ID=$(head -n1 issue-n.log)
M_ID=$(head -n1 issue-m.log)

mkdir -p www-g www-n www-priv
printf 'hello from g\n' >www-g/hello.txt
printf 'hello from n\n' >www-n/hello.txt
printf 'private\n' >www-priv/p.txt
head -c $((8 * 1024 * 1024)) /dev/urandom >www-g/big.bin
head -c $((8 * 1024 * 1024)) /dev/urandom >www-n/big.bin
head -c $((1024 * 1024)) /dev/urandom >www-n/mid.bin
G_SHA=$(sha www-g/big.bin)
N_SHA=$(sha www-n/big.bin)
N_MID_SHA=$(sha www-n/mid.bin)
spawn http-g ip netns exec "$NS_GW" python3 -m http.server --bind 127.0.0.1 --directory "$TMP/www-g" 8088 >http-g.log 2>&1
spawn priv-g ip netns exec "$NS_GW" python3 -m http.server --bind 127.0.0.1 --directory "$TMP/www-priv" 9300 >priv-g.log 2>&1
spawn http-n ip netns exec "$NS_N" python3 -m http.server --bind 127.0.0.1 --directory "$TMP/www-n" 8080 >http-n.log 2>&1
spawn priv-n ip netns exec "$NS_N" python3 -m http.server --bind 127.0.0.1 --directory "$TMP/www-priv" 9300 >priv-n.log 2>&1
ns_listening() { ip netns exec "$1" bash -c "$(declare -f listening); listening $2"; }
wait_for "g's http server" 100 ns_listening "$NS_GW" 8088
wait_for "g's private server" 100 ns_listening "$NS_GW" 9300
wait_for "n's http server" 100 ns_listening "$NS_N" 8080
wait_for "n's private server" 100 ns_listening "$NS_N" 9300

# fetch_verified DESC SOCKS URL SHA NODE...: one assertion that URL fetched through the SOCKS port in
# ns GW has sha256 SHA; on failure the NODEs' last log lines are shown.
fetch_verified() {
  local desc=$1 socks=$2 url=$3 want=$4
  shift 4
  if in_gw curl -sS --max-time 30 --socks5-hostname "127.0.0.1:$socks" "$url" -o fetched.out &&
    [[ $(sha fetched.out) == "$want" ]]; then
    pass "$desc"
  else
    failed "$desc"
    for n in "$@"; do tail -n 5 "$TMP/$n.log"; done
  fi
  rm -f fetched.out
}
# parallel_fetch N SOCKS URL PREFIX SHA: N curls at once through the SOCKS port in ns GW; prints how
# many got bytes whose sha256 is SHA (their files are removed).
parallel_fetch() {
  local n=$1 socks=$2 url=$3 prefix=$4 want=$5 i ok=0 pids=()
  for ((i = 1; i <= n; i++)); do
    in_gw curl -sS --max-time 40 --socks5-hostname "127.0.0.1:$socks" "$url" -o "$prefix-$i.out" 2>>"$prefix.err" &
    pids+=($!)
  done
  for ((i = 1; i <= n; i++)); do
    wait "${pids[$((i - 1))]}" || true
    [[ -f "$prefix-$i.out" && $(sha "$prefix-$i.out") == "$want" ]] && ok=$((ok + 1))
    rm -f "$prefix-$i.out"
  done
  echo "$ok"
}
registered() { nadmin g /nodes 2>/dev/null | grep -c "\"id\": \"$1\"" >/dev/null; }
log_has() { grep -qF -- "$2" "$TMP/$1.log"; }

NODE_ADMIN[g]=15000
cat >g.json <<EOF
{ "node": { "name": "g", "trustDomain": "$TD" },
  "tls": { "certDir": "$TMP/g" },
  "admin": { "address": "127.0.0.1:15000" },
  "log": { "accessLog": "$TMP/g-access.log" },
  "mesh": { "expose": [ { "port": 8088, "allow": ["$A_ID", "$A2_ID"] } ] },
  "listeners": [ { "name": "qmesh", "kind": "quic", "address": "0.0.0.0:15443",
                   "tls": { "alpn": ["ugate", "ugater"] }, "quic": { "retry": "never" } },
                 { "name": "mesh", "kind": "mesh", "address": "0.0.0.0:15008" },
                 { "name": "socks", "kind": "socks5", "address": "127.0.0.1:1080" } ],
  "authorize": { "reverseAccept": ["$N_ID", "$M_ID"], "reverseAcceptTrustDomain": false } }
EOF
NODE_ADMIN[a]=15001
cat >a.json <<EOF
{ "workers": 1,
  "node": { "name": "a", "trustDomain": "$TD" },
  "tls": { "certDir": "$TMP/a" },
  "admin": { "address": "127.0.0.1:15001" },
  "listeners": [ { "name": "socks", "kind": "socks5", "address": "127.0.0.1:1085" } ],
  "upstreams": [ { "name": "g", "address": "127.0.0.1:15443", "id": "$G_ID", "transport": "quic" } ] }
EOF
NODE_ADMIN[a2]=15002
cat >a2.json <<EOF
{ "workers": 1,
  "node": { "name": "a2", "trustDomain": "$TD" },
  "tls": { "certDir": "$TMP/a2" },
  "admin": { "address": "127.0.0.1:15002" },
  "mesh": { "reconnectMin": "5s", "reconnectMax": "10s" },
  "listeners": [ { "name": "socks", "kind": "socks5", "address": "127.0.0.1:1086" } ],
  "upstreams": [ { "name": "g", "address": "127.0.0.1:15008", "quicAddress": "127.0.0.1:15444", "id": "$G_ID",
                   "transport": "auto" } ] }
EOF
NODE_ADMIN[n]=15000
cat >n.json <<EOF
{ "workers": 1,
  "node": { "name": "n", "trustDomain": "$TD" },
  "tls": { "certDir": "$TMP/n" },
  "admin": { "address": "127.0.0.1:15000" },
  "log": { "accessLog": "$TMP/n-access.log" },
  "mesh": { "reconnectMin": "200ms", "reconnectMax": "2s", "expose": [ { "port": 8080, "allow": "*" } ] },
  "listeners": [],
  "upstreams": [ { "name": "g", "address": "10.203.1.1:15443", "id": "$G_ID", "transport": "quic" } ] }
EOF
NODE_ADMIN[m]=15001
cat >m.json <<EOF
{ "workers": 1,
  "node": { "name": "m", "trustDomain": "$TD" },
  "tls": { "certDir": "$TMP/m" },
  "admin": { "address": "127.0.0.1:15001" },
  "mesh": { "reconnectMin": "200ms", "reconnectMax": "2s", "expose": [ { "port": 8080, "allow": "*" } ] },
  "listeners": [],
  "upstreams": [ { "name": "g", "address": "10.203.1.1:15008", "quicAddress": "10.203.1.1:15445", "id": "$G_ID",
                   "transport": "auto" } ] }
EOF

spawn_node g "$NS_GW"
await_node g
spawn_node a "$NS_GW"
await_node a
spawn_node n "$NS_N"
await_node n

say "== 1. node a -> QUIC -> gateway g -> g's loopback"
fetch_verified "8 MiB through a's SOCKS over QUIC to g.mesh:8088 is byte-identical" 1085 \
  http://g.mesh:8088/big.bin "$G_SHA" a g
out=$(in_gw curl -sS --max-time 20 --socks5-hostname 127.0.0.1:1085 "http://$G_ID.mesh:8088/hello.txt" 2>&1 || true)
check "by node ID ($G_ID.mesh)" [ "$out" == "hello from g" ]
okc=$(parallel_fetch 20 1085 http://g.mesh:8088/hello.txt par-a "$(printf 'hello from g\n' | sha256sum | cut -d' ' -f1)")
expect_eq "20 parallel streams over the one QUIC connection, each verified" "$okc" 20
out=$(in_gw curl -sS --max-time 20 --socks5-hostname 127.0.0.1:1085 http://g.mesh:9300/p.txt 2>&1 || true)
check "a port g does not expose is refused over QUIC (no content)" [ "$out" != "private" ]
check "g logs the refusal with its reason" wait_for "not_exposed in g.log" 50 log_has g "g.mesh:9300"
grep -F "g.mesh:9300" g.log | head -n1 | sed 's/^/        /'
check "  ... naming the QUIC transport and not_exposed" bash -c "grep -F 'g.mesh:9300' '$TMP/g.log' | grep -q 'quic.*not_exposed'"
expect_ge "g counts it (ugate_mesh_streams_refused_total{reason=not_exposed})" \
  "$(metric g 'ugate_mesh_streams_refused_total{reason="not_exposed"}')" 1
expect_ge "a dialled over QUIC (ugate_quic_mesh_connections_dialled_total)" "$(metric a ugate_quic_mesh_connections_dialled_total)" 1
expect_ge "g accepted over QUIC (ugate_quic_mesh_connections_accepted_total)" "$(metric g ugate_quic_mesh_connections_accepted_total)" 1
expect_ge "a's tunnels over QUIC (ugate_mesh_transport_tunnels_total{transport=quic})" \
  "$(metric a 'ugate_mesh_transport_tunnels_total{transport="quic"}')" 22
expect_ge "g's streams admitted over QUIC (ugate_mesh_transport_streams_accepted_total{transport=quic})" \
  "$(metric g 'ugate_mesh_transport_streams_accepted_total{transport="quic"}')" 22

say "== 2. reverse accept over QUIC: n behind the NAT"
out=$(in_gw curl -sS --max-time 2 http://10.203.2.2:8080/hello.txt 2>&1 || true)
check "nobody can dial n from the gateway's side of the NAT" [ "$out" != "hello from n" ]
check "n registered its QUIC association with g (/nodes)" wait_for "n in g's /nodes" 100 registered "$N_ID"
n_up() { nadmin n /nodes 2>/dev/null | grep -c '"state": "connected"' >/dev/null; }
check "n's own /nodes shows the association connected" wait_for "n's upstream connected" 50 n_up
check "n logs the association as QUIC" log_has n "(${G_ID}, quic) is up"
fetch_verified "8 MiB from g's SOCKS to n.mesh:8080 (streams g opens on n's connection) is byte-identical" 1080 \
  http://n.mesh:8080/big.bin "$N_SHA" g n
out=$(in_gw curl -sS --max-time 20 --socks5-hostname 127.0.0.1:1080 "http://$N_ID.mesh:8080/hello.txt" 2>&1 || true)
check "by node ID ($N_ID.mesh)" [ "$out" == "hello from n" ]
okc=$(parallel_fetch 20 1080 http://n.mesh:8080/big.bin par-n "$N_SHA")
expect_eq "20 parallel 8 MiB streams g opened to n, every byte verified" "$okc" 20
okc=$(parallel_fetch 100 1080 http://n.mesh:8080/mid.bin par-n "$N_MID_SHA")
expect_eq "100 parallel 1 MiB streams g opened to n, every byte verified" "$okc" 100
ups_before=$(grep -c "quic) is up" n.log || true)
kill -HUP "${NODE_PID[g]}"
check "g reloaded (SIGHUP)" wait_for "g's reload line" 50 log_has g "reloaded "
out=$(in_gw curl -sS --max-time 20 --socks5-hostname 127.0.0.1:1080 http://n.mesh:8080/hello.txt 2>&1 || true)
check "after g's reload, g still reaches n" [ "$out" == "hello from n" ]
expect_eq "... over the same QUIC association (n did not associate again)" "$(grep -c "quic) is up" n.log || true)" "$ups_before"
# A circuit over QUIC both ways: a -> g (a's QUIC pool) -> n (n's QUIC association). g, n's own
# gateway, asserts a's identity, which n believes and logs.
out=$(in_gw curl -sS --max-time 20 --socks5-hostname 127.0.0.1:1085 http://n.mesh:8080/hello.txt 2>&1 || true)
check "a reaches n through g (a circuit of two QUIC hops)" [ "$out" == "hello from n" ]
circuit_logged() { grep -F '"host":"n.mesh:8080"' "$TMP/n-access.log" | grep -qE "\"peer\":\"($A_ID|[^\"]*/sa/a)\""; }
check "n's access log shows a's identity for it (asserted by its gateway)" wait_for "a's identity in n's access log" 50 circuit_logged
out=$(in_gw curl -sS --max-time 20 --socks5-hostname 127.0.0.1:1080 http://n.mesh:9300/p.txt 2>&1 || true)
check "a port n does not expose is refused" [ "$out" != "private" ]
check "n logs the refusal (not_exposed)" wait_for "n.mesh:9300 in n.log" 50 bash -c "grep -F 'n.mesh:9300' '$TMP/n.log' | grep -q not_exposed"
expect_ge "g opened streams to n over QUIC (ugate_quic_mesh_streams_total{opened_by=us})" \
  "$(metric g 'ugate_quic_mesh_streams_total{opened_by="us"}')" 123
expect_ge "n admitted them over QUIC (ugate_mesh_transport_streams_accepted_total{transport=quic})" \
  "$(metric n 'ugate_mesh_transport_streams_accepted_total{transport="quic"}')" 123
expect_eq "no stream header errors on g" "$(metric g ugate_quic_mesh_header_errors_total)" 0

say "== 3. transport auto: QUIC blocked, HTTP/2 instead"
spawn_node m "$NS_N"
await_node m
check "m registered with g (over HTTP/2)" wait_for "m in g's /nodes" 150 registered "$M_ID"
check "m logs the fallback" wait_for "fallback line in m.log" 50 log_has m "transport auto falls back to HTTP/2"
grep -F "falls back" m.log | head -n1 | sed 's/^/        /'
expect_ge "m counts it (ugate_mesh_auto_fallbacks_total)" "$(metric m ugate_mesh_auto_fallbacks_total)" 1
out=$(in_gw curl -sS --max-time 20 --socks5-hostname 127.0.0.1:1080 "http://$M_ID.mesh:8080/hello.txt" 2>&1 || true)
check "g reaches m's loopback over the HTTP/2 association" [ "$out" == "hello from n" ]
spawn_node a2 "$NS_GW"
await_node a2
out=$(in_gw curl -sS --max-time 25 --socks5-hostname 127.0.0.1:1086 http://g.mesh:8088/hello.txt 2>&1 || true)
check "a2's stream (auto, QUIC blackholed) reaches g over HTTP/2" [ "$out" == "hello from g" ]
check "a2 logs the fallback" log_has a2 "transport auto falls back to HTTP/2"
expect_ge "a2 counts it (ugate_mesh_auto_fallbacks_total)" "$(metric a2 ugate_mesh_auto_fallbacks_total)" 1
expect_ge "a2's tunnel went over HTTP/2 (ugate_mesh_transport_tunnels_total{transport=h2})" \
  "$(metric a2 'ugate_mesh_transport_tunnels_total{transport="h2"}')" 1

for n in g a a2 n m; do
  check "$n is still running" ours "${NODE_PID[$n]}"
done

say "== drain: SIGTERM ends each node cleanly (a and g while their QUIC connections are open)"
for n in a g n a2 m; do
  kill -TERM "${NODE_PID[$n]}"
  rc=0
  reap "${NODE_PID[$n]}" || rc=$?
  expect_eq "$n exits 0 on SIGTERM" "$rc" 0
done
