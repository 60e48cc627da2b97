#!/usr/bin/env bash
# mesh_test.sh: mesh tunnels and reverse accept between ugated processes, in network namespaces
# this script creates (and deletes), with a real NAT in between.
#
#   bash mesh_test.sh /path/to/ugated
#
#   ns GW (10.201.1.1) ── ns NAT (10.201.1.2 | 10.201.2.1, MASQUERADE, no inbound) ── ns A (10.201.2.2)
#
# gw1 (ns GW) has a `mesh` listener and a SOCKS port; node A (ns A, behind the NAT: nobody can dial
# it) dials gw1 with ALPN h2r and keeps an association; the roles flip and gw1 sends CONNECTs to A.
# Checked: a client on gw1's SOCKS port reaches HTTP and echo servers on A's loopback by name and by
# node ID; 100 parallel streams over the one association, every byte verified; an unauthorized node
# (valid certificate, not in authorize.reverseAccept) is refused at registration; nghttp (a real
# HTTP/2 client with a client certificate) gets 405 for a GET; a two-gateway circuit (client -> gw2
# -> gw1 -> A); a loop between the gateways is refused (508, loop_detected); an SNI listener, an
# iptables REDIRECT capture listener, a plain tcp listener and an http-connect listener (the client's
# trace context carried to A) on gw1 route to A's ports too; a second
# process with A's identity replaces the older association; killing and restarting gw1 makes A re-associate.
# With ugate_h2connect (tests/tools/h2connect.cc: HTTP/2 CONNECT with a client certificate and
# headers of our choice): traceparent and baggage reach A's and gw1's access logs unchanged, a
# malformed traceparent is dropped; an x-ugate-peer sent by a client that is not a trusted gateway is
# ignored (A sees the client's real identity), one from a trusted gateway (gw2, in gw1's
# mesh.trustedGateways) is kept; a circuit longer than gw1's mesh.maxHops (gw3 -> gw2 -> gw1) gets
# 508; a bad HTTP/2 preface is counted and logged. Node A frozen with SIGSTOP is found dead by PING
# timeout (gw1's pingInterval 1s + pingTimeout 2s) and re-associates by itself after SIGCONT. A's
# own /nodes shows its association with gw1 (connected; backing off while gw1 is down). The HTTP/2
# counters (DATA bytes, PING timeouts, protocol errors) are checked on /stats.
#
# Needs root (network namespaces, iptables inside them). Every process is tracked by PID and ended in
# the EXIT trap, then the namespaces are deleted. The last line is "mesh: N passed, M failed".
set -euo pipefail

readonly TEST_NAME=mesh
readonly WATCHDOG_SECONDS=180
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in ip iptables python3 curl openssl; do have "$tool" || skip_all "$tool not found (scripts/install-deps.sh installs it)"; done
[[ $(id -u) == 0 ]] || skip_all "needs root for network namespaces"
HAVE_NGHTTP=0
have nghttp && HAVE_NGHTTP=1
# The HTTP/2 CONNECT client: ctest passes its path; else look for it in the build tree beside ugated.
H2C=${UGATE_H2CONNECT:-$(dirname "$UGATED")/tests/ugate_h2connect}
HAVE_H2C=0
[[ -x "$H2C" ]] && HAVE_H2C=1

NS_GW=ugm-gw-$$
NS_NAT=ugm-nat-$$
NS_A=ugm-a-$$
test_cleanup() {
  local ns
  for ns in "$NS_A" "$NS_NAT" "$NS_GW"; do ip netns del "$ns" 2>/dev/null || true; done
}
nat_namespaces "$NS_GW" "$NS_NAT" "$NS_A" 10.201 || skip_all "cannot create network namespaces here"
in_gw() { ip netns exec "$NS_GW" "$@"; }
in_a() { ip netns exec "$NS_A" "$@"; }

start_tmp
cd "$TMP"
say "== identities and servers (ugated: $UGATED)"
TD=mesh.test
run ca-init "$UGATED" ca init --dir ca --trust-domain "$TD" >ca.log 2>&1
for n in gw1 gw2 gw3 a x; do
  run "issue-$n" "$UGATED" ca issue --dir ca --name "$n" --out "$n" --trust-domain "$TD" >"issue-$n.log" 2>&1
done
GW1_ID=$(head -n1 issue-gw1.log)
GW2_ID=$(head -n1 issue-gw2.log)
A_ID=$(head -n1 issue-a.log)
X_ID=$(head -n1 issue-x.log)

mkdir -p www
printf 'hello from A\n' >www/hello.txt
head -c $((8 * 1024 * 1024)) /dev/urandom >www/big.bin
BIG_SHA=$(sha www/big.bin)
cat >echo.py <<'PY'
import asyncio, sys
async def handle(r, w):
    try:
        while True:
            data = await r.read(65536)
            if not data:
                break
            w.write(data)
            await w.drain()
        w.write_eof()
    except ConnectionError:
        pass
    finally:
        w.close()
