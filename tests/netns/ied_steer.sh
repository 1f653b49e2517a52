#!/usr/bin/env bash
# Socket steering end to end (issue 5; docs/bpf.md, docs/socket-api.md). Host A's ied has NO
# route into ie0 for B's prefix: only steered sockets reach B (10.2.0.2), through
# A -> dom1.sn1 -> dom2.sn1 -> B, and only what is steered ever enters ie0.
#   - unsteered curl fails and leaves ie0's counters alone;
#   - a bundle whose option reaches the SNs in ILP metadata (ip-uncached: nothing cached);
#   - the shim (`iectl invoke ip -- ...`): curl, iperf3, Python TCP/UDP (connected and
#     unconnected), getpeername()/recvfrom() showing B's real address, the C example,
#     --destinations filtering, a bad service refused;
#   - a [[steering.policy]] for a cgroup: a statically linked client (beyond LD_PRELOAD's
#     reach) steered by the BPF sock_create program inside the cgroup and its children only,
#     TCP and unconnected UDP; destinations outside the policy's prefixes untouched;
#   - flows name how they were steered; SIGHUP / `iectl reload` change the policy live (an
#     invalid file is refused, tun.mtu is named as needing a restart); kill -9 of ied leaves
#     no BPF program attached and a restart replaces the stale rules.
source "$(dirname "$0")/lib.sh"
IE_NS_ENTER=nsenter  # keep the host's /sys/fs/cgroup mounts visible (lib.sh ns_exec)
ie_init "$@"
source "$(dirname "$0")/ied_lib.sh"
bindir="$(dirname "$IED")"
STATIC="$bindir/ie-static-client"
EXAMPLE="$bindir/ie_steer_example"
[ -x "$STATIC" ] || die "missing $STATIC"
[ -x "$EXAMPLE" ] || die "missing $EXAMPLE"
file "$STATIC" | grep -q "statically linked" || die "$STATIC is not statically linked"
command -v bpftool >/dev/null || die "missing tool: bpftool"

steer_setup  # ied_lib.sh: policy cgroups, A's configuration, in_cg
# Packets the kernel sent into ie0 (towards ied). Not /sys/class/net: with nsenter /sys is
# the host's.
ie0_tx() { in_ns hA ip -s -j link show ie0 | jget - "j[0]['stats64']['tx']['packets']"; }
invoke() { in_ns hA "$IECTL" --socket "$IE_WORK/ied-A.sock" invoke "$@"; }

topo_up
ied_start B static
ied_start A static

# --- servers on B ---
marker="steered-page-$RANDOM$RANDOM"
mkdir -p "$IE_WORK/www" && echo "$marker" >"$IE_WORK/www/index.html"
spawn http-B hB python3 -m http.server 8000 --bind 10.2.0.2 --directory "$IE_WORK/www"
spawn udpecho-B hB python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.2.0.2", 7000))
while True:
    d, a = s.recvfrom(2048)
    s.sendto(b"echo:" + d, a)'
spawn iperf3-B hB iperf3 -s -B 10.2.0.2 -p 5201
wait_for 10 "web server on B" in_ns hB python3 -c 'import socket; socket.create_connection(("10.2.0.2", 8000), 1)'
wait_for 10 "iperf3 server on B" in_ns hB python3 -c 'import socket; socket.create_connection(("10.2.0.2", 5201), 1)'

# --- what ied installed ---
rules="$(in_ns hA ip rule show)"
echo "$rules" | grep -q "fwmark 0x1e100000/0xfff80000 lookup 7300"
check "rule for explicitly steered sockets" $? "$rules"
steer_check_policy "$rules"

