#!/usr/bin/env bash
# SN netns test: on-demand direct SN pipes (docs/sn.md "On-demand direct pipes"; topology:
# lib.sh, every SN with [edomain] direct_pipes = true, direct_idle_seconds = 10).
#   a) A -> B with echoes starts on the gateway route (dom1.sn2 -> dom1.sn1 -> dom2.sn1);
#      dom1.sn2 locates dom2.sn1 through its gateway, associates with it and says hello;
#      dom2.sn1 verifies dom1.sn2's key the same way; from then on both directions go
#      straight. Every packet and every echo arrives, once.
#   b) While the direct pipe is up, 600 more packets and their echoes: the gateway dom1.sn1
#      decides none of them, and the direct pipe carries them.
#   c) Unused for 10 s, the pipe is closed on both sides.
#   e) (with dom2.sn2, a second SN of dom2 serving host D) A -> D with echoes: dom1.sn2 and
#      dom2.sn2 know nothing of each other and neither do their own gateways, so each
#      sn.locate is relayed by both gateways (dom1.sn1 -> dom2.sn1 and back); the direct pipe
#      dom1.sn2 <-> dom2.sn2 comes up, nothing lost; the transit gateway opens none itself.
#   d) Under traffic again (1,000 packets/s each way; the pipe comes back), dom1.sn2 is
#      reloaded with direct_pipes = false: it closes the pipe and the traffic returns to the
#      gateway route, with nothing lost on the way.
# shellcheck disable=SC2119  # topo_up without options
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
ie_init "$@"
sn_config_hook() {  # NAME FILE: direct pipes on, a short idle time
  sed -i 's/^rekey_seconds = .*/&\ndirect_pipes = true\ndirect_idle_seconds = 10/' "$2"
}
topo_up --dom2-sn2

# The on-demand SN pipe of SN $1 to SN $2: its id, or nothing.
direct_pipe() {
  sn_json "$1" pipes | jget - "next((str(p['id']) for p in j['pipes'] if p['kind'] == 'sn' and p['name'] == '$2' and p['on_demand']), '')"
}
# shellcheck disable=SC2317  # called through wait_for
has_direct() { [ -n "$(direct_pipe "$1" "$2")" ]; }
# shellcheck disable=SC2317
no_direct() { [ -z "$(direct_pipe "$1" "$2")" ]; }
decided() {  # packets SN $1 decided (cache hits + misses)
  sn_counter "$1" "j['cache']['hits'] + j['cache']['misses']"
}
pipe_tx() {  # packets SN $1 sent on pipe $2
  sn_json "$1" pipes | jget - "next(p['tx_packets'] for p in j['pipes'] if str(p['id']) == '$2')"
}
assoc() { sn_json "$1" status | jget - "j['association']['$2']"; }
keep() {  # PHASE: the summary lines of this phase's A and B (.out files collect every run's)
  tail -n 1 "$(host_json A)" >"$IE_WORK/A.$1"
  tail -n 1 "$(host_json B)" >"$IE_WORK/B.$1"
}
lossless() {  # PHASE N: A sent N, B got each once, A got every echo once
  local a="$IE_WORK/A.$1" b="$IE_WORK/B.$1"
  expect_eq "$1) A sent" "$(jget "$a" "j['sent']")" "$2"
  expect_eq "$1) B received from A (unique)" "$(jget "$b" "j['per_source']['10.1.0.2']['unique']")" "$2"
  expect_eq "$1) B duplicates" "$(jget "$b" "j['duplicates']")" 0
  expect_eq "$1) A echoes from B (unique)" "$(jget "$a" "j['per_source']['10.2.0.2']['unique']")" "$2"
  expect_eq "$1) A echo duplicates" "$(jget "$a" "j['duplicates']")" 0
  expect_eq "$1) A lost" "$(jget "$a" "j['lost']")" 0
}
# One phase of traffic: B echoes, A sends N at RATE on FLOWS flows and waits for every echo.
traffic_start() {  # N RATE FLOWS
  host_start B --echo --reply-sn dom1.sn2 --expect "$1" --duration 40
  host_spawn A --to 10.2.0.2 --dest-sn dom2.sn1 --count "$1" --rate "$2" --flows "$3" \
    --expect "$1" --duration 30
}
traffic_end() {  # PHASE
  wait_exit A 35
  check "$1 A exits 0 (every echo back)" $? "exit status"
  wait_exit B 10
  check "$1 B exits 0 (received every packet)" $? "exit status"
}

# ---- a) the pipe comes up under traffic ----------------------------------------------------
# (b follows a at once, within direct_idle_seconds even on a loaded machine: the checks of
# both come after b.)
N1=1500
N2=600
gw0="$(decided dom1.sn1)"
traffic_start "$N1" 300 3
traffic_end "a)"
keep a
p12="$(direct_pipe dom1.sn2 dom2.sn1)"
p21="$(direct_pipe dom2.sn1 dom1.sn2)"
gw1="$(decided dom1.sn1)"

# ---- b) while it is up: straight, both ways --------------------------------------------------
tx0="$(pipe_tx dom1.sn2 "$p12")"
rx0="$(pipe_tx dom2.sn1 "$p21")"
traffic_start "$N2" 400 2
traffic_end "b)"
keep b
gw2="$(decided dom1.sn1)"
p12b="$(direct_pipe dom1.sn2 dom2.sn1)"
tx1="$(pipe_tx dom1.sn2 "$p12")"
rx1="$(pipe_tx dom2.sn1 "$p21")"

