#!/usr/bin/env bash
# push_test.sh: the Web Push service (RFC 8030, listener kind `push`, src/webpush) with real peers:
# curl over HTTPS (HTTP/1.1 and HTTP/2 by ALPN) as subscriber and application server,
# ugate_push_subscriber (tests/tools) for the keys, decryption and VAPID signatures, and the npm
# `web-push` package as a real application server.
#
#   bash push_test.sh /path/to/ugated
#
# 1. Every status of the contract, over HTTP/1.1 and HTTP/2: subscribe (201, Location, Link, JSON),
#    push (201 + Location + TTL clamped to maxTtl, 400 without TTL / bad Topic / bad Urgency /
#    unencrypted body, 413 over maxBody and 201 at 4096 bytes, 404 unknown, 405), restricted
#    subscriptions (401 without or with a bad VAPID token, 403 with another key, 201 signed).
# 2. SSE delivery: live events, decrypted end to end; ack (204, then 404); redelivery of what was
#    not acknowledged on the next stream; Last-Event-ID resume; urgency filter; topic replacement;
#    comment keepalives; unsubscribe (204, later pushes 410, GET 404). A subscriber that reads
#    nothing (slowloris on the SSE stream) while 300 messages are accepted for it: the next stream
#    gets all of them. 300 idle TLS delivery streams counted in /stats, a subscriber beside them
#    served (bench/push_bench.py --only idle --idle 10000 is the 10 000-subscriber run).
# 3. Durability: 1000 pushes in flight, ugated killed with SIGKILL half-way; after a restart every
#    message that got its 201 is delivered (ids compared), exactly once per stream.
# 4. Limits (another config): maxInFlight, TTL expiry and the sweep, bad input (garbage, a 10 MB Content-Length, a truncated
#    body, slowloris on the head and on the body: 408, counted as request_timeout) answered or closed while a subscriber on another connection keeps getting its
#    messages, 429 per subscription and per source with Retry-After; /stats counts accepted,
#    delivered, acked and every rejection by reason.
# 5. The CLI: `ugated push vapid-keys`, `subscribe` (server pinned by node ID), `send` (VAPID,
#    TTL, Urgency, Topic), `listen` (decrypts, acknowledges).
# 6. npm web-push (installed into the build tree under a lock, like the xds tests' @grpc/grpc-js)
#    sends with VAPID to a restricted subscription; the subscriber (the test tool, then `ugated push
#    listen`) decrypts its exact payload; a sender with another VAPID key gets 403. Then node is the
#    user agent: npm http_ece decrypts what `ugated push send` encrypted, and node's crypto verifies
#    a VAPID token ugated signed. Skipped (not failed) when node/npm/the registry are
#    missing; the whole script exits 77 only when curl or the tool are missing.
#
# Only loopback; every process is started here, tracked by PID and ended in the EXIT trap. No
# timing is asserted: waits are bounded polls. The last line is "push: N passed, M failed".
# shellcheck disable=SC2016  # $1 and jq variables in single quotes are for bash -c and jq
set -euo pipefail

readonly TEST_NAME=push
readonly WATCHDOG_SECONDS=240
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in curl jq; do have "$tool" || skip77 "$tool not found (scripts/install-deps.sh installs it)"; done
SUB=${UGATE_PUSH_SUBSCRIBER:-$(dirname "$UGATED")/tests/ugate_push_subscriber}
[[ -x "$SUB" ]] || skip77 "ugate_push_subscriber not built (UGATE_PUSH_SUBSCRIBER)"

start_tmp
cd "$TMP"

# write_config WEBPUSH_JSON [MORE_LISTENERS]: $TMP/ugated.json with a push listener (port 0), admin,
# and MORE_LISTENERS (", {...}") after it.
write_config() {
  cat >"$TMP/ugated.json" <<EOF
{
  "node": { "name": "push", "dataDir": "$TMP/data" },
  "workers": 2,
  "admin": { "address": "127.0.0.1:0" },
  "listeners": [ { "name": "push", "kind": "push", "address": "127.0.0.1:0" }${2:-} ],
  "webpush": $1
}
EOF
}
# up: start ugated on $TMP/ugated.json; sets P (push port) and U (base URL).
up() {
  start_ugated
  await_admin_port
  await_ugated_ready
  wait_for "the push listener's port" 50 ugated_port push >/dev/null
  P=$(ugated_port push)
  U="https://127.0.0.1:$P"
}
# down: stop ugated (SIGTERM), forget its log (the next start writes a new one).
down() {
  stop_pid "$UGATED_PID"
  reap "$UGATED_PID" 2>/dev/null || true
  mv "$TMP/ugated.log" "$TMP/ugated.$(date +%s%N).log"
}

