#!/usr/bin/env bash
# sni_test.sh: ugated's `sni` listener kind (TLS passthrough routed by the ClientHello) against REAL
# peers, over loopback only.
#
#   bash sni_test.sh /path/to/ugated
#
# Backends: three `openssl s_server -WWW` with different self-signed certificates (a.test, b.test,
# *.c.test), each serving who.txt naming itself, and a python3 http.server for plaintext.
# (1) openssl s_client -servername and curl --resolve through ugated reach the backend with the right
#     certificate (the client verifies it against that backend's cert), ALPN routes, "sni:PORT"
#     egress targets, and a 4 MiB download (sha256) that takes the splice fast path.
# (2) python3 clients with a real TLS stack (ssl.MemoryBIO): a hello split across two TLS records
#     and two TCP segments, and a slow-drip hello inside the sniff deadline, still route and verify.
# (3) refusals: unknown name (no_route), garbage (protocol_error), a hello that never completes
#     (handshake_timeout, sniffTimeout 500ms), oversize hellos (too_large), each closed and counted in
#     /stats; the `fallback` target takes plaintext, and TLS still routes on that listener.
#
# Every process this script starts is tracked by PID and ended in the EXIT trap (only those PIDs);
# the temp dir is removed; a watchdog bounds the run. The last line is "sni: N passed, M failed".
# SNI_KEEP_TMP=1 keeps the temp dir.
set -euo pipefail

readonly TEST_NAME=sni
readonly WATCHDOG_SECONDS=90
# The shared harness: counters, process tracking, EXIT trap, argument check, temp dir and
# watchdog, free ports, ugated start and /ready.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Here expect_eq compares strings (the shared one in lib.sh compares integers).
expect_eq() {
  if [[ "$2" == "$3" ]]; then pass "$1 ($2)"; else failed "$1: got '$2', want '$3'"; fi
}

for tool in openssl python3; do
  if ! have "$tool"; then
    say "SKIP: $tool not found (scripts/install-deps.sh installs it): the sni tests need it"
    say "sni: 0 passed, 0 failed"
    trap - EXIT
    exit 0
  fi
done
HAVE_PY=1
HAVE_CURL=0
have curl && HAVE_CURL=1
((HAVE_CURL)) || say "SKIP: curl not found: the curl cases are skipped"

start_tmp

read -r ADMIN_PORT SNI_PORT SMALL_PORT FB_PORT BE_A BE_B BE_C BE_HTTP < <(free_ports 8)

# ---- backends: three TLS servers with their own certificate, one plaintext server --------------

say "== setup (ugated: $UGATED)"
for b in a b c; do
  mkdir -p "$TMP/$b"
  cn="$b.test"
  [[ $b == c ]] && cn="*.c.test"
  # The *.c.test backend also answers for "localhost" (the sni:PORT egress case dials localhost).
  san="DNS:$cn"
  [[ $b == c ]] && san="DNS:*.c.test,DNS:localhost"
  run "openssl-req-$b" openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=$cn" -addext "subjectAltName=$san" -keyout "$TMP/$b/key.pem" -out "$TMP/$b/cert.pem" \
    >"$TMP/req-$b.log" 2>&1
  printf 'backend-%s\n' "$b" >"$TMP/$b/who.txt"
done
head -c $((4 * 1024 * 1024)) /dev/urandom >"$TMP/a/big.bin"
BIG_SHA=$(sha256sum "$TMP/a/big.bin" | cut -d' ' -f1)
mkdir -p "$TMP/plain"
printf 'backend-plain\n' >"$TMP/plain/who.txt"

start_tls_backend() {  # NAME PORT: s_server -WWW serves files from its directory
  local b=$1 port=$2
  (cd "$TMP/$b" && exec openssl s_server -accept "127.0.0.1:$port" -cert cert.pem -key key.pem -WWW -quiet) \
    >"$TMP/s_server-$b.log" 2>&1 &
  SPAWNED=$!
  LIVE[$SPAWNED]="s_server-$b"
}
start_tls_backend a "$BE_A"
start_tls_backend b "$BE_B"
start_tls_backend c "$BE_C"
spawn http-plain python3 -u -m http.server --bind 127.0.0.1 --directory "$TMP/plain" "$BE_HTTP" >"$TMP/http.log" 2>&1

# ---- ugated -----------------------------------------------------------------------------------

