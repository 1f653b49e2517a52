#!/usr/bin/env bash
# ied end to end (issue 4): two real ied hosts in two edomains, through three real iesn.
#   B: static configuration (SN dom2.sn1). A: SN and B's peer record from a real dnsmasq
#   (SRV _interedge._udp.dom1.test + TXT key; reverse TXT for 10.2.0.2).
# Checks: ping, curl of a page from python3's http.server on B, an iperf3 TCP run, a UDP
# exchange; the packets went A -> dom1.sn2 -> dom1.sn1 -> dom2.sn1 -> B (SN counters); no
# plaintext on A's link (tcpdump capture searched for the page's marker); iectl status,
# sn list, peers and flows; kill -9 of ied leaves no TUN or route behind, and a restart works;
# name resolution (iectl resolve, ie_resolve) of B's address, a name for it and a stranger.
source "$(dirname "$0")/lib.sh"
ie_init "$@"
source "$(dirname "$0")/ied_lib.sh"

topo_up
ied_start B static
dns_start A
ied_start A dns

# --- what iectl shows ---
sn_name="$(iectl_json A sn list | jget - "j['sns'][0]['name']")"
expect_eq "A found its SN in DNS" "$sn_name" "dom1.sn2"
expect_eq "A's SN came from DNS" "$(iectl_json A sn list | jget - "j['sns'][0]['source']")" "dns"
expect_eq "A's SN is active" "$(iectl_json A sn list | jget - "j['sns'][0]['state']")" "active"

# --- ping across two edomains ---
in_ns hA ping -c 3 -i 0.2 -W 2 10.2.0.2 >"$IE_WORK/ping.out" 2>&1
check "ping A -> B across two edomains" $? "$(tail -2 "$IE_WORK/ping.out" | head -1)"

# --- curl from a real web server on B; capture A's link meanwhile ---
marker="interedge-plaintext-marker-$RANDOM$RANDOM"
mkdir -p "$IE_WORK/www"
for _ in $(seq 2000); do echo "$marker"; done >"$IE_WORK/www/index.html"
spawn http hB python3 -m http.server 8080 --bind 10.2.0.2 --directory "$IE_WORK/www"
wait_for 10 "http.server on B" in_ns hB python3 -c 'import socket; socket.create_connection(("10.2.0.2", 8080), 1)'
capture_start hA hA eth0 udp
in_ns hA curl -sS --max-time 10 -o "$IE_WORK/curl.out" http://10.2.0.2:8080/index.html
check "curl A -> B's http.server" $? "exit status"
expect_eq "the page arrived whole" "$(grep -c "$marker" "$IE_WORK/curl.out" 2>/dev/null)" 2000
capture_stop hA 50  # the 80 KB page is at least 50 full-size datagrams
pcap_bytes="$(stat -c %s "$IE_WORK/hA.pcap" 2>/dev/null || echo 0)"
expect_gt "A's link capture holds the transfer" "$pcap_bytes" 70000
if grep -a -q "$marker" "$IE_WORK/hA.pcap"; then found=1; else found=0; fi
expect_eq "no plaintext on A's link" "$found" 0

# --- iperf3 TCP, 3 s ---
spawn iperf3-B hB iperf3 -s -B 10.2.0.2 -1
sleep 0.5
in_ns hA iperf3 -c 10.2.0.2 -t 3 -J >"$IE_WORK/iperf3.json" 2>"$IE_WORK/iperf3.err"
check "iperf3 A -> B" $? "exit status"
bps="$(jget "$IE_WORK/iperf3.json" "int(j['end']['sum_received']['bits_per_second'])" 2>/dev/null || echo 0)"
log "iperf3 A -> B through three SNs: $((bps / 1000000)) Mbit/s"
expect_gt "iperf3 moved data" "$bps" 1000000

# --- UDP both ways ---
in_ns hB python3 -c '
import socket,sys
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(("10.2.0.2",9999)); s.settimeout(8)
d,a=s.recvfrom(2000); s.sendto(d[::-1],a)' &
udp_srv=$!
sleep 0.3
got="$(in_ns hA python3 -c '
import socket
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(3)
for i in range(5):
    s.sendto(b"hello-udp",("10.2.0.2",9999))
    try:
        print(s.recv(2000).decode()); break
    except socket.timeout: pass')"
wait "$udp_srv" 2>/dev/null
expect_eq "UDP echo A -> B -> A" "$got" "pdu-olleh"

