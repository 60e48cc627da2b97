#!/usr/bin/env bash
# stats_page_test.sh: the admin endpoint's live stats page (GET / from a browser), rendered by
# headless Chromium (Debian package `chromium`) against a running ugated on loopback.
#
#   bash stats_page_test.sh /path/to/ugated
#
# ugated runs a `tcp` listener in front of an echo listener, one whose target refuses every connect,
# and a cluster whose one endpoint is the echo listener (TCP health checks). The test makes
# connections through both before the page loads and keeps making them while it loads; Chromium
# loads the page with a virtual-time budget of several of its one-second refreshes and dumps the
# DOM, which must show: the page live (several refreshes done, none failed), a row per listener
# with the connections counted so far, the refused connects as errors by reason, the cluster's
# endpoint healthy, and the sparklines drawn from more than one sample. /stats.json is checked
# against /stats, and a screenshot is kept as a test artifact (test-artifacts/stats_page.png in the
# working directory, or $UGATE_TEST_ARTIFACTS). Loopback only; every process is tracked by PID.
# The last line is "stats_page: N passed, M failed"; exits 77 (skipped) without Chromium.
set -euo pipefail

readonly TEST_NAME=stats_page
readonly WATCHDOG_SECONDS=120
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in curl python3 jq; do have "$tool" || skip77 "$tool not found (scripts/install-deps.sh installs it)"; done
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
[[ -n "$CHROMIUM" ]] || skip77 "chromium not found (scripts/install-deps.sh installs it)"
HAVE_PY=1

start_tmp
read -r ECHO CLOSED < <(free_ports 2)
cat >"$TMP/ugated.json" <<EOF
{
  "admin": { "address": "127.0.0.1:0" },
  "listeners": [
    { "name": "echo", "kind": "echo", "address": "127.0.0.1:$ECHO" },
    { "name": "front", "kind": "tcp", "address": "127.0.0.1:0", "to": "cluster:backends" },
    { "name": "broken", "kind": "tcp", "address": "127.0.0.1:0", "to": "127.0.0.1:$CLOSED" }
  ],
  "clusters": [ { "name": "backends", "endpoints": ["127.0.0.1:$ECHO"],
                  "healthCheck": { "kind": "tcp", "interval": "500ms", "timeout": "400ms" } } ]
}
EOF
say "== setup (ugated: $UGATED, chromium: $CHROMIUM)"
start_ugated
await_admin_port
FRONT=$(ugated_port front)
BROKEN=$(ugated_port broken)
ADMIN="http://127.0.0.1:$ADMIN_PORT"

cat >"$TMP/traffic.py" <<'EOF'
# traffic.py FRONT BROKEN N: N echo round trips through FRONT and N refused connects through BROKEN.
import socket, sys
front, broken, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
ok = 0
for i in range(n):
    with socket.create_connection(("127.0.0.1", front), timeout=5) as s:
        s.sendall(b"ping %d\n" % i)
        s.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            c = s.recv(100)
            if not c:
                break
            got += c
        ok += got == b"ping %d\n" % i
    try:  # ugated resets it (at once or after the connect): nothing listens behind
        with socket.create_connection(("127.0.0.1", broken), timeout=5) as s:
            s.recv(100)
    except ConnectionResetError:
        pass
print(ok)
EOF
healthy() { curl -sf "$ADMIN/clusters" | jq -e '.clusters[0].endpoints[0].health == "healthy"' >/dev/null; }
wait_for "the cluster's endpoint to be healthy" 100 healthy || true
echoed=$(python3 "$TMP/traffic.py" "$FRONT" "$BROKEN" 20)
expect_eq "20 echo round trips through the cluster before the page loads" "$echoed" 20

