#!/usr/bin/env bash
# mtls_test.sh: node identity, a mesh CA and mutual TLS between ugated processes, with openssl as the
# real foreign peer, over loopback only.
#
#   bash mtls_test.sh /path/to/ugated
#
# The "new user" story of the identity issue: `ugated ca init`, `ugated ca issue` for nodes a, b and
# g, then
#   gateway B: a `tcp` listener with "tls" (mutual) in front of an HTTP server; routes authorize by
#              peer identity (a's and c's SPIFFE URIs, d's pinned node ID); everything else rejected.
#   node A:    CA-issued; its listener originates mTLS to B ("upstreamTls"): curl -> A -> B -> HTTP,
#              4 MiB verified by sha256; B's access log shows A's identity; resumption on reconnects.
#   node C:    issued by another CA: B refuses it (unknown_ca), counted and logged.
#   node D:    self-signed, trusted by B through tls.trustedIds (pinned node ID); its short-lived
#              certificate is renewed while it runs, with the same node ID, and still accepted.
# openssl s_client as a client of B: with a's key (accepted), without a certificate (no_peer_cert),
# self-signed unknown (rejected), expired (cert_expired), CA-signed but unauthorized node g
# (route_rejected); plain TCP (not_tls); silence (handshake_timeout). openssl s_server -Verify as an
# upstream of A (it sees A's client certificate); a wrong pinned peer ID (pinned_id_mismatch at A).
# Then B's certificate files are replaced with ones from the other CA: B reloads them without a
# restart, A (old CA) is refused and C (new CA) gets in. A key file readable by others is refused.
#
# Every process this script starts is tracked by PID and ended in the EXIT trap; the temp dir is
# removed (MTLS_KEEP_TMP=1 keeps it). The last line is "mtls: N passed, M failed".
set -euo pipefail

readonly TEST_NAME=mtls
readonly WATCHDOG_SECONDS=120
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in openssl python3 curl; do
  if ! have "$tool"; then
    say "SKIP: $tool not found (scripts/install-deps.sh installs it): the mtls tests need it"
    say "mtls: 0 passed, 0 failed"
    trap - EXIT
    exit 0
  fi
done
HAVE_PY=1
start_tmp
read -r ADM_A ADM_B ADM_C ADM_D PORT_A PORT_A_PIN PORT_A_BADPIN PORT_A_SSRV PORT_B PORT_C PORT_D \
  HTTP_PORT SSRV_PORT PORT_B_LB < <(free_ports 14)
TD=mesh.test
declare -A NODE_PID=() NODE_ADMIN=()

# node_admin NODE PATH: GET an admin endpoint of a node.
node_admin() { ADMIN_PORT=${NODE_ADMIN[$1]} admin "$2"; }
# metric NODE METRIC_WITH_LABELS: the value of one /stats line (0 when absent).
metric() {
  local v
  v=$(node_admin "$1" /stats | awk -v k="$2" '$1 == k && !f { print $2; f = 1 }')
  echo "${v:-0}"
}
# start_node NODE: run ugated on $TMP/NODE.json, log in $TMP/NODE.log, wait for /ready.
start_node() {
  spawn "ugated-$1" "$UGATED" -c "$TMP/$1.json" >"$TMP/$1.log" 2>&1
  NODE_PID[$1]=$SPAWNED
  if ! wait_for "node $1 /ready" 100 node_ready "$1"; then
    failed "node $1 did not become ready"
    tail -n 20 "$TMP/$1.log"
    exit 1
  fi
}
node_ready() { ours "${NODE_PID[$1]}" && ADMIN_PORT=${NODE_ADMIN[$1]} admin /ready >/dev/null 2>&1; }
dump_logs() {
  local n
  for n in "$@"; do
    say "---- $n log (last 15 lines) ----"
    tail -n 15 "$TMP/$n.log" 2>/dev/null || true
  done
}
# get URL: curl with a deadline; prints the body.
get() { curl -sS --max-time 10 "$1"; }

