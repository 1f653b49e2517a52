#!/usr/bin/env bash
# ied path benchmark (issue 4, "Performance"; results in docs/performance.md): in one run,
# the same measurements over four paths between two hosts A and B in network namespaces:
#   plain       A --veth--> B, no tunnel (the floor)
#   wg          wireguard-go (Debian's, userspace, one TUN per host) over that same kind of veth
#   ied-direct  two real ied daemons, direct host-to-host ILP over a veth shared by A and B
#               (A's [[peer]] names B's endpoint on it, as tests/netns/ied_direct.sh does)
#   ied-sn      the same two ied over the full SN path of tests/netns/lib.sh:
#               A -> dom1.sn2 -> dom1.sn1 -> dom2.sn1 -> B (three real iesn, two edomains)
# Measurements, each path:
#   tcp    iperf3 TCP throughput (--seconds, default 5)
#   udp    64-byte UDP (iperf3 -u -l 64, 4 MiB socket buffers): offered rate doubled from
#          12.5 kpps, 2 s a step, then two bisection steps, until loss > 0.1% or the sender
#          falls short of the rate (< 90%); the highest loss-free step's received packets/s,
#          and the most packets/s any step delivered
#   ping   100 pings at 10 ms: min / avg / p99 round trip
#   cpu    (tunnels only) CPU seconds per GB delivered at a fixed 300 Mbit/s (iperf3 TCP
#          -b 300M): utime + stime from /proc/PID/stat of the tunnel's processes before and
#          after (wg: both wireguard-go; ied-direct: both ied; ied-sn: both ied + three iesn)
# Placement on the 2 cores: everything of host A (iperf3 client, ping, its wireguard-go or
# ied) on CPU 0, everything of host B on CPU 1; the three iesn float over both (the SN path
# has no core of its own on this machine). Ratios are against wireguard-go of the same run.
# Checks that the paths are what they claim (SN pipe counters, iectl peers' "via").
#
#   sudo tests/bench/ied_path.sh BUILD_DIR [--seconds S] [--json FILE]
# Needs root, iperf3, jq, wireguard-go and wg (wireguard-tools). Builds nothing:
# BUILD_DIR/bin must hold ied, iectl, iesn and ie-testhost. Whole run about 2.5 minutes,
# bounded by IE_NETNS_LIMIT (default 175 s); every namespace and process (wireguard-go too)
# is removed on exit, also on failure or Ctrl-C (lib.sh's trap).
set -u -o pipefail

here="$(cd "$(dirname "$0")" && pwd)"
usage() {
  echo "usage: $0 BUILD_DIR [--seconds S] [--json FILE]" >&2
  exit 2
}
build="${1:-}"
[ -n "$build" ] || usage
shift
secs=5
json_out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) secs="${2:?}"; shift 2 ;;
    --json) json_out="${2:?}"; shift 2 ;;
    *) usage ;;
  esac
done
bin="$build/bin"
for t in iperf3 jq wireguard-go wg taskset; do
  command -v "$t" >/dev/null || { echo "ied_path: missing tool: $t" >&2; exit 1; }
done
[ "$(nproc)" -ge 2 ] || { echo "ied_path: needs 2 CPUs" >&2; exit 1; }

export IE_NETNS_LIMIT="${IE_NETNS_LIMIT:-175}"
# shellcheck source=tests/netns/lib.sh
source "$here/../netns/lib.sh"
ie_init --iesn "$bin/iesn" --testhost "$bin/ie-testhost" --ied "$bin/ied" --iectl "$bin/iectl"
# shellcheck source=tests/netns/ied_lib.sh
source "$here/../netns/ied_lib.sh"

# wireguard-go's control sockets live in /var/run/wireguard/IF.sock, outside any namespace:
# unique interface names per run, and the sockets removed on exit (a SIGKILLed wireguard-go
# leaves its socket behind).
wg_a="iewa$$"
wg_b="iewb$$"
# shellcheck disable=SC2317  # run by the EXIT trap
bench_exit() {
  local rc=$?
  rm -f "/var/run/wireguard/$wg_a.sock" "/var/run/wireguard/$wg_b.sock"
  (exit "$rc")
  ie_cleanup  # exits with rc, or 1 when something was left behind
}
trap bench_exit EXIT
clk_tck="$(getconf CLK_TCK)"

