#!/usr/bin/env bash
# push_h3_test.sh: the push service over HTTP/3 (a quic listener with "push": "<push listener>",
# ugate/http_endpoint.h) with a real HTTP/3 client (ugate_h3connect, on ugated's own QUIC client
# side) beside curl over HTTP/1.1 to the push listener itself:
# - POST /subscribe over h3 (201, Location, JSON); an SSE delivery stream GET /s/<sid> over h3;
#   pushes over h3 (body in DATA frames, without and with content-length) and over HTTP/1.1 to the
#   same subscription; the h3 stream receives them in order and they decrypt to the exact payloads;
# - DELETE /m/<mid> over h3 acks (204, then 404); a push without TTL gets 400, an unknown token 404,
#   a body over maxBody 413, all over h3;
# - /stats counts the h3 requests (ugate_webpush_h3_requests_total) among the service's requests;
# - the push listener advertises the quic listener that serves it without client certificates
#   (Alt-Svc: h3=":PORT");
# - a quic listener without "push" does not serve the push paths (404, the service's counter does
#   not move); --check-config refuses "push" naming an unknown listener or one not of kind push.
#
#   bash push_h3_test.sh /path/to/ugated
#
# Only loopback; ports chosen by the kernel; every process is started here and ended by PID. No
# timing is asserted: waits are bounded polls. The last line is "push_h3: N passed, M failed".
set -euo pipefail

readonly TEST_NAME=push_h3
readonly WATCHDOG_SECONDS=90
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in curl jq openssl python3; do have "$tool" || skip77 "$tool not found (scripts/install-deps.sh installs it)"; done
SUB=${UGATE_PUSH_SUBSCRIBER:-$(dirname "$UGATED")/tests/ugate_push_subscriber}
H3CONNECT=${UGATE_H3CONNECT:-$(dirname "$UGATED")/tests/ugate_h3connect}
[[ -x "$SUB" ]] || skip77 "ugate_push_subscriber not built (UGATE_PUSH_SUBSCRIBER)"
[[ -x "$H3CONNECT" ]] || skip77 "ugate_h3connect not built (UGATE_H3CONNECT)"

start_tmp
cd "$TMP"

# A mesh identity for mutual TLS (as quic_test.sh): its node ID may publish to topic "alerts".
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TMP/client.key" \
  -out "$TMP/client.crt" -subj /CN=push-h3-client -days 2 >/dev/null 2>&1
