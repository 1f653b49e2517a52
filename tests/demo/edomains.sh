#!/usr/bin/env bash
# The edomains demo: a whole local InterEdge in network namespaces (the topology of the SN
# netns tests, tests/netns/lib.sh): three reference SNs (iesn) in two edomains, host A behind
# dom1.sn2 and host B behind dom2.sn1 (simulated by ie-testhost; the real host daemon comes
# later). A sends packets to B across both edomains, B echoes them; the script prints every
# step, the hosts' summaries, the SNs' pipes and counters and a tcpdump of the backbone that
# shows the payload never crosses it in clear. Run by tests/demo.sh for people and by ctest
# (label netns: it needs root) for CI; exits non-zero unless every check passed.
#
#   tests/demo/edomains.sh --iesn PATH --testhost PATH [--packets N] [--keep]
#
# --keep: leave everything up (B keeps echoing) until Ctrl-C, printing commands to try.
# Everything (namespaces, processes, files) is removed on exit, also on failure and Ctrl-C.
set -u -o pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
N=200
KEEP=0
lib_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --packets) N="$2"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h | --help)
      sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *) lib_args+=("$1"); shift ;;
  esac
done
if ! [[ "$N" =~ ^[0-9]+$ ]] || [ "$N" -lt 1 ] || [ "$N" -gt 100000 ]; then
  echo "edomains.sh: --packets wants a number from 1 to 100000, got '$N'" >&2
  exit 2
fi
# Sending takes N/RATE s; the time limits below leave room for that.
RATE=500
SEND_S=$(((N + RATE - 1) / RATE))
if [ "$KEEP" = 1 ]; then
  IE_NETNS_LIMIT=0  # no time limit: up until Ctrl-C
else
  IE_NETNS_LIMIT="${IE_NETNS_LIMIT:-$((75 + SEND_S))}"
fi
# shellcheck source=tests/netns/lib.sh
source "$here/../netns/lib.sh"

step() { printf '\n== %s\n' "$*"; }
say() { printf '   %s\n' "$*"; }
indent() { sed 's/^/   | /'; }

# shellcheck disable=SC2034  # read by lib.sh's clean-up
IE_CLEANUP_SUMMARY=1  # lib.sh: say what the clean-up removed
ie_init "${lib_args[@]}"
if [ "$KEEP" = 1 ]; then  # Ctrl-C ends --keep normally; the EXIT trap tears down
  trap 'printf "\n"; log "Ctrl-C: tearing down"; exit 0' INT TERM
fi

# ---- step 2: the topology ---------------------------------------------------------------
step "step 2: bringing up a local InterEdge in network namespaces"
cat <<'EOF'
   host A 10.1.0.2                                                host B 10.2.0.2
   (ie-testhost)                                                  (ie-testhost)
        |                                                               |
   +----------+   backbone   +----------+       backbone          +----------+
   | dom1.sn2 |--------------| dom1.sn1 |-------------------------| dom2.sn1 |
   +----------+  (bridge)    +----------+                         +----------+
   edomain dom1              gateway of dom1                      gateway of dom2 (edomain dom2)

   One namespace per box plus one (bb) for the backbone bridge 192.168.100.0/24; each host
   reaches only its own SN (a veth link 172.16.x.0/24). Every SN gets an X25519 key
   (iesn genkey), a config file (checked with iesn check-config) and runs as
   `iesn run` with 2 workers on UDP port 1000. The SNs then associate (Noise IK) and
   hand each other PSP keys: SN-SN pipes dom1.sn2-dom1.sn1 and dom1.sn1-dom2.sn1.
EOF
start_s=$SECONDS
topo_up
say "up in $((SECONDS - start_s)) s; namespaces:"
for role in bb d1s2 d1s1 d2s1 hA hB; do say "  ${IE_NS[$role]}"; done
say "SN public keys (iesn genkey):"
for sn in dom1.sn1 dom1.sn2 dom2.sn1; do say "  $sn  ${IE_SNKEY[$sn]}"; done

