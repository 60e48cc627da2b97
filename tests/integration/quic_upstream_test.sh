#!/usr/bin/env bash
# quic_upstream_test.sh: ugated as a QUIC client — HTTP/3 requests of its `quic` listener relayed to
# HTTP/3 origins (routes with "upstreamQuic": true), every peer a real process on loopback:
#
#   gtlsclient ──HTTP/3──> ugated (quic listener "h3") ──HTTP/3 over QUIC──> gtlsserver
#
# - a 4 MiB file from gtlsserver arrives byte for byte (sha256), also with 5% loss both ways on the
#   client's side; 10 requests on one client connection; a 1 MiB POST body streams to the origin
#   (gtlsserver answers only after the whole body arrived);
# - the origin's certificate must verify: gtlsserver with a certificate from the test's CA (ugated's
#   tls.rootsFile) is served; one with a self-signed certificate is refused 502 (x-ugate-error), and
#   served when its route says "insecureSkipVerify": true;
# - a dead origin (closed UDP port: ICMP port unreachable) is answered 502 connect_refused at once;
#   an origin that takes the datagrams and never answers, 504 after the listener's connectTimeout;
# - each failure has its warning in ugated's log; /stats counts requests and errors; the access log
#   has a line per request.
# The last line is always "quic_upstream: N passed, M failed".
set -euo pipefail

readonly TEST_NAME=quic_upstream
readonly WATCHDOG_SECONDS=90
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in python3 gtlsclient gtlsserver openssl; do
  if ! have "$tool"; then
    say "quic_upstream: $tool not found (scripts/install-deps.sh installs it)" >&2
    exit 2
  fi
done
HAVE_PY=1

start_tmp

# stat_of NAME: the value of one sample on /stats (0 when absent).
stat_of() {
  local v
  v=$(admin /stats | awk -v n="$1" '$1 == n && !f { print $2; f = 1 }')
  printf '%s\n' "${v:-0}"
}
# get URL [gtlsclient options...]: an HTTP/3 request to ugated's quic listener; the body goes to
# $TMP/dl/<basename>, the client's output to $TMP/h3get.log.
get() {
  local url=$1
  shift
  rm -rf "$TMP/dl" && mkdir -p "$TMP/dl"
  run gtlsclient timeout 30 gtlsclient --exit-on-all-streams-close --timeout=15s --download "$TMP/dl" "$@" \
    127.0.0.1 "$H3" "$url" >"$TMP/h3get.log" 2>&1
}
status_of() { grep -o ':status: [0-9]*' "$TMP/h3get.log" | tail -n1 | awk '{print $2}'; }

# The test's CA, the origin's certificate from it, and a rogue origin's self-signed one (P-256).
mkdir -p "$TMP/pki" "$TMP/www"
cd "$TMP/pki"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt \
  -subj /CN=quic-upstream-test-ca -days 2 >/dev/null 2>&1
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout origin.key -out origin.csr \
  -subj /CN=localhost >/dev/null 2>&1
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >origin.ext
openssl x509 -req -in origin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out origin.crt -days 2 \
  -extfile origin.ext >/dev/null 2>&1
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout rogue.key -out rogue.crt \
  -subj /CN=localhost -days 2 >/dev/null 2>&1
cd - >/dev/null

head -c 4194304 /dev/urandom >"$TMP/www/big"
printf 'small\n' >"$TMP/www/small"
head -c 1048576 /dev/urandom >"$TMP/post"

read -r H3 ORIGIN ROGUE DEAD MUTE < <(free_udp_ports 5)
spawn origin gtlsserver -q -d "$TMP/www" 127.0.0.1 "$ORIGIN" "$TMP/pki/origin.key" "$TMP/pki/origin.crt" >"$TMP/origin.log" 2>&1
spawn rogue gtlsserver -q -d "$TMP/www" 127.0.0.1 "$ROGUE" "$TMP/pki/rogue.key" "$TMP/pki/rogue.crt" >"$TMP/rogue.log" 2>&1
# mute: takes every datagram and answers none (no ICMP either): only the handshake timeout ends it.
spawn mute python3 -c 'import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
while True: s.recv(65536)' "$MUTE" >"$TMP/mute.log" 2>&1