say "== identities (ugated: $UGATED)"
cd "$TMP"
run ca1-init "$UGATED" ca init --dir ca1 --trust-domain "$TD" >ca1.log 2>&1
run ca2-init "$UGATED" ca init --dir ca2 --trust-domain "$TD" >ca2.log 2>&1
for n in a b g; do
  run "issue-$n" "$UGATED" ca issue --dir ca1 --name "$n" --out "$n" --trust-domain "$TD" >"issue-$n.log" 2>&1
done
run issue-c "$UGATED" ca issue --dir ca2 --name c --out c --trust-domain "$TD" >issue-c.log 2>&1
run issue-b2 "$UGATED" ca issue --dir ca2 --name b --out b2 --trust-domain "$TD" >issue-b2.log 2>&1
# An expired certificate from the trusted CA: 1 s of validity, then wait it out.
run issue-f "$UGATED" ca issue --dir ca1 --name f --out f --trust-domain "$TD" --validity 1s >issue-f.log 2>&1
A_ID=$(head -n1 issue-a.log)
B_ID=$(head -n1 issue-b.log)
check "ugated ca issue prints 52-character node IDs" [ "${#A_ID}" -eq 52 -a "${#B_ID}" -eq 52 ]
check "issued key files are private (0600)" [ "$(command stat -c %a a/key.pem)" = 600 ]
san=$(openssl x509 -in a/cert-chain.pem -noout -ext subjectAltName 2>/dev/null | tr -d ' \n')
check "a's certificate carries DNS a.$TD and spiffe://$TD/ns/default/sa/a ($san)" \
  [ "${san#*AlternativeName:}" = "DNS:a.$TD,URI:spiffe://$TD/ns/default/sa/a" ]
# A self-signed stranger made by openssl.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=e.$TD" \
  -keyout e-key.pem -out e-cert.pem >req-e.log 2>&1

mkdir -p www
head -c $((4 * 1024 * 1024)) /dev/urandom >www/big.bin
printf 'hello from the backend\n' >www/hello.txt
BIG_SHA=$(sha www/big.bin)
spawn http-backend python3 -m http.server --bind 127.0.0.1 --directory "$TMP/www" "$HTTP_PORT" \
  >http.log 2>&1
wait_for "http backend" 50 listening "$HTTP_PORT"

# ---- node D first: a self-signed identity created on first start, renewed every few seconds -----
NODE_ADMIN[d]=$ADM_D
cat >d.json <<EOF
{ "workers": 1,
  "node": { "name": "d", "trustDomain": "$TD", "dataDir": "$TMP/d" },
  "tls": { "rootsFile": "$TMP/ca1/ca-cert.pem", "certValidity": "20s", "renewBefore": "17s",
           "reloadInterval": "300ms" },
  "admin": { "address": "127.0.0.1:$ADM_D" },
  "listeners": [ { "name": "out", "kind": "tcp", "address": "127.0.0.1:$PORT_D",
                   "to": "127.0.0.1:$PORT_B", "upstreamTls": { "sni": "b.$TD" } } ] }
EOF
start_node d
D_ID=$(node_admin d /stats | sed -n 's/^ugate_tls_cert_expiry_seconds{node_id="\([A-Z2-7]*\)"}.*/\1/p')
check "node D created its identity in its data dir ($D_ID)" [ "${#D_ID}" -eq 52 -a -f d/kube.json ]
check "d/kube.json is private (0600)" [ "$(command stat -c %a d/kube.json)" = 600 ]

# ---- gateway B -----------------------------------------------------------------------------------
NODE_ADMIN[b]=$ADM_B
cat >b.json <<EOF
{ "workers": 1,
  "node": { "name": "b", "trustDomain": "$TD" },
  "tls": { "certDir": "$TMP/b", "trustedIds": ["$D_ID"], "handshakeTimeout": "1s",
           "reloadInterval": "300ms" },
  "admin": { "address": "127.0.0.1:$ADM_B" },
  "log": { "accessLog": "$TMP/b-access.log" },
  "listeners": [ { "name": "mtls", "kind": "tcp", "address": "127.0.0.1:$PORT_B", "to": "reject",
                   "tls": { "alpn": ["ugate", "http/1.1"] } },
                 { "name": "mtls-lb", "kind": "tcp", "address": "127.0.0.1:$PORT_B_LB", "to": "reject",
                   "acceptProxyProtocol": true, "tls": {} } ],
  "routes": [
    { "name": "mesh-members", "match": { "listener": ["mtls", "mtls-lb"],
        "identity": ["spiffe://$TD/ns/default/sa/a", "spiffe://$TD/ns/default/sa/c", "$D_ID"] },
      "to": "127.0.0.1:$HTTP_PORT" } ] }
