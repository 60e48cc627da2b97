#!/usr/bin/env bash
# push_mesh_test.sh: Web Push to a node behind NAT (issue 18 §3/§4, `webpush.gateway`,
# src/webpush/push_relay.*), ugated processes in network namespaces this script creates (and deletes):
#
#   ns GW (10.205.1.1) ── ns NAT (MASQUERADE, nothing comes in) ── ns N (10.205.2.2)
#
# gw has a mesh listener and the public push listener (webpush.publicUrl); node n dials gw (reverse
# accept) and listens on nothing but its loopback: its local push listener, where `ugated push`
# subscribes and listens. n's subscriptions are made at gw through the mesh, so the endpoint an
# application server gets is gw's. Checked: the endpoint is gw's; n listens on no address but
# loopback (TCP and UDP); 5 messages sent with `ugated push send` to the endpoint while n is stopped
# (and one with a TTL of 1 s that runs out meanwhile) reach the subscriber on n after n starts again,
# in order, decrypted byte for byte, the expired one not; 3 live ones too; after the acks gw holds
# none of them (DELETE /m/<mid> at gw: 404) and a restart of n (SIGKILL) delivers nothing twice;
# the relay's counters on n's /stats; a subscriber on n follows a topic gw publishes (gw encrypts for
# it, the relay carries ciphertext); a route that rejects the gateway's mesh name stops the relay
# (its streams are routed like any other). No timing is asserted: waits are bounded polls.
#
# Needs root (network namespaces, iptables inside them). The last line is "push_mesh: N passed, M failed".
set -euo pipefail

readonly TEST_NAME=push_mesh
readonly WATCHDOG_SECONDS=120
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in ip iptables curl jq ss; do have "$tool" || skip_all "$tool not found (scripts/install-deps.sh installs it)"; done
[[ $(id -u) == 0 ]] || skip_all "needs root for network namespaces"

NS_GW=ugpm-gw-$$
NS_NAT=ugpm-nat-$$
NS_N=ugpm-n-$$
test_cleanup() {
  local ns
  for ns in "$NS_N" "$NS_NAT" "$NS_GW"; do ip netns del "$ns" 2>/dev/null || true; done
}
nat_namespaces "$NS_GW" "$NS_NAT" "$NS_N" 10.205 || skip_all "cannot create network namespaces here"
in_gw() { ip netns exec "$NS_GW" "$@"; }
in_n() { ip netns exec "$NS_N" "$@"; }

start_tmp
cd "$TMP"
say "== identities (ugated: $UGATED)"
TD=pushmesh.test
run ca-init "$UGATED" ca init --dir ca --trust-domain "$TD" >ca.log 2>&1
for n in gw n; do
  run "issue-$n" "$UGATED" ca issue --dir ca --name "$n" --out "$n" --trust-domain "$TD" >"issue-$n.log" 2>&1
done
GW_ID=$(head -n1 issue-gw.log)
N_ID=$(head -n1 issue-n.log)
GW_URL=https://10.205.1.1:8443
"$UGATED" push vapid-keys --out vapid.pem >vapid.json

NODE_ADMIN[gw]=15000
cat >gw.json <<JSON
{ "node": { "name": "gw", "trustDomain": "$TD", "dataDir": "$TMP/gw-data" },
  "tls": { "certDir": "$TMP/gw" },
  "admin": { "address": "127.0.0.1:15000" },
  "mesh": { "expose": [ { "port": 8443, "allow": ["$N_ID"] } ] },
  "listeners": [ { "name": "mesh", "kind": "mesh", "address": "0.0.0.0:15008" },
                 { "name": "push", "kind": "push", "address": "0.0.0.0:8443" } ],
  "webpush": { "publicUrl": "$GW_URL", "sync": "normal",
               "topics": [ { "name": "news", "publishers": ["$(jq -r .publicKey vapid.json)"] } ] },
  "authorize": { "reverseAccept": ["$N_ID"], "reverseAcceptTrustDomain": false } }