async def main():
    srv = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]), backlog=512)
    async with srv:
        await srv.serve_forever()
asyncio.run(main())
PY
spawn http-a ip netns exec "$NS_A" python3 -m http.server --bind 127.0.0.1 --directory "$TMP/www" 8080 >http-a.log 2>&1
spawn echo-a ip netns exec "$NS_A" python3 echo.py 9000 >echo-a.log 2>&1
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=a.test" \
  -keyout a-tls-key.pem -out a-tls-cert.pem >req-a.log 2>&1
mkdir -p tlswww && printf 'tls on A\n' >tlswww/who.txt
spawn echo-a2 ip netns exec "$NS_A" python3 echo.py 9100 >echo-a2.log 2>&1
mkdir -p www9300 www-gw && printf 'private on A\n' >www9300/p.txt && printf 'hello from gw1\n' >www-gw/gw.txt
spawn http-a9300 ip netns exec "$NS_A" python3 -m http.server --bind 127.0.0.1 --directory "$TMP/www9300" 9300 >http-a9300.log 2>&1
spawn http-gw ip netns exec "$NS_GW" python3 -m http.server --bind 127.0.0.1 --directory "$TMP/www-gw" 8088 >http-gw.log 2>&1
spawn tls-a ip netns exec "$NS_A" bash -c "cd '$TMP/tlswww' && exec openssl s_server -accept 127.0.0.1:8443 \
  -cert '$TMP/a-tls-cert.pem' -key '$TMP/a-tls-key.pem' -WWW -quiet" >tls-a.log 2>&1
# ns_listening NS PORT: something listens on PORT inside namespace NS.
ns_listening() { ip netns exec "$1" bash -c "$(declare -f listening); listening $2"; }
wait_for "A's http server" 100 ns_listening "$NS_A" 8080
wait_for "A's echo server" 100 ns_listening "$NS_A" 9000
wait_for "A's TLS server" 100 ns_listening "$NS_A" 8443
wait_for "A's second echo server" 100 ns_listening "$NS_A" 9100
wait_for "A's private http server" 100 ns_listening "$NS_A" 9300
wait_for "gw1's http server" 100 ns_listening "$NS_GW" 8088
# Capture in ns GW: locally generated TCP to 10.201.99.0/24:80 is REDIRECTed to gw1's capture port
# (a route makes the addresses reachable at all; nothing answers there).
in_gw ip route add 10.201.99.0/24 dev g0
in_gw iptables -t nat -A OUTPUT -p tcp -d 10.201.99.0/24 --dport 80 -j REDIRECT --to-ports 15001

a_registered() { nadmin gw1 /nodes 2>/dev/null | grep -c "\"id\": \"$A_ID\"" >/dev/null; }
a_gone() {
  local out
  out=$(nadmin gw1 /nodes 2>/dev/null) && [[ "$out" == *'"nodes"'* && "$out" != *"$A_ID"* ]]
}
# a_upstream STATE: A's own /nodes shows its association with gw1 in STATE.
a_upstream() {
  nadmin a /nodes 2>/dev/null |
    grep -q "\"name\": \"gw1\", \"address\": \"10.201.1.1:15008\", \"gateway_id\": \"$GW1_ID\", \"state\": \"$1\""
}
# h2c NAME MESH_ADDR AUTHORITY [-H 'name: value']...: an HTTP/2 CONNECT from ns GW with node x's
# certificate (CA-signed, in the trust domain, not a trusted gateway). stdin goes through the
# tunnel; stdout lands in NAME.out, the response headers in NAME.err. Returns the tool's status.
h2c() {
  local name=$1 addr=$2 auth=$3
  shift 3
  in_gw "$H2C" --connect "$addr" --authority "$auth" --cert "$TMP/x/cert-chain.pem" --key "$TMP/x/key.pem" \
    --ca "$TMP/x/root-cert.pem" --timeout 15 "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
}
# log_line FILE TEXT: the first access-log line of FILE containing TEXT (waits for it: lines are
# written when the stream closes).
log_line() {
  wait_for "an access-log line with $2 in $1" 50 grep -qF -- "$2" "$1" || true
  grep -F -- "$2" "$1" 2>/dev/null | head -n1
}
# has DESC LINE TEXT / hasnt DESC LINE TEXT: one assertion that LINE contains TEXT (or not).
has() { if [[ "$2" == *"$3"* ]]; then pass "$1"; else failed "$1: '$3' not in: $2"; fi; }
hasnt() { if [[ -n "$2" && "$2" != *"$3"* ]]; then pass "$1"; else failed "$1: '$3' in: '$2'"; fi; }

