#!/usr/bin/env bash
# push_receipts_test.sh: push message receipts (RFC 8030 §5.1) and Prefer: respond-async (RFC 7240)
# on the push service, with real processes: one ugated with a push listener on a port the kernel
# picks, curl as the application server (receipt subscription, pushes, the receipt stream) and as the
# user agent's delivery stream, ugate_push_subscriber (tests/tools) for the encrypted payload.
# Checked: the subscribe answer links the receipt subscribe resource (rel urn:ietf:params:push:receipt);
# POST there → 201 with a /r/<rsid> Location of ≥ 128 bits; a push with that Push-Receipt and Prefer:
# respond-async → 202 + Preference-Applied (HTTP/2 and HTTP/1.1), without Prefer → 201; bad Push-Receipts → 400 (another
# host, another subscription's receipt subscription); the subscriber acknowledges; ugated restarts
# before the receipt is read; the receipt stream then carries exactly one receipt, naming the
# acknowledged /m/<mid>; after its DELETE a new stream carries none; a message the sender deleted
# before delivery (a cancel) gets no receipt; 16 receipt subscriptions per subscription, the 17th →
# 429; DELETE of the receipt subscription → 204, then GET 404 and its Push-Receipt 400; the counters
# on /stats. No timing is asserted: waits are bounded. The last line is "push_receipts: N passed, M failed".
set -euo pipefail

readonly TEST_NAME=push_receipts
readonly WATCHDOG_SECONDS=60
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in curl jq; do have "$tool" || skip_all "$tool not found (scripts/install-deps.sh installs it)"; done
SUB=${UGATE_PUSH_SUBSCRIBER:-$(dirname "$UGATED")/tests/ugate_push_subscriber}
[[ -x "$SUB" ]] || skip_all "ugate_push_subscriber not built (UGATE_PUSH_SUBSCRIBER)"

start_tmp
cd "$TMP"
cat >ugated.json <<JSON
{ "node": { "name": "push", "dataDir": "$TMP/data" },
  "workers": 2,
  "admin": { "address": "127.0.0.1:0" },
  "listeners": [ { "name": "push", "kind": "push", "address": "127.0.0.1:0" } ],
  "webpush": { "keepalive": "300ms" } }
JSON
mkdir -p data
up() {
  start_ugated
  await_admin_port
  await_ugated_ready
  wait_for "the push listener's port" 50 ugated_port push >/dev/null
  U="https://127.0.0.1:$(ugated_port push)"
}
down() {
  stop_pid "$UGATED_PID"
  reap "$UGATED_PID" 2>/dev/null || true
  mv ugated.log "ugated.$(date +%s%N).log"
}
# req ARGS...: curl -sk, headers in hdr, body in body; prints the status.
req() { curl -sk --max-time 10 -o body -D hdr -w '%{http_code}' "$@" || true; }
hdr() { grep -i "^$1:" hdr | head -1 | cut -d' ' -f2- | tr -d '\r'; }
# sse NAME PATH: a background SSE stream (curl) into NAME.sse; its PID in SSE_PID.
sse() {
  : >"$1.sse"
  spawn "sse $1" curl -skN --max-time 30 -H 'Accept: text/event-stream' "$U$2" -o "$1.sse"
  SSE_PID=$SPAWNED
}
stop_sse() { stop_pid "$1"; reap "$1" 2>/dev/null || true; }
has() { grep -q -- "$2" "$1.sse" 2>/dev/null; }
stat_value() { admin /stats | awk -v m="$1" '$1 == m && !f { print $2; f = 1 }'; }
stat_is() { [[ "$(stat_value "$1")" == "$2" ]]; }
matches() { [[ "$1" =~ $2 ]]; }
starts_with() { [[ "$1" == "$2"* ]]; }

up
"$SUB" keys ua.state >ua.json
printf 'hello receipt' | "$SUB" encrypt "$(jq -r .p256dh ua.json)" "$(jq -r .auth ua.json)" >m.bin

say "== the receipt subscribe resource"
check "POST /subscribe: 201" [ "$(req -X POST "$U/subscribe")" == 201 ]
RECEIVE=$(jq -r .receive body)
EP="/push/$(jq -r .endpoint body | sed 's|.*/||')"  # the path: the port changes on restart
RLINK=$(grep -i '^link:' hdr | tr -d '\r' | sed -n 's/^[Ll]ink: <\([^>]*\)>; rel="urn:ietf:params:push:receipt"$/\1/p')
check "the answer links the receipt subscribe resource (rel urn:ietf:params:push:receipt)" [ -n "$RLINK" ]
check "POST on it: 201" [ "$(req -X POST "$U$RLINK")" == 201 ]
RSUB=$(hdr location)
check "its Location is /r/<capability of at least 128 bits>" matches "$RSUB" '^/r/[A-Za-z0-9_-]{22,64}$'
check "a second subscription's own receipt subscription" [ "$(req -X POST "$U/subscribe")" == 201 ]
OTHER_EP="/push/$(jq -r .endpoint body | sed 's|.*/||')"
OTHER_RLINK=$(grep -i '^link:' hdr | tr -d '\r' | sed -n 's/^[Ll]ink: <\([^>]*\)>; rel="urn:ietf:params:push:receipt"$/\1/p')
req -X POST "$U$OTHER_RLINK" >/dev/null
OTHER_RSUB=$(hdr location)