JSON
NODE_ADMIN[n]=15001
cat >n.json <<JSON
{ "workers": 2,
  "node": { "name": "n", "trustDomain": "$TD", "dataDir": "$TMP/n-data" },
  "tls": { "certDir": "$TMP/n" },
  "admin": { "address": "127.0.0.1:15001" },
  "mesh": { "reconnectMin": "200ms", "reconnectMax": "1s" },
  "listeners": [ { "name": "push", "kind": "push", "address": "127.0.0.1:8444" } ],
  "webpush": { "sync": "normal",
               "gateway": { "target": "gw.mesh:8443", "peerId": "$GW_ID", "retryMin": "100ms", "retryMax": "1s" } },
  "upstreams": [ { "name": "gw", "address": "10.205.1.1:15008", "id": "$GW_ID" } ] }
JSON
mkdir -p gw-data n-data

spawn_node gw "$NS_GW"
await_node gw
spawn_node n "$NS_N"
await_node n

n_associated() { nadmin gw /nodes 2>/dev/null | grep -c "\"id\": \"$N_ID\"" >/dev/null; }
check "n associated with gw through the NAT (gw's /nodes)" wait_for "n in gw's /nodes" 100 n_associated

say "== subscribe at n: the subscription is made at gw through the mesh"
run subscribe ip netns exec "$NS_N" "$UGATED" push subscribe --server https://127.0.0.1:8444 --peer-id "$N_ID" \
  --state n.state >n-sub.json 2>subscribe.err || true
check "the endpoint an application server gets is gw's ($(jq -r .endpoint n-sub.json 2>/dev/null || cat subscribe.err))" \
  [ "$(jq -r --arg u "$GW_URL/push/" '(.endpoint | startswith($u)) and (.keys.auth | length == 22)' n-sub.json 2>/dev/null)" == true ]
# Nothing of n is reachable: it listens on loopback only (TCP and UDP).
nonloop=$(in_n ss -H -ltun | awk '{ print $5 }' | grep -v -E '^(127\.0\.0\.1|\[::1\]|\[::ffff:127\.0\.0\.1\]):' || true)
check "n listens on no address but loopback ($(in_n ss -H -ltun | awk '{print $5}' | tr '\n' ' '))" [ -z "$nonloop" ]
check "gw cannot dial n" bash -c "! ip netns exec $NS_GW curl -sk --max-time 2 https://10.205.2.2:8444/ >/dev/null 2>&1"

# send TEXT [TTL]: `ugated push send` from ns GW to n's endpoint at gw; prints the JSON answer.
send() {
  printf '%s' "$1" | in_gw "$UGATED" push send --subscription n-sub.json --vapid-key vapid.pem \
    --subject mailto:test@example.net --peer-id "$GW_ID" --ttl "${2:-600}" 2>>send.err || echo '{}'
}
# listen COUNT: the subscriber on n, until COUNT messages (bounded); prints its JSON lines.
listen() { in_n timeout 20 "$UGATED" push listen --state n.state --count "$1" 2>>listen.err || true; }

say "== messages sent while n is stopped"
stop_pid "${NODE_PID[n]}"
reap "${NODE_PID[n]}" 2>/dev/null || true
n_gone() { ! n_associated; }
wait_for "n unregistered at gw" 100 n_gone || true
ok=0
for i in 1 2 3 4 5; do
  if [[ $(send "offline message $i" | jq -r .status) == 201 ]]; then ok=$((ok + 1)); fi
done
expect_eq "gw accepted 5 messages for n while n was down" "$ok" 5
expired=$(send "short-lived" 1 | jq -r .location)
check "gw accepted one with TTL 1 s" [ "${expired#/m/}" != "$expired" ]
sleep 2  # its TTL runs out (a fact of the message, not a timing assertion)

spawn_node n "$NS_N"
await_node n
got=$(listen 5)
check "after n started again, its subscriber got the 5, in order, decrypted byte for byte" \
  [ "$(jq -r .payload <<<"$got" | tr '\n' '|')" == "offline message 1|offline message 2|offline message 3|offline message 4|offline message 5|" ]
check "... and not the expired one" bash -c "! grep -q short-lived <<<'$got'"
ids=$(jq -r .id <<<"$got" 2>/dev/null || true)

