#!/usr/bin/env bash
# Socket steering of a Go program by a [[steering.policy]] (issue 5; docs/bpf.md). The Go
# client (tests/tools/go, built by CMake with CGO_ENABLED=0) is static and makes its own
# system calls, never through libc: LD_PRELOAD cannot reach it, only the cgroup/sock_create
# program can. Host A's ied has NO route into ie0 for B's prefix; a policy for B's /24 names a
# cgroup:
#   - the binary is checked to be static (file, ldd, no glibc symbol versions, no ELF
#     interpreter), so the test really covers libc bypass;
#   - outside the cgroup it cannot reach B and ie0 counts no packet, but it reaches a host
#     outside the prefixes directly (the binary itself works), its sockets unmarked;
#   - inside the cgroup (and a child cgroup) TCP, unconnected UDP and connected UDP reach B
#     through ie0 and the SNs (ie0 and dom2.sn1's counters grow, B sees A's inner address),
#     each of its sockets carries the policy mark, getpeername()/recvfrom() show B's real
#     address, `iectl flows` says the flows were steered by policy;
#   - inside the cgroup, destinations outside the policy's prefixes still go direct: the
#     sockets are marked, but no packet enters ie0.
source "$(dirname "$0")/lib.sh"
IE_NS_ENTER=nsenter  # keep the host's /sys/fs/cgroup mounts visible (lib.sh ns_exec)
ie_init "$@"
source "$(dirname "$0")/ied_lib.sh"
GO_CLIENT="$(dirname "$IED")/ie-go-client"
[ -x "$GO_CLIENT" ] || die "missing $GO_CLIENT (target ie-go-client, tests/tools/CMakeLists.txt)"
for tool in file ldd readelf bpftool; do
  command -v "$tool" >/dev/null || die "missing tool: $tool (packaging/install-deps.sh)"
done

# --- the binary bypasses libc ---
finfo="$(file -b "$GO_CLIENT")"
echo "$finfo" | grep -q "statically linked" && echo "$finfo" | grep -q "Go BuildID"
check "ie-go-client is a statically linked Go binary" $? "$finfo"
lddout="$(ldd "$GO_CLIENT" 2>&1)"
echo "$lddout" | grep -q "not a dynamic executable"
check "ldd: not a dynamic executable" $? "$lddout"
expect_eq "no ELF interpreter (no dynamic loader, so no LD_PRELOAD)" \
  "$(readelf -l "$GO_CLIENT" | grep -c 'INTERP')" 0
expect_eq "no glibc symbol versions inside (no libc linked in)" \
  "$(grep -c 'GLIBC_' "$GO_CLIENT")" 0

steer_setup  # ied_lib.sh: policy cgroups, A's configuration, in_cg
go_in() {  # CGROUP MODE ADDR:PORT MARKER [TIMEOUT]: the Go client in A's namespace and CGROUP
  in_cg "$1" hA "$GO_CLIENT" -timeout "${5:-5s}" "$2" "$3" "$4"
}
field() { sed -n "s/^$1 //p"; }  # "tcp reply X" -> X for field "tcp reply"
# Packets the kernel sent into ie0 (towards ied). Not /sys/class/net: with nsenter /sys is
# the host's.
ie0_tx() { in_ns hA ip -s -j link show ie0 | jget - "j[0]['stats64']['tx']['packets']"; }
sn_pipe_rx() { sn_json dom2.sn1 pipes | jget - "sum(p['rx_packets'] for p in j['pipes'] if p['kind']=='sn')"; }

topo_up
ied_start B static
ied_start A static

# --- echo servers: on B (inside the policy's prefix) and on A's SN link (outside it) ---
# Each answers "echo:DATA from SOURCE-ADDRESS", so the client learns what address the far
# end saw.
cat >"$IE_WORK/echo.py" <<'EOT'
import socket, socketserver, sys, threading
addr = sys.argv[1]
class T(socketserver.StreamRequestHandler):
    def handle(self):
        line = self.rfile.readline().strip()
        self.wfile.write(b"echo:" + line + b" from " + self.client_address[0].encode() + b"\n")
socketserver.ThreadingTCPServer.allow_reuse_address = True
threading.Thread(target=socketserver.ThreadingTCPServer((addr, 7001), T).serve_forever,
                 daemon=True).start()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind((addr, 7002))
while True:
    d, a = u.recvfrom(2048)
    u.sendto(b"echo:" + d + b" from " + a[0].encode(), a)
EOT
far="${IE_HOST_GW[A]}"  # dom1.sn2's address on A's link: outside the policy's prefixes
spawn echo-B hB python3 "$IE_WORK/echo.py" 10.2.0.2
spawn echo-far "${IE_SN_ROLE[dom1.sn2]}" python3 "$IE_WORK/echo.py" "$far"
wait_for 10 "echo server on B" in_ns hB python3 -c 'import socket; socket.create_connection(("10.2.0.2", 7001), 1)'
wait_for 10 "echo server on dom1.sn2's link" in_ns hA python3 -c "import socket; socket.create_connection(('$far', 7001), 1)"

