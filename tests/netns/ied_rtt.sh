#!/usr/bin/env bash
# ied ranks the SNs of a tier by measured RTT (docs/discovery.md "Choosing by RTT").
#   Host A has a link to each SN and a static configuration listing three SNs of one tier
#   (priority 10 each), in this order: dom1.sn1 and dom2.sn1, both reached through a
#   udp_delay.py relay in the SN's namespace (172.16.4.1:1001 and 172.16.5.1:1001, forwarding
#   to the SN's port 1000 with 15 ms each way, so about 30 ms RTT: "far"), then dom1.sn2
#   reached directly on A's eth0 (sub-millisecond: "near"). B runs from static configuration
#   behind dom2.sn1; any of the three SNs reaches it. Four parts:
# a. ied first associates with the two listed first (the far ones), surveys dom1.sn2 (short
#    association, three PROBEs) and within 10 s makes it active although it is listed last (one
#    switch far -> near, or near chosen first; a far -> far switch while both far SNs come up
#    is allowed); sn list: rtt_ms >= 25 for both far SNs, < 5 for the near one, near active,
#    one far standby, the other a candidate; status: rtt_surveys >= 1, no survey failure.
# b. Pings A -> B leave through dom1.sn2 (A's host pipe there counts them, the far SNs' pipes
#    of A only keepalives) and their replies come back through it too (A is registered with
#    its standby as standby, so that SN forwards to the dest_sn); the warm standby does not change over about 5 s although the two
#    far SNs' RTTs wobble by a few ms.
# c. dom1.sn2's iesn SIGKILLed: A fails over to the standby within 3 s of the kill, pings go
#    out through the relay, at most dead_after + 1 s of 0.1 s pings are lost; dom1.sn2
#    restarted: A fails back within 10 s; two failovers counted.
#    The surveys are echoes (docs/ilp.md "Echo"): dom1.sn2 answered at least three, no survey
#    fell back to an association.
# d. rtt_survey_s = 0 by reload (applied live): A moves to dom1.sn1 (listed first), pings go
#    through it, no survey starts. Then a restart with it: A stays on dom1.sn1, dom1.sn2 is an
#    unmeasured candidate, rtt_surveys 0, no survey logged.
# e. An SN that answers no echo (one older than echoes): A reaches dom1.sn2 through a relay
#    that adds no delay but drops echoes; restarted with surveys on, A measures it through a
#    short association instead (rtt_survey_fallbacks >= 1, logged), and makes it active
#    within 10 s again.
source "$(dirname "$0")/lib.sh"
ie_init "$@"
source "$(dirname "$0")/ied_lib.sh"
HERE="$(cd "$(dirname "$0")" && pwd)"

DELAY_MS=15
NEAR=dom1.sn2
FAR1=dom1.sn1
FAR2=dom2.sn1
# The endpoint A is configured with for each SN, and how A's host pipe shows on that SN (its
# address there: A's eth0 for the near SN, the relay's upstream socket for the far ones).
declare -A EP=([dom1.sn1]=172.16.4.1:1001 [dom2.sn1]=172.16.5.1:1001 [dom1.sn2]=172.16.1.1:$IE_PORT)
declare -A A_PIPE=([dom1.sn1]=172.16.4.1: [dom2.sn1]=172.16.5.1: [dom1.sn2]=172.16.1.2:)

topo_up
link_add hA eth1 172.16.4.2/24 d1s1 hA2 172.16.4.1/24
link_add hA eth2 172.16.5.2/24 d2s1 hA3 172.16.5.1/24
in_ns hA ip addr replace "${IE_HOST_INNER[A]}/32" dev lo
relay_start() {  # ROLE ADDR [DELAY_MS [ARGS...]]: a relay in the SN's namespace, ADDR:1001 -> ADDR:IE_PORT
  rm -f "$IE_WORK/relay-$1.ready"
  spawn "relay-$1" "$1" python3 "$HERE/udp_delay.py" --listen "$2:1001" --to "$2:$IE_PORT" \
    --delay-ms "${3:-$DELAY_MS}" --ready-file "$IE_WORK/relay-$1.ready" "${@:4}"
  wait_for 10 "the relay in $1" test -e "$IE_WORK/relay-$1.ready"
}
relay_start d1s1 172.16.4.1
relay_start d2s1 172.16.5.1
ied_start B static

