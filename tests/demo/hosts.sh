#!/usr/bin/env bash
# The hosts demo (README command 1): a whole local InterEdge in network namespaces with real
# host daemons. Three reference SNs (iesn) in two edomains (the topology of the netns tests,
# tests/netns/lib.sh); host A behind dom1.sn2 and host B behind dom2.sn1 run `ied`; a dnsmasq
# in A's namespace publishes A's SN (SRV + TXT key) and B's peer record (reverse-name TXT).
# Real applications cross: ping, curl fetching a page from python3's http.server on B, an
# iperf3 run, and curl again under `iectl invoke` (the socket shim); then B asks its SN, out
# of band, to drop A's traffic, and lifts it. iectl shows what each daemon did; a tcpdump of
# A's link shows no plaintext.
# Run by tests/demo.sh for people and by ctest (label netns;demo) for CI; exits non-zero
# unless every check passed.
#
#   tests/demo/hosts.sh --iesn PATH --testhost PATH --ied PATH --iectl PATH [--keep]
#
# --keep: leave everything up until Ctrl-C, printing commands to try. Everything
# (namespaces, processes, files) is removed on exit, also on failure and Ctrl-C.
set -u -o pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KEEP=0
lib_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --keep) KEEP=1; shift ;;
    -h | --help)
      sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *) lib_args+=("$1"); shift ;;
  esac
done
if [ "$KEEP" = 1 ]; then
  IE_NETNS_LIMIT=0
else
  IE_NETNS_LIMIT="${IE_NETNS_LIMIT:-100}"
fi
# shellcheck source=tests/netns/lib.sh
source "$here/../netns/lib.sh"
step() { printf '\n== %s\n' "$*"; }
say() { printf '   %s\n' "$*"; }
indent() { sed 's/^/   | /'; }
# shellcheck disable=SC2034  # read by lib.sh's clean-up
IE_CLEANUP_SUMMARY=1
ie_init "${lib_args[@]}"
# shellcheck source=tests/netns/ied_lib.sh
source "$here/../netns/ied_lib.sh"
if [ "$KEEP" = 1 ]; then
  trap 'printf "\n"; log "Ctrl-C: tearing down"; exit 0' INT TERM
fi
iectl_h() {  # H VERB...: iectl's human output, indented
  local h="$1"
  shift
  in_ns "h$h" "$IECTL" --socket "$IE_WORK/ied-$h.sock" "$@" 2>&1 | indent
}

step "step 2: bringing up a local InterEdge in network namespaces"
cat <<'EOF2'
   host A 10.1.0.2 (ied, dnsmasq)                                  host B 10.2.0.2 (ied)
        | 172.16.1.0/24                                                 | 172.16.2.0/24
   +----------+   backbone   +----------+       backbone          +----------+
   | dom1.sn2 |--------------| dom1.sn1 |-------------------------| dom2.sn1 |
   +----------+  (bridge)    +----------+                         +----------+
   edomain dom1              gateway of dom1                      gateway of dom2 (edomain dom2)

   Each SN runs `iesn run` (2 workers, UDP 1000) with its own X25519 key; the SNs associate
   (Noise IK) and hand each other PSP keys. The hosts' addresses 10.1.0.2 and 10.2.0.2 sit on
   their loopback devices; ied routes the other edomain's /24 into its TUN device ie0.
EOF2
topo_up

step "step 3: host daemons"
say "B: ied with its SN in /etc-style configuration ([[sn]] dom2.sn1, its key, its endpoint)."
ied_start B static
say "A: ied finds its SN in DNS: SRV _interedge._udp.dom1.test and the SN's key in TXT,"
say "served by a real dnsmasq; B's first-hop SN and key come from the TXT record at"
say "2.0.2.10.in-addr.arpa. (dnsmasq config: $IE_WORK/dnsmasq-A.conf)"
dns_start A
sed 's/^/      /' "$IE_WORK/dnsmasq-A.conf" | grep -E 'srv-host|txt-record|host-record'
ied_start A dns
say "-- iectl status on A:"
iectl_h A status
say "-- iectl sn list on A:"
iectl_h A sn list

step "step 4: real applications across two edomains (A -> dom1.sn2 -> dom1.sn1 -> dom2.sn1 -> B)"
say "ping (the first packet waits for B's peer record and the end-to-end handshake):"
in_ns hA ping -c 4 -i 0.3 -W 2 10.2.0.2 2>&1 | tail -3 | indent
in_ns hA ping -c 2 -i 0.2 -W 2 10.2.0.2 >/dev/null 2>&1
check "ping A -> B" $? ""
marker="IE-DEMO-MARK-$$-$RANDOM$RANDOM"
mkdir -p "$IE_WORK/www"
{ echo "<html><body><h1>Hello from host B over InterEdge</h1><pre>"
  for _ in $(seq 1000); do echo "$marker"; done
  echo "</pre></body></html>"; } >"$IE_WORK/www/index.html"
