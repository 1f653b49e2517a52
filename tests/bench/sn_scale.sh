#!/usr/bin/env bash
# The SN scale benchmark (docs/performance.md "Scale"; issue 3: 100,000 peer pipes against
# one iesn, rotation every 180 s, CPU share and resident memory; target <= 0.15 core and
# <= 512 MiB).
#
#   sn_scale.sh BUILD_DIR [PIPES=100000] [WINDOW_S=60] [ROTATE_S=180] [RATE=2000] [MAX_HS=0]
#               [IDLE=never]
#
# Starts iesn (one worker, pinned to CPU 1, listening on 127.0.0.1, rekey_seconds = ROTATE_S)
# and ie-pipes (pinned to CPU 0) with PIPES simulated hosts, each re-keying every ROTATE_S
# seconds on average (uniformly within +-1/12 of it, so that re-keys spread out; ie-pipes
# --rotate); waits until every pipe is established; then measures iesn over WINDOW_S seconds:
# CPU time (utime + stime deltas from /proc/PID/stat; ie-pipes' too, and both sides' UDP
# receive-queue drops, to see which side falls behind), VmRSS / VmHWM, and associations
# (handshakes) per second from `iesn status --json`. With ROTATE_S < 180 (e.g. 30, so
# rotation is seen within a short window) it also prints the CPU share scaled to a 180 s
# rotation period: the re-key part (handshake cost) shrinks by ROTATE_S / 180, the rest
# (keepalives, timers) stays; see "scaled" below for the formula.
#
# MAX_HS: iesn's responder handshake budget (`[sn] max_handshakes_per_second` in the
# iesn.toml written here, the same as `iesn run --max-handshakes`; 0: no limit).
# IDLE: what an idle simulated host sends between re-keys (ie-pipes --idle-keepalive):
# `never` (nothing; it finds out whether its SN is alive when it has something to send, as a
# WireGuard peer does) or `always` (a PROBE every 10 s, which the SN answers).
#
# Baseline measured in the same run: one X25519 operation on iesn's CPU (bench_noise's
# BM_X25519, if BUILD_DIR/bin holds it), since an IK responder's work is four of them and the
# VM's speed moves (30 us on 2026-11-25, 69 us on 2026-12-03): iesn's CPU is also printed in
# X25519 operations per second and per handshake, a figure that does not depend on it.
#
# Loopback only, no root. Builds nothing: BUILD_DIR/bin must hold iesn and ie-pipes.
# Every process started here is stopped on exit (also on failure or Ctrl-C).
set -euo pipefail

build="${1:?usage: sn_scale.sh BUILD_DIR [PIPES] [WINDOW_S] [ROTATE_S] [RATE] [MAX_HS] [IDLE]}"
pipes="${2:-100000}"
window="${3:-60}"
rotate="${4:-180}"
rate="${5:-2000}"
max_hs="${6:-0}"
idle="${7:-never}"
case "$idle" in never|always) ;; *) echo "sn_scale: IDLE must be never or always" >&2; exit 2 ;; esac
bin="$build/bin"
for b in iesn ie-pipes; do
  [ -x "$bin/$b" ] || { echo "sn_scale: $bin/$b missing (build it first)" >&2; exit 2; }
done
ncpu="$(nproc)"
sn_cpu=1
load_cpu=0
[ "$ncpu" -ge 2 ] || { sn_cpu=0; echo "sn_scale: one CPU: iesn and ie-pipes share it" >&2; }