CLIENT_ID=$(openssl pkey -in "$TMP/client.key" -pubout -outform DER 2>/dev/null | python3 -c '
import sys, hashlib, base64
der = sys.stdin.buffer.read()
print(base64.b32encode(hashlib.sha256(der[-65:]).digest()).decode().rstrip("="))')

# write_config FILE QUIC_PUSH_VALUE: a push listener, a quic listener serving it ("push": VALUE),
# a quic listener without "push", and one with "push" that requires client certificates.
write_config() {
  cat >"$1" <<JSON
{
  "node": { "name": "push-h3", "dataDir": "$TMP/data" },
  "workers": 2,
  "admin": { "address": "127.0.0.1:0" },
  "tls": { "trustedIds": ["$CLIENT_ID"] },
  "listeners": [
    { "name": "push", "kind": "push", "address": "127.0.0.1:0" },
    { "name": "h3push", "kind": "quic", "address": "127.0.0.1:0", "tls": { "requireClientCert": false },
      "quic": { "retry": "never", "idleTimeout": "2s" }, "push": $2 },
    { "name": "h3plain", "kind": "quic", "address": "127.0.0.1:0", "tls": { "requireClientCert": false },
      "quic": { "retry": "never" } },
    { "name": "h3mtls", "kind": "quic", "address": "127.0.0.1:0", "quic": { "retry": "never" }, "push": "push" }
  ],
  "webpush": { "sync": "full", "maxTtl": "1h", "maxBody": 4096,
    "rateLimits": { "subscriptionRate": 100000, "subscriptionBurst": 100000, "sourceRate": 100000, "sourceBurst": 100000 },
    "topics": [ { "name": "alerts", "identities": ["$CLIENT_ID"] } ] }
}
JSON
}

say "-- config"
for bad in '"nope"' '"h3plain"'; do
  write_config "$TMP/bad.json" "$bad"
  msg=$("$UGATED" --check-config "$TMP/bad.json" 2>&1) && rc=0 || rc=$?
  check "--check-config refuses \"push\": $bad (exit $rc)" [ "$rc" -ne 0 ]
  check "  ... naming the key and why ($msg)" grep -q 'listeners\[1\]\.push: .*\(no listener is named\|not .push.\)' <<<"$msg"
done
write_config "$TMP/ugated.json" '"push"'
check "--check-config accepts \"push\": \"push\"" run check-config "$UGATED" --check-config "$TMP/ugated.json"

start_ugated
await_admin_port
await_ugated_ready
for l in push h3push h3plain h3mtls; do wait_for "listener $l's port" 50 ugated_port "$l" >/dev/null; done
P=$(ugated_port push)
Q=$(ugated_port h3push)
QPLAIN=$(ugated_port h3plain)
QMTLS=$(ugated_port h3mtls)

# h3 PORT METHOD PATH [h3connect args...]: one HTTP/3 request; body to $TMP/body, head to
# $TMP/h3.err; prints the status (0 when none came).
h3() {
  local port=$1 m=$2 path=$3
  shift 3
  "$H3CONNECT" --connect "127.0.0.1:$port" --authority "localhost:$port" --request "$m" "$path" --timeout 15 "$@" \
    >"$TMP/body" 2>"$TMP/h3.err" </dev/null || true
  local st
  st=$(sed -n 's/^:status //p' "$TMP/h3.err" | tail -1)
  printf '%s\n' "${st:-0}"
}
# h3body PORT METHOD PATH FILE [args...]: as h3, with FILE as the request body (DATA frames).
h3body() {
  local port=$1 m=$2 path=$3 file=$4
  shift 4
  "$H3CONNECT" --connect "127.0.0.1:$port" --authority "localhost:$port" --request "$m" "$path" --body \
    --timeout 15 "$@" >"$TMP/body" 2>"$TMP/h3.err" <"$file" || true
  local st
  st=$(sed -n 's/^:status //p' "$TMP/h3.err" | tail -1)
  printf '%s\n' "${st:-0}"
}
matches() { [[ "$1" =~ $2 ]]; }
h3hdr() { grep -i "^$1:" "$TMP/h3.err" | head -1 | cut -d' ' -f2-; }
stat_value() { admin /stats | awk -v m="$1" '$1 == m && !f { print $2; f = 1 }'; }

say "-- the push service over HTTP/3"
check "GET /healthz over h3 still answers" [ "$(h3 "$Q" GET /healthz)" == 200 ]
req0=$(stat_value ugate_webpush_requests_total)
h3req0=$(stat_value ugate_webpush_h3_requests_total)
st=$(h3 "$Q" POST /subscribe)
check "POST /subscribe over h3: 201 ($st $(cat "$TMP/body"))" [ "$st" == 201 ]
loc=$(h3hdr location)
check "  Location /s/<sid> ($loc)" matches "$loc" '^/s/[A-Za-z0-9_-]{22,}$'
RECEIVE=$(jq -r .receive "$TMP/body")
ENDPOINT=$(jq -r .endpoint "$TMP/body")
PUSHPATH="/${ENDPOINT#https://*/}"
check "  the endpoint names the push resource ($ENDPOINT)" matches "$PUSHPATH" '^/push/[A-Za-z0-9_-]{22,}$'
check "  receive is the Location ($RECEIVE)" [ "$RECEIVE" == "$loc" ]

"$SUB" keys "$TMP/ua.state" >"$TMP/ua.json"
P256DH=$(jq -r .p256dh "$TMP/ua.json")
AUTH=$(jq -r .auth "$TMP/ua.json")
encrypt() { printf '%s' "$1" | "$SUB" encrypt "$P256DH" "$AUTH" >"$2"; }
encrypt "one over h3" "$TMP/m1.bin"
encrypt "two over http/1.1" "$TMP/m2.bin"
encrypt "three over h3 with a length" "$TMP/m3.bin"

: >"$TMP/h3.sse"
spawn "h3 sse" "$H3CONNECT" --connect "127.0.0.1:$Q" --authority "localhost:$Q" --request GET "$RECEIVE" \
  -H 'accept: text/event-stream' --timeout 60 >"$TMP/h3.sse" 2>"$TMP/sse.err" </dev/null
SSE_PID=$SPAWNED
wait_for "the h3 delivery stream's head" 50 grep -q '^:status 200' "$TMP/sse.err" || true
check "GET $RECEIVE over h3: 200 text/event-stream" grep -q '^content-type: text/event-stream' "$TMP/sse.err"

st=$(h3body "$Q" POST "$PUSHPATH" "$TMP/m1.bin" -H 'ttl: 60' -H 'content-encoding: aes128gcm')
check "push over h3 (no content-length): 201 ($st $(cat "$TMP/body"))" [ "$st" == 201 ]
MID1=$(h3hdr location)
check "  Location /m/<mid> ($MID1)" matches "$MID1" '^/m/[A-Za-z0-9_-]+$'
st=$(curl -sk --http1.1 --max-time 10 -o "$TMP/body" -w '%{http_code}' -X POST "https://127.0.0.1:$P$PUSHPATH" \
  -H 'TTL: 60' -H 'Content-Encoding: aes128gcm' --data-binary "@$TMP/m2.bin" || true)
check "push over HTTP/1.1 to the push listener, same subscription: 201 ($st)" [ "$st" == 201 ]
st=$(curl -sk --http2 --max-time 10 -o /dev/null -D "$TMP/h2.hdr" -w '%{http_code}' -X POST "https://127.0.0.1:$P/subscribe" || true)
alt=$(grep -i '^alt-svc:' "$TMP/h2.hdr" | cut -d' ' -f2- | tr -d '\r')
check "the push listener advertises the quic listener without client certificates: Alt-Svc $alt" [ "$alt" == "h3=\":$Q\"" ]
st=$(h3body "$Q" POST "$PUSHPATH" "$TMP/m3.bin" -H 'ttl: 60' -H 'content-encoding: aes128gcm' \
  -H "content-length: $(stat -c %s "$TMP/m3.bin")")
check "push over h3 with content-length: 201 ($st)" [ "$st" == 201 ]

n_events() { grep -c '^id: ' "$TMP/h3.sse" 2>/dev/null || true; }
has3() { (($(n_events) >= 3)); }
wait_for "3 events on the h3 delivery stream" 100 has3 || true
got=$("$SUB" decrypt "$TMP/ua.state" <"$TMP/h3.sse" | jq -r '.plaintext // ("ERROR " + .error)' | paste -sd '|')
check "the h3 delivery stream's events, decrypted, in order ($got)" [ "$got" == "one over h3|two over http/1.1|three over h3 with a length" ]
first=$(sed -n 's/^id: //p' "$TMP/h3.sse" | head -1)
check "  the first event's id is the first push's mid ($first)" [ "/m/$first" == "$MID1" ]

check "DELETE $MID1 over h3 (ack): 204" [ "$(h3 "$Q" DELETE "$MID1")" == 204 ]
check "  again: 404" [ "$(h3 "$Q" DELETE "$MID1")" == 404 ]
st=$(h3body "$Q" POST "$PUSHPATH" "$TMP/m1.bin" -H 'content-encoding: aes128gcm')
check "push over h3 without TTL: 400 ($st $(head -c 80 "$TMP/body"))" [ "$st" == 400 ]
st=$(h3body "$Q" POST "/push/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" "$TMP/m1.bin" -H 'ttl: 60' -H 'content-encoding: aes128gcm')
check "push over h3 to an unknown token: 404 ($st)" [ "$st" == 404 ]
head -c 5000 /dev/urandom >"$TMP/big.bin"
st=$(h3body "$Q" POST "$PUSHPATH" "$TMP/big.bin" -H 'ttl: 60' -H 'content-encoding: aes128gcm')
check "push over h3 over maxBody (no content-length): 413 ($st)" [ "$st" == 413 ]
check "the delivery stream is still open" ours "$SSE_PID"
expect_eq "/stats: one delivery stream open" "$(stat_value ugate_webpush_subscribers_connected)" 1
acked0=$(stat_value ugate_webpush_messages_acked_total)
check "  its acknowledgement was counted (acked $acked0)" [ "$acked0" -ge 1 ]

say "-- a topic published by a mesh identity over h3 (client certificate)"
st=$(curl -sk --http1.1 --max-time 10 -o "$TMP/body" -w '%{http_code}' -X POST "https://127.0.0.1:$P/subscribe" \
  -H 'Content-Type: application/json' -d "{\"topic\":\"push-h3/alerts\",\"keys\":$(jq -c . "$TMP/ua.json")}" || true)
check "a topic subscription over HTTP/1.1: 201 ($st $(cat "$TMP/body"))" [ "$st" == 201 ]
printf 'alert over h3' >"$TMP/alert.txt"
st=$(h3body "$QMTLS" POST /topic/push-h3/alerts "$TMP/alert.txt" -H 'ttl: 60' --cert "$TMP/client.crt" --key "$TMP/client.key")
check "POST /topic over h3 with the listed identity's certificate: 201 ($st $(cat "$TMP/body"))" [ "$st" == 201 ]
check "  one subscriber got its copy" [ "$(jq -r .subscribers "$TMP/body" 2>/dev/null)" == 1 ]
st=$(h3body "$Q" POST /topic/push-h3/alerts "$TMP/alert.txt" -H 'ttl: 60')
check "  the same without a certificate (another listener): 401 ($st)" [ "$st" == 401 ]

say "-- the client of a delivery stream goes"
stop_pid "$SSE_PID"
reap "$SSE_PID" 2>/dev/null || true
no_subscribers() { [[ "$(stat_value ugate_webpush_subscribers_connected)" == 0 ]]; }
check "the service forgets the h3 delivery stream once its connection ends (idle timeout)" \
  wait_for "ugate_webpush_subscribers_connected 0" 100 no_subscribers
# A client that cancels its delivery stream (RESET_STREAM + STOP_SENDING) and keeps its connection:
# the messages not acknowledged are redelivered on the new stream; once bytes arrived it cancels.
spawn "h3 sse cancel" "$H3CONNECT" --connect "127.0.0.1:$QMTLS" --authority "localhost:$QMTLS" --request GET "$RECEIVE" \
  -H 'accept: text/event-stream' --cert "$TMP/client.crt" --key "$TMP/client.key" --cancel-after 1 --timeout 30 >"$TMP/cancel.sse" 2>"$TMP/cancel.err" </dev/null
CANCEL_PID=$SPAWNED
check "a second h3 delivery stream gets the unacknowledged messages, then cancels it" \
  wait_for "the client's cancel" 100 grep -q 'h3connect: cancelled' "$TMP/cancel.err"
check "  (its answer was 200 and events: $(head -c 40 "$TMP/cancel.sse" | tr '\n' ' '))" grep -q '^id: ' "$TMP/cancel.sse"
check "  the service forgets the cancelled stream" wait_for "ugate_webpush_subscribers_connected 0" 100 no_subscribers
check "  while its connection is still open" ours "$CANCEL_PID"
no_conn_end() { ! grep -q "connection ended" "$TMP/cancel.err"; }
check "  (the client saw no connection end: $(tr '\n' ' ' <"$TMP/cancel.err"))" no_conn_end
stop_pid "$CANCEL_PID"
reap "$CANCEL_PID" 2>/dev/null || true

say "-- a quic listener without \"push\""
req1=$(stat_value ugate_webpush_requests_total)
st=$(h3 "$QPLAIN" POST /subscribe)
check "POST /subscribe over h3 to h3plain: not served by the push service ($st)" [ "$st" == 404 ]
check "  its answer is not the push service's ($(head -c 60 "$TMP/body"))" grep -q 'no HTTP origin is routed here' "$TMP/body"
expect_eq "  the push service counted no request" "$(stat_value ugate_webpush_requests_total)" "$req1"

say "-- /stats"
h3reqs=$(($(stat_value ugate_webpush_h3_requests_total) - h3req0))
reqs=$(($(stat_value ugate_webpush_requests_total) - req0))
# Over h3: subscribe, 2 GET /s, 2 pushes, 2 DELETEs, no TTL, unknown token, too large, 2 topic
# publishes = 12; the service's requests: those minus the 413 (refused before it is handled, as
# over HTTP/1.1 and HTTP/2) plus the HTTP/1.1 push and topic subscription and the HTTP/2 subscribe = 14.
expect_eq "ugate_webpush_h3_requests_total counts the h3 requests" "$h3reqs" 12
expect_eq "  ugate_webpush_requests_total counts them with the HTTP/1.1 and HTTP/2 ones" "$reqs" 14
check "ugated still runs" ugated_alive


say "-- SIGTERM drains: an open h3 delivery stream ends with its own end, then its connection"
: >"$TMP/drain.sse"
spawn "h3 sse drain" "$H3CONNECT" --connect "127.0.0.1:$Q" --authority "localhost:$Q" --request GET "$RECEIVE" \
  -H 'accept: text/event-stream' --timeout 30 >"$TMP/drain.sse" 2>"$TMP/drain.err" </dev/null
DRAIN_PID=$SPAWNED
check "a delivery stream over h3 is open" wait_for "its head" 50 grep -q '^:status 200' "$TMP/drain.err"
kill -TERM "$UGATED_PID"
rc=0
timeout 20 tail --pid="$DRAIN_PID" -f /dev/null || true
reap "$DRAIN_PID" || rc=$?
expect_eq "  the client's request ends cleanly (exit status)" "$rc" 0
no_conn_end_first() { ! grep -q "connection ended" "$TMP/drain.err"; }
check "  the stream ended before its connection ($(tr '\n' ' ' <"$TMP/drain.err" | tail -c 200))" no_conn_end_first
wait_for "ugated to exit" 100 bash -c "! kill -0 $UGATED_PID 2>/dev/null || [ \"\$(awk '{print \$3}' /proc/$UGATED_PID/stat 2>/dev/null)\" == Z ]" || true
rc=0
reap "$UGATED_PID" || rc=$?
UGATED_PID=""
expect_eq "  ugated exits 0 after the drain" "$rc" 0
check "  without waiting for the drain deadline" bash -c "! grep -q 'drain deadline reached' '$TMP/ugated.log'"
