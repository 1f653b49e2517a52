#!/usr/bin/env bash
# ied direct paths that are not on-link: used only while measurably closer than the SN
# (docs/ied.md "Direct paths").
#   A and B reach each other's ied through a router namespace (172.16.9.0/24 - rt -
#   172.16.10.0/24: a gateway on the route, so not on-link). A's first-hop SN (dom1.sn2) is
#   made far: A reaches it through a udp_delay.py relay in its namespace (8 ms each way).
#   a. A's [[peer]] for B names B's endpoint behind the router: A associates directly, PROBEs
#      it (sub-millisecond) and, that being measurably closer than its SN (~16 ms), goes
#      direct: iectl peers says direct/closer with both RTTs; pings and an iperf3 run go
#      direct (dom1.sn2's host pipes see next to nothing of them; flows say direct).
#   b. A restarted with B's endpoint behind a second relay in B's namespace (20 ms each way:
#      the direct path is now farther than the SN): A associates and measures it but keeps
#      the SN path: iectl peers says farther, pings go through dom1.sn2; B, which learned
#      A's direct path in part a, replies through the SNs again as A's data comes that way.
#   c. B's SN made far too (B reaches dom2.sn1 through a relay, 12 ms each way) and A
#      restarted with B's endpoint behind a relay of 10 ms each way: the direct path (~20 ms)
#      is farther than A's first-hop SN (~16 ms) but closer than the whole SN path (~40 ms,
#      measured by PROBEs over the end-to-end session): A goes direct (iectl peers: closer,
#      SN path end to end), pings go direct.
source "$(dirname "$0")/lib.sh"
ie_init "$@"
source "$(dirname "$0")/ied_lib.sh"
HERE="$(cd "$(dirname "$0")" && pwd)"

topo_up
ns_add rt
link_add hA eth9 172.16.9.1/24 rt a9 172.16.9.254/24
link_add hB eth9 172.16.10.2/24 rt b9 172.16.10.254/24
in_ns rt sysctl -qw net.ipv4.ip_forward=1
in_ns hA ip route add 172.16.10.0/24 via 172.16.9.254
in_ns hB ip route add 172.16.9.0/24 via 172.16.10.254
in_ns hA ping -c 1 -W 2 172.16.10.2 >/dev/null 2>&1
check "the router forwards A -> B" $? ""

relay_start() {  # NAME ROLE LISTEN TO DELAY_MS
  rm -f "$IE_WORK/$1.ready"
  spawn "$1" "$2" python3 "$HERE/udp_delay.py" --listen "$3" --to "$4" --delay-ms "$5" \
    --ready-file "$IE_WORK/$1.ready"
  wait_for 10 "the relay $1" test -e "$IE_WORK/$1.ready"
}
GW="${IE_HOST_GW[A]}"
relay_start relay-sn d1s2 "$GW:1001" "$GW:$IE_PORT" 8

ied_start B static
ied_restart_listening B 1001

in_ns hA ip addr replace "${IE_HOST_INNER[A]}/32" dev lo
a_start() {  # B_ENDPOINT
  ied_config A static
  sed -i "s|^endpoint = \"$GW:$IE_PORT\"$|endpoint = \"$GW:1001\"|" "$IE_WORK/ied-A.toml"
  sed -i "s|^sn = \"dom2.sn1\"$|sn = \"dom2.sn1\"\nendpoint = \"$1\"|" "$IE_WORK/ied-A.toml"
  grep -q "endpoint = \"$GW:1001\"" "$IE_WORK/ied-A.toml" || die "could not point A at the relay"
  grep -q "endpoint = \"$1\"" "$IE_WORK/ied-A.toml" || die "could not add B's endpoint"
  spawn ied-A hA "$IED" --config "$IE_WORK/ied-A.toml" --log-level debug
  wait_for 15 "ied A registered" ied_registered A
}
peer_b() {  # EXPR over the peers entry p of 10.2.0.2
  iectl_json A peers | jget - "[$1 for p in j['peers'] if p['address']=='10.2.0.2'][0]"
}
path_is() { [ "$(peer_b "p['via'] + '/' + ((p.get('direct') or {}).get('path') or '-')")" = "$1" ]; }
measured() {  # VIA/PATH WORD: waits for it, sets rtt and sn_rtt (us: direct, SN path)
  in_ns hA ping -c 2 -i 0.3 -W 3 10.2.0.2 >/dev/null 2>&1
  wait_for 10 "A's direct path to B measured $2" path_is "$1"
  rtt="$(peer_b "int(p['direct']['rtt_ms'] * 1000)")"
  sn_rtt="$(peer_b "int(p['direct']['sn_rtt_ms'] * 1000)")"
  log "direct RTT ${rtt} us, SN path RTT ${sn_rtt} us ($(peer_b "p['direct']['sn_rtt_from']"))"
}

