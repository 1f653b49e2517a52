#!/usr/bin/env bash
# ied SN failover and failback with a live TCP stream (issue 4).
#   Host A has two links: eth0 to dom1.sn2 (priority 10) and eth1 to dom1.sn1 (priority 20),
#   both in its configuration, so ied associates with both (active + warm standby) and
#   registers 10.1.0.2 with both. B (behind dom2.sn1) learns A's current SN from the
#   source_sn TLV of A's packets. A long iperf3 TCP stream A -> B runs while dom1.sn2's iesn
#   is killed (SIGKILL: no CLOSE, silence) and later restarted.
# Checks: A switches to dom1.sn1 within 3 s of the kill; the stream survives (iperf3 exits 0,
# data flows after the switch); A switches back to dom1.sn2 once it is up again; the failover
# counter says two switches (none at start).
source "$(dirname "$0")/lib.sh"
ie_init "$@"
source "$(dirname "$0")/ied_lib.sh"

topo_up
# A's second link, to dom1.sn1.
ied_second_link d1s1 4
ied_start B static

{
  ied_two_link_head '"10.2.0.0/24"'
  echo "priority = 10"
  ied_sn_toml dom1.sn1 172.16.4.1
  echo "priority = 20"
  ied_peer_toml B
} >"$IE_WORK/ied-A.toml"
spawn ied-A hA "$IED" --config "$IE_WORK/ied-A.toml" --log-level debug
wait_for 15 "ied A registered" ied_registered A
sn_state() {  # NAME: its state in A's sn list
  iectl_json A sn list | jget - "[s['state'] for s in j['sns'] if s['name']=='$1'][0]"
}
active_is() { [ "$(iectl_json A status | jget - "j['sn']['name'] if j['sn'] else ''")" = "$1" ]; }
standby_ready() { [ "$(sn_state dom1.sn1)" = standby ]; }
wait_for 15 "dom1.sn1 as warm standby" standby_ready
expect_eq "dom1.sn2 active" "$(sn_state dom1.sn2)" "active"
expect_eq "dom1.sn1 warm standby" "$(sn_state dom1.sn1)" "standby"
failovers() { iectl_json A status | jget - "j['counters']['failovers']"; }
# Both handshakes race at start; ied waits a moment for the preferred SN instead of taking
# whichever answered first and switching (sn_set.cpp kStartGrace).
expect_eq "no switch at start" "$(failovers)" 0
in_ns hA ping -c 3 -i 0.2 -W 2 10.2.0.2 >/dev/null 2>&1
in_ns hA ping -c 2 -i 0.2 -W 2 10.2.0.2 >/dev/null 2>&1
check "ping A -> B before the failover" $? ""

# The live stream: 30 s at 20 Mbit/s (leaves the 2 CPUs to the daemons' control work).
spawn iperf3-B hB iperf3 -s -B 10.2.0.2 -1
sleep 0.5
iperf_ms="$(date +%s%3N)"
spawn iperf3-A hA iperf3 -c 10.2.0.2 -t 30 -b 20M -i 1 -J
sleep 4

log "killing dom1.sn2's iesn (SIGKILL)"
kill_ms="$(date +%s%3N)"
kill -9 "${IE_PID[dom1.sn2]}"
wait_for 6 "A to switch to dom1.sn1" active_is dom1.sn1
# When ied switched, from its log line "first-hop SN: dom1.sn2 -> dom1.sn1".
switch_ms="$(log_ms "$IE_WORK/ied-A.err" "first-hop SN: dom1.sn2 -> dom1.sn1")"
took=$((switch_ms - kill_ms))
expect_le "failover within 3 s of the SN's death (ms)" "$took" 3000
sleep 4

log "restarting dom1.sn2's iesn"
sn_start dom1.sn2
wait_for 12 "A to fail back to dom1.sn2" active_is dom1.sn2
back_ms="$(log_ms "$IE_WORK/ied-A.err" "first-hop SN: dom1.sn1 -> dom1.sn2")"
log "failed back to dom1.sn2 $(((back_ms - iperf_ms) / 1000)) s into the stream"

wait_exit iperf3-A 35
check "the TCP stream survived both switches (iperf3 exits 0)" $? "exit status"
j="$IE_WORK/iperf3-A.out"
intervals="$(jget "$j" "len(j['intervals'])" 2>/dev/null || echo 0)"
expect_ge "iperf3 reported every second" "$intervals" 29
# Bytes in the intervals wholly after a moment (ms since the epoch) until the end.
bytes_after() {
  jget "$j" "sum(i['sum']['bytes'] for i in j['intervals'] if i['sum']['start'] * 1000 >= $1 - $iperf_ms + 1000)"
}
expect_gt "data flowed through dom1.sn1 after the failover" "$(bytes_after "$switch_ms")" 1000000
expect_gt "data flowed through dom1.sn2 after the failback" "$(bytes_after "$back_ms")" 1000000
grep -q "peer 10.1.0.2 now behind SN dom1.sn2 (was dom1.sn1)" "$IE_WORK/ied-B.err"
check "B followed A back to dom1.sn2 (source_sn)" $? "ied-B.err"
expect_eq "switches counted: away and back" "$(failovers)" 2
ie_finish