# ---- step 3: pipes and traffic ----------------------------------------------------------
MARKER="IE-DEMO-MARK-$$-$RANDOM$RANDOM"
step "step 3: hosts, pipes and traffic"
say "host B associates with dom2.sn1 (Noise IK to the SN's public key), registers 10.2.0.2"
say "with the SN's control service and waits to echo every packet it receives."
host_start B --echo --reply-sn dom1.sn2 --expect "$N" --marker "$MARKER" \
  --duration $((20 + SEND_S))
for sn in dom1.sn2 dom1.sn1 dom2.sn1; do
  say "-- iesn pipes on $sn (ip netns exec ${IE_NS[${IE_SN_ROLE[$sn]}]} iesn pipes --socket ...):"
  "$IESN" pipes --socket "$IE_WORK/$sn.sock" 2>&1 | indent
done

# tcpdump on the backbone bridge: every packet between the SNs crosses it.
capture_start backbone bb br0 udp

say ""
say "host A (10.1.0.2, behind dom1.sn2) sends $N packets to B (10.2.0.2, behind dom2.sn1),"
say "$RATE per second on 4 flows, service ip, each carrying the marker '$MARKER';"
say "path: A -> dom1.sn2 -> dom1.sn1 -> dom2.sn1 -> B, and B's echoes the same way back."
host_spawn A --to 10.2.0.2 --dest-sn dom2.sn1 --count "$N" --rate "$RATE" --flows 4 \
  --expect "$N" --marker "$MARKER" --duration $((15 + SEND_S))
wait_exit A $((20 + SEND_S))
check "A exits 0 (associated, registered, every echo back)" $? "exit status"
wait_exit B 10
check "B exits 0 (received every packet)" $? "exit status"
capture_stop backbone $((4 * N))  # every packet in the capture file (lib.sh)

A="$(host_json A)" B="$(host_json B)"
[ -s "$A" ] || die "host A wrote no summary ($A)"
[ -s "$B" ] || die "host B wrote no summary ($B)"
say ""
say "test host summaries (ie-testhost --json, abridged):"
python3 - "$A" "$B" <<'EOF' | indent
import json, sys
a = json.load(open(sys.argv[1]))
b = json.load(open(sys.argv[2]))
def ms(us):
    return "-" if us is None else "%.2f ms" % (us / 1000.0)
echo = a["per_source"].get("10.2.0.2", {})
print("host A: ready after %s ms; sent %d, echoes back %d (unique %d), lost %d, duplicates %d"
      % (a["ready_ms"], a["sent"], a["received"], echo.get("unique", 0), a["lost"],
         a["duplicates"]))
print("        RTT A->B->A: first %s, last %s, max %s"
      % (ms(a["rtt_first_us"]), ms(a["rtt_last_us"]), ms(a["rtt_max_us"])))
data = b["per_source"].get("10.1.0.2", {})
print("host B: received %d from 10.1.0.2 (unique %d, lost %d, out of order %d), echoed %d,"
      % (b["received"], data.get("unique", 0), data.get("lost", 0), b["out_of_order"],
         b["echoed"]))
print("        packets without the marker after decryption: %d" % b["marker_mismatch"])
EOF
# One python3 per summary (they are slow to start on a loaded machine).
read -r a_sent a_echoes a_lost < <(jget "$A" "'%s %s %s' % (j['sent'], \
  j['per_source'].get('10.2.0.2', {}).get('unique', 0), j['lost'])")
read -r b_unique b_echoed b_nomarker < <(jget "$B" "'%s %s %s' % ( \
  j['per_source'].get('10.1.0.2', {}).get('unique', 0), j['echoed'], j['marker_mismatch'])")
expect_eq "A sent" "$a_sent" "$N"
expect_eq "B received from A (unique)" "$b_unique" "$N"
expect_eq "B echoed" "$b_echoed" "$N"
expect_eq "A echoes from B (unique)" "$a_echoes" "$N"
expect_eq "A lost" "$a_lost" 0
expect_eq "B packets without the marker" "$b_nomarker" 0