EOF
start_node b

# ---- node A: CA-issued, dials B with mTLS -------------------------------------------------------
NODE_ADMIN[a]=$ADM_A
cat >a.json <<EOF
{ "workers": 1,
  "node": { "name": "a", "trustDomain": "$TD" },
  "tls": { "certDir": "$TMP/a" },
  "admin": { "address": "127.0.0.1:$ADM_A" },
  "listeners": [
    { "name": "out", "kind": "tcp", "address": "127.0.0.1:$PORT_A", "to": "127.0.0.1:$PORT_B",
      "upstreamTls": { "sni": "b.$TD", "alpn": ["ugate"] } },
    { "name": "pinned", "kind": "tcp", "address": "127.0.0.1:$PORT_A_PIN", "to": "127.0.0.1:$PORT_B",
      "upstreamTls": { "peerIds": ["$B_ID"] } },
    { "name": "badpin", "kind": "tcp", "address": "127.0.0.1:$PORT_A_BADPIN", "to": "127.0.0.1:$PORT_B",
      "upstreamTls": { "peerIds": ["$D_ID"] } },
    { "name": "s_server", "kind": "tcp", "address": "127.0.0.1:$PORT_A_SSRV", "to": "127.0.0.1:$SSRV_PORT",
      "upstreamTls": { "sni": "b.$TD" } } ] }
EOF
start_node a

# ---- node C: a valid certificate from a CA that B does not trust ---------------------------------
NODE_ADMIN[c]=$ADM_C
cat >c.json <<EOF
{ "workers": 1,
  "node": { "name": "c", "trustDomain": "$TD" },
  "tls": { "certDir": "$TMP/c", "rootsFile": "$TMP/ca1/ca-cert.pem" },
  "admin": { "address": "127.0.0.1:$ADM_C" },
  "listeners": [ { "name": "out", "kind": "tcp", "address": "127.0.0.1:$PORT_C",
                   "to": "127.0.0.1:$PORT_B", "upstreamTls": { "sni": "b.$TD" } } ] }
EOF
start_node c
pass "four ugated nodes up (a, b, c, d)"

say "== mutual TLS between ugated nodes"
body=$(get "http://127.0.0.1:$PORT_A/hello.txt" || true)
expect_str() { if [[ "$2" == "$3" ]]; then pass "$1"; else failed "$1: got '$2', want '$3'"; fi; }
expect_str "curl -> A -(mTLS)-> B -> backend" "$body" "hello from the backend"
got=$(curl -sS --max-time 20 "http://127.0.0.1:$PORT_A/big.bin" | sha256sum | cut -d' ' -f1 || true)
expect_str "4 MiB through the mTLS tunnel, sha256 verified" "$got" "$BIG_SHA"
body=$(get "http://127.0.0.1:$PORT_A_PIN/hello.txt" || true)
expect_str "A pins B's node ID (upstreamTls.peerIds) and gets through" "$body" "hello from the backend"
sleep 0.3  # the access log line is written when the stream closes
# B's route authorized A by its SPIFFE URI: the access log names that identity, and A's node ID.
line=$(grep -F "\"peer\":\"spiffe://$TD/ns/default/sa/a\",\"peer_id\":\"$A_ID\"" b-access.log | head -n1 || true)
check "B's access log names the identity the route matched (A's SPIFFE URI) and A's node ID" [ -n "$line" ]
check "B's access log names the route that let A in" grep -q '"route":"mesh-members"' <<<"$line"
check "B's access log has the ALPN A negotiated ('ugate')" grep -q '"alpn":"ugate"' <<<"$line"
check "B's access log has the SNI A sent (b.$TD)" grep -q "\"sni\":\"b.$TD\"" <<<"$line"
for i in 1 2 3; do get "http://127.0.0.1:$PORT_A/hello.txt" >/dev/null || true; done
expect_ge "A resumed TLS sessions on reconnects" "$(metric a ugate_tls_resumed_total)" 1
expect_ge "B completed server handshakes" "$(metric b 'ugate_tls_handshakes_total{side="server"}')" 6