say "== pushes with Push-Receipt"
push() { req -X POST "$U$1" -H 'TTL: 600' -H 'Content-Encoding: aes128gcm' --data-binary @m.bin "${@:2}"; }
check "Push-Receipt naming another host: 400 bad_push_receipt" \
  [ "$(push "$EP" -H "Push-Receipt: https://elsewhere.example$RSUB")" == 400 ]
check "... with the reason in the body" grep -q '^bad_push_receipt' body
check "Push-Receipt of another subscription's receipt subscription: 400" \
  [ "$(push "$OTHER_EP" -H "Push-Receipt: $U$RSUB")" == 400 ]
check "... unknown_receipt_subscription" grep -q '^unknown_receipt_subscription' body
check "/stats: rejected bad_push_receipt" \
  grep -q '^ugate_webpush_rejected_total{reason="bad_push_receipt"} 1$' <<<"$(admin /stats)"
check "the log names the reason" grep -q '400 bad_push_receipt' ugated.log
check "Push-Receipt + Prefer: respond-async: 202 Accepted" \
  [ "$(push "$EP" -H "Push-Receipt: $U$RSUB" -H 'Prefer: respond-async')" == 202 ]
check "... Preference-Applied: respond-async" [ "$(hdr preference-applied)" == respond-async ]
MID=$(hdr location)
check "a push without Prefer: 201" [ "$(push "$EP")" == 201 ]
MID_PLAIN=$(hdr location)
check "Prefer: respond-async over HTTP/1.1 too: 202" [ "$(push "$EP" --http1.1 -H 'Prefer: wait=5, respond-async')" == 202 ]
check "... HTTP/1.1 202 Accepted" grep -q '^HTTP/1.1 202 Accepted' hdr
MID_H1=$(hdr location)

say "== the subscriber acknowledges; ugated restarts before the receipt is read"
sse ua "$RECEIVE"
UA=$SSE_PID
wait_for "the messages on the delivery stream" 100 has ua "id: ${MID_H1#/m/}" || true
check "the subscriber decrypts the payload" [ "$("$SUB" decrypt ua.state <ua.sse | jq -r .plaintext | head -1)" == 'hello receipt' ]
check "the acknowledgement (DELETE $MID): 204" [ "$(req -X DELETE "$U$MID")" == 204 ]
check "the other messages' acknowledgements: 204" \
  [ "$(req -X DELETE "$U$MID_PLAIN")$(req --http1.1 -X DELETE "$U$MID_H1")" == 204204 ]
check "/stats: one receipt stored" wait_for "receipts_stored 1" 50 stat_is ugate_webpush_receipts_stored_total 1
stop_sse "$UA"
down
up
sse r1 "$RSUB"
R1=$SSE_PID
check "after the restart the receipt stream carries the receipt" wait_for "a receipt" 100 has r1 'event: receipt'
sleep 1  # more would have come by now (the stream sends all it has at once)
stop_sse "$R1"
check "exactly one receipt" [ "$(grep -c '^event: receipt$' r1.sse)" == 1 ]
DATA=$(sed -n 's/^data: //p' r1.sse | head -1)
check "it names the acknowledged message" [ "$(jq -r .message <<<"$DATA")" == "$MID" ]
ACK=$(jq -r .ack <<<"$DATA")
check "its ack path is under the receipt subscription" starts_with "$ACK" "$RSUB/"
check "the application server deletes it: 204" [ "$(req -X DELETE "$U$ACK")" == 204 ]
check "a second DELETE: 404" [ "$(req -X DELETE "$U$ACK")" == 404 ]

say "== a message deleted before delivery (a cancel) gets no receipt"
st=$(push "$EP" -H "Push-Receipt: $RSUB")
check "push with Push-Receipt: 201" [ "$st" == 201 ]
[[ "$st" == 201 ]] || say "  ...   $st $(cat body)"
CANCEL=$(hdr location)
check "the sender deletes it before any delivery: 204" [ "$(req -X DELETE "$U$CANCEL")" == 204 ]
check "/stats: counted as cancelled" stat_is ugate_webpush_receipts_cancelled_total 1
sse r2 "$RSUB"
R2=$SSE_PID
wait_for "the receipt stream's first keepalive" 50 has r2 ': keepalive' || true
sleep 1
stop_sse "$R2"
check "the receipt stream carries no receipt (the first was deleted, the cancel has none)" \
  [ "$(grep -c '^event: receipt$' r2.sse || true)" == 0 ]

say "== limits and deletion"
for i in $(seq 2 16); do req -X POST "$U$RLINK" >/dev/null; done
check "the 17th receipt subscription of one subscription: 429" [ "$(req -X POST "$U$RLINK")" == 429 ]
check "... receipt_subscriptions_full" grep -q '^receipt_subscriptions_full' body
check "receipt subscribe of an unknown push resource: 404" [ "$(req -X POST "$U/receipts/AAAAAAAAAAAAAAAAAAAAAAAA")" == 404 ]
check "DELETE the receipt subscription: 204" [ "$(req -X DELETE "$U$RSUB")" == 204 ]
check "then GET on it: 404" [ "$(req -H 'Accept: text/event-stream' "$U$RSUB")" == 404 ]
check "then a Push-Receipt naming it: 400" [ "$(push "$EP" -H "Push-Receipt: $RSUB")" == 400 ]
check "DELETE the other receipt subscription: 204" [ "$(req -X DELETE "$U$OTHER_RSUB")" == 204 ]
STATS=$(admin /stats)  # (counted since the restart)
check "/stats: receipt subscriptions deleted 2" grep -q '^ugate_webpush_receipt_subscriptions_deleted_total 2$' <<<"$STATS"
check "/stats: one receipt acked" grep -q '^ugate_webpush_receipts_acked_total 1$' <<<"$STATS"
check "/stats: rejected unknown_receipt_subscription" \
  grep -q '^ugate_webpush_rejected_total{reason="unknown_receipt_subscription"} [1-9]' <<<"$STATS"
check "the log names the refusal's reason" grep -q 'receipt_subscriptions_full' ugated.log