cat >"$TMP/ugated.json" <<EOF
{
  "workers": 2,
  "admin": {"address": "127.0.0.1:$ADMIN_PORT"},
  "limits": {"connectTimeout": "5s", "drainTimeout": "2s"},
  "log": {"level": "debug", "accessLog": "$TMP/access.log"},
  "listeners": [
    {"name": "tls", "kind": "sni", "address": "127.0.0.1:$SNI_PORT", "sniffTimeout": "500ms"},
    {"name": "tls-small", "kind": "sni", "address": "127.0.0.1:$SMALL_PORT", "maxHelloBytes": 1024,
     "to": "127.0.0.1:$BE_A"},
    {"name": "tls-fb", "kind": "sni", "address": "127.0.0.1:$FB_PORT", "fallback": "127.0.0.1:$BE_HTTP",
     "to": "127.0.0.1:$BE_A"}
  ],
  "routes": [
    {"name": "alpn-h2", "match": {"listener": "tls", "sni": "alpn.b.test", "alpn": "h2"}, "to": "127.0.0.1:$BE_B"},
    {"name": "alpn-other", "match": {"listener": "tls", "sni": "alpn.b.test"}, "to": "127.0.0.1:$BE_A"},
    {"name": "a", "match": {"listener": "tls", "sni": "a.test"}, "to": "127.0.0.1:$BE_A"},
    {"name": "b", "match": {"listener": "tls", "sni": "b.test"}, "to": "127.0.0.1:$BE_B"},
    {"name": "c", "match": {"listener": "tls", "sni": "*.c.test"}, "to": "127.0.0.1:$BE_C"},
    {"name": "egress", "match": {"listener": "tls", "sni": "localhost"}, "to": "sni:$BE_C"}
  ]
}
EOF
check "ugated --check-config accepts the sni config" run check-config "$UGATED" --check-config "$TMP/ugated.json"
start_ugated
await_ugated_ready
for p in "$BE_A" "$BE_B" "$BE_C" "$BE_HTTP"; do wait_for "backend on $p" 50 listening "$p" || true; done

# ---- helpers for TLS clients ------------------------------------------------------------------

# s_client_subject PORT NAME [ARGS...]: the backend certificate's subject CN that s_client saw
# through ugated ("none" when there was no certificate).
s_client_subject() {
  local port=$1 name=$2 out
  shift 2
  out=$(printf 'GET /who.txt HTTP/1.0\r\n\r\n' | timeout 10 openssl s_client -connect "127.0.0.1:$port" \
    -servername "$name" -ign_eof "$@" 2>&1) || true
  if grep -q '^subject=' <<<"$out"; then
    sed -n 's/^subject=.*CN *= *\([^,/]*\).*/\1/p' <<<"$out" | head -1
  else
    echo none
  fi
}

tlsclient() { timeout 20 python3 "$TESTS_DIR/tls_client.py" "$@" 2>"$TMP/tlsclient.err" || cat "$TMP/tlsclient.err" >&2; }

# ---- (1) openssl s_client and curl by name ----------------------------------------------------

say "== (1) s_client and curl reach the backend named in the ClientHello"
expect_eq "s_client -servername a.test: backend certificate CN" "$(s_client_subject "$SNI_PORT" a.test)" a.test
expect_eq "s_client -servername b.test: backend certificate CN" "$(s_client_subject "$SNI_PORT" b.test)" b.test
expect_eq "s_client -servername x.c.test (*.c.test route): certificate CN" "$(s_client_subject "$SNI_PORT" x.c.test)" "*.c.test"
expect_eq "s_client -servername B.TEST (names match case-insensitively)" "$(s_client_subject "$SNI_PORT" B.TEST)" b.test
expect_eq "ALPN route: alpn.b.test offering h2 goes to b" "$(s_client_subject "$SNI_PORT" alpn.b.test -alpn h2)" b.test
expect_eq "ALPN route: alpn.b.test offering http/1.1 goes to a" "$(s_client_subject "$SNI_PORT" alpn.b.test -alpn http/1.1)" a.test
expect_eq "egress target sni:PORT: 'localhost' dials localhost:$BE_C" "$(s_client_subject "$SNI_PORT" localhost)" "*.c.test"
if ((HAVE_CURL)); then
  CURL=(curl -sS --max-time 10 --noproxy '*')
  for b in a b; do
    got=$("${CURL[@]}" --cacert "$TMP/$b/cert.pem" --resolve "$b.test:$SNI_PORT:127.0.0.1" \
      "https://$b.test:$SNI_PORT/who.txt" 2>"$TMP/curl.err") || got="curl failed: $(head -c 200 "$TMP/curl.err")"
    expect_eq "curl https://$b.test (certificate verified against backend $b): body" "$got" "backend-$b"
  done
  if "${CURL[@]}" --cacert "$TMP/a/cert.pem" --resolve "a.test:$SNI_PORT:127.0.0.1" -o "$TMP/big.bin" \
    "https://a.test:$SNI_PORT/big.bin" 2>"$TMP/curl.err"; then
    expect_eq "curl 4 MiB download through the sni listener: sha256" "$(sha256sum "$TMP/big.bin" | cut -d' ' -f1)" "$BIG_SHA"
  else
    failed "curl 4 MiB download: $(head -c 200 "$TMP/curl.err")"
  fi
else
  skip "(1) curl cases"
fi

# ---- (2) hellos split across records, slow drip ----------------------------------------------

