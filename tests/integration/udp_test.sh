#!/usr/bin/env bash
# udp_test.sh: ugated's UDP listeners against REAL peers and a REAL kernel.
#
#   bash udp_test.sh /path/to/ugated
#
# (1) `udp` forwarder on loopback: socat as the client (one process per datagram, so one flow
#     each) and as the echo server; every answer checked.
# (2) `udp-tproxy` capture (IPv4 and IPv6) in three network namespaces this script creates:
#         client ns --veth-- gateway ns (ugated, TPROXY rules) --veth-- server ns (echo server)
#     The gateway does not forward (ip_forward=0): a datagram reaches the server only through
#     ugated. Its mangle table sends every UDP datagram arriving from the client side to ugated with
#     TPROXY (policy routing: fwmark -> table with `local 0.0.0.0/0`). A python3 client sends to the
#     server's real addresses and checks, for every datagram, that the answer is the echo of what it
#     sent, that it comes FROM the original destination (address and port), and that the server saw
#     the gateway's address, not the client's. Several client sockets and two destination ports
#     make several flows; empty and 8000-byte (fragmented over the 1500-byte veth) datagrams too.
#
# Rules and routes exist only inside the namespaces, which are deleted at exit with everything this
# script started (by PID). Needs root (or CAP_NET_ADMIN + CAP_SYS_ADMIN) for (2); without it, (2)
# is skipped with a message. The last line is always "udp: N passed, M failed".
set -euo pipefail

readonly TEST_NAME=udp
readonly WATCHDOG_SECONDS=60
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in python3 socat; do
  if ! have "$tool"; then
    say "udp: $tool not found (scripts/install-deps.sh installs it)" >&2
    exit 2
  fi
done
HAVE_PY=1

start_tmp

say "== (1) udp forwarder, socat client and server (loopback)"
# A UDP port (other tests' TCP connections cannot take it); admin and the forwarder bind port 0.
read -r ECHO < <(free_ports 1)
# socat echo server: one child per datagram sender (fork), echoing through cat.
spawn socat-echo socat -T 5 "UDP4-RECVFROM:$ECHO,bind=127.0.0.1,reuseaddr,fork" EXEC:cat
cat >"$TMP/ugated.json" <<EOF
{
  "workers": 2,
  "admin": {"address": "127.0.0.1:0"},
  "log": {"level": "info", "accessLog": "$TMP/access.log"},
  "listeners": [
    {"name": "fwd", "kind": "udp", "address": "127.0.0.1:0", "to": "127.0.0.1:$ECHO", "idleTimeout": "30s"}
  ]
}
EOF
start_ugated
await_admin_port
await_ugated_ready
FWD=$(ugated_port fwd)
ok=0
for i in $(seq 1 10); do
  msg="datagram $i $RANDOM$RANDOM"
  got=$(printf '%s' "$msg" | run socat-client socat -T 3 -t 1 - "UDP4:127.0.0.1:$FWD" 2>/dev/null || true)
  [[ "$got" == "$msg" ]] && ok=$((ok + 1))
done
expect_eq "socat datagrams echoed through the forwarder" "$ok" 10
stats=$(admin /stats)
n=$(awk '/^ugate_listener_connections_total\{listener="fwd"\}/ {print $2}' <<<"$stats")
expect_eq "one flow per socat client" "$n" 10
n=$(awk '/^ugate_listener_sent_datagrams_total\{listener="fwd"\}/ {print $2}' <<<"$stats")
expect_eq "datagrams sent back to clients" "$n" 10
stop_pid "$UGATED_PID"
unset "LIVE[$UGATED_PID]"
n=$(grep -c '"kind":"udp-flow","listener":"fwd"' "$TMP/access.log" || true)
expect_eq "access log: one line per flow (at shutdown)" "$n" 10

say "== (2) udp-tproxy capture in network namespaces (IPv4 and IPv6)"
if [[ $(id -u) -ne 0 ]] || ! have ip || ! have iptables || ! have ip6tables; then
  skip "TPROXY capture: needs root, ip, iptables and ip6tables"
  exit 0
fi
SUF="$$"
NS_C="ugt-c-$SUF" NS_G="ugt-g-$SUF" NS_S="ugt-s-$SUF"
CREATED_NS=()
test_cleanup() {
  local ns
  for ns in "${CREATED_NS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
}
inns() {  # inns NS CMD...: run CMD in namespace NS
  local ns=$1
  shift
  ip netns exec "$ns" "$@"
}
if ! ip netns add "$NS_C" 2>"$TMP/netns.err"; then
  skip "TPROXY capture: cannot create network namespaces ($(cat "$TMP/netns.err"))"
  exit 0
