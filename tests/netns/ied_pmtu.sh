#!/usr/bin/env bash
# ied path MTU: a router's smaller MTU reaches the inner TCP sender as ICMP "fragmentation
# needed" written by ied into ie0 (issue 4, docs/ied.md "Path MTU"); part b: the same router
# as a PMTU black hole (its ICMP errors never reach A), found by ied's padded PROBEs.
#   Host A reaches its SN (dom1.sn1) through a router namespace rt:
#     hA eth5 172.16.51.2 -- 172.16.51.1 rt 172.16.52.1 -- 172.16.52.2 eth5 dom1.sn1
#   B (behind dom2.sn1) downloads an 8 MiB file from a python3 http.server on A at 2 MiB/s.
#   One second in, the rt <-> dom1.sn1 link drops to MTU 1280: rt answers A's full-size
#   datagrams with ICMP frag-needed, A's kernel keeps the smaller path MTU, ied reads it and
#   answers A's next full-size TCP segments with frag-needed carrying the inner MTU that
#   fits. Checks: the file arrives intact; ied counted PTBs and shows the path MTU 1280 to
#   the SN; A's kernel lowered its path MTU to B (ip route get) to what fits; and from a
#   second after the drop on, A's kernel no longer has to fragment ied's datagrams (without
#   the PTBs every full-size segment would go out as two outer fragments).
source "$(dirname "$0")/lib.sh"
ie_init "$@"
source "$(dirname "$0")/ied_lib.sh"

topo_up
ns_add rt
link_add hA eth5 172.16.51.2/24 rt r-a 172.16.51.1/24
link_add rt r-s 172.16.52.1/24 d1s1 eth5 172.16.52.2/24
in_ns rt sysctl -qw net.ipv4.ip_forward=1
in_ns hA ip route add 172.16.52.0/24 via 172.16.51.1
in_ns d1s1 ip route add 172.16.51.0/24 via 172.16.52.1
# A is served by dom1.sn1 at its address behind the router (B's [[peer]] for A names it too).
IE_HOST_SN[A]=dom1.sn1
IE_HOST_GW[A]=172.16.52.2
# A first: B's [[peer]] for A then carries A's key, so B can open the session (A answers).
ied_start A static
ied_start B static
SN_HOP="172.16.52.2:$IE_PORT"

mkdir -p "$IE_WORK/www"
head -c $((8 * 1024 * 1024)) /dev/urandom >"$IE_WORK/www/blob.bin"
want="$(sha256sum "$IE_WORK/www/blob.bin" | cut -d' ' -f1)"
spawn http-A hA python3 -m http.server 8080 --bind 10.1.0.2 --directory "$IE_WORK/www"
wait_for 10 "http.server on A, reached from B" \
  in_ns hB curl -sf --max-time 2 -o /dev/null http://10.1.0.2:8080/

frag_creates() {  # A's kernel: IP fragments created (ied's outer datagrams cut to the path)
  # shellcheck disable=SC2016  # an awk program
  in_ns hA awk '/^Ip:/ { if (!h) { for (i = 1; i <= NF; i++) c[$i] = i; h = 1 } else print $c["FragCreates"] }' /proc/net/snmp
}
# A small receive buffer on B, so curl's rate limit paces the sender (else the whole file
# sits in B's socket buffer within a second).
in_ns hB sysctl -qw net.ipv4.tcp_rmem="4096 65536 131072"
spawn curl-B hB curl -sS --max-time 20 --limit-rate 2M -o "$IE_WORK/got.bin" \
  http://10.1.0.2:8080/blob.bin
sleep 1
log "lowering the rt <-> dom1.sn1 link to MTU 1280"
in_ns rt ip link set r-s mtu 1280
in_ns d1s1 ip link set eth5 mtu 1280
ptb_sent_A() { iectl_json A status | jget - "j['counters']['ptb_sent']"; }
ptb_seen() { [ "$(ptb_sent_A)" -gt 0 ]; }
# ied re-reads a hop's path MTU at most every 500 ms while it sends there: PTBs follow soon.
wait_for 3 "ied A's first PTB after the drop" ptb_seen
sleep 0.5  # senders take the PTB and resegment what is in flight
log "A: ip route get 172.16.52.2: $(in_ns hA ip route get 172.16.52.2 | tr '\n' ' ')"
frags_mid="$(frag_creates)"
wait_exit curl-B 25
check "curl B <- A completes across the MTU drop" $? "$(tail -c 300 "$IE_WORK/curl-B.err")"
got="$(sha256sum "$IE_WORK/got.bin" 2>/dev/null | cut -d' ' -f1)"
expect_eq "the file arrives intact (sha256)" "$got" "$want"
frags_end="$(frag_creates)"

