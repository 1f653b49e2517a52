# Shared library of the SN netns tests (sourced by tests/netns/sn_*.sh; see docs/testing.md).
#
# Topology (every box is a network namespace named ie<PID>r<RAND>-<role>, unique per run):
#
#   host A (10.1.0.2)            host C (10.3.0.2, optional)         host B (10.2.0.2)
#   172.16.1.2                   172.16.3.2                          172.16.2.2
#        | eth0 - hA (veth)           | eth0 - hC                         | eth0 - hB
#   172.16.1.1                   172.16.3.1                          172.16.2.1
#   +----------+                 +----------+                        +----------+
#   | dom1.sn2 |                 | dom1.sn1 | (gateway of dom1)      | dom2.sn1 | (gateway of dom2)
#   +----------+                 +----------+                        +----------+
#   192.168.100.12               192.168.100.11                      192.168.100.21
#        | bb0                         | bb0                               | bb0
#        |_____________________________|_______ bridge br0 (ns bb) ______|
#
#   A -> dom1.sn2 -> dom1.sn1 -> dom2.sn1 -> B: each host reaches only its SN; SNs reach
#   each other over the backbone bridge. Every iesn listens on 0.0.0.0:1000 with 2 workers.
#   Inner (registered) addresses: A 10.1.0.2, B 10.2.0.2, C 10.3.0.2; static routes name
#   the SN serving each /24 (10.1.0.0/24 dom1.sn2, 10.2.0.0/24 dom2.sn1, 10.3.0.0/24 dom1.sn1).
#
# Usage in a script:
#   source "$(dirname "$0")/lib.sh"
#   ie_init "$@"                      # --iesn PATH --testhost PATH [--fanout PATH]
#   topo_up [--host-c] [--dom2-sn2] [--cache N] [--rekey S] [--modules-load SO --fanout-to LIST]
#                                     # --dom2-sn2: a second SN in dom2 (192.168.100.22, not
#                                     # its gateway) with host D (10.4.0.2, 172.16.4.2)
#   host_start B --echo ...           # ie-testhost as host B, waits until it is registered
#   host_spawn A --to ... --count N   # ie-testhost as host A, in the background
#   wait_exit A 25; check "A exits 0" $? "exit status"
#   expect_eq "what" "$actual" "$expected"; ...; ie_finish
#
# Everything created (namespaces, links, processes, the work directory) is removed by an
# EXIT trap, also on failure, on SIGINT/SIGTERM and when the script's own time limit
# (IE_NETNS_LIMIT seconds, below ctest's TIMEOUT) runs out. Namespaces left behind by a run
# that was SIGKILLed are removed by the next run (their owner PID is gone). Without root the
# tests FAIL (they are never skipped). IE_NETNS_KEEP=1 keeps the work directory;
# IE_NETNS_LIMIT=0 turns the time limit off; IE_CLEANUP_SUMMARY=1 logs what was removed.

set -u -o pipefail

IE_NETNS_LIMIT="${IE_NETNS_LIMIT:-75}"
IE_PORT=1000
IE_FAILED=0
IE_CHECKS=0
declare -A IE_PID=()    # process name -> pid
declare -A IE_NS=()     # role -> namespace name
declare -A IE_SNKEY=()  # SN name -> public key
IE_NS_LIST=()
IE_WATCHDOG=""
IE_WORK=""
IE_CLEANED=0

# SN name -> role, namespace suffix, backbone address, host-side link
declare -A IE_SN_ROLE=([dom1.sn1]=d1s1 [dom1.sn2]=d1s2 [dom2.sn1]=d2s1 [dom2.sn2]=d2s2)
declare -A IE_SN_BB=([dom1.sn1]=192.168.100.11 [dom1.sn2]=192.168.100.12 [dom2.sn1]=192.168.100.21
  [dom2.sn2]=192.168.100.22)