fi
CREATED_NS+=("$NS_C")
ip netns add "$NS_G" && CREATED_NS+=("$NS_G")
ip netns add "$NS_S" && CREATED_NS+=("$NS_S")
# Addresses exist only inside these namespaces.
C4=10.201.1.2 G4C=10.201.1.1 G4S=10.201.2.1 S4=10.201.2.2
C6=fd20:201:1::2 G6C=fd20:201:1::1 G6S=fd20:201:2::1 S6=fd20:201:2::2
ip link add "uc$SUF" netns "$NS_C" type veth peer name "ugc$SUF" netns "$NS_G"
ip link add "us$SUF" netns "$NS_S" type veth peer name "ugs$SUF" netns "$NS_G"
for ns in "$NS_C" "$NS_G" "$NS_S"; do inns "$ns" ip link set lo up; done
inns "$NS_C" ip addr add "$C4/24" dev "uc$SUF"
inns "$NS_C" ip -6 addr add "$C6/64" dev "uc$SUF" nodad
inns "$NS_C" ip link set "uc$SUF" up
inns "$NS_C" ip route add default via "$G4C"
inns "$NS_C" ip -6 route add default via "$G6C"
inns "$NS_S" ip addr add "$S4/24" dev "us$SUF"
inns "$NS_S" ip -6 addr add "$S6/64" dev "us$SUF" nodad
inns "$NS_S" ip link set "us$SUF" up
inns "$NS_S" ip route add default via "$G4S"
inns "$NS_S" ip -6 route add default via "$G6S"
inns "$NS_G" ip addr add "$G4C/24" dev "ugc$SUF"
inns "$NS_G" ip -6 addr add "$G6C/64" dev "ugc$SUF" nodad
inns "$NS_G" ip addr add "$G4S/24" dev "ugs$SUF"
inns "$NS_G" ip -6 addr add "$G6S/64" dev "ugs$SUF" nodad
inns "$NS_G" ip link set "ugc$SUF" up
inns "$NS_G" ip link set "ugs$SUF" up
# No forwarding in the gateway: only ugated can carry a datagram across.
inns "$NS_G" sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0
TP4=15006 TP6=15007 GADMIN=15000
# TPROXY: UDP from the client side goes to ugated's sockets; marked packets are routed locally.
inns "$NS_G" iptables -t mangle -A PREROUTING -i "ugc$SUF" -p udp -j TPROXY --on-ip 0.0.0.0 --on-port "$TP4" --tproxy-mark 0x1/0x1
inns "$NS_G" ip6tables -t mangle -A PREROUTING -i "ugc$SUF" -p udp -j TPROXY --on-ip :: --on-port "$TP6" --tproxy-mark 0x1/0x1
inns "$NS_G" ip rule add fwmark 0x1/0x1 lookup 100
inns "$NS_G" ip route add local 0.0.0.0/0 dev lo table 100
inns "$NS_G" ip -6 rule add fwmark 0x1/0x1 lookup 100
inns "$NS_G" ip -6 route add local ::/0 dev lo table 100
pass "namespaces, veths, TPROXY rules and policy routing set up (gateway $NS_G)"

# The server: echoes "<peer ip>|<payload>" on two ports, IPv4 and IPv6.
cat >"$TMP/echo_server.py" <<'EOF'
import select, socket, sys
socks = []
for fam, host in ((socket.AF_INET, sys.argv[1]), (socket.AF_INET6, sys.argv[2])):
    for port in (7000, 7001):
        s = socket.socket(fam, socket.SOCK_DGRAM)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((host, port))
        socks.append(s)
print("ready", flush=True)
while True:
    r, _, _ = select.select(socks, [], [])
    for s in r:
        data, peer = s.recvfrom(65535)
        s.sendto(peer[0].encode() + b"|" + data, peer)
EOF
# The client: for each (destination, client socket, payload), sends and checks the answer, its
# source address and the address the server saw. Prints "ok N bad M" and the first problems.
cat >"$TMP/client.py" <<'EOF'
import ipaddress, socket, sys
want_peer4, want_peer6 = sys.argv[1], sys.argv[2]
dests = [(socket.AF_INET, (sys.argv[3], 7000), want_peer4), (socket.AF_INET, (sys.argv[3], 7001), want_peer4),
         (socket.AF_INET6, (sys.argv[4], 7000), want_peer6), (socket.AF_INET6, (sys.argv[4], 7001), want_peer6)]