a_config() {  # RTT_SURVEY_S
  {
    cat <<EOT
[daemon]
state_dir = "$IE_WORK/ied-A.state"
socket = "$IE_WORK/ied-A.sock"
[host]
addresses = ["${IE_HOST_INNER[A]}"]
prefixes = ["10.2.0.0/24"]
[timers]
keepalive_ms = 500
dead_after_ms = 2000
[discovery]
rtt_survey_s = $1
EOT
    local sn
    for sn in "$FAR1" "$FAR2" "$NEAR"; do
      printf '[[sn]]\nname = "%s"\nendpoint = "%s"\nkey = "%s"\npriority = 10\n' "$sn" \
        "${EP[$sn]}" "${IE_SNKEY[$sn]}"
    done
    ied_peer_toml B
  } >"$IE_WORK/ied-A.toml"
}

# ---- helpers ----
# A snapshot of A's sn list, one line per SN: name state rtt_ms (null as -).
sn_snap() {
  iectl_json A sn list | python3 -c '
import json, sys
for s in json.load(sys.stdin)["sns"]:
    r = s.get("rtt_ms")
    print(s["name"], s["state"], "-" if r is None else "%.3f" % r)' >"$IE_WORK/snap" 2>/dev/null
}
snf() { awk -v n="$1" -v f="$2" '$1 == n {print $f}' "$IE_WORK/snap"; }  # NAME FIELD
ctr() { iectl_json A status | jget - "j['counters']['$1']"; }
active_far() { local a; a="$(active_sn)"; [ "$a" = "$FAR1" ] || [ "$a" = "$FAR2" ]; }
# Polls CMD every 0.2 s for at most TIMEOUT s; unlike wait_for, a timeout is not fatal.
poll() {  # TIMEOUT CMD...
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}
rtts_known() { sn_snap && ! grep -q ' -$' "$IE_WORK/snap"; }
# X >= Y, X < Y for decimals; '-' (null) is neither.
ge() { [ "$1" != - ] && awk -v x="$1" -v y="$2" 'BEGIN {exit !(x + 0 >= y + 0)}'; }
lt() { [ "$1" != - ] && awk -v x="$1" -v y="$2" 'BEGIN {exit !(x + 0 < y + 0)}'; }
a_pipe() {  # SN rx|tx: packets SN received on / sent to A's host pipe(s) (0 if A has none)
  sn_json "$1" pipes | jget - "sum(p['$2_packets'] for p in j['pipes']
    if p['kind'] == 'host' and p['address'].startswith('${A_PIPE[$1]}'))"
}
# The switches ied A logged ("OLD -> NEW", one a line), from log line FROM on (default 1).
switches() {
  tail -n +"${1:-1}" "$IE_WORK/ied-A.err" | grep 'first-hop SN: .* -> ' |
    sed 's/.*first-hop SN: //; s/ (IESP.*//'
}
# Milliseconds from T0 to the last log line of ied A containing TEXT; 999999 if there is none.
ms_since() {  # T0 TEXT
  local t
  t="$(log_ms "$IE_WORK/ied-A.err" "$2")"
  if [ -n "$t" ]; then echo $((t - $1)); else echo 999999; fi
}
# The SNs' errors in A's sn list, for check details.
sn_errors() {
  iectl_json A sn list |
    jget - "('; '.join(s['name'] + ': ' + s['error'] for s in j['sns'] if s.get('error')) or
            'no SN error')"
}
# A batch of N pings A -> B: "RECEIVED MEDIAN_MS" (the median: on a busy machine one late
# reply moves the mean a long way).
ping_batch() {  # N
  in_ns hA ping -n -c "$1" -i 0.05 -W 2 10.2.0.2 2>&1 | python3 -c '
import re, statistics, sys
t = [float(m.group(1)) for m in re.finditer(r"time=([0-9.]+) ms", sys.stdin.read())]
print(len(t), "%.3f" % statistics.median(t) if t else "-")'
}