# ---- measuring ---------------------------------------------------------------------------

# pin PID CPUS: every thread of a running process.
pin() { taskset -a -p -c "$2" "$1" >/dev/null || die "taskset -p $2 $1"; }

# CPU ticks (utime + stime, all threads) of the processes named (lib.sh names).
cpu_ticks() {  # NAME...
  local n t=0 v
  for n in "$@"; do
    # Fields after "pid (comm) ": state is $1, utime $12, stime $13.
    v="$(sed 's/.*) //' "/proc/${IE_PID[$n]}/stat" | awk '{print $12 + $13}')" ||
      die "cannot read the CPU time of $n (did it exit?)"
    t=$((t + v))
  done
  echo "$t"
}

# Processes that must stay up during a path's measurements: report precisely, do not fix.
check_alive() {  # WHAT NAME...
  local what="$1" n
  shift
  for n in "$@"; do
    alive "$n" || die "$n died during $what (its log: $IE_WORK/$n.err)"
  done
}

# iperf3 server of host DST (CPU 1), bound to ADDR.
iperf_server() {  # PATH DST_ROLE ADDR
  spawn "iperf3-$1" "$2" taskset -c 1 iperf3 -s -B "$3"
  wait_for 10 "iperf3 server of $1" sh -c "ip netns exec '${IE_NS[$2]}' ss -ltn | grep -q '$3:5201'"
}

# iperf3 client in SRC (CPU 0), JSON to OUT; bounded in time.
iperf_client() {  # SRC_ROLE OUT ARGS...
  local src="$1" out="$2"
  shift 2
  in_ns "$src" timeout 30 taskset -c 0 iperf3 --connect-timeout 3000 -J "$@" >"$out" \
    2>"$out.err"
}

# Sets TCP_MBPS, TCP_RETR.
measure_tcp() {  # PATH SRC ADDR
  local f="$IE_WORK/$1.tcp.json"
  TCP_MBPS=null TCP_RETR=null
  if ! iperf_client "$2" "$f" -c "$3" -t "$secs"; then
    log "$1 tcp: iperf3 failed: $(jq -r '.error // empty' "$f" 2>/dev/null) $(cat "$f.err")"
    return 1
  fi
  TCP_MBPS="$(jq '.end.sum_received.bits_per_second / 1e6 | . * 10 | round / 10' "$f")"
  TCP_RETR="$(jq '.end.sum_sent.retransmits // 0' "$f")"
  log "$1 tcp: $TCP_MBPS Mbit/s ($TCP_RETR retransmissions)"
}

# One UDP step at PPS offered; sets U_SENT, U_LOST, U_RX_PPS, U_LOSS (percent). 2 s each.
udp_step() {  # PATH SRC ADDR PPS
  local f="$IE_WORK/$1.udp.$4.json"
  if ! iperf_client "$2" "$f" -c "$3" -u -l 64 -b "$(($4 * 64 * 8))" -t 2 -w 4M; then
    log "$1 udp $4 pps: iperf3 failed: $(jq -r '.error // empty' "$f" 2>/dev/null) $(cat "$f.err")"
    return 1
  fi
  # end.sum: the server's counts (packets it expected by sequence number, lost among them).
  U_SENT="$(jq '.end.sum.packets' "$f")"
  U_LOST="$(jq '.end.sum.lost_packets' "$f")"
  local s
  s="$(jq '.end.sum.seconds' "$f")"
  U_RX_PPS="$(jq -n "($U_SENT - $U_LOST) / $s | round")"
  U_LOSS="$(jq -n "if $U_SENT > 0 then 100 * $U_LOST / $U_SENT else 100 end")"
  log "$1 udp: offered $4 pps, sender $(jq -n "$U_SENT / $s | round") pps, received $U_RX_PPS pps, loss $(printf %.3f "$U_LOSS")%"
}

