#!/usr/bin/env bash
# peers_test.sh: ugated's tcp listener against REAL peers, over loopback only.
#
#   bash peers_test.sh /path/to/ugated
#
# (1) curl through ugated to python3 http servers: a 5 MiB and a small download (sha256 checked),
#     3 MiB uploads (PUT with Content-Length, POST, chunked PUT) to an inline server that answers with
#     the sha256 of the body, and 50 parallel downloads.
# (2) iperf3 through ugated, 2 s each: normal, reverse (-R) and -P 4; each must exit 0 with > 0 bit/s.
#     Direct vs via-ugated Gbit/s is printed for information only (never asserted).
# (3) an IPv6 listener [::1]:PORT -> [::1] backend, driven with curl -g.
# (4) /stats counters and the access log agree with the traffic that was sent.
# (5) SIGHUP reload keeps forwarding; SIGTERM drains and ugated exits 0.
#
# Every process this script starts is tracked by PID and ended in the EXIT trap (only those PIDs);
# the temp dir is removed; a watchdog bounds the whole run well under 60 s. A missing peer binary
# (curl, iperf3, python3) turns the parts that need it into a SKIP. The last line is always
# "peers: N passed, M failed"; the exit status is non-zero when anything failed.
# PEERS_KEEP_TMP=1 keeps the temp dir (configs, logs, access log, iperf3 JSON) for debugging.
set -euo pipefail

readonly TEST_NAME=peers
readonly WATCHDOG_SECONDS=50
# The shared harness: counters, process tracking, EXIT trap, argument check, temp dir and
# watchdog, free ports, ugated start and /ready.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HAVE_CURL=0 HAVE_PY=0 HAVE_IPERF=0
have curl && HAVE_CURL=1
have python3 && HAVE_PY=1
have iperf3 && HAVE_IPERF=1
((HAVE_CURL)) || say "SKIP: curl not found (scripts/install-deps.sh installs it): the curl cases are skipped"
((HAVE_PY)) || say "SKIP: python3 not found (scripts/install-deps.sh installs it): the http backends, JSON checks and throughput table are skipped"
((HAVE_IPERF)) || say "SKIP: iperf3 not found (scripts/install-deps.sh installs it): the iperf3 cases are skipped"

start_tmp

read -r ADMIN_PORT FWD_HTTP FWD_UPLOAD FWD_IPERF FWD_HTTP6 BE_HTTP BE_UPLOAD BE_IPERF BE_HTTP6 < <(free_ports 9)

# ---- backends ---------------------------------------------------------------------------------

say "== setup (ugated: $UGATED)"
WWW="$TMP/www"
mkdir -p "$WWW" "$TMP/dl"
head -c $((5 * 1024 * 1024)) /dev/urandom >"$WWW/big.bin"
say "hello through ugate, $(date -u +%s)" >"$WWW/small.txt"
head -c $((3 * 1024 * 1024)) /dev/urandom >"$TMP/upload.bin"
BIG_SIZE=$(stat -c %s "$WWW/big.bin")
SMALL_SIZE=$(stat -c %s "$WWW/small.txt")
UPLOAD_SIZE=$(stat -c %s "$TMP/upload.bin")
BIG_SHA=$(sha "$WWW/big.bin")
SMALL_SHA=$(sha "$WWW/small.txt")
UPLOAD_SHA=$(sha "$TMP/upload.bin")