work="$(mktemp -d /tmp/sn_scale.XXXXXX)"
sn_pid=""
load_pid=""
cleanup() {
  for p in "$load_pid" "$sn_pid"; do
    [ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true
  done
  for p in "$load_pid" "$sn_pid"; do
    [ -z "$p" ] && continue
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

x25519_ns=0
if [ -x "$bin/bench_noise" ]; then
  x25519_ns="$(taskset -c "$sn_cpu" "$bin/bench_noise" --benchmark_filter='^BM_X25519$' \
    --benchmark_format=json 2>/dev/null | python3 -c \
    'import json,sys; print(json.load(sys.stdin)["benchmarks"][0]["cpu_time"])' || echo 0)"
fi

port=$((20000 + RANDOM % 20000))
"$bin/iesn" genkey "$work/sn.key" >"$work/sn.pub"
sn_pub="$(tr -d '\n' <"$work/sn.pub")"
cat >"$work/iesn.toml" <<EOF
[sn]
name = "scale.sn1"
listen = "127.0.0.1:$port"
workers = 1
private_key_file = "$work/sn.key"
state_db = ""
control_socket = "$work/iesn.sock"
cache_capacity = 1000000
max_handshakes_per_second = $max_hs

[edomain]
gateway = "scale.sn1"
rekey_seconds = $rotate
EOF
taskset -c "$sn_cpu" "$bin/iesn" run --config "$work/iesn.toml" --log-level warn \
  >"$work/iesn.log" 2>&1 &
sn_pid=$!
for _ in $(seq 1 100); do [ -S "$work/iesn.sock" ] && break; sleep 0.1; done
[ -S "$work/iesn.sock" ] || { echo "sn_scale: iesn did not start" >&2; cat "$work/iesn.log" >&2; exit 1; }

# iesn's status socket is served between packet batches; a saturated iesn (a rotation wave)
# can miss a query's timeout, so ask up to 5 times.
status_json() {
  local i
  for i in 1 2 3 4 5; do
    "$bin/iesn" status --socket "$work/iesn.sock" --json && return 0
    sleep 2
  done
  echo "sn_scale: iesn status did not answer 5 times" >&2
  return 1
}
handshakes() {
  local j
  j="$(status_json)" || return 1
  python3 -c 'import json,sys; print(json.loads(sys.argv[1])["association"]["handshakes"])' "$j"
}
# ie-pipes' count of completed rekeys, from its newest progress line (every 10 s): the
# fallback when iesn is too busy to answer status (its answer needs a snapshot of every pipe).
rekeys_now() { grep "^t=" "$work/pipes.log" | tail -n 1 | sed -n 's/.* rekeys=\([0-9]*\).*/\1/p'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Datagrams the kernel dropped because a process's UDP sockets' receive queues were full (the
# drops column of /proc/net/udp, summed over the sockets PID holds): who falls behind.
udp_drops() {
  local inodes
  inodes="$(ls -l "/proc/$1/fd" 2>/dev/null | sed -n 's/.*socket:\[\([0-9]*\)\]/\1/p' | tr '\n' ' ')"
  awk -v list="$inodes" 'BEGIN { n = split(list, a, " "); for (i = 1; i <= n; i++) want[a[i]] = 1 }
    NR > 1 && ($10 in want) { d += $13 } END { print d + 0 }' /proc/net/udp
}
vm() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

bringup_timeout=$(( pipes / rate * 3 + 120 ))
taskset -c "$load_cpu" "$bin/ie-pipes" --sn "127.0.0.1:$port" --sn-key "$sn_pub" \
  --pipes "$pipes" --rate "$rate" --rotate "$rotate" --bringup-timeout "$bringup_timeout" \
  --idle-keepalive "$idle" --progress 10 >"$work/pipes.json" 2>"$work/pipes.log" &
load_pid=$!
echo "sn_scale: $pipes pipes, rate $rate/s, rotate ${rotate}s, window ${window}s," \
  "iesn max_handshakes_per_second $max_hs, idle hosts' keepalives: $idle;" \
  "iesn pid $sn_pid on CPU $sn_cpu, ie-pipes pid $load_pid on CPU $load_cpu"

t0=$(date +%s)
rss_before="$(vm "$sn_pid" VmRSS)"
cpu_b0="$(cpu_ticks "$sn_pid")"
while ! grep -q -e '^ALL_UP' -e '^bring-up timeout' "$work/pipes.log"; do
  kill -0 "$load_pid" 2>/dev/null || { echo "sn_scale: ie-pipes died" >&2; cat "$work/pipes.log" >&2; exit 1; }
  [ $(( $(date +%s) - t0 )) -le $(( bringup_timeout + 30 )) ] || { echo "sn_scale: no bring-up" >&2; exit 1; }
  sleep 1
done
grep -e '^ALL_UP' -e '^bring-up timeout' "$work/pipes.log"
bringup_s=$(( $(date +%s) - t0 ))
cpu_b1="$(cpu_ticks "$sn_pid")"
grep "^t=" "$work/pipes.log" | tail -n 1 || true

hz="$(getconf CLK_TCK)"
hs0="$(handshakes || true)"
r0="$(rekeys_now)"
c0="$(cpu_ticks "$sn_pid")"
l0="$(cpu_ticks "$load_pid")"
d0_sn="$(udp_drops "$sn_pid")"
d0_load="$(udp_drops "$load_pid")"
load0="$(cut -d' ' -f1-3 /proc/loadavg)"
w0="$(date +%s.%N)"
sleep "$window"
c1="$(cpu_ticks "$sn_pid")"
l1="$(cpu_ticks "$load_pid")"
d1_sn="$(udp_drops "$sn_pid")"
d1_load="$(udp_drops "$load_pid")"
load1="$(cut -d' ' -f1-3 /proc/loadavg)"
w1="$(date +%s.%N)"
r1="$(rekeys_now)"
hs1="$(handshakes || true)"
rss="$(vm "$sn_pid" VmRSS)"
hwm="$(vm "$sn_pid" VmHWM)"
status_json >"$work/status.json" || echo '{}' >"$work/status.json"
grep "^t=" "$work/pipes.log" | tail -n 1 || true
kill -TERM "$load_pid"
wait "$load_pid" || true
load_pid=""

python3 - "$work/status.json" "$work/pipes.json" <<EOF
import json, sys
st = json.load(open(sys.argv[1]))
pj = json.load(open(sys.argv[2]))
hz, c0, c1, w0, w1 = $hz, $c0, $c1, $w0, $w1
hs0, hs1, rotate, pipes = "$hs0", "$hs1", $rotate, $pipes
x_us = float("$x25519_ns") / 1000
wall = w1 - w0
cores = (c1 - c0) / hz / wall
if hs0 and hs1:
  hs_source, hps = "iesn status", (int(hs1) - int(hs0)) / wall
else:
  hs_source, hps = "ie-pipes rekeys (iesn status did not answer)", (int("$r1" or 0) - int("$r0" or 0)) / wall
# Scaled to a 180 s rotation: the handshake part of the CPU falls with the handshake rate;
# the per-handshake cost is estimated from the bring-up (mostly handshakes) below.
bring_cores_s = ($cpu_b1 - $cpu_b0) / hz
per_hs = bring_cores_s / max(1, pj["associations"]) if pj["associations"] else 0
hs_part = min(cores, hps * per_hs)
scaled = cores - hs_part + hs_part * min(1.0, rotate / 180.0)
print(json.dumps({
  "pipes": pipes, "established_sn": st.get("pipe_summary", {}).get("established"),
  "established_load": pj["established_now"], "failed": pj["failed"],
  "rotate_s": rotate, "window_s": round(wall, 1), "bringup_s": $bringup_s,
  "iesn_cpu_cores_measured": round(cores, 4),
  "load_cpu_cores_measured": round(($l1 - $l0) / hz / wall, 4),
  "iesn_udp_drops": $d1_sn - $d0_sn, "load_udp_drops": $d1_load - $d0_load,
  "loadavg_start": "$load0", "loadavg_end": "$load1",
  "iesn_cpu_cores_scaled_to_180s": round(scaled, 4),
  "iesn_us_per_association_bringup": round(per_hs * 1e6, 1),
  "handshakes_per_s": round(hps, 1), "handshakes_from": hs_source,
  "x25519_us_on_iesn_cpu": round(x_us, 1) if x_us else None,
  "iesn_cpu_in_x25519_per_s": round(cores * 1e6 / x_us) if x_us else None,
  "iesn_cpu_in_x25519_per_handshake": round(cores * 1e6 / x_us / hps, 2) if x_us and hps else None,
  "iesn_rss_mib": round($rss / 1024, 1), "iesn_hwm_mib": round($hwm / 1024, 1),
  "iesn_rss_before_mib": round($rss_before / 1024, 1),
  "load_rss_mib": round(pj["rss_mib"], 1), "load_rekeys": pj["rekeys"],
  "load_dead": pj["dead"], "load_reassociations": pj["reassociations"],
  "load_tx_errors": pj["tx_errors"],
}, indent=1))
EOF