# ---- step 4: counters and the wire ------------------------------------------------------
step "step 4: what the SNs did (iesn counters) and what the wire shows (tcpdump)"
say "Each packet crosses all three SNs each way, so each SN decided 2 x $N = $((2 * N))"
say "packets: the first few of a flow go to the ip module (cache misses), which installs a"
say "decision-cache entry; the rest are forwarded from the cache (hits). Drops are counted"
say "by reason (drop.*): a healthy run drops nothing, so none should be listed."
for sn in dom1.sn2 dom1.sn1 dom2.sn1; do
  say "-- iesn counters on $sn (the zero ones left out; W0, W1: per worker):"
  "$IESN" counters --socket "$IE_WORK/$sn.sock" 2>&1 |
    awk 'NR == 1 || $1 ~ /^cache\.(hits|misses)$/ || ($2 != "0" && $1 !~ /^cache\.capacity/)' |
    indent
  read -r hits misses drops < <(sn_counter "$sn" \
    "'%d %d %d' % (j['cache']['hits'], j['cache']['misses'], sum(j['drops'].values()))")
  say "   => $sn: $((hits + misses)) packets decided, $hits cache hits, $misses misses, $drops drops"
  expect_eq "$sn packets decided" $((hits + misses)) $((2 * N))
  expect_ge "$sn cache hits" "$hits" 1
  expect_eq "$sn drops" "$drops" 0
done

say "-- iesn pipes on dom1.sn1 after the traffic (the gateway relays every packet):"
"$IESN" pipes --socket "$IE_WORK/dom1.sn1.sock" 2>&1 | indent

pcap="$IE_WORK/backbone.pcap"
captured="$(capture_count backbone)"
marker_hits="$(grep -a -o -- "$MARKER" "$pcap" | wc -l)"
say ""
say "-- tcpdump on the backbone bridge br0 (namespace ${IE_NS[bb]}), first 4 packets:"
tcpdump -r "$pcap" -n -c 4 2>/dev/null | indent
say "   => backbone: $captured UDP packets captured, marker '$MARKER' found $marker_hits times"
say "      (at least 4 x $N: every packet and every echo crosses two backbone hops; each is"
say "      sealed with AES-256-GCM under PSP by the SN that sends it, so no payload is in clear)"
expect_ge "backbone packets captured" "$captured" $((4 * N))
expect_eq "backbone marker occurrences" "$marker_hits" 0

# Control: the same search finds the marker in a datagram sent in clear over the backbone.
capture_start control bb br0 udp
in_ns d1s2 bash -c "printf '%s' '$MARKER' > /dev/udp/${IE_SN_BB[dom1.sn1]}/9" || true
capture_stop control 1
control="$(grep -a -o -- "$MARKER" "$IE_WORK/control.pcap" | wc -l)"
say "   control: one plain UDP datagram with the marker sent over the backbone: found $control time(s)"
expect_eq "control capture: marker occurrences" "$control" 1

# ---- --keep: leave it up ------------------------------------------------------------------
if [ "$KEEP" = 1 ] && [ "$IE_FAILED" -eq 0 ]; then
  host_start B --echo --reply-sn dom1.sn2 --duration 86400
  step "--keep: everything stays up until Ctrl-C (host B echoes whatever reaches it). Try:"
  for sn in dom1.sn2 dom1.sn1 dom2.sn1; do
    ns="${IE_NS[${IE_SN_ROLE[$sn]}]}"
    say "ip netns exec $ns $IESN status --socket $IE_WORK/$sn.sock    # $sn"
  done
  say "  (also: pipes, counters, modules; add --json for JSON)"
  say "ip netns exec ${IE_NS[hA]} $TESTHOST --sn ${IE_HOST_GW[A]}:$IE_PORT \\"
  say "    --sn-key ${IE_SNKEY[dom1.sn2]} --addr 10.1.0.2 --bind ${IE_HOST_OUTER[A]}:0 \\"
  say "    --to 10.2.0.2 --dest-sn dom2.sn1 --count 10 --expect 10 --duration 10   # A -> B again"
  say "ip netns exec ${IE_NS[bb]} tcpdump -i br0 -n udp    # watch the backbone"
  say "SN configs and logs: $IE_WORK/*.toml, *.err"
  sleep 86400 &
  IE_PID["keep"]=$!
  wait "${IE_PID["keep"]}"
fi

step "step 5: tearing down (namespaces, processes, work directory)"
ie_finish
