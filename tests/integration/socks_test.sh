#!/usr/bin/env bash
# socks_test.sh: ugated's `socks5` and `http-connect` listeners against REAL clients, loopback only.
#
#   bash socks_test.sh /path/to/ugated
#
# (1) curl through ugated to a local python3 http.server (sha256 checked): --socks5, --socks5-hostname,
#     -x socks5h://user:pass@, --socks4, --socks4a, -p -x http:// (CONNECT, with and without Basic
#     auth), and a raw SOCKS5 CONNECT to [::1] (ATYP 04).
# (2) failures, with the reply byte read by a small python3 client: wrong password (RFC 1929 status
#     01), no acceptable method (FF), refused target (REP 05 / HTTP 502), route reject (REP 02 /
#     HTTP 403), missing proxy auth (HTTP 407), BIND (REP 07; UDP ASSOCIATE: socks_udp_test.sh), bad ATYP (REP 08),
#     connect timeout (REP 06 / HTTP 504) against a listener whose accept queue is full.
# (3) 50 parallel SOCKS5 and 50 parallel CONNECT clients.
# (4) config validation: a non-loopback proxy without users is refused unless allowOpenProxy.
# (5) requested names without a route are dialled (resolved by ugated's async resolver; a name that
#     does not resolve answers REP 04), and absolute-URI proxying (`curl -x http://...` without -p)
#     forwards the request rewritten to origin-form with Connection: close.
#
# Every process this script starts is tracked by PID and ended in the EXIT trap (only those PIDs);
# the temp dir is removed; a watchdog bounds the run. The last line is always
# "socks: N passed, M failed". SOCKS_KEEP_TMP=1 keeps the temp dir for debugging.
set -euo pipefail

readonly TEST_NAME=socks
readonly WATCHDOG_SECONDS=50
# The shared harness: counters, process tracking, EXIT trap, argument check, temp dir and
# watchdog, free ports, ugated start and /ready.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Both peers are required: every case here needs curl or the python3 SOCKS client and backends.
for tool in curl python3; do
  if ! have "$tool"; then
    say "socks: $tool not found (scripts/install-deps.sh installs it)" >&2
    exit 2
  fi
done
HAVE_PY=1

start_tmp

read -r SOCKS SOCKS_AUTH HTTPC HTTPC_AUTH SLOW_SOCKS SLOW_HTTPC BE_HTTP BE_HTTP6 CLOSED BLACKHOLE \
  REJECT_PORT CHECK_PORT < <(free_ports 12)

say "== setup (ugated: $UGATED)"
WWW="$TMP/www"
mkdir -p "$WWW" "$TMP/dl"
head -c $((1024 * 1024)) /dev/urandom >"$WWW/big.bin"
say "hello through a proxy, $(date -u +%s)" >"$WWW/small.txt"
BIG_SHA=$(sha "$WWW/big.bin")
SMALL=$(cat "$WWW/small.txt")

# The SOCKS client used where the reply byte matters (curl only says "failed").
#   socks_client.py PORT v5 CMD ATYP HOST PORT [USER PASS]   -> "method=XX auth=XX rep=XX"
#   socks_client.py PORT v4 HOST PORT                        -> "cd=XX"
cat >"$TMP/socks_client.py" <<'EOF'
import ipaddress, socket, struct, sys

def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            break
        b += c
    return b

