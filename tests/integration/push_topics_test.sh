#!/usr/bin/env bash
# push_topics_test.sh: pub/sub on the push service (issue 18 §3, `webpush.topics`,
# src/webpush/push_topics.cc) with real processes: one ugated with a push listener on a port the
# kernel picks, `ugated push subscribe --topic` subscribers and `ugated push publish` publishers.
# Checked: two subscribers of push/alerts each decrypt the exact payloads of three publishes, in
# order (the node encrypted one copy per subscriber: the stored bodies differ); a subscriber of
# another topic gets none; a listed mesh identity (client certificate on a push listener with
# requireClientCert) publishes without VAPID, an unlisted one gets 401; publish without VAPID → 401, with a key not listed → 403, unknown topic →
# 404 (publish and subscribe), an encrypted body → 400, a plaintext over maxBody - 103 → 413; the
# topic's rate limit → 429 with Retry-After; maxSubscribers → 429 topic_full; a subscriber that does
# not read gets at most maxQueued copies, then new ones once it caught up; the counters on /stats.
# No timing is asserted: waits are bounded. The last line is "push_topics: N passed, M failed".
set -euo pipefail

readonly TEST_NAME=push_topics
readonly WATCHDOG_SECONDS=90
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in curl jq; do have "$tool" || skip_all "$tool not found (scripts/install-deps.sh installs it)"; done

start_tmp
cd "$TMP"
"$UGATED" push vapid-keys --out pub.pem >pub.json
"$UGATED" push vapid-keys --out other.pem >other.json
PUB=$(jq -r .publicKey pub.json)
# Mesh identities: the node's and two publishers' certificates from one CA (trust domain t.test).
run ca-init "$UGATED" ca init --dir ca --trust-domain t.test >ca.log 2>&1
for n in push meshpub stranger; do
  run "issue-$n" "$UGATED" ca issue --dir ca --name "$n" --out "$n" --trust-domain t.test >"issue-$n.log" 2>&1
done
MESHPUB_ID=$(head -n1 issue-meshpub.log)
cat >ugated.json <<JSON
{ "node": { "name": "push", "dataDir": "$TMP/data", "trustDomain": "t.test" },
  "tls": { "certDir": "$TMP/push" },
  "workers": 2,
  "admin": { "address": "127.0.0.1:0" },
  "listeners": [ { "name": "push", "kind": "push", "address": "127.0.0.1:0" },
                 { "name": "pushm", "kind": "push", "address": "127.0.0.1:0", "tls": { "requireClientCert": true } } ],
  "webpush": { "topics": [ { "name": "alerts", "publishers": ["$PUB"], "identities": ["$MESHPUB_ID"],
                             "rate": 1000, "burst": 1000 },
                           { "name": "quiet", "publishers": ["$PUB"], "rate": 0.001, "burst": 1, "maxSubscribers": 1 },
                           { "name": "slow", "publishers": ["$PUB"], "rate": 1000, "burst": 1000, "maxQueued": 2 } ] } }
JSON
mkdir -p data
start_ugated
await_admin_port
await_ugated_ready
wait_for "the push listener's port" 50 ugated_port push >/dev/null
U="https://127.0.0.1:$(ugated_port push)"
wait_for "the mTLS push listener's port" 50 ugated_port pushm >/dev/null
UM="https://127.0.0.1:$(ugated_port pushm)"

# sub NAME TOPIC: a subscriber's state in NAME.state; prints the exit status.
sub() { "$UGATED" push subscribe --server "$U" --insecure --topic "$2" --state "$1.state" >"$1.json" 2>"$1.err" && echo 0 || echo $?; }
# pub TOPIC TEXT [KEY]: publish; prints the status the CLI reports (0 when it could not say).
pub() {
  local out
  out=$(printf '%s' "$2" | "$UGATED" push publish --server "$U" --insecure --topic "$1" --vapid-key "${3:-pub.pem}" \
    --subject mailto:test@example.net --ttl 600 2>>pub.err) || true
  jq -r '.status // 0' <<<"${out:-{\}}" 2>/dev/null || echo 0
}
# raw ARGS...: curl -sk, prints the status; headers in hdr, body in body.
raw() { curl -sk --max-time 10 -o body -D hdr -w '%{http_code}' "$@" || true; }

