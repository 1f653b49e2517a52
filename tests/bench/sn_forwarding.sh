#!/usr/bin/env bash
# SN forwarding benchmark (issue 3, "Performance"; results in docs/performance.md): measures
# in one run, side by side, 64-byte payloads over loopback inside a fresh network namespace,
# sender and receivers being ie-blast processes:
#   a) baseline   ie-blast --plain -> ie-udpfwd (recvmmsg -> sendmmsg) -> ie-blast --plain
#   b) hit        ie-blast --ilp -> iesn (service ip: decision-cache hit after the first
#                 packet; PSP open + re-seal) -> ie-blast --ilp
#   c) null       the same with service null (every packet crosses the module boundary)
#   d) 1k vs 1M   the hit path after pre-filling the cache with 1k, then 1M flows (one
#                 connection id each), traffic spread over all of them; and 1M entries with
#                 one hot flow
#   e) multicast  the example fanout module replicating to N = 1, 2, 4, 8 hosts at full
#                 input rate, and ie-udpfwd --seal doing the same with plain UDP (one seal +
#                 one send per copy): CPU per input packet -> cost per extra destination
#   f) latency    everything pinned to one CPU, a paced sender: p50/p99 one-way, direct vs
#                 via ie-udpfwd vs via iesn
#
#   +------------- netns iebench-PID (lo only) ------------------------------------+
#   | CPU 0: ie-blast send ----> CPU 1: ie-udpfwd | iesn ----> CPU 0: ie-blast recv |
#   +--------------------------------------------------------------------------------+
#   (case f: all three on CPU 0)
#
# Forwarder cost is measured as CPU time (all threads, /proc/PID/task/*/schedstat) per
# packet it forwarded, so it does not depend on whether the sender could saturate it on this
# 2-core machine; delivered packets/s (the receiver's first-to-last packet rate) is printed
# next to it. Ratios are against the baseline of the same run.
#
#   sudo tests/bench/sn_forwarding.sh BUILD_DIR [--seconds S] [--json FILE] [--skip-1m]
# Needs root (network namespace). Builds nothing: BUILD_DIR/bin must hold iesn, ie-blast and
# ie-udpfwd (and BUILD_DIR/lib/libie_sn_example_fanout.so for case e). Cleans up every
# process, the namespace and the temporary folder on exit, also on failure or Ctrl-C.
set -euo pipefail

usage() {
  echo "usage: $0 BUILD_DIR [--seconds S] [--json FILE] [--skip-1m]" >&2
  exit 2
}
build="${1:-}"
[ -n "$build" ] || usage
shift
secs=3           # measured phase of each throughput case
json_out=""
skip_1m=0
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) secs="${2:?}"; shift 2 ;;
    --json) json_out="${2:?}"; shift 2 ;;
    --skip-1m) skip_1m=1; shift ;;
    *) usage ;;
  esac
done
bin="$build/bin"
fanout_so="$build/lib/libie_sn_example_fanout.so"
for b in iesn ie-blast ie-udpfwd; do
  [ -x "$bin/$b" ] || { echo "sn_forwarding: $bin/$b missing (build it first)" >&2; exit 1; }
done
if [ "$(id -u)" != 0 ]; then
  echo "sn_forwarding: needs root (network namespace)" >&2
  exit 1
fi
command -v jq >/dev/null || { echo "sn_forwarding: needs jq" >&2; exit 1; }
ncpu="$(nproc)"
[ "$ncpu" -ge 2 ] || { echo "sn_forwarding: needs 2 CPUs" >&2; exit 1; }

ns="iebench-$$-$RANDOM"
work="$(mktemp -d /tmp/iebench.XXXXXX)"
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 1 40); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$p" 2>/dev/null || true
  done
  # Anything still in the namespace is ours (it is unique to this run).
  for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$ns"
ip -n "$ns" link set lo up
in_ns() { ip netns exec "$ns" "$@"; }
log() { echo "[$(date +%T)] $*" >&2; }

