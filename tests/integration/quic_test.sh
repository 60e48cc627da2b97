#!/usr/bin/env bash
# quic_test.sh: ugated's `quic` listener (QUIC v1 + HTTP/3) against a REAL peer: gtlsclient, ngtcp2's
# example client (GnuTLS), on loopback.
#
#   bash quic_test.sh /path/to/ugated
#
# (1) HTTP/3 for the public (requireClientCert false), 2 workers: GET /healthz answers "ok", an
#     unrouted path 404, 50 requests on one connection, a 1-RTT key update mid-connection, a NAT
#     rebinding (the client's port changes: the connection survives, the packets the kernel hashes
#     to the other worker are handed to the owner), packet loss both ways; counters on /stats.
# (2) Address validation: a listener with "retry": "always" answers the first Initial with a Retry;
#     the client follows it and the request succeeds; a NEW_TOKEN token saved by the client skips
#     the Retry next time.
# (3) Bad input, from python3: an unknown version gets Version Negotiation (listing v1), garbage
#     and a short-header packet for no connection are dropped and counted, a too-small Initial (or
#     unknown-version datagram) is dropped unanswered; ugated keeps serving.
# (4) Mutual TLS (the default for kind quic): a client without a certificate is refused, one whose
#     node ID is trusted gets its answer.
# (5) CONNECT over HTTP/3 (ugate_h3connect, ugated's own QUIC client side): a routed tunnel to an
#     echo listener carries 8 MB both ways byte for byte, 10 tunnels at once; an unrouted target is
#     refused 403 route_rejected (not an open proxy), a routed but closed port 502 connect_refused;
#     each stream has its access-log line.
# (6) HTTP/3 in front of HTTP/1.1 origins (a route with "http": true): gtlsclient GETs a 20 MiB file
#     from nginx byte for byte, with and without 10% loss both ways, 100 requests on one connection;
#     a POST body goes to an echoing python origin and comes back; an unrouted host 404; a dead
#     origin 502 connect_refused; a malformed response 502.
# The last line is always "quic: N passed, M failed".
set -euo pipefail

readonly TEST_NAME=quic
readonly WATCHDOG_SECONDS=120
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

H3CONNECT=${UGATE_H3CONNECT:-$(dirname "$UGATED")/tests/ugate_h3connect}
for tool in python3 gtlsclient openssl nginx "$H3CONNECT"; do
  if ! have "$tool"; then
    say "quic: $tool not found (scripts/install-deps.sh installs it)" >&2
    exit 2
  fi
done
HAVE_PY=1

start_tmp

# metric NAME [LABELS]: the value of one sample on /stats (0 when absent).
metric() {
  local v n=$1
  [[ -n "${2:-}" ]] && n+="{$2}"
  v=$(admin /stats | awk -v n="$n" '$1 == n && !f { print $2; f = 1 }')
  printf '%s\n' "${v:-0}"
}
# h3get PORT PATH [gtlsclient options...]: GET https://localhost:PORT/PATH; the body goes to
# $TMP/dl/<basename>, the client's output to $TMP/h3get.log. Fails when the client does.
h3get() {
  local port=$1 path=$2
  shift 2
  rm -rf "$TMP/dl" && mkdir -p "$TMP/dl"
  run gtlsclient timeout 20 gtlsclient --exit-on-all-streams-close --timeout=10s --download "$TMP/dl" "$@" \
    127.0.0.1 "$port" "https://localhost:$port$path" >"$TMP/h3get.log" 2>&1
}
status_of() { grep -o ':status: [0-9]*' "$TMP/h3get.log" | tail -n1 | awk '{print $2}'; }

# A client identity for mutual TLS: P-256 key and self-signed certificate; its node ID is the
# base32 of the SHA-256 of the 65-byte public key, as ugated derives it.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TMP/client.key" \
  -out "$TMP/client.crt" -subj /CN=quic-client -days 2 >/dev/null 2>&1
