#!/usr/bin/env bash
# Runs the loopback demo: two ie-demo-peer processes (responder, initiator) on 127.0.0.1
# complete a Noise IK handshake, hand out PSP keys and exchange ILP packets. Prints both
# sides' logs (responder's first) and exits non-zero unless both succeeded.
#   tests/demo/loopback.sh PATH/TO/ie-demo-peer [PACKETS]
set -euo pipefail
peer="${1:?usage: loopback.sh PATH/TO/ie-demo-peer [PACKETS]}"
packets="${2:-20}"
work="$(mktemp -d)"
resp_pid=""
cleanup() {
  if [ -n "$resp_pid" ] && kill -0 "$resp_pid" 2>/dev/null; then kill "$resp_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

resp_pub="$("$peer" genkey "$work/responder.key")"
init_pub="$("$peer" genkey "$work/initiator.key")"
# A free UDP port on loopback for the responder.
port="$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

"$peer" responder --key "$work/responder.key" --listen "127.0.0.1:$port" --peer-pub "$init_pub" \
  >"$work/responder.log" 2>&1 &
resp_pid=$!
# Wait (bounded) until the responder has bound its socket.
for _ in $(seq 1 50); do
  grep -q "UDP socket on" "$work/responder.log" 2>/dev/null && break
  sleep 0.1
done

init_rc=0
"$peer" initiator --key "$work/initiator.key" --connect "127.0.0.1:$port" --peer-pub "$resp_pub" \
  --packets "$packets" >"$work/initiator.log" 2>&1 || init_rc=$?
resp_rc=0
wait "$resp_pid" || resp_rc=$?
resp_pid=""

echo "---- responder (127.0.0.1:$port) ----"
cat "$work/responder.log"
echo "---- initiator ----"
cat "$work/initiator.log"
echo "----"
if [ "$init_rc" -ne 0 ] || [ "$resp_rc" -ne 0 ]; then
  echo "demo FAILED (initiator exit $init_rc, responder exit $resp_rc)"
  exit 1
fi
grep -q "all $packets packets echoed back" "$work/initiator.log"
echo "demo OK: handshake, key hand-out and $packets ILP packets each way over loopback UDP"