# wait_for CMD... : retry every 50 ms for at most 10 s.
wait_for() {
  for _ in $(seq 1 200); do "$@" >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "sn_forwarding: timed out waiting for: $*" >&2
  return 1
}
# Nanoseconds of CPU used by every thread of a process.
cpu_ns() {
  cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f\n", s}'
}
# wait_idle PID: until the process used < 2 ms of CPU in 100 ms (at most 10 s).
wait_idle() {
  local a b
  a="$(cpu_ns "$1")"
  for _ in $(seq 1 100); do
    sleep 0.1
    b="$(cpu_ns "$1")"
    [ $((b - a)) -lt 2000000 ] && return 0
    a="$b"
  done
}
# stop PID: SIGTERM, wait (bounded), SIGKILL; forget the pid.
stop() {
  local p="$1" i
  kill -TERM "$p" 2>/dev/null || true
  for i in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
  kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
  local keep=()
  for i in "${pids[@]}"; do [ "$i" = "$p" ] || keep+=("$i"); done
  pids=("${keep[@]}")
}
# A process in the namespace pinned to CPUs $1, output to $2; sets $last_pid.
spawn() {
  local cpus="$1" out="$2"
  shift 2
  # A simple command (not the in_ns function), so $! is the program itself: ip and taskset
  # exec it in place.
  ip netns exec "$ns" taskset -c "$cpus" "$@" >"$out" 2>"$out.err" &
  last_pid=$!
  pids+=("$last_pid")
}

# ---- iesn ------------------------------------------------------------------------------
sn_port=7000
sn_key_file="$work/sn.key"
sn_pub="$("$bin/iesn" genkey "$sn_key_file")"
sn_pid=""
# start_sn CPUS CACHE_CAPACITY [FANOUT_TO]: a fresh iesn (one worker) and its config.
start_sn() {
  local cpus="$1" capacity="$2" fanout_to="${3:-}"
  local conf="$work/iesn.toml"
  rm -f "$work/iesn.sock" "$work/iesn.db"*
  cat >"$conf" <<EOF
[sn]
name = "bench.sn1"
listen = "127.0.0.1:$sn_port"
workers = 1
private_key_file = "$sn_key_file"
state_db = "$work/iesn.db"
control_socket = "$work/iesn.sock"
cache_capacity = $capacity
host_prefixes = ["10.1.0.0/16"]

[edomain]
gateway = "bench.sn1"
EOF
  if [ -n "$fanout_to" ]; then
    cat >>"$conf" <<EOF

[modules]
load = ["$fanout_so"]

[modules.fanout]
to = "$fanout_to"
EOF
  fi
  spawn "$cpus" "$work/iesn.log" "$bin/iesn" run --config "$conf" --log-level warn
  sn_pid="$last_pid"
  wait_for test -S "$work/iesn.sock"
  wait_for in_ns "$bin/iesn" status --socket "$work/iesn.sock"
}
stop_sn() {
  [ -n "$sn_pid" ] && stop "$sn_pid"
  sn_pid=""
}
sn_json() { in_ns "$bin/iesn" "$1" --socket "$work/iesn.sock" --json; }