say "== subscribe"
check "subscriber a of push/alerts" [ "$(sub a push/alerts)" == 0 ]
check "subscriber b of push/alerts" [ "$(sub b push/alerts)" == 0 ]
check "subscriber c of push/quiet" [ "$(sub c push/quiet)" == 0 ]
check "subscriber d of push/slow" [ "$(sub d push/slow)" == 0 ]
check "a subscribe to an unknown topic: 404" [ "$(raw -X POST "$U/subscribe" -H 'Content-Type: application/json' \
  -d "{\"topic\":\"push/nothing\",\"keys\":$(jq -c .keys a.json)}")" == 404 ]
check "a topic subscription without keys: 400" [ "$(raw -X POST "$U/subscribe" -d '{"topic":"push/alerts"}')" == 400 ]
check "the quiet topic is full with one subscriber (maxSubscribers 1): 429 topic_full" \
  [ "$(raw -X POST "$U/subscribe" -H 'Content-Type: application/json' -d "{\"topic\":\"push/quiet\",\"keys\":$(jq -c .keys a.json)}")" == 429 ]

say "== publish"
for i in 1 2 3; do
  check "publish $i to push/alerts: 201" [ "$(pub push/alerts "alert $i: \"quoted\" ✓")" == 201 ]
done
for s in a b; do
  got=$(timeout 20 "$UGATED" push listen --state "$s.state" --count 3 2>>listen.err || true)
  check "subscriber $s decrypted the 3 exact payloads, in order" \
    [ "$(jq -r .payload <<<"$got" | tr '\n' '|')" == 'alert 1: "quoted" ✓|alert 2: "quoted" ✓|alert 3: "quoted" ✓|' ]
done
# mpub NAME TEXT: publish over the mTLS listener with NAME's certificate and no VAPID; prints the status.
mpub() {
  curl -sk --max-time 10 --cert "$1/cert-chain.pem" --key "$1/key.pem" -o /dev/null -w '%{http_code}' \
    -X POST "$UM/topic/push/alerts" -H 'TTL: 60' --data-binary "$2" || true
}
check "a listed mesh identity publishes without VAPID (client certificate): 201" [ "$(mpub meshpub 'by identity')" == 201 ]
check "another identity of the same trust domain, not listed: 401" [ "$(mpub stranger 'not me')" == 401 ]
got=$(timeout 20 "$UGATED" push listen --state a.state --count 1 2>>listen.err || true)
check "subscriber a decrypted the identity-published message" [ "$(jq -r .payload <<<"$got")" == 'by identity' ]
got=$(timeout 3 "$UGATED" push listen --state c.state --count 1 2>/dev/null || true)
check "the subscriber of another topic got none of them" [ -z "$got" ]

say "== a slow subscriber: at most maxQueued (2) copies wait for it"
for i in 1 2 3; do pub push/slow "slow $i" >/dev/null; done
got=$(timeout 5 "$UGATED" push listen --state d.state --count 3 2>/dev/null || true)
check "the subscriber that had not read got the first 2, not the 3rd" \
  [ "$(jq -r .payload <<<"$got" | tr '\n' '|')" == 'slow 1|slow 2|' ]
check "/stats: one topic copy skipped" grep -q '^ugate_webpush_topic_copies_skipped_total 1$' <<<"$(admin /stats)"
check "after it caught up, it gets new ones again" [ "$(pub push/slow 'slow 4')" == 201 ]
got=$(timeout 20 "$UGATED" push listen --state d.state --count 1 2>/dev/null || true)
check "... (slow 4)" [ "$(jq -r .payload <<<"$got")" == 'slow 4' ]

say "== refusals"
check "publish without VAPID: 401" [ "$(raw -X POST "$U/topic/push/alerts" -H 'TTL: 60' --data-binary x)" == 401 ]
check "publish with a key not listed: 403" [ "$(pub push/alerts nope other.pem)" == 403 ]
check "publish to an unknown topic: 404" [ "$(pub push/nothing x)" == 404 ]
check "publish to another node's topic: 404" [ "$(pub elsewhere/alerts x)" == 404 ]
big=$(head -c 4000 /dev/zero | tr '\0' x)
check "a plaintext over maxBody - 103 bytes: 413" [ "$(pub push/alerts "$big")" == 413 ]
check "publish to quiet (burst 1): 201" [ "$(pub push/quiet one)" == 201 ]
check "the next one, over its rate: 429" [ "$(pub push/quiet two)" == 429 ]
STATS=$(admin /stats)
check "/stats: rejected publisher_not_listed" grep -q '^ugate_webpush_rejected_total{reason="publisher_not_listed"} 1$' <<<"$STATS"
check "/stats: rejected unknown_topic" grep -q '^ugate_webpush_rejected_total{reason="unknown_topic"} [1-9]' <<<"$STATS"
check "/stats: rejected rate_limited_topic" grep -q '^ugate_webpush_rejected_total{reason="rate_limited_topic"} 1$' <<<"$STATS"
check "/stats: rejected topic_full" grep -q '^ugate_webpush_rejected_total{reason="topic_full"} 1$' <<<"$STATS"