say "== (2) split and slow-drip hellos (python3 ssl, real TLS handshakes)"
expect_eq "hello in 2 TLS records / 2 TCP segments routes to a" "$(tlsclient split "$SNI_PORT" a.test "$TMP/a/cert.pem")" backend-a
expect_eq "hello in 2 TLS records routes to b" "$(tlsclient split "$SNI_PORT" b.test "$TMP/b/cert.pem")" backend-b
expect_eq "slow-drip hello (5 pieces, 60 ms apart) within the 500ms deadline routes" \
  "$(tlsclient drip "$SNI_PORT" b.test "$TMP/b/cert.pem" 5 60)" backend-b

# ---- (3) refusals and fallback ----------------------------------------------------------------

say "== (3) unknown name, garbage, stalled hello, oversize hello, fallback"
expect_eq "unknown name: no certificate (closed, no_route)" "$(s_client_subject "$SNI_PORT" unknown.test)" none
printf 'GET / HTTP/1.0\r\n\r\nnot tls at all' >"$TMP/garbage.bin"
expect_eq "garbage on the sni listener: closed" "$(tlsclient raw "$SNI_PORT" "$TMP/garbage.bin")" closed
stall=$(tlsclient stall "$SNI_PORT")
check "hello that never completes: closed after the 500ms sniff deadline (${stall}s)" \
  awk -v t="$stall" 'BEGIN { exit !(t ~ /^[0-9.]+$/ && t >= 0.4 && t < 3) }'
expect_eq "oversize hello (20 KB) on the 16 KiB listener: closed" "$(tlsclient oversize "$SNI_PORT")" closed
LARGE_HELLO="$(cd "$(dirname "$0")" && pwd)/../unit/sni/data/openssl_large.bin"
if [[ -s "$LARGE_HELLO" ]]; then
  cp "$LARGE_HELLO" "$TMP/large.bin"
  expect_eq "real 2180-byte hello on the maxHelloBytes=1024 listener: closed" "$(tlsclient raw "$SMALL_PORT" "$TMP/large.bin")" closed
else
  skip "captured large hello not found next to the script"
fi
expect_eq "tls-small still routes a normal hello (default to a)" "$(s_client_subject "$SMALL_PORT" a.test)" a.test
if ((HAVE_CURL)); then
  got=$("${CURL[@]}" "http://127.0.0.1:$FB_PORT/who.txt" 2>"$TMP/curl.err") || got="curl failed: $(head -c 200 "$TMP/curl.err")"
  expect_eq "fallback: plaintext HTTP on the sni listener reaches the fallback target" "$got" backend-plain
fi
expect_eq "fallback listener: TLS still routes by its default" "$(s_client_subject "$FB_PORT" a.test)" a.test

# ---- /stats and the access log ----------------------------------------------------------------

say "== /stats and the access log"
stats_val() { awk -v k="$1" '$1 == k { print $2; exit }' "$TMP/stats.txt"; }
idle() {
  admin /stats >"$TMP/stats.txt" 2>/dev/null || return 1
  [[ "$(stats_val ugate_streams_active)" == 0 ]]
}
wait_for "streams to close" 50 idle || true
for r in no_route protocol_error handshake_timeout too_large; do
  expect_ge "ugate_listener_errors_total{listener=\"tls\",reason=\"$r\"}" \
    "$(stats_val "ugate_listener_errors_total{listener=\"tls\",reason=\"$r\"}")" 1
done
expect_ge "ugate_listener_errors_total{listener=\"tls-small\",reason=\"too_large\"}" \
  "$(stats_val "ugate_listener_errors_total{listener=\"tls-small\",reason=\"too_large\"}")" 1
check "no protocol errors on tls-fb (plaintext went to the fallback)" \
  bash -c '! grep -q "^ugate_listener_errors_total{listener=\"tls-fb\",reason=\"protocol_error\"}" "$1"' _ "$TMP/stats.txt"
if ((HAVE_CURL)); then
  expect_ge "ugate_listener_spliced_total{listener=\"tls\"} (the 4 MiB stream used splice(2))" \
    "$(stats_val "ugate_listener_spliced_total{listener=\"tls\"}")" 1
fi
check "access log: a.test streams name the SNI, route and backend" \
  grep -q "\"sni\":\"a.test\".*\"route\":\"a\".*\"upstream_addr\":\"127.0.0.1:$BE_A\"" "$TMP/access.log"
check "access log: ALPN recorded for the h2 stream" grep -q '"alpn":"h2"' "$TMP/access.log"
check "access log: the fallback stream is marked route=fallback" grep -q '"route":"fallback"' "$TMP/access.log"
check "ugated log: the close reasons are logged" grep -q 'not TLS (not_handshake_record)' "$TMP/ugated.log"

if ugated_alive; then pass "ugated still running"; else failed "ugated died"; fi
if grep -Eqi '\b(critical|sanitizer|assert)' "$TMP/ugated.log"; then
  failed "ugated log has critical/sanitizer/assert lines"
fi
say "== done in $((SECONDS - START_SECONDS)) s ($SKIPPED skipped)"