# A step passes when loss <= 0.1% and the sender kept up (>= 90% of the offered rate).
udp_ok() {  # PPS
  jq -ne "$U_LOSS <= 0.1 and $U_SENT / 2 >= 0.9 * $1" >/dev/null
}

# Sets UDP_PPS (highest loss-free step's received pps), UDP_PEAK (most received pps of any
# step), UDP_LIMIT (what ended the ladder).
measure_udp() {  # PATH SRC ADDR
  local path="$1" src="$2" addr="$3" pps=12500 good=0 bad=0
  UDP_PPS=0 UDP_PEAK=0 UDP_LIMIT="ladder end (1.6 Mpps)"
  local good_rx=0
  while [ "$pps" -le 1600000 ]; do
    udp_step "$path" "$src" "$addr" "$pps" || return 1
    [ "$U_RX_PPS" -gt "$UDP_PEAK" ] && UDP_PEAK="$U_RX_PPS"
    if udp_ok "$pps"; then
      good="$pps" good_rx="$U_RX_PPS"
      pps=$((pps * 2))
    else
      bad="$pps"
      break
    fi
  done
  if [ "$bad" -gt 0 ]; then
    if [ "$(jq -n "$U_LOSS > 0.1")" = true ]; then UDP_LIMIT="loss"; else UDP_LIMIT="sender"; fi
    local mid _
    for _ in 1 2; do  # two bisection steps (geometric mean) between good and bad
      [ "$good" -gt 0 ] || break
      mid="$(jq -n "($good * $bad) | sqrt | round")"
      udp_step "$path" "$src" "$addr" "$mid" || return 1
      [ "$U_RX_PPS" -gt "$UDP_PEAK" ] && UDP_PEAK="$U_RX_PPS"
      if udp_ok "$mid"; then
        good="$mid" good_rx="$U_RX_PPS"
      else
        bad="$mid"
      fi
    done
  fi
  UDP_PPS="$good_rx"
  log "$path udp: loss-free $UDP_PPS pps (ended by: $UDP_LIMIT), peak received $UDP_PEAK pps"
}

# Sets PING_MIN, PING_AVG, PING_P99 (ms), PING_LOST.
measure_ping() {  # PATH SRC ADDR
  local f="$IE_WORK/$1.ping"
  in_ns "$2" timeout 20 taskset -c 0 ping -n -c 100 -i 0.01 -W 1 "$3" >"$f" 2>&1
  local n
  n="$(grep -c 'time=' "$f")"
  PING_LOST=$((100 - n))
  if [ "$n" -eq 0 ]; then
    PING_MIN=null PING_AVG=null PING_P99=null
    log "$1 ping: no reply: $(tail -2 "$f")"
    return 1
  fi
  read -r PING_MIN PING_AVG PING_P99 < <(sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p' "$f" | sort -g |
    awk '{v[NR] = $1; s += $1} END {i = int(NR * 0.99 + 0.999999); if (i > NR) i = NR;
         printf "%.3f %.3f %.3f\n", v[1], s / NR, v[i]}')
  log "$1 ping: min $PING_MIN / avg $PING_AVG / p99 $PING_P99 ms, $PING_LOST lost"
}

# Sets CPU_S_GB (CPU seconds per GB delivered), CPU_MBPS (achieved), CPU_PARTS (per process).
measure_cpu() {  # PATH SRC ADDR NAME...
  local path="$1" src="$2" addr="$3" f="$IE_WORK/$1.cpu.json"
  shift 3
  local n names=("$@") before=() after=() i
  for n in "$@"; do before+=("$(cpu_ticks "$n")"); done
  if ! iperf_client "$src" "$f" -c "$addr" -b 300M -t "$secs"; then
    log "$path cpu: iperf3 failed: $(jq -r '.error // empty' "$f" 2>/dev/null) $(cat "$f.err")"
    CPU_S_GB=null CPU_MBPS=null CPU_PARTS="{}"
    return 1
  fi
  sleep 0.2  # let the tunnel finish the last packets (their CPU counts)
  for n in "$@"; do after+=("$(cpu_ticks "$n")"); done
  local bytes total=0 parts=""
  bytes="$(jq '.end.sum_received.bytes' "$f")"
  for i in "${!before[@]}"; do
    local d=$((after[i] - before[i]))
    total=$((total + d))
    parts+="\"${names[i]}\": $(jq -n "$d / $clk_tck / ($bytes / 1e9) | . * 100 | round / 100"), "
  done
  CPU_PARTS="{${parts%, }}"
  CPU_S_GB="$(jq -n "$total / $clk_tck / ($bytes / 1e9) | . * 100 | round / 100")"
  CPU_MBPS="$(jq '.end.sum_received.bits_per_second / 1e6 | round' "$f")"
  log "$path cpu: $CPU_S_GB CPU s/GB at $CPU_MBPS Mbit/s delivered (per process, s/GB: $CPU_PARTS)"
}

