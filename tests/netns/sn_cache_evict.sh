#!/usr/bin/env bash
# SN netns test c: decision-cache eviction under pressure (topology: lib.sh).
#   cache_capacity = 8 on every SN (4 entries per worker), A sends 3,000 packets on 1,000
#   flows (round robin) to B across both edomains. Every packet is delivered exactly once
#   (modules decide again whatever the cache lost), and every SN evicted entries.
# shellcheck disable=SC2119  # topo_up without options
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
ie_init "$@"
topo_up --cache 8

N=3000
FLOWS=1000
host_start B --expect "$N" --duration 30
host_spawn A --to 10.2.0.2 --dest-sn dom2.sn1 --count "$N" \
  --rate 1000 --flows "$FLOWS" --duration 20
wait_exit A 25
check "A exits 0 (sent everything)" $? "exit status"
wait_exit B 15
check "B exits 0 (received every packet)" $? "exit status"

A="$(host_json A)" B="$(host_json B)"
expect_eq "A sent" "$(jget "$A" "j['sent']")" "$N"
expect_eq "B received (unique)" "$(jget "$B" "j['per_source']['10.1.0.2']['unique']")" "$N"
expect_eq "B duplicates" "$(jget "$B" "j['duplicates']")" 0
expect_eq "B lost" "$(jget "$B" "j['lost']")" 0
for sn in dom1.sn2 dom1.sn1 dom2.sn1; do
  c="$(sn_json "$sn" counters)"
  expect_eq "$sn cache capacity" "$(jget - "j['cache']['capacity']" <<<"$c")" 8
  expect_le "$sn cache size" "$(jget - "j['cache']['size']" <<<"$c")" 8
  expect_gt "$sn cache evictions" "$(jget - "j['cache']['evictions']" <<<"$c")" 0
  # The module decided (at least) once per flow: the cache cannot hold 1,000 flows.
  expect_ge "$sn cache misses" "$(jget - "j['cache']['misses']" <<<"$c")" "$FLOWS"
  expect_eq "$sn no_route drops" "$(jget - "j['drops']['no_route']" <<<"$c")" 0
done
ie_finish
