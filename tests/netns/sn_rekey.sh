#!/usr/bin/env bash
# SN netns test d: SN-SN re-key under traffic (topology: lib.sh).
#   rekey_seconds = 2 on every SN; A sends at a steady 250 packets/s for 8 s to B across
#   both edomains. Zero loss and no duplicates, while every SN-SN pipe re-keyed several
#   times (iesn logs "pipe N rekeyed" at debug level for each new session on a live pipe;
#   no counter exposes re-keys yet).
# shellcheck disable=SC2119  # topo_up without options
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
ie_init "$@"
topo_up --rekey 2

RATE=250
N=$((RATE * 8))
host_start B --expect "$N" --duration 30
# The SN-SN pipes of each SN (ids), and how many re-keys each SN logged for them so far.
declare -A SNPIPES=() BEFORE=()
rekeys() {  # SN: re-keys it logged on its SN-SN pipes
  grep -cE "pipe (${SNPIPES[$1]}) rekeyed" "$IE_WORK/$1.err"
}
for sn in dom1.sn2 dom1.sn1 dom2.sn1; do
  SNPIPES[$sn]="$(sn_json "$sn" pipes | jget - "'|'.join(str(p['id']) for p in j['pipes'] if p['kind'] == 'sn')")"
  BEFORE[$sn]="$(rekeys "$sn")"
done
expect_eq "dom1.sn1 SN-SN pipes" "$(tr '|' '\n' <<<"${SNPIPES[dom1.sn1]}" | wc -l)" 2
host_spawn A --to 10.2.0.2 --dest-sn dom2.sn1 --count "$N" \
  --rate "$RATE" --flows 8 --duration 20
wait_exit A 25
check "A exits 0 (sent everything)" $? "exit status"
wait_exit B 15
check "B exits 0 (received every packet)" $? "exit status"

A="$(host_json A)" B="$(host_json B)"
expect_eq "A sent" "$(jget "$A" "j['sent']")" "$N"
expect_eq "A unsent" "$(jget "$A" "j['unsent']")" 0
expect_eq "B received (unique)" "$(jget "$B" "j['per_source']['10.1.0.2']['unique']")" "$N"
expect_eq "B lost" "$(jget "$B" "j['lost']")" 0
expect_eq "B duplicates" "$(jget "$B" "j['duplicates']")" 0
for sn in dom1.sn2 dom1.sn1 dom2.sn1; do
  c="$(sn_json "$sn" counters)"
  for reason in unknown_spi auth_failed replayed no_route send_failed; do
    expect_eq "$sn $reason drops" "$(jget - "j['drops']['$reason']" <<<"$c")" 0
  done
done
# ~8 s of traffic with 2 s sessions: several re-keys on each SN-SN pipe (dom1.sn1 holds
# two: to dom1.sn2 and to dom2.sn1; the others one each).
for sn in dom1.sn1 dom1.sn2 dom2.sn1; do
  want=2
  [ "$sn" = dom1.sn1 ] && want=4
  now="$(rekeys "$sn")"
  expect_ge "$sn SN-SN re-keys during the traffic" $((now - BEFORE[$sn])) "$want"
done
ie_finish
