#!/usr/bin/env bash
# SN netns test a: point-to-point delivery across edomains (topology: lib.sh).
#   A -> dom1.sn2 -> dom1.sn1 -> dom2.sn1 -> B, 500 packets on 4 flows; B echoes each one
#   back (dest_sn dom1.sn2), A receives every echo. Every SN forwarded from its decision
#   cache: each shows cache hits, and the hits cover all but a few packets per flow.
# shellcheck disable=SC2119  # topo_up without options
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
ie_init "$@"
topo_up

N=500
host_start B --echo --reply-sn dom1.sn2 --expect "$N" --duration 30
host_spawn A --to 10.2.0.2 --dest-sn dom2.sn1 --count "$N" \
  --rate 500 --flows 4 --expect "$N" --duration 20
wait_exit A 25
check "A exits 0 (associated, registered, all echoes back)" $? "exit status"
wait_exit B 10
check "B exits 0 (received every packet)" $? "exit status"

A="$(host_json A)" B="$(host_json B)"
expect_eq "A sent" "$(jget "$A" "j['sent']")" "$N"
expect_eq "B received from A (unique)" "$(jget "$B" "j['per_source']['10.1.0.2']['unique']")" "$N"
expect_eq "B duplicates" "$(jget "$B" "j['duplicates']")" 0
expect_eq "B echoed" "$(jget "$B" "j['echoed']")" "$N"
expect_eq "A echoes from B (unique)" "$(jget "$A" "j['per_source']['10.2.0.2']['unique']")" "$N"
expect_eq "A echo duplicates" "$(jget "$A" "j['duplicates']")" 0
expect_eq "A lost" "$(jget "$A" "j['lost']")" 0
expect_eq "B marker mismatches" "$(jget "$B" "j['marker_mismatch']")" 0
# Both directions cross every SN: 2N packets per SN. A flow's packets that arrive in the
# same receive batch as its first one all go to the module (the entry is installed while that
# batch is decided), so at most one batch (64) per flow, direction and worker misses; the
# rest must hit.
for sn in dom1.sn2 dom1.sn1 dom2.sn1; do
  hits="$(sn_counter "$sn" "j['cache']['hits']")"
  misses="$(sn_counter "$sn" "j['cache']['misses']")"
  expect_ge "$sn cache hits" "$hits" 1
  expect_le "$sn cache misses" "$misses" $((4 * 2 * 2 * 64))
  expect_eq "$sn packets decided" $((hits + misses)) $((2 * N))
  expect_eq "$sn no_route drops" "$(sn_counter "$sn" "j['drops']['no_route']")" 0
done
ie_finish