port, ver = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port), timeout=10)
out = []
try:
    if ver == "v4":
        host, dport = sys.argv[3], int(sys.argv[4])
        s.sendall(b"\x04\x01" + struct.pack(">H", dport) + socket.inet_aton(host) + b"\x00")
        r = recv_exact(s, 8)
        out.append("cd=%02x" % r[1] if len(r) == 8 else "cd=none")
    else:
        cmd, atyp, host, dport = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], int(sys.argv[6])
        user = sys.argv[7].encode() if len(sys.argv) > 7 else None
        pw = sys.argv[8].encode() if len(sys.argv) > 8 else b""
        s.sendall(b"\x05\x01" + (b"\x02" if user else b"\x00"))
        r = recv_exact(s, 2)
        out.append("method=%02x" % r[1] if len(r) == 2 else "method=none")
        if len(r) == 2 and r[1] == 2:
            s.sendall(b"\x01" + bytes([len(user)]) + user + bytes([len(pw)]) + pw)
            r = recv_exact(s, 2)
            out.append("auth=%02x" % r[1] if len(r) == 2 else "auth=none")
            if len(r) != 2 or r[1] != 0:
                raise SystemExit
        elif len(r) != 2 or r[1] != 0:
            raise SystemExit
        if atyp == 1:
            addr = socket.inet_aton(host)
        elif atyp == 4:
            addr = ipaddress.IPv6Address(host).packed
        elif atyp == 3:
            addr = bytes([len(host)]) + host.encode()
        else:
            addr = b"\x7f\x00\x00\x01"
        s.sendall(bytes([5, cmd, 0, atyp]) + addr + struct.pack(">H", dport))
        r = recv_exact(s, 4)
        out.append("rep=%02x" % r[1] if len(r) >= 2 else "rep=none")
        if len(r) == 4 and r[1] == 0 and cmd == 1:
            # Connected: one HTTP request over the tunnel proves bytes flow.
            tail = {1: 6, 4: 18}.get(r[3], 0)
            if r[3] == 3:
                tail = recv_exact(s, 1)[0] + 2
            recv_exact(s, tail)
            s.sendall(b"GET /small.txt HTTP/1.0\r\n\r\n")
            body = b""
            while True:
                c = s.recv(65536)
                if not c:
                    break
                body += c
            out.append("http=" + body.split(b"\r\n", 1)[0].decode(errors="replace").replace(" ", "_"))
finally:
    print(" ".join(out))
    s.close()
EOF

# A TCP listener whose accept queue is full and never accepted: SYNs to it are dropped, so a
# connect to it times out (how the connect-timeout replies are provoked without leaving loopback).
cat >"$TMP/blackhole.py" <<'EOF'
import socket, sys, time
l = socket.socket()
l.bind(("127.0.0.1", int(sys.argv[1])))
l.listen(0)
fill = []
for _ in range(4):
    c = socket.socket()
    c.setblocking(False)
    try:
        c.connect(("127.0.0.1", int(sys.argv[1])))
    except BlockingIOError:
        pass
    fill.append(c)
print("ready", flush=True)
time.sleep(3600)
EOF

spawn http-server python3 -u -m http.server --bind 127.0.0.1 --directory "$WWW" "$BE_HTTP" >"$TMP/http.log" 2>&1
if ((HAVE_V6)); then
  spawn http6-server python3 -u -m http.server --bind ::1 --directory "$WWW" "$BE_HTTP6" >"$TMP/http6.log" 2>&1
fi
spawn blackhole python3 -u "$TMP/blackhole.py" "$BLACKHOLE" >"$TMP/blackhole.log" 2>&1

# Names: `web.test` is routed to the local server (route matching on the requested host); the
# router does not yet dial arbitrary requested names (see (5)), so `localhost` is probed below.
# DNS goes to a closed loopback port: `localhost` comes from /etc/hosts, every other name fails
# without a packet leaving the host.
cat >"$TMP/ugated.json" <<EOF
{
  "workers": 2,
  "admin": {"enabled": false},
  "limits": {"connectTimeout": "5s", "drainTimeout": "2s"},
  "dns": {"servers": ["127.0.0.1:$CLOSED"], "timeout": "1s"},
  "log": {"level": "info", "accessLog": "$TMP/access.log"},
  "listeners": [
    {"name": "socks", "kind": "socks5", "address": "127.0.0.1:$SOCKS", "to": "original"},
    {"name": "socks-auth", "kind": "socks5", "address": "127.0.0.1:$SOCKS_AUTH", "to": "original",
     "users": [{"username": "alice", "password": "s3cret"}, {"username": "bob", "password": "hunter2"}]},
    {"name": "httpc", "kind": "http-connect", "address": "127.0.0.1:$HTTPC", "to": "original"},
    {"name": "httpc-auth", "kind": "http-connect", "address": "127.0.0.1:$HTTPC_AUTH", "to": "original",
     "users": [{"username": "alice", "password": "s3cret"}]},
    {"name": "slow-socks", "kind": "socks5", "address": "127.0.0.1:$SLOW_SOCKS", "to": "original",
     "connectTimeout": "1s"},
    {"name": "slow-httpc", "kind": "http-connect", "address": "127.0.0.1:$SLOW_HTTPC", "to": "original",
     "connectTimeout": "1s"}
  ],
  "routes": [
    {"name": "blocked", "match": {"host": "blocked.test"}, "to": "reject"},
    {"name": "blocked-port", "match": {"port": $REJECT_PORT}, "to": "reject"},
    {"name": "web", "match": {"host": "web.test"}, "to": "127.0.0.1:$BE_HTTP"}
  ]
}
EOF