spawn http hB python3 -m http.server 8080 --bind 10.2.0.2 --directory "$IE_WORK/www"
wait_for 10 "http.server on B" in_ns hB python3 -c 'import socket; socket.create_connection(("10.2.0.2", 8080), 1)'
capture_start hA hA eth0 udp
say "curl http://10.2.0.2:8080/ from A (python3 -m http.server on B):"
in_ns hA curl -sS --max-time 10 -o "$IE_WORK/page.html" -w 'HTTP %{http_code}, %{size_download} bytes in %{time_total} s\n' \
  http://10.2.0.2:8080/index.html 2>&1 | indent
head -1 "$IE_WORK/page.html" | indent
expect_eq "the page arrived whole" "$(grep -c "$marker" "$IE_WORK/page.html")" 1000
capture_stop hA 21  # the page is more than 20 datagrams (lib.sh: waits for the file)
found="$(grep -a -c -- "$marker" "$IE_WORK/hA.pcap")"
captured="$(capture_count hA)"
say "tcpdump on A's link during the fetch: $captured UDP datagrams (ILP to dom1.sn2), the page's"
say "marker found in them $found times: sealed hop by hop (PSP) and end to end (A<->B session)."
expect_gt "datagrams captured on A's link" "$captured" 20
expect_eq "no plaintext on A's link" "$found" 0
say "iperf3 A -> B, 3 s (TCP):"
spawn iperf3-B hB iperf3 -s -B 10.2.0.2 -1
sleep 0.5
in_ns hA iperf3 -c 10.2.0.2 -t 3 -f m 2>&1 | grep -E 'sender|receiver' | indent
check "iperf3 A -> B" "${PIPESTATUS[0]}" ""
say "curl again, this socket steered explicitly by the shim with the ip-via-sn bundle:"
say "  iectl invoke ip-via-sn -- curl http://10.2.0.2:8080/"
in_ns hA "$IECTL" --socket "$IE_WORK/ied-A.sock" invoke ip-via-sn -- curl -sS --max-time 10 \
  -o /dev/null -w 'HTTP %{http_code}, %{size_download} bytes\n' http://10.2.0.2:8080/index.html 2>&1 | indent
check "curl under iectl invoke" "${PIPESTATUS[0]}" ""

say "out of band: B asks its first-hop SN to drop what comes from A's /24, then lifts it:"
say "  iectl service enable block --direction in --prefix 10.1.0.0/24   (on B)"
in_ns hB "$IECTL" --socket "$IE_WORK/ied-B.sock" service enable block --direction in \
  --prefix 10.1.0.0/24 2>&1 | indent
check "iectl service enable (dom2.sn1 acknowledged)" "${PIPESTATUS[0]}" ""
in_ns hA ping -c 2 -i 0.2 -W 1 10.2.0.2 >/dev/null 2>&1
expect_eq "A's pings to B now stop at dom2.sn1" "$?" 1
say "   A's pings to B: no answer; dom2.sn1 dropped $(sn_counter dom2.sn1 "j['module_counters'].get('block.dropped', 0)") packets (block.dropped)"
in_ns hB "$IECTL" --socket "$IE_WORK/ied-B.sock" service disable --all 2>&1 | indent
check "iectl service disable --all" "${PIPESTATUS[0]}" ""
wait_for 10 "A reaches B again" in_ns hA ping -c 1 -W 1 10.2.0.2
say "   lifted: A's pings reach B again"

step "step 5: what the daemons and SNs saw"
say "-- iectl peers on A (end-to-end sessions):"
iectl_h A peers
say "-- iectl flows on A:"
iectl_h A flows
say "-- iectl peers on B (B learned A's key from its handshake and A's SN from its packets):"
iectl_h B peers
say "-- iesn pipes on dom1.sn1 (the gateway of dom1 relays everything between the edomains):"
"$IESN" pipes --socket "$IE_WORK/dom1.sn1.sock" 2>&1 | indent
rx="$(sn_json dom2.sn1 pipes | jget - "sum(p['rx_packets'] for p in j['pipes'] if p['kind']=='sn')")"
expect_gt "dom2.sn1 received the traffic from the other edomain" "$rx" 1000

if [ "$KEEP" = 1 ] && [ "$IE_FAILED" -eq 0 ]; then
  step "--keep: everything stays up until Ctrl-C. Try:"
  say "ip netns exec ${IE_NS[hA]} curl http://10.2.0.2:8080/"
  say "ip netns exec ${IE_NS[hA]} $IECTL --socket $IE_WORK/ied-A.sock status   # also: sn list, peers, flows"
  say "ip netns exec ${IE_NS[hA]} ping 10.2.0.2"
  say "$IESN counters --socket $IE_WORK/dom1.sn1.sock"
  say "configs and logs: $IE_WORK/*.toml, *.err"
  sleep 86400 &
  IE_PID["keep"]=$!
  wait "${IE_PID["keep"]}"
fi

step "step 6: tearing down (namespaces, processes, work directory)"
ie_finish