IE_SNS=(dom1.sn1 dom1.sn2 dom2.sn1)  # the SNs of this run (topo_up --dom2-sn2 adds dom2.sn2)
# host -> inner address, outer address, its SN's address on the link, its SN
declare -A IE_HOST_INNER=([A]=10.1.0.2 [B]=10.2.0.2 [C]=10.3.0.2 [D]=10.4.0.2)
declare -A IE_HOST_OUTER=([A]=172.16.1.2 [B]=172.16.2.2 [C]=172.16.3.2 [D]=172.16.4.2)
declare -A IE_HOST_GW=([A]=172.16.1.1 [B]=172.16.2.1 [C]=172.16.3.1 [D]=172.16.4.1)
declare -A IE_HOST_SN=([A]=dom1.sn2 [B]=dom2.sn1 [C]=dom1.sn1 [D]=dom2.sn2)

log() { printf '[%s %s] %s\n' "$(date +%T.%3N)" "${IE_TEST:-netns}" "$*" >&2; }
die() {
  log "FAIL: $*"
  IE_FAILED=1
  exit 1
}

# ---- set-up and tear-down ------------------------------------------------------------

ie_init() {
  IE_TEST="$(basename "$0" .sh)"
  IESN="" TESTHOST="" FANOUT="" IED="" IECTL=""
  while [ $# -gt 0 ]; do
    # shellcheck disable=SC2034  # FANOUT is for the scripts that load the module
    case "$1" in
      --iesn) IESN="$2"; shift 2 ;;
      --testhost) TESTHOST="$2"; shift 2 ;;
      --fanout) FANOUT="$2"; shift 2 ;;
      --ied) IED="$2"; shift 2 ;;
      --iectl) IECTL="$2"; shift 2 ;;
      *) echo "usage: $0 --iesn PATH --testhost PATH [--fanout PATH] [--ied PATH --iectl PATH]" >&2; exit 2 ;;
    esac
  done
  [ "$(id -u)" -eq 0 ] || die "needs root (network namespaces); run with sudo or as CI does"
  [ -x "$IESN" ] || die "iesn not executable: '$IESN'"
  [ -x "$TESTHOST" ] || die "ie-testhost not executable: '$TESTHOST'"
  for tool in ip tcpdump python3; do
    command -v "$tool" >/dev/null || die "missing tool: $tool (packaging/install-deps.sh)"
  done
  IE_PREFIX="ie$$r$((RANDOM % 1000))"
  IE_WORK="$(mktemp -d "/tmp/${IE_TEST}.XXXXXX")"
  trap ie_cleanup EXIT
  trap 'log "interrupted"; IE_FAILED=1; exit 1' INT TERM
  remove_stale
  # Own time limit: ctest's TIMEOUT kills without a chance to clean up. 0 = none (for
  # interactive use, e.g. the demo's --keep).
  if [ "$IE_NETNS_LIMIT" -gt 0 ]; then
    (sleep "$IE_NETNS_LIMIT" && kill -TERM $$ 2>/dev/null && log "time limit ${IE_NETNS_LIMIT}s") &
    IE_WATCHDOG=$!
  fi
  log "work dir $IE_WORK, namespaces $IE_PREFIX-*"
}

# Namespaces of earlier runs that died without cleaning up (their owner PID is gone).
remove_stale() {
  local ns pid
  for ns in $(ip netns list | awk '{print $1}' | grep -E '^ie[0-9]+r[0-9]+-' || true); do
    pid="${ns#ie}"
    pid="${pid%%r*}"
    if ! kill -0 "$pid" 2>/dev/null; then
      log "removing stale namespace $ns (owner $pid gone)"
      ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
      ip netns del "$ns" 2>/dev/null || true
    fi
  done
}