CLIENT_ID=$(openssl pkey -in "$TMP/client.key" -pubout -outform DER 2>/dev/null | python3 -c '
import sys, hashlib, base64
der = sys.stdin.buffer.read()
print(base64.b32encode(hashlib.sha256(der[-65:]).digest()).decode().rstrip("="))')

read -r H3 RETRY MTLS < <(free_udp_ports 3)
read -r ECHO CLOSED WEB PYORIGIN < <(free_ports 4)

# Origins: nginx serving files, and a python origin that echoes request bodies (and answers one
# path with a malformed response).
mkdir -p "$TMP/www" "$TMP/nginx"
chmod 711 "$TMP" && chmod 755 "$TMP/www"  # nginx's worker runs as another user when we are root
head -c 20971520 /dev/urandom >"$TMP/www/big"
printf 'small\n' >"$TMP/www/small"
cat >"$TMP/nginx/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $TMP/nginx; proxy_temp_path $TMP/nginx; fastcgi_temp_path $TMP/nginx;
  uwsgi_temp_path $TMP/nginx; scgi_temp_path $TMP/nginx;
  server { listen 127.0.0.1:$WEB; root $TMP/www; }
}
EOF
spawn nginx nginx -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log"
cat >"$TMP/origin.py" <<'EOF'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_POST(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                n = int(self.rfile.readline().split(b";")[0], 16)
                if n == 0:
                    self.rfile.readline()
                    break
                body += self.rfile.read(n)
                self.rfile.readline()
            te = "chunked"
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            te = "length"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Request-Framing", te)
        self.send_header("X-Seen-Forwarded-For", self.headers.get("X-Forwarded-For", ""))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        if self.path == "/malformed":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx")
            self.close_connection = True
            return
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
spawn pyorigin python3 "$TMP/origin.py" "$PYORIGIN"
wait_for "nginx" 50 listening "$WEB" || true
wait_for "the python origin" 50 listening "$PYORIGIN" || true
cat >"$TMP/ugated.json" <<EOF
{
  "workers": 2,
  "node": {"name": "quic-test", "dataDir": "$TMP/data"},
  "admin": {"address": "127.0.0.1:0"},
  "log": {"level": "info", "accessLog": "$TMP/access.log"},
  "tls": {"trustedIds": ["$CLIENT_ID"]},
  "listeners": [
    {"name": "h3", "kind": "quic", "address": "127.0.0.1:$H3", "tls": {"requireClientCert": false},
     "quic": {"retry": "never", "idleTimeout": "20s"}},
    {"name": "h3retry", "kind": "quic", "address": "127.0.0.1:$RETRY", "tls": {"requireClientCert": false},
     "quic": {"retry": "always"}},
    {"name": "h3mtls", "kind": "quic", "address": "127.0.0.1:$MTLS"},
    {"name": "echo", "kind": "echo", "address": "127.0.0.1:$ECHO"}
  ],
  "routes": [
    {"name": "to-echo", "match": {"listener": "h3", "host": "127.0.0.1", "port": [$ECHO, $CLOSED]}, "to": "original"},
    {"name": "site", "match": {"listener": "h3", "host": "site.test"}, "to": "127.0.0.1:$WEB", "http": true},
    {"name": "api", "match": {"listener": "h3", "host": "api.test"}, "to": "127.0.0.1:$PYORIGIN", "http": true},
    {"name": "dead", "match": {"listener": "h3", "host": "dead.test"}, "to": "127.0.0.1:$CLOSED", "http": true}
  ]
}
EOF
start_ugated
await_admin_port
await_ugated_ready

say "== (1) HTTP/3 with gtlsclient"
if h3get "$H3" /healthz && [[ "$(cat "$TMP/dl/healthz" 2>/dev/null)" == ok ]]; then
  pass "GET /healthz over HTTP/3 answers ok"
else
  failed "GET /healthz over HTTP/3: $(tail -n 5 "$TMP/h3get.log")"
fi
expect_eq "its status" "$(status_of)" 200
h3get "$H3" /not-routed || true
expect_eq "an unrouted path answers 404" "$(status_of)" 404
if h3get "$H3" /healthz -n 50; then
  expect_eq "50 requests on one connection all answered 200" "$(grep -c ':status: 200' "$TMP/h3get.log")" 50
else
  failed "50 requests on one connection: $(tail -n 5 "$TMP/h3get.log")"
fi
if h3get "$H3" /healthz -n 20 --key-update=20ms --delay-stream=50ms; then
  expect_ge "key update mid-connection: requests after it answered" "$(grep -c ':status: 200' "$TMP/h3get.log")" 20
else
  failed "key update: $(tail -n 5 "$TMP/h3get.log")"
fi
keyupd=$(metric ugate_quic_key_updates_total)
expect_ge "key updates counted" "$keyupd" 1
if h3get "$H3" /healthz -n 20 --nat-rebinding --delay-stream=50ms; then
  expect_ge "NAT rebinding: the connection survives" "$(grep -c ':status: 200' "$TMP/h3get.log")" 20
else
  failed "NAT rebinding: $(tail -n 5 "$TMP/h3get.log")"
fi
if h3get "$H3" /healthz -n 30 --tx-loss=0.2 --rx-loss=0.2; then
  expect_eq "20% loss both ways: every request answered" "$(grep -c ':status: 200' "$TMP/h3get.log")" 30
else
  failed "with loss: $(tail -n 5 "$TMP/h3get.log")"
fi
expect_ge "handshakes counted" "$(metric ugate_quic_handshakes_total 'result="ok"')" 5
expect_ge "requests counted" "$(metric ugate_quic_streams_total)" 100

say "== (2) address validation (Retry)"
if h3get "$RETRY" /healthz --token-file "$TMP/token" && [[ "$(cat "$TMP/dl/healthz" 2>/dev/null)" == ok ]]; then
  pass "retry always: the request succeeds after the Retry"
else
  failed "retry always: $(tail -n 5 "$TMP/h3get.log")"
fi
retries=$(metric ugate_quic_retry_sent_total)
expect_eq "one Retry sent" "$retries" 1
if [[ -s "$TMP/token" ]] && h3get "$RETRY" /healthz --token-file "$TMP/token"; then
  expect_eq "a NEW_TOKEN token skips the Retry" "$(metric ugate_quic_retry_sent_total)" 1
else
  failed "no NEW_TOKEN token was saved or the second request failed: $(tail -n 5 "$TMP/h3get.log")"
fi

say "== (3) bad input"
vn_before=$(metric ugate_quic_version_negotiation_sent_total)
drops_before=$(metric ugate_quic_dropped_total 'reason="malformed"')
unknown_before=$(metric ugate_quic_dropped_total 'reason="unknown_connection"')
small_before=$(metric ugate_quic_dropped_total 'reason="initial_too_small"')
if python3 - "$H3" <<'EOF'
import os, socket, struct, sys
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
dcid, scid = os.urandom(8), os.urandom(8)
# A long-header packet of an unknown version, padded to 1200 bytes: Version Negotiation expected.
pkt = bytes([0xc0]) + struct.pack(">I", 0x1a2a3a4a) + bytes([8]) + dcid + bytes([8]) + scid
s.sendto(pkt + os.urandom(1200 - len(pkt)), ("127.0.0.1", port))
data, _ = s.recvfrom(2048)
assert data[0] & 0x80, "not a long header"
assert data[1:5] == b"\0\0\0\0", "not Version Negotiation"
i = 5
dl = data[i]; got_dcid = data[i + 1:i + 1 + dl]; i += 1 + dl
sl = data[i]; got_scid = data[i + 1:i + 1 + sl]; i += 1 + sl
assert got_dcid == scid and got_scid == dcid, "CIDs not echoed swapped"
versions = [struct.unpack(">I", data[j:j + 4])[0] for j in range(i, len(data), 4)]
assert 1 in versions, versions
# Garbage (a long header too short to parse), a short-header packet for no connection, and an
# Initial in a datagram under 1200 bytes: dropped without an answer.
s.sendto(b"\xc3\x00\x00", ("127.0.0.1", port))
# An unknown version in a small datagram: no Version Negotiation (it would amplify).
s.sendto(pkt + os.urandom(100), ("127.0.0.1", port))
s.sendto(bytes([0x40]) + os.urandom(60), ("127.0.0.1", port))
s.sendto(bytes([0xc0]) + struct.pack(">I", 1) + bytes([8]) + dcid + bytes([8]) + scid + b"\0" + os.urandom(300),
         ("127.0.0.1", port))
try:
    data, _ = s.recvfrom(2048)
    print("unexpected answer of %d bytes" % len(data))
    sys.exit(1)
except socket.timeout:
    pass
EOF
then
  pass "unknown version answered with Version Negotiation (v1 listed, CIDs swapped); junk not answered"
else
  failed "version negotiation / junk"
fi
expect_eq "Version Negotiation counted" "$(metric ugate_quic_version_negotiation_sent_total)" $((vn_before + 1))
expect_ge "garbage counted as malformed" "$(metric ugate_quic_dropped_total 'reason="malformed"')" $((drops_before + 1))
expect_ge "short header for no connection counted" \
  "$(metric ugate_quic_dropped_total 'reason="unknown_connection"')" $((unknown_before + 1))
expect_ge "small Initial counted" "$(metric ugate_quic_dropped_total 'reason="initial_too_small"')" $((small_before + 1))
if h3get "$H3" /healthz; then pass "still serving after the junk"; else failed "not serving after the junk"; fi

say "== (4) mutual TLS (the default)"
failed_before=$(metric ugate_quic_handshakes_total 'result="failed"')
h3get "$MTLS" /healthz || true  # gtlsclient's exit status does not tell: the body does
if [[ -s "$TMP/dl/healthz" ]]; then  # (the client creates the file before it learns of the refusal)
  failed "a client without a certificate got an answer"
else
  pass "a client without a certificate is refused"
fi
expect_ge "the refusal is counted" "$(metric ugate_quic_handshakes_total 'result="failed"')" $((failed_before + 1))
if h3get "$MTLS" /healthz --key "$TMP/client.key" --cert "$TMP/client.crt" &&
  [[ "$(cat "$TMP/dl/healthz" 2>/dev/null)" == ok ]]; then
  pass "a client with a trusted node ID gets its answer"
else
  failed "trusted client: $(tail -n 5 "$TMP/h3get.log")"
fi

say "== (5) CONNECT over HTTP/3"
# tunnel AUTHORITY [ugate_h3connect options]: stdin through a CONNECT tunnel; status to $TMP/h3c.err.
tunnel() {
  local auth=$1
  shift
  "$H3CONNECT" --connect "127.0.0.1:$H3" --authority "$auth" --timeout 20 "$@" 2>"$TMP/h3c.err"
}
got=$(printf 'hello over h3\n' | tunnel "127.0.0.1:$ECHO") || true
if [[ "$got" == "hello over h3" ]]; then pass "CONNECT to a routed echo target: the bytes come back"; else
  failed "CONNECT echo: got '$got' ($(tr '\n' ' ' <"$TMP/h3c.err"))"; fi
head -c 8000000 /dev/urandom >"$TMP/big"
rc=0
tunnel "127.0.0.1:$ECHO" <"$TMP/big" >"$TMP/big.back" || rc=$?
expect_eq "8 MB through the tunnel: exit status" "$rc" 0
if [[ "$(sha "$TMP/big")" == "$(sha "$TMP/big.back")" ]]; then pass "8 MB both ways byte for byte"; else
  failed "8 MB: sha256 differs ($(stat -c %s "$TMP/big.back") bytes back)"; fi
pids=()
for i in $(seq 1 10); do
  head -c 300000 /dev/urandom >"$TMP/par.$i"
  # (bash gives a background command of a function /dev/null as stdin: redirect inside it)
  spawn tunnel-$i bash -c 'exec "$1" --connect "$2" --authority "$3" --timeout 30 <"$4" >"$5" 2>/dev/null' \
    _ "$H3CONNECT" "127.0.0.1:$H3" "127.0.0.1:$ECHO" "$TMP/par.$i" "$TMP/par.$i.back"
  pids+=("$SPAWNED")
done
same=0
for i in $(seq 1 10); do
  reap "${pids[$((i - 1))]}" || true
  [[ "$(sha "$TMP/par.$i")" == "$(sha "$TMP/par.$i.back")" ]] && same=$((same + 1))
done
expect_eq "10 tunnels at once, each byte for byte" "$same" 10
rc=0
printf 'x' | tunnel "127.0.0.1:9" >/dev/null || rc=$?
expect_eq "an unrouted target: refused (exit 2)" "$rc" 2
check "... with 403 and x-ugate-error: route_rejected" grep -q "x-ugate-error: route_rejected" "$TMP/h3c.err"
grep -q ':status 403' "$TMP/h3c.err" || failed "403 expected: $(tr '\n' ' ' <"$TMP/h3c.err")"
rc=0
printf 'x' | tunnel "127.0.0.1:$CLOSED" >/dev/null || rc=$?
expect_eq "a routed but closed port: refused (exit 2)" "$rc" 2
check "... with 502 and x-ugate-error: connect_refused" grep -q "x-ugate-error: connect_refused" "$TMP/h3c.err"
# A reload (SIGHUP) keeps the socket and the established connection: a tunnel open across it goes on.
spawn slow-tunnel bash -c '(printf "before\n"; sleep 1.5; printf "after\n") | "$1" --connect "$2" --authority "$3" --timeout 20 >"$4" 2>/dev/null' \
  _ "$H3CONNECT" "127.0.0.1:$H3" "127.0.0.1:$ECHO" "$TMP/slow.back"
slow=$SPAWNED
sleep 0.7
kill -HUP "$UGATED_PID"
rc=0
reap "$slow" || rc=$?
if ((rc == 0)) && [[ "$(cat "$TMP/slow.back")" == $'before\nafter' ]]; then
  pass "a tunnel open across SIGHUP carries on"
else
  failed "tunnel across SIGHUP: exit $rc, got '$(cat "$TMP/slow.back")'"
fi
n=$(grep -c '"kind":"h3".*"route":"to-echo".*"close":"ok"' "$TMP/access.log" || true)
expect_ge "access log: the tunnels, by route, closed ok" "$n" 12
n=$(grep -c '"kind":"h3".*"close":"route_rejected"' "$TMP/access.log" || true)
expect_eq "access log: the refused CONNECT" "$n" 1

say "== (6) HTTP/3 in front of HTTP/1.1 origins"
# get URL [options]: gtlsclient to the h3 listener for URL's path and authority.
get() {
  local url=$1
  shift
  rm -rf "$TMP/dl" && mkdir -p "$TMP/dl"
  run gtlsclient timeout 60 gtlsclient --exit-on-all-streams-close --timeout=30s --download "$TMP/dl" "$@" \
    127.0.0.1 "$H3" "$url" >"$TMP/h3get.log" 2>&1
}
rc=0
get "https://site.test:$H3/big" -q || rc=$?
if ((rc == 0)) && [[ "$(sha "$TMP/dl/big" 2>/dev/null)" == "$(sha "$TMP/www/big")" ]]; then
  pass "20 MiB from nginx over HTTP/3, byte for byte"
else
  failed "20 MiB from nginx: exit $rc, $(stat -c %s "$TMP/dl/big" 2>&1) bytes; $(tail -n 3 "$TMP/h3get.log")"
fi
rc=0
get "https://site.test:$H3/big" -q --tx-loss=0.1 --rx-loss=0.1 || rc=$?
if ((rc == 0)) && [[ "$(sha "$TMP/dl/big" 2>/dev/null)" == "$(sha "$TMP/www/big")" ]]; then
  pass "20 MiB with 10% loss both ways, byte for byte"
else
  failed "20 MiB with loss: exit $rc, $(stat -c %s "$TMP/dl/big" 2>&1) bytes; $(tail -n 3 "$TMP/h3get.log")"
fi
if get "https://site.test:$H3/small" -n 100; then
  expect_eq "100 requests on one connection to the origin, all 200" "$(grep -c ':status: 200' "$TMP/h3get.log")" 100
else
  failed "100 requests: $(tail -n 3 "$TMP/h3get.log")"
fi
head -c 300000 /dev/urandom >"$TMP/post"
if get "https://api.test:$H3/echo" -m POST -d "$TMP/post" &&
  [[ "$(sha "$TMP/dl/echo" 2>/dev/null)" == "$(sha "$TMP/post")" ]]; then
  pass "a 300 kB POST body reaches the origin and comes back"
else
  failed "POST echo: $(tail -n 3 "$TMP/h3get.log")"
fi
check "... with the client's Content-Length" grep -q "x-request-framing: length" "$TMP/h3get.log"
check "... with X-Forwarded-For the client" grep -q "x-seen-forwarded-for: 127.0.0.1" "$TMP/h3get.log"
get "https://nowhere.test:$H3/x" || true
expect_eq "an unrouted host: 404" "$(status_of)" 404
get "https://dead.test:$H3/x" || true
expect_eq "a dead origin: 502" "$(status_of)" 502
check "... x-ugate-error: connect_refused" grep -q "x-ugate-error: connect_refused" "$TMP/h3get.log"
get "https://api.test:$H3/malformed" || true
expect_eq "a malformed origin response: 502" "$(status_of)" 502
n=$(grep -c '"kind":"h3".*"route":"site".*"close":"ok"' "$TMP/access.log" || true)
expect_ge "access log: the origin requests by route" "$n" 3

check "ugated still running" ugated_alive
say "(ran in $((SECONDS - START_SECONDS)) s)"