# ---- one measured case -----------------------------------------------------------------
# run_case NAME FWD_PID COUNTER CPUS "RECV ARGS|RECV ARGS..." "SEND ARGS"
# (RECV ARGS empty: receivers are managed by the caller; R_RECV etc. stay 0.)
# Starts the receivers (wait until ready), then the sender; when the sender reaches its
# measured phase (after any prefill, nothing in flight) it waits on a sync file while we
# snapshot the forwarder's CPU time and its forwarded counter (the shell function COUNTER,
# or "-"); then it sends; 0.3 s after it is done we snapshot again, and the receivers stop
# 2 s after their last packet (long enough for the
# snapshot: iesn forgets a pipe when its host leaves). Sets R_* globals. FWD_PID "-": no forwarder (direct).
run_case() {
  local name="$1" fwd="$2" counter="$3" cpus="$4" recvs="$5" send="$6"
  local i=0 rpids=() args p recv_list=()
  [ -n "$recvs" ] && IFS='|' read -r -a recv_list <<<"$recvs"
  for args in "${recv_list[@]}"; do
    rm -f "$work/ready.$i"
    # shellcheck disable=SC2086
    spawn "$cpus" "$work/$name.recv.$i.json" "$bin/ie-blast" recv $args \
      --ready-file "$work/ready.$i" --duration $((secs + 120)) --idle 2
    rpids+=("$last_pid")
    i=$((i + 1))
  done
  for i in "${!rpids[@]}"; do wait_for test -f "$work/ready.$i"; done
  [ -n "$recvs" ] || i=0
  local sync="$work/sync.$name"
  rm -f "$sync"
  # shellcheck disable=SC2086
  spawn "$cpus" "$work/$name.send.json" "$bin/ie-blast" send $send --sync-file "$sync"
  local spid="$last_pid"
  for _ in $(seq 1 1200); do  # prefill may take a while: at most 60 s
    [ -f "$sync" ] && break
    kill -0 "$spid" 2>/dev/null || break
    sleep 0.05
  done
  [ -f "$sync" ] || { echo "sn_forwarding: $name: sender never reached the measured phase:" >&2; cat "$work/$name.send.json.err" >&2; return 1; }
  local c0=0 c1=0 f0=0 f1=0
  if [ "$fwd" != - ]; then c0="$(cpu_ns "$fwd")"; fi
  if [ "$counter" != - ]; then f0="$($counter)" || return 1; fi
  rm -f "$sync"
  for _ in $(seq 1 $(((secs + 30) * 20))); do kill -0 "$spid" 2>/dev/null || break; sleep 0.05; done
  stop "$spid"
  # Let the forwarder drain its queue (until it stops using CPU), then snapshot while the
  # receivers' pipes still exist (iesn forgets a pipe's counters when its host leaves).
  sleep 0.1
  [ "$fwd" != - ] && wait_idle "$fwd"
  if [ "$fwd" != - ]; then c1="$(cpu_ns "$fwd")"; fi
  if [ "$counter" != - ]; then
    f1="$($counter)" || return 1
    if [ "$f1" = "$f0" ]; then
      echo "sn_forwarding: $name: the forwarded counter did not move; pipes:" >&2
      jq -c '.pipes[]? | [.id, .kind, .rx_packets, .tx_packets]' "$work/last_pipes.json" >&2 || true
    fi
  fi
  for p in "${rpids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
    stop "$p"
  done
  [ -s "$work/$name.send.json" ] || { echo "sn_forwarding: $name: sender failed:" >&2; cat "$work/$name.send.json.err" >&2; return 1; }
  R_CPU_NS=$((c1 - c0))
  R_FWD=$((f1 - f0))
  R_SENT="$(jq -r .sent "$work/$name.send.json")"
  R_SEND_CPU="$(jq -r .cpu_seconds "$work/$name.send.json")"
  R_RECV=0
  R_RATE=0
  R_P50=0
  R_P99=0
  for i in "${!rpids[@]}"; do
    local f="$work/$name.recv.$i.json"
    [ -s "$f" ] || { echo "sn_forwarding: $name: receiver $i wrote nothing:" >&2; cat "$f.err" >&2; return 1; }
    R_RECV=$((R_RECV + $(jq -r .received "$f")))
    if [ "$i" = 0 ]; then
      R_RATE="$(jq -r .rate_pps "$f")"
      R_P50="$(jq -r .latency_ns.p50 "$f")"
      R_P99="$(jq -r .latency_ns.p99 "$f")"
    fi
  done
  return 0
}

results="$work/results.json"
echo '{}' >"$results"
put() { # put KEY JSON-VALUE
  jq --arg k "$1" --argjson v "$2" '.[$k] = $v' "$results" >"$results.tmp" && mv "$results.tmp" "$results"
}
# record NAME FORWARDED: one throughput case's figures.
record() {
  local name="$1" fwd_pkts="$2"
  local ns_pkt=0
  [ "$fwd_pkts" -gt 0 ] && ns_pkt=$((R_CPU_NS / fwd_pkts))
  put "$name" "{\"sent\":$R_SENT,\"received\":$R_RECV,\"forwarded\":$fwd_pkts,\"delivered_pps\":$R_RATE,\"fwd_cpu_ns\":$R_CPU_NS,\"fwd_ns_per_packet\":$ns_pkt,\"sender_cpu_s\":$R_SEND_CPU,\"p50_ns\":$R_P50,\"p99_ns\":$R_P99}"
  log "$name: sent $R_SENT, received $R_RECV, forwarded $fwd_pkts, $(printf %.0f "$R_RATE") pps delivered, forwarder ${ns_pkt} ns CPU/packet"
}
# Packets iesn sent on its pipes (sum of tx_packets): its forwarded count.
sn_tx_packets() {
  local v=""
  for _ in 1 2 3 4 5; do  # the control socket may time out right after a burst: retry
    sn_json pipes >"$work/last_pipes.json" 2>&1 || true
    v="$(jq '[(.pipes // .)[] | .tx_packets] | add // 0' "$work/last_pipes.json" 2>/dev/null)"
    [ -n "$v" ] && break
    sleep 0.2
  done
  [ -n "$v" ] || { echo "sn_forwarding: cannot read iesn's pipe counters" >&2; return 1; }
  echo "$v"
}