ie_cleanup() {
  local rc=$?
  [ "$IE_CLEANED" = 1 ] && return
  IE_CLEANED=1
  trap - INT TERM
  if [ -n "$IE_WATCHDOG" ]; then  # the watchdog subshell and its sleep
    kill $(pgrep -P "$IE_WATCHDOG") "$IE_WATCHDOG" 2>/dev/null
    wait "$IE_WATCHDOG" 2>/dev/null
  fi
  local name pid left=0
  if [ "$rc" -ne 0 ] || [ "$IE_FAILED" -ne 0 ]; then
    dump_logs
  fi
  for name in "${!IE_PID[@]}"; do
    pid="${IE_PID[$name]}"
    kill -TERM "$pid" 2>/dev/null || true
  done
  for name in "${!IE_PID[@]}"; do
    pid="${IE_PID[$name]}"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  local ns
  for ns in "${IE_NS_LIST[@]}"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
  # A test's own clean-up (e.g. cgroups it made), after its processes are gone.
  if declare -F ie_cleanup_hook >/dev/null; then ie_cleanup_hook || left=1; fi
  # Check that everything is gone (WireGuard's netns.sh does the same).
  for ns in "${IE_NS_LIST[@]}"; do
    if ip netns list | awk '{print $1}' | grep -qx "$ns"; then
      log "cleanup: namespace $ns still exists"
      left=1
    fi
  done
  for name in "${!IE_PID[@]}"; do
    if kill -0 "${IE_PID[$name]}" 2>/dev/null; then
      log "cleanup: process $name (${IE_PID[$name]}) still running"
      left=1
    fi
  done
  if [ "${IE_CLEANUP_SUMMARY:-0}" = 1 ] && [ "$left" -eq 0 ]; then
    log "cleanup: ${#IE_NS_LIST[@]} namespaces and ${#IE_PID[@]} processes removed, none left"
  fi
  if [ "${IE_NETNS_KEEP:-0}" = 1 ]; then
    log "kept $IE_WORK"
  elif [ -n "$IE_WORK" ]; then
    rm -rf "$IE_WORK"
  fi
  if [ "$left" -ne 0 ]; then
    exit 1
  fi
  exit "$rc"
}

