#!/usr/bin/env bash
# The demo command (README "command 1"): installs what it needs (Debian 12 packages), builds
# the release preset's demo program and runs the loopback demo: two processes complete a
# Noise IK handshake, hand each other PSP keys over the encrypted control channel and
# exchange ILP packets over UDP on 127.0.0.1, printing every step.
#
#   sudo tests/demo.sh [PACKETS]      (default 20 packets each way)
#
# Later issues grow this into a whole local InterEdge (SNs in two edomains, hosts in
# network namespaces); see docs/demo.md.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
if ! packaging/install-deps.sh; then
  echo "demo.sh: dependencies missing; run as root (sudo tests/demo.sh) to install them" >&2
  exit 2
fi
echo "== building (release preset)"
cmake --preset release >/dev/null
cmake --build --preset release --target ie-demo-peer -j "$(nproc)" >/dev/null
echo "== running the loopback demo"
exec tests/demo/loopback.sh build/release/bin/ie-demo-peer "${1:-20}"
