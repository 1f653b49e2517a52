#!/usr/bin/env bash
# Several IESPs at once and the per-flow first-hop policy (issue 4; docs/discovery.md
# "Several IESPs").
#   Host A has two links: eth0 to dom1.sn2 (IESP "one", the default) and eth1 to dom2.sn1
#   (IESP "two"). [[policy]] sends B's /24 (10.2.0.0/24, behind dom2.sn1) through IESP two;
#   everything else (C, 10.3.0.2 behind dom1.sn1) takes the default IESP one. A third IESP
#   "three" has one SN nobody answers at (an unused address on eth1, with dom1.sn1's key:
#   HostLink tells SNs apart by key); a policy sends 10.9.0.0/24 there.
# Checks: A holds an active SN in both IESPs at once (iectl sn list / status); pings to B go
# out through dom2.sn1 and pings to C through dom1.sn2 (A's host pipe counters on each iesn,
# iectl flows naming IESP and SN); packets for IESP three are dropped and counted
# (iesp_no_sn); after a SIGHUP that moves B's /24 to IESP one, new packets to B go through
# dom1.sn2; a reload with two [[sn]] of one key is refused naming both; --check-config names
# an unknown IESP with its line and column. Then each IESP's SNs from DNS under a domain of
# its own (discovery.dns_domain for IESP one, an [[iesp]] table for two; a dnsmasq in A's
# namespace): A restarts with no [[sn]] at all, finds dom1.sn2 under one.test and dom2.sn1
# under two.test, each for its IESP, and the policy still sends B's pings through dom2.sn1
# and C's through dom1.sn2.
source "$(dirname "$0")/lib.sh"
ie_init "$@"
source "$(dirname "$0")/ied_lib.sh"

topo_up --host-c
# A's second link, to dom2.sn1 (the SN of another IESP).
ied_second_link d2s1 5
ied_start B static
ied_start C static

a_config() {  # POLICY_IESP_FOR_B
  {
    ied_two_link_head '"10.2.0.0/24", "10.3.0.0/24", "10.9.0.0/24"'
    echo 'iesp = "one"'
    ied_sn_toml dom2.sn1 172.16.5.1
    echo 'iesp = "two"'
    ied_sn_toml dom3.sn1 172.16.5.99 dom1.sn1
    echo 'iesp = "three"'
    printf '[discovery]\ndefault_iesp = "one"\n'
    printf '[[policy]]\nprefix = "10.2.0.0/24"\niesp = "%s"\n' "$1"
    printf '[[policy]]\nprefix = "10.9.0.0/24"\niesp = "three"\n'
    ied_peer_toml B
    ied_peer_toml C
    ied_peer_toml B 10.9.0.0/24
  } >"$IE_WORK/ied-A.toml"
}
a_config two
in_ns hA "$IED" --check-config "$IE_WORK/ied-A.toml" >/dev/null 2>&1
check "A's configuration passes --check-config" $? ""
spawn ied-A hA "$IED" --config "$IE_WORK/ied-A.toml" --log-level debug
wait_for 15 "ied A registered" ied_registered A

sn_state() {  # NAME: its state in A's sn list
  iectl_json A sn list | jget - "[s['state'] for s in j['sns'] if s['name']=='$1'][0]"
}
iesp_active() {  # IESP: its active SN in A's status
  iectl_json A status | jget - "[i['active'] or '' for i in j['iesps'] if i['name']=='$1'][0]"
}
both_active() { [ "$(iesp_active one)" = dom1.sn2 ] && [ "$(iesp_active two)" = dom2.sn1 ]; }
wait_for 15 "an active SN in both IESPs" both_active
expect_eq "dom1.sn2 active for IESP one" "$(sn_state dom1.sn2)" active
expect_eq "dom2.sn1 active for IESP two" "$(sn_state dom2.sn1)" active
expect_eq "sn list names dom2.sn1's IESP" \
  "$(iectl_json A sn list | jget - "[s['iesp'] for s in j['sns'] if s['name']=='dom2.sn1'][0]")" two
expect_eq "IESP three has no active SN" "$(iesp_active three)" ""
expect_eq "status: the default IESP" \
  "$(iectl_json A status | jget - "[i['name'] for i in j['iesps'] if i['default']][0]")" one