ilp_recv() { # ilp_recv INNER_ADDR [extra]
  echo "--ilp --sn 127.0.0.1:$sn_port --sn-key $sn_pub --addr $1 --listen 127.0.0.1:0 ${2:-}"
}
ilp_send() { # ilp_send SERVICE [extra]
  echo "--ilp --sn 127.0.0.1:$sn_port --sn-key $sn_pub --addr ${send_addr:-10.1.0.1} --dst 10.1.0.2 --service $1 --size 64 ${2:-}"
}

# ---- a) baseline ---------------------------------------------------------------------------
log "a) baseline: plain UDP forwarder, ${secs}s"
spawn 1 "$work/udpfwd.json" "$bin/ie-udpfwd" --listen 127.0.0.1:7100 --to 127.0.0.1:7201 \
  --threads 1 --ready-file "$work/udpfwd.ready"
fwd_pid="$last_pid"
wait_for test -f "$work/udpfwd.ready"
run_case baseline "$fwd_pid" - 0 "--plain --listen 127.0.0.1:7201" \
  "--plain --to 127.0.0.1:7100 --size 64 --duration $secs"
stop "$fwd_pid"
record baseline "$(jq -r .forwarded "$work/udpfwd.json")"

# ---- b) hit path, c) null path -----------------------------------------------------------
for svc in ip null; do
  name=hit
  letter=b
  [ "$svc" = null ] && name=null && letter=c
  log "$letter) iesn, service $svc, ${secs}s"
  start_sn 1 1000000
  run_case "$name" "$sn_pid" sn_tx_packets 0 "$(ilp_recv 10.1.0.2)" \
    "$(ilp_send $svc "--duration $secs")"
  sn_json counters >"$work/$name.counters.json"
  stop_sn
  record "$name" "$R_FWD"
  put "$name.cache" "$(jq -c '.cache' "$work/$name.counters.json")"
done

