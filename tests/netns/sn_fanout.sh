#!/usr/bin/env bash
# SN netns test b: multi-destination replication (topology: lib.sh, with host C behind
# dom1.sn1).
#   Every SN loads the example `fanout` module (service 0x8001) with
#   to = "10.2.0.2, 10.3.0.2". A sends 300 packets of that service: dom1.sn2 sends one copy
#   to dom1.sn1 (both destinations lie that way), dom1.sn1 makes two (C, and dom2.sn1 for
#   B), dom2.sn1 delivers to B. B and C each receive every packet exactly once.
# shellcheck disable=SC2119  # topo_up without options
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
ie_init "$@"
if [ -z "$FANOUT" ] || [ ! -f "$FANOUT" ]; then
  die "needs --fanout PATH (libie_sn_example_fanout.so)"
fi
topo_up --host-c --modules-load "$FANOUT" --fanout-to "10.2.0.2, 10.3.0.2"

N=300
host_start B --expect "$N" --duration 30
host_start C --expect "$N" --duration 30
host_spawn A --to 10.2.0.2 --service 32769 --count "$N" \
  --rate 500 --flows 3 --duration 20
wait_exit A 25
check "A exits 0 (sent everything)" $? "exit status"
wait_exit B 10
check "B exits 0 (received every packet)" $? "exit status"
wait_exit C 10
check "C exits 0 (received every packet)" $? "exit status"

for h in B C; do
  J="$(host_json "$h")"
  expect_eq "$h received from A (unique)" "$(jget "$J" "j['per_source']['10.1.0.2']['unique']")" "$N"
  expect_eq "$h duplicates" "$(jget "$J" "j['duplicates']")" 0
done
c="$(sn_json dom1.sn1 counters)"
expect_ge "dom1.sn1 fanout copies decided" "$(jget - "j['module_counters'].get('fanout.copies', 0)" <<<"$c")" 2
expect_gt "dom1.sn1 cache hits (replication from the cache)" "$(jget - "j['cache']['hits']" <<<"$c")" 0
ie_finish
