#!/usr/bin/env bash
# The demo command (README "command 1"): installs what it needs (Debian 12 packages), builds
# the release preset's programs and brings up a whole local InterEdge in network namespaces:
# three reference SNs (iesn) in two edomains, a dnsmasq, and two hosts running the host daemon
# ied; ping, curl (from python3's http.server) and iperf3 cross both edomains, iectl shows
# what happened (tests/demo/hosts.sh). Everything is torn down at the end, also on failure
# and Ctrl-C. See docs/demo.md.
#
#   sudo tests/demo.sh [--keep]                   the hosts demo (real ied, curl, iperf3)
#   sudo tests/demo.sh --testhosts [--packets N]  the SN demo with test hosts sending N
#                                                 packets (tests/demo/edomains.sh)
#   sudo tests/demo.sh --loopback [PACKETS]       the association demo: two ie-demo-peer
#                                                 processes on 127.0.0.1 (tests/demo/loopback.sh)
#   --build-dir DIR   build in DIR (cmake --preset release -B DIR) instead of build/release
#   --keep            leave the InterEdge up until Ctrl-C, printing commands to try
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; }
mode=hosts
packets=""
keep=()
build_dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --loopback) mode=loopback; shift ;;
    --testhosts) mode=edomains; shift ;;
    --packets)
      [ $# -ge 2 ] || { usage >&2; exit 2; }
      packets="$2"; shift 2 ;;
    --keep) keep=(--keep); shift ;;
    --build-dir)
      [ $# -ge 2 ] || { usage >&2; exit 2; }
      build_dir="$2"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    [0-9]*) packets="$1"; shift ;;  # `tests/demo.sh 1000`, as before
    *) usage >&2; exit 2 ;;
  esac
done
if [ -n "$packets" ] && ! [[ "$packets" =~ ^[0-9]+$ ]]; then
  echo "demo.sh: the packet count must be a number, got '$packets'" >&2
  exit 2
fi
if [ "$mode" != loopback ] && [ "$(id -u)" -ne 0 ]; then
  echo "demo.sh: the demo creates network namespaces and links: run it as root" \
    "(sudo tests/demo.sh), or run tests/demo.sh --loopback" >&2
  exit 2
fi

echo "== step 1: dependencies (packaging/install-deps.sh) and build (release preset)"
if ! packaging/install-deps.sh; then
  echo "demo.sh: dependencies missing; run as root (sudo tests/demo.sh) to install them" >&2
  exit 2
fi
case "$mode" in
  loopback) targets=(ie-demo-peer) ;;
  edomains) targets=(iesn ie-testhost) ;;
  *) targets=(iesn ie-testhost ied iectl) ;;
esac
if [ -n "$build_dir" ]; then
  cmake --preset release -B "$build_dir" >/dev/null
else
  cmake --preset release >/dev/null
  build_dir=build/release
fi
echo "   building ${targets[*]} in $build_dir (the first build takes a few minutes)"
if ! cmake --build "$build_dir" --target "${targets[@]}" -j "$(nproc)" >"$build_dir/demo-build.log" 2>&1; then
  tail -n 40 "$build_dir/demo-build.log" >&2
  echo "demo.sh: build failed (log: $build_dir/demo-build.log)" >&2
  exit 1
fi
bin="$(cd "$build_dir/bin" && pwd)"

if [ "$mode" = loopback ]; then
  echo "== running the loopback demo"
  exec tests/demo/loopback.sh "$bin/ie-demo-peer" "${packets:-20}"
fi
if [ "$mode" = edomains ]; then
  exec tests/demo/edomains.sh --iesn "$bin/iesn" --testhost "$bin/ie-testhost" \
    --packets "${packets:-200}" "${keep[@]}"
fi
exec tests/demo/hosts.sh --iesn "$bin/iesn" --testhost "$bin/ie-testhost" --ied "$bin/ied" \
  --iectl "$bin/iectl" "${keep[@]}"