# The upload server: answers any PUT/POST with "<sha256 of the body> <length>". HTTP/1.1, so curl's
# "Expect: 100-continue" gets its interim 100 through ugated; Content-Length and chunked bodies.
cat >"$TMP/upload_server.py" <<'EOF'
import hashlib, http.server, sys

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _read_exact(self, n, h):
        while n:
            b = self.rfile.read(min(n, 1 << 16))
            if not b:
                raise EOFError("body cut short")
            h.update(b)
            n -= len(b)

    def _hash_body(self):
        h, total = hashlib.sha256(), 0
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                size = int(self.rfile.readline(1024).split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                self._read_exact(size, h)
                total += size
                self.rfile.readline(1024)
        else:
            total = int(self.headers.get("Content-Length", "0"))
            self._read_exact(total, h)
        return h.hexdigest(), total

    def _answer(self):
        digest, n = self._hash_body()
        body = f"{digest} {n}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    do_PUT = _answer
    do_POST = _answer

class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 128
    daemon_threads = True

Server(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
EOF

if ((HAVE_PY)); then
  spawn http-server python3 -u -m http.server --bind 127.0.0.1 --directory "$WWW" "$BE_HTTP" >"$TMP/http.log" 2>&1
  spawn upload-server python3 -u "$TMP/upload_server.py" "$BE_UPLOAD" >"$TMP/upload.log" 2>&1
  if ((HAVE_V6)); then
    spawn http6-server python3 -u -m http.server --bind ::1 --directory "$WWW" "$BE_HTTP6" >"$TMP/http6.log" 2>&1
  fi
fi
if ((HAVE_IPERF)); then
  spawn iperf3-server iperf3 -s -B 127.0.0.1 -p "$BE_IPERF" >"$TMP/iperf3-server.log" 2>&1
fi

# ---- ugated -----------------------------------------------------------------------------------

V6_LISTENER=""
if ((HAVE_V6)); then
  V6_LISTENER=",
    {\"name\": \"http6\", \"kind\": \"tcp\", \"address\": \"[::1]:$FWD_HTTP6\", \"to\": \"[::1]:$BE_HTTP6\"}"
fi
cat >"$TMP/ugated.json" <<EOF
{
  "workers": 2,
  "admin": {"address": "127.0.0.1:$ADMIN_PORT"},
  "limits": {"connectTimeout": "5s", "drainTimeout": "5s"},
  "log": {"level": "info", "accessLog": "$TMP/access.log"},
  "listeners": [
    {"name": "http", "kind": "tcp", "address": "127.0.0.1:$FWD_HTTP", "to": "127.0.0.1:$BE_HTTP"},
    {"name": "upload", "kind": "tcp", "address": "127.0.0.1:$FWD_UPLOAD", "to": "127.0.0.1:$BE_UPLOAD"},
    {"name": "iperf", "kind": "tcp", "address": "127.0.0.1:$FWD_IPERF", "to": "127.0.0.1:$BE_IPERF"}$V6_LISTENER
  ]
}
EOF
check "ugated --check-config accepts the test config" run check-config "$UGATED" --check-config "$TMP/ugated.json"

start_ugated
# expect_ugated_running AFTER: one assertion; when ugated is gone, say how it ended.
expect_ugated_running() {
  if ugated_alive; then
    pass "ugated still running after $1"
    return 0
  fi
  if [[ -z "${LIVE[$UGATED_PID]:-}" ]]; then
    failed "ugated not running after $1 (it ended earlier)"
    return 1
  fi
  local rc=0
  reap "$UGATED_PID" || rc=$?
  failed "ugated died during $1 (exit status $rc$( ((rc > 128)) && echo ", signal $((rc - 128))"))"
}
await_ugated_ready
healthz() { [[ "$(admin /healthz)" == ok* ]]; }
check "GET /healthz" healthz

if ((HAVE_PY)); then
  wait_for "http backend" 50 listening "$BE_HTTP" || true
  wait_for "upload backend" 50 listening "$BE_UPLOAD" || true
  ((HAVE_V6)) && { wait_for "http6 backend" 50 listening "$BE_HTTP6" 6 || true; }
fi
((HAVE_IPERF)) && { wait_for "iperf3 server" 50 listening "$BE_IPERF" || true; }

# What went through each listener, for the /stats and access-log checks of (4).
declare -A CONNS=([http]=0 [upload]=0 [iperf]=0 [http6]=0)
declare -A MIN_IN=([http]=0 [upload]=0 [iperf]=0 [http6]=0)    # lower bound of bytes from clients
declare -A MIN_OUT=([http]=0 [upload]=0 [iperf]=0 [http6]=0)   # lower bound of bytes to clients

CURL=(curl -sS --fail --max-time 20 --connect-timeout 5 --noproxy '*')

# ---- (1) curl over ugated ---------------------------------------------------------------------

say "== (1) curl through ugated to python3 http servers"
if ((HAVE_CURL && HAVE_PY)); then
  base="http://127.0.0.1:$FWD_HTTP"
  if run curl "${CURL[@]}" -o "$TMP/dl/big.bin" "$base/big.bin"; then
    expect_eq "5 MiB download: size" "$(stat -c %s "$TMP/dl/big.bin")" "$BIG_SIZE"
    check "5 MiB download: sha256 matches" [ "$(sha "$TMP/dl/big.bin")" == "$BIG_SHA" ]
  else
    failed "5 MiB download through ugated (curl exit non-zero)"
  fi
  CONNS[http]=$((CONNS[http] + 1))
  MIN_OUT[http]=$((MIN_OUT[http] + BIG_SIZE))

  if run curl "${CURL[@]}" -o "$TMP/dl/small.txt" "$base/small.txt"; then
    check "small download: sha256 matches" [ "$(sha "$TMP/dl/small.txt")" == "$SMALL_SHA" ]
  else
    failed "small download through ugated (curl exit non-zero)"
  fi
  CONNS[http]=$((CONNS[http] + 1))
  MIN_OUT[http]=$((MIN_OUT[http] + SMALL_SIZE))

  up="http://127.0.0.1:$FWD_UPLOAD/upload"
  upload_case() {  # DESC CURL-ARGS...
    local desc=$1 reply
    shift
    if run curl "${CURL[@]}" -o "$TMP/reply" "$@" "$up"; then
      reply=$(cat "$TMP/reply")
      check "$desc: server saw sha256 and length of the 3 MiB file" [ "$reply" == "$UPLOAD_SHA $UPLOAD_SIZE" ]
    else
      failed "$desc through ugated (curl exit non-zero)"
    fi
    CONNS[upload]=$((CONNS[upload] + 1))
    MIN_IN[upload]=$((MIN_IN[upload] + UPLOAD_SIZE))
  }
  upload_case "PUT upload (Content-Length, Expect: 100-continue)" -T "$TMP/upload.bin"
  upload_case "POST upload (--data-binary)" --data-binary "@$TMP/upload.bin"
  upload_case "chunked PUT upload" -T "$TMP/upload.bin" -H "Transfer-Encoding: chunked"

  # 50 parallel downloads: every 5th is the 5 MiB file, the rest the small one.
  declare -a par_pids=() par_files=() par_want=()
  for ((i = 0; i < 50; i++)); do
    if ((i % 5 == 0)); then f=big.bin want=$BIG_SHA size=$BIG_SIZE; else f=small.txt want=$SMALL_SHA size=$SMALL_SIZE; fi
    spawn "curl-$i" "${CURL[@]}" -o "$TMP/dl/par.$i" "$base/$f?n=$i"
    par_pids+=("$SPAWNED")
    par_files+=("$TMP/dl/par.$i")
    par_want+=("$want")
    CONNS[http]=$((CONNS[http] + 1))
    MIN_OUT[http]=$((MIN_OUT[http] + size))
  done
  par_ok=0
  par_bad=""
  for ((i = 0; i < 50; i++)); do
    if reap "${par_pids[$i]}" && [[ -f "${par_files[$i]}" && "$(sha "${par_files[$i]}")" == "${par_want[$i]}" ]]; then
      par_ok=$((par_ok + 1))
    else
      par_bad+=" $i"
    fi
  done
  if ((par_ok == 50)); then pass "50 parallel downloads (10 x 5 MiB, 40 small): all succeeded, sha256 match"
  else failed "50 parallel downloads: only $par_ok succeeded with the right sha256 (bad:$par_bad)"; fi
else
  skip "(1) curl cases: need curl and python3"
fi

expect_ugated_running "(1)"

# ---- (2) iperf3 -------------------------------------------------------------------------------

say "== (2) iperf3 through ugated (2 s per run; Gbit/s informational only)"
# iperf_run NAME PORT ARGS...: one iperf3 client run into $TMP/iperf.NAME.json; retries only when the
# server reports it is still busy with the previous test. Returns iperf3's exit status, or 1 when the
# JSON has an "error" (iperf3 3.12 -J exits 0 even on "unable to connect to server").
iperf_run() {
  local name=$1 port=$2 rc
  shift 2
  for _ in 1 2 3; do
    rc=0
    run "iperf3-$name" timeout 15 iperf3 -c 127.0.0.1 -p "$port" -t 2 -J --connect-timeout 3000 "$@" \
      >"$TMP/iperf.$name.json" 2>"$TMP/iperf.$name.err" || rc=$?
    if ((rc == 0)) && grep -Eq '^[[:space:]]*"error":' "$TMP/iperf.$name.json"; then rc=1; fi
    if ((rc != 0)) && grep -qi 'busy' "$TMP/iperf.$name.json" "$TMP/iperf.$name.err" 2>/dev/null; then
      sleep 0.5
      continue
    fi
    break
  done
  return "$rc"
}
# iperf_summary FILE: "<received bits/s> <received bytes> <sent bytes>" from iperf3 -J output.
iperf_summary() {
  python3 - "$1" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
if d.get("error"):
    print("0 0 0")
else:
    e = d["end"]
    print(f'{e["sum_received"]["bits_per_second"]:.0f} {int(e["sum_received"]["bytes"])} {int(e["sum_sent"]["bytes"])}')
EOF
}
declare -A GBPS=()
if ((HAVE_IPERF)); then
  for mode in normal reverse p4; do
    case $mode in
      normal) margs=() ;;
      reverse) margs=(-R) ;;
      p4) margs=(-P 4) ;;
    esac
    for path in direct ugated; do
      port=$BE_IPERF
      [[ $path == ugated ]] && port=$FWD_IPERF
      name="$mode.$path"
      rc=0
      iperf_run "$name" "$port" "${margs[@]}" || rc=$?
      if [[ $path == ugated ]]; then
        # Control connection + one data connection per stream.
        streams=1
        [[ $mode == p4 ]] && streams=4
        CONNS[iperf]=$((CONNS[iperf] + 1 + streams))
      fi
      if ((rc != 0)); then
        if [[ $path == ugated ]]; then
          failed "iperf3 $mode via ugated: exit $rc $(head -c 300 "$TMP/iperf.$name.err") $(grep -Eo '"error":.*' "$TMP/iperf.$name.json" | head -c 300)"
        else
          say "  note  iperf3 $mode direct (reference only) failed: $(grep -Eo '"error":.*' "$TMP/iperf.$name.json" | head -c 300)"
        fi
        continue
      fi
      if ((HAVE_PY)); then
        read -r bps rbytes _ < <(iperf_summary "$TMP/iperf.$name.json")
        GBPS[$name]=$(awk -v b="$bps" 'BEGIN { printf "%.2f", b / 1e9 }')
        if [[ $path == ugated ]]; then
          check "iperf3 $mode via ugated: exit 0, ${GBPS[$name]} Gbit/s > 0" [ "$bps" -gt 0 ]
          if [[ $mode == reverse ]]; then
            MIN_OUT[iperf]=$((MIN_OUT[iperf] + rbytes))
          else
            MIN_IN[iperf]=$((MIN_IN[iperf] + rbytes))
          fi
        fi
      else
        if [[ $path == ugated ]]; then
          check "iperf3 $mode via ugated: exit 0, reports bits_per_second (no python3: not parsed)" \
            grep -q '"bits_per_second"' "$TMP/iperf.$name.json"
        fi
      fi
    done
  done
  if ((HAVE_PY)); then
    say "  throughput (informational, not asserted):"
    for mode in normal reverse p4; do
      d=${GBPS[$mode.direct]:-n/a} u=${GBPS[$mode.ugated]:-n/a}
      ratio=$(awk -v d="$d" -v u="$u" 'BEGIN { if (d + 0 > 0 && u + 0 > 0) printf "%.0f%%", 100 * u / d; else print "n/a" }')
      printf '    %-8s direct %8s Gbit/s   via ugated %8s Gbit/s   (%s of direct)\n' "$mode" "$d" "$u" "$ratio"
    done
  else
    skip "iperf3 throughput table: needs python3 to parse iperf3 -J"
  fi