lossless a "$N1"
[ -n "$p12" ]
check "a) dom1.sn2 has an on-demand SN pipe to dom2.sn1" $? "$(sn_json dom1.sn2 pipes)"
[ -n "$p21" ]
check "a) dom2.sn1 took it as its SN pipe to dom1.sn2 (verified)" $? "$(sn_json dom2.sn1 pipes)"
expect_gt "a) the gateway carried the start of the flow" $((gw1 - gw0)) 0
expect_le "a) ... and at most half of it (the direct pipe came up early)" $((gw1 - gw0)) "$N1"
expect_ge "a) dom1.sn2 direct pipes opened" "$(assoc dom1.sn2 direct_opened)" 1
expect_eq "a) dom2.sn1 refused no hello" "$(assoc dom2.sn1 hellos_refused)" 0
# Either side may have asked first (both route traffic to the other through the gateways).
grep -qE "direct pipe (to|from) dom2.sn1 up" "$IE_WORK/dom1.sn2.err"
check "a) dom1.sn2 logged the pipe up" $? ""
lossless b "$N2"
expect_eq "b) the gateway decided none of the packets or echoes" "$gw2" "$gw1"
expect_eq "b) the same direct pipe is up" "$p12b" "$p12"
expect_ge "b) dom1.sn2 sent A's packets on it" $((tx1 - tx0)) "$N2"
expect_ge "b) dom2.sn1 sent B's echoes on it" $((rx1 - rx0)) "$N2"

# ---- c) unused: closed on both sides -----------------------------------------------------------
wait_for 20 "dom1.sn2's direct pipe closed" no_direct dom1.sn2 dom2.sn1
wait_for 5 "dom2.sn1's direct pipe closed" no_direct dom2.sn1 dom1.sn2
idle=$(($(assoc dom1.sn2 direct_idle_closed) + $(assoc dom2.sn1 direct_idle_closed)))
expect_ge "c) closed as unused (idle_closed, either side)" "$idle" 1
expect_eq "c) dom1.sn2 direct pipes now" "$(assoc dom1.sn2 direct_pipes)" 0

# ---- e) an SN neither side's gateway knows: sn.locate relayed across both gateways ---------
N4=900
r11="$(assoc dom1.sn1 locates_relayed)" r21="$(assoc dom2.sn1 locates_relayed)"
host_start D --echo --reply-sn dom1.sn2 --expect "$N4" --duration 30
host_spawn A --to 10.4.0.2 --dest-sn dom2.sn2 --count "$N4" --rate 300 --flows 2 \
  --expect "$N4" --duration 25
wait_exit A 30
check "e) A exits 0 (every echo back from D)" $? "exit status"
wait_exit D 10
check "e) D exits 0 (received every packet)" $? "exit status"
tail -n 1 "$(host_json A)" >"$IE_WORK/A.e"
tail -n 1 "$(host_json D)" >"$IE_WORK/D.e"
expect_eq "e) D received from A (unique)" "$(jget "$IE_WORK/D.e" "j['per_source']['10.1.0.2']['unique']")" "$N4"
expect_eq "e) A echoes from D (unique)" "$(jget "$IE_WORK/A.e" "j['per_source']['10.4.0.2']['unique']")" "$N4"
expect_eq "e) A lost" "$(jget "$IE_WORK/A.e" "j['lost']")" 0
has_direct dom1.sn2 dom2.sn2
check "e) dom1.sn2 has a direct pipe to dom2.sn2" $? "$(sn_json dom1.sn2 pipes)"
has_direct dom2.sn2 dom1.sn2
check "e) dom2.sn2 has it as its pipe to dom1.sn2" $? "$(sn_json dom2.sn2 pipes)"
expect_ge "e) dom1.sn1 relayed sn.locate to dom2.sn1" $(($(assoc dom1.sn1 locates_relayed) - r11)) 1
expect_ge "e) dom2.sn1 relayed sn.locate to dom1.sn1" $(($(assoc dom2.sn1 locates_relayed) - r21)) 1
# Only first-hop SNs ask for direct pipes: dom1.sn1 carried A's first packets to D (and
# D's first echoes) through its pipe to dom2.sn1 without opening one to dom2.sn2.
expect_eq "e) the transit gateway dom1.sn1 opened no direct pipe" "$(assoc dom1.sn1 direct_opened)" 0

# ---- d) reload with direct_pipes = false under traffic: back to the gateway, nothing lost --
N3=6000
traffic_start "$N3" 1000 3
wait_for 10 "the direct pipe back under traffic" has_direct dom1.sn2 dom2.sn1
sleep 1
gw3="$(decided dom1.sn1)"
sed -i 's/^direct_pipes = true/direct_pipes = false/' "$IE_WORK/dom1.sn2.toml"
kill -HUP "${IE_PID[dom1.sn2]}"
wait_for 5 "dom1.sn2 without its direct pipe" no_direct dom1.sn2 dom2.sn1
traffic_end "d)"
keep d
lossless d "$N3"
expect_gt "d) after the reload the gateway carries the traffic" $(($(decided dom1.sn1) - gw3)) 0
expect_eq "d) dom1.sn2 opened no pipe after the reload" "$(assoc dom1.sn2 direct_pipes)" 0
grep -q "reload: direct pipes off: closing the one to dom2.sn1" "$IE_WORK/dom1.sn2.err"
check "d) dom1.sn2 logged closing it" $? ""
# No SN ever took a peer SN's packet for a host's (a pipe used before the other side took it
# as an SN pipe: dropped as a spoofed source).
for sn in dom1.sn1 dom1.sn2 dom2.sn1 dom2.sn2; do
  expect_eq "$sn spoofed-source drops" "$(sn_counter "$sn" "j['module_counters'].get('ip.spoofed_source', 0)")" 0
done
ie_finish
