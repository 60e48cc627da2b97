#!/usr/bin/env bash
# discovery_test.sh: local discovery (src/local) between ugated processes on one link, in network
# namespaces this script creates (and deletes).
#
#   bash discovery_test.sh /path/to/ugated
#
#   ns A (10.202.0.1) ─┐
#   ns B (10.202.0.2) ─┼─ br0 in ns BR (multicast snooping off)
#   ns C (10.202.0.3) ─┤
#   ns X (10.202.0.9) ─┘  python3: captures a real announcement and injects forged ones
#
# Three ugated with discovery enabled (interval 1s, expire 4s) and identities of their own
# (`ugated id`) find each other, and reach each other directly over the mesh (SOCKS at A to
# `b.mesh:8081`, B's loopback, with no gateway configured; C, not allowed by B's mesh.expose, gets
# 403); when C refuses A's connections, A reaches C through B (a route's `via`) instead: each /discovery lists the other two with the node ID its
# certificate has, its name, mesh port and addresses. From ns X, python3 captures one of A's IPv4
# announcements off the group and sends B a copy with a flipped signature byte, one whose node ID is
# not the key's, one truncated, and the untouched copy (a replay): B counts each under its reason in
# /stats, exactly once; then the same over IPv6 link-local (bad signature, replay). An address added to A's interface is announced at once (a `change`
# announcement, and B sees the new address); so is B's new name after a reload (SIGHUP). C is
# stopped and expires from A's and B's tables. Last, B's credentials are replaced on disk by another
# key: once TLS reloads them (tls.reloadInterval 200ms) B stops announcing, since its key and its
# certificate's ID would differ (state id_mismatch), and A lets it expire.
#
# Needs root (network namespaces); exits 77 with the reason when they are not available. Every
# process is tracked by PID and ended in the EXIT trap, then the namespaces are deleted. The last
# line is "discovery: N passed, M failed". Nothing here asserts a time: waits are bounded polls.
# shellcheck disable=SC2016  # $id and the like in single quotes are jq variables
set -euo pipefail

readonly TEST_NAME=discovery
readonly WATCHDOG_SECONDS=120
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in ip iptables python3 curl jq; do have "$tool" || skip77 "$tool not found (scripts/install-deps.sh installs it)"; done
[[ $(id -u) == 0 ]] || skip77 "needs root for network namespaces"

NS_BR=ugd-br-$$
NODES=(a b c)
declare -A NS=([a]=ugd-a-$$ [b]=ugd-b-$$ [c]=ugd-c-$$ [x]=ugd-x-$$)
declare -A IP=([a]=10.202.0.1 [b]=10.202.0.2 [c]=10.202.0.3 [x]=10.202.0.9)
test_cleanup() {
  local n
  for n in a b c x; do ip netns del "${NS[$n]}" 2>/dev/null || true; done
  ip netns del "$NS_BR" 2>/dev/null || true
}
if ! ip netns add "$NS_BR" 2>/dev/null; then skip77 "cannot create network namespaces here"; fi
ip -n "$NS_BR" link add br0 type bridge mcast_snooping 0
ip -n "$NS_BR" link set br0 up
for n in a b c x; do
  ip netns add "${NS[$n]}"
  # No duplicate address detection: link-local IPv6 addresses are usable at once.
  ip netns exec "${NS[$n]}" sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0
  ip -n "${NS[$n]}" link set lo up
  ip link add eth0 netns "${NS[$n]}" type veth peer name "p$n" netns "$NS_BR"
  ip -n "$NS_BR" link set "p$n" master br0 up
  ip -n "${NS[$n]}" addr add "${IP[$n]}/24" dev eth0
  ip -n "${NS[$n]}" link set eth0 up
done