else
  skip "(2) iperf3 cases: iperf3 not found"
fi

expect_ugated_running "(2)"

# ---- (3) IPv6 ---------------------------------------------------------------------------------

say "== (3) IPv6 listener [::1]:$FWD_HTTP6 -> [::1]:$BE_HTTP6"
if ((!HAVE_V6)); then
  skip "(3) IPv6: no ::1 on lo"
elif ((HAVE_CURL && HAVE_PY)); then
  base6="http://[::1]:$FWD_HTTP6"
  if run curl "${CURL[@]}" -g -o "$TMP/dl/big6.bin" "$base6/big.bin"; then
    check "IPv6 5 MiB download: sha256 matches" [ "$(sha "$TMP/dl/big6.bin")" == "$BIG_SHA" ]
  else
    failed "IPv6 5 MiB download through ugated (curl exit non-zero)"
  fi
  if run curl "${CURL[@]}" -g -o "$TMP/dl/small6.txt" "$base6/small.txt"; then
    check "IPv6 small download: sha256 matches" [ "$(sha "$TMP/dl/small6.txt")" == "$SMALL_SHA" ]
  else
    failed "IPv6 small download through ugated (curl exit non-zero)"
  fi
  CONNS[http6]=2
  MIN_OUT[http6]=$((BIG_SIZE + SMALL_SIZE))