st="$(iectl_json A status)"
log "A's counters: $(echo "$st" | jget - "{k: v for k, v in j['counters'].items() if 'ptb' in k or 'pmtu' in k}")"
expect_gt "ied A wrote PTBs into ie0 (counters.ptb_sent)" "$(echo "$st" | jget - "j['counters']['ptb_sent']")" 0
expect_eq "iectl status: path MTU to the SN" \
  "$(echo "$st" | jget - "[h['mtu'] for h in j['path_mtu'] if h['next_hop']=='$SN_HOP'][0]")" 1280
expect_ge "iectl status: path MTU drops to the SN" \
  "$(echo "$st" | jget - "[h['drops'] for h in j['path_mtu'] if h['next_hop']=='$SN_HOP'][0]")" 1
# A's kernel took the PTB: its path MTU to B (a route exception on ie0) is what fits a
# 1280-byte outer datagram (ILP over IPv4 and e2e cost about 160 bytes), below ie0's MTU.
route="$(in_ns hA ip route get 10.2.0.2)"
pmtu="$(echo "$route" | sed -n 's/.* mtu \([0-9]*\).*/\1/p')"
tun_mtu="$(echo "$st" | jget - "j['tun']['mtu']")"
log "A: ip route get 10.2.0.2: $(echo "$route" | tr '\n' ' '); ie0 mtu $tun_mtu"
expect_le "A's kernel path MTU to B after the PTBs" "${pmtu:-99999}" 1120
expect_ge "... and no lower than the path needs" "${pmtu:-0}" 1000
expect_gt "ie0's own MTU stays" "$tun_mtu" 1200
log "A's kernel created $((frags_mid)) outer fragments by a second after the drop, $((frags_end - frags_mid)) after"
expect_le "no outer fragmentation once the sender adapted" "$((frags_end - frags_mid))" 100

# Part b: a PMTU black hole (docs/ied.md "Path MTU", step 6). rt keeps the 1280-byte link
# but its ICMP errors towards A go nowhere: locally generated packets to A's network are
# routed into a blackhole route (`iif lo` matches only what rt itself sends; A's traffic
# it forwards takes the main table). A's kernel forgets the 1280 it learned and can never
# learn it again: every datagram above 1280 bytes with DF is lost without a word. ied's
# padded PROBEs must find the limit; its PTBs then teach the TCP sender on A, and the
# download must arrive intact (without the probing: 0 bytes of 16 MiB in 60 s). A ping
# without DF over the limit is cut into fragments by ied.
log "part b: rt stops sending ICMP errors to A; A's kernel forgets the path MTU"
in_ns rt ip route add blackhole default table 100
in_ns rt ip rule add iif lo to 172.16.51.0/24 lookup 100 priority 100
in_ns hA ip route flush cache
in_ns hA ping -q -M do -s 1372 -c 2 -W 1 172.16.52.2 >"$IE_WORK/ping-df.out" 2>&1
ping_rc=$?
log "A: ping -M do -s 1372 dom1.sn1: $(tr '\n' ' ' <"$IE_WORK/ping-df.out")"
expect_eq "a black hole: a 1400-byte DF ping to the SN gets no answer (ping exit 1)" "$ping_rc" 1
route="$(in_ns hA ip route get 172.16.52.2)"
case "$route" in *" mtu "*) black=1 ;; *) black=0 ;; esac
expect_eq "... and A's kernel learned no path MTU from it: $(echo "$route" | tr '\n' ' ')" "$black" 0
hop_json() {  # FIELD: the path_mtu entry of the SN hop in A's status
  iectl_json A status | jget - "[h['$1'] for h in j['path_mtu'] if h['next_hop']=='$SN_HOP'][0]"
}
st="$(iectl_json A status)"
ptb_before="$(echo "$st" | jget - "j['counters']['ptb_sent']")"
holes_before="$(echo "$st" | jget - "j['counters']['pmtu_black_holes']")"
expect_eq "no black hole known before" "$(hop_json black_hole_mtu)" null
expect_eq "... nor any probing under way" "$(hop_json probing)" confirmed