start_ugated
up() {
  local p
  for p in "$SOCKS" "$SOCKS_AUTH" "$HTTPC" "$HTTPC_AUTH" "$SLOW_SOCKS" "$SLOW_HTTPC" "$BE_HTTP"; do
    listening "$p" || return 1
  done
  ((HAVE_V6 == 0)) || listening "$BE_HTTP6" 6 || return 1
  grep -q ready "$TMP/blackhole.log"
}
if ! wait_for "ugated and the backends" 50 up; then
  failed "ugated or a backend did not start"
  exit 1
fi
pass "ugated is up (pid $UGATED_PID)"

CURL=(curl -sS --max-time 10)
sc() { run socks-client python3 "$TMP/socks_client.py" "$@" 2>&1 || true; }
# expect_has DESC GOT WANT: GOT contains WANT.
expect_has() {
  if [[ "$2" == *"$3"* ]]; then pass "$1 ($3)"; else failed "$1: got '$2', want '$3'"; fi
}
# fetch DESC FILE CURL-ARGS...: download FILE through the given proxy options; sha256 must match.
fetch() {
  local desc=$1 file=$2 out="$TMP/dl/$RANDOM.$RANDOM"
  shift 2
  if run curl "${CURL[@]}" -o "$out" "$@" && [[ "$(sha "$out")" == "$(sha "$WWW/$file")" ]]; then
    pass "$desc"
  else
    failed "$desc"
  fi
  rm -f "$out"
}

say "== (1) curl through the proxies"
fetch "curl --socks5 (IPv4, client resolves)" big.bin --socks5 "127.0.0.1:$SOCKS" "http://127.0.0.1:$BE_HTTP/big.bin"
fetch "curl --socks5-hostname (name routed by host)" big.bin --socks5-hostname "127.0.0.1:$SOCKS" "http://web.test:$BE_HTTP/big.bin"
fetch "curl -x socks5h://alice:s3cret@ (RFC 1929)" big.bin -x "socks5h://alice:s3cret@127.0.0.1:$SOCKS_AUTH" "http://web.test:$BE_HTTP/big.bin"
fetch "curl -x socks5://bob:hunter2@ (second user)" small.txt -x "socks5://bob:hunter2@127.0.0.1:$SOCKS_AUTH" "http://127.0.0.1:$BE_HTTP/small.txt"
fetch "curl --socks4" small.txt --socks4 "127.0.0.1:$SOCKS" "http://127.0.0.1:$BE_HTTP/small.txt"
fetch "curl --socks4a (name)" small.txt --socks4a "127.0.0.1:$SOCKS" "http://web.test:$BE_HTTP/small.txt"
fetch "curl -p -x http:// (CONNECT to an IP)" big.bin -p -x "http://127.0.0.1:$HTTPC" "http://127.0.0.1:$BE_HTTP/big.bin"
fetch "curl -p -x http:// (CONNECT to a routed name)" small.txt -p -x "http://127.0.0.1:$HTTPC" "http://web.test:$BE_HTTP/small.txt"
fetch "curl -p -x http://alice:s3cret@ (Basic auth)" big.bin -p -x "http://alice:s3cret@127.0.0.1:$HTTPC_AUTH" "http://127.0.0.1:$BE_HTTP/big.bin"
if ((HAVE_V6)); then
  expect_has "SOCKS5 CONNECT to [::1] (ATYP 04)" "$(sc "$SOCKS" v5 1 4 ::1 "$BE_HTTP6")" "rep=00 http=HTTP/1.0_200_OK"
  fetch "curl -p -x http:// (CONNECT to [::1])" small.txt -p -x "http://127.0.0.1:$HTTPC" "http://[::1]:$BE_HTTP6/small.txt"
