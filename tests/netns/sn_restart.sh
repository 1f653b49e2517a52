#!/usr/bin/env bash
# SN netns test e: a SIGKILLed SN restarted mid-traffic (topology: lib.sh).
#   A sends 200 packets/s for 12 s to B. After 3 s dom2.sn1 (B's SN, dom2's gateway) is
#   SIGKILLed and restarted 1 s later with the same configuration and key. dom1.sn1 and B
#   must re-associate with it (B notices the silence after its dead_after, 3 s), B
#   re-registers, and traffic resumes: B sees exactly one gap in the sequence numbers (the
#   outage, bounded), everything before and after it arrives once, the tail included.
# shellcheck disable=SC2119  # topo_up without options
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
ie_init "$@"
topo_up

RATE=200
N=$((RATE * 12))
OUTAGE_BOUND=8  # seconds: 1 s down + 3 s dead_after + handshake/registration, with slack
host_start B --duration 40
host_spawn A --to 10.2.0.2 --dest-sn dom2.sn1 --count "$N" \
  --rate "$RATE" --flows 4 --duration 25
sleep 3
log "SIGKILL dom2.sn1"
sn_kill9 dom2.sn1
sleep 1
log "restarting dom2.sn1"
sn_start dom2.sn1
wait_for 10 "dom2.sn1's pipe to dom1.sn1" sn_established dom2.sn1 1
wait_exit A 20
check "A exits 0 (sent everything)" $? "exit status"
sleep 1  # the last packets in flight
st="$(sn_json dom2.sn1 status)"
expect_eq "restarted dom2.sn1: established pipes (dom1.sn1 and B)" \
  "$(jget - "j['pipe_summary']['established']" <<<"$st")" 2
expect_eq "restarted dom2.sn1: host pipes" "$(jget - "j['pipe_summary']['hosts']" <<<"$st")" 1
stop B
check "B exits 0 (was associated and registered)" $? "exit status"

A="$(host_json A)" B="$(host_json B)"
expect_eq "A sent" "$(jget "$A" "j['sent']")" "$N"
src="j['per_source']['10.1.0.2']"
expect_eq "B highest sequence number (the tail arrived)" "$(jget "$B" "${src}['highest']")" $((N - 1))
expect_eq "B duplicates" "$(jget "$B" "j['duplicates']")" 0
expect_eq "B loss runs (one outage)" "$(jget "$B" "${src}['loss_runs']")" 1
lost="$(jget "$B" "${src}['lost']")"
expect_ge "B lost during the outage (the kill interrupted traffic)" "$lost" "$RATE"
expect_le "B lost (outage bounded by ${OUTAGE_BOUND}s)" "$lost" $((RATE * OUTAGE_BOUND))
expect_eq "B received the rest" "$(jget "$B" "${src}['unique']")" $((N - lost))
expect_ge "B re-associations" "$(jget "$B" "j['reassociations']")" 1
expect_ge "B registrations" "$(jget "$B" "j['registrations']")" 2
ie_finish