start_tmp
cd "$TMP"
say "== identities (ugated: $UGATED)"
declare -A ID PID
for n in "${NODES[@]}"; do ID[$n]=$("$UGATED" id --data-dir "$TMP/$n" --name "$n" 2>/dev/null); done
# The mesh listener (whose port each node announces) trusts the three nodes by ID. B also serves
# the mesh over QUIC (a `quic` listener with ALPN ugate) and announces that port: its neighbours
# dial it over QUIC.
for n in "${NODES[@]}"; do
  quic="" quicPort=""
  if [[ $n == b ]]; then
    quic=', { "name": "qmesh", "kind": "quic", "address": "0.0.0.0:15443", "tls": { "alpn": ["ugate"] } }'
    quicPort=', "quicPort": 15443'
  fi
  cat >"$TMP/$n.json" <<EOF
{
  "node": { "name": "$n", "dataDir": "$TMP/$n" },
  "admin": { "address": "127.0.0.1:15000" },
  "listeners": [ { "name": "mesh", "kind": "mesh", "address": "0.0.0.0:15008" },
                 { "name": "socks", "kind": "socks5", "address": "127.0.0.1:1080" }$quic ],
  "mesh": { "expose": [ { "port": 8081, "allow": ["${ID[a]}"] }, { "port": 8082, "allow": "*" } ] },
  "tls": { "trustedIds": ["${ID[a]}", "${ID[b]}", "${ID[c]}"], "reloadInterval": "200ms" },
  "discovery": { "enabled": true, "interfaces": ["eth0"], "interval": "1s", "expire": "4s"$quicPort }
}
EOF
done
check "three distinct node IDs" test "${ID[a]}" != "${ID[b]}" -a "${ID[b]}" != "${ID[c]}" -a "${#ID[a]}" -eq 52