# ---- a. the near SN, listed last, becomes active ----
a_config 300
start_ms="$(date +%s%3N)"
spawn ied-A hA "$IED" --config "$IE_WORK/ied-A.toml" --log-level debug
poll 10 active_is "$NEAR"
check "A's active SN is the near $NEAR within 10 s (listed last)" $? \
  "active '$(active_sn)' $(($(date +%s%3N) - start_ms)) ms after the start; $(sn_errors)"
# Switches before the near SN is measured: the two far SNs come up together and the first
# ready one is active until the one listed first is ready (a far -> far switch; not this
# feature's). Then at most one switch far -> near, none away from it.
sw="$(switches | xargs -r -d '\n' printf '%s, ')"
to_near="$(switches | grep -c -- "-> $NEAR\$")"
ok=0
switches | grep -q -- "^$NEAR -> " && ok=1
[ "$to_near" -le 1 ] || ok=1
if [ "$to_near" -eq 0 ]; then
  grep -q "first-hop SN: $NEAR (" "$IE_WORK/ied-A.err" || ok=1  # chosen first
fi
check "one switch far -> near (or near chosen first), none away from it" "$ok" \
  "switches: ${sw:-none}"
grep -q "RTT survey: SN $NEAR at ${EP[$NEAR]}: [0-9.]* ms" "$IE_WORK/ied-A.err"
check "the near SN's survey was logged" $? "$(grep -m1 "RTT survey: SN $NEAR" "$IE_WORK/ied-A.err")"
poll 5 rtts_known
log "sn list: $(tr '\n' ';' <"$IE_WORK/snap")"
for sn in "$FAR1" "$FAR2"; do
  ge "$(snf "$sn" 3)" 25
  check "sn list: far $sn rtt_ms >= 25" $? "$(snf "$sn" 3)"
done
lt "$(snf "$NEAR" 3)" 5
check "sn list: near $NEAR rtt_ms < 5" $? "$(snf "$NEAR" 3)"
expect_eq "sn list: states (near, far, far)" \
  "$(snf "$NEAR" 2) $(printf '%s\n' "$(snf "$FAR1" 2)" "$(snf "$FAR2" 2)" | sort | xargs)" \
  "active candidate standby"
expect_ge "rtt_surveys" "$(ctr rtt_surveys)" 1
expect_eq "rtt_survey_failures" "$(ctr rtt_survey_failures)" 0
expect_eq "rtt_survey_fallbacks (every SN answers echoes)" "$(ctr rtt_survey_fallbacks)" 0
expect_ge "$NEAR answered A's survey echoes" \
  "$(sn_counter "$NEAR" "j['association']['echoes_answered']")" 3

# ---- b. traffic through the near SN ----
wait_for 10 "ping A -> B" ping_ok
standby() { sn_snap && awk '$2 == "standby" {print $1}' "$IE_WORK/snap"; }
far_standby() { local s; s="$(standby)"; [ "$s" = "$FAR1" ] || [ "$s" = "$FAR2" ]; }
poll 3 far_standby
check "a far SN is the warm standby" $? "standby '$(standby)'; $(sn_errors)"
standby_b="$(standby)"
declare -A rx0=() tx0=()
for sn in "$NEAR" "$FAR1" "$FAR2"; do
  rx0[$sn]="$(a_pipe "$sn" rx)"
  tx0[$sn]="$(a_pipe "$sn" tx)"
done
read -r got med <<<"$(ping_batch 20)"
expect_ge "pings A -> B answered (of 20)" "$got" 19
d_near=$(($(a_pipe "$NEAR" rx) - rx0[$NEAR]))
expect_ge "the near SN received the pings on A's pipe" "$d_near" 20
for sn in "$FAR1" "$FAR2"; do
  d=$(($(a_pipe "$sn" rx) - rx0[$sn]))
  expect_le "far $sn: A's pipe got only keepalives/probes, not the pings" "$d" 8