else
  skip "IPv6 cases: no ::1 on lo"
fi

say "== (2) failures and their reply codes"
expect_has "SOCKS5 wrong password: RFC 1929 status 01" "$(sc "$SOCKS_AUTH" v5 1 1 127.0.0.1 "$BE_HTTP" alice wrong)" "auth=01"
expect_has "SOCKS5 wrong user: RFC 1929 status 01" "$(sc "$SOCKS_AUTH" v5 1 1 127.0.0.1 "$BE_HTTP" mallory s3cret)" "auth=01"
expect_has "SOCKS5 no-auth client on an auth listener: method FF" "$(sc "$SOCKS_AUTH" v5 1 1 127.0.0.1 "$BE_HTTP")" "method=ff"
rc=0
run curl "${CURL[@]}" -o /dev/null -x "socks5h://alice:wrong@127.0.0.1:$SOCKS_AUTH" "http://web.test:$BE_HTTP/small.txt" 2>/dev/null || rc=$?
if ((rc != 0)); then pass "curl with a wrong SOCKS password fails (exit $rc)"; else failed "curl with a wrong SOCKS password succeeded"; fi
expect_has "SOCKS5 refused target: REP 05" "$(sc "$SOCKS" v5 1 1 127.0.0.1 "$CLOSED")" "rep=05"
expect_has "SOCKS5 route reject by host: REP 02" "$(sc "$SOCKS" v5 1 3 blocked.test 80)" "rep=02"
expect_has "SOCKS5 route reject by port: REP 02" "$(sc "$SOCKS" v5 1 1 127.0.0.1 "$REJECT_PORT")" "rep=02"
expect_has "SOCKS5 BIND: REP 07" "$(sc "$SOCKS" v5 2 1 127.0.0.1 "$BE_HTTP")" "rep=07"
expect_has "SOCKS5 bad address type: REP 08" "$(sc "$SOCKS" v5 1 9 x 80)" "rep=08"
expect_has "SOCKS5 connect timeout: REP 06" "$(sc "$SLOW_SOCKS" v5 1 1 127.0.0.1 "$BLACKHOLE")" "rep=06"
expect_has "SOCKS4 refused target: CD 5B" "$(sc "$SOCKS" v4 127.0.0.1 "$CLOSED")" "cd=5b"
expect_has "SOCKS4 on an auth listener: CD 5B" "$(sc "$SOCKS_AUTH" v4 127.0.0.1 "$BE_HTTP")" "cd=5b"
connect_code() {  # connect_code PROXY-URL TARGET-URL: the status of the CONNECT response
  run curl "${CURL[@]}" -o /dev/null -w '%{http_connect}' -p -x "$1" "$2" 2>/dev/null || true
}
expect_eq "CONNECT refused target: 502" "$(connect_code "http://127.0.0.1:$HTTPC" "http://127.0.0.1:$CLOSED/")" 502
expect_eq "CONNECT route reject: 403" "$(connect_code "http://127.0.0.1:$HTTPC" "http://blocked.test:80/")" 403
expect_eq "CONNECT without credentials: 407" "$(connect_code "http://127.0.0.1:$HTTPC_AUTH" "http://127.0.0.1:$BE_HTTP/")" 407
expect_eq "CONNECT with a wrong password: 407" "$(connect_code "http://alice:nope@127.0.0.1:$HTTPC_AUTH" "http://127.0.0.1:$BE_HTTP/")" 407
expect_eq "CONNECT connect timeout: 504" "$(connect_code "http://127.0.0.1:$SLOW_HTTPC" "http://127.0.0.1:$BLACKHOLE/")" 504
hdrs=$(run curl "${CURL[@]}" -o /dev/null -D - -p -x "http://127.0.0.1:$HTTPC_AUTH" "http://127.0.0.1:$BE_HTTP/" 2>/dev/null || true)
expect_has "407 carries Proxy-Authenticate" "$hdrs" 'Proxy-Authenticate: Basic realm="ugate"'