dump_logs() {
  local f sn
  for sn in "${IE_SNS[@]}"; do  # the SNs still running: their non-zero counters
    [ -S "$IE_WORK/$sn.sock" ] || continue
    echo "---- $sn counters (non-zero)" >&2
    "$IESN" counters --socket "$IE_WORK/$sn.sock" 2>&1 | awk 'NR == 1 || $2 != "0"' >&2
  done
  for f in "$IE_WORK"/*.err "$IE_WORK"/*.out; do
    [ -s "$f" ] || continue
    echo "---- $(basename "$f") (last 30 lines)" >&2
    tail -n 30 "$f" >&2
  done
}

ns_add() {  # ROLE
  local ns="$IE_PREFIX-$1"
  ip netns add "$ns" || die "ip netns add $ns"
  IE_NS_LIST+=("$ns")
  IE_NS[$1]="$ns"
  ip -n "$ns" link set lo up
}

# How commands enter a namespace: `ip netns exec` (default) remounts /sys for the namespace,
# which hides the host's cgroup mounts; IE_NS_ENTER=nsenter keeps the host's mount namespace
# (tests that attach BPF programs to cgroups or move processes into them need that).
ns_exec() {  # NS CMD...
  local ns="$1"
  shift
  if [ "${IE_NS_ENTER:-ip}" = nsenter ]; then
    nsenter --net="/run/netns/$ns" -- "$@"
  else
    ip netns exec "$ns" "$@"
  fi
}

in_ns() {  # ROLE CMD...
  local ns="${IE_NS[$1]}"
  shift
  ns_exec "$ns" "$@"
}

# A veth pair between two namespaces with one address on each end.
link_add() {  # ROLE1 IF1 ADDR1/LEN ROLE2 IF2 ADDR2/LEN
  local n1="${IE_NS[$1]}" n2="${IE_NS[$4]}"
  ip link add "$2" netns "$n1" type veth peer name "$5" netns "$n2" || die "veth $2-$5"
  ip -n "$n1" addr add "$3" dev "$2"
  ip -n "$n2" addr add "$6" dev "$5"
  ip -n "$n1" link set "$2" up
  ip -n "$n2" link set "$5" up
}

# A veth from ROLE (with an address) to a port of the backbone bridge br0 in namespace bb.
bridge_attach() {  # ROLE IF ADDR/LEN PORT
  local n1="${IE_NS[$1]}" bb="${IE_NS[bb]}"
  ip link add "$2" netns "$n1" type veth peer name "$4" netns "$bb" || die "veth $2-$4"
  ip -n "$n1" addr add "$3" dev "$2"
  ip -n "$bb" link set "$4" master br0
  ip -n "$n1" link set "$2" up
  ip -n "$bb" link set "$4" up
}

# ---- processes -------------------------------------------------------------------------

spawn() {  # NAME ROLE CMD...   (stdout NAME.out, stderr NAME.err in the work dir)
  local name="$1" role="$2"
  shift 2
  # Appends: a restarted process keeps the earlier instance's output.
  # Not through ns_exec: a backgrounded function is a subshell, and IE_PID must be the
  # program itself (kill -9 tests).
  if [ "${IE_NS_ENTER:-ip}" = nsenter ]; then
    nsenter --net="/run/netns/${IE_NS[$role]}" -- "$@" >>"$IE_WORK/$name.out" \
      2>>"$IE_WORK/$name.err" &
  else
    ip netns exec "${IE_NS[$role]}" "$@" >>"$IE_WORK/$name.out" 2>>"$IE_WORK/$name.err" &
  fi
  IE_PID[$name]=$!
}

alive() { kill -0 "${IE_PID[$1]}" 2>/dev/null; }

# Waits for a spawned process to exit (at most TIMEOUT s) and returns its exit status. If it
# is still running then, it gets SIGTERM (ie-testhost prints its summary and exits), then
# after 5 s SIGKILL; the status is 124 either way.
wait_exit() {  # NAME TIMEOUT
  local pid="${IE_PID[$1]}"
  if ! wait_gone "$pid" "$2"; then
    log "$1 did not exit within $2 s; stopping it"
    kill -TERM "$pid" 2>/dev/null
    wait_gone "$pid" 5 || kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 124
  fi
  local rc=0
  wait "$pid" || rc=$?
  return "$rc"
}

wait_gone() {  # PID TIMEOUT: 0 once the process is gone, 1 if still there at the timeout
  local deadline=$((SECONDS + $2))
  while kill -0 "$1" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
  return 0
}

stop() {  # NAME: SIGTERM, then waits (5 s) for the exit; returns its exit status
  kill -TERM "${IE_PID[$1]}" 2>/dev/null || true
  local rc=0
  wait_exit "$1" 5 || rc=$?
  return "$rc"
}

# ---- packet captures -------------------------------------------------------------------

# A capture is a tcpdump writing NAME.pcap in the work dir, unbuffered (-U, --immediate-mode).
# capture_stop does not stop it after a fixed sleep: on a loaded machine tcpdump lags the wire
# and SIGTERM discards what is still queued in its capture ring (a CI run lost 45 of 800
# packets that way). It waits until the file holds at least MIN packets and has stopped
# growing, then stops it; after TIMEOUT seconds it stops it anyway, and the count checks that
# follow fail with the real figures.
capture_start() {  # NAME ROLE IFACE [FILTER...]
  local name="$1" role="$2" iface="$3"
  shift 3
  # One record per datagram, as on a wire: a host's HostLink sends runs of equal-sized
  # datagrams as one UDP GSO packet, which a veth carries whole (tcpdump would see one
  # record for the run). At most one segment per packet makes the kernel segment before the
  # capture point on this interface's transmit side.
  in_ns "$role" ip link set dev "$iface" gso_max_segs 1 ||
    die "cannot set gso_max_segs on $iface ($role) for the $name capture"
  spawn "tcpdump-$name" "$role" tcpdump -i "$iface" -n -U --immediate-mode -s 0 \
    -w "$IE_WORK/$name.pcap" "$@"
  wait_for 10 "tcpdump on $iface ($name)" grep -q "listening on" "$IE_WORK/tcpdump-$name.err"
}
capture_count() { tcpdump -r "$IE_WORK/$1.pcap" -n 2>/dev/null | wc -l; }  # NAME
capture_stop() {  # NAME MIN [TIMEOUT]: waits for MIN packets and a quiet 0.3 s, then stops
  local name="$1" min="$2" deadline=$((SECONDS + ${3:-10})) last=-1 now quiet=0
  while [ "$SECONDS" -lt "$deadline" ]; do
    now="$(capture_count "$name")"
    if [ "$now" -ge "$min" ] && [ "$now" -eq "$last" ]; then
      quiet=$((quiet + 1))
      [ "$quiet" -lt 3 ] || break
    else
      quiet=0
    fi
    last="$now"
    sleep 0.1
  done
  stop "tcpdump-$name" || true
}

# Polls CMD every 0.1 s until it succeeds or TIMEOUT seconds pass.
wait_for() {  # TIMEOUT DESCRIPTION CMD...
  local timeout="$1" what="$2"
  shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || die "timed out after ${timeout}s waiting for $what"
    sleep 0.1
  done
}

# ---- JSON and checks -------------------------------------------------------------------

# Evaluates a Python expression over the JSON document `j` read from FILE (or stdin: -).
jget() {  # FILE EXPR
  python3 -c 'import json,sys
f = sys.stdin if sys.argv[1] == "-" else open(sys.argv[1])
j = json.load(f)
v = eval(sys.argv[2])
print(json.dumps(v) if isinstance(v, (dict, list)) or v is None or isinstance(v, bool) else v)' "$1" "$2"
}

check() {  # DESCRIPTION OK(0/1 as a shell condition result) DETAIL
  IE_CHECKS=$((IE_CHECKS + 1))
  if [ "$2" -eq 0 ]; then
    log "ok   $1 ($3)"
  else
    log "FAIL $1 ($3)"
    IE_FAILED=1
  fi
}
expect_eq() { [ "$2" = "$3" ]; check "$1" $? "got $2, want $3"; }
expect_ge() { [ "$2" -ge "$3" ] 2>/dev/null; check "$1" $? "got $2, want >= $3"; }
expect_le() { [ "$2" -le "$3" ] 2>/dev/null; check "$1" $? "got $2, want <= $3"; }
expect_gt() { [ "$2" -gt "$3" ] 2>/dev/null; check "$1" $? "got $2, want > $3"; }

ie_finish() {
  [ "$IE_CHECKS" -gt 0 ] || die "no checks ran"
  if [ "$IE_FAILED" -ne 0 ]; then
    log "FAILED"
    exit 1
  fi
  log "PASSED ($IE_CHECKS checks)"
  exit 0
}

# ---- SNs -------------------------------------------------------------------------------

# Writes NAME's iesn.toml. Knobs (set by topo_up): IE_CACHE, IE_REKEY, IE_MODULE_LOAD,
# IE_FANOUT_TO, IE_PASSTHROUGH (dom1.sn2 becomes a pass-through SN with this allow list,
# relaying to dom1.sn1). Every SN offers `block` out of band.
sn_config() {  # NAME
  local name="$1" f="$IE_WORK/$1.toml" dom="${1%%.*}"
  local gw="dom1.sn1"
  [ "$dom" = dom2 ] && gw="dom2.sn1"
  {
    echo "[sn]"
    echo "name = \"$name\""
    echo "listen = \"0.0.0.0:$IE_PORT\""
    echo "workers = 2"
    echo "private_key_file = \"$IE_WORK/$name.key\""
    echo "control_socket = \"$IE_WORK/$name.sock\""
    echo "cache_capacity = $IE_CACHE"
    echo
    echo "[edomain]"
    echo "gateway = \"$gw\""
    echo "rekey_seconds = $IE_REKEY"
    local other
    for other in "${IE_SNS[@]}"; do  # the other SNs of this edomain
      if [ "${other%%.*}" != "$dom" ] || [ "$other" = "$name" ]; then continue; fi
      echo
      echo "[[edomain.sn]]"
      echo "name = \"$other\""
      echo "address = \"${IE_SN_BB[$other]}:$IE_PORT\""
      echo "public_key = \"${IE_SNKEY[$other]}\""
    done
    if [ "$name" = dom1.sn1 ]; then
      printf '\n[[peer]]\nedomain = "dom2"\ngateway = "dom2.sn1"\naddress = "%s:%s"\npublic_key = "%s"\n' \
        "${IE_SN_BB[dom2.sn1]}" "$IE_PORT" "${IE_SNKEY[dom2.sn1]}"
    elif [ "$name" = dom2.sn1 ]; then
      printf '\n[[peer]]\nedomain = "dom1"\ngateway = "dom1.sn1"\naddress = "%s:%s"\npublic_key = "%s"\n' \
        "${IE_SN_BB[dom1.sn1]}" "$IE_PORT" "${IE_SNKEY[dom1.sn1]}"
    fi
    local prefix sn
    local prefixes="10.1.0.0/24:dom1.sn2 10.2.0.0/24:dom2.sn1 10.3.0.0/24:dom1.sn1"
    [ "${#IE_SNS[@]}" = 4 ] && prefixes="$prefixes 10.4.0.0/24:dom2.sn2"
    for prefix in $prefixes; do
      sn="${prefix#*:}"
      [ "$sn" != "$name" ] || continue
      printf '\n[[route]]\nprefix = "%s"\nsn = "%s"\n' "${prefix%%:*}" "$sn"
    done
    printf '\n[services]\nout_of_band = ["block"]\n'
    if [ -n "$IE_PASSTHROUGH" ] && [ "$name" = dom1.sn2 ]; then
      printf 'imposed = ["passthrough"]\nupstream = "dom1.sn1"\n'
      printf '\n[modules.passthrough]\nallow = "%s"\n' "$IE_PASSTHROUGH"
    fi
    if [ -n "$IE_MODULE_LOAD" ]; then
      printf '\n[modules]\nload = ["%s"]\n' "$IE_MODULE_LOAD"
      printf '\n[modules.fanout]\nto = "%s"\n' "$IE_FANOUT_TO"
    fi
  } >"$f"
  # A test may edit an SN's configuration before it is checked (e.g. ied_anycast.sh).
  if declare -F sn_config_hook >/dev/null; then sn_config_hook "$name" "$f"; fi
  "$IESN" check-config "$f" >"$IE_WORK/$name.check" 2>&1 || {
    cat "$IE_WORK/$name.check" >&2
    die "iesn check-config $f"
  }
}

sn_start() {  # NAME
  local name="$1"
  rm -f "$IE_WORK/$name.sock"
  spawn "$name" "${IE_SN_ROLE[$name]}" "$IESN" run --config "$IE_WORK/$name.toml" \
    --log-level debug
  wait_for 10 "$name's control socket" "$IESN" status --socket "$IE_WORK/$name.sock"
}

sn_kill9() {  # NAME
  kill -KILL "${IE_PID[$1]}" 2>/dev/null || true
  wait "${IE_PID[$1]}" 2>/dev/null || true
}

# iesn status/counters as JSON on stdout.
sn_json() {  # NAME [status|counters|pipes]
  "$IESN" "${2:-counters}" --socket "$IE_WORK/$1.sock" --json
}
sn_counter() {  # NAME PYEXPR over the counters JSON j (e.g. "j['cache']['hits']")
  sn_json "$1" counters | jget - "$2"
}
sn_established() {  # NAME N: at least N established pipes
  [ "$(sn_json "$1" status | jget - "j['pipe_summary']['established']")" -ge "$2" ]
}

# Builds the whole topology and starts the three SNs; returns once the SN-SN pipes are up.
# shellcheck disable=SC2120  # the options are optional
topo_up() {
  IE_CACHE=100000 IE_REKEY=180 IE_MODULE_LOAD="" IE_FANOUT_TO="" IE_HOST_C=0 IE_PASSTHROUGH=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --host-c) IE_HOST_C=1; shift ;;
      --dom2-sn2) IE_SNS=(dom1.sn1 dom1.sn2 dom2.sn1 dom2.sn2); shift ;;
      --cache) IE_CACHE="$2"; shift 2 ;;
      --rekey) IE_REKEY="$2"; shift 2 ;;
      --modules-load) IE_MODULE_LOAD="$2"; shift 2 ;;
      --fanout-to) IE_FANOUT_TO="$2"; shift 2 ;;
      --passthrough) IE_PASSTHROUGH="$2"; shift 2 ;;
      *) die "topo_up: unknown option $1" ;;
    esac
  done
  local sn
  ns_add bb
  ip -n "${IE_NS[bb]}" link add br0 type bridge
  ip -n "${IE_NS[bb]}" link set br0 up
  for sn in "${IE_SNS[@]}"; do
    local role="${IE_SN_ROLE[$sn]}"
    ns_add "$role"
    bridge_attach "$role" bb0 "${IE_SN_BB[$sn]}/24" "p-$role"
    IE_SNKEY[$sn]="$("$IESN" genkey "$IE_WORK/$sn.key")" || die "iesn genkey"
  done
  local hosts="A B"
  [ "$IE_HOST_C" = 1 ] && hosts="$hosts C"
  [ "${#IE_SNS[@]}" = 4 ] && hosts="$hosts D"
  local h
  for h in $hosts; do
    ns_add "h$h"
    local snrole="${IE_SN_ROLE[${IE_HOST_SN[$h]}]}"
    link_add "h$h" eth0 "${IE_HOST_OUTER[$h]}/24" "$snrole" "h$h" "${IE_HOST_GW[$h]}/24"
  done
  for sn in "${IE_SNS[@]}"; do sn_config "$sn"; done
  for sn in "${IE_SNS[@]}"; do sn_start "$sn"; done
  # SN-SN pipes: dom1.sn1 -> dom1.sn2 and dom2.sn1; each of the others -> dom1.sn1
  # (dom2.sn2: <-> dom2.sn1).
  wait_for 15 "dom1.sn1's SN pipes" sn_established dom1.sn1 2
  wait_for 15 "dom1.sn2's SN pipe" sn_established dom1.sn2 1
  if [ "${#IE_SNS[@]}" = 4 ]; then
    wait_for 15 "dom2.sn1's SN pipes" sn_established dom2.sn1 2
    wait_for 15 "dom2.sn2's SN pipe" sn_established dom2.sn2 1
  else
    wait_for 15 "dom2.sn1's SN pipe" sn_established dom2.sn1 1
  fi
  log "topology up: ${#IE_SNS[@]} SNs, hosts $hosts"
}

# ---- hosts -----------------------------------------------------------------------------

# Starts ie-testhost as host H in the background (process name H; H.out gets its JSON
# summary), with its SN, the SN's key, its inner address, test timers and FLAGS.
host_spawn() {  # H [FLAGS...]
  local h="$1" sn="${IE_HOST_SN[$1]}"
  shift
  spawn "$h" "h$h" "$TESTHOST" --sn "${IE_HOST_GW[$h]}:$IE_PORT" --sn-key "${IE_SNKEY[$sn]}" \
    --addr "${IE_HOST_INNER[$h]}" --bind "${IE_HOST_OUTER[$h]}:0" --keepalive-ms 1000 \
    --dead-after-ms 3000 --json "$@"
}

# host_spawn, then waits until the host is associated and registered.
host_start() {  # H [FLAGS...]
  local h="$1"
  shift
  rm -f "$IE_WORK/$h.ready"
  host_spawn "$h" --ready-file "$IE_WORK/$h.ready" "$@"
  wait_for 15 "host $h ready (associated and registered)" test -e "$IE_WORK/$h.ready"
}

# Output file of host H's JSON summary.
host_json() { echo "$IE_WORK/$1.out"; }