say "== live messages"
in_n timeout 20 "$UGATED" push listen --state n.state --count 3 >live.out 2>>listen.err &
LISTENER=$!
LIVE[$LISTENER]=listen
wait_for "the subscriber's stream at n" 50 bash -c "[ \$(ip netns exec $NS_N curl -s http://127.0.0.1:15001/stats | awk '\$1 == \"ugate_webpush_subscribers_connected\" {print \$2}') -ge 1 ]" || true
for i in 1 2 3; do send "live message $i" >/dev/null; done
reap "$LISTENER" || true
check "the 3 live messages reached the subscriber on n, in order" \
  [ "$(jq -r .payload live.out | tr '\n' '|')" == "live message 1|live message 2|live message 3|" ]
ids="$ids $(jq -r .id live.out 2>/dev/null || true)"

say "== exactly once after the acks"
gone=0
for mid in $ids; do
  st=$(in_gw curl -sk --max-time 5 -o /dev/null -w '%{http_code}' -X DELETE "$GW_URL/m/$mid" || true)
  if [[ "$st" == 404 ]]; then gone=$((gone + 1)); fi
done
expect_eq "gw forgot all 8 messages n acknowledged (DELETE /m/<mid> at gw: 404)" "$gone" 8
expect_eq "n's /stats: messages taken from gw (each once)" "$(metric n ugate_webpush_gateway_relayed_total)" 8
expect_ge "n's /stats: acknowledgements gw took" "$(metric n ugate_webpush_gateway_acks_total)" 3
kill -KILL "${NODE_PID[n]}"
reap "${NODE_PID[n]}" 2>/dev/null || true
spawn_node n "$NS_N"
await_node n
send "after the restart" >/dev/null
got=$(listen 1)
check "after a SIGKILL and restart of n, the next message is the only one delivered (nothing twice)" \
  [ "$(jq -r .payload <<<"$got")" == "after the restart" ]

say "== a topic of gw, followed from behind the NAT"
run subscribe-topic ip netns exec "$NS_N" "$UGATED" push subscribe --server https://127.0.0.1:8444 --peer-id "$N_ID" \
  --topic gw/news --state topic.state >topic-sub.json 2>>subscribe.err || true
check "n subscribed to gw/news through gw (endpoint at gw)" \
  [ "$(jq -r --arg u "$GW_URL/push/" '.endpoint | startswith($u)' topic-sub.json 2>/dev/null)" == true ]
pubd=$(printf 'news for n' | in_gw "$UGATED" push publish --server "$GW_URL" --peer-id "$GW_ID" --topic gw/news \
  --vapid-key vapid.pem --subject mailto:test@example.net --ttl 600 2>>send.err || true)
check "gw took the publish (201, $pubd)" [ "$(jq -r .status <<<"$pubd" 2>/dev/null)" == 201 ]
got=$(in_n timeout 20 "$UGATED" push listen --state topic.state --count 1 2>>listen.err || true)
check "the subscriber on n decrypts the topic message gw encrypted for it" [ "$(jq -r .payload <<<"$got" 2>/dev/null)" == "news for n" ]

say "== the relay's streams are routed like any other"
stop_pid "${NODE_PID[n]}"
reap "${NODE_PID[n]}" 2>/dev/null || true
jq '.routes = [ { "name": "no-gw", "match": { "host": "gw.mesh", "port": 8443 }, "to": "reject" } ]' n.json >n-reject.json
mv n-reject.json n.json
spawn_node n "$NS_N"
await_node n
st=$(in_n curl -sk --max-time 10 -o /dev/null -w '%{http_code}' -X POST https://127.0.0.1:8444/subscribe || true)
check "a route that rejects the gateway's mesh name: subscribe answers 502 ($st)" [ "$st" == 502 ]
check "... and n logged which route refused it" grep -q "route no-gw rejects streams to gw.mesh:8443" n.log

if ((FAIL > 0)); then
  for n in gw n; do
    say "---- $n log (last 15 lines) ----"
    tail -n 15 "$TMP/$n.log"
  done
fi
