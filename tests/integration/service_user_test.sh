#!/usr/bin/env bash
# service_user_test.sh: what configs/systemd/ugated.service relies on, without systemd: the state
# directory and a service user that is not root. Loopback only.
#
#   bash service_user_test.sh /path/to/ugated
#
# 1. $STATE_DIRECTORY (set by systemd for StateDirectory=ugate) stands in for an unset node.dataDir:
#    - a TLS listener without node.dataDir is refused (--check-config and startup) when it is unset;
#    - with it set, --check-config passes without writing, and ugated creates its identity there
#      (kube.json 0600 in a 0700 directory) and logs where the directory came from;
#    - an explicit node.dataDir wins; the default configuration writes nothing into it.
# 2. As root: `ugated ca issue --owner nobody` and `ugated id --owner nobody` hand the identity
#    files and their directory to nobody with modes 0600/0700 (nobody can read the key, another
#    unprivileged user cannot); an unknown user and a caller who is not root get clear errors and no
#    files; a re-issue by root without --owner keeps nobody as the owner. Then ugated runs as nobody
#    (setpriv) with $STATE_DIRECTORY pointing at the issued directory, reads its credentials and
#    serves mutual TLS to openssl s_client.
# Part 2 is skipped (and said so) when not run as root or without setpriv, openssl or python3.
#
# Every process is tracked by PID and ended in the EXIT trap; the temp dir is removed
# (SERVICE_USER_KEEP_TMP=1 keeps it). The last line is "service_user: N passed, M failed".
set -euo pipefail

readonly TEST_NAME=service_user
readonly WATCHDOG_SECONDS=90
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start_tmp
cd "$TMP"
TD=svc.test
unset STATE_DIRECTORY

# mode PATH / owner PATH: octal mode and user:group of a file.
mode() { command stat -c %a "$1"; }
owner() { command stat -c %U:%G "$1"; }
expect_str() { if [[ "$2" == "$3" ]]; then pass "$1"; else failed "$1: got '$2', want '$3'"; fi; }
# start_with ENV...: run ugated on $TMP/ugated.json under `env ENV...` (log in ugated.log).
start_with() {
  spawn ugated env "$@" "$UGATED" -c "$TMP/ugated.json" >"$TMP/ugated.log" 2>&1
  UGATED_PID=$SPAWNED
}
stop_ugated() {
  stop_pid "$UGATED_PID"
  unset "LIVE[$UGATED_PID]"
  mv "$TMP/ugated.log" "$TMP/ugated-$1.log"
}
# tls_config NAME [NODE_EXTRA [LISTENER_TLS]]: a config with a TLS listener NAME (port 0, mutual
# unless LISTENER_TLS says otherwise) in front of the HTTP backend, admin on port 0, and no
# node.dataDir unless NODE_EXTRA adds it.
tls_config() {
  cat <<EOF
{ "workers": 1,
  "node": { "name": "n1", "trustDomain": "$TD"${2:+, $2} },
  "admin": { "address": "127.0.0.1:0" },
  "listeners": [ { "name": "$1", "kind": "tcp", "address": "127.0.0.1:0",
                   "to": "127.0.0.1:${HTTP_PORT:-1}", "tls": ${3:-{\}} } ] }
EOF
}

say "== \$STATE_DIRECTORY stands in for an unset node.dataDir (ugated: $UGATED)"
# A self-signed node has nobody to trust yet: its listener asks for no client certificate.
SERVER_ONLY='{ "requireClientCert": false }'
tls_config svc "" "$SERVER_ONLY" >tls.json
rc=0
"$UGATED" --check-config tls.json >check.out 2>&1 || rc=$?
expect_eq "--check-config without node.dataDir nor \$STATE_DIRECTORY fails" "$rc" 2
# shellcheck disable=SC2016  # a literal $STATE_DIRECTORY in the message
check "... naming node.dataDir and the systemd way to provide it" \
  grep -q 'node.dataDir: required when a listener or route uses TLS.*StateDirectory= provides it through \$STATE_DIRECTORY' check.out
rc=0
STATE_DIRECTORY="$TMP/state1" "$UGATED" --check-config tls.json >check2.out 2>&1 || rc=$?
expect_eq "--check-config with \$STATE_DIRECTORY set passes" "$rc" 0
check "--check-config wrote nothing into the state directory" [ ! -e "$TMP/state1" ]

cp tls.json ugated.json
rc=0
run ugated-nostate "$UGATED" -c ugated.json >nostate.log 2>&1 || rc=$?
expect_eq "ugated without node.dataDir nor \$STATE_DIRECTORY refuses to start (today's behaviour)" "$rc" 2
check "... and says why" grep -q 'config: node.dataDir: required' nostate.log