# --- unsteered: never reaches ie0 ---
tx0="$(ie0_tx)"
in_ns hA curl -s -m 3 "http://10.2.0.2:8000/" >/dev/null 2>&1
expect_gt "unsteered curl does not reach B" "$?" 0
in_ns hA python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b"x", ("10.2.0.2", 7000))' 2>/dev/null
in_cg "$CG/other" hA "$STATIC" tcp 10.2.0.2 8000 >/dev/null 2>&1
expect_eq "static client outside the policy cgroup does not reach B" "$?" 1
expect_eq "unsteered packets never entered ie0" "$(ie0_tx)" "$tx0"
expect_eq "socket outside the policy cgroup has no mark" \
  "$(in_cg "$CG/other" hA "$STATIC" mark)" "0x00000000"

# --- the shim: unmodified programs ---
out="$(invoke ip -- curl -s -m 10 "http://10.2.0.2:8000/")"
expect_eq "curl under the shim fetches B's page" "$out" "$marker"
flows="$(iectl_json A flows)"
expect_eq "curl's flow was steered by its socket" \
  "$(echo "$flows" | jget - "[f['steered_by'] for f in j['flows'] if f['dst']=='10.2.0.2:8000'][0]")" socket
invoke ip -- iperf3 -c 10.2.0.2 -p 5201 -t 2 -J >"$IE_WORK/iperf3.json" 2>"$IE_WORK/iperf3.err"
check "iperf3 under the shim" $? "$(tail -3 "$IE_WORK/iperf3.err")"
bytes="$(jget "$IE_WORK/iperf3.json" "int(j['end']['sum_received']['bytes'])" 2>/dev/null || echo 0)"
expect_gt "iperf3 moved data through InterEdge" "$bytes" 100000

py_out="$(invoke ip -- python3 -c '
import socket
t = socket.create_connection(("10.2.0.2", 8000), 5)
print("peer", *t.getpeername())
t.close()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(3)
u.sendto(b"unconnected", ("10.2.0.2", 7000))
d, a = u.recvfrom(2048)
print(d.decode(), *a)
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
c.settimeout(3)
c.connect(("10.2.0.2", 7000))
c.send(b"connected")
print(c.recv(2048).decode(), *c.getpeername())' 2>&1)"
echo "$py_out" | grep -qx "peer 10.2.0.2 8000"
check "getpeername() shows B's real address" $? "$py_out"
echo "$py_out" | grep -qx "echo:unconnected 10.2.0.2 7000"
check "unconnected UDP: recvfrom() shows B's real address" $? "$py_out"
echo "$py_out" | grep -qx "echo:connected 10.2.0.2 7000"
check "connected UDP through InterEdge" $? "$py_out"

# --- a bundle whose option travels to the SNs in ILP metadata: ip-uncached (sn_cache=off) ---
# 30 UDP round trips each way, on sockets of their own; A's SN (dom1.sn2) must decide every
# packet of the uncached flow in its ip module and cache none of it, while the same exchange
# under plain `ip` rides the peer's cached flow (cache hits).
udp30='
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.connect(("10.2.0.2", 7000))
n = 0
for i in range(30):
    s.send(b"m%d" % i)
    n += s.recv(2048).startswith(b"echo:")
print(n)'
uncached_counters() { sn_counter dom1.sn2 "'%d %d %d' % (j['cache']['inserts'], j['module_counters']['ip.packets'], j['cache']['hits'])"; }
read -r ins0 ipk0 hit0 <<<"$(uncached_counters)"
expect_eq "ip-uncached: 30 UDP round trips" "$(invoke ip-uncached -- python3 -c "$udp30" 2>&1)" 30
read -r ins1 ipk1 hit1 <<<"$(uncached_counters)"
expect_ge "ip-uncached: A's SN decided every packet in its ip module" "$((ipk1 - ipk0))" 30
expect_eq "ip-uncached: A's SN cached none of them" "$((ins1 - ins0))" 0
expect_eq "ip-uncached: iectl flows shows the bundle" \
  "$(iectl_json A flows | jget - "len([f for f in j['flows'] if f['dst']=='10.2.0.2:7000' and f.get('service_requested')=='ip-uncached'])")" \
  1