head -c $((16 * 1024 * 1024)) /dev/urandom >"$IE_WORK/www/blob2.bin"
want="$(sha256sum "$IE_WORK/www/blob2.bin" | cut -d' ' -f1)"
t0=$(date +%s.%N)
spawn curl2-B hB curl -sS --max-time 60 --limit-rate 2M -o "$IE_WORK/got2.bin" \
  http://10.1.0.2:8080/blob2.bin
# Three lost confirmations of a 1472-byte datagram (a second each), then a few rounds of
# probes a second each.
black_hole_known() { [ "$(hop_json black_hole_mtu)" != null ]; }
wait_for 15 "ied A finds the black hole (status path_mtu black_hole_mtu)" black_hole_known
found=$(date +%s.%N)
log "A: path_mtu $(iectl_json A status | jget - "j['path_mtu']")"
log "black hole found $(awk "BEGIN { print $found - $t0 }") s after the download started"
bh="$(hop_json black_hole_mtu)"
expect_le "the limit found is no more than the path carries" "$bh" 1280
expect_ge "... and within 8 bytes of it" "$bh" 1272
expect_eq "the MTU in use is the limit" "$(hop_json usable_mtu)" "$bh"
expect_eq "... while the kernel's path MTU to the SN is 1500 again" "$(hop_json mtu)" 1500
wait_exit curl2-B 65
check "curl B <- A completes through the black hole" $? "$(tail -c 300 "$IE_WORK/curl2-B.err")"
got="$(sha256sum "$IE_WORK/got2.bin" 2>/dev/null | cut -d' ' -f1)"
expect_eq "the 16 MiB file arrives intact (sha256)" "$got" "$want"
log "download took $(awk "BEGIN { print $(date +%s.%N) - $t0 }") s"
st="$(iectl_json A status)"
log "A's counters: $(echo "$st" | jget - "{k: v for k, v in j['counters'].items() if 'ptb' in k or 'pmtu' in k}")"
expect_eq "one black hole counted" \
  "$(echo "$st" | jget - "j['counters']['pmtu_black_holes']")" "$((holes_before + 1))"
expect_gt "ied A wrote PTBs for the limit it found" \
  "$(echo "$st" | jget - "j['counters']['ptb_sent']")" "$ptb_before"
route="$(in_ns hA ip route get 10.2.0.2)"
pmtu="$(echo "$route" | sed -n 's/.* mtu \([0-9]*\).*/\1/p')"
log "A: ip route get 10.2.0.2: $(echo "$route" | tr '\n' ' ')"
expect_le "A's kernel path MTU to B comes from ied's PTBs (no ICMP reached A)" "${pmtu:-99999}" 1120
in_ns hA ping -q -M do -s 1000 -c 3 -W 2 10.2.0.2 >/dev/null 2>&1
check "a ping that fits the limit crosses the black hole" $? ""
# A packet without DF over the limit: A's kernel forgets its path MTU to B (so it sends the
# 1228-byte echo whole into ie0), ied cuts it into fragments that fit (the kernel would have
# sent the outer datagram whole with DF, into the black hole), B's kernel reassembles it.
in_ns hA ip route flush cache
frag_before="$(iectl_json A status | jget - "j['counters']['pmtu_inner_fragmented']")"
in_ns hA ping -q -M dont -s 1200 -c 3 -W 2 10.2.0.2 >"$IE_WORK/ping-nodf.out" 2>&1
check "a 1228-byte ping without DF crosses the black hole" $? \
  "$(tr '\n' ' ' <"$IE_WORK/ping-nodf.out")"
expect_ge "... cut by ied (counters.pmtu_inner_fragmented)" \
  "$(iectl_json A status | jget - "j['counters']['pmtu_inner_fragmented']")" "$((frag_before + 3))"
ie_finish
