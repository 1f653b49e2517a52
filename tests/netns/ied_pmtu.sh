#!/usr/bin/env bash
# ied path MTU: a router's smaller MTU reaches the inner TCP sender as ICMP "fragmentation
# needed" written by ied into ie0 (issue 4, docs/ied.md "Path MTU").
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
ie_finish