done
# The replies come back through the near SN too: A registered with its standby as such
# ("standby": true), so the standby, although on B's way back (dom2.sn1 is B's SN, dom1.sn1
# dom1's gateway), sends them on to the SN their dest_sn names (A's active) instead of down
# its relay to A (sn_reference/routing/ip_module.cpp; its ip.standby_bypass counter).
replies=""
for sn in "$NEAR" "$FAR1" "$FAR2"; do replies+=" $sn $(($(a_pipe "$sn" tx) - tx0[$sn]))"; done
log "ping median $med ms; sent to A's pipe (replies + keepalive answers):$replies"
expect_ge "the near SN sent the replies down A's pipe" "$(($(a_pipe "$NEAR" tx) - tx0[$NEAR]))" 19
for sn in "$FAR1" "$FAR2"; do
  d=$(($(a_pipe "$sn" tx) - tx0[$sn]))
  expect_le "far $sn: sent A only keepalive answers, not the replies" "$d" 8
done
expect_le "ping median through the near SN both ways (ms)" "${med%.*}" 9
# The two far SNs are about as far (~30 ms, a few ms of jitter through the relays): which of
# them is the warm standby must not change on every wobble of their RTTs (each change closes
# one association and opens another). Watched for about 5 s.
standbys="$standby_b"
for _ in $(seq 12); do
  sn_snap
  standbys+=" $(awk '$2 == "standby" {print $1 ":" $3}' "$IE_WORK/snap")"
  sleep 0.3
done
changes="$(echo "$standbys" | tr ' ' '\n' | cut -d: -f1 | uniq | wc -l)"
expect_eq "the warm standby stayed $standby_b (samples name:rtt_ms, none: '': $standbys)" \
  "$((changes - 1))" 0

# ---- c. failover to a far SN and back ----
f0="$(ctr failovers)"
standby_k="$(standby)"
spawn ping-A hA ping -n -i 0.1 -c 100 -W 1 10.2.0.2
sleep 1
log "killing $NEAR's iesn (SIGKILL)"
kill_ms="$(date +%s%3N)"
sn_kill9 "$NEAR"
wait_for 6 "A to fail over to a far SN" active_far
to="$(active_sn)"
expect_le "failover to $to within 3 s of the kill (ms)" \
  "$(ms_since "$kill_ms" "first-hop SN: $NEAR -> $to")" 3000
expect_eq "failed over to the standby of just before the kill" "$to" "$standby_k"
read -r got med <<<"$(ping_batch 10)"
expect_ge "pings A -> B through $to (of 10)" "$got" 9
# B sends to the SN A named in its packets (source_sn), not the one its [[peer]] names.
expect_eq "B's peers: A behind $to, learned from A's packets" \
  "$(iectl_json B peers | jget - "[p['sn'] + ' ' + p['sn_from'] for p in j['peers'] if p['address'] == '${IE_HOST_INNER[A]}'][0]")" \
  "$to peer"
ge "$med" 12
check "ping RTT: out through a relay (>= 12 ms)" $? "median $med ms"
sleep 1
log "restarting $NEAR's iesn"
restart_ms="$(date +%s%3N)"
sn_start "$NEAR"
poll 10 active_is "$NEAR"
check "A fails back to $NEAR within 10 s of the restart" $? \
  "active '$(active_sn)', $(ms_since "$restart_ms" "first-hop SN: $to -> $NEAR") ms; $(sn_errors)"
wait_exit ping-A 15
lost="$(awk '/packets transmitted/ {print $1 - $4}' "$IE_WORK/ping-A.out")"
# dead_after_ms (2 s) of pings at 0.1 s, plus 1 s.
expect_le "pings lost across failover and failback (of 100)" "${lost:-100}" 30
expect_eq "failovers counted: away and back, no other switch" "$(($(ctr failovers) - f0))" 2

