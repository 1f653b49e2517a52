#!/usr/bin/env bash
# ied SN discovery through a real dnsmasq (issue 4): SRV priority/weight, TTL expiry, key pins.
#   Host A has a link to each SN: eth0 -> dom1.sn2 (172.16.1.1), eth1 -> dom1.sn1 (172.16.4.1),
#   eth2 -> dom2.sn1 (172.16.5.1), and finds them only in DNS (SRV _interedge._udp.dom1.test,
#   TXT key records, A records) served by a dnsmasq in its namespace with local-ttl=2. B runs
#   from static configuration behind dom2.sn1. Three parts:
# 1. Priority/weight: dom1.sn2 (prio 10, weight 65535), dom1.sn1 (prio 10, weight 0), dom2.sn1
#    (prio 20). RFC 2782 puts a weight-0 record first only when the draw in [0, 65535] is 0
#    (p = 1/65536), so dom1.sn2 is active, dom1.sn1 the warm standby, dom2.sn1 a candidate
#    with no association; all three keys are pinned in the state database. ied re-resolves as
#    the 2 s TTL runs out (SRV queries counted in dnsmasq's log) without switching SN.
#    dom1.sn2's iesn SIGKILLed: A goes to dom1.sn1 (ping works); restarted: A returns.
# 2. TTL expiry: dnsmasq restarted with dom1.sn1 at priority 10 and dom1.sn2 at 20 while A
#    pings B every 0.1 s: A switches to dom1.sn1 within TTL + ied's 5 s retry after a failed
#    query + 2 s, exactly one failover is counted, dom1.sn2 stays associated as the standby,
#    at most 3 pings are lost, B follows A to dom1.sn1 (source_sn).
# 3. Key pin: dom1.sn2 restarted with a new key (dom1.sn1 reconfigured with it), then DNS
#    publishes the new key: ied refuses it (sn list: failed, the error names the pin and
#    --repin), dom1.sn2's iesn sees no host association, the pin is still the old key, the
#    standby slot goes to dom2.sn1, traffic keeps using dom1.sn1 (no failover, <= 3 pings lost)
#    and `iectl sn use dom1.sn2` is refused. `iectl sn use dom1.sn2 --repin` stores the new
#    key; A associates with dom1.sn2 and makes it active, ping
#    goes through it, and it stays accepted after the next TTL refresh.
source "$(dirname "$0")/lib.sh"
ie_init "$@"
source "$(dirname "$0")/ied_lib.sh"

TTL=2
topo_up
link_add hA eth1 172.16.4.2/24 d1s1 hA2 172.16.4.1/24
link_add hA eth2 172.16.5.2/24 d2s1 hA3 172.16.5.1/24
ied_start B static

# ---- helpers (few python3 starts: they dominate the run time on a loaded machine) ----
# A snapshot of A's sn list, one line per SN: name state source priority weight associated
# key expires_in_s error (empty fields as -).
sn_snap() {
  iectl_json A sn list | python3 -c '
import json, sys
for s in json.load(sys.stdin)["sns"]:
    f = [s["name"], s["state"], s["source"], s["priority"], s["weight"], s["associated"],
         s["key"], s["expires_in_s"], s.get("error", "")]
    print("\t".join("-" if v in ("", None) else str(v).lower() if isinstance(v, bool) else str(v)
                    for v in f))' >"$IE_WORK/snap" 2>/dev/null
}
# Field N (2 state, 3 source, 4 priority, 5 weight, 6 associated, 7 key, 8 expires_in_s,
# 9 error) of SN NAME in the last snapshot.
snf() { awk -F'\t' -v n="$1" -v f="$2" '$1 == n {print $f}' "$IE_WORK/snap"; }
sn_get() {  # NAME FIELD: a fresh snapshot, then the field
  sn_snap
  snf "$1" "$2"
}
state_is() { [ "$(sn_get "$1" 2)" = "$2" ]; }
# The active SN's name once it is registered ('' before).
failovers() { iectl_json A status | jget - "j['counters']['failovers']"; }
srv_queries() { grep -c "query\[SRV\] _interedge._udp.dom1.test" "$IE_WORK/dnsmasq-A.err"; }
ping_lost() {  # NAME: transmitted - received from the summary of a spawned ping
  awk '/packets transmitted/ {print $1 - $4}' "$IE_WORK/$1.out"
}

# ---- 1. SRV priority and weight ----
dns_serve A "$TTL" "sn2,dom1.sn2,172.16.1.1,10,65535" "sn1,dom1.sn1,172.16.4.1,10,0" \
  "d2,dom2.sn1,172.16.5.1,20,100"