# ---- d) 1k vs 1M cache entries -------------------------------------------------------------
# One iesn and one receiver per table size (cache entries name the receiver's pipe). Prefill
# passes (separate ie-blast runs, each registering its own inner address; the cache key is the
# outer source address 127.0.0.1 + service + connection id, the same for every sender here)
# repeat until the cache holds the flows (at most 4 passes). Then measured phases:
#   1k entries: traffic over the 1k flows (cache1k);
#   1M entries: traffic over all 1M flows (cache1m_all_a/_b: every lookup touches cold memory)
#               alternating with traffic over 1k of them (cache1m_hot_a/_b: the same table,
#               a cache-resident working set), ABAB, so run-to-run noise cancels in the ratio.
# Delivered packets/s here is forwarded / time.
cache_case() { # cache_case TAG FLOWS PHASE:FLOWS...
  local tag="$1" flows="$2" pass size=0
  shift 2
  start_sn 1 2000000
  rm -f "$work/ready.d"
  # shellcheck disable=SC2046
  spawn 0 "$work/cache$tag.recv.json" "$bin/ie-blast" recv $(ilp_recv 10.1.0.2) \
    --ready-file "$work/ready.d" --duration 600 --idle 0
  local rpid="$last_pid"
  wait_for test -f "$work/ready.d"
  for pass in 1 2 3 4; do
    log "d) cache$tag: prefill pass $pass, $flows flows"
    # shellcheck disable=SC2046
    in_ns taskset -c 0 "$bin/ie-blast" send \
      $(send_addr="10.1.0.$((100 + pass))" ilp_send ip "--prefill $flows --prefill-rate 100000") \
      >"$work/prefill$tag.$pass.json" 2>&1 ||
      { cat "$work/prefill$tag.$pass.json" >&2; return 1; }
    size="$(sn_json counters | jq .cache.size)"
    [ "$size" -ge $((flows * 995 / 1000)) ] && break
  done
  put "cache$tag.entries" "$size"
  # Measured anyway from 95% (the rest of the flows take the module path once, then hit).
  if [ "$size" -lt $((flows * 95 / 100)) ]; then
    log "d) cache$tag: NOT MEASURED: prefill reached only $size of $flows entries (iesn too slow here?)"
    stop "$rpid"
    stop_sn
    return 0
  fi
  local phase name f a=10
  for phase in "$@"; do
    name="${phase%%:*}"
    f="${phase##*:}"
    a=$((a + 1))  # a fresh inner address per sender: the SN may not have seen the last close
    log "d) $name: $size entries, ${secs}s over $f flow(s)"
    local h0 h1
    h0="$(sn_json counters | jq .cache.hits)"
    run_case "$name" "$sn_pid" sn_tx_packets 0 "" \
      "$(send_addr="10.1.0.$a" ilp_send ip "--duration $secs --flows $f")"
    h1="$(sn_json counters | jq .cache.hits)"
    R_RATE="$(jq -n "$R_FWD / $(jq .seconds "$work/$name.send.json")")"
    record "$name" "$R_FWD"
    # Share of the forwarded packets that took the hit path (the rest went to the module).
    put "$name.hit_ratio" "$(jq -n "if $R_FWD > 0 then ($h1 - $h0) / $R_FWD else 0 end")"
  done
  sn_json counters >"$work/cache$tag.counters.json"
  stop "$rpid"
  stop_sn
  put "cache$tag.cache" "$(jq -c '.cache' "$work/cache$tag.counters.json")"
}
cache_case 1k 1000 cache1k:1000
if [ "$skip_1m" = 0 ]; then
  cache_case 1m 1000000 cache1m_all_a:1000000 cache1m_hot_a:1000 cache1m_all_b:1000000 \
    cache1m_hot_b:1000
fi

# ---- e) multicast ----------------------------------------------------------------------------
# At full input rate, N = 1, 2, 4, 8 receiving hosts, CPU per INPUT packet (each forwarded
# input makes N copies): iesn with the fanout example module, and the baseline ie-udpfwd
# --seal replicating every datagram to N plain receivers, sealing each copy for its
# destination (exactly one seal + one send per copy). The slope over N is the cost of an
# extra destination; the target compares the two slopes.
if [ -f "$fanout_so" ]; then
  for n in 1 2 4 8; do
    to=""
    recvs=""
    plain_to=""
    plain_recvs=""
    for k in $(seq 1 "$n"); do
      to="${to:+$to,}10.1.1.$k"
      recvs="${recvs:+$recvs|}$(ilp_recv "10.1.1.$k" --any-dst)"
      plain_to="$plain_to --to 127.0.0.1:$((7300 + k))"
      plain_recvs="${plain_recvs:+$plain_recvs|}--plain --listen 127.0.0.1:$((7300 + k))"
    done
    log "e) sealing UDP fanout to $n host(s), ${secs}s"
    # shellcheck disable=SC2086
    spawn 1 "$work/sealfan$n.json" "$bin/ie-udpfwd" --listen 127.0.0.1:7100 $plain_to --seal \
      --threads 1 --ready-file "$work/sealfan$n.ready"
    fwd_pid="$last_pid"
    wait_for test -f "$work/sealfan$n.ready"
    run_case "sealfan$n" "$fwd_pid" - 0 "$plain_recvs" \
      "--plain --to 127.0.0.1:7100 --size 64 --duration $secs"
    stop "$fwd_pid"
    record "sealfan$n" "$(jq -r .forwarded "$work/sealfan$n.json")"
    put "sealfan$n.ns_per_input" "$(jq ".sealfan$n | if .forwarded > 0 then (.fwd_cpu_ns * $n / .forwarded | floor) else 0 end" "$results")"

    log "e) iesn fanout to $n host(s), ${secs}s"
    start_sn 1 1000000 "$to"
    run_case "fanout$n" "$sn_pid" sn_tx_packets 0 "$recvs" \
      "$(ilp_send 32769 "--duration $secs")"
    stop_sn
    record "fanout$n" "$R_FWD"
    put "fanout$n.ns_per_input" "$((R_FWD > 0 ? R_CPU_NS * n / R_FWD : 0))"
  done