# ---- a. closer: direct ----
a_start 172.16.10.2:1001
measured direct/closer closer
expect_ge "the SN's RTT through the relay (us)" "$sn_rtt" 15000
expect_le "the direct RTT through the router (us)" "$rtt" 5000
in_ns hA "$IECTL" --socket "$IE_WORK/ied-A.sock" peers >"$IE_WORK/peers-a.txt" 2>&1
grep -q "direct  closer" "$IE_WORK/peers-a.txt"
check "iectl peers shows the closer direct path" $? "$(cat "$IE_WORK/peers-a.txt")"
grep -q "closer, going direct" "$IE_WORK/ied-A.err"
check "ied logs the switch with both RTTs" $? ""

before="$(host_rx dom1.sn2)"
out="$(in_ns hA ping -c 10 -i 0.1 -W 2 10.2.0.2 2>&1)"
check "ping A -> B" $? "$out"
avg="$(printf '%s\n' "$out" | sed -n 's|.*= [0-9.]*/\([0-9.]*\)/.*|\1|p')"
log "ping A -> B direct: avg ${avg} ms"
expect_le "dom1.sn2 saw none of the pings: host-pipe packets" "$(($(host_rx dom1.sn2) - before))" 5
iperf3_direct 2 dom1.sn2 "over the routed direct path"

# ---- b. farther: via the SN ----
stop ied-A || true
relay_start relay-direct hB 172.16.10.2:2001 172.16.10.2:1001 20
a_start 172.16.10.2:2001
measured sn/farther farther
expect_ge "the direct RTT through the relay (us)" "$rtt" 39000
before="$(host_rx dom1.sn2)"
in_ns hA ping -c 10 -i 0.1 -W 3 10.2.0.2 >/dev/null 2>&1
check "ping A -> B" $? ""
after="$(host_rx dom1.sn2)"
expect_ge "the pings went through dom1.sn2 (host-pipe packets)" "$((after - before))" 10
path_is sn/farther
check "still via the SN after the pings" $? "$(peer_b "p")"
# B learned A's direct path in part a (A's packets came that way); A's data now comes
# through the SNs, so B replies that way too.
expect_eq "B replies through its SN too" \
  "$(iectl_json B peers | jget - "[p['via'] for p in j['peers'] if p['address']=='10.1.0.2'][0]")" sn
grep -q "peer 10.1.0.2 sends through the SNs again" "$IE_WORK/ied-B.err"
check "B logged the change" $? ""

# ---- c. farther than the first hop, closer than the whole SN path: direct ----
stop ied-A || true
GWB="${IE_HOST_GW[B]}"
relay_start relay-bsn d2s1 "$GWB:1002" "$GWB:$IE_PORT" 12
stop ied-B || true
sed -i "s|^endpoint = \"$GWB:$IE_PORT\"$|endpoint = \"$GWB:1002\"|" "$IE_WORK/ied-B.toml"
grep -q "endpoint = \"$GWB:1002\"" "$IE_WORK/ied-B.toml" || die "could not point B at its relay"
spawn ied-B hB "$IED" --config "$IE_WORK/ied-B.toml" --log-level debug
wait_for 15 "ied B registered through its relay" ied_registered B
relay_start relay-direct2 hB 172.16.10.2:2002 172.16.10.2:1001 10
a_start 172.16.10.2:2002
measured direct/closer "closer than the SN path"
first_hop="$(iectl_json A sn list | jget - "int([s['rtt_min_ms'] for s in j['sns'] if s['state'] == 'active'][0] * 1000)")"
log "A's first-hop SN RTT ${first_hop} us"
expect_ge "the direct RTT through the relay (us)" "$rtt" 19000
expect_ge "the direct path is farther than A's first-hop SN (us)" "$rtt" "$first_hop"
expect_ge "the SN path's RTT, end to end (us)" "$sn_rtt" 35000
expect_eq "the SN path's figure is end to end" "$(peer_b "p['direct']['sn_rtt_from']")" end-to-end
grep -q "SN path [0-9.]* ms (end to end): closer, going direct" "$IE_WORK/ied-A.err"
check "ied logs the switch with the end-to-end figure" $? "$(grep 'direct path to' "$IE_WORK/ied-A.err" | tail -2)"
before="$(host_rx dom1.sn2)"
in_ns hA ping -c 10 -i 0.1 -W 3 10.2.0.2 >/dev/null 2>&1
check "ping A -> B" $? ""
expect_le "dom1.sn2 saw none of the pings: host-pipe packets" "$(($(host_rx dom1.sn2) - before))" 5
ie_finish
