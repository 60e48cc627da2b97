#!/usr/bin/env bash
# Installs everything ugate needs to build, test and benchmark on Debian 12 (bookworm) or Debian 13.
# Idempotent: safe to run again. On bookworm it enables bookworm-backports (for ngtcp2/nghttp3 1.x)
# using the mirror URI the machine's own apt sources already use; no host name is hard-coded here.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")

# The mirror URI of the main Debian archive, read from the machine's apt configuration.
debian_uri() {
  local f uri=""
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    # deb822: take the URIs of a stanza whose Suites include the release codename itself.
    uri=$(awk -v c="$codename" '
      /^[[:space:]]*$/ { if (u != "" && s) { print u; exit } u=""; s=0; next }
      /^URIs:/ { u=$2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == c) s=1 }
      END { if (u != "" && s) print u }' "$f" | head -n1)
    [ -n "$uri" ] && { echo "$uri"; return; }
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    uri=$(awk -v c="$codename" '$1 == "deb" {
      j = 2; if ($2 ~ /^\[/) { while ($j !~ /\]$/) j++; j++ }
      if ($(j+1) == c) { print $j; exit } }' "$f")
    [ -n "$uri" ] && { echo "$uri"; return; }
  done
}

backports=""
if [ "$codename" = "bookworm" ]; then
  list=/etc/apt/sources.list.d/ugate-backports.list
  if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    uri=$(debian_uri)
    if [ -z "$uri" ]; then
      echo "install-deps: cannot find the Debian mirror URI in the apt sources" >&2
      exit 1
    fi
    echo "install-deps: adding bookworm-backports from $uri"
    echo "deb $uri bookworm-backports main" | $SUDO tee "$list" >/dev/null
  fi
  backports="bookworm-backports"
fi

stamp=/var/lib/apt/periodic/ugate-update-stamp
if [ ! -f "$stamp" ] || [ -n "$(find /etc/apt -newer "$stamp" -name '*.list' -o -newer "$stamp" -name '*.sources' 2>/dev/null)" ] \
   || [ "$(find "$stamp" -mmin +720 2>/dev/null)" ]; then
  $SUDO apt-get update -q
  $SUDO mkdir -p "$(dirname "$stamp")" && $SUDO touch "$stamp"
fi

build_pkgs=(
  build-essential cmake ninja-build ccache pkg-config clang libclang-rt-dev
  android-libboringssl-dev libnghttp2-dev libnl-3-dev libnl-route-3-dev
  libspdlog-dev nlohmann-json3-dev libgtest-dev libgmock-dev libbenchmark-dev libc-ares-dev libsqlite3-dev
  libprotobuf-dev protobuf-compiler
)
quic_pkgs=(libngtcp2-dev libnghttp3-dev)
peer_pkgs=(
  curl openssl iperf3 wrk nghttp2-client nginx libnginx-mod-stream haproxy socat
  iptables nftables iproute2 conntrack netcat-openbsd python3 procps psmisc strace util-linux
  python3-socks dante-server microsocks jq
  chromium  # headless, for stats_page_test.sh (the admin's live stats page)
)
if [ "${UGATE_DEPS_MINIMAL:-0}" = "1" ]; then peer_pkgs=(curl iperf3 python3 procps); fi

missing=()
# The QUIC tests' peers (gtlsclient, gtlsserver: ngtcp2's example client and server).
quic_tools=(ngtcp2-client ngtcp2-server)
if [ "${UGATE_DEPS_MINIMAL:-0}" = "1" ]; then quic_tools=(); fi
for p in "${build_pkgs[@]}" "${quic_pkgs[@]}" "${quic_tools[@]}" "${peer_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get install -y -q --no-install-recommends "${build_pkgs[@]}" "${peer_pkgs[@]}"
if [ -n "$backports" ]; then
  # ngtcp2/nghttp3 1.x and their example clients only exist in backports on bookworm.
  $SUDO apt-get install -y -q --no-install-recommends -t "$backports" "${quic_pkgs[@]}" ngtcp2-client ngtcp2-server || \
    $SUDO apt-get install -y -q --no-install-recommends -t "$backports" "${quic_pkgs[@]}"
else
  $SUDO apt-get install -y -q --no-install-recommends "${quic_pkgs[@]}" ngtcp2-client ngtcp2-server || \
    $SUDO apt-get install -y -q --no-install-recommends "${quic_pkgs[@]}"
fi
# nginx/haproxy/danted packages start services on install where an init system runs; the benchmarks
# start their own instances, so stop any that came up.
for svc in nginx haproxy danted; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
    $SUDO systemctl stop "$svc" || true
  fi
done
echo "install-deps: done"