expect_eq "status: the default IESP's SN" \
  "$(iectl_json A status | jget - "j['sn']['name']")" dom1.sn2

# A's host pipe on an SN (its address on A's link): packets the SN received from A.
a_rx() {  # SN A_LINK_ADDRESS
  sn_json "$1" pipes |
    jget - "sum(p['rx_packets'] for p in j['pipes'] if p['kind']=='host' and p['address'].startswith('$2:'))"
}
one_rx() { a_rx dom1.sn2 172.16.1.2; }
two_rx() { a_rx dom2.sn1 172.16.5.2; }
ping_to() { in_ns hA ping -c "$2" -i 0.2 -W 2 "$1" >/dev/null 2>&1; }

# B's /24 through IESP two: the end-to-end handshake may take the first ping.
ping_to 10.2.0.2 2
one0="$(one_rx)"
two0="$(two_rx)"
ping_to 10.2.0.2 5
check "ping A -> B (policy: IESP two)" $? ""
one1="$(one_rx)"
two1="$(two_rx)"
expect_ge "dom2.sn1 carried A's pings to B" "$((two1 - two0))" 5
expect_le "dom1.sn2 did not carry them" "$((one1 - one0))" 1

# C's /24: no policy, the default IESP one.
ping_to 10.3.0.2 2
one0="$(one_rx)"
two0="$(two_rx)"
ping_to 10.3.0.2 5
check "ping A -> C (default IESP one)" $? ""
one1="$(one_rx)"
two1="$(two_rx)"
expect_ge "dom1.sn2 carried A's pings to C" "$((one1 - one0))" 5
expect_le "dom2.sn1 did not carry them" "$((two1 - two0))" 1

flow_of() {  # DST FIELD: FIELD of A's ICMP flow to DST
  iectl_json A flows | jget - "[f['$2'] or '' for f in j['flows'] if f['dst'].startswith('$1:')][0]"
}
expect_eq "iectl flows: IESP of the flow to B" "$(flow_of 10.2.0.2 iesp)" two
expect_eq "iectl flows: SN of the flow to B" "$(flow_of 10.2.0.2 sn)" dom2.sn1
expect_eq "iectl flows: IESP of the flow to C" "$(flow_of 10.3.0.2 iesp)" one
expect_eq "iectl flows: SN of the flow to C" "$(flow_of 10.3.0.2 sn)" dom1.sn2

# IESP three has no usable SN: its packets are dropped and counted, not sent elsewhere.
no_sn() { iectl_json A status | jget - "j['counters'].get('iesp_no_sn', 0)"; }
n0="$(no_sn)"
one0="$(one_rx)"
two0="$(two_rx)"
ping_to 10.9.0.1 3
n1="$(no_sn)"
expect_ge "packets for IESP three counted as iesp_no_sn" "$((n1 - n0))" 3
expect_le "none of them went through dom1.sn2 or dom2.sn1" \
  "$(($(one_rx) - one0 + $(two_rx) - two0))" 1
expect_eq "iectl flows: the flow to 10.9.0.1 names IESP three, no SN" \
  "$(flow_of 10.9.0.1 iesp)/$(flow_of 10.9.0.1 sn)" "three/"

# SIGHUP with B's /24 moved to IESP one: the next packets to B go through dom1.sn2.
a_config one
kill -HUP "${IE_PID[ied-A]}"
flow_one() { [ "$(flow_of 10.2.0.2 iesp)" = one ]; }
wait_for 5 "A to apply the new policy" flow_one
one0="$(one_rx)"
two0="$(two_rx)"
ping_to 10.2.0.2 5
check "ping A -> B after the reload" $? ""
expect_ge "dom1.sn2 carries A's pings to B now" "$(($(one_rx) - one0))" 5
expect_le "dom2.sn1 no longer does" "$(($(two_rx) - two0))" 1
expect_eq "IESP two keeps its association" "$(iesp_active two)" dom2.sn1