say "== /stats.json carries what /stats says"
json=$(curl -sf "$ADMIN/stats.json")
text=$(curl -sf "$ADMIN/stats")
jqt() { jq -e "$@" >/dev/null; }
check "/stats.json is JSON with the metrics" jqt '.metrics.ugate_listener_connections_total.type == "counter"' <<<"$json"
want=$(awk '$1 == "ugate_listener_connections_total{listener=\"front\"}" { print $2 }' <<<"$text")
got=$(jq -r '.metrics.ugate_listener_connections_total.samples[] | select(.labels.listener == "front") | .value' <<<"$json")
expect_eq "front's connections, same in both" "$got" "$want"
check "curl without Accept: text/html still gets the text index" grep -q "^ugated admin: " <<<"$(curl -sf "$ADMIN/")"
ctype=$(curl -sf -o /dev/null -w '%{content_type}' -H 'Accept: text/html' "$ADMIN/")
check "a browser gets the page (text/html)" test "$ctype" == "text/html; charset=utf-8"

say "== the page in headless Chromium, while traffic flows"
spawn traffic bash -c 'for i in 1 2 3 4 5 6; do python3 "$1" "$2" "$3" 5 >/dev/null; sleep 0.3; done' \
  _ "$TMP/traffic.py" "$FRONT" "$BROKEN"
TRAFFIC=$SPAWNED
chrome() {
  # No sandbox: the test may run as root. Its own profile dir, removed with $TMP.
  "$CHROMIUM" --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
    --user-data-dir="$TMP/chromium" --window-size=1280,900 --virtual-time-budget=6000 "$@" \
    "$ADMIN/" 2>>"$TMP/chromium.log"
}
run chromium-dom chrome --dump-dom >"$TMP/dom.html" || true
reap "$TRAFFIC" || true
check "Chromium rendered the page" grep -q '<h1>ugated</h1>' "$TMP/dom.html"
# attr ELEMENT-PATTERN ATTR: the value of ATTR on the first element of the dump matching the pattern.
attr() { grep -o "$1[^>]*" "$TMP/dom.html" | head -1 | grep -o "$2=\"[^\"]*\"" | cut -d'"' -f2; }
status=$(grep -o '<span id="status"[^>]*>[^<]*' "$TMP/dom.html" | sed 's/.*>//' || true)
check "the page says live (got: $status)" test "$status" == "live"
expect_ge "it refreshed from /stats.json several times" "$(attr '<span id="status"' data-updates)" 3
check "no refresh failed" test -z "$(attr '<span id="status"' data-failures)"
# row LISTENER: the cells of the listener's row, one per line.
row() { grep -o "<tr data-listener=\"$1\">.*" "$TMP/dom.html" | head -1 | sed 's#</tr>.*##; s#<[^>]*>#\n#g' | grep -v '^$'; }
for l in echo front broken; do check "a row for listener $l" test -n "$(row "$l")"; done
front_conns=$(row front | sed -n 3p)
expect_ge "front's row counts the connections made so far" "$front_conns" 20
p99=$(grep -o '<tr data-listener="front">.*' "$TMP/dom.html" | grep -o '<td class="num p99">[^<]*' | head -1 | sed 's/.*>//')
check "front's row shows its connect-time p99 from the histogram (got: $p99)" grep -q '^≤ [0-9.]* [mµ]\?s$' <<<"$p99"
check "the refused connects are listed as errors by reason" \
  grep -q '<tr data-listener="broken" data-reason="connect_refused">' "$TMP/dom.html"
check "the cluster's endpoint is shown healthy" \
  grep -q "<tr data-cluster=\"backends\" data-endpoint=\"127.0.0.1:$ECHO\">.*<td class=\"healthy\">healthy</td>" "$TMP/dom.html"
expect_ge "the connection-rate sparkline has several samples" "$(attr 'id="spark-connrate"' data-points)" 2
check "the page loaded nothing from elsewhere (no external URL in it)" \
  test -z "$(curl -sf -H 'Accept: text/html' "$ADMIN/" | grep -Eo '(src|href)="[a-z]+://' || true)"

say "== screenshot (a test artifact)"
ART=${UGATE_TEST_ARTIFACTS:-$PWD/test-artifacts}
mkdir -p "$ART"
rm -f "$ART/stats_page.png"
run chromium-shot chrome --screenshot="$ART/stats_page.png" >/dev/null || true
check "screenshot kept at $ART/stats_page.png" test -s "$ART/stats_page.png"
