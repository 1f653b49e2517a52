#!/usr/bin/env bash
# ied direct host-to-host path with fallback to the SNs (issue 4).
#   Hosts A and B share a link (veth 172.16.9.0/24) besides their links to their SNs. A's
#   [[peer]] for B names B's ied endpoint on that link, so the two daemons associate
#   directly and exchange ILP without any SN. Checks: ping and iperf3 go direct (iectl flows
#   says direct; the SNs' host pipes see next to nothing of it); then, under a live iperf3
#   stream, the shared link is cut: traffic falls back to the SN path within 3 s, the TCP
#   stream survives (iperf3 exits 0), the SNs carry it; when the link returns, traffic goes
#   direct again. A's [[peer]] endpoint changed to a relay in B's namespace (no delay) and
#   reloaded: the association moves there. Last, A restarted with DNS discovery and peer
#   records: B's reverse TXT record publishes its ied endpoint (ep=), and A goes direct from
#   that alone; then the record names the relay and, once A's copy expires (TTL 3 s) and is
#   looked up again, A replaces the association: pings go direct through the relay.
source "$(dirname "$0")/lib.sh"
ie_init "$@"
source "$(dirname "$0")/ied_lib.sh"

topo_up
link_add hA eth9 172.16.9.1/24 hB eth9 172.16.9.2/24
ied_start B static
ied_restart_listening B 1001  # B's port is A's [[peer]] endpoint

in_ns hA ip addr replace "${IE_HOST_INNER[A]}/32" dev lo
ied_config A static
sed -i "s|^sn = \"dom2.sn1\"$|sn = \"dom2.sn1\"\nendpoint = \"172.16.9.2:1001\"|" "$IE_WORK/ied-A.toml"
grep -q 'endpoint = "172.16.9.2:1001"' "$IE_WORK/ied-A.toml" || die "could not add the endpoint"
spawn ied-A hA "$IED" --config "$IE_WORK/ied-A.toml" --log-level debug
wait_for 15 "ied A registered" ied_registered A

in_ns hA ping -c 3 -i 0.3 -W 2 10.2.0.2 >/dev/null 2>&1
direct_up() { [ "$(iectl_json A peers | jget - "[p['via'] for p in j['peers'] if p['address']=='10.2.0.2'][0]")" = direct ]; }
wait_for 10 "the direct path A-B" direct_up
in_ns hA ping -c 3 -i 0.2 -W 2 10.2.0.2 >/dev/null 2>&1
check "ping A -> B" $? ""

iperf3_direct 3 dom1.sn2 "directly"
expect_gt "A's direct counter" "$(iectl_json A status | jget - "j['counters']['direct_tx_packets']")" 10000

# The ip-via-sn bundle (docs/socket-api.md): a socket steered with it stays on the SN path
# while the direct path is up; the same exchange without it goes direct.
spawn udpecho-B hB python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.2.0.2", 7000))
while True:
    d, a = s.recvfrom(2048)
    s.sendto(d, a)'
sleep 0.3
udp_once() {  # SPORT
  python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.1.0.2", int(sys.argv[1])))
s.settimeout(3)
for _ in range(3):
    s.sendto(b"via", ("10.2.0.2", 7000))
    s.recv(64)
print("ok")' "$1"
}
out="$(in_ns hA "$IECTL" --socket "$IE_WORK/ied-A.sock" invoke ip-via-sn -- bash -c "$(declare -f udp_once); udp_once 47001" 2>&1)"
expect_eq "UDP exchange under the ip-via-sn bundle" "$out" ok
out="$(in_ns hA bash -c "$(declare -f udp_once); udp_once 47002" 2>&1)"
expect_eq "the same exchange unsteered" "$out" ok
flow_via() { iectl_json A flows | jget - "[f['via']+'/'+f['steered_by'] for f in j['flows'] if f['src']=='10.1.0.2:$1'][0]"; }
expect_eq "ip-via-sn flow kept to the SN path" "$(flow_via 47001)" "sn/socket"
expect_eq "unsteered flow went direct" "$(flow_via 47002)" "direct/route"

# Fallback under a live stream.
spawn iperf3-B2 hB iperf3 -s -B 10.2.0.2 -1
sleep 0.5
spawn iperf3-A hA iperf3 -c 10.2.0.2 -t 20 -b 20M -i 1 -J
sleep 4
before="$(host_rx dom1.sn2)"
log "cutting the shared link"
cut_ms="$(date +%s%3N)"
in_ns hA ip link set eth9 down
sn_path() { [ "$(iectl_json A peers | jget - "[p['via'] for p in j['peers'] if p['address']=='10.2.0.2'][0]")" = sn ]; }
wait_for 6 "A to fall back to the SN path" sn_path
down_ms="$(log_ms "$IE_WORK/ied-A.err" "direct path to 10.2.0.2: down")"
expect_le "fallback within 3 s of the cut (ms, from ied's log)" "$((down_ms - cut_ms))" 3000
sleep 4
after="$(host_rx dom1.sn2)"
expect_gt "dom1.sn2 carries the stream after the cut" "$((after - before))" 1000
log "restoring the shared link"
in_ns hA ip link set eth9 up
wait_for 12 "the direct path again" direct_up
wait_exit iperf3-A 30
check "the TCP stream survived the fallback (iperf3 exits 0)" $? "exit status"
j="$IE_WORK/iperf3-A.out"
zero="$(jget "$j" "sum(1 for i in j['intervals'] if i['sum']['bytes'] == 0)" 2>/dev/null || echo 99)"
expect_le "seconds without data (of 20)" "$zero" 3