else
  log "e) skipped: $fanout_so not built"
fi

# ---- f) latency, everything on CPU 0 ----------------------------------------------------------
lat_args="--rate 2000 --duration 2"
log "f) latency on one CPU: direct"
run_case lat_direct - - 0 "--plain --listen 127.0.0.1:7301" \
  "--plain --to 127.0.0.1:7301 --size 64 $lat_args"
put lat_direct "{\"p50_ns\":$R_P50,\"p99_ns\":$R_P99,\"received\":$R_RECV}"
log "f) latency on one CPU: ie-udpfwd"
spawn 0 "$work/udpfwd2.json" "$bin/ie-udpfwd" --listen 127.0.0.1:7101 --to 127.0.0.1:7302 \
  --threads 1 --ready-file "$work/udpfwd2.ready"
fwd_pid="$last_pid"
wait_for test -f "$work/udpfwd2.ready"
run_case lat_udpfwd "$fwd_pid" - 0 "--plain --listen 127.0.0.1:7302" \
  "--plain --to 127.0.0.1:7101 --size 64 $lat_args"
stop "$fwd_pid"
put lat_udpfwd "{\"p50_ns\":$R_P50,\"p99_ns\":$R_P99,\"received\":$R_RECV}"
log "f) latency on one CPU: iesn (hit path)"
start_sn 0 1000000
run_case lat_iesn "$sn_pid" - 0 "$(ilp_recv 10.1.0.2)" "$(ilp_send ip "$lat_args")"
stop_sn
put lat_iesn "{\"p50_ns\":$R_P50,\"p99_ns\":$R_P99,\"received\":$R_RECV}"