expect_eq "plain ip: 30 UDP round trips" "$(invoke ip -- python3 -c "$udp30" 2>&1)" 30
read -r _ ipk2 hit2 <<<"$(uncached_counters)"
# (B's replies come back on B's own flow, which B's socket did not ask to keep uncached: they
# are the only cache hits of the uncached exchange; both directions hit under plain ip.)
expect_le "ip-uncached: cache hits at A's SN only for B's 30 replies" "$((hit1 - hit0))" 32
expect_ge "plain ip: A's SN served both directions from its cache" "$((hit2 - hit1))" 58
expect_le "plain ip: (so its ip module saw at most a few)" "$((ipk2 - ipk1))" 2

tx1="$(ie0_tx)"
invoke ip --destinations 10.9.0.0/16 -- curl -s -m 3 "http://10.2.0.2:8000/" >/dev/null 2>&1
expect_gt "--destinations leaves other destinations unsteered" "$?" 0
expect_eq "... and out of ie0" "$(ie0_tx)" "$tx1"
invoke no-such-service --strict -- curl -s -m 3 "http://10.2.0.2:8000/" >/dev/null 2>&1
expect_gt "an unknown service with --strict fails the connect" "$?" 0

ex_out="$(in_ns hA env IE_SOCKET="$IE_WORK/ied-A.sock" "$EXAMPLE" 10.2.0.2 8000 2>&1)"
echo "$ex_out" | grep -q "^steered: service ip" && echo "$ex_out" | grep -qi "html"
check "the C example (ie_set_service before connect) talks to B" $? "$(echo "$ex_out" | head -3)"

# --- cgroup policy: a static binary ---
out="$(in_cg "$CG/policy" hA "$STATIC" tcp 10.2.0.2 8000)"
echo "$out" | grep -q "$marker"
check "static client in the policy cgroup fetches B's page" $? "$(echo "$out" | tail -2)"
echo "$out" | grep -qx "peer 10.2.0.2 8000"
check "static client: getpeername() shows B" $? "$(echo "$out" | tail -1)"
out="$(in_cg "$CG/policy/child" hA "$STATIC" udp 10.2.0.2 7000 hello)"
echo "$out" | grep -qx "from 10.2.0.2 7000"
check "static client in a child cgroup: unconnected UDP via the policy" $? "$out"
expect_eq "policy socket mark" "$(in_cg "$CG/policy" hA "$STATIC" mark)" "0x1e180000"
flows="$(iectl_json A flows)"
expect_eq "the static client's flow was steered by the policy" \
  "$(echo "$flows" | jget - "','.join(sorted({f['steered_by'] for f in j['flows'] if f['dst']=='10.2.0.2:7000'}))")" \
  "policy,socket"
tx2="$(ie0_tx)"
in_cg "$CG/policy" hA "$STATIC" udp "${IE_HOST_GW[A]}" 9 x >/dev/null 2>&1
expect_eq "policy sockets reach other destinations outside ie0" "$(ie0_tx)" "$tx2"

st="$(iectl_json A steering)"
expect_ge "ied counts steered sockets" "$(echo "$st" | jget - "j['sockets_steered']")" 5
expect_ge "sock_create marked sockets" "$(echo "$st" | jget - "j['bpf']['sock_marked']")" 3
in_ns hA "$IECTL" --socket "$IE_WORK/ied-A.sock" steering >"$IE_WORK/steering.txt"
grep -q "$CG/policy" "$IE_WORK/steering.txt"
check "iectl steering lists the cgroup policy" $? "$(cat "$IE_WORK/steering.txt")"
in_ns hA "$IECTL" --socket "$IE_WORK/ied-A.sock" flows >"$IE_WORK/flows.txt"
grep -q "policy" "$IE_WORK/flows.txt"
check "iectl flows shows how flows were steered" $? "$(head -3 "$IE_WORK/flows.txt")"