ok = bad = 0
problems = []
for fam, dst, want_peer in dests:
    socks = [socket.socket(fam, socket.SOCK_DGRAM) for _ in range(3)]
    for s in socks:
        s.settimeout(3)
    for i in range(12):
        s = socks[i % 3]
        payload = b"" if i == 0 else (b"%d:" % i) * (4000 if i == 1 else 3)
        s.sendto(payload, dst)
        try:
            data, src = s.recvfrom(65535)
        except socket.timeout:
            bad += 1
            problems.append("timeout %s #%d" % (dst, i))
            continue
        expect = want_peer.encode() + b"|" + payload
        same_src = ipaddress.ip_address(src[0]) == ipaddress.ip_address(dst[0]) and src[1] == dst[1]
        if data == expect and same_src:
            ok += 1
        else:
            bad += 1
            problems.append("%s #%d: from %s, %r..." % (dst, i, src[:2], data[:40]))
print("ok %d bad %d" % (ok, bad))
for p in problems[:5]:
    print(p)
EOF
spawn echo-server ip netns exec "$NS_S" python3 -u "$TMP/echo_server.py" 0.0.0.0 :: >"$TMP/echo.log" 2>&1
cat >"$TMP/tproxy.json" <<EOF
{
  "workers": 2,
  "admin": {"address": "127.0.0.1:$GADMIN"},
  "log": {"level": "info", "accessLog": "$TMP/tproxy-access.log"},
  "listeners": [
    {"name": "cap4", "kind": "udp-tproxy", "address": "0.0.0.0:$TP4"},
    {"name": "cap6", "kind": "udp-tproxy", "address": "[::]:$TP6"}
  ]
}
EOF
spawn ugated ip netns exec "$NS_G" "$UGATED" -c "$TMP/tproxy.json" >"$TMP/ugated.log" 2>&1
UGATED_PID=$SPAWNED
gw_admin() { inns "$NS_G" bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$GADMIN"'; printf "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" "$1" >&3; timeout 5 cat <&3' _ "$1"; }
gw_ready() { ugated_alive && gw_admin /ready 2>/dev/null | grep -c "200 OK" >/dev/null; }
if ! wait_for "ugated in the gateway namespace" 50 gw_ready; then
  failed "ugated (udp-tproxy) did not become ready"
  exit 1
fi
if ! wait_for "echo server" 50 grep -q ready "$TMP/echo.log"; then
  failed "echo server did not start: $(cat "$TMP/echo.log")"
  exit 1
fi
pass "ugated is up in $NS_G with udp-tproxy listeners (pid $UGATED_PID)"

out=$(run client ip netns exec "$NS_C" python3 "$TMP/client.py" "$G4S" "$G6S" "$S4" "$S6" 2>&1 || true)
say "  ...   client: $(head -1 <<<"$out")"
[[ "$out" == *"bad 0"* ]] || say "$out"
expect_eq "every datagram answered from its original destination, via the gateway" \
  "$(sed -n 's/^ok \([0-9]*\) bad 0$/\1/p' <<<"$out")" 48
stats=$(gw_admin /stats)
n4=$(awk '/^ugate_listener_connections_total\{listener="cap4"\}/ {print $2}' <<<"$stats")
n6=$(awk '/^ugate_listener_connections_total\{listener="cap6"\}/ {print $2}' <<<"$stats")
expect_eq "IPv4 flows: 3 client sockets x 2 original destinations" "$n4" 6
expect_eq "IPv6 flows: 3 client sockets x 2 original destinations" "$n6" 6
n=$(awk '/^ugate_listener_sent_datagrams_total\{listener="cap4"\}/ {print $2}' <<<"$stats")
expect_eq "IPv4 datagrams sent back" "$n" 24
if grep -q 'ugate_listener_dropped_datagrams_total{listener="cap' <<<"$stats"; then
  failed "datagrams dropped: $(grep dropped_datagrams_total'{' <<<"$stats")"
else
  pass "no datagram dropped"
fi
stop_pid "$UGATED_PID"
unset "LIVE[$UGATED_PID]"
n=$(grep -c "\"original_dst\":\"$S4:7001\"" "$TMP/tproxy-access.log" || true)
expect_eq "access log: flows to $S4:7001 with their original destination" "$n" 3
n=$(grep -c "\"original_dst\":\"\[$S6\]:7000\"" "$TMP/tproxy-access.log" || true)
expect_eq "access log: flows to [$S6]:7000 with their original destination" "$n" 3
say "(ran in $((SECONDS - START_SECONDS)) s)"