# systemd creates the state directory (0700, the service user's) before it starts the service.
mkdir -m 0700 state1
# Several StateDirectory= entries are joined by ':': the first one is node.dataDir.
start_with STATE_DIRECTORY="$TMP/state1:$TMP/other"
await_admin_port
await_ugated_ready
check "ugated logged that node.dataDir came from \$STATE_DIRECTORY" \
  grep -q "node.dataDir: $TMP/state1 (from \$STATE_DIRECTORY; the config sets none)" ugated.log
check "the identity was created in the state directory (kube.json)" [ -f state1/kube.json ]
expect_str "kube.json is private" "$(mode state1/kube.json)" 600
expect_str "the state directory stays 0700" "$(mode state1)" 700
check "nothing went to the second state directory" [ ! -e "$TMP/other" ]
id1=$(sed -n 's/.*tls: identity: node ID \([A-Z2-7]\{52\}\) from .*/\1/p' ugated.log | head -n1)
id1_cli=$("$UGATED" id --data-dir state1 --name n1 --trust-domain "$TD" 2>/dev/null | head -n1)
check "the served node ID ($id1) is the one in the state directory" [ -n "$id1" -a "$id1" = "$id1_cli" ]
dump=$(admin /config_dump || true)
check "/config_dump shows the file as written (no dataDir injected)" [ -n "$dump" -a "${dump/dataDir/}" = "$dump" ]
stop_ugated state1

tls_config svc "\"dataDir\": \"$TMP/explicit\"" "$SERVER_ONLY" >ugated.json
mkdir -m 0700 state2
start_with STATE_DIRECTORY="$TMP/state2"
await_admin_port
await_ugated_ready
check "an explicit node.dataDir wins: identity there" [ -f explicit/kube.json ]
check "... and the state directory is left empty" [ -z "$(ls -A state2)" ]
# shellcheck disable=SC2016  # $1 expands in the inner bash
check "... and nothing is logged about \$STATE_DIRECTORY" bash -c '! grep -qF "from \$STATE_DIRECTORY" "$1"' _ "$TMP/ugated.log"
stop_ugated explicit

# The embedded default (printed, with the admin port made 0 so parallel tests do not collide).
"$UGATED" --print-default-config | sed 's/127\.0\.0\.1:15000/127.0.0.1:0/' >ugated.json
check "the default configuration sets no node.dataDir" bash -c "! grep -q dataDir '$TMP/ugated.json'"
mkdir -m 0700 state3
start_with STATE_DIRECTORY="$TMP/state3"
await_admin_port
await_ugated_ready
check "the default configuration (no TLS) writes nothing into the state directory" [ -z "$(ls -A state3)" ]
stop_ugated default

# ---- part 2: the service user -------------------------------------------------------------------
missing=""
((EUID == 0)) || missing="root"
for tool in setpriv openssl python3; do have "$tool" || missing+="${missing:+, }$tool"; done
getent passwd nobody >/dev/null || missing+="${missing:+, }user nobody"
if [[ -n "$missing" ]]; then
  skip "the service-user part needs $missing"
  exit 0
fi
HAVE_PY=1
NOBODY_GROUP=$(id -gn nobody)
# nobody must be able to walk into the temp dir (not list it) to reach its state directory.
chmod 0711 "$TMP"
# nobody runs its own copy of the binary: the build tree may sit where nobody cannot reach it (a
# clone in root's 0700 home), and the test is about the state directory, not the build tree.
NOBODY_UGATED="$TMP/ugated-for-nobody"
install -m 0755 "$UGATED" "$NOBODY_UGATED"
as_nobody() { setpriv --reuid=nobody --regid="$NOBODY_GROUP" --clear-groups "$@"; }
# another unprivileged user, to show that the key is private to nobody
OTHER=daemon
getent passwd "$OTHER" >/dev/null || OTHER=""

say "== ugated ca issue / id --owner"
run ca-init "$UGATED" ca init --dir ca --trust-domain "$TD" >ca.log 2>&1
rc=0
run issue-unknown "$UGATED" ca issue --dir ca --name n1 --out svc --owner no-such-user-ugate >unknown.log 2>&1 || rc=$?
expect_eq "--owner with an unknown user fails" "$rc" 1
check "... saying which user is unknown" grep -q "error: --owner: unknown user 'no-such-user-ugate'" unknown.log
check "... before writing anything" [ ! -e svc ]
rc=0
as_nobody "$NOBODY_UGATED" ca issue --dir ca --name n1 --out "$TMP/x" --owner root >notroot.log 2>&1 || rc=$?
expect_eq "--owner by a user who is not root fails" "$rc" 1
check "... saying that only root can give files away" \
  grep -q "only root (a process with CAP_CHOWN) can give files to another user" notroot.log
check "... before writing anything" [ ! -e x ]

