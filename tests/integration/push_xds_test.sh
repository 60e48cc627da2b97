#!/usr/bin/env bash
# push_xds_test.sh: Web Push messages as xDS resources, end to end (issue 19 §2 "Messages";
# src/webpush/push_xds_feed.*, the MessageBox seam, the ADS server's ugate.v1.Message and the ADS
# client's `xds.client.messages`). Two ugated processes in a network namespace this script creates:
#
#   gw: mesh listener, the public push listener (application servers), a push listener that asks
#       for client certificates (exposed to the mesh) and the ADS server (xds.server, mutual TLS: a
#       client reads only its own mailbox)
#   n:  dials gw (mesh), webpush.gateway = gw's mTLS push listener, xds.client = gw's ADS server
#       with "messages": true, and its own loopback push listener for its local subscriber
#
# `ugated push subscribe --deliver xds` at n makes the subscription at gw for n's node ID (the relay
# presents n's certificate); 3 messages pushed to gw's endpoint reach n's local subscriber in order,
# decrypted, through gw's ADS server (n's xds client counted them; the relay streams nothing); after
# n's acks gw's store and its MessageBox hold none of them; a message pushed while n is down survives
# a restart of gw (reposted from its store) and arrives after n starts; a SIGKILL and restart of n
# delivers nothing twice; without a client certificate "deliver": "xds" is refused (403); gw's store
# never held a plaintext; an xDS client (grpc-js, tests/integration/mailbox_probe.js) with n's
# certificate sees n's mailbox as aes128gcm ciphertext, one with another node's sees nothing.
# Topic mailboxes: a subscription made at gw (through n, with n's identity) with "mailbox":
# "topic:grp" posts its messages, encrypted once to a group key, under topic:grp; two local
# subscriptions at n bound to topic:grp (xds.client.messages.topics) each decrypt both with the
# group key, in order; gw keeps them (no acks) until their TTL; after a restart n takes none again.
# No timing is asserted: waits are bounded polls.
#
# Needs root (a network namespace). The last line is "push_xds: N passed, M failed".
set -euo pipefail

readonly TEST_NAME=push_xds
readonly WATCHDOG_SECONDS=55
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in ip curl jq; do have "$tool" || skip_all "$tool not found (scripts/install-deps.sh installs it)"; done
[[ $(id -u) == 0 ]] || skip_all "needs root for a network namespace"

NS=ugpx-$$
test_cleanup() { ip netns del "$NS" 2>/dev/null || true; }
ip netns add "$NS" 2>/dev/null || skip_all "cannot create network namespaces here"
ip -n "$NS" link set lo up
in_ns() { ip netns exec "$NS" "$@"; }

start_tmp
cd "$TMP"
say "== identities (ugated: $UGATED)"
TD=pushxds.test
run ca-init "$UGATED" ca init --dir ca --trust-domain "$TD" >ca.log 2>&1
for n in gw n x; do
  run "issue-$n" "$UGATED" ca issue --dir ca --name "$n" --out "$n" --trust-domain "$TD" >"issue-$n.log" 2>&1
done
GW_ID=$(head -n1 issue-gw.log)
N_ID=$(head -n1 issue-n.log)
GW_URL=https://127.0.0.1:8443
"$UGATED" push vapid-keys --out vapid.pem >vapid.json

NODE_ADMIN[gw]=15000
cat >gw.json <<JSON
{ "node": { "name": "gw", "trustDomain": "$TD", "dataDir": "$TMP/gw-data" },
  "tls": { "certDir": "$TMP/gw" },
  "admin": { "address": "127.0.0.1:15000" },
  "mesh": { "expose": [ { "port": 8445, "allow": ["$N_ID"] } ] },
  "listeners": [ { "name": "mesh", "kind": "mesh", "address": "127.0.0.1:15008" },
                 { "name": "push", "kind": "push", "address": "127.0.0.1:8443" },
                 { "name": "pushm", "kind": "push", "address": "127.0.0.1:8445", "tls": { "requireClientCert": true } } ],
  "webpush": { "publicUrl": "$GW_URL", "sync": "normal" },
  "xds": { "server": { "address": "127.0.0.1:15010", "tls": {} } },
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
               "gateway": { "target": "gw.mesh:8445", "peerId": "$GW_ID", "retryMin": "100ms", "retryMax": "1s" } },
  "xds": { "client": { "address": "127.0.0.1:15010", "tls": { "peerIds": ["$GW_ID"] }, "messages": { "topics": ["grp"] },
                       "backoff": { "min": "100ms", "max": "1s" } } },
  "upstreams": [ { "name": "gw", "address": "127.0.0.1:15008", "id": "$GW_ID" } ] }