# ---- report ----------------------------------------------------------------------------------
if [ -n "$json_out" ]; then cp "$results" "$json_out"; fi
# Per-core capacity = 1e9 / (forwarder CPU ns per forwarded packet); "x base" compares it (and
# delivered packets/s) with case a. Delivered "-": not measured (d: no receivers; e, --seal:
# the receivers cannot open what they get).
jq -r '
  def r(x): (x * 1000 | round) / 1000;
  def div(a; b): if (b // 0) > 0 and a != null then r(a / b) else "n/a" end;
  def row(k; title):
    if has(k) then
      .[k] as $c | .baseline as $b |
      "\(title)\t\(if $c.delivered_pps > 0 then "\($c.delivered_pps / 1000 | round) kpps\t\(div($c.delivered_pps; $b.delivered_pps))" else "-\t-" end)\t\($c.fwd_ns_per_packet) ns\t\(if $c.fwd_ns_per_packet > 0 then (1e6 / $c.fwd_ns_per_packet | round) else "n/a" end) kpps\t\(div($b.fwd_ns_per_packet; $c.fwd_ns_per_packet))\t\($c.sent)/\(if $c.received > 0 then $c.received else "-" end)"
    else empty end;
  "case\tdelivered\tx base\tfwd CPU/pkt\tper core\tx base\tsent/received",
  row("baseline"; "a) ie-udpfwd (plain)"),
  row("hit"; "b) iesn hit path (ip)"),
  row("null"; "c) iesn null service"),
  row("cache1k"; "d) hit, 1k entries, 1k flows"),
  row("cache1m_all_a"; "d) hit, 1M entries, 1M flows (A)"),
  row("cache1m_hot_a"; "d) hit, 1M entries, 1k flows (A)"),
  row("cache1m_all_b"; "d) hit, 1M entries, 1M flows (B)"),
  row("cache1m_hot_b"; "d) hit, 1M entries, 1k flows (B)"),
  row("sealfan1"; "e) ie-udpfwd --seal, 1 dest"),
  row("sealfan2"; "e) ie-udpfwd --seal, 2 dests"),
  row("sealfan4"; "e) ie-udpfwd --seal, 4 dests"),
  row("sealfan8"; "e) ie-udpfwd --seal, 8 dests"),
  row("fanout1"; "e) iesn fanout, 1 dest"),
  row("fanout2"; "e) iesn fanout, 2 dests"),
  row("fanout4"; "e) iesn fanout, 4 dests"),
  row("fanout8"; "e) iesn fanout, 8 dests")
' "$results" | column -t -s $'\t'
echo
jq -r '
  def r(x): (x * 1000 | round) / 1000;
  def div(a; b): if (b // 0) > 0 and a != null then r(a / b) else "n/a" end;
  (if has("hit") then
     "hit path / baseline, per-core capacity: \(div(.baseline.fwd_ns_per_packet; .hit.fwd_ns_per_packet)); delivered: \(div(.hit.delivered_pps; .baseline.delivered_pps))   [target >= 0.8]" else empty end),
  (if has("hit") and has("null") then
     "null service / hit path, per-core capacity: \(div(.hit.fwd_ns_per_packet; .null.fwd_ns_per_packet)); delivered: \(div(.null.delivered_pps; .hit.delivered_pps))   [target >= 0.7]" else empty end),
  (if has("cache1m_all_b") then
     ((.cache1m_all_a.fwd_ns_per_packet + .cache1m_all_b.fwd_ns_per_packet) / 2) as $all |
     ((.cache1m_hot_a.fwd_ns_per_packet + .cache1m_hot_b.fwd_ns_per_packet) / 2) as $hot |
     "1M entries / 1k entries (two SNs), traffic over every entry, per-core capacity: \(div(.cache1k.fwd_ns_per_packet; $all))   [target >= 0.95]",
     "1M entries: 1M active flows / 1k active flows (same SN, ABAB), per-core capacity: \(div($hot; $all)) (A \(div(.cache1m_hot_a.fwd_ns_per_packet; .cache1m_all_a.fwd_ns_per_packet)), B \(div(.cache1m_hot_b.fwd_ns_per_packet; .cache1m_all_b.fwd_ns_per_packet))); hit ratio over 1M flows \(r(."cache1m_all_a.hit_ratio")) / \(r(."cache1m_all_b.hit_ratio"))"
   elif has("cache1m.entries") then
     "1M entries: NOT MEASURED (prefill reached \(."cache1m.entries") entries)" else empty end),
  (if has("cache1k.entries") then
     "cache entries after prefill: \(."cache1k.entries") and \(."cache1m.entries" // "-")" else empty end),
  (if has("fanout8") and has("sealfan8") then
     ((."fanout8.ns_per_input" - ."fanout1.ns_per_input") / 7) as $extra |
     ((."sealfan8.ns_per_input" - ."sealfan1.ns_per_input") / 7) as $base |
     "multicast, CPU per input packet for 1, 2, 4, 8 destinations: iesn \(."fanout1.ns_per_input") / \(."fanout2.ns_per_input") / \(."fanout4.ns_per_input") / \(."fanout8.ns_per_input") ns, ie-udpfwd --seal \(."sealfan1.ns_per_input") / \(."sealfan2.ns_per_input") / \(."sealfan4.ns_per_input") / \(."sealfan8.ns_per_input") ns; per extra destination iesn \($extra | round) ns, one seal + one send \($base | round) ns: \(div($extra; $base))x   [target <= 1.2]" else empty end),
  (if has("lat_iesn") then
     "latency on one CPU, p50: direct \(.lat_direct.p50_ns) ns, via ie-udpfwd \(.lat_udpfwd.p50_ns) ns, via iesn \(.lat_iesn.p50_ns) ns; added by ie-udpfwd \(.lat_udpfwd.p50_ns - .lat_direct.p50_ns) ns, by iesn \(.lat_iesn.p50_ns - .lat_direct.p50_ns) ns = \(div(.lat_iesn.p50_ns - .lat_direct.p50_ns; .lat_udpfwd.p50_ns - .lat_direct.p50_ns))x   [target <= 1.5]",
     "latency on one CPU, p99: direct \(.lat_direct.p99_ns) ns, via ie-udpfwd \(.lat_udpfwd.p99_ns) ns, via iesn \(.lat_iesn.p99_ns) ns" else empty end)
' "$results"