else
  skip "(3) IPv6 curl case: needs curl and python3"
fi

expect_ugated_running "(3)"

# ---- (4) /stats and the access log ------------------------------------------------------------

say "== (4) /stats and access log agree with the traffic"
stats_val() {  # METRIC{labels}: its value in $TMP/stats.txt (the last /stats fetched), or empty
  awk -v k="$1" '$1 == k { print $2; exit }' "$TMP/stats.txt"
}
stats_and_access_log() {
  # Byte counters are added when a stream closes: wait until nothing is open any more.
  idle() {
    admin /stats >"$TMP/stats.txt" 2>/dev/null || return 1
    [[ "$(stats_val ugate_streams_active)" == 0 ]]
  }
  total_conns=$((CONNS[http] + CONNS[upload] + CONNS[iperf] + CONNS[http6]))
  log_lines() { [[ -f "$TMP/access.log" ]] && wc -l <"$TMP/access.log" || echo 0; }
  access_log_complete() { (($(log_lines) >= total_conns)); }
  if wait_for "ugate_streams_active 0" 50 idle; then
    pass "all streams closed (ugate_streams_active 0)"
  else
    failed "streams still open after the traffic: $(stats_val ugate_streams_active)"
  fi
  wait_for "access log lines" 30 access_log_complete || true

  if ((HAVE_PY)); then
    # Per listener from the access log: lines, lines with close ok, sum bytes_in, sum bytes_out,
    # min bytes_in, and whether every line parsed as JSON with the expected fields.
    python3 - "$TMP/access.log" >"$TMP/alog.txt" <<'EOF'
import json, sys, collections
agg = collections.defaultdict(lambda: {"lines": 0, "ok": 0, "in": 0, "out": 0, "min_in": None, "reasons": collections.Counter()})
bad = 0
for raw in open(sys.argv[1], encoding="utf-8", errors="replace"):
    try:
        e = json.loads(raw)
        a = agg[e["listener"]]
        a["lines"] += 1
        a["in"] += int(e["bytes_in"])
        a["out"] += int(e["bytes_out"])
        a["min_in"] = int(e["bytes_in"]) if a["min_in"] is None else min(a["min_in"], int(e["bytes_in"]))
        a["reasons"][e["close"]] += 1
        a["ok"] += e["close"] == "ok"
        for k in ("time", "id", "src", "local", "upstream_addr", "duration_ms"):
            e[k]
    except Exception:
        bad += 1
print(f"_bad {bad}")
for name, a in agg.items():
    reasons = ",".join(f"{k}:{v}" for k, v in sorted(a["reasons"].items()))
    print(f'{name} {a["lines"]} {a["ok"]} {a["in"]} {a["out"]} {a["min_in"] or 0} {reasons}')
EOF
    expect_eq "access log: every line is JSON with the expected fields (unparseable lines)" \
      "$(awk '$1 == "_bad" { print $2 }' "$TMP/alog.txt")" 0
  else
    : >"$TMP/alog.txt"
    skip "access log JSON checks: need python3"
  fi
  alog() {  # LISTENER FIELD(2=lines 3=ok 4=in 5=out 6=min_in 7=reasons)
    awk -v l="$1" -v f="$2" '$1 == l { print $f; found = 1 } END { if (!found) print (f == 7 ? "-" : 0) }' "$TMP/alog.txt"
  }

  for l in http upload http6 iperf; do
    n=${CONNS[$l]}
    ((n > 0)) || continue
    conns=$(stats_val "ugate_listener_connections_total{listener=\"$l\"}")
    rx=$(stats_val "ugate_listener_received_bytes_total{listener=\"$l\"}")
    tx=$(stats_val "ugate_listener_sent_bytes_total{listener=\"$l\"}")
    okc=$(stats_val "ugate_listener_closes_total{listener=\"$l\",reason=\"ok\"}")
    if [[ $l == iperf ]]; then
      # iperf3 may open extra connections (e.g. a retried run): at least the ones we count.
      expect_ge "stats $l: connections_total" "$conns" "$n"
    else
      expect_eq "stats $l: connections_total" "$conns" "$n"
      expect_eq "stats $l: closes_total{reason=ok}" "$okc" "$n"
      # shellcheck disable=SC2016  # $1/$2 expand in the inner bash
      check "stats $l: no ugate_listener_errors_total" \
        bash -c '! grep -q "^ugate_listener_errors_total{listener=\"$1\"" "$2"' _ "$l" "$TMP/stats.txt"
    fi
    expect_ge "stats $l: received_bytes_total >= bytes clients sent" "$rx" "${MIN_IN[$l]}"
    expect_ge "stats $l: sent_bytes_total >= bytes clients got" "$tx" "${MIN_OUT[$l]}"
    if ((HAVE_PY)); then
      expect_eq "access log $l: one line per connection" "$(alog "$l" 2)" "$conns"
      if [[ $l == iperf ]]; then
        say "  info  access log iperf close reasons: $(alog iperf 7)"
      else
        expect_eq "access log $l: \"close\":\"ok\" lines" "$(alog "$l" 3)" "$n"
      fi
      expect_eq "access log $l: sum of bytes_in == stats received_bytes_total" "$(alog "$l" 4)" "$rx"
      expect_eq "access log $l: sum of bytes_out == stats sent_bytes_total" "$(alog "$l" 5)" "$tx"
    fi
  done
  if ((HAVE_PY && CONNS[upload] > 0)); then
    expect_ge "access log upload: each upload stream carried the whole 3 MiB body (min bytes_in)" "$(alog upload 6)" "$UPLOAD_SIZE"
  fi
  if ((HAVE_PY && CONNS[http6] > 0)); then
    # shellcheck disable=SC2016  # $1 expands in the inner bash
    check "access log http6: src and upstream_addr are [::1]" \
      bash -c 'grep "\"listener\":\"http6\"" "$1" | grep -q "\"src\":\"\[::1\]:" && ! grep "\"listener\":\"http6\"" "$1" | grep -v "\"upstream_addr\":\"\[::1\]:" | grep -q .' _ "$TMP/access.log"
  fi
  if ((total_conns == 0)); then skip "(4) nothing was sent (all traffic cases skipped)"; fi
}
if ugated_alive; then
  stats_and_access_log