JSON
mkdir -p gw-data n-data

spawn_node gw "$NS"
await_node gw
spawn_node n "$NS"
await_node n
n_associated() { nadmin gw /nodes 2>/dev/null | grep -c "\"id\": \"$N_ID\"" >/dev/null; }
check "n associated with gw (gw's /nodes)" wait_for "n in gw's /nodes" 100 n_associated

say "== subscribe at n with delivery over xDS"
st=$(in_ns curl -sk --max-time 5 -o refused.txt -w '%{http_code}' -X POST -d '{"deliver":"xds"}' "$GW_URL/subscribe" || true)
check "deliver xds without a client certificate: 403 ($(cat refused.txt 2>/dev/null))" \
  bash -c "[ '$st' == 403 ] && grep -q deliver_xds_needs_identity refused.txt"
run subscribe in_ns "$UGATED" push subscribe --server https://127.0.0.1:8444 --peer-id "$N_ID" --deliver xds \
  --state n.state >n-sub.json 2>subscribe.err || true
check "the endpoint an application server gets is gw's ($(jq -r .endpoint n-sub.json 2>/dev/null || cat subscribe.err))" \
  [ "$(jq -r --arg u "$GW_URL/push/" '.endpoint | startswith($u)' n-sub.json 2>/dev/null)" == true ]
check "gw made it for n's node ID" grep -q "for node $N_ID: its messages go out as xDS resources" gw.log

# send MESSAGE [SUBSCRIPTION [TTL]]
send() {
  printf '%s' "$1" | in_ns "$UGATED" push send --subscription "${2:-n-sub.json}" --vapid-key vapid.pem \
    --subject mailto:test@example.net --peer-id "$GW_ID" --ttl "${3:-600}" 2>>send.err || echo '{}'
}
listen() { in_ns timeout 20 "$UGATED" push listen --state n.state --count "$1" 2>>listen.err || true; }
connected() { [ "$(metric n ugate_webpush_subscribers_connected)" -ge 1 ]; }

say "== 3 messages pushed at gw reach n's subscriber over xDS"
in_ns timeout 20 "$UGATED" push listen --state n.state --count 3 >live.out 2>>listen.err &
LISTENER=$!
LIVE[$LISTENER]=listen
wait_for "the subscriber's stream at n" 50 connected || true
for i in 1 2 3; do send "xds message $i" >/dev/null; done
reap "$LISTENER" || true
check "n's subscriber decrypted exactly the 3, in order ($(tr '\n' ' ' <live.out))" \
  [ "$(jq -r .payload live.out | tr '\n' '|')" == "xds message 1|xds message 2|xds message 3|" ]
expect_eq "gw posted 3 messages for xDS (/stats)" "$(metric gw ugate_webpush_xds_posted_total)" 3
expect_eq "n's ADS client received 3 envelopes (/stats)" "$(metric n ugate_xds_client_messages_total)" 3
expect_eq "... all ciphertext that passed its checks: no NACK" "$(metric n ugate_xds_client_nacks_total)" 0
expect_eq "n stored the 3 from xDS" "$(metric n ugate_webpush_xds_taken_total)" 3
expect_eq "the relay streamed nothing (no delivery stream at gw)" "$(metric gw ugate_webpush_subscribers_connected)" 0
expect_eq "n asked for no other node's mailbox" "$(metric gw ugate_xds_mailboxes_refused_total)" 0

