#!/usr/bin/env bash
# SN netns test g: replayed packets are rejected (topology: lib.sh).
#   tcpdump captures everything host A sends to its SN (dom1.sn2) while A sends 200 packets
#   to B. Then, with A still associated, every captured datagram is sent to dom1.sn2 again
#   (ie-testhost --replay, from A's namespace). dom1.sn2's `replayed` drop counter grows by
#   exactly the number of data packets replayed, and B receives nothing new.
# shellcheck disable=SC2119,SC2317  # topo_up without options; functions run by wait_for
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
ie_init "$@"
topo_up

N=200
capture_start a hA eth0 "udp and src host ${IE_HOST_OUTER[A]} and dst port $IE_PORT"
host_start B --duration 50
host_spawn A --to 10.2.0.2 --dest-sn dom2.sn1 --count "$N" \
  --rate 500 --flows 2 --linger 50 --duration 50  # stays associated until stopped
forwarded() {  # dom1.sn2 decided (cache hit or module) at least N packets
  [ "$(sn_counter dom1.sn2 "j['cache']['hits'] + j['cache']['misses']")" -ge "$N" ]
}
wait_for 15 "dom1.sn2 to forward $N packets" forwarded
capture_stop a "$N"

before="$(sn_counter dom1.sn2 "j['drops']['replayed']")"
in_ns hA "$TESTHOST" --replay "$IE_WORK/a.pcap" --to-sn "${IE_HOST_GW[A]}:$IE_PORT" \
  --bind "${IE_HOST_OUTER[A]}:0" --rate 2000 --json >"$IE_WORK/replay.json" 2>"$IE_WORK/replay.err"
check "ie-testhost --replay exits 0" $? "exit status"
data="$(jget "$IE_WORK/replay.json" "j['data']")"
expect_eq "data packets replayed (all of A's)" "$data" "$N"
expect_ge "control datagrams replayed (handshake, key exchange)" \
  "$(jget "$IE_WORK/replay.json" "j['control']")" 1
replayed_grew() {
  [ "$(sn_counter dom1.sn2 "j['drops']['replayed']")" -ge $((before + data)) ]
}
wait_for 10 "dom1.sn2's replayed counter to grow by $data" replayed_grew
sleep 1  # anything replayed that slipped through would reach B by now
expect_eq "dom1.sn2 replayed drops (growth)" \
  $(($(sn_counter dom1.sn2 "j['drops']['replayed']") - before)) "$data"
# The replayed handshake and control messages changed nothing: still one host pipe, and A
# never had to associate again.
expect_eq "dom1.sn2 host pipes" "$(sn_json dom1.sn2 status | jget - "j['pipe_summary']['hosts']")" 1
stop A
check "A exits 0" $? "exit status"
expect_eq "A associations" "$(jget "$(host_json A)" "j['associations']")" 1
stop B
check "B exits 0" $? "exit status"
B="$(host_json B)"
expect_eq "B received (all, counting duplicates)" "$(jget "$B" "j['received']")" "$N"
expect_eq "B unique" "$(jget "$B" "j['unique']")" "$N"
expect_eq "B duplicates" "$(jget "$B" "j['duplicates']")" 0
ie_finish
