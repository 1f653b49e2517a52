#!/usr/bin/env bash
# IPv6 through ied (issue 5): hosts A and B also have IPv6 inner addresses (fd00:1::2 behind
# dom1.sn2, fd00:2::2 behind dom2.sn1); the underlay stays IPv4. ied budgets ILP's overhead
# so that ie0's MTU on a 1500-byte path is at least 1280, the IPv6 minimum (below it the
# kernel turns IPv6 off on the device).
# A has no [host] routes: its IPv6 sockets reach B only when steered (`iectl invoke ip`).
# Checks: ie0 MTU >= 1280 and IPv6 on it (ied steers IPv6); unsteered IPv6 never enters ie0;
# under the shim curl -6 fetches a small and a 300 KB page from B (full-size IPv6 segments
# cross without loss), UDP over IPv6 unconnected and connected with B's real address in
# recvfrom()/getpeername(); iectl flows shows the IPv6 flows steered by their socket. (B
# routes A's /64 into its ie0 with a [host] prefix, so its replies come back the same way.)
source "$(dirname "$0")/lib.sh"
IE_NS_ENTER=nsenter  # keep the host's /sys/fs/cgroup mounts visible (lib.sh ns_exec)
ie_init "$@"
source "$(dirname "$0")/ied_lib.sh"

declare -A V6=([A]=fd00:1::2 [B]=fd00:2::2)
ied_config_hook() {
  local h="$1" f="$IE_WORK/ied-$1.toml"
  sed -i "s|^addresses = \[\"\(.*\)\"\]|addresses = [\"\1\", \"${V6[$h]}\"]|" "$f"
  if [ "$h" = A ]; then
    sed -i '/^prefixes = /d' "$f"
    printf '[steering]\ntable = 7300\nrule_priority = 7300\n' >>"$f"
    printf '[[peer]]\nprefix = "fd00:2::/64"\nsn = "dom2.sn1"\nkey = "%s"\n' "${IED_KEY[B]}" >>"$f"
  else
    sed -i 's|^prefixes = \[\(.*\)\]|prefixes = [\1, "fd00:1::/64"]|' "$f"
    printf '[[peer]]\nprefix = "fd00:1::/64"\nsn = "dom1.sn2"\nkey = "%s"\n' "${IED_KEY[A]}" >>"$f"
  fi
}
ie0_tx() { in_ns hA ip -s -j link show ie0 | jget - "j[0]['stats64']['tx']['packets']"; }
invoke() { in_ns hA "$IECTL" --socket "$IE_WORK/ied-A.sock" invoke "$@"; }

topo_up
for h in A B; do in_ns "h$h" ip -6 addr add "${V6[$h]}/128" dev lo nodad; done
ied_start B static
ied_start A static

mtu="$(iectl_json A status | jget - "j['tun']['mtu']")"
expect_ge "ie0's MTU on a 1500-byte IPv4 path is at least 1280" "$mtu" 1280
expect_eq "ied steers IPv6 (IPv6 is on for ie0)" "$(iectl_json A steering | jget - "j['ipv6']")" true
# ...but ie0 stays silent: no link-local address, so no router solicitations or MLD reports.
expect_eq "ie0 has no IPv6 address of its own" "$(in_ns hA ip -6 -o addr show dev ie0 | wc -l)" 0

marker="ipv6-page-$RANDOM$RANDOM"
mkdir -p "$IE_WORK/www"
echo "$marker" >"$IE_WORK/www/index.html"
for _ in $(seq 10000); do echo "$marker-line-of-the-big-page"; done >"$IE_WORK/www/big.html"
spawn http-B hB python3 -m http.server 8000 --bind fd00:2::2 --directory "$IE_WORK/www"
spawn udpecho-B hB python3 -c '
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(("fd00:2::2", 7000))
while True:
    d, a = s.recvfrom(2048)
    s.sendto(b"echo:" + d, a)'
wait_for 10 "web server on B (IPv6)" in_ns hB python3 -c 'import socket; socket.create_connection(("fd00:2::2", 8000), 1)'

# --- unsteered IPv6 never enters ie0 ---
tx0="$(ie0_tx)"
in_ns hA ping -6 -c 1 -W 1 fd00:2::2 >/dev/null 2>&1
expect_gt "unsteered ping -6 does not reach B" "$?" 0
in_ns hA curl -s -g -m 3 "http://[fd00:2::2]:8000/" >/dev/null 2>&1
expect_gt "unsteered curl -6 does not reach B" "$?" 0
expect_eq "unsteered IPv6 never entered ie0" "$(ie0_tx)" "$tx0"

# --- steered by the shim ---
out="$(invoke ip -- curl -s -g -m 10 "http://[fd00:2::2]:8000/")"
expect_eq "curl -6 under the shim fetches B's page" "$out" "$marker"
invoke ip -- curl -s -g -m 20 -o "$IE_WORK/big.out" "http://[fd00:2::2]:8000/big.html"
check "curl -6 of a 300 KB page" $? "exit status"
cmp -s "$IE_WORK/big.out" "$IE_WORK/www/big.html"
check "the 300 KB page arrived whole (full-size IPv6 segments)" $? "$(stat -c %s "$IE_WORK/big.out" 2>/dev/null)"
py_out="$(invoke ip -- python3 -c '
import socket
t = socket.create_connection(("fd00:2::2", 8000), 5)
print("peer", *t.getpeername()[:2])
t.close()
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
u.settimeout(3)
u.sendto(b"unconnected", ("fd00:2::2", 7000))
d, a = u.recvfrom(2048)
print(d.decode(), *a[:2])
c = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
c.settimeout(3)
c.connect(("fd00:2::2", 7000))
c.send(b"connected")
print(c.recv(2048).decode(), *c.getpeername()[:2])' 2>&1)"
echo "$py_out" | grep -qx "peer fd00:2::2 8000"
check "IPv6 TCP: getpeername() shows B's real address" $? "$py_out"
echo "$py_out" | grep -qx "echo:unconnected fd00:2::2 7000"
check "IPv6 unconnected UDP: recvfrom() shows B's real address" $? "$py_out"
echo "$py_out" | grep -qx "echo:connected fd00:2::2 7000"
check "IPv6 connected UDP through InterEdge" $? "$py_out"
expect_ge "iectl flows: IPv6 flows to B steered by their socket" \
  "$(iectl_json A flows | jget - "len([f for f in j['flows'] if 'fd00:2::2' in f['dst'] and f['steered_by']=='socket'])")" 2
# Bytes, not packets: with TSO on ie0 the kernel counts a 64 KiB super packet as one.
expect_ge "B's replies went back through its ie0 ([host] route for fd00:1::/64)" \
  "$(in_ns hB ip -s -j link show ie0 | jget - "j[0]['stats64']['tx']['bytes']")" 300000

ie_finish