# 20 pings A -> B that dom1.sn2 (A's SN) sees (almost) none of: they went direct.
pings_direct() {  # WHAT
  local before out
  before="$(host_rx dom1.sn2)"
  out="$(in_ns hA ping -c 20 -i 0.1 -W 2 10.2.0.2 2>&1)"
  check "ping A -> B $1" $? "$out"
  expect_le "dom1.sn2 saw (almost) none of the pings: host-pipe packets" \
    "$(($(host_rx dom1.sn2) - before))" 5
}

# A's [[peer]] names another endpoint of B's (a relay in B's namespace, no delay, to B's ied)
# and A reloads: the association moves there, pings go direct through the relay.
rm -f "$IE_WORK/relay-ep.ready"
spawn relay-ep hB python3 "$(dirname "$0")/udp_delay.py" --listen 172.16.9.2:2003 \
  --to 172.16.9.2:1001 --delay-ms 0 --ready-file "$IE_WORK/relay-ep.ready"
wait_for 10 "the relay in hB" test -e "$IE_WORK/relay-ep.ready"
sed -i 's|^endpoint = "172.16.9.2:1001"$|endpoint = "172.16.9.2:2003"|' "$IE_WORK/ied-A.toml"
grep -q 'endpoint = "172.16.9.2:2003"' "$IE_WORK/ied-A.toml" || die "could not change the endpoint"
in_ns hA "$IECTL" --socket "$IE_WORK/ied-A.sock" reload >"$IE_WORK/reload.out" 2>&1
check "iectl reload" $? "$(cat "$IE_WORK/reload.out")"
grep -q "peer 10.2.0.2: endpoint 172.16.9.2:1001 -> 172.16.9.2:2003" "$IE_WORK/ied-A.err"
check "the reload moved A's direct association to the new endpoint" $? "$(grep 'peer 10.2.0.2' "$IE_WORK/ied-A.err" | tail -3)"
in_ns hA ping -c 1 -W 1 10.2.0.2 >/dev/null 2>&1
wait_for 10 "the direct path through the reloaded endpoint" direct_up
pings_direct "through the reloaded endpoint"

# The endpoint from DNS: A restarted with discovery and peer records from its dnsmasq (no
# [[peer]]); B's reverse TXT record names its ied endpoint (ep=): the direct path again.
stop ied-A || true
IE_HOST_EP[B]=172.16.9.2:1001
dns_serve A 3 "sn,${IE_HOST_SN[A]},${IE_HOST_GW[A]},10,100"  # dns_start with a 3 s TTL
ied_config A dns
spawn ied-A hA "$IED" --config "$IE_WORK/ied-A.toml" --log-level debug
wait_for 15 "ied A registered (DNS)" ied_registered A
in_ns hA ping -c 2 -i 0.3 -W 2 10.2.0.2 >/dev/null 2>&1
wait_for 10 "the direct path from B's DNS record" direct_up
expect_eq "iectl peers: B's direct path is on-link" \
  "$(iectl_json A peers | jget - "[p['direct']['path'] for p in j['peers'] if p['address']=='10.2.0.2'][0]")" \
  "on-link"
expect_ge "A looked B's record up in DNS" \
  "$(iectl_json A status | jget - "j['counters']['peer_lookups']")" 1
grep -q "peer 10.2.0.2 at 172.16.9.2:1001: on-link" "$IE_WORK/ied-A.err"
check "ied took B's endpoint from the record" $? ""
iperf3_direct 2 dom1.sn2 "directly (endpoint from DNS)"

# B's record names another endpoint: the relay (no delay) to B's ied.
IE_HOST_EP[B]=172.16.9.2:2003
dns_serve A 3 "sn,${IE_HOST_SN[A]},${IE_HOST_GW[A]},10,100"
moved() {
  in_ns hA ping -c 1 -W 1 10.2.0.2 >/dev/null 2>&1
  grep -q "peer 10.2.0.2: endpoint 172.16.9.2:1001 -> 172.16.9.2:2003" "$IE_WORK/ied-A.err"
}
wait_for 15 "A follows B's record to its new endpoint" moved
wait_for 10 "the direct path through the new endpoint" direct_up
pings_direct "through the new endpoint (DNS)"
stop relay-ep || true
expect_ge "both rounds of pings went through the relay (datagrams from A)" \
  "$(grep -o 'from_clients=[0-9]*' "$IE_WORK/relay-ep.err" | cut -d= -f2 | tail -1)" 40
ie_finish
