#!/usr/bin/env bash
# socks_udp_test.sh: SOCKS5 UDP ASSOCIATE (RFC 1928 §7) through ugated's `socks5` listener, loopback
# only.
#
#   bash socks_udp_test.sh /path/to/ugated
#
# (1) PySocks (Debian python3-socks, a SOCKS client we did not write) sends datagrams through the
#     relay to a local UDP echo server: IPv4 destinations, a name (`localhost`, resolved by ugated),
#     an empty and a 30000-byte datagram, with and without RFC 1929 authentication; every answer is
#     compared with what was sent and must come back naming the echo server as its source.
# (2) A small stdlib client for what PySocks cannot provoke, each checked by its effect (no answer)
#     and by its counter in /stats: datagrams from another port than the client's first one and
#     from another socket (dropped, auth_failed), a fragment (FRAG 1: dropped, not_supported), a
#     destination a route rejects (dropped, route_rejected); and the relay's lifetime: once the
#     TCP control connection closes, the relay port is closed (the kernel answers port
#     unreachable) and the association is in the access log with its datagram counts.
#
# Every process this script starts is tracked by PID and ended in the EXIT trap (only those PIDs).
# The last line is always "socks_udp: N passed, M failed".
set -euo pipefail

readonly TEST_NAME=socks_udp
readonly WATCHDOG_SECONDS=50
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if ! have python3; then
  say "socks_udp: python3 not found (scripts/install-deps.sh installs it)" >&2
  exit 2
fi
HAVE_PY=1
# PySocks is a Debian package for the system python3 (a python3 earlier on PATH may lack it).
PYSOCKS=""
for py in /usr/bin/python3 python3; do
  if "$py" -c 'import socks' 2>/dev/null; then PYSOCKS=$py; break; fi
done

start_tmp
# ugated binds port 0 for admin and its listeners and logs what it got (no race with other tests).
read -r ECHO REJECT_PORT < <(free_ports 2)

cat >"$TMP/echo.py" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
print("ready", flush=True)
while True:
    d, a = s.recvfrom(65535)
    s.sendto(d, a)
EOF
spawn udp-echo python3 -u "$TMP/echo.py" "$ECHO" >"$TMP/echo.log" 2>&1

cat >"$TMP/ugated.json" <<EOF
{
  "workers": 2,
  "admin": {"address": "127.0.0.1:0"},
  "log": {"level": "info", "accessLog": "$TMP/access.log"},
  "listeners": [
    {"name": "socks", "kind": "socks5", "address": "127.0.0.1:0"},
    {"name": "socks-auth", "kind": "socks5", "address": "127.0.0.1:0",
     "users": [{"username": "alice", "password": "s3cret"}]}
  ],
  "routes": [
    {"name": "no-udp-here", "match": {"port": $REJECT_PORT}, "to": "reject"}
  ]
}
EOF
start_ugated
await_admin_port
await_ugated_ready
SOCKS=$(ugated_port socks)
SOCKS_AUTH=$(ugated_port socks-auth)
wait_for "udp echo server" 50 grep -q ready "$TMP/echo.log" || { failed "echo server did not start"; exit 1; }

counter() {  # counter REASON: ugate_listener_dropped_datagrams_total{listener="socks",reason=REASON}
  admin /stats | awk -v want="ugate_listener_dropped_datagrams_total{listener=\"socks\",reason=\"$1\"}" \
    '$1 == want { v = $2 } END { print v + 0 }'
}

say "== (1) PySocks through the UDP relay"
cat >"$TMP/pysocks_client.py" <<'EOF'
import socket, sys
import socks
port, echo = int(sys.argv[1]), int(sys.argv[2])
user = sys.argv[3] if len(sys.argv) > 3 else None
pw = sys.argv[4] if len(sys.argv) > 4 else None
s = socks.socksocket(socket.AF_INET, socket.SOCK_DGRAM)
s.set_proxy(socks.SOCKS5, "127.0.0.1", port, username=user, password=pw)
s.settimeout(5)
ok = 0
cases = [("127.0.0.1", b"hello through the relay"), ("127.0.0.1", b""), ("localhost", b"by name"),
         ("127.0.0.1", bytes(range(256)) * 117 + b"end")]  # 29955 bytes
for i in range(20):
    cases.append(("127.0.0.1", b"datagram %d " % i + b"x" * (i * 97)))
for host, payload in cases:
    s.sendto(payload, (host, echo))
    data, src = s.recvfrom(65535)
    if data == payload and src == ("127.0.0.1", echo):
        ok += 1
    else:
        print("mismatch for %r: %r from %r" % (payload[:20], data[:20], src))