# Kernel drop counters of host ROLE: UDP receive-buffer overflows (the tunnel's socket and
# iperf3's), and the tunnel device's dropped counters (tx: the kernel's queue towards the
# tunnel process was full; rx: what the process wrote was dropped).
drops() {  # ROLE IF
  local d="/sys/class/net/$2/statistics"
  in_ns "$1" sh -c "awk '/^Udp:/ {if (h) print \$6; h = 1}' /proc/net/snmp;
    cat $d/tx_dropped $d/rx_dropped 2>/dev/null || echo 0 0" | tr '\n' ' '
}
drops_delta() {  # BEFORE AFTER: JSON
  local -a b a
  read -r -a b <<<"$1"
  read -r -a a <<<"$2"
  echo "{\"udp_rcvbuf_errors\": $((a[0] - b[0])), \"tun_tx_dropped\": $((a[1] - b[1])), \"tun_rx_dropped\": $((a[2] - b[2]))}"
}

results="$IE_WORK/results.json"
echo '{}' >"$results"
put() {  # PATH JSON-OBJECT
  jq --arg k "$1" --argjson v "$2" '.[$k] = $v' "$results" >"$results.tmp" &&
    mv "$results.tmp" "$results"
}

# All measurements of one path; PROCS: the tunnel's processes (CPU per GB, liveness).
measure_path() {  # PATH SRC DST ADDR PROCS...
  local path="$1" src="$2" dst="$3" addr="$4"
  shift 4
  iperf_server "$path" "$dst" "$addr"
  local ta="${TUN_A:-none}" tb="${TUN_B:-none}" da0 db0
  da0="$(drops "$src" "$ta")"
  db0="$(drops "$dst" "$tb")"
  TCP_MBPS=null TCP_RETR=null UDP_PPS=null UDP_PEAK=null UDP_LIMIT=null
  PING_MIN=null PING_AVG=null PING_P99=null PING_LOST=null
  CPU_S_GB=null CPU_MBPS=null CPU_PARTS="{}"
  measure_tcp "$path" "$src" "$addr"
  check_alive "$path tcp" "$@"
  measure_udp "$path" "$src" "$addr"
  check_alive "$path udp" "$@"
  measure_ping "$path" "$src" "$addr"
  check_alive "$path ping" "$@"
  if [ $# -gt 0 ]; then
    measure_cpu "$path" "$src" "$addr" "$@"
    check_alive "$path cpu" "$@"
  fi
  stop "iperf3-$path" || true
  local dr
  dr="$(jq -n --argjson a "$(drops_delta "$da0" "$(drops "$src" "$ta")")" \
    --argjson b "$(drops_delta "$db0" "$(drops "$dst" "$tb")")" '{A: $a, B: $b}')"
  log "$path kernel drops during its runs: $(echo "$dr" | jq -c .)"
  put "$path" "$(jq -n --argjson tcp "$TCP_MBPS" --argjson retr "$TCP_RETR" \
    --argjson udp "$UDP_PPS" --argjson peak "$UDP_PEAK" --arg lim "$UDP_LIMIT" \
    --argjson pmin "$PING_MIN" --argjson pavg "$PING_AVG" --argjson p99 "$PING_P99" \
    --argjson plost "$PING_LOST" --argjson cpu "$CPU_S_GB" --argjson cmbps "$CPU_MBPS" \
    --argjson parts "$CPU_PARTS" \
    '{tcp_mbps: $tcp, tcp_retransmits: $retr, udp64_lossfree_pps: $udp, udp64_peak_pps: $peak,
      udp64_limited_by: $lim, ping_min_ms: $pmin, ping_avg_ms: $pavg, ping_p99_ms: $p99,
      ping_lost: $plost, cpu_s_per_gb_300m: $cpu, cpu_run_mbps: $cmbps,
      cpu_s_per_gb_by_process: $parts}')"
  put "$path" "$(jq --arg p "$path" --argjson dr "$dr" '.[$p] + {kernel_drops: $dr}' "$results")"
}

