#!/usr/bin/env bash
# install_test.sh: `cmake --install` into a temporary DESTDIR (never into the real /), three times:
#   1. a first install puts the binary, the systemd unit, /etc/ugate/ugated.json and
#      ugated.json.default (both the shipped default) in place; the installed binary runs and
#      validates the installed config; the unit's ExecStart names the installed binary;
#   2. after the operator edits /etc/ugate/ugated.json, a second install keeps the edit (and says so),
#      while the binary, the unit and ugated.json.default are installed again;
#   3. with ugated.json removed, a third install puts the default back.
#
#   bash install_test.sh /path/to/ugated
#
# The build tree is $UGATE_BUILD_DIR (ctest sets it; default: the directory of ugated) and cmake is
# $UGATE_CMAKE (default: cmake on PATH). The temp dir is removed (INSTALL_KEEP_TMP=1 keeps it). The
# last line is "install: N passed, M failed".
set -euo pipefail

readonly TEST_NAME=install
readonly WATCHDOG_SECONDS=120
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BUILD=${UGATE_BUILD_DIR:-$(dirname "$UGATED")}
CMAKE=${UGATE_CMAKE:-cmake}
SRC=$(cd "$TESTS_DIR/../.." && pwd)
if [[ ! -f "$BUILD/cmake_install.cmake" ]] || ! have "$CMAKE"; then
  say "SKIP: no cmake_install.cmake in $BUILD or no $CMAKE: cannot test the install rules"
  say "install: 0 passed, 0 failed"
  trap - EXIT
  exit 77
fi
start_tmp
DEST="$TMP/root"
PREFIX=/usr/local  # the unit's ExecStart path; everything lands under $DEST

accepts() { "$BIN" --check-config "$1" >/dev/null; }
expect_str() { if [[ "$2" == "$3" ]]; then pass "$1"; else failed "$1: got '$2', want '$3'"; fi; }
# install_once N: cmake --install with DESTDIR=$DEST (never without it), output in install-N.log.
install_once() {
  [[ "$DEST" == "$TMP"/* ]] || { failed "refusing to install outside the temp dir ($DEST)"; exit 1; }
  local rc=0
  run "install-$1" env DESTDIR="$DEST" "$CMAKE" --install "$BUILD" --prefix "$PREFIX" >"$TMP/install-$1.log" 2>&1 || rc=$?
  expect_eq "cmake --install #$1 succeeds" "$rc" 0
}
BIN="$DEST$PREFIX/bin/ugated"
UNIT="$DEST$PREFIX/lib/systemd/system/ugated.service"
CFG="$DEST/etc/ugate/ugated.json"
DEFAULT_SHA=$(sha "$SRC/configs/default.json")

say "== first install (build tree $BUILD, DESTDIR $DEST)"
install_once 1
check "the binary is installed and executable" [ -x "$BIN" ]
expect_str "the installed binary runs (its BoringSSL is found)" "$("$BIN" --version 2>&1)" "$("$UGATED" --version)"
check "the systemd unit is installed as shipped" cmp -s "$UNIT" "$SRC/configs/systemd/ugated.service"
exec_start=$(sed -n 's/^ExecStart=\([^ ]*\) .*/\1/p' "$UNIT")
check "the unit's ExecStart ($exec_start) is the installed binary" [ -x "$DEST$exec_start" ]
check "the unit reads the installed config" grep -q '^ExecStart=.* --config /etc/ugate/ugated.json$' "$UNIT"
expect_str "/etc/ugate/ugated.json is the shipped default" "$(sha "$CFG")" "$DEFAULT_SHA"
expect_str "/etc/ugate/ugated.json.default is the shipped default" "$(sha "$CFG.default")" "$DEFAULT_SHA"
check "the installed binary accepts the installed config" accepts "$CFG"
# shellcheck disable=SC2016  # $1 expands in the inner bash
check "nothing was installed outside DESTDIR's etc and usr" \
  bash -c '[ -z "$(find "$1" -mindepth 1 -maxdepth 1 ! -name etc ! -name usr)" ]' _ "$DEST"

say "== the operator edits the config, then installs again"
cat >"$CFG" <<'EOF'
{
  "node": { "name": "edited-by-the-operator" },
  "admin": { "address": "127.0.0.1:15000" },
  "listeners": [ { "name": "fwd", "kind": "tcp", "address": "127.0.0.1:18080", "to": "127.0.0.1:80" } ]
}
EOF
EDITED_SHA=$(sha "$CFG")
touch -d '2001-01-01 00:00:00' "$BIN"  # so a reinstall of the binary shows
install_once 2
expect_str "the edited /etc/ugate/ugated.json survives the second install" "$(sha "$CFG")" "$EDITED_SHA"
check "the install said it kept it" grep -q "Kept: $CFG (exists" "$TMP/install-2.log"
expect_str "ugated.json.default is still the shipped default" "$(sha "$CFG.default")" "$DEFAULT_SHA"
check "the binary was installed again" [ "$(stat -c %Y "$BIN")" -gt "$(date -d '2001-01-02' +%s)" ]
check "the unit is still there" cmp -s "$UNIT" "$SRC/configs/systemd/ugated.service"
check "the installed binary accepts the edited config" accepts "$CFG"

say "== with the config removed, an install puts the default back"
rm -f "$CFG"
install_once 3
expect_str "/etc/ugate/ugated.json is the shipped default again" "$(sha "$CFG")" "$DEFAULT_SHA"
check "the install said it installed it" grep -q "Installing: $CFG\$" "$TMP/install-3.log"