print("ok %d of %d" % (ok, len(cases)))
EOF
if [[ -n "$PYSOCKS" ]]; then
  out=$(run pysocks "$PYSOCKS" "$TMP/pysocks_client.py" "$SOCKS" "$ECHO" 2>&1 || true)
  expect_eq "PySocks UDP: every datagram echoed from the destination" "$(sed -n 's/^ok \([0-9]*\) of 24$/\1/p' <<<"$out")" 24
  [[ "$out" == "ok 24 of 24" ]] || say "$out"
  out=$(run pysocks "$PYSOCKS" "$TMP/pysocks_client.py" "$SOCKS_AUTH" "$ECHO" alice s3cret 2>&1 || true)
  expect_eq "PySocks UDP with username/password" "$(sed -n 's/^ok \([0-9]*\) of 24$/\1/p' <<<"$out")" 24
  out=$(run pysocks "$PYSOCKS" "$TMP/pysocks_client.py" "$SOCKS_AUTH" "$ECHO" alice wrong 2>&1 || true)
  if [[ "$out" == *"ok "* ]]; then failed "PySocks UDP with a wrong password got through"; else pass "PySocks UDP with a wrong password is refused"; fi
else
  skip "PySocks cases: python3-socks not installed (scripts/install-deps.sh installs it)"
fi

say "== (2) drops and the relay's lifetime"
cat >"$TMP/raw_client.py" <<'EOF'
import socket, struct, sys
port, echo, reject = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def hdr(dport, frag=0):
    return b"\x00\x00" + bytes([frag]) + b"\x01" + socket.inet_aton("127.0.0.1") + struct.pack(">H", dport)
def answer(sock):
    try:
        return sock.recvfrom(65535)[0]
    except socket.timeout:
        return None
    except ConnectionRefusedError:
        return "refused"
t = socket.create_connection(("127.0.0.1", port), timeout=5)
t.sendall(b"\x05\x01\x00")
assert t.recv(2) == b"\x05\x00"
t.sendall(b"\x05\x03\x00\x01" + socket.inet_aton("0.0.0.0") + b"\x00\x00")
r = t.recv(10)
print("rep=%02x atyp=%02x" % (r[1], r[3]))
relay = (socket.inet_ntoa(r[4:8]), struct.unpack(">H", r[8:10])[0])
a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); a.settimeout(0.5)
b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); b.settimeout(0.5)
a.sendto(hdr(echo) + b"first", relay)          # pins a's port
got = answer(a)
print("first=%s" % (got == hdr(echo) + b"first"))
b.sendto(hdr(echo) + b"intruder", relay)       # another port: dropped
print("intruder=%s" % answer(b))
a.sendto(hdr(echo, frag=1) + b"fragment", relay)  # a fragment: dropped
print("fragment=%s" % answer(a))
a.sendto(hdr(reject) + b"rejected", relay)     # a route rejects this port: dropped
print("rejected=%s" % answer(a))
a.sendto(hdr(echo) + b"still", relay)
print("still=%s" % (answer(a) == hdr(echo) + b"still"))
t.close()                                      # ends the association
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.settimeout(2)
c.connect(relay)
gone = None
for _ in range(20):                            # until ugated has closed the relay
    c.send(hdr(echo) + b"after close")
    gone = answer(c)
    if gone == "refused":
        break
print("after_close=%s" % gone)
EOF
before_auth=$(counter auth_failed)
before_frag=$(counter not_supported)
before_rej=$(counter route_rejected)
out=$(run raw-client python3 "$TMP/raw_client.py" "$SOCKS" "$ECHO" "$REJECT_PORT" 2>&1 || true)
expect_has() {
  if [[ "$2" == *"$3"* ]]; then pass "$1 ($3)"; else failed "$1: got '$2', want '$3'"; fi
}
expect_has "UDP ASSOCIATE succeeds with the relay's IPv4 address" "$out" "rep=00 atyp=01"
expect_has "the first datagram is relayed" "$out" "first=True"
expect_has "a datagram from another port gets no answer" "$out" "intruder=None"
expect_has "a fragment gets no answer" "$out" "fragment=None"
expect_has "a rejected destination gets no answer" "$out" "rejected=None"
expect_has "the association still works after the drops" "$out" "still=True"
expect_has "closing the TCP connection closes the relay port" "$out" "after_close=refused"
expect_eq "counted: datagram from another address (auth_failed)" $(($(counter auth_failed) - before_auth)) 1
expect_eq "counted: fragment (not_supported)" $(($(counter not_supported) - before_frag)) 1
expect_eq "counted: route reject (route_rejected)" $(($(counter route_rejected) - before_rej)) 1
wait_for "the association's access-log line" 50 grep -q '"packets_in":2,"packets_out":2' "$TMP/access.log" || true
n=$(grep -c '"kind":"socks5","listener":"socks".*"packets_in":2,"packets_out":2,.*"close":"ok"' "$TMP/access.log" || true)
expect_eq "access log: the association with its datagram counts" "$n" 1
say "(ran in $((SECONDS - START_SECONDS)) s)"