log "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), $(uname -r)"
put meta "$(jq -n --arg date "$(date -u +%FT%TZ)" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
  --arg kernel "$(uname -r)" --argjson cpus "$(nproc)" --argjson secs "$secs" \
  --arg wg "$(dpkg-query -W -f '${Version}' wireguard-go 2>/dev/null || echo unknown)" \
  '{date: $date, load_before: $load, kernel: $kernel, cpus: $cpus, seconds: $secs,
    wireguard_go: $wg}')"

# ---- plain veth and wireguard-go ---------------------------------------------------------
ns_add pa
ns_add pb
link_add pa eth0 192.168.77.1/24 pb eth0 192.168.77.2/24
log "plain: veth, iperf3/ping of A on CPU 0, of B on CPU 1"
measure_path plain pa pb 192.168.77.2

(
  umask 077
  wg genkey >"$IE_WORK/wg-a.key"
  wg genkey >"$IE_WORK/wg-b.key"
)
wg_start() {  # NAME ROLE IF KEY ADDR PEER_KEY PEER_ENDPOINT PEER_ADDR CPU
  # WG_PROCESS_FOREGROUND: -f's own variable; it also silences the "use the kernel module"
  # banner. The process is wireguard-go itself (ip netns exec, env and taskset exec in place).
  spawn "$1" "$2" env WG_PROCESS_FOREGROUND=1 taskset -c "$9" wireguard-go -f "$3"
  wait_for 10 "$1's $3" in_ns "$2" wg show "$3"
  in_ns "$2" wg set "$3" private-key "$4" listen-port 51820 peer "$(wg pubkey <"$6")" \
    endpoint "$7:51820" allowed-ips "$8/32" || die "wg set $3"
  in_ns "$2" ip addr add "$5/24" dev "$3"
  in_ns "$2" ip link set "$3" up
}
wg_start wg-A pa "$wg_a" "$IE_WORK/wg-a.key" 10.99.0.1 "$IE_WORK/wg-b.key" 192.168.77.2 10.99.0.2 0
wg_start wg-B pb "$wg_b" "$IE_WORK/wg-b.key" 10.99.0.2 "$IE_WORK/wg-a.key" 192.168.77.1 10.99.0.1 1
in_ns pa ping -c 3 -i 0.2 -W 2 10.99.0.2 >/dev/null 2>&1 || die "no ping through wireguard-go"
log "wg: wireguard-go $(jq -r .meta.wireguard_go "$results") on the same veth, MTU $(in_ns pa cat "/sys/class/net/$wg_a/mtu"); A's on CPU 0, B's on CPU 1"
TUN_A=$wg_a TUN_B=$wg_b measure_path wg pa pb 10.99.0.2 wg-A wg-B
stop wg-A || true
stop wg-B || true