# The service's state directory, as systemd would have made it: 0700 and the service user's.
mkdir -m 0700 svc
run issue "$UGATED" ca issue --dir ca --name n1 --out svc --owner nobody >issue.log 2>&1
N1_ID=$(head -n1 issue.log)
check "ca issue --owner printed the node ID first (${N1_ID:0:12}...)" [ "${#N1_ID}" -eq 52 ]
check "... and said what it gave to whom" grep -q "gave svc and 3 files in it to nobody:$NOBODY_GROUP" issue.log
for f in svc svc/key.pem svc/cert-chain.pem svc/root-cert.pem; do
  expect_str "$f belongs to nobody:$NOBODY_GROUP" "$(owner "$f")" "nobody:$NOBODY_GROUP"
done
expect_str "svc stays 0700" "$(mode svc)" 700
expect_str "svc/key.pem stays 0600" "$(mode svc/key.pem)" 600
nobody_reads() { as_nobody cat "$1" >/dev/null; }
check "nobody can read the key" nobody_reads "$TMP/svc/key.pem"
if [[ -n "$OTHER" ]]; then
  check "another unprivileged user ($OTHER) cannot" bash -c "! setpriv --reuid=$OTHER --regid=$OTHER --clear-groups cat '$TMP/svc/key.pem' 2>/dev/null"
fi
# A re-issue by root without --owner (a certificate renewal) must not leave root-owned files behind.
run reissue "$UGATED" ca issue --dir ca --name n1 --out svc >reissue.log 2>&1
expect_str "a re-issue keeps the node ID" "$(head -n1 reissue.log)" "$N1_ID"
expect_str "a re-issue by root without --owner keeps nobody as the key's owner" "$(owner svc/key.pem)" "nobody:$NOBODY_GROUP"
expect_str "... and the chain's" "$(owner svc/cert-chain.pem)" "nobody:$NOBODY_GROUP"

run id-owner "$UGATED" id --data-dir idn --owner nobody >id.out 2>id.err
check "id --owner said what it gave to whom" grep -q "gave idn and 1 file in it to nobody:$NOBODY_GROUP" id.err
expect_str "id --owner: the new data directory belongs to nobody" "$(owner idn)" "nobody:$NOBODY_GROUP"
expect_str "id --owner: kube.json belongs to nobody" "$(owner idn/kube.json)" "nobody:$NOBODY_GROUP"
expect_str "id --owner: modes 0700/0600" "$(mode idn)/$(mode idn/kube.json)" 700/600
expect_str "nobody reads the same node ID with ugated id" \
  "$(as_nobody "$NOBODY_UGATED" id --data-dir "$TMP/idn" 2>/dev/null | head -n1)" "$(head -n1 id.out)"

say "== ugated as nobody serves from its state directory"
run issue-client "$UGATED" ca issue --dir ca --name client --out client >client.log 2>&1
mkdir -p www
printf 'hello from the backend\n' >www/hello.txt
read -r HTTP_PORT < <(free_ports 1)
spawn http-backend python3 -m http.server --bind 127.0.0.1 --directory "$TMP/www" "$HTTP_PORT" >http.log 2>&1
wait_for "http backend" 50 listening "$HTTP_PORT"
tls_config svc >ugated.json
chmod 0644 ugated.json
# No capability at all: everything is on ports >= 1024.
spawn ugated env STATE_DIRECTORY="$TMP/svc" setpriv --reuid=nobody --regid="$NOBODY_GROUP" --clear-groups \
  --inh-caps=-all --bounding-set=-all "$NOBODY_UGATED" -c "$TMP/ugated.json" >"$TMP/ugated.log" 2>&1
UGATED_PID=$SPAWNED
await_admin_port
await_ugated_ready
expect_str "ugated runs as uid 65534 (nobody)" \
  "$(awk '/^Uid:/ { print $3 }' "/proc/$UGATED_PID/status")" "$(id -u nobody)"
check "it read the issued credentials from \$STATE_DIRECTORY (node ID ${N1_ID:0:12}...)" \
  grep -q "tls: identity: node ID $N1_ID from $TMP/svc" ugated.log
SVC_PORT=$(ugated_port svc)
reply=$(printf 'GET /hello.txt HTTP/1.0\r\n\r\n' |
  timeout 10 openssl s_client -connect "127.0.0.1:$SVC_PORT" -servername "n1.$TD" -CAfile ca/ca-cert.pem \
    -cert client/cert-chain.pem -key client/key.pem -verify_return_error -quiet 2>s_client.err || true)
check "openssl s_client (mutual TLS, CA-issued client) is served by ugated running as nobody" \
  grep -q "hello from the backend" <<<"$reply"
check "openssl verified the server chain to the CA" grep -q "verify return:1" s_client.err