say "== (3) parallel clients"
par() {  # par DESC N CURL-PROXY-ARGS...: N concurrent downloads of small.txt, each checked
  local desc=$1 n=$2 i ok=0
  shift 2
  local pids=()
  for ((i = 0; i < n; i++)); do
    spawn "curl-$i" "${CURL[@]}" -o "$TMP/dl/par.$i" "$@"
    pids+=("$SPAWNED")
  done
  for ((i = 0; i < n; i++)); do
    if reap "${pids[$i]}" && [[ "$(cat "$TMP/dl/par.$i" 2>/dev/null)" == "$SMALL" ]]; then ok=$((ok + 1)); fi
  done
  rm -f "$TMP"/dl/par.*
  expect_eq "$desc" "$ok" "$n"
}
par "50 parallel SOCKS5 clients" 50 --socks5-hostname "127.0.0.1:$SOCKS" "http://web.test:$BE_HTTP/small.txt"
par "50 parallel CONNECT clients" 50 -p -x "http://127.0.0.1:$HTTPC" "http://127.0.0.1:$BE_HTTP/small.txt"

say "== (4) config validation"
cat >"$TMP/open.json" <<EOF
{"listeners": [{"name": "s", "kind": "socks5", "address": "0.0.0.0:$CHECK_PORT"}]}
EOF
out=$(run check-config "$UGATED" --check-config "$TMP/open.json" 2>&1) && rc=0 || rc=$?
if ((rc != 0)) && [[ "$out" == *"listeners[0].address: 0.0.0.0:$CHECK_PORT is not a loopback address"* ]]; then
  pass "open SOCKS proxy refused, naming the path"
else
  failed "open SOCKS proxy: rc=$rc out=$out"
fi
cat >"$TMP/open2.json" <<EOF
{"admin": {"enabled": false},
 "listeners": [{"name": "h", "kind": "http-connect", "address": "0.0.0.0:$CHECK_PORT", "allowOpenProxy": true},
               {"name": "s", "kind": "socks5", "address": "[::]:$CHECK_PORT", "users": [{"username": "u", "password": "p"}]}]}
EOF
if run check-config "$UGATED" --check-config "$TMP/open2.json" >/dev/null 2>&1; then
  pass "allowOpenProxy / users make a non-loopback proxy valid"
else
  failed "allowOpenProxy / users config refused"
fi

say "== (5) requested names and absolute-URI proxying"
probe=$(sc "$SOCKS" v5 1 3 localhost "$BE_HTTP")
expect_has "SOCKS5 CONNECT localhost (name resolved by ugated)" "$probe" "http=HTTP/1.0_200_OK"
fetch "curl --socks5-hostname localhost" small.txt --socks5-hostname "127.0.0.1:$SOCKS" "http://localhost:$BE_HTTP/small.txt"
fetch "curl -p -x http:// (CONNECT localhost)" small.txt -p -x "http://127.0.0.1:$HTTPC" "http://localhost:$BE_HTTP/small.txt"
expect_has "SOCKS5 DNS failure: REP 04" "$(sc "$SOCKS" v5 1 3 no-such-host.invalid 80)" "rep=04"
code=$(run curl "${CURL[@]}" -o "$TMP/dl/abs" -w '%{http_code}' -x "http://127.0.0.1:$HTTPC" "http://127.0.0.1:$BE_HTTP/small.txt" 2>/dev/null || true)
expect_eq "curl -x http:// (absolute-URI) status" "$code" 200
expect_has "curl -x http:// (absolute-URI) body" "$(cat "$TMP/dl/abs" 2>/dev/null)" "$SMALL"
# keep-alive must not leak a second request unrewritten: the origin closes after one response.
out=$(run curl "${CURL[@]}" -x "http://127.0.0.1:$HTTPC" "http://127.0.0.1:$BE_HTTP/small.txt" "http://web.test:$BE_HTTP/small.txt" 2>&1 || true)
expect_eq "two absolute-URI requests in one curl: both answered" "$(grep -c "hello through a proxy" <<<"$out")" 2

say "== access log"
n=$(grep -c '"kind":"socks5"' "$TMP/access.log" || true)
expect_ge "access log has socks5 streams" "$n" 50
n=$(grep -c '"close":"auth_failed"' "$TMP/access.log" || true)
expect_ge "access log records auth failures" "$n" 3
say "(ran in $((SECONDS - START_SECONDS)) s)"