# ---- ied: the SN path, then the direct path ----------------------------------------------
topo_up
# The hosts' shared link, for the direct path (unused until A's [[peer]] names B's endpoint).
link_add hA eth9 172.16.9.1/24 hB eth9 172.16.9.2/24
# B as ied_start does, plus a known listen port: A's [[peer]] endpoint for the direct path.
in_ns hB ip addr replace "${IE_HOST_INNER[B]}/32" dev lo
ied_config B static
sed -i 's|^\[daemon\]$|[daemon]\nlisten = "0.0.0.0:1001"|' "$IE_WORK/ied-B.toml"
spawn ied-B hB "$IED" --config "$IE_WORK/ied-B.toml" --log-level debug
wait_for 15 "ied B registered with its SN" ied_registered B
IED_KEY[B]="$(iectl_json B status | jget - "j['identity']")"
ied_start A static
pin "${IE_PID[ied-A]}" 0
pin "${IE_PID[ied-B]}" 1
ied_drops() {  # PATH: ied's own drop counters (iectl status; A's since its last start)
  local a b
  a="$(iectl_json A status | jq -c .drops)"
  b="$(iectl_json B status | jq -c .drops)"
  log "$1: ied drop counters: A $a, B $b"
  put "$1" "$(jq --arg p "$1" --argjson a "$a" --argjson b "$b" \
    '.[$p] + {ied_drops: {A: $a, B: $b}}' "$results")"
  # TUN offloads at work: packets vs the TCP super packets they came in / went out as.
  local sel='.counters | {tun_rx_packets, tun_rx_super, tun_tx_packets, tun_tx_super, udp_gso_packets, udp_gro_packets} | tostring'
  log "$1: ied TUN counters: A $(iectl_json A status | jq -r "$sel"), B $(iectl_json B status | jq -r "$sel")"
}
peer_via() {  # how A reaches B: sn or direct
  iectl_json A peers | jq -r '[.peers[] | select(.address == "10.2.0.2") | .via][0]'
}
in_ns hA ping -c 3 -i 0.2 -W 2 10.2.0.2 >/dev/null 2>&1 || die "no ping A -> B through ied"
[ "$(peer_via)" = sn ] || die "A reaches B via $(peer_via), not the SNs"
sn_rx() {  # packets dom2.sn1 received on its SN pipes (the edomain crossing)
  sn_json dom2.sn1 pipes | jq '[.pipes[] | select(.kind == "sn") | .rx_packets] | add // 0'
}
host_rx() {  # packets dom1.sn2 (A's SN) received on its host pipes
  sn_json dom1.sn2 pipes | jq '[.pipes[] | select(.kind == "host") | .rx_packets] | add // 0'
}
rx0="$(sn_rx)"
log "ied-sn: A -> dom1.sn2 -> dom1.sn1 -> dom2.sn1 -> B, ie0 MTU $(in_ns hA cat /sys/class/net/ie0/mtu); ied A on CPU 0, ied B on CPU 1, the iesn unpinned"
TUN_A=ie0 TUN_B=ie0 measure_path ied-sn hA hB 10.2.0.2 ied-A ied-B dom1.sn2 dom1.sn1 dom2.sn1
rx1="$(sn_rx)"
ied_drops ied-sn
log "ied-sn: dom2.sn1 received $((rx1 - rx0)) packets over its SN pipes during the runs"
[ $((rx1 - rx0)) -gt 10000 ] || die "the ied-sn traffic did not cross the SN path"

# Direct: A restarted with B's endpoint on the shared link in its [[peer]] (as
# tests/netns/ied_direct.sh does); B keeps running.
stop ied-A || die "ied A did not stop cleanly"
sed -i 's|^sn = "dom2.sn1"$|sn = "dom2.sn1"\nendpoint = "172.16.9.2:1001"|' "$IE_WORK/ied-A.toml"
grep -q 'endpoint = "172.16.9.2:1001"' "$IE_WORK/ied-A.toml" || die "could not add the endpoint"
spawn ied-A hA "$IED" --config "$IE_WORK/ied-A.toml" --log-level debug
wait_for 15 "ied A registered again" ied_registered A
pin "${IE_PID[ied-A]}" 0
in_ns hA ping -c 3 -i 0.2 -W 2 10.2.0.2 >/dev/null 2>&1
# shellcheck disable=SC2317  # run by wait_for
direct_up() { [ "$(peer_via)" = direct ]; }
wait_for 10 "the direct path A-B" direct_up
hx0="$(host_rx)"
log "ied-direct: A -> B over the shared veth (no SN), ie0 MTU $(in_ns hA cat /sys/class/net/ie0/mtu); ied A on CPU 0, ied B on CPU 1"
TUN_A=ie0 TUN_B=ie0 measure_path ied-direct hA hB 10.2.0.2 ied-A ied-B
hx1="$(host_rx)"
ied_drops ied-direct
log "ied-direct: dom1.sn2 received $((hx1 - hx0)) packets on its host pipes during the runs (keepalives)"
[ "$(peer_via)" = direct ] || die "A fell back to the SN path during the direct runs"
[ $((hx1 - hx0)) -lt 1000 ] || die "the ied-direct traffic went through the SNs"
put sn_check "$(jq -n --argjson sn "$((rx1 - rx0))" --argjson d "$((hx1 - hx0))" \
  '{ied_sn_dom2_sn1_sn_pipe_rx: $sn, ied_direct_dom1_sn2_host_pipe_rx: $d}')"