ied_start A dns
wait_for 15 "dom1.sn1 as warm standby" state_is dom1.sn1 standby
expect_eq "active SN: dom1.sn2 (priority 10, weight 65535)" "$(active_sn)" "dom1.sn2"
sn_snap
expect_eq "dom1.sn2: state source priority weight" \
  "$(snf dom1.sn2 2) $(snf dom1.sn2 3) $(snf dom1.sn2 4) $(snf dom1.sn2 5)" "active dns 10 65535"
expect_eq "standby: dom1.sn1 (priority 10, weight 0)" "$(snf dom1.sn1 2) $(snf dom1.sn1 5)" \
  "standby 0"
expect_eq "dom2.sn1 (priority 20): a candidate, not associated" \
  "$(snf dom2.sn1 2) $(snf dom2.sn1 6)" "candidate false"
expect_eq "sn list in RFC 2782 order" "$(cut -f1 "$IE_WORK/snap" | xargs)" \
  "dom1.sn2 dom1.sn1 dom2.sn1"
expect_le "expires_in_s <= TTL" "$(snf dom1.sn2 8)" "$TTL"
for sn in dom1.sn2 dom1.sn1 dom2.sn1; do
  expect_eq "$sn's key pinned on first use" "$(pin_of "$sn")" "${IE_SNKEY[$sn]}"
done
rx0="$(host_rx dom1.sn2)"
ping_ok
check "ping A -> B through dom1.sn2" $? ""
expect_ge "dom1.sn2 carried the pings" "$(($(host_rx dom1.sn2) - rx0))" 2

# TTL expiry with unchanged records: re-resolved, no switch.
q0="$(srv_queries)" f0="$(failovers)"
sleep 5
expect_ge "SRV re-queried as the TTL ran out (queries in 5 s)" "$(($(srv_queries) - q0))" 2
expect_eq "unchanged records: no failover" "$(failovers)" "$f0"
expect_eq "unchanged records: still dom1.sn2" "$(active_sn)" "dom1.sn2"

# Best-priority SN down.
log "killing dom1.sn2's iesn (SIGKILL)"
kill_ms="$(date +%s%3N)"
sn_kill9 dom1.sn2
alive dom1.sn2 && die "dom1.sn2 (pid ${IE_PID[dom1.sn2]}) survived SIGKILL"
wait_for 15 "A to move to dom1.sn1" active_is dom1.sn1
took=$(($(log_ms "$IE_WORK/ied-A.err" "first-hop SN: dom1.sn2 -> dom1.sn1") - kill_ms))
expect_le "moved to dom1.sn1 within dead_after + 2 s of the kill (ms)" "$took" 4000
expect_eq "dead dom1.sn2 kept as a candidate being retried" "$(sn_get dom1.sn2 2)" "connecting"
ping_ok
check "ping A -> B through dom1.sn1 with dom1.sn2 down" $? ""
log "restarting dom1.sn2's iesn"
sn_start dom1.sn2
wait_for 15 "dom1.sn2's SN pipe" sn_established dom1.sn2 1
wait_for 15 "A back on dom1.sn2" active_is dom1.sn2
wait_for 10 "dom1.sn1 standby again" state_is dom1.sn1 standby
expect_eq "failovers counted: away and back" "$(($(failovers) - f0))" 2

# ---- 2. changed records are followed when the TTL runs out ----
wait_for 10 "ping through dom1.sn2 again" ping_ok
f0="$(failovers)"
spawn ping-A hA ping -n -i 0.1 -c 100 -W 1 10.2.0.2
sleep 1
log "DNS now puts dom1.sn1 first (priority 10) and dom1.sn2 second (20)"
change_ms="$(date +%s%3N)"
dns_serve A "$TTL" "sn1,dom1.sn1,172.16.4.1,10,100" "sn2,dom1.sn2,172.16.1.1,20,100" \
  "d2,dom2.sn1,172.16.5.1,30,100"
wait_for 20 "A to follow DNS to dom1.sn1" active_is dom1.sn1
took=$(($(log_ms "$IE_WORK/ied-A.err" "first-hop SN: dom1.sn2 -> dom1.sn1") - change_ms))
log "switched $took ms after the records changed"
expect_le "switch within TTL + 5 s retry + 2 s (ms)" "$took" $(((TTL + 7) * 1000))
wait_exit ping-A 20
check "ping ran through the change" $? "exit status"
lost="$(ping_lost ping-A)"
expect_le "pings lost across the switch (of 100)" "${lost:-100}" 3
expect_eq "exactly one failover counted" "$(($(failovers) - f0))" 1
sn_snap
expect_eq "dom1.sn1 active at its new priority" "$(snf dom1.sn1 2) $(snf dom1.sn1 4)" "active 10"
expect_eq "old active dom1.sn2 kept as the standby" "$(snf dom1.sn2 2) $(snf dom1.sn2 4)" \
  "standby 20"