matches() { [[ "$1" =~ $2 ]]; }
jqt() { jq -e "$@" >/dev/null; }
starts_with() { [[ "$1" == "$2"* ]]; }
# req ARGS...: curl -sk, response headers in $TMP/hdr, body in $TMP/body; prints the status.
req() { curl -sk --max-time 10 -o "$TMP/body" -D "$TMP/hdr" -w '%{http_code}' "$@" || true; }
# hdr NAME: a header of the last req (first one, CR stripped).
hdr() { grep -i "^$1:" "$TMP/hdr" | head -1 | cut -d' ' -f2- | tr -d '\r'; }
# subscribe V [BODY]: POST /subscribe over HTTP version flag V; leaves ENDPOINT, RECEIVE.
subscribe() {
  local st
  st=$(req "$1" -X POST "$U/subscribe" ${2:+-H 'Content-Type: application/json' -d "$2"})
  [[ "$st" == 201 ]] || { say "  ...   subscribe: $st $(cat "$TMP/body")"; return 1; }
  ENDPOINT=$(jq -r .endpoint "$TMP/body")
  RECEIVE=$(jq -r .receive "$TMP/body")
}
# push V ENDPOINT TTL BODYFILE [curl args...]: prints the status; the Location is in $TMP/hdr.
push() {
  local v=$1 ep=$2 ttl=$3 body=$4
  shift 4
  req "$v" -X POST "$ep" -H "TTL: $ttl" -H 'Content-Encoding: aes128gcm' --data-binary "@$body" "$@"
}
# listen NAME V RECEIVE [curl args...]: an SSE delivery stream in the background, its events in
# $TMP/NAME.sse; its curl PID in LISTEN_PID.
listen() {
  local name=$1 v=$2 path=$3
  shift 3
  : >"$TMP/$name.sse"
  spawn "sse $name" curl -skN "$v" --max-time 120 -H 'Accept: text/event-stream' "$@" "$U$path" -o "$TMP/$name.sse"
  LISTEN_PID=$SPAWNED
}
# events NAME: the message ids received on stream NAME so far, one a line.
events() { sed -n 's/^id: //p' "$TMP/$1.sse" 2>/dev/null; }
count_events() { events "$1" | wc -l; }
has_events() { (($(count_events "$1") >= $2)); }
stop_listen() { stop_pid "$1"; reap "$1" 2>/dev/null || true; }
# plaintexts NAME STATE: the decrypted payloads of stream NAME, one a line.
plaintexts() { "$SUB" decrypt "$2" <"$TMP/$1.sse" | jq -r '.plaintext // ("ERROR " + .error)'; }
stat_value() { admin /stats | awk -v m="$1" '$1 == m && !f { print $2; f = 1 }'; }

# ---- 1. statuses, over HTTP/1.1 and HTTP/2 ---------------------------------------------------------
write_config '{ "sync": "full", "maxTtl": "1h", "keepalive": "300ms", "maxInFlight": 5000,
  "rateLimits": { "subscriptionRate": 100000, "subscriptionBurst": 100000, "sourceRate": 100000, "sourceBurst": 100000 } }'
up
"$SUB" keys "$TMP/ua.state" >"$TMP/ua.json"
P256DH=$(jq -r .p256dh "$TMP/ua.json")
AUTH=$(jq -r .auth "$TMP/ua.json")
encrypt() { printf '%s' "$1" | "$SUB" encrypt "$P256DH" "$AUTH" >"$2"; }
encrypt "hello" "$TMP/m.bin"
head -c 4096 /dev/urandom >"$TMP/4096.bin"
head -c 4097 /dev/urandom >"$TMP/4097.bin"
"$SUB" vapid-keys "$TMP/vapid.pem" >"$TMP/vapid.pub"
"$SUB" vapid-keys "$TMP/other.pem" >/dev/null