# ---- table -------------------------------------------------------------------------------
log "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
jq -r '
  def f(v): if v == null then "-" else (v | tostring) end;
  def r(a; b): if a == null or b == null or b == 0 then "-"
               else ((a / b) * 100 | round / 100 | tostring) end;
  def row(name; k): [name, f(.plain[k]), f(.wg[k]), f(.["ied-direct"][k]), f(.["ied-sn"][k]),
                     r(.["ied-direct"][k]; .wg[k]), r(.["ied-sn"][k]; .wg[k])];
  ["", "plain veth", "wireguard-go", "ied direct", "ied SN path", "direct/wg", "SN/wg"],
  row("TCP Mbit/s"; "tcp_mbps"),
  row("UDP 64 B loss-free pps"; "udp64_lossfree_pps"),
  row("UDP 64 B peak rx pps"; "udp64_peak_pps"),
  row("ping min ms"; "ping_min_ms"),
  row("ping avg ms"; "ping_avg_ms"),
  row("ping p99 ms"; "ping_p99_ms"),
  row("CPU s/GB at 300M"; "cpu_s_per_gb_300m"),
  (row("  (delivered Mbit/s)"; "cpu_run_mbps") | .[5] = "" | .[6] = "")
  | @tsv' "$results" | column -t -s $'\t'
# The issue's 64-byte target (ied direct >= 3x wireguard-go's loss-free packet rate) against
# what the same placement delivers with no tunnel at all: iperf3 and the kernel on one core
# per host bound every path, so a target above the plain veth's rate cannot be met by any
# tunnel here; the line says which side of that bound this run's target fell.
put udp64_bound "$(jq '{three_x_wg: (3 * .wg.udp64_lossfree_pps), plain: .plain.udp64_lossfree_pps,
    direct: .["ied-direct"].udp64_lossfree_pps,
    direct_vs_plain: (if .plain.udp64_lossfree_pps > 0 then
      ((.["ied-direct"].udp64_lossfree_pps / .plain.udp64_lossfree_pps) * 100 | round / 100)
      else null end),
    target_above_plain: (3 * .wg.udp64_lossfree_pps > .plain.udp64_lossfree_pps)}' "$results")"
jq -r '.udp64_bound | if .three_x_wg == 0 then "UDP 64 B: wireguard-go lost packets at every step (even 12.5 kpps): no loss-free rate to compare with; ied direct = \(.direct) pps = \(.direct_vs_plain)x plain" else "UDP 64 B: target 3 x wireguard-go = \(.three_x_wg) pps; plain veth, no tunnel, same placement = \(.plain) pps (" + (if .target_above_plain then "the target is above what the path without a tunnel delivers" else "the target is below it" end) + "); ied direct = \(.direct) pps = \(.direct_vs_plain)x plain" end' "$results"
for p in wg ied-direct ied-sn; do
  echo "$p: CPU s/GB by process $(jq -c --arg p "$p" '.[$p].cpu_s_per_gb_by_process' "$results")"
done
for p in plain wg ied-direct ied-sn; do
  echo "$p: UDP ladder ended by $(jq -r --arg p "$p" '.[$p].udp64_limited_by' "$results"), TCP retransmissions $(jq -r --arg p "$p" '.[$p].tcp_retransmits' "$results")"
done
[ -n "$json_out" ] && cp "$results" "$json_out"
check "benchmark completed" 0 "figures above"
ie_finish