start_node() {
  spawn "ugated-$1" ip netns exec "${NS[$1]}" "$UGATED" -c "$TMP/$1.json" >"$TMP/$1.log" 2>&1
  PID[$1]=$SPAWNED
}
in_ns() { local n=$1; shift; ip netns exec "${NS[$n]}" "$@"; }
# disc NODE: NODE's /discovery document.
disc() { in_ns "$1" curl -sf --max-time 3 http://127.0.0.1:15000/discovery; }
# metric NODE NAME [LABELS]: one sample of NODE's /stats (0 when absent).
metric() {
  local v k=$2
  [[ -n "${3:-}" ]] && k="$2{$3}"
  v=$(in_ns "$1" curl -sf --max-time 3 http://127.0.0.1:15000/stats | awk -v k="$k" '$1 == k && !f { print $2; f = 1 }')
  printf '%s\n' "${v:-0}"
}
# knows NODE OTHER...: NODE's table lists every OTHER (by node ID).
knows() {
  local n=$1 o doc
  shift
  doc=$(disc "$n") || return 1
  for o in "$@"; do
    jq -e --arg id "${ID[$o]}" '.neighbours | any(.id == $id)' <<<"$doc" >/dev/null || return 1
  done
}
forgot() { ! knows "$1" "$2" && disc "$1" >/dev/null; }
# jqt ARGS...: jq -e as a check (its output dropped, not the check's line).
jqt() { jq -e "$@" >/dev/null; }

say "== three nodes on one bridge"
for n in "${NODES[@]}"; do start_node "$n"; done
UGATED_PID=${PID[a]}
ln -sf "$TMP/a.log" "$TMP/ugated.log"  # the log lib.sh shows on failure
for n in "${NODES[@]}"; do
  others=()
  for o in "${NODES[@]}"; do [[ $o != "$n" ]] && others+=("$o"); done
  if wait_for "$n to know ${others[*]}" 100 knows "$n" "${others[@]}"; then
    pass "$n discovered ${others[*]}"
  else
    failed "$n discovered ${others[*]}: $(disc "$n" | tr -d '\n')"
  fi
done
docA=$(disc a)
check "A announces its TLS node ID and state running" \
  test "$(jq -r '.id + " " + .state + " " + .name' <<<"$docA")" == "${ID[a]} running a"
check "A's sockets: eth0 over IPv4 and IPv6" \
  test "$(jq -r '.interfaces | sort | join(",")' <<<"$docA")" == "eth0/ipv4,eth0/ipv6"
nb=$(jq -c --arg id "${ID[b]}" '.neighbours[] | select(.id == $id)' <<<"$docA")
check "A's entry for B: name b, mesh port 15008, address 10.202.0.2 and a link-local IPv6" \
  jqt '.name == "b" and .tcp_port == 15008 and .interface == "eth0" and (.addresses | index("10.202.0.2") != null)
         and (.addresses | any(startswith("fe80:")))' <<<"$nb"
check "A's entry for B: last seen recently (age below expire)" jqt '.last_seen_ms_ago < 4000' <<<"$nb"
expect_ge "A received verified announcements" "$(metric a ugate_discovery_received_total)" 2
# Of each pair, whoever first heard the other by a non-reply announcement answered it by unicast.
replies=0
for n in "${NODES[@]}"; do replies=$((replies + $(metric "$n" ugate_discovery_sent_total 'cause="reply"'))); done
expect_ge "new neighbours answered by unicast (at least one per pair)" "$replies" 3
expect_eq "A's neighbour gauge" "$(metric a ugate_discovery_neighbours)" 2

say "== neighbours are dialled directly: SOCKS at A reaches B's loopback as b.mesh (no gateway anywhere)"
mkdir -p "$TMP/www"
echo "hello from b" >"$TMP/www/hello.txt"
spawn "origin-b" ip netns exec "${NS[b]}" python3 -m http.server 8081 --bind 127.0.0.1 --directory "$TMP/www" \
  >"$TMP/origin-b.log" 2>&1
# nodes NODE: NODE's /nodes document.
nodes() { in_ns "$1" curl -sf --max-time 3 http://127.0.0.1:15000/nodes; }
nodesA=$(nodes a)
check "A's /nodes lists B and C as neighbours, source local, at their mesh ports" \
  jqt --arg b "${ID[b]}" --arg c "${ID[c]}" '[.neighbours[] | select(.source == "local")] as $n
    | ($n | any(.id == $b and .name == "b" and .interface == "eth0" and (.mesh_tcp[0] == "10.202.0.2:15008") and (.mesh_tcp | any(startswith("[fe80:")))))
      and ($n | any(.id == $c and (.mesh_tcp | index("10.202.0.3:15008") != null)))' <<<"$nodesA"
origin_up() { in_ns b curl -sf --max-time 2 http://127.0.0.1:8081/hello.txt >/dev/null; }
wait_for "B's origin" 50 origin_up || true
accepted0=$(metric b ugate_mesh_streams_accepted_total)
body=$(in_ns a curl -sS --max-time 10 --socks5-hostname 127.0.0.1:1080 http://b.mesh:8081/hello.txt 2>&1 || true)
check "SOCKS at A: b.mesh:8081 answers B's loopback service (got: $body)" test "$body" == "hello from b"
lower_b=$(tr 'A-Z' 'a-z' <<<"${ID[b]}")
body=$(in_ns a curl -sS --max-time 10 --socks5-hostname 127.0.0.1:1080 "http://$lower_b.mesh:8081/hello.txt" 2>&1 || true)
check "SOCKS at A: <B's node ID>.mesh:8081 answers too" test "$body" == "hello from b"
expect_ge "A opened those streams straight to B (ugate_mesh_direct_opens_total)" \
  "$(metric a ugate_mesh_direct_opens_total)" 2
expect_ge "B accepted them on its mesh listener" "$(metric b ugate_mesh_streams_accepted_total)" $((accepted0 + 2))
expect_eq "A had no fallback to a gateway" "$(metric a ugate_mesh_direct_fallbacks_total)" 0
check "A's /nodes lists B's announced mesh QUIC address" \
  jqt --arg b "${ID[b]}" '.neighbours | any(.id == $b and (.mesh_quic | index("10.202.0.2:15443") != null))' <<<"$nodesA"
expect_ge "A reached B over the mesh over QUIC, B's announced port (ugate_quic_mesh_connections_dialled_total)" \
  "$(metric a ugate_quic_mesh_connections_dialled_total)" 1
expect_ge "B admitted the streams over QUIC" "$(metric b ugate_mesh_transport_streams_accepted_total 'transport="quic"')" 2
expect_eq "A's QUIC to B did not fall back to TCP" "$(metric a ugate_mesh_auto_fallbacks_total)" 0
# C is a neighbour of B too, but B's expose opens 8081 to A alone: the direct connection carries
# C's verified identity, and B answers 403.
out=$(in_ns c curl -sS --max-time 10 --socks5-hostname 127.0.0.1:1080 http://b.mesh:8081/hello.txt 2>&1 || true)
check "SOCKS at C: b.mesh:8081 refused, C is not allowed by B's mesh.expose (got: $out)" \
  test "${out/hello from b/}" == "$out" -a "${out/SOCKS5/}" != "$out"
check "B logged the refusal with C's identity" grep -q "b.mesh:8081 from .*${ID[c]}.* 403 not_exposed" "$TMP/b.log"

say "== forged, truncated and replayed announcements from ns X to B"
declare -A before
for r in bad_signature id_mismatch truncated replay; do before[$r]=$(metric b ugate_discovery_rejected_total "reason=\"$r\""); done
cat >"$TMP/inject.py" <<'EOF'
# inject.py FAMILY SRC DST IFACE_ADDR PORT KINDS: catch one multicast announcement SRC sent (the real
# thing, signed by its node), then send DST doctored copies, one per kind (comma-separated):
# bad_signature, id_mismatch, truncated, replay (the untouched copy). IFACE_ADDR: the local IPv4
# address to join on (IPv4), the interface name (IPv6; addresses are link-local there).
import socket, struct, sys
fam, src_ip, dst_ip, iface, port, kinds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6]
if fam == "4":
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    rx.bind(("0.0.0.0", port))
    rx.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton("224.0.0.250") + socket.inet_aton(iface))
    dst = (dst_ip, port)
else:
    rx = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    rx.bind(("::", port))
    idx = socket.if_nametoindex(iface)
    rx.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, socket.inet_pton(socket.AF_INET6, "ff02::5227") + struct.pack("@I", idx))
    dst = (dst_ip, port, 0, idx)
rx.settimeout(10)
while True:
    data, addr = rx.recvfrom(2048)
    if addr[0].split("%")[0] == src_ip and data[:2] == b"uD" and not data[3] & 1:
        break
bad_sig = bytearray(data); bad_sig[-1] ^= 1
mismatch = bytearray(data)  # another base32 letter in the node ID (offset 26): not the key's ID
mismatch[26] = ord("A") if mismatch[26] != ord("A") else ord("B")
copies = {"bad_signature": bytes(bad_sig), "id_mismatch": bytes(mismatch), "truncated": data[:120], "replay": data}
tx = socket.socket(rx.family, socket.SOCK_DGRAM)
for k in kinds.split(","):
    tx.sendto(copies[k], dst)
print(len(data))
EOF
# rejected R: B's count of datagrams rejected for reason R.
rejected() { metric b ugate_discovery_rejected_total "reason=\"$1\""; }
# expect_rejected R WANT: B's count for R reaches WANT (bounded wait) and is exactly WANT.
expect_rejected() {
  wait_for "B to count $1" 50 test "$(rejected "$1")" -ge "$2" || true
  expect_eq "B rejected the $1 copy, counted once" "$(rejected "$1")" "$2"
}
if n=$(in_ns x timeout 20 python3 "$TMP/inject.py" 4 "${IP[a]}" "${IP[b]}" "${IP[x]}" 5227 bad_signature,id_mismatch,truncated,replay); then
  pass "captured one of A's IPv4 announcements ($n bytes) and sent B four doctored copies"
else
  failed "capturing A's IPv4 announcement in ns X"
fi
for r in bad_signature id_mismatch truncated replay; do expect_rejected "$r" $((before[$r] + 1)); done
# The same over IPv6 link-local: A's and B's fe80:: addresses as they announce them.
ll() { jq -r --arg id "${ID[$2]}" '.neighbours[] | select(.id == $id) | .addresses[] | select(startswith("fe80:"))' <<<"$(disc "$1")" | head -1; }
LL_A=$(ll b a)
LL_B=$(ll a b)
if n=$(in_ns x timeout 20 python3 "$TMP/inject.py" 6 "$LL_A" "$LL_B" eth0 5227 bad_signature,replay); then
  pass "captured one of A's IPv6 announcements from $LL_A ($n bytes) and sent B two doctored copies at $LL_B"
else
  failed "capturing A's IPv6 announcement in ns X ($LL_A -> $LL_B)"
fi
for r in bad_signature replay; do expect_rejected "$r" $((before[$r] + 2)); done
check "B still lists A, with A's own name" \
  jqt --arg id "${ID[a]}" '.neighbours | any(.id == $id and .name == "a")' <<<"$(disc b)"
check "B logged why it dropped a datagram from X" grep -q "dropped a datagram from ${IP[x]} on eth0: " "$TMP/b.log"

say "== an address added on A's interface is announced at once"
changes=$(metric a ugate_discovery_sent_total 'cause="change"')
in_ns a ip addr add 10.202.7.1/24 dev eth0
has_new_addr() { jq -e --arg id "${ID[a]}" '.neighbours | any(.id == $id and (.addresses | index("10.202.7.1") != null))' <<<"$(disc b)" >/dev/null; }
check "B sees A's new address 10.202.7.1" wait_for "B to see 10.202.7.1" 100 has_new_addr
expect_ge "A sent change announcements (netlink)" "$(metric a ugate_discovery_sent_total 'cause="change"')" $((changes + 1))
expect_ge "A counted netlink link/address events" "$(metric a ugate_discovery_link_events_total)" 1

say "== a reload that renames B is announced at once"
sed -i 's/"interval": "1s"/"interval": "1s", "name": "bee"/' "$TMP/b.json"
kill -HUP "${PID[b]}"
renamed() { jq -e --arg id "${ID[b]}" '.neighbours | any(.id == $id and .name == "bee")' <<<"$(disc a)" >/dev/null; }
check "A sees B's new name" wait_for "A to see bee" 100 renamed
check "B kept its neighbours over the reload" knows b a c

say "== a neighbour A cannot reach directly is reached through a gateway instead"
mkdir -p "$TMP/www-c"
echo "hello from c" >"$TMP/www-c/hello.txt"
spawn "origin-c" ip netns exec "${NS[c]}" python3 -m http.server 8082 --bind 127.0.0.1 --directory "$TMP/www-c" \
  >"$TMP/origin-c.log" 2>&1
# C refuses A's mesh connections (a firewall between them); B may still reach C. A gets a route
# through B for c.mesh by a reload.
in_ns c iptables -A INPUT -p tcp -s "${IP[a]}" --dport 15008 -j REJECT --reject-with tcp-reset
jq --arg via "${IP[b]}:15008" '.routes = [{"match": {"host": "c.mesh"}, "to": "original", "via": $via}]' \
  "$TMP/a.json" >"$TMP/a.json.new" && mv "$TMP/a.json.new" "$TMP/a.json"
kill -HUP "${PID[a]}"
reloaded() { grep -q "info reloaded .*, 1 routes" "$TMP/a.log"; }
wait_for "A's reload" 50 reloaded || true
origin_c_up() { in_ns c curl -sf --max-time 2 http://127.0.0.1:8082/hello.txt >/dev/null; }
wait_for "C's origin" 50 origin_c_up || true
fallbacks0=$(metric a ugate_mesh_direct_fallbacks_total)
body=$(in_ns a curl -sS --max-time 15 --socks5-hostname 127.0.0.1:1080 http://c.mesh:8082/hello.txt 2>&1 || true)
check "SOCKS at A: c.mesh:8082 answers through B (got: $body)" test "$body" == "hello from c"
expect_eq "A tried C directly first and fell back (ugate_mesh_direct_fallbacks_total)" \
  "$(metric a ugate_mesh_direct_fallbacks_total)" $((fallbacks0 + 1))
check "A logged why it fell back" grep -q "mesh: direct path to c failed (.*); trying the association or gateway" "$TMP/a.log"
in_ns c iptables -D INPUT -p tcp -s "${IP[a]}" --dport 15008 -j REJECT --reject-with tcp-reset

say "== a stopped node expires"
stop_pid "${PID[c]}"
unset "LIVE[${PID[c]}]"
for n in a b; do
  check "$n forgot c after it stopped" wait_for "$n to expire c" 150 forgot "$n" c
  expect_ge "$n counted an expiry" "$(metric "$n" ugate_discovery_expired_total)" 1
done
check "A still knows B" knows a b
gone_c() {
  local doc
  doc=$(nodes a) || return 1
  jqt --arg c "${ID[c]}" '.neighbours | all(.id != $c)' <<<"$doc"
}
check "A's /nodes dropped C with it" gone_c
check "C logged its neighbours as they appeared" grep -q "discovery: neighbour a (${ID[a]})" "$TMP/c.log"

say "== B's credentials replaced on disk by another key: B stops announcing its old ID"
"$UGATED" id --data-dir "$TMP/other" --name bee >/dev/null 2>&1
install -m 0600 "$TMP/other/kube.json" "$TMP/b/kube.json.new"
mv "$TMP/b/kube.json.new" "$TMP/b/kube.json"
mismatch() { [[ "$(disc b | jq -r .state)" == id_mismatch ]]; }
check "B's discovery state is id_mismatch once TLS reloaded the new key" wait_for "B to refuse" 100 mismatch
check "B logged that its TLS identity changed" grep -q "discovery: the TLS identity .* differs from the key loaded at startup" "$TMP/b.log"
check "A forgot B, which announces no more" wait_for "A to expire b" 150 forgot a b