# --- where the packets went ---
rx_d2="$(sn_json dom2.sn1 pipes | jget - "sum(p['rx_packets'] for p in j['pipes'] if p['kind']=='sn')")"
expect_gt "dom2.sn1 received the traffic over its SN pipe" "$rx_d2" 1000
flows="$(iectl_json A flows | jget - "len([f for f in j['flows'] if f['dst'].startswith('10.2.0.2:')])")"
expect_gt "iectl flows lists A's flows to B" "$flows" 1
peer_state="$(iectl_json A peers | jget - "[p['state'] for p in j['peers'] if p['address']=='10.2.0.2'][0]")"
expect_eq "A has an end-to-end session with B" "$peer_state" "established"
log "A status: $(iectl_json A status | jget - "j['counters']")"
# Liveness: A's Node PROBEs dom1.sn2 whenever it sent nothing (or got nothing back) for a
# second; the SN answers each at once, and the answers' round trip is the RTT A shows.
rtt_us="$(iectl_json A sn list | jget - "next((int(s['rtt_ms'] * 1000) for s in j['sns'] if s['name'] == 'dom1.sn2' and s['rtt_ms'] is not None), -1)")"
expect_gt "A measured dom1.sn2's RTT from answered PROBEs (us)" "$rtt_us" 0
expect_gt "dom1.sn2 answered A's PROBEs" "$(sn_counter dom1.sn2 "j['association']['probes_answered']")" 0

# --- kill -9 leaves nothing behind; restart cleans up and works ---
kill -9 "${IE_PID[ied-A]}"
wait "${IE_PID[ied-A]}" 2>/dev/null
sleep 0.3
if in_ns hA ip link show ie0 >/dev/null 2>&1; then left=1; else left=0; fi
expect_eq "no ie0 after kill -9" "$left" 0
expect_eq "no ied routes after kill -9" "$(in_ns hA ip route show proto 73 | wc -l)" 0
spawn "ied-A" hA "$IED" --config "$IE_WORK/ied-A.toml" --log-level debug
wait_for 15 "ied A back" ied_registered A
in_ns hA ping -c 2 -i 0.2 -W 3 10.2.0.2 >/dev/null 2>&1 || in_ns hA ping -c 2 -i 0.5 -W 3 10.2.0.2 >/dev/null 2>&1
check "ping works after the restart" $? ""
expect_eq "the identity survived the restart" "$(iectl_json A status | jget - "j['identity']")" "${IED_KEY[A]}"

# --- name resolution (issue 5): iectl resolve and ie_resolve() on A ---
# B (10.2.0.2): an InterEdge host behind dom2.sn1, by its DNS peer record (A has no static
# peers). A name through a hosts entry in A's namespace (`ip netns exec` bind-mounts
# /etc/netns/NS/hosts over /etc/hosts), through the C API (the example's --resolve mode) and
# iectl. An address outside every record: ied's DNS lookup answers NXDOMAIN, so "none".
[ -d /etc/netns ] && made_etc_netns=0 || made_etc_netns=1
ie_cleanup_hook() {
  rm -rf "/etc/netns/${IE_NS[hA]:?}"
  if [ "$made_etc_netns" = 1 ]; then rmdir /etc/netns 2>/dev/null || true; fi
}
mkdir -p "/etc/netns/${IE_NS[hA]}"
printf '127.0.0.1 localhost\n10.2.0.2 peer-b.test\n' >"/etc/netns/${IE_NS[hA]}/hosts"
res="$(iectl_json A resolve 10.2.0.2)"
expect_eq "iectl resolve 10.2.0.2: an InterEdge host" "$(echo "$res" | jget - "j['results'][0]['interedge']")" true
expect_eq "iectl resolve 10.2.0.2: behind dom2.sn1" "$(echo "$res" | jget - "j['results'][0]['sns']")" '["dom2.sn1"]'
expect_eq "iectl resolve 10.2.0.2: from DNS" "$(echo "$res" | jget - "j['results'][0]['source']")" dns
res="$(iectl_json A resolve peer-b.test)"
expect_eq "iectl resolve peer-b.test (hosts entry): 10.2.0.2, dns" "$(echo "$res" | jget - "[(r['address'], r['source']) for r in j['results']]")" '[["10.2.0.2", "dns"]]'
ex_out="$(in_ns hA env IE_SOCKET="$IE_WORK/ied-A.sock" "$(dirname "$IED")/ie_steer_example" --resolve peer-b.test 2>&1)"
expect_eq "ie_resolve(\"peer-b.test\") through the C API" "$ex_out" "10.2.0.2 interedge=yes sns=dom2.sn1 source=dns"
res="$(iectl_json A resolve 10.9.0.9)"
expect_eq "iectl resolve 10.9.0.9: not InterEdge, no source" "$(echo "$res" | jget - "[(r['interedge'], r['sns'], r['source'], r['pending']) for r in j['results']]")" '[[false, [], "none", false]]'

# --- clean stop ---
stop ied-A
check "ied A exits 0 on SIGTERM" $? ""
if in_ns hA ip link show ie0 >/dev/null 2>&1; then left=1; else left=0; fi
expect_eq "no ie0 after SIGTERM" "$left" 0
[ -e "$IE_WORK/ied-A.sock" ] && sock=1 || sock=0
expect_eq "control socket removed" "$sock" 0
ie_finish