NODE_ADMIN[gw1]=15000
cat >gw1.json <<EOF
{ "node": { "name": "gw1", "trustDomain": "$TD" },
  "tls": { "certDir": "$TMP/gw1" },
  "admin": { "address": "127.0.0.1:15000" },
  "log": { "accessLog": "$TMP/gw1-access.log" },
  "mesh": { "pingInterval": "1s", "pingTimeout": "2s", "maxHops": 2, "trustedGateways": ["$GW2_ID"],
            "expose": [ { "port": 8088, "allow": ["$A_ID"] }, { "port": "1000-1100", "allow": "*" } ] },
  "listeners": [ { "name": "mesh", "kind": "mesh", "address": "0.0.0.0:15008" },
                 { "name": "socks", "kind": "socks5", "address": "127.0.0.1:1080" },
                 { "name": "sni", "kind": "sni", "address": "127.0.0.1:15443" },
                 { "name": "capture", "kind": "redirect", "address": "127.0.0.1:15001" },
                 { "name": "fwd", "kind": "tcp", "address": "127.0.0.1:15080", "to": "a.mesh:8080" },
                 { "name": "hc", "kind": "http-connect", "address": "127.0.0.1:3128" } ],
  "routes": [ { "match": { "host": "nobody.mesh" }, "to": "original", "via": "127.0.0.1:15009" },
              { "match": { "listener": "sni", "sni": "a.test" }, "to": "a.mesh:8443" },
              { "match": { "listener": "capture", "cidr": "10.201.99.0/24", "port": 80 }, "to": "a.mesh:8080" } ],
  "authorize": { "reverseAccept": ["$A_ID"], "reverseAcceptTrustDomain": false } }
EOF
NODE_ADMIN[gw2]=15002
cat >gw2.json <<EOF
{ "node": { "name": "gw2", "trustDomain": "$TD" },
  "tls": { "certDir": "$TMP/gw2" },
  "admin": { "address": "127.0.0.1:15002" },
  "listeners": [ { "name": "mesh", "kind": "mesh", "address": "127.0.0.1:15009" },
                 { "name": "socks", "kind": "socks5", "address": "127.0.0.1:1081" } ],
  "routes": [ { "match": { "host": "*.mesh" }, "to": "original", "via": "10.201.1.1:15008" } ] }
EOF
# gw3 -> gw2 -> gw1: one gateway more than gw1's mesh.maxHops (2) allows.
NODE_ADMIN[gw3]=15004
cat >gw3.json <<EOF
{ "node": { "name": "gw3", "trustDomain": "$TD" },
  "tls": { "certDir": "$TMP/gw3" },
  "admin": { "address": "127.0.0.1:15004" },
  "listeners": [ { "name": "mesh", "kind": "mesh", "address": "127.0.0.1:15010" } ],
  "routes": [ { "match": { "host": "*.mesh" }, "to": "original", "via": "127.0.0.1:15009" } ] }
EOF
NODE_ADMIN[a]=15000
cat >a.json <<EOF
{ "workers": 1,
  "node": { "name": "a", "trustDomain": "$TD" },
  "tls": { "certDir": "$TMP/a" },
  "admin": { "address": "127.0.0.1:15000" },
  "log": { "accessLog": "$TMP/a-access.log" },
  "mesh": { "reconnectMin": "200ms", "reconnectMax": "2s",
            "expose": [ { "port": [8080, 8443, 9000], "allow": "*" }, { "port": 9100, "allow": ["$X_ID"] },
                        { "port": 9200, "allow": "*" }, { "port": "1080-1090", "allow": "*" } ] },
  "listeners": [ { "name": "socks", "kind": "socks5", "address": "127.0.0.1:1085" } ],
  "routes": [ { "match": { "listener": "gw1", "port": 9200 }, "to": "reject" } ],
  "upstreams": [ { "name": "gw1", "address": "10.201.1.1:15008", "id": "$GW1_ID" } ] }
EOF
NODE_ADMIN[x]=15001
sed -e "s|$TMP/a\"|$TMP/x\"|" -e 's|"name": "a"|"name": "x"|' -e 's|127.0.0.1:15000|127.0.0.1:15001|' \
  -e 's|a-access.log|x-access.log|' -e 's|127.0.0.1:1085|127.0.0.1:1086|' a.json >x.json

spawn_node gw1 "$NS_GW"
await_node gw1
spawn_node gw2 "$NS_GW"
await_node gw2
spawn_node gw3 "$NS_GW"
await_node gw3
spawn_node a "$NS_A"
await_node a
spawn_node x "$NS_A"
await_node x