# --- what ied installed (as in ied_steer.sh) ---
rules="$(in_ns hA ip rule show)"
steer_check_policy "$rules"

marker="go-$RANDOM$RANDOM"

# --- outside the policy cgroup: never steered ---
tx0="$(ie0_tx)"
for mp in tcp:7001 udp:7002 udpconn:7002; do
  go_in "$CG/other" "${mp%:*}" "10.2.0.2:${mp#*:}" "$marker" 2s >"$IE_WORK/other-${mp%:*}.out" 2>&1
  expect_eq "Go ${mp%:*} outside the policy cgroup does not reach B" "$?" 1
done
expect_eq "... and none of its packets entered ie0" "$(ie0_tx)" "$tx0"
out="$(go_in "$CG/other" tcp "$far:7001" "$marker")"
check "Go tcp outside the cgroup reaches a host outside the policy directly" $? "$out"
expect_eq "... with A's own outer address" "$(echo "$out" | field "tcp reply")" \
  "echo:$marker from ${IE_HOST_OUTER[A]}"
expect_eq "... its socket unmarked" "$(echo "$out" | field "tcp mark")" 0x00000000
expect_eq "... not through ie0" "$(ie0_tx)" "$tx0"

# --- inside the policy cgroup: steered into ie0 through the SNs to B ---
tx1="$(ie0_tx)"
sn1="$(sn_pipe_rx)"
out="$(go_in "$CG/policy" tcp 10.2.0.2:7001 "$marker")"
check "Go tcp in the policy cgroup reaches B" $? "$out"
expect_eq "tcp: B echoed the marker and saw A's inner address" \
  "$(echo "$out" | field "tcp reply")" "echo:$marker from ${IE_HOST_INNER[A]}"
expect_eq "tcp: getpeername() shows B's real address" "$(echo "$out" | field "tcp peer")" 10.2.0.2:7001
expect_eq "tcp: the Go socket carries the policy mark" "$(echo "$out" | field "tcp mark")" 0x1e180000
out="$(go_in "$CG/policy" udp 10.2.0.2:7002 "$marker-u")"
check "Go unconnected udp in the policy cgroup reaches B" $? "$out"
expect_eq "udp: B echoed the datagram" "$(echo "$out" | field "udp reply")" \
  "echo:$marker-u from ${IE_HOST_INNER[A]}"
expect_eq "udp: recvfrom() shows B's real address" "$(echo "$out" | field "udp peer")" 10.2.0.2:7002
expect_eq "udp: the Go socket carries the policy mark" "$(echo "$out" | field "udp mark")" 0x1e180000
out="$(go_in "$CG/policy/child" udpconn 10.2.0.2:7002 "$marker-c")"
check "Go connected udp in a child of the policy cgroup reaches B" $? "$out"
expect_eq "udpconn: B echoed the datagram" "$(echo "$out" | field "udpconn reply")" \
  "echo:$marker-c from ${IE_HOST_INNER[A]}"
expect_eq "udpconn: the Go socket carries the policy mark" \
  "$(echo "$out" | field "udpconn mark")" 0x1e180000
tx2="$(ie0_tx)"
# TCP: SYN, ACK, data, FIN, ACK at least; and two datagrams.
expect_ge "the Go client's packets entered ie0" "$((tx2 - tx1))" 7
expect_ge "dom2.sn1 relayed them over its SN pipe" "$(($(sn_pipe_rx) - sn1))" 7

flows="$(iectl_json A flows)"
for dst in 10.2.0.2:7001 10.2.0.2:7002; do
  expect_eq "iectl flows: $dst steered by the policy" \
    "$(echo "$flows" | jget - "','.join(sorted({f['steered_by'] for f in j['flows'] if f['dst']=='$dst'}))")" \
    policy
done
in_ns hA "$IECTL" --socket "$IE_WORK/ied-A.sock" flows >"$IE_WORK/flows.txt"
grep "10.2.0.2:7001" "$IE_WORK/flows.txt" | grep -q policy
check "iectl flows (text) shows the Go flow as policy-steered" $? "$(cat "$IE_WORK/flows.txt")"

# --- inside the cgroup, destinations outside the policy's prefixes go direct ---
tx3="$(ie0_tx)"
out="$(go_in "$CG/policy" tcp "$far:7001" "$marker-far")"
check "Go tcp in the policy cgroup reaches a host outside the prefixes" $? "$out"
expect_eq "... directly, from A's outer address" "$(echo "$out" | field "tcp reply")" \
  "echo:$marker-far from ${IE_HOST_OUTER[A]}"
expect_eq "... although its socket is marked" "$(echo "$out" | field "tcp mark")" 0x1e180000
out="$(go_in "$CG/policy" udp "$far:7002" "$marker-far")"
check "Go unconnected udp in the policy cgroup reaches a host outside the prefixes" $? "$out"
expect_eq "outside the prefixes: no packet entered ie0" "$(ie0_tx)" "$tx3"

st="$(iectl_json A steering)"
expect_ge "sock_create marked the Go client's sockets" "$(echo "$st" | jget - "j['bpf']['sock_marked']")" 5

ie_finish