say "== after the acks gw holds none of them"
boxed_empty() { [ "$(metric gw ugate_xds_messages_boxed)" == 0 ]; }
check "gw's MessageBox is empty (its ADS resources dropped them)" wait_for "gw's box empty" 50 boxed_empty
gone=0
for mid in $(jq -r .id live.out); do
  st=$(in_ns curl -sk --max-time 5 -o /dev/null -w '%{http_code}' -X DELETE "$GW_URL/m/$mid" || true)
  [[ "$st" == 404 ]] && gone=$((gone + 1))
done
expect_eq "gw's store forgot the 3 (DELETE /m/<mid> at gw: 404)" "$gone" 3

say "== a message pushed while n is down, across a restart of gw"
stop_pid "${NODE_PID[n]}"
reap "${NODE_PID[n]}" 2>/dev/null || true
check "gw took it (201)" [ "$(send 'while n was down' | jq -r .status)" == 201 ]
stop_pid "${NODE_PID[gw]}"
reap "${NODE_PID[gw]}" 2>/dev/null || true
spawn_node gw "$NS"
await_node gw
boxed_one() { [ "$(metric gw ugate_xds_messages_boxed)" == 1 ]; }
check "gw reposted it from its store into the MessageBox" wait_for "gw's box" 50 boxed_one
# What an xDS client sees of n's mailbox (grpc-js over mutual TLS), installed into the build tree
# once, under the lock the xds tests use, so the check does not depend on which test ran first.
NPM_DIR=$(dirname "$UGATED")/npm
NPM=$NPM_DIR/node_modules
if have node && have npm && [[ ! -f "$NPM/@grpc/grpc-js/package.json" ]]; then
  mkdir -p "$NPM_DIR"
  flock "$NPM_DIR/.install.lock" sh -c "test -f '$NPM/@grpc/grpc-js/package.json' || npm install --no-audit --no-fund --prefix '$NPM_DIR' @grpc/grpc-js@1.14" >/dev/null 2>&1 || true
fi
if have node && [[ -f "$NPM/@grpc/grpc-js/package.json" ]]; then
  probe() {
    NODE_PATH=$NPM in_ns node "$TESTS_DIR/mailbox_probe.js" 15010 "$TESTS_DIR/../../src/xds/proto" n/root-cert.pem \
      "$1/cert-chain.pem" "$1/key.pem" "$N_ID" 'while n was down' 2>>probe.err || true
  }
  got=$(probe n)
  check "with n's certificate: n's mailbox, one aes128gcm envelope, no plaintext ($got)" \
    [ "$got" == "mailbox $N_ID n=1 encodings=aes128gcm plaintext=no" ]
  got=$(probe x)
  check "with another node's certificate: nothing of n's mailbox ($got)" [ "$got" == none ]
  expect_ge "... left out and counted at gw" "$(metric gw ugate_xds_mailboxes_refused_total)" 1
else
  skip "mailbox probe: node, or npm to install @grpc/grpc-js into the build tree, missing"
fi
spawn_node n "$NS"
await_node n
got=$(listen 1)
check "n's subscriber got it after n started ($got)" [ "$(jq -r .payload <<<"$got" 2>/dev/null)" == "while n was down" ]
check "... and gw dropped it after n's ack" wait_for "gw's box empty" 50 boxed_empty

say "== nothing twice"
kill -KILL "${NODE_PID[n]}"
reap "${NODE_PID[n]}" 2>/dev/null || true
spawn_node n "$NS"
await_node n
send "after the restart" >/dev/null
got=$(listen 1)
check "after a SIGKILL and restart of n, the next message is the only one delivered ($got)" \
  [ "$(jq -r .payload <<<"$got" 2>/dev/null)" == "after the restart" ]