# ---- d. rtt_survey_s = 0: the listed order alone ----
s0="$(ctr rtt_surveys)"
a_config 0
in_ns hA "$IECTL" --socket "$IE_WORK/ied-A.sock" --json reload >"$IE_WORK/reload.out" 2>&1
check "iectl reload" $? "$(cat "$IE_WORK/reload.out")"
jget "$IE_WORK/reload.out" "'discovery.rtt_survey_s' in j['applied']" | grep -qx true
check "the reload applied discovery.rtt_survey_s" $? "$(cat "$IE_WORK/reload.out")"
poll 5 active_is "$FAR1"
check "reload to rtt_survey_s = 0: A moves to $FAR1 (listed first)" $? "active '$(active_sn)'"
wait_for 10 "ping A -> B after the reload" ping_ok
read -r got med <<<"$(ping_batch 10)"
expect_ge "pings A -> B through $FAR1 (of 10)" "$got" 9
ge "$med" 12
check "ping RTT: out through a relay (>= 12 ms)" $? "median $med ms"
sleep 1
expect_eq "no survey started after the reload" "$(ctr rtt_surveys)" "$s0"
log "restarting ied A with rtt_survey_s = 0"
stop ied-A
check "ied A stops on SIGTERM (exit 0)" $? "exit status"
lines="$(wc -l <"$IE_WORK/ied-A.err")"
spawn ied-A hA "$IED" --config "$IE_WORK/ied-A.toml" --log-level debug
wait_for 15 "ied A registered again" ied_registered A
# Longer than part a took to switch: no switch to the near SN must come.
sleep 3
# Traffic again after the restart, although B's [[peer]] names dom1.sn2 as A's SN: while
# A's ied was down, B's end-to-end re-handshake (dest_sn $FAR1, A registered nowhere) went by
# $FAR1's static route to dom1.sn2, which dropped it as a loop; $FAR1 must not cache that
# guess (sn_reference/routing/ip_module.cpp), or B's packets to A loop for good.
wait_for 15 "ping A -> B after ied A's restart" ping_ok
expect_eq "listed order: A stays on $FAR1" "$(active_sn)" "$FAR1"
sw="$(switches "$((lines + 1))" | xargs -r -d '\n' printf '%s, ')"
switches "$((lines + 1))" | grep -q -- "$NEAR"
check "after the restart no switch involves the near SN" "$((1 - $?))" "switches: ${sw:-none}"
sn_snap
expect_eq "states: first two listed associated, the near one a candidate" \
  "$(snf "$FAR1" 2) $(snf "$FAR2" 2) $(snf "$NEAR" 2)" "active standby candidate"
expect_eq "near SN not measured" "$(snf "$NEAR" 3)" "-"
expect_eq "rtt_surveys" "$(ctr rtt_surveys)" 0
tail -n +"$((lines + 1))" "$IE_WORK/ied-A.err" | grep -q "RTT survey:"
expect_eq "no RTT survey logged after the restart" "$?" 1

# ---- e. an SN that answers no echo ----
relay_start d1s2 172.16.1.1 0 --drop-type 6
EP[$NEAR]=172.16.1.1:1001
a_config 300
log "restarting ied A with $NEAR behind a relay that drops echoes"
stop ied-A
check "ied A stops on SIGTERM (exit 0)" $? "exit status"
lines="$(wc -l <"$IE_WORK/ied-A.err")"
start_ms="$(date +%s%3N)"
spawn ied-A hA "$IED" --config "$IE_WORK/ied-A.toml" --log-level debug
poll 10 active_is "$NEAR"
check "A's active SN is $NEAR within 10 s, measured without echoes" $? \
  "active '$(active_sn)' $(($(date +%s%3N) - start_ms)) ms after the start; $(sn_errors)"
expect_ge "rtt_survey_fallbacks" "$(ctr rtt_survey_fallbacks)" 1
expect_eq "rtt_survey_failures" "$(ctr rtt_survey_failures)" 0
tail -n +"$((lines + 1))" "$IE_WORK/ied-A.err" | grep -q "SN $NEAR at ${EP[$NEAR]} answered no echo"
check "the fallback was logged" $? "$(tail -n +"$((lines + 1))" "$IE_WORK/ied-A.err" | grep -m3 'RTT survey')"
stop relay-d1s2
expect_ge "the relay dropped A's echoes" \
  "$(grep -o 'dropped_type=[0-9]*' "$IE_WORK/relay-d1s2.err" | cut -d= -f2 | tail -1)" 2
ie_finish