body=$(get "http://127.0.0.1:$PORT_D/hello.txt" || true)
expect_str "self-signed D, pinned in B's tls.trustedIds, gets through" "$body" "hello from the backend"
sleep 0.3
check "B's access log names D by the node ID its route matched" grep -qF "\"peer\":\"$D_ID\",\"route\":\"mesh-members\"" b-access.log

before=$(metric b 'ugate_tls_handshake_failures_total{reason="unknown_ca"}')
out=$(curl -sS --max-time 10 "http://127.0.0.1:$PORT_C/hello.txt" 2>&1 || true)
check "C (other CA) gets no bytes from the backend" [ "$out" != "hello from the backend" ]
expect_eq "B counted C's certificate as unknown_ca" "$(metric b 'ugate_tls_handshake_failures_total{reason="unknown_ca"}')" $((before + 1))
check "B logged the reason for C" grep -q "auth_failed: TLS from client: unknown_ca" b.log

say "== openssl as a real peer"
# s_client REQ [ARGS...]: one HTTP/1.0 request through openssl s_client to B; prints what came back.
s_client() {
  local req=$1
  shift
  printf 'GET /%s HTTP/1.0\r\n\r\n' "$req" |
    timeout 10 openssl s_client -connect "127.0.0.1:$PORT_B" -servername "b.$TD" -CAfile ca1/ca-cert.pem \
      -verify_return_error -quiet "$@" 2>"$TMP/s_client.err" || true
}
out=$(s_client hello.txt -cert a/cert-chain.pem -key a/key.pem)
check "openssl s_client with a's key and chain is served by B" grep -q "hello from the backend" <<<"$out"
check "openssl s_client verified B's chain to CA 1" grep -q "verify return:1" "$TMP/s_client.err"

# A self-signed key is judged by its node ID against tls.trustedIds: pinned_id_mismatch.
for case in "no_peer_cert|" "pinned_id_mismatch|-cert e-cert.pem -key e-key.pem" \
  "cert_expired|-cert f/cert-chain.pem -key f/key.pem"; do
  reason=${case%%|*}
  args=${case#*|}
  [[ "$reason" == cert_expired ]] && sleep 1.1  # f's one second of validity is over by now
  before=$(metric b "ugate_tls_handshake_failures_total{reason=\"$reason\"}")
  # shellcheck disable=SC2086  # args are words
  out=$(s_client hello.txt $args)
  check "openssl s_client (${args:-no certificate}) is refused" [ -z "$out" ]
  expect_eq "B counted $reason" "$(metric b "ugate_tls_handshake_failures_total{reason=\"$reason\"}")" $((before + 1))
done
before=$(metric b 'ugate_listener_errors_total{listener="mtls",reason="route_rejected"}')
out=$(s_client hello.txt -cert g/cert-chain.pem -key g/key.pem)
check "g (trusted CA, not authorized by any route) gets nothing" [ -z "$out" ]
expect_eq "B rejected g by route" "$(metric b 'ugate_listener_errors_total{listener="mtls",reason="route_rejected"}')" $((before + 1))

before=$(metric b 'ugate_tls_handshake_failures_total{reason="not_tls"}')
out=$(printf 'GET / HTTP/1.0\r\n\r\n' | timeout 5 python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(sys.stdin.buffer.read()); s.settimeout(5)
try:
    print("closed" if s.recv(100) == b"" else "answered")
except ConnectionResetError:
    print("closed")' "$PORT_B" 2>&1 || true)
check "plain HTTP to the mTLS port is closed without an answer ($out)" [ "$out" = closed ]
expect_eq "B counted not_tls" "$(metric b 'ugate_tls_handshake_failures_total{reason="not_tls"}')" $((before + 1))
before=$(metric b 'ugate_tls_handshake_failures_total{reason="handshake_timeout"}')
out=$(timeout 5 python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1]))); s.settimeout(4)
try:
    print("closed" if s.recv(100) == b"" else "answered")
except ConnectionResetError:
    print("closed")' "$PORT_B" 2>&1 || true)
