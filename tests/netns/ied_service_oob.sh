#!/usr/bin/env bash
# Out-of-band invocation (issue 5, mode 3): a host asks its first-hop SN, through
# `iectl service enable|disable|list` -> ied -> the SN's control service, to apply a service
# to a portion of its traffic; the SN acknowledges and reports what applies. Real ied on A, B
# and C (A behind dom1.sn2, B behind dom2.sn1, C behind dom1.sn1); every SN offers `block`.
# Checks: B blocks incoming traffic from A's /24 at dom2.sn1: A's pings and curl to B fail
# (block.dropped counts them), C still reaches B, dom2.sn1 lists the invocation on B's pipe;
# `service list` shows it applied; a service the SN does not offer is refused with its reason
# and rolled back; the set survives an ied restart (sent again on the new association);
# disable lifts it; direction out blocks B's own traffic to C only; bad input is refused.
source "$(dirname "$0")/lib.sh"
ie_init "$@"
source "$(dirname "$0")/ied_lib.sh"

topo_up --host-c
ied_start B static
ied_start C static
ied_start A static

svc() {  # H ARGS...: iectl service ARGS on host H (human output)
  local h="$1"
  shift
  in_ns "h$h" "$IECTL" --socket "$IE_WORK/ied-$h.sock" service "$@"
}
block_dropped() { sn_counter dom2.sn1 "j['module_counters'].get('block.dropped', 0)"; }
b_pipe_invoked() {  # what dom2.sn1 applies to B's pipe, one line
  sn_json dom2.sn1 pipes | jget - "';'.join(sum([p['invocations'] for p in j['pipes'] if '10.2.0.2' in p['addrs']], []))"
}
b_blocks_a() { [ "$(b_pipe_invoked)" = "block in 10.1.0.0/24" ]; }
b_pipe_gone() { [ "$(sn_json dom2.sn1 pipes | jget - "len([p for p in j['pipes'] if '10.2.0.2' in p['addrs']])")" = 0 ]; }
pings() {  # FROM-H DST: 0 if 3 pings got an answer
  in_ns "h$1" ping -c 3 -i 0.2 -W 1 "$2" >/dev/null 2>&1
}

pings A 10.2.0.2
check "before: A reaches B" $? ""
pings C 10.2.0.2
check "before: C reaches B" $? ""

# --- B blocks what comes from A's /24 ---
svc B enable block --direction in --prefix 10.1.0.7/24 >"$IE_WORK/enable.out" 2>&1
check "iectl service enable block (acknowledged by dom2.sn1)" $? "$(cat "$IE_WORK/enable.out")"
grep -q "dom2.sn1 applies" "$IE_WORK/enable.out" && grep -q "10.1.0.0/24" "$IE_WORK/enable.out"
check "enable prints what the SN applies (canonical prefix)" $? "$(cat "$IE_WORK/enable.out")"
expect_eq "dom2.sn1 lists the invocation on B's pipe" "$(b_pipe_invoked)" "block in 10.1.0.0/24"
list="$(iectl_json B service list)"
expect_eq "service list: one invocation" "$(echo "$list" | jget - "len(j['invocations'])")" 1
expect_eq "service list: the active SN applied it" \
  "$(echo "$list" | jget - "[s['state'] for s in j['sns'] if s['active']][0]")" applied

d0="$(block_dropped)"
pings A 10.2.0.2
expect_eq "A's pings to B are blocked" "$?" 1
in_ns hA curl -sS --max-time 3 -o /dev/null http://10.2.0.2:9/ >/dev/null 2>&1
expect_gt "A's TCP connection to B is blocked too" "$?" 0
expect_gt "dom2.sn1 dropped them (block.dropped)" "$(block_dropped)" "$d0"
pings C 10.2.0.2
check "C (not in the prefix) still reaches B" $? ""
pings B 10.3.0.2
check "B's own traffic out is untouched (B -> C)" $? ""

# --- a service the SN does not offer: refused with the SN's reason, rolled back ---
svc B enable qos --direction in --prefix 10.0.0.0/8 >"$IE_WORK/refused.out" 2>&1
expect_eq "enabling a service the SN does not offer fails" "$?" 1
grep -q "not offered for out-of-band use by dom2.sn1" "$IE_WORK/refused.out"
check "... naming the SN's reason" $? "$(cat "$IE_WORK/refused.out")"
expect_eq "... and ied rolled it back (one invocation left)" \
  "$(iectl_json B service list | jget - "len(j['invocations'])")" 1
expect_eq "dom2.sn1 still applies the block alone" "$(b_pipe_invoked)" "block in 10.1.0.0/24"

# --- bad input: clear errors, nothing changes ---
svc B enable block --direction sideways --prefix 10.1.0.0/24 >"$IE_WORK/bad1.out" 2>&1
expect_gt "a bad direction is refused" "$?" 0
svc B enable block --prefix not-a-prefix >"$IE_WORK/bad2.out" 2>&1
expect_gt "a bad prefix is refused" "$?" 0
svc B disable block --direction in --prefix 10.9.0.0/24 >"$IE_WORK/bad3.out" 2>&1
expect_eq "disabling what is not enabled fails" "$?" 1
expect_eq "nothing changed" "$(iectl_json B service list | jget - "len(j['invocations'])")" 1

# --- the set survives an ied restart: sent again on the new association ---
stop ied-B || true
wait_for 5 "B's pipe gone from dom2.sn1 with ied" b_pipe_gone
ied_start B static
wait_for 10 "dom2.sn1 applies B's block again" b_blocks_a
expect_eq "after the restart dom2.sn1 applies B's block again" "$(b_pipe_invoked)" "block in 10.1.0.0/24"
pings A 10.2.0.2
expect_eq "A is still blocked after B's restart" "$?" 1

# --- disable lifts it ---
svc B disable block --direction in --prefix 10.1.0.0/24 >"$IE_WORK/disable.out" 2>&1
check "iectl service disable" $? "$(cat "$IE_WORK/disable.out")"
expect_eq "dom2.sn1 applies nothing to B" "$(b_pipe_invoked)" ""
wait_for 10 "A reaches B again" in_ns hA ping -c 1 -W 1 10.2.0.2

# --- direction out: B blocks its own traffic to C's /24 ---
svc B enable block --direction out --prefix 10.3.0.0/24 >"$IE_WORK/out.out" 2>&1
check "enable block out" $? "$(cat "$IE_WORK/out.out")"
pings B 10.3.0.2
expect_eq "B -> C blocked (out)" "$?" 1
pings B 10.1.0.2
check "B -> A still fine" $? ""
svc B disable --all >"$IE_WORK/all.out" 2>&1
check "disable --all" $? "$(cat "$IE_WORK/all.out")"
wait_for 10 "B reaches C again" in_ns hB ping -c 1 -W 1 10.3.0.2

ie_finish