say "== reverse accept through the NAT"
out=$(in_gw curl -sS --max-time 2 http://10.201.2.2:8080/hello.txt 2>&1 || true)
check "nobody can dial A from the gateway's side of the NAT" [ "$out" != "hello from A" ]
check "A registered its association with gw1 (/nodes)" wait_for "A in /nodes" 100 a_registered
nodes=$(nadmin gw1 /nodes)
check "/nodes names A 'a' with its SPIFFE identity" grep -q "\"name\": \"a\", \"spiffe\": \"spiffe://$TD/ns/default/sa/a\"" <<<"$nodes"
check "the unauthorized node x is not registered" [ "${nodes#*$X_ID}" = "$nodes" ]
wait_for "x refused" 50 bash -c "[ \$(ip netns exec $NS_GW curl -s http://127.0.0.1:15000/stats | awk '\$1 == \"ugate_mesh_associations_refused_total\" {print \$2}') -ge 1 ]" || true
expect_ge "gw1 refused x's association" "$(metric gw1 ugate_mesh_associations_refused_total)" 1
check "gw1 logged why x was refused" grep -q "association from .* refused: node $X_ID is not in authorize.reverseAccept" gw1.log
check "A's own /nodes shows its association with gw1: connected, gw1's node ID" \
  wait_for "A's upstream connected" 50 a_upstream connected

body=$(in_gw curl -sS --max-time 10 --socks5-hostname 127.0.0.1:1080 http://a.mesh:8080/hello.txt || true)
expect_str() { if [[ "$2" == "$3" ]]; then pass "$1"; else failed "$1: got '$2', want '$3'"; fi; }
expect_str "SOCKS client at gw1 -> a.mesh:8080 on A's loopback" "$body" "hello from A"
lower_id=$(tr 'A-Z' 'a-z' <<<"$A_ID")
body=$(in_gw curl -sS --max-time 10 --socks5-hostname 127.0.0.1:1080 "http://$lower_id.mesh:8080/hello.txt" || true)
expect_str "the same by node ID (lower case)" "$body" "hello from A"
got=$(in_gw curl -sS --max-time 30 --socks5-hostname 127.0.0.1:1080 http://a.mesh:8080/big.bin | sha256sum | cut -d' ' -f1 || true)
expect_str "8 MiB through the reverse tunnel, sha256 verified" "$got" "$BIG_SHA"
expect_ge "gw1's HTTP/2 counters: DATA bytes received from A" "$(metric gw1 ugate_mesh_h2_received_bytes_total)" $((8 << 20))
expect_ge "A's HTTP/2 counters: DATA bytes sent to gw1" "$(metric a ugate_mesh_h2_sent_bytes_total)" $((8 << 20))
expect_ge "gw1's HTTP/2 counters: streams opened on A's association" "$(metric gw1 ugate_mesh_h2_streams_opened_total)" 3
out=$(in_gw curl -sS --max-time 10 --socks5-hostname 127.0.0.1:1080 http://ghost.mesh:8080/ 2>&1 || true)
check "an unknown node is refused (SOCKS error, no hang)" grep -q "curl: (97)\|SOCKS\|Can't complete\|refused\|failed" <<<"$out"

say "== trace context and identity through the tunnel (HTTP/2 CONNECT with a client certificate)"
if ((HAVE_H2C)); then
  TP1=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
  BG1='userId=alice,serverNode=DF%2028;p=1'
  rc=0
  # baggage in two fields: one list (RFC 9110 5.3), carried joined with ','.
  printf 'GET /hello.txt HTTP/1.0\r\n\r\n' | h2c direct 10.201.1.1:15008 a.mesh:8080 -H "traceparent: $TP1" \
    -H "baggage: ${BG1%%,*}" -H "baggage: ${BG1#*,}" -H "x-ugate-peer: spiffe://$TD/ns/default/sa/someone-else" || rc=$?
  check "CONNECT a.mesh:8080 at gw1's mesh port: 200" grep -q "^:status 200" direct.err
  check "... and A's page came back through the tunnel (exit $rc)" grep -q "hello from A" direct.out
  line=$(log_line a-access.log "$TP1")
  has "A's access log: the client's traceparent" "$line" "\"traceparent\":\"$TP1\""
  has "A's access log: the client's baggage" "$line" "\"baggage\":\"$BG1\""
  has "A's access log: the client's real identity (x), carried by gw1" "$line" "\"peer\":\"$X_ID\""
  hasnt "A's access log: not the identity the client asserted" "$line" "someone-else"
  line=$(log_line gw1-access.log "$TP1")
  has "gw1's access log: the same traceparent" "$line" "\"traceparent\":\"$TP1\""
  has "gw1's access log: the same baggage" "$line" "\"baggage\":\"$BG1\""
  has "gw1's access log: the client's certificate identity" "$line" "\"peer\":\"$X_ID\""
  expect_eq "gw1 counted the ignored x-ugate-peer" "$(metric gw1 ugate_mesh_identity_assertions_ignored_total)" 1
  check "gw1 logged it" grep -q "ignored x-ugate-peer 'spiffe://$TD/ns/default/sa/someone-else': the peer is not a trusted gateway" gw1.log

  printf 'GET /hello.txt HTTP/1.0\r\n\r\n' | h2c badtp 10.201.1.1:15008 a.mesh:8080 -H "baggage: probe=bad-tp" \
    -H "traceparent: 00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01" || true
  check "a malformed traceparent does not fail the stream" grep -q "hello from A" badtp.out
  line=$(log_line a-access.log "probe=bad-tp")
  hasnt "A's access log: the malformed traceparent was dropped" "$line" "traceparent"
  expect_eq "gw1 counted the dropped header" "$(metric gw1 ugate_mesh_trace_headers_dropped_total)" 1
  check "gw1 logged why" grep -q "dropped traceparent (trace-id is not 32 lowercase hex digits)" gw1.log

  printf 'GET / HTTP/1.1\r\nHost: gw1\r\n\r\n' | in_gw timeout 10 openssl s_client -connect 10.201.1.1:15008 \
    -alpn h2 -cert x/cert-chain.pem -key x/key.pem -CAfile x/root-cert.pem -quiet >preface.out 2>&1 || true
  expect_eq "HTTP/1.1 on the mesh port after ALPN h2: counted as an HTTP/2 protocol error" \
    "$(metric gw1 ugate_mesh_h2_protocol_errors_total)" 1
  check "gw1 logged it" grep -q "closed: protocol_error: sent GOAWAY PROTOCOL_ERROR: bad connection preface" gw1.log
else
  skip "ugate_h2connect not found (UGATE_H2CONNECT): trace context and identity checks"
fi

say "== other front doors reach the mesh"
out=$(printf 'GET /who.txt HTTP/1.0\r\n\r\n' | in_gw timeout 10 openssl s_client -connect 127.0.0.1:15443 \
  -servername a.test -CAfile a-tls-cert.pem -verify_return_error -quiet 2>s_client.err || true)
check "SNI listener: a.test routed to a.mesh:8443, TLS end to end with A's own certificate" grep -q "tls on A" <<<"$out"
body=$(in_gw curl -sS --max-time 10 http://10.201.99.7/hello.txt || true)
expect_str "iptables REDIRECT capture at gw1 -> route to a.mesh:8080" "$body" "hello from A"
body=$(in_gw curl -sS --max-time 10 http://127.0.0.1:15080/hello.txt || true)
expect_str "tcp listener at gw1 with to: a.mesh:8080" "$body" "hello from A"
# HTTP CONNECT: the client's trace context rides the tunnel to A (curl sends --proxy-header to the proxy).
TP_HC=00-5c0a7b0e8d1f4e2a9b3c6d7e8f901234-1a2b3c4d5e6f7081-01
body=$(in_gw curl -sS --max-time 10 -p -x http://127.0.0.1:3128 --proxy-header "traceparent: $TP_HC" \
  --proxy-header "baggage: via=http-connect" http://a.mesh:8080/hello.txt || true)
expect_str "http-connect listener at gw1: CONNECT a.mesh:8080" "$body" "hello from A"
line=$(log_line a-access.log "$TP_HC")
has "A's access log: the HTTP CONNECT client's traceparent" "$line" "\"traceparent\":\"$TP_HC\""
has "A's access log: the HTTP CONNECT client's baggage" "$line" "\"baggage\":\"via=http-connect\""
line=$(log_line gw1-access.log "$TP_HC")
has "gw1's access log: the same traceparent on the http-connect stream" "$line" "\"listener\":\"hc\""

say "== 100 parallel streams over the one association"
cat >parallel.py <<'PY'
import asyncio, hashlib, os, struct, sys
N, SIZE = int(sys.argv[1]), int(sys.argv[2])
async def one(i):
    r, w = await asyncio.open_connection("127.0.0.1", 1080)
    w.write(b"\x05\x01\x00"); await w.drain()
    assert await r.readexactly(2) == b"\x05\x00"
    host = b"a.mesh"
    w.write(b"\x05\x01\x00\x03" + bytes([len(host)]) + host + struct.pack(">H", 9000)); await w.drain()
    head = await r.readexactly(4)
    if head[1] != 0:
        return f"stream {i}: SOCKS reply {head[1]}"
    atyp = head[3]
    await r.readexactly({1: 4, 4: 16}.get(atyp, 0) + 2 if atyp != 3 else (await r.readexactly(1))[0] + 2)
    payload = hashlib.sha256(str(i).encode()).digest() * (SIZE // 32)
    async def send():
        for off in range(0, len(payload), 32768):
            w.write(payload[off:off + 32768]); await w.drain()
        w.write_eof()
    sender = asyncio.create_task(send())
    got = bytearray()
    while True:
        chunk = await r.read(65536)
        if not chunk:
            break
        got += chunk
    await sender
    w.close()
    return "ok" if bytes(got) == payload else f"stream {i}: {len(got)} of {len(payload)} bytes, content differs"
async def main():
    res = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(N)), return_exceptions=True), 100)
    bad = [str(x) for x in res if x != "ok"]
    print(f"{N - len(bad)} ok")
    for b in bad[:5]:
        print(b)
asyncio.run(main())
PY
out=$(in_gw timeout 110 python3 parallel.py 100 262144 2>&1 || true)
expect_str "100 parallel echo streams of 256 KiB each, every byte verified" "$(head -n1 <<<"$out")" "100 ok"
[[ "$(head -n1 <<<"$out")" == "100 ok" ]] || say "$out"
expect_eq "still one node association on gw1" "$(metric gw1 ugate_mesh_nodes)" 1
expect_eq "A dialled gw1 once (one association carried everything)" "$(metric a ugate_mesh_association_dials_total)" 1

if ((HAVE_NGHTTP)); then
  out=$(in_gw timeout 10 nghttp -v --cert "$TMP/a/cert-chain.pem" --key "$TMP/a/key.pem" https://127.0.0.1:15008/ 2>&1 || true)
  check "nghttp (HTTP/2 over mutual TLS) gets 405 for a GET on the mesh port" grep -q ":status: 405" <<<"$out"
else
  skip "nghttp not found: the real HTTP/2 client check"
fi

say "== a circuit through two gateways, and a loop"
body=$(in_gw curl -sS --max-time 10 --socks5-hostname 127.0.0.1:1081 http://a.mesh:8080/hello.txt || true)
expect_str "client -> gw2 -> gw1 -> A (circuit)" "$body" "hello from A"
expect_ge "gw2 opened the circuit's first hop" "$(metric gw2 ugate_mesh_tunnels_opened_total)" 1
out=$(in_gw curl -sS --max-time 10 --socks5-hostname 127.0.0.1:1081 http://nobody.mesh:80/ 2>&1 || true)
check "a gw2 -> gw1 -> gw2 loop gets no answer" [ "${out#*hello}" = "$out" ]
expect_eq "gw2 refused the loop (its own ID already in the hops)" "$(metric gw2 ugate_mesh_loops_refused_total)" 1
check "gw2 logged loop_detected" grep -q "508 loop_detected: loop: this node already forwarded the stream" gw2.log
line=$(log_line a-access.log "\"peer\":\"$GW2_ID\"")
has "A's access log: the circuit's stream came from gw2, as gw1 (A's gateway) asserted" "$line" '"listener":"upstream:gw1"'
if ((HAVE_H2C)); then
  TP2=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01
  printf 'GET /hello.txt HTTP/1.0\r\n\r\n' | h2c circuit 127.0.0.1:15009 a.mesh:8080 -H "traceparent: $TP2" || true
  check "CONNECT at gw2 -> gw1 -> A with x's certificate" grep -q "hello from A" circuit.out
  line=$(log_line a-access.log "$TP2")
  has "A's access log: x's identity, asserted by gw2 (trusted by gw1) and then by gw1" "$line" \
    "\"peer\":\"$X_ID\""
  line=$(log_line gw1-access.log "$TP2")
  has "gw1's access log: x's identity, not gw2's" "$line" "\"peer\":\"$X_ID\""
  expect_eq "gw1 ignored no assertion from gw2" "$(metric gw1 ugate_mesh_identity_assertions_ignored_total)" 1

  say "== a circuit longer than mesh.maxHops (gw3 -> gw2 -> gw1, gw1's maxHops is 2)"
  rc=0
  h2c hops 127.0.0.1:15010 a.mesh:8080 </dev/null || rc=$?
  check "CONNECT at gw3 is answered 508 (exit $rc)" grep -q "^:status 508" hops.err
  check "... with x-ugate-error: loop_detected" grep -q "^x-ugate-error: loop_detected" hops.err
  expect_eq "gw1 counted the overlong circuit" "$(metric gw1 ugate_mesh_hops_exceeded_total)" 1
  expect_eq "gw1 counted it as no loop" "$(metric gw1 ugate_mesh_loops_refused_total)" 0
  check "gw1 logged why" grep -q "508 loop_detected: circuit too long: 2 gateways already forwarded the stream, mesh.maxHops=2" gw1.log
else
  skip "ugate_h2connect not found (UGATE_H2CONNECT): the trusted-gateway and maxHops checks"
fi

say "== exposure: a node's loopback is default-deny for mesh peers (mesh.expose)"
# refused_at NODE REASON: ugate_mesh_streams_refused_total{reason="REASON"} on NODE.
refused_at() { metric "$1" "ugate_mesh_streams_refused_total{reason=\"$2\"}"; }
# socks_reply NS SOCKS_PORT HOST PORT: the SOCKS5 reply code for a CONNECT to HOST:PORT (0 = success,
# 2 = not allowed by ruleset) from a client inside namespace NS.
socks_reply() {
  ip netns exec "$1" timeout 10 python3 -c '
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1]))); s.sendall(b"\x05\x01\x00"); s.recv(2)
h = sys.argv[2].encode(); s.sendall(b"\x05\x01\x00\x03" + bytes([len(h)]) + h + struct.pack(">H", int(sys.argv[3])))
r = s.recv(10); print(r[1] if len(r) > 1 else "closed")' "$2" "$3" "$4" 2>&1 || true
}
gw1_ne0=$(refused_at gw1 not_exposed)
a_ne0=$(refused_at a not_exposed)
# From A (a CA-signed node of the trust domain, associated with gw1) to gw1's own loopback ports.
out=$(in_a curl -sS --max-time 10 --socks5-hostname 127.0.0.1:1085 http://gw1.mesh:15000/config_dump 2>&1 || true)
check "A cannot read gw1's admin API through the mesh (gw1.mesh:15000)" [ "${out#*listeners}" = "$out" ]
expect_str "... the SOCKS client is told: not allowed by ruleset (reply 2)" "$(socks_reply "$NS_A" 1085 gw1.mesh 15000)" 2
check "gw1 logged why" grep -q "gw1.mesh:15000 from .* 403 not_exposed: port 15000 is the admin port, which is never exposed" gw1.log
out=$(in_a curl -sS --max-time 10 --socks5-hostname 127.0.0.1:1085 http://gw1.mesh:1080/ 2>&1 || true)
check "gw1's loopback SOCKS listener is not an open proxy for A (exposed range without allowProxy)" \
  grep -q "gw1.mesh:1080 from .* 403 not_exposed: port 1080 is the socks5 listener 'socks', a proxy: its mesh.expose entry needs \"allowProxy\": true" gw1.log
expect_str "gw1's http-connect port, not exposed: SOCKS reply 2" "$(socks_reply "$NS_A" 1085 gw1.mesh 3128)" 2
check "gw1's unexposed http-connect port is refused" grep -q "gw1.mesh:3128 from .* 403 not_exposed: port 3128 is not exposed (mesh.expose)" gw1.log
body=$(in_a curl -sS --max-time 10 --socks5-hostname 127.0.0.1:1085 http://gw1.mesh:8088/gw.txt || true)
expect_str "A reaches the port gw1 exposes to A's node ID (gw1.mesh:8088)" "$body" "hello from gw1"
if ((HAVE_H2C)); then
  rc=0
  h2c x8088 10.201.1.1:15008 gw1.mesh:8088 </dev/null || rc=$?
  check "x (valid certificate, not in the entry's allow) gets 403 for gw1.mesh:8088 (exit $rc)" grep -q "^:status 403" x8088.err
  check "... with x-ugate-error: not_exposed" grep -q "^x-ugate-error: not_exposed" x8088.err
  check "gw1 logged it with x's identity" grep -q "gw1.mesh:8088 from .*($X_ID.*\|.*sa/x).* 403 not_exposed: port 8088 is not exposed to" gw1.log
  h2c lo15000 10.201.1.1:15008 127.0.0.1:15000 </dev/null || true
  check "a CONNECT to gw1's loopback address by IP is held to mesh.expose too (403)" grep -q "^:status 403" lo15000.err
  check "... not_exposed" grep -q "^x-ugate-error: not_exposed" lo15000.err
else
  skip "ugate_h2connect not found: the peer-outside-allow check"
fi
expect_ge "gw1 counted its refusals as not_exposed" "$(refused_at gw1 not_exposed)" $((gw1_ne0 + 3))

# From gw1 (A's gateway) to A's loopback ports, over A's association.
out=$(in_gw curl -sS --max-time 10 --socks5-hostname 127.0.0.1:1080 http://a.mesh:15000/config_dump 2>&1 || true)
check "gw1 cannot read A's admin API over A's association (a.mesh:15000)" [ "${out#*listeners}" = "$out" ]
check "A logged why" grep -q "a.mesh:15000 from .* 403 not_exposed: port 15000 is the admin port" a.log
out=$(in_gw curl -sS --max-time 10 --socks5-hostname 127.0.0.1:1080 http://a.mesh:9300/p.txt 2>&1 || true)
check "an unexposed port of A (9300, listening) is refused" [ "${out#*private on A}" = "$out" ]
check "A logged it" grep -q "a.mesh:9300 from .* 403 not_exposed: port 9300 is not exposed (mesh.expose)" a.log
expect_str "A's SOCKS listener is not reachable through the exposed range 1080-1090 (no allowProxy)" \
  "$(socks_reply "$NS_GW" 1080 a.mesh 1085)" 2
check "A logged it" grep -q "a.mesh:1085 from .* 403 not_exposed: port 1085 is the socks5 listener 'socks', a proxy" a.log
out=$(in_gw curl -sS --max-time 10 --socks5-hostname 127.0.0.1:1080 http://a.mesh:9200/ 2>&1 || true)
check "a route reject for streams over the association wins over mesh.expose (a.mesh:9200)" \
  grep -q "a.mesh:9200 from .* 403 route_rejected: rejected by route routes\[0\]" a.log
expect_str "gw1 itself may not reach a.mesh:9100 (exposed to x only): SOCKS reply 2, not allowed" \
  "$(socks_reply "$NS_GW" 1080 a.mesh 9100)" 2
if ((HAVE_H2C)); then
  printf 'echo-for-x\n' | h2c x9100 10.201.1.1:15008 a.mesh:9100 || true
  check "x reaches a.mesh:9100 through gw1 (A believes x's identity from its own gateway)" grep -q "echo-for-x" x9100.out
fi
line=$(log_line a-access.log '"host":"a.mesh:9300"')
has "A's access log has a line for a refused mesh stream, with the reason" "$line" "not_exposed"
has "... naming the association it arrived on" "$line" '"listener":"upstream:gw1"'
expect_ge "A counted the not_exposed refusals" "$(refused_at a not_exposed)" $((a_ne0 + 4))
expect_eq "A counted the route reject" "$(refused_at a route_rejected)" 1
body=$(in_gw curl -sS --max-time 10 --socks5-hostname 127.0.0.1:1080 http://a.mesh:8080/hello.txt || true)
expect_str "the exposed port a.mesh:8080 still answers" "$body" "hello from A"

say "== a newer association of the same node replaces the older one"
NODE_ADMIN[a2]=15003
sed -e 's|127.0.0.1:15000|127.0.0.1:15003|' -e 's|127.0.0.1:1085|127.0.0.1:1087|' a.json >a2.json
spawn_node a2 "$NS_A"
await_node a2
wait_for "replacement" 50 bash -c "[ \$(ip netns exec $NS_GW curl -s http://127.0.0.1:15000/stats | awk '\$1 == \"ugate_mesh_associations_replaced_total\" {print \$2}') -ge 1 ]" || true
expect_ge "gw1 replaced A's association with the newer one" "$(metric gw1 ugate_mesh_associations_replaced_total)" 1
expect_eq "still one registered node" "$(metric gw1 ugate_mesh_nodes)" 1
body=$(in_gw curl -sS --max-time 10 --socks5-hostname 127.0.0.1:1080 http://a.mesh:8080/hello.txt || true)
expect_str "a.mesh:8080 still answers through the newer association" "$body" "hello from A"
stop_pid "${NODE_PID[a2]}"
unset "LIVE[${NODE_PID[a2]}]"

say "== a frozen node is found dead by PING timeout and re-associates when it thaws"
check "A holds the association again (a2 is gone)" wait_for "A in /nodes" 100 a_registered
pings=$(metric gw1 ugate_mesh_h2_ping_timeouts_total)
dials=$(metric a ugate_mesh_association_dials_total)
kill -STOP "${NODE_PID[a]}"  # lib.sh's stop_pid sends SIGCONT too, should a check below abort
check "gw1 dropped A's association (no PING ack: pingInterval 1s + pingTimeout 2s)" \
  wait_for "A gone from gw1's /nodes" 150 a_gone
expect_ge "gw1 counted the PING timeout" "$(metric gw1 ugate_mesh_h2_ping_timeouts_total)" $((pings + 1))
check "gw1 logged it" grep -q "node association with $A_ID closed: idle_timeout: no PING ack within 2000 ms" gw1.log
kill -CONT "${NODE_PID[a]}"
check "A re-associated by itself after SIGCONT" wait_for "A in /nodes again" 150 a_registered
expect_ge "A dialled again" "$(metric a ugate_mesh_association_dials_total)" $((dials + 1))
body=$(in_gw curl -sS --max-time 10 --socks5-hostname 127.0.0.1:1080 http://a.mesh:8080/hello.txt || true)
expect_str "a.mesh:8080 answers again" "$body" "hello from A"

say "== the gateway restarts; A re-associates on its own"
stop_pid "${NODE_PID[gw1]}"
unset "LIVE[${NODE_PID[gw1]}]"
check "A's own /nodes shows its association with gw1 backing off while gw1 is down" \
  wait_for "A's upstream backing off" 100 a_upstream backing-off
a_backoff_detail() {
  nadmin a /nodes 2>/dev/null |
    grep -q '"state": "backing-off", "since_unix_ms": [0-9]*, "attempts": [1-9][0-9]*, "next_retry_unix_ms": [0-9]*, "last_error": "'
}
check "... with its failed attempts, the next retry time and the last error" \
  wait_for "A's backoff details" 100 a_backoff_detail
spawn_node gw1 "$NS_GW"
await_node gw1
check "A re-registered with the restarted gw1" wait_for "A in /nodes again" 150 a_registered
body=$(in_gw curl -sS --max-time 10 --socks5-hostname 127.0.0.1:1080 http://a.mesh:8080/hello.txt || true)
expect_str "a.mesh:8080 works again after the restart" "$body" "hello from A"
expect_ge "A dialled again" "$(metric a ugate_mesh_association_dials_total)" $((dials + 2))
check "A's own /nodes shows the association connected again" wait_for "A's upstream connected" 50 a_upstream connected

if ((FAIL != 0)); then
  for n in gw1 gw2 gw3 a a2 x; do
    say "---- $n log (last 12 lines) ----"
    tail -n 12 "$TMP/$n.log"
  done
fi