check "a silent client is closed after tls.handshakeTimeout ($out)" [ "$out" = closed ]
expect_eq "B counted handshake_timeout" "$(metric b 'ugate_tls_handshake_failures_total{reason="handshake_timeout"}')" $((before + 1))

# Behind a load balancer: a PROXY v1 header, then the ClientHello in the same segment.
out=$(timeout 10 python3 "$TESTS_DIR/tls_client.py" proxy "$PORT_B_LB" b.mesh.test \
  "$TMP/ca1/ca-cert.pem" "$TMP/a/cert-chain.pem" "$TMP/a/key.pem" /hello.txt \
  "PROXY TCP4 192.0.2.7 127.0.0.1 40000 443" 2>&1 || true)
expect_str "PROXY header + ClientHello in one segment: TLS starts after the header" "$out" "hello from the backend"
sleep 0.3
check "B's access log has the source from the PROXY header" grep -q '"src":"192.0.2.7:40000"' b-access.log

# openssl s_server demanding a client certificate, as A's upstream.
(exec openssl s_server -accept "127.0.0.1:$SSRV_PORT" -cert b/cert-chain.pem -key b/key.pem \
  -CAfile ca1/ca-cert.pem -Verify 1 -verify_return_error -www) >s_server.log 2>&1 &
SPAWNED=$!
LIVE[$SPAWNED]=s_server
wait_for "openssl s_server" 50 listening "$SSRV_PORT"
out=$(get "http://127.0.0.1:$PORT_A_SSRV/" || true)
check "openssl s_server -Verify accepted A's client certificate" grep -q "HTTP/1.0 200 ok\|<pre>\|Ciphers" <<<"$out"
check "s_server saw A's certificate (a.$TD)" grep -q "a.$TD" s_server.log

before=$(metric a 'ugate_tls_handshake_failures_total{reason="pinned_id_mismatch"}')
out=$(get "http://127.0.0.1:$PORT_A_BADPIN/hello.txt" 2>&1 || true)
check "A refuses B when B's node ID is not the pinned one" [ "$out" != "hello from the backend" ]
expect_eq "A counted pinned_id_mismatch" "$(metric a 'ugate_tls_handshake_failures_total{reason="pinned_id_mismatch"}')" $((before + 1))

say "== certificates reloaded and renewed while running"
renewals=0
wait_for "D's certificate renewal" 100 bash -c "[ \$(curl -s http://127.0.0.1:$ADM_D/stats | awk '\$1 == \"ugate_tls_credential_reloads_total{result=\\\"ok\\\"}\" { print \$2 }') -ge 1 ]" &&
  renewals=1
check "D renewed its short-lived self-signed certificate without a restart" [ "$renewals" = 1 ]
D_ID2=$(node_admin d /stats | sed -n 's/^ugate_tls_cert_expiry_seconds{node_id="\([A-Z2-7]*\)"}.*/\1/p')
expect_str "D's node ID survives renewal" "$D_ID2" "$D_ID"
body=$(get "http://127.0.0.1:$PORT_D/hello.txt" || true)
expect_str "D with its renewed certificate still gets through B" "$body" "hello from the backend"

# Replace B's files with ones issued by CA 2 (atomic renames, as a cert manager would).
for f in key.pem cert-chain.pem root-cert.pem; do
  cp -p "b2/$f" "b/$f.new"
  mv "b/$f.new" "b/$f"
