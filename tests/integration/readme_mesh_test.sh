#!/usr/bin/env bash
# readme_mesh_test.sh: README.md's mesh walk-through, run exactly as written. The lines between the
# markers `<!-- readme-mesh-walkthrough:begin -->` and `...:end` are read from README.md and run one
# by one, as a person types them, from a directory that looks like the repository root (configs/ is
# the repository's own), with the ugated under test first in PATH. A line ending in `&` starts a
# background process (tracked by PID, ended at exit); before the next line runs, the test waits the
# way a person would: for the processes' ports to listen. The last line (curl) is retried until the
# association is up. Everything runs in a network namespace this script creates, so the README's
# fixed ports (15000, 15001, 15008, 1080, 8080) cannot collide with anything else on the machine.
#
#   bash readme_mesh_test.sh /path/to/ugated
#
# Checked: every line exits 0; the curl prints alice's listing of docs/; alice's admin port and
# gw's own ports are refused over the mesh (the paragraph after the walk-through); both access logs
# (stdout) show the stream. The last line is "readme_mesh: N passed, M failed".
set -euo pipefail

readonly TEST_NAME=readme_mesh
readonly WATCHDOG_SECONDS=90
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in ip curl python3; do have "$tool" || skip_all "$tool not found (scripts/install-deps.sh installs it)"; done
[[ $(id -u) == 0 ]] || skip_all "needs root for a network namespace"
REPO=$(cd "$TESTS_DIR/../.." && pwd)
README=$REPO/README.md

NS=ugr-$$
test_cleanup() { ip netns del "$NS" 2>/dev/null || true; }
if ! ip netns add "$NS" 2>/dev/null; then skip_all "cannot create network namespaces here"; fi
ip -n "$NS" link set lo up

start_tmp
cd "$TMP"
mkdir -p work/bin
ln -s "$REPO/configs" work/configs
ln -s "$REPO/docs" work/docs
ln -s "$UGATED" work/bin/ugated

mapfile -t LINES < <(awk '/<!-- readme-mesh-walkthrough:begin -->/ { on = 1; next }
                          /<!-- readme-mesh-walkthrough:end -->/ { on = 0 }
                          on && !/^```/ && NF' "$README")
check "README.md has the mesh walk-through between its markers" [ "${#LINES[@]}" -ge 5 ]
((${#LINES[@]} >= 5)) || exit 1

# in_ns LINE: run one README line, as written, in the namespace from the work directory.
in_ns() { ip netns exec "$NS" env PATH="$TMP/work/bin:$PATH" bash -c "cd '$TMP/work' && $1"; }
# ns_listening PORT: something listens on PORT in the namespace.
ns_listening() { ip netns exec "$NS" bash -c "$(declare -f listening); listening $1"; }
gw_listening() { ns_listening 15008 && ns_listening 1080 && ns_listening 15000; }

n=0 last=""
for line in "${LINES[@]}"; do
  n=$((n + 1))
  cmd=${line%%#*}                           # the comment is the README's, not the shell's business
  cmd=$(sed -e 's/[[:space:]]*$//' <<<"$cmd")
  if [[ "$cmd" == *"&" ]]; then
    cmd=${cmd%&}
    spawn "line-$n" ip netns exec "$NS" env PATH="$TMP/work/bin:$PATH" bash -c "cd '$TMP/work' && exec $cmd" \
      >"$TMP/line-$n.log" 2>&1
    say "  ...   line $n in the background (pid $SPAWNED): $cmd"
    # Wait as a person would: for what the line serves to listen.
    case "$cmd" in
      *http.server*) wait_for "line $n's port 8080" 100 ns_listening 8080 || true ;;
      *mesh-gateway.json*) wait_for "gw's ports" 100 gw_listening || true ;;
      *mesh-node.json*) wait_for "alice's admin port" 100 ns_listening 15001 || true ;;
    esac
    check "line $n is running: $cmd" ours "$SPAWNED"
  elif [[ $n -lt ${#LINES[@]} ]]; then
    rc=0
    in_ns "$cmd" >"$TMP/line-$n.log" 2>&1 || rc=$?
    check "line $n exits 0: $cmd" [ "$rc" -eq 0 ]
    ((rc == 0)) || sed -n 1,10p "$TMP/line-$n.log"
  else
    last=$cmd
  fi
done

# The last line is the client: retried while alice's association comes up (a person would retry too).
say "  ...   last line: $last"
got=""
for ((i = 0; i < 50; i++)); do
  if got=$(in_ns "$last" 2>"$TMP/curl.err"); then break; fi
  got=""
  sleep 0.2
done
check "the README's curl reaches alice's 8080 through gw (the listing of docs/)" grep -q "SECURITY.md" <<<"$got"
[[ -n "$got" ]] || sed -n 1,5p "$TMP/curl.err"

say "== what alice and gw do not expose (the paragraph after the walk-through)"
out=$(in_ns "curl -sS --max-time 5 --socks5-hostname 127.0.0.1:1080 http://alice.mesh:15001/stats" 2>&1 || true)
check "alice's admin port is refused through gw" [ "${out#*ugate_}" = "$out" ]
check "... curl: SOCKS reply 2 (connection not allowed by ruleset)" grep -qF "Can't complete SOCKS5 connection to alice.mesh. (2)" <<<"$out"
out=$(in_ns "curl -sS --max-time 5 --socks5-hostname 127.0.0.1:1080 http://alice.mesh:1080/" 2>&1 || true)
check "another of alice's ports is refused" grep -qF "Can't complete SOCKS5 connection to alice.mesh. (2)" <<<"$out"
gwlog="" alicelog=""
for f in "$TMP"/line-*.log; do
  if grep -q '"listener":"socks"' "$f" 2>/dev/null; then gwlog=$f; fi
  if grep -q '"listener":"upstream:gw"' "$f" 2>/dev/null; then alicelog=$f; fi
done
check "gw's access log (stdout) has the SOCKS stream to alice.mesh:8080" \
  grep -q '"listener":"socks".*"host":"alice.mesh:8080".*"close":"ok"' "${gwlog:-/dev/null}"
check "alice's access log (stdout) has it arriving over her association" \
  grep -q '"listener":"upstream:gw".*"host":"alice.mesh:8080"' "${alicelog:-/dev/null}"
check "alice's access log has the refusal of her admin port" \
  grep -q '"host":"alice.mesh:15001".*"close":"not_exposed"' "${alicelog:-/dev/null}"