cat >"$TMP/ugated.json" <<EOF
{
  "workers": 2,
  "node": {"name": "quic-upstream-test", "dataDir": "$TMP/data"},
  "admin": {"address": "127.0.0.1:0"},
  "log": {"level": "info", "accessLog": "$TMP/access.log"},
  "tls": {"rootsFile": "$TMP/pki/ca.crt"},
  "listeners": [
    {"name": "h3", "kind": "quic", "address": "127.0.0.1:$H3", "tls": {"requireClientCert": false},
     "connectTimeout": "1s", "quic": {"retry": "never", "idleTimeout": "20s"}}
  ],
  "routes": [
    {"name": "origin", "match": {"listener": "h3", "host": "origin.test"}, "to": "127.0.0.1:$ORIGIN",
     "upstreamQuic": true},
    {"name": "rogue", "match": {"listener": "h3", "host": "rogue.test"}, "to": "127.0.0.1:$ROGUE",
     "upstreamQuic": true},
    {"name": "rogue-skip", "match": {"listener": "h3", "host": "skip.test"}, "to": "127.0.0.1:$ROGUE",
     "upstreamQuic": true, "upstreamTls": {"insecureSkipVerify": true}},
    {"name": "dead", "match": {"listener": "h3", "host": "dead.test"}, "to": "127.0.0.1:$DEAD",
     "upstreamQuic": true},
    {"name": "mute", "match": {"listener": "h3", "host": "mute.test"}, "to": "127.0.0.1:$MUTE",
     "upstreamQuic": true}
  ]
}
EOF
start_ugated
await_admin_port
await_ugated_ready

say "== an HTTP/3 origin behind ugated's quic listener"
rc=0
get "https://origin.test:$H3/big" -q || rc=$?
if ((rc == 0)) && [[ "$(sha "$TMP/dl/big" 2>/dev/null)" == "$(sha "$TMP/www/big")" ]]; then
  pass "4 MiB from gtlsserver through ugated, byte for byte (sha256)"
else
  failed "4 MiB: exit $rc, $(stat -c %s "$TMP/dl/big" 2>&1) bytes; $(tail -n 3 "$TMP/h3get.log")"
fi
rc=0
get "https://origin.test:$H3/big" -q --tx-loss=0.05 --rx-loss=0.05 || rc=$?
if ((rc == 0)) && [[ "$(sha "$TMP/dl/big" 2>/dev/null)" == "$(sha "$TMP/www/big")" ]]; then
  pass "4 MiB with 5% loss both ways on the client's side, byte for byte"
else
  failed "4 MiB with loss: exit $rc, $(stat -c %s "$TMP/dl/big" 2>&1) bytes; $(tail -n 3 "$TMP/h3get.log")"
fi
if get "https://origin.test:$H3/small" -n 10; then
  expect_eq "10 requests on one client connection, all 200" "$(grep -c ':status: 200' "$TMP/h3get.log")" 10
else
  failed "10 requests: $(tail -n 3 "$TMP/h3get.log")"
fi
if get "https://origin.test:$H3/small" -m POST -d "$TMP/post" && [[ "$(cat "$TMP/dl/small" 2>/dev/null)" == small ]]; then
  pass "a 1 MiB POST body streams to the origin, which then answers"
else
  failed "POST: $(tail -n 3 "$TMP/h3get.log")"
fi

say "== verification of the origin, and failures"
get "https://rogue.test:$H3/small" || true
expect_eq "an origin whose certificate is not from the configured CA: 502" "$(status_of)" 502
check "... x-ugate-error says why" grep -q "x-ugate-error: protocol_error" "$TMP/h3get.log"
check "... a warning names the route and the reason" grep -q "HTTP/3 origin 127.0.0.1:$ROGUE (route rogue)" "$TMP/ugated.log"
if get "https://skip.test:$H3/small" && [[ "$(cat "$TMP/dl/small" 2>/dev/null)" == small ]]; then
  pass "the same origin with \"insecureSkipVerify\": true is served"
else
  failed "insecureSkipVerify: $(tail -n 3 "$TMP/h3get.log")"
fi
get "https://dead.test:$H3/small" || true
expect_eq "a dead origin (closed UDP port): 502" "$(status_of)" 502
check "... x-ugate-error: connect_refused (ICMP port unreachable, not the handshake timeout)" \
  grep -q "x-ugate-error: connect_refused" "$TMP/h3get.log"
check "... a warning for it" grep -q "HTTP/3 origin 127.0.0.1:$DEAD (route dead).*UDP port is closed" "$TMP/ugated.log"
get "https://mute.test:$H3/small" || true
expect_eq "an origin that never answers: 504 after connectTimeout" "$(status_of)" 504
check "... x-ugate-error: handshake_timeout" grep -q "x-ugate-error: handshake_timeout" "$TMP/h3get.log"

expect_ge "/stats: requests relayed to HTTP/3 origins" "$(stat_of ugate_quic_h3_upstream_requests_total)" 16
expect_eq "/stats: of which failed" "$(stat_of ugate_quic_h3_upstream_errors_total)" 3
n=$(grep -c '"route":"origin".*"close":"ok"' "$TMP/access.log" || true)
expect_ge "access log: a line per relayed request" "$n" 13

check "ugated still running" ugated_alive
say "(ran in $((SECONDS - START_SECONDS)) s)"