say "== a topic mailbox: encrypted once to a group key, read by two local subscriptions at n"
SUB=${UGATE_PUSH_SUBSCRIBER:-$(dirname "$UGATED")/tests/ugate_push_subscriber}
"$SUB" keys grp.key >grp-keys.json
nsub() { in_ns curl -sk --max-time 10 -o "$2" -w '%{http_code}' -X POST -d "$1" https://127.0.0.1:8444/subscribe || true; }
st=$(nsub '{"deliver":"xds","mailbox":"topic:grp"}' grp-gw.json)
check "n made the topic's subscription at gw ($st $(cat grp-gw.json))" [ "$st" == 201 ]
check "gw: by n's node ID, posting to topic:grp" grep -q "by node $N_ID: its messages go out to xDS mailbox topic:grp" gw.log
jq --slurpfile k grp-keys.json '{endpoint: .endpoint, keys: $k[0]}' grp-gw.json >grp-sub.json
st=$(nsub '{"mailbox":"topic:other"}' other.json)
check "a topic n does not read: 400 ($(cat other.json))" bash -c "[ '$st' == 400 ] && grep -q mailbox_not_read other.json"
for r in r1 r2; do
  st=$(nsub '{"mailbox":"topic:grp"}' "$r.json")
  check "local subscription $r at n bound to topic:grp ($st)" [ "$st" == 201 ]
  jq --arg id "$N_ID" --rawfile key grp.key --slurpfile k grp-keys.json \
    '{server: "https://127.0.0.1:8444", trust: {peerId: $id}, endpoint: .endpoint, receive: .receive,
      p256dh: $k[0].p256dh, auth: $k[0].auth, privateKey: ($key | split("\n")[0])}' "$r.json" >"$r.state"
done
posted0=$(metric gw ugate_webpush_xds_posted_total)
taken0=$(metric n ugate_webpush_xds_taken_total)
boxed0=$(metric gw ugate_xds_messages_boxed)
pids=()
for r in r1 r2; do
  in_ns timeout 20 "$UGATED" push listen --state "$r.state" --count 2 >"$r.out" 2>>listen.err &
  pids+=($!)
  LIVE[$!]=listen
done
two_connected() { [ "$(metric n ugate_webpush_subscribers_connected)" -ge 2 ]; }
wait_for "both local subscribers' streams at n" 50 two_connected || true
for i in 1 2; do send "topic message $i" grp-sub.json >/dev/null; done
for p in "${pids[@]}"; do reap "$p" || true; done
for r in r1 r2; do
  check "$r decrypted both with the group key, in order ($(tr '\n' ' ' <"$r.out"))" \
    [ "$(jq -r .payload "$r.out" | tr '\n' '|')" == "topic message 1|topic message 2|" ]
done
expect_eq "gw posted the 2 once each (/stats)" "$(($(metric gw ugate_webpush_xds_posted_total) - posted0))" 2
expect_eq "n stored 2 copies of each, one per local subscription" "$(($(metric n ugate_webpush_xds_taken_total) - taken0))" 4
expect_eq "gw's box still holds both: readers do not acknowledge" "$(($(metric gw ugate_xds_messages_boxed) - boxed0))" 2
kill -KILL "${NODE_PID[n]}"
reap "${NODE_PID[n]}" 2>/dev/null || true
spawn_node n "$NS"
await_node n
got_mailbox() { [ "$(metric n ugate_xds_client_messages_total)" -ge 2 ]; }
check "after a restart n receives the topic mailbox again" wait_for "n's mailbox" 50 got_mailbox
send "short-lived" grp-sub.json 4 >/dev/null
# The store takes copies in order: once the new message's 2 are in, the old ones were looked at.
took_new() { [ "$(metric n ugate_webpush_xds_taken_total)" -ge 2 ]; }
wait_for "n took the new message" 50 took_new || true
expect_eq "... and stores only the new one, once per subscription (nothing twice)" "$(metric n ugate_webpush_xds_taken_total)" 2
expired() { [ "$(metric gw ugate_xds_messages_boxed)" == "$((boxed0 + 2))" ] && [ "$(metric gw ugate_webpush_xds_posted_total)" == "$((posted0 + 3))" ]; }
check "a topic message leaves gw's box at its TTL (4 s)" wait_for "gw's box back to 2" 100 expired
check "gw's store never held a plaintext" bash -c "! grep -rq 'xds message\|while n was down\|after the restart\|topic message' gw-data"

if ((FAIL > 0)); then
  for n in gw n; do
    say "---- $n log (last 20 lines) ----"
    tail -n 20 "$TMP/$n.log"
  done
fi