done
wait_for "B's credential reload" 50 bash -c "[ \$(curl -s http://127.0.0.1:$ADM_B/stats | awk '\$1 == \"ugate_tls_credential_reloads_total{result=\\\"ok\\\"}\" { print \$2 }') -ge 1 ]" || true
expect_eq "B reloaded its credentials from disk" "$(metric b 'ugate_tls_credential_reloads_total{result="ok"}')" 1
check "B logged the reload" grep -q "tls: reloaded credentials:" b.log
before=$(metric a 'ugate_tls_handshake_failures_total{reason="unknown_ca"}')
out=$(get "http://127.0.0.1:$PORT_A/hello.txt" 2>&1 || true)
check "A (trusts CA 1 only) now refuses B's CA-2 certificate" [ "$out" != "hello from the backend" ]
expect_eq "A counted unknown_ca" "$(metric a 'ugate_tls_handshake_failures_total{reason="unknown_ca"}')" $((before + 1))
body=$(get "http://127.0.0.1:$PORT_C/hello.txt" || true)
expect_str "C (CA 2) is now trusted by B and gets through" "$body" "hello from the backend"
# SIGHUP with the same credential settings and untouched files: the TLS contexts are rebuilt from
# the credentials in memory (no second "tls: identity:" line, which a load from disk writes).
ids_before=$(grep -c "tls: identity:" b.log || true)
kill -HUP "${NODE_PID[b]}"
wait_for "B's config reload" 50 bash -c "[ \$(curl -s http://127.0.0.1:$ADM_B/stats | awk '\$1 == \"ugate_config_reloads_total{result=\\\"ok\\\"}\" { print \$2 }') -ge 1 ]" || true
expect_eq "B reloaded its config on SIGHUP" "$(metric b 'ugate_config_reloads_total{result="ok"}')" 1
expect_eq "B did not re-read unchanged credential files on SIGHUP" "$(grep -c "tls: identity:" b.log || true)" "$ids_before"
body=$(get "http://127.0.0.1:$PORT_C/hello.txt" || true)
expect_str "C still gets through B after the SIGHUP (contexts rebuilt from memory)" "$body" "hello from the backend"

# A credential reload that failed leaves the running credentials in place; a SIGHUP then reads the
# files again (the operator's retry) instead of reusing what is in memory: here the key is still
# broken, so that reload is rejected and the running config and credentials stay.
cp -p b/key.pem key.pem.good
printf 'not a key\n' >b/key.pem.new && chmod 600 b/key.pem.new && mv b/key.pem.new b/key.pem
wait_for "B's failed credential reload" 50 bash -c "[ \$(curl -s http://127.0.0.1:$ADM_B/stats | awk '\$1 == \"ugate_tls_credential_reloads_total{result=\\\"error\\\"}\" { print \$2 }') -ge 1 ]" || true
expect_eq "B counted the failed credential reload" "$(metric b 'ugate_tls_credential_reloads_total{result="error"}')" 1
kill -HUP "${NODE_PID[b]}"
wait_for "B's rejected config reload" 50 bash -c "[ \$(curl -s http://127.0.0.1:$ADM_B/stats | awk '\$1 == \"ugate_config_reloads_total{result=\\\"error\\\"}\" { print \$2 }') -ge 1 ]" || true
expect_eq "after a failed credential reload, SIGHUP re-read the (still broken) files: reload rejected" \
  "$(metric b 'ugate_config_reloads_total{result="error"}')" 1
body=$(get "http://127.0.0.1:$PORT_C/hello.txt" || true)
expect_str "C still gets through B on the running credentials" "$body" "hello from the backend"
cp -p key.pem.good b/key.pem.new && mv b/key.pem.new b/key.pem
wait_for "B's credential reload after the fix" 50 bash -c "[ \$(curl -s http://127.0.0.1:$ADM_B/stats | awk '\$1 == \"ugate_tls_credential_reloads_total{result=\\\"ok\\\"}\" { print \$2 }') -ge 2 ]" || true
expect_eq "B reloaded the repaired files" "$(metric b 'ugate_tls_credential_reloads_total{result="ok"}')" 2
check "every node is still running" bash -c "kill -0 ${NODE_PID[a]} ${NODE_PID[b]} ${NODE_PID[c]} ${NODE_PID[d]}"

say "== secrets with loose permissions"
mkdir -p loose && cp -p a/* loose/ && chmod 644 loose/key.pem
sed -e "s|$TMP/a\"|$TMP/loose\"|" -e "s|127.0.0.1:$ADM_A|127.0.0.1:0|" \
  -e 's|"address": "127.0.0.1:[0-9]*"|"address": "127.0.0.1:0"|g' a.json >loose.json
rc=0
timeout 10 "$UGATED" -c loose.json >loose.log 2>&1 || rc=$?
expect_eq "ugated refuses to start with a world-readable key (exit code)" "$rc" 2
check "and says why" grep -q "refusing private key file $TMP/loose/key.pem with mode 0644" loose.log

if ((FAIL != 0)); then dump_logs a b c d; fi