expect_eq "dom2.sn1 still a candidate" "$(snf dom2.sn1 2)" "candidate"
grep -q "peer 10.1.0.2 now behind SN dom1.sn1 (was dom1.sn2)" "$IE_WORK/ied-B.err"
check "B followed A to dom1.sn1 (source_sn)" $? "ied-B.err"

# ---- 3. a changed key is refused until re-pinned ----
old_key="${IE_SNKEY[dom1.sn2]}"
log "dom1.sn2 gets a new key (dom1.sn1 is reconfigured with it and restarted)"
stop dom1.sn2 || true
rm -f "$IE_WORK/dom1.sn2.key"
IE_SNKEY[dom1.sn2]="$("$IESN" genkey "$IE_WORK/dom1.sn2.key")" || die "iesn genkey"
new_key="${IE_SNKEY[dom1.sn2]}"
sn_config dom1.sn1
sn_config dom1.sn2
stop dom1.sn1 || true
sn_start dom1.sn1
sn_start dom1.sn2
wait_for 15 "dom1.sn1's SN pipes" sn_established dom1.sn1 2
wait_for 15 "dom1.sn2's SN pipe" sn_established dom1.sn2 1
wait_for 20 "A back on dom1.sn1" active_is dom1.sn1
wait_for 10 "ping through dom1.sn1 after its restart" ping_ok
expect_eq "A cannot associate with dom1.sn2 under the old key" "$(sn_get dom1.sn2 2)" \
  "connecting"

f0="$(failovers)"
spawn ping2-A hA ping -n -i 0.1 -c 80 -W 1 10.2.0.2
log "DNS publishes dom1.sn2's new key"
dns_serve A "$TTL" "sn1,dom1.sn1,172.16.4.1,10,100" "sn2,dom1.sn2,172.16.1.1,20,100,$new_key" \
  "d2,dom2.sn1,172.16.5.1,30,100"
wait_for $((TTL + 10)) "ied to refuse dom1.sn2's new key" state_is dom1.sn2 failed
err="$(snf dom1.sn2 9)"
case "$err" in *"pinned key"*"--repin"*) ok=0 ;; *) ok=1 ;; esac
check "the refusal names the pin and --repin" "$ok" "$err"
expect_eq "sn list shows the published (refused) key" "$(snf dom1.sn2 7)" "$new_key"
wait_for 10 "dom2.sn1 in the freed standby slot" state_is dom2.sn1 standby
sleep "$TTL"  # at least one more refresh with the same refused key
expect_eq "still refused after the next refresh" "$(sn_get dom1.sn2 2)" "failed"
expect_eq "no host associated at dom1.sn2" "$(host_pipes dom1.sn2)" 0
expect_eq "the pin is still the old key" "$(pin_of dom1.sn2)" "$old_key"
expect_eq "traffic stays on dom1.sn1" "$(active_sn)" "dom1.sn1"
wait_exit ping2-A 20
check "ping ran through the refusal" $? "exit status"
expect_le "pings lost while the key was refused (of 80)" "$(ping_lost ping2-A)" 3
expect_eq "the refusal caused no failover" "$(($(failovers) - f0))" 0
iectl_json A sn use dom1.sn2 >"$IE_WORK/use.out" 2>"$IE_WORK/use.err"
expect_eq "iectl sn use without --repin is refused (exit 1)" "$?" 1

log "re-pinning dom1.sn2"
# iectl sn use --repin: ok, or busy until the association under the new key is up (the new
# key is stored either way).
in_ns hA "$IECTL" --socket "$IE_WORK/ied-A.sock" sn use dom1.sn2 --repin >"$IE_WORK/repin.out" 2>&1
repin_rc=$?
log "iectl sn use dom1.sn2 --repin: $(cat "$IE_WORK/repin.out")"
[ "$repin_rc" -eq 0 ] || grep -q "(busy)" "$IE_WORK/repin.out"
check "iectl sn use --repin accepted" $? "rc $repin_rc: $(cat "$IE_WORK/repin.out")"
expect_eq "the pin is now the new key" "$(pin_of dom1.sn2)" "$new_key"
wait_for 15 "iectl sn use dom1.sn2 to succeed" iectl_json A sn use dom1.sn2
wait_for 10 "A on dom1.sn2" active_is dom1.sn2
sn_snap
expect_eq "dom1.sn2 active under its new key" "$(snf dom1.sn2 2) $(snf dom1.sn2 7)" \
  "active $new_key"
expect_eq "a host associated at dom1.sn2" "$(host_pipes dom1.sn2)" 1
rx0="$(host_rx dom1.sn2)"
ping_ok
check "ping A -> B through the re-pinned dom1.sn2" $? ""
expect_ge "dom1.sn2 carried the pings" "$(($(host_rx dom1.sn2) - rx0))" 2
sleep "$TTL"
expect_eq "accepted after the next refresh" "$(sn_get dom1.sn2 2)" "active"
ie_finish