# --- reload (SIGHUP and iectl reload): policies change live, an invalid file changes nothing ---
cp "$IE_WORK/ied-A.toml" "$IE_WORK/ied-A.toml.orig"
sed -i 's|^prefixes = \["10.2.0.0/24"\]$|prefixes = ["10.9.0.0/24"]|' "$IE_WORK/ied-A.toml"
sed -i 's|^name = "ie0"$|name = "ie0"\nmtu = 1280|' "$IE_WORK/ied-A.toml"
kill -HUP "${IE_PID[ied-A]}"
wait_for 5 "A reloaded after SIGHUP" grep -q "reloaded .*applied" "$IE_WORK/ied-A.err"
grep "reloaded" "$IE_WORK/ied-A.err" | tail -1 | grep -q 'needs a restart: \["tun.mtu"\]'
check "SIGHUP: tun.mtu named as needing a restart" $? "$(grep reloaded "$IE_WORK/ied-A.err" | tail -1)"
in_ns hA ip route show table 7301 | grep -q "10.9.0.0/24 dev ie0"
check "SIGHUP: the policy's new prefix is routed" $? "$(in_ns hA ip route show table 7301)"
tx3="$(ie0_tx)"
in_cg "$CG/policy" hA "$STATIC" tcp 10.2.0.2 8000 >/dev/null 2>&1
expect_eq "SIGHUP: B is no longer in the policy" "$?" 1
expect_eq "... and its packets stay out of ie0" "$(ie0_tx)" "$tx3"
echo "[[bogus" >>"$IE_WORK/ied-A.toml"
out="$(in_ns hA "$IECTL" --socket "$IE_WORK/ied-A.sock" reload 2>&1)"
rc=$?
expect_eq "iectl reload of an invalid file fails" "$rc" 1
echo "$out" | grep -q "ied-A.toml:"
check "... naming the file and line" $? "$out"
in_ns hA ip route show table 7301 | grep -q "10.9.0.0/24 dev ie0"
check "... and the running policy stays" $? "$(in_ns hA ip route show table 7301)"
cp "$IE_WORK/ied-A.toml.orig" "$IE_WORK/ied-A.toml"
out="$(in_ns hA "$IECTL" --socket "$IE_WORK/ied-A.sock" reload 2>&1)"
check "iectl reload of the original file" $? "$out"
echo "$out" | grep -q "applied: steering.policy"
check "... applies the policy" $? "$out"
out="$(in_cg "$CG/policy" hA "$STATIC" tcp 10.2.0.2 8000)"
echo "$out" | grep -q "$marker"
check "after the reload the static client reaches B again" $? "$(echo "$out" | tail -1)"
expect_eq "explicit steering unaffected by reloads" "$(invoke ip -- curl -s -m 10 "http://10.2.0.2:8000/")" "$marker"

# --- kill -9: nothing stays attached; a restart replaces stale rules ---
kill -9 "${IE_PID[ied-A]}"
wait "${IE_PID[ied-A]}" 2>/dev/null
sleep 0.5
expect_eq "no program attached after kill -9" "$(bpftool cgroup show "$CG/policy" | grep -c ie_sock_create)" 0
expect_eq "new sockets in the cgroup unmarked after kill -9" \
  "$(in_cg "$CG/policy" hA "$STATIC" mark)" "0x00000000"
ied_start A static
grep -q "removed 4 stale rule(s)" "$IE_WORK/ied-A.err"
check "restart: the killed ied's rules were flushed" $? "$(grep stale "$IE_WORK/ied-A.err")"
# (Debian 12's iproute2 ignores `proto` in `ip rule show`: count our tables instead.)
expect_eq "restart: IPv4 rules present once" "$(in_ns hA ip -4 rule show | grep -c 'lookup 730[01]')" 2
expect_eq "restart: IPv6 rules present once" "$(in_ns hA ip -6 rule show | grep -c 'lookup 730[01]')" 2
out="$(invoke ip -- curl -s -m 10 "http://10.2.0.2:8000/")"
expect_eq "curl under the shim after the restart" "$out" "$marker"

ie_finish