# Two [[sn]] with one key (HostLink tells SNs apart by key): a reload is refused, naming both
# entries with FILE:LINE:COL, and the running configuration stays.
cp "$IE_WORK/ied-A.toml" "$IE_WORK/ied-A.good"
ied_sn_toml dom4.sn1 172.16.5.98 dom1.sn2 >>"$IE_WORK/ied-A.toml"
out="$(in_ns hA "$IECTL" --socket "$IE_WORK/ied-A.sock" reload 2>&1)"
expect_eq "iectl reload refuses two SNs with one key (exit status)" "$?" 1
echo "$out" | grep -q "ied-A.toml:[0-9]*:[0-9]*: sn.key of \"dom4.sn1\" is also the key of \"dom1.sn2\" (.*ied-A.toml:[0-9]*:[0-9]*)"
check "the reload error names both entries and their places" $? "$out"
expect_eq "dom1.sn2 still active for IESP one after the refused reload" "$(iesp_active one)" dom1.sn2
mv "$IE_WORK/ied-A.good" "$IE_WORK/ied-A.toml"

# A policy naming an IESP no SN serves: refused with FILE:LINE:COL.
cp "$IE_WORK/ied-A.toml" "$IE_WORK/bad.toml"
printf '[[policy]]\nservice = "ip-uncached"\niesp = "four"\n' >>"$IE_WORK/bad.toml"
out="$(in_ns hA "$IED" --check-config "$IE_WORK/bad.toml" 2>&1)"
rc=$?
expect_eq "--check-config refuses an unknown IESP (exit status)" "$rc" 1
echo "$out" | grep -q "bad.toml:[0-9]*:[0-9]*: .*iesp \"four\" is unknown"
check "the error names the place and the IESP" $? "$out"

# Each IESP's SNs from DNS, under a domain of its own.
log "A restarts with its SNs from DNS: IESP one under one.test, IESP two under two.test"
dns_serve A 30 "sn,dom1.sn2,${IE_HOST_GW[A]},10,100,,one.test" \
  "sn,dom2.sn1,172.16.5.1,10,100,,two.test"
stop ied-A
{
  ied_two_link_head '"10.2.0.0/24", "10.3.0.0/24"' | sed '/^\[\[sn\]\]/,$d'
  printf '[discovery]\ndns_domain = "one.test"\niesp = "one"\ndefault_iesp = "one"\n'
  printf 'dns_servers = ["127.0.0.1:5353"]\n'
  printf '[[iesp]]\nname = "two"\ndns_domain = "two.test"\n'
  printf '[[policy]]\nprefix = "10.2.0.0/24"\niesp = "two"\n'
  ied_peer_toml B
  ied_peer_toml C
} >"$IE_WORK/ied-A.toml"
grep -q '^\[\[sn\]\]' "$IE_WORK/ied-A.toml"
expect_eq "A's configuration has no [[sn]]" "$?" 1
in_ns hA "$IED" --check-config "$IE_WORK/ied-A.toml" >/dev/null 2>&1
check "the configuration with [[iesp]] passes --check-config" $? ""
spawn ied-A hA "$IED" --config "$IE_WORK/ied-A.toml" --log-level debug
wait_for 15 "an active SN in both IESPs, from DNS" both_active
sn_field() {  # NAME FIELD
  iectl_json A sn list | jget - "[s['$2'] for s in j['sns'] if s['name']=='$1'][0]"
}
expect_eq "dom1.sn2: from DNS, IESP one" "$(sn_field dom1.sn2 source)/$(sn_field dom1.sn2 iesp)" \
  dns/one
expect_eq "dom2.sn1: from DNS, IESP two" "$(sn_field dom2.sn1 source)/$(sn_field dom2.sn1 iesp)" \
  dns/two
expect_eq "status: both DNS discoveries, no error" \
  "$(iectl_json A status | jget - "[(d['iesp'], d['domain'], d['error']) for d in j['discovery']['dns_iesps']]")" \
  '[["one", "one.test", null], ["two", "two.test", null]]'
ping_to 10.2.0.2 2
two0="$(two_rx)"
one0="$(one_rx)"
ping_to 10.2.0.2 5
check "ping A -> B (IESP two, found under two.test)" $? ""
expect_ge "dom2.sn1 carried A's pings to B" "$(($(two_rx) - two0))" 5
expect_le "dom1.sn2 did not carry them" "$(($(one_rx) - one0))" 1
ping_to 10.3.0.2 2
one0="$(one_rx)"
ping_to 10.3.0.2 5
check "ping A -> C (IESP one, found under one.test)" $? ""
expect_ge "dom1.sn2 carried A's pings to C" "$(($(one_rx) - one0))" 5
ie_finish