else
  failed "(4) ugated is not running: /stats and the access log cannot be checked"
fi

# ---- (5) SIGHUP reload, SIGTERM drain ---------------------------------------------------------

say "== (5) SIGHUP reload and SIGTERM"
if ugated_alive; then
  kill -HUP "$UGATED_PID"
  reloaded() { admin /stats >"$TMP/stats.txt" 2>/dev/null && [[ "$(stats_val 'ugate_config_reloads_total{result="ok"}')" == 1 ]]; }
  check "SIGHUP: config_reloads_total{result=ok} becomes 1" wait_for "reload" 50 reloaded
  check "SIGHUP: still /ready" ready
  if ((HAVE_CURL && HAVE_PY)); then
    if run curl "${CURL[@]}" -o "$TMP/dl/after-hup.txt" "http://127.0.0.1:$FWD_HTTP/small.txt"; then
      check "SIGHUP: still forwards (small download sha256 matches)" [ "$(sha "$TMP/dl/after-hup.txt")" == "$SMALL_SHA" ]
    else
      failed "SIGHUP: download after reload (curl exit non-zero)"
    fi
  fi

  kill -TERM "$UGATED_PID"
  exited() { ! ours "$UGATED_PID" || [[ "$(awk '{print $3}' "/proc/$UGATED_PID/stat" 2>/dev/null)" == Z ]]; }
  if wait_for "ugated to exit after SIGTERM" 100 exited; then
    rc=0
    reap "$UGATED_PID" || rc=$?
    expect_eq "SIGTERM: ugated exit status" "$rc" 0
    check "SIGTERM: ugated logged the drain" grep -qi 'drain' "$TMP/ugated.log"
  else
    failed "SIGTERM: ugated still running after 10 s"
  fi
  if grep -Eqi '\b(critical|sanitizer|assert)' "$TMP/ugated.log"; then
    failed "ugated log has critical/sanitizer/assert lines: $(grep -Ei '\b(critical|sanitizer|assert)' "$TMP/ugated.log" | head -3)"
  fi
else
  failed "(5) ugated is not running: SIGHUP/SIGTERM cannot be checked"
fi

say "== done in $((SECONDS - START_SECONDS)) s ($SKIPPED skipped)"
# cleanup (EXIT trap) prints "peers: N passed, M failed" and sets the exit status.