for V in --http1.1 --http2; do
  say "-- statuses over ${V#--}"
  st=$(req "$V" -X POST "$U/subscribe")
  check "$V POST /subscribe: 201" [ "$st" == 201 ]
  if [[ "$V" == --http2 ]]; then check "$V: the connection is HTTP/2 (ALPN h2)" grep -q '^HTTP/2 201' "$TMP/hdr"; fi
  loc=$(hdr location)
  check "$V Location /s/<sid> with >= 128 random bits ($loc)" matches "$loc" '^/s/[A-Za-z0-9_-]{22,}$'
  link=$(hdr link)
  check "$V Link: </push/<token>>; rel=\"urn:ietf:params:push\"" matches "$link" '^</push/[A-Za-z0-9_-]{22,}>; rel="urn:ietf:params:push"$'
  ENDPOINT=$(jq -r .endpoint "$TMP/body")
  RECEIVE=$(jq -r .receive "$TMP/body")
  token=${link#</push/}
  token=${token%%>*}
  check "$V JSON body: endpoint is the absolute push URL, receive the Location" \
    [ "$ENDPOINT" == "$U/push/$token" -a "$RECEIVE" == "$loc" ]
  st=$(push "$V" "$ENDPOINT" 60 "$TMP/m.bin")
  check "$V push: 201 with Location /m/<mid> (got $st)" matches "$st $(hdr location)" '^201 /m/[A-Za-z0-9_-]{22,}$'
  check "$V push: TTL echoed" [ "$(hdr ttl)" == 60 ]
  st=$(push "$V" "$ENDPOINT" 999999999 "$TMP/m.bin")
  check "$V push: TTL over maxTtl is clamped and the effective value echoed ($(hdr ttl))" [ "$st" == 201 -a "$(hdr ttl)" == 3600 ]
  st=$(req "$V" -X POST "$ENDPOINT" -H 'Content-Encoding: aes128gcm' --data-binary "@$TMP/m.bin")
  check "$V push without TTL: 400 ($st)" [ "$st" == 400 ]
  check "$V push with TTL: x: 400" [ "$(push "$V" "$ENDPOINT" x "$TMP/m.bin")" == 400 ]
  check "$V Topic of 33 characters: 400" [ "$(push "$V" "$ENDPOINT" 60 "$TMP/m.bin" -H "Topic: $(printf 'a%.0s' {1..33})")" == 400 ]
  check "$V Topic not base64url: 400" [ "$(push "$V" "$ENDPOINT" 60 "$TMP/m.bin" -H 'Topic: a.b')" == 400 ]
  check "$V Urgency: urgent: 400" [ "$(push "$V" "$ENDPOINT" 60 "$TMP/m.bin" -H 'Urgency: urgent')" == 400 ]
  st=$(req "$V" -X POST "$ENDPOINT" -H 'TTL: 60' --data-binary "@$TMP/m.bin")
  check "$V an unencrypted body (no Content-Encoding): 400 ($st)" [ "$st" == 400 ]
  st=$(req "$V" -X POST "$ENDPOINT" -H 'TTL: 60' -H 'Content-Encoding: gzip' --data-binary "@$TMP/m.bin")
  check "$V a wrong Content-Encoding (gzip): 400 ($st)" [ "$st" == 400 ]
  check "$V a 4096-byte body: 201" [ "$(push "$V" "$ENDPOINT" 60 "$TMP/4096.bin")" == 201 ]
  check "$V a 4097-byte body (maxBody 4096): 413" [ "$(push "$V" "$ENDPOINT" 60 "$TMP/4097.bin")" == 413 ]
  check "$V unknown push resource: 404" [ "$(push "$V" "$U/push/AAAAAAAAAAAAAAAAAAAAAAAA" 60 "$TMP/m.bin")" == 404 ]
  st=$(req "$V" -X GET "$ENDPOINT")
  check "$V GET on a push resource: 405 with Allow: POST" [ "$st" == 405 -a "$(hdr allow)" == POST ]
  check "$V unknown path: 404" [ "$(req "$V" "$U/nothing")" == 404 ]
  st=$(req "$V" "$U$RECEIVE" -H 'Accept: application/json')
  check "$V GET /s/<sid> without Accept: text/event-stream: 406" [ "$st" == 406 ]

  # Restricted subscription (RFC 8292 §3): applicationServerKey at subscribe, VAPID on every push.
  subscribe "$V" "{\"applicationServerKey\": \"$(cat "$TMP/vapid.pub")\"}"
  check "$V push to a restricted subscription without VAPID: 401" [ "$(push "$V" "$ENDPOINT" 60 "$TMP/m.bin")" == 401 ]
  check "$V ... with a garbage Authorization: 401" \
    [ "$(push "$V" "$ENDPOINT" 60 "$TMP/m.bin" -H 'Authorization: vapid t=garbage, k=garbage')" == 401 ]
  check "$V ... with a garbage WebPush token and Crypto-Key: 401" \
    [ "$(push "$V" "$ENDPOINT" 60 "$TMP/m.bin" -H 'Authorization: WebPush a.b.c' -H 'Crypto-Key: p256ecdsa=!!')" == 401 ]
  check "$V ... with a 5000-byte Authorization: 401" \
    [ "$(push "$V" "$ENDPOINT" 60 "$TMP/m.bin" -H "Authorization: vapid t=$(head -c 5000 /dev/zero | tr '\0' a), k=a")" == 401 ]
  check "$V ... with a token for another origin: 401" \
    [ "$(push "$V" "$ENDPOINT" 60 "$TMP/m.bin" -H "Authorization: $("$SUB" vapid "$TMP/vapid.pem" https://push.example.net)")" == 401 ]
  check "$V ... with an expired token: 401" \
    [ "$(push "$V" "$ENDPOINT" 60 "$TMP/m.bin" -H "Authorization: $("$SUB" vapid "$TMP/vapid.pem" "$U" -60)")" == 401 ]
  check "$V ... signed by another key: 403" \
    [ "$(push "$V" "$ENDPOINT" 60 "$TMP/m.bin" -H "Authorization: $("$SUB" vapid "$TMP/other.pem" "$U")")" == 403 ]
  check "$V ... signed by its application server: 201" \
    [ "$(push "$V" "$ENDPOINT" 60 "$TMP/m.bin" -H "Authorization: $("$SUB" vapid "$TMP/vapid.pem" "$U")")" == 201 ]
  check "$V subscribe with a bad applicationServerKey: 400" \
    [ "$(req "$V" -X POST "$U/subscribe" -d '{"applicationServerKey": "AAAA"}')" == 400 ]
done

# ---- 2. delivery -------------------------------------------------------------------------------------
say "-- delivery (SSE)"
for V in --http1.1 --http2; do
  n=${V#--http}
  subscribe "$V"
  listen "live$n" "$V" "$RECEIVE"
  L=$LISTEN_PID
  mids=()
  for i in 1 2 3; do
    encrypt "message $i over $V" "$TMP/m$i.bin"
    push "$V" "$ENDPOINT" 600 "$TMP/m$i.bin" >/dev/null
    mids+=("$(hdr location)")
  done
  wait_for "3 events on the $V stream" 100 has_events "live$n" 3 || true
  check "$V stream: the 3 live messages arrive in order, ids = their /m/<mid>" \
    [ "$(events "live$n" | tr '\n' ' ')" == "${mids[0]#/m/} ${mids[1]#/m/} ${mids[2]#/m/} " ]
  check "$V stream: each is decrypted by the subscriber to its exact payload" \
    [ "$(plaintexts "live$n" "$TMP/ua.state" | tr '\n' '|')" == "message 1 over $V|message 2 over $V|message 3 over $V|" ]
  check "$V stream: event: push and a JSON data line with id, topic, urgency, ttl, encoding, body" \
    bash -c "grep -m1 '^data: ' '$TMP/live$n.sse' | cut -c7- | jq -e '.id and (.topic == \"\") and .urgency == \"normal\" and .ttl > 0 and .encoding == \"aes128gcm\" and (.body | length > 0)' >/dev/null && grep -q '^event: push' '$TMP/live$n.sse'"
  wait_for "a keepalive comment" 50 grep -q '^: keepalive' "$TMP/live$n.sse" || true
  check "$V stream: comment keepalives" grep -q '^: keepalive' "$TMP/live$n.sse"
  check "$V DELETE /m/<mid> (ack): 204" [ "$(req "$V" -X DELETE "$U${mids[0]}")" == 204 ]
  check "$V ... again: 404" [ "$(req "$V" -X DELETE "$U${mids[0]}")" == 404 ]
  stop_listen "$L"
  listen "again$n" "$V" "$RECEIVE"
  L=$LISTEN_PID
  wait_for "2 redelivered events" 100 has_events "again$n" 2 || true
  sleep 0.3
  check "$V next stream: the 2 unacknowledged messages are redelivered, the acknowledged one is not" \
    [ "$(events "again$n" | tr '\n' ' ')" == "${mids[1]#/m/} ${mids[2]#/m/} " ]
  stop_listen "$L"
  listen "resume$n" "$V" "$RECEIVE" -H "Last-Event-ID: ${mids[1]#/m/}"
  L=$LISTEN_PID
  wait_for "1 event after Last-Event-ID" 100 has_events "resume$n" 1 || true
  sleep 0.3
  check "$V Last-Event-ID resumes after that message" [ "$(events "resume$n" | tr '\n' ' ')" == "${mids[2]#/m/} " ]
  stop_listen "$L"
done

subscribe --http2
push --http2 "$ENDPOINT" 600 "$TMP/m1.bin" -H 'Urgency: low' >/dev/null
push --http2 "$ENDPOINT" 600 "$TMP/m2.bin" -H 'Urgency: high' >/dev/null
HIGH=$(hdr location)
listen urg --http2 "$RECEIVE?urgency=high"
L=$LISTEN_PID
wait_for "the high-urgency event" 100 has_events urg 1 || true
sleep 0.3
check "?urgency=high delivers only the high-urgency message (RFC 8030 §5.3)" [ "$(events urg)" == "${HIGH#/m/}" ]
stop_listen "$L"

subscribe --http1.1
encrypt "old news" "$TMP/t1.bin"
encrypt "new news" "$TMP/t2.bin"
push --http1.1 "$ENDPOINT" 600 "$TMP/t1.bin" -H 'Topic: news' >/dev/null
push --http1.1 "$ENDPOINT" 600 "$TMP/t2.bin" -H 'Topic: news' >/dev/null
listen topic --http1.1 "$RECEIVE"
L=$LISTEN_PID
wait_for "the topic event" 100 has_events topic 1 || true
sleep 0.3
check "Topic: a second message replaces the pending one (only 'new news' is delivered)" \
  [ "$(plaintexts topic "$TMP/ua.state" | tr '\n' '|')" == "new news|" ]
stop_listen "$L"

BAD="$TESTS_DIR/push_bad_client.py"
connected_at_least() { (($(stat_value ugate_webpush_subscribers_connected || echo 0) >= $1)); }
if have python3; then
  # Slowloris on the SSE stream: a subscriber with a 4 KiB receive buffer reads nothing while 300
  # messages of 4 KiB are accepted for it; then a subscriber that reads gets every one of them.
  subscribe --http1.1
  SLOW_EP=$ENDPOINT
  spawn "slow sse" bash -c 'exec python3 "$@" >/dev/null' _ "$BAD" "$P" slowsse "${RECEIVE#/s/}"
  SLOW=$SPAWNED
  wait_for "the slow subscriber's stream" 100 connected_at_least 1 || true
  : >"$TMP/slow.urls"
  for ((i = 0; i < 300; i++)); do printf 'url = "%s"\n' "$SLOW_EP" >>"$TMP/slow.urls"; done
  curl -sk --no-progress-meter --http2 --parallel --parallel-max 20 -X POST -H 'TTL: 600' -H 'Content-Encoding: aes128gcm' \
    --data-binary "@$TMP/4096.bin" -K "$TMP/slow.urls" -o /dev/null -w '%{http_code} %header{location}\n' >"$TMP/slow.pushed" 2>/dev/null || true
  expect_eq "300 pushes to a subscriber that reads nothing: all 201" "$(grep -c '^201 /m/' "$TMP/slow.pushed")" 300
  check "ugated is still up with the stalled stream" ready
  stop_listen "$SLOW"
  listen slowafter --http1.1 "$RECEIVE"
  L=$LISTEN_PID
  wait_for "300 events once a subscriber reads" 300 has_events slowafter 300 || true
  sed 's|.*/m/||' "$TMP/slow.pushed" | tr -d '\r' | sort >"$TMP/slow.ids"
  check "... every one of them is delivered to the next stream (nothing lost)" \
    [ "$(comm -23 "$TMP/slow.ids" <(events slowafter | sort) | wc -l)" == 0 ]
  stop_listen "$L"
  # Idle subscribers at scale (the CI size: bench/push_bench.py --only idle --idle 10000 is the
  # 10 000-subscriber run): 300 subscriptions, each with an idle TLS delivery stream.
  spawn "idle subscribers" bash -c 'exec python3 "$@" >/dev/null' _ "$BAD" "$P" idle 300
  IDLE=$SPAWNED
  wait_for "300 idle delivery streams" 300 connected_at_least 300 || true
  check "/stats: 300 idle subscribers connected" connected_at_least 300
  subscribe --http2
  listen besideidle --http2 "$RECEIVE"
  L=$LISTEN_PID
  encrypt "among the idle" "$TMP/idle.bin"
  push --http2 "$ENDPOINT" 60 "$TMP/idle.bin" >/dev/null
  wait_for "the event beside 300 idle streams" 100 has_events besideidle 1 || true
  check "... a subscriber beside them gets its message" [ "$(plaintexts besideidle "$TMP/ua.state")" == "among the idle" ]
  stop_listen "$L"
  stop_listen "$IDLE"
  no_idle() { ! connected_at_least 1; }
  wait_for "the idle streams to be gone" 100 no_idle || true
  check "/stats: when they hang up, no subscriber is counted connected" no_idle
else
  skip "python3 not found: slow and idle subscribers not run"
fi

check "DELETE /s/<sid>: 204" [ "$(req --http1.1 -X DELETE "$U$RECEIVE")" == 204 ]
check "a push to a removed subscription: 410" [ "$(push --http2 "$ENDPOINT" 60 "$TMP/m.bin")" == 410 ]
check "GET /s/<sid> of a removed subscription: 404" [ "$(req --http1.1 "$U$RECEIVE" -H 'Accept: text/event-stream')" == 404 ]
check "DELETE /s/<sid> again: 404" [ "$(req --http1.1 -X DELETE "$U$RECEIVE")" == 404 ]

STATS=$(admin /stats)
# rejected REASON N: /stats counted N refusals for REASON.
rejected() { grep -q "^ugate_webpush_rejected_total{reason=\"$1\"} $2\$" <<<"$STATS"; }
for r in "missing_ttl 2" "bad_ttl 2" "bad_topic 4" "bad_urgency 2" "bad_encoding 4" "too_large 2" \
  "unknown_subscription 4" "method_not_allowed 2" "vapid_missing 2" "vapid_wrong_key 2" "subscription_gone 1"; do
  check "/stats: ugate_webpush_rejected_total{reason=\"${r% *}\"} ${r#* }" rejected "${r% *}" "${r#* }"
done

# ---- 3. durability -------------------------------------------------------------------------------------
say "-- durability: 2000 pushes, SIGKILL while they are being accepted, restart"
subscribe --http1.1
DUR_EP=$ENDPOINT
DUR_RX=$RECEIVE
encrypt "durable" "$TMP/d.bin"
: >"$TMP/urls"
for ((i = 0; i < 2000; i++)); do printf 'url = "%s"\n' "$DUR_EP" >>"$TMP/urls"; done
# One curl, 1000 requests, 20 at a time; each line: status and Location.
# accepted_so_far N: ugated has answered 201 (after the commit) to at least N of them (/stats).
accepted_so_far() { (($(stat_value ugate_webpush_messages_accepted_total || echo 0) >= $1)); }
BEFORE=$(stat_value ugate_webpush_messages_accepted_total)
# One curl, 2000 requests, 10 at a time; each line of $TMP/pushed: the status and the Location.
spawn "pusher" bash -c 'exec curl "$@" >"'"$TMP"'/pushed" 2>/dev/null' _ -sk --http1.1 --parallel --parallel-max 10 -X POST \
  -H 'TTL: 3600' -H 'Content-Encoding: aes128gcm' --data-binary "@$TMP/d.bin" -K "$TMP/urls" -o /dev/null \
  -w '%{http_code} %header{location}\n'
PUSHER=$SPAWNED
wait_for "500 of them accepted" 600 accepted_so_far $((BEFORE + 500)) || true
kill -KILL "$UGATED_PID"
reap "$UGATED_PID" 2>/dev/null || true
reap "$PUSHER" 2>/dev/null || true
mv "$TMP/ugated.log" "$TMP/ugated.killed.log"
grep '^201 ' "$TMP/pushed" | sed 's|.*/m/||' | tr -d '\r' | sort >"$TMP/accepted.ids"
ACCEPTED=$(wc -l <"$TMP/accepted.ids")
expect_ge "messages answered 201 before SIGKILL" "$ACCEPTED" 1
say "  ...   $ACCEPTED of 2000 got their 201 before the SIGKILL ($(grep -vc '^201 ' "$TMP/pushed" || true) failed with the kill)"
if have sqlite3; then
  check "the store is in WAL mode (sqlite3 shell)" [ "$(sqlite3 "$TMP/data/webpush.db" 'PRAGMA journal_mode')" == wal ]
fi
up
listen dur --http2 "$DUR_RX"
L=$LISTEN_PID
wait_for "$ACCEPTED events after the restart" 300 has_events dur "$ACCEPTED" || true
sleep 0.5
events dur | sort >"$TMP/delivered.ids"
MISSING=$(comm -23 "$TMP/accepted.ids" "$TMP/delivered.ids" | wc -l)
expect_eq "every message answered 201 before the SIGKILL is delivered after the restart (missing)" "$MISSING" 0
DUPS=$(events dur | sort | uniq -d | wc -l)
expect_eq "each is delivered once on the stream (duplicates)" "$DUPS" 0
check "... and every delivered one decrypts to its payload" \
  [ "$(plaintexts dur "$TMP/ua.state" | sort -u | tr '\n' '|')" == "durable|" ]
stop_listen "$L"
check "/stats: ugate_webpush_messages_delivered_total counts them" \
  [ "$(stat_value ugate_webpush_messages_delivered_total)" -ge "$ACCEPTED" ]
check "/stats: the startup sweep counted the stored subscriptions" [ "$(stat_value ugate_webpush_subscriptions)" -ge 1 ]
check "/stats: the store commit latency histogram counts the commits" \
  [ "$(stat_value 'ugate_webpush_store_commit_seconds_count{sync="full"}')" -ge 1 ]
check "/stats: store commits and batch size are reported" \
  [ "$(stat_value ugate_webpush_store_commits_total)" -ge 1 -a "$(stat_value ugate_webpush_store_batch_largest)" -ge 1 ]
down

# ---- 4. limits ---------------------------------------------------------------------------------------
say "-- limits: maxInFlight, bad input, TTL expiry, 429"
write_config '{ "sync": "normal", "maxInFlight": 2, "keepalive": "10s", "sweepInterval": "300ms",
  "rateLimits": { "subscriptionRate": 0.001, "subscriptionBurst": 3, "sourceRate": 0.001, "sourceBurst": 40 } }' \
  ', { "name": "push11", "kind": "push", "address": "127.0.0.1:0", "sniffTimeout": "1s", "tls": { "alpn": ["http/1.1"] } },
     { "name": "push1s", "kind": "push", "address": "127.0.0.1:0", "sniffTimeout": "1s" }'
up
P11=$(ugated_port push11)
P1S=$(ugated_port push1s)
st=$(req --http2 -X POST "https://127.0.0.1:$P11/subscribe")
check "a push listener whose tls object narrows ALPN to http/1.1 still needs no client certificate ($st)" \
  grep -q '^HTTP/1.1 201' "$TMP/hdr"
# Bad input on the HTTP/1.1-only listener (sniffTimeout 1s) while a subscriber of the other
# listener stays connected: each gets its status or is closed, the subscriber is untouched.
if have python3; then
  subscribe --http2
  listen bystander --http2 "$RECEIVE"
  BY=$LISTEN_PID
  check "garbage instead of a request line: 400" [ "$(python3 "$BAD" "$P11" garbage)" == "HTTP/1.1 400 Bad Request" ]
  check "a Content-Length of 10 MB: 413 before any body byte is read" starts_with "$(python3 "$BAD" "$P11" huge)" "HTTP/1.1 413 "
  check "a body that stops short of its Content-Length: 408 at the request deadline" \
    starts_with "$(python3 "$BAD" "$P11" truncated)" "HTTP/1.1 408 "
  check "slowloris (half a head, then silence): 408 at the request deadline" starts_with "$(python3 "$BAD" "$P11" slowloris)" "HTTP/1.1 408 "
  check "slowloris on the body (a byte every 0.3 s): 408 at the request deadline" \
    starts_with "$(python3 "$BAD" "$P11" slowbody)" "HTTP/1.1 408 "
  st=$(curl -sk --http2 --limit-rate 100 --max-time 20 -o /dev/null -w '%{http_code}' -X POST -H 'TTL: 60' \
    -H 'Content-Encoding: aes128gcm' --data-binary "@$TMP/4096.bin" "https://127.0.0.1:$P1S${ENDPOINT#"$U"}" || true)
  check "slowloris on an HTTP/2 body (100 bytes/s; the connection's PINGs answered): 408 ($st)" [ "$st" == 408 ]
  encrypt "still here" "$TMP/bystander.bin"
  push --http2 "$ENDPOINT" 60 "$TMP/bystander.bin" -H 'Urgency: high' >/dev/null
  wait_for "the bystander's event" 100 has_events bystander 1 || true
  check "the subscriber connected meanwhile still gets its message" [ "$(plaintexts bystander "$TMP/ua.state")" == "still here" ]
  stop_listen "$BY"
  check "ugated is still up" ready
else
  skip "python3 not found: bad-input clients not run"
fi
subscribe --http2
listen inflight --http2 "$RECEIVE"
L=$LISTEN_PID
mids=()
for i in 1 2 3; do
  push --http2 "$ENDPOINT" 600 "$TMP/m$i.bin" >/dev/null
  mids+=("$(hdr location)")
done
wait_for "2 events" 100 has_events inflight 2 || true
sleep 0.5
expect_eq "maxInFlight 2: two messages are in flight, the third waits" "$(count_events inflight)" 2
check "acknowledging one (204)..." [ "$(req --http2 -X DELETE "$U${mids[0]}")" == 204 ]
wait_for "the third event" 100 has_events inflight 3 || true
check "... lets the third one out" [ "$(events inflight | tail -1)" == "${mids[2]#/m/}" ]
stop_listen "$L"
# TTL expiry: a message whose TTL ran out before anyone connected is not delivered, and is swept.
SAVED_EP=$ENDPOINT
subscribe --http2
encrypt "too late" "$TMP/late.bin"
encrypt "in time" "$TMP/intime.bin"
push --http2 "$ENDPOINT" 1 "$TMP/late.bin" >/dev/null
sleep 2.2  # past the 1 s TTL (a fact about the message, not a timing of ugated)
push --http2 "$ENDPOINT" 600 "$TMP/intime.bin" >/dev/null
listen ttl --http2 "$RECEIVE"
L=$LISTEN_PID
wait_for "the message still in its TTL" 100 has_events ttl 1 || true
sleep 0.3
check "a message past its TTL is not delivered; the one within it is" [ "$(plaintexts ttl "$TMP/ua.state" | tr '\n' '|')" == "in time|" ]
stop_listen "$L"
expired_swept() { (($(stat_value ugate_webpush_messages_expired_total || echo 0) >= 1)); }
wait_for "the sweep" 100 expired_swept || true
check "... and the sweep removed it (ugate_webpush_messages_expired_total >= 1)" expired_swept
ENDPOINT=$SAVED_EP
st=$(push --http2 "$ENDPOINT" 600 "$TMP/m1.bin")
check "a 4th message within the subscription's burst of 3: 429 ($st) with Retry-After ($(hdr retry-after))" \
  [ "$st" == 429 -a "$(hdr retry-after)" -ge 1 ]
got=""
for ((i = 0; i < 60; i++)); do
  st=$(req --http1.1 -X POST "$U/subscribe")
  if [[ "$st" == 429 ]]; then got=$(hdr retry-after); break; fi
done
check "the source's burst of 40 requests spent: 429 with Retry-After ($got)" [ -n "$got" ] && [ "${got:-0}" -ge 1 ]
STATS=$(admin /stats)
check "/stats: ugate_webpush_rejected_total{reason=\"request_timeout\"} 4" \
  grep -q '^ugate_webpush_rejected_total{reason="request_timeout"} 4$' <<<"$STATS"
for reason in rate_limited_subscription rate_limited_source bad_request too_large; do
  check "/stats: ugate_webpush_rejected_total{reason=\"$reason\"}" grep -q "^ugate_webpush_rejected_total{reason=\"$reason\"} [1-9]" <<<"$STATS"
done
stat_line() { grep -q "^$1\$" <<<"$STATS"; }
check "/stats: 6 messages accepted" stat_line 'ugate_webpush_messages_accepted_total 6'
check "/stats: 1 acknowledged while in flight" stat_line 'ugate_webpush_messages_acked_total 1'
check "/stats: no subscriber connected now" stat_line 'ugate_webpush_subscribers_connected 0'
down

# ---- 5. the CLI: ugated push vapid-keys | subscribe | send | listen -------------------------------------
say "-- ugated push (CLI)"
write_config '{ "sync": "full" }'
up
NODE_ID=$(grep -m1 -o 'node ID [A-Z2-7]*' "$TMP/ugated.log" | cut -d' ' -f3)
"$UGATED" push vapid-keys --out "$TMP/cli-vapid.pem" >"$TMP/cli-vapid.json"
check "vapid-keys: the key file is 0600" [ "$(stat -c %a "$TMP/cli-vapid.pem")" == 600 ]
"$UGATED" push subscribe --server "$U" --peer-id "$NODE_ID" --state "$TMP/cli.state" \
  --application-server-key "$(jq -r .publicKey "$TMP/cli-vapid.json")" >"$TMP/cli-sub.json"
check "subscribe (server pinned by node ID) prints a PushSubscription" \
  jqt '(.endpoint | startswith("https://")) and (.keys.p256dh | length == 87) and (.keys.auth | length == 22)' "$TMP/cli-sub.json"
check "subscribe refuses a server pinned to another node ID" \
  bash -c '! "$1" push subscribe --server "$2" --peer-id AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA --state "$3" 2>/dev/null' \
  _ "$UGATED" "$U" "$TMP/x.state"
sent=$(printf 'hello, "CLI"\n' | "$UGATED" push send --subscription "$TMP/cli-sub.json" --vapid-key "$TMP/cli-vapid.pem" \
  --subject mailto:test@example.net --peer-id "$NODE_ID" --ttl 600 --urgency high --topic greeting)
check "send: 201 with the message's Location ($sent)" jqt '.status == 201 and (.location | startswith("/m/"))' <<<"$sent"
listened=$(timeout 20 "$UGATED" push listen --state "$TMP/cli.state" --count 1 || true)
check "listen prints the decrypted payload, topic and urgency ($listened)" \
  jqt '.payload == "hello, \"CLI\"\n" and .topic == "greeting" and .urgency == "high"' <<<"$listened"
check "... and acknowledged it: nothing is left" \
  [ "$(req --http1.1 -X DELETE "$U/m/$(jq -r .id <<<"$listened")")" == 404 ]
down

# ---- 6. npm web-push as the application server ---------------------------------------------------------
say "-- npm web-push (a real application server)"
NPM_DIR=${UGATE_BUILD_DIR:-$(dirname "$UGATED")}/npm
# npm_package SPEC: install SPEC into $NPM_DIR once (under the lock the xds tests' npm install
# uses: ctest runs tests in parallel); false when node, npm or the registry is not there.
npm_package() {
  local name=${1%@*}
  have node && have npm || return 1
  [[ -f "$NPM_DIR/node_modules/$name/package.json" ]] && return 0
  mkdir -p "$NPM_DIR"
  flock "$NPM_DIR/.install.lock" sh -c "test -f '$NPM_DIR/node_modules/$name/package.json' || npm install --no-audit --no-fund --prefix '$NPM_DIR' '$1'" >/dev/null 2>&1
}
if ! npm_package web-push@3.6; then
  skip "node, npm or the npm registry is not available: npm web-push not run"
else
  write_config '{ "sync": "full" }'
  up
  WP="$TESTS_DIR/push_webpush.js"
  export NODE_PATH="$NPM_DIR/node_modules"
  node "$WP" keys >"$TMP/wp.keys"
  subscribe --http1.1 "{\"applicationServerKey\": \"$(jq -r .publicKey "$TMP/wp.keys")\"}"
  listen npm --http1.1 "$RECEIVE"
  L=$LISTEN_PID
  PAYLOAD='{"title":"from npm web-push","n":42}'
  # A loopback test against the node's self-signed certificate: node trusts it for this run only.
  sent=$(NODE_TLS_REJECT_UNAUTHORIZED=0 node "$WP" send "$ENDPOINT" "$P256DH" "$AUTH" "$TMP/wp.keys" "$PAYLOAD" 2>/dev/null || true)
  check "web-push sendNotification with VAPID to a restricted subscription: 201 ($sent)" starts_with "$sent" "201 /m/"
  wait_for "the web-push message" 100 has_events npm 1 || true
  check "the subscriber decrypts web-push's exact payload" [ "$(plaintexts npm "$TMP/ua.state")" == "$PAYLOAD" ]
  stop_listen "$L"
  # The same with \`ugated push\` as the subscriber.
  "$UGATED" push subscribe --server "$U" --insecure --state "$TMP/npm-cli.state" \
    --application-server-key "$(jq -r .publicKey "$TMP/wp.keys")" >"$TMP/npm-cli.json"
  sent=$(NODE_TLS_REJECT_UNAUTHORIZED=0 node "$WP" send "$(jq -r .endpoint "$TMP/npm-cli.json")" \
    "$(jq -r .keys.p256dh "$TMP/npm-cli.json")" "$(jq -r .keys.auth "$TMP/npm-cli.json")" "$TMP/wp.keys" "$PAYLOAD" 2>/dev/null || true)
  listened=$(timeout 20 "$UGATED" push listen --state "$TMP/npm-cli.state" --count 1 || true)
  check "ugated push listen decrypts web-push's exact payload ($sent)" jqt --arg p "$PAYLOAD" '.payload == $p' <<<"$listened"
  node "$WP" keys >"$TMP/wp.other"
  sent=$(NODE_TLS_REJECT_UNAUTHORIZED=0 node "$WP" send "$ENDPOINT" "$P256DH" "$AUTH" "$TMP/wp.other" "$PAYLOAD" 2>/dev/null || true)
  check "web-push with another VAPID key: 403 ($sent)" starts_with "$sent" 403
  # The other direction: node's crypto as the user agent, ugated as the application server.
  node "$WP" ua-keys "$TMP/node-ua.json" >"$TMP/node-ua.keys"
  subscribe --http1.1
  jq -n --arg ep "$ENDPOINT" --slurpfile k "$TMP/node-ua.keys" '{endpoint: $ep, keys: $k[0]}' >"$TMP/node-sub.json"
  "$UGATED" push vapid-keys --out "$TMP/node-vapid.pem" >/dev/null
  printf 'from ugated push send' | "$UGATED" push send --subscription "$TMP/node-sub.json" --vapid-key "$TMP/node-vapid.pem" \
    --subject mailto:test@example.net --insecure --ttl 60 >/dev/null
  listen nodeua --http1.1 "$RECEIVE"
  L=$LISTEN_PID
  wait_for "the message for node's key" 100 has_events nodeua 1 || true
  check "npm http_ece decrypts what ugated push send encrypted" \
    [ "$(node "$WP" decrypt "$TMP/node-ua.json" <"$TMP/nodeua.sse")" == "from ugated push send" ]
  stop_listen "$L"
  check "a VAPID token signed by ugated (src/webpush/vapid.h) verifies in node's crypto" \
    [ "$(node "$WP" verify-vapid "$("$SUB" vapid "$TMP/vapid.pem" "$U")" "$U")" == ok ]
  down
fi
