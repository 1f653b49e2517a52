#!/usr/bin/env bash
# SN netns test f: no plaintext on any link (topology: lib.sh).
#   tcpdump on every link (A's, B's and the backbone bridge) while A sends 300 packets whose
#   payload carries a marker unique to this run, to B across both edomains, and B echoes
#   them. The marker never appears in any capture, while each capture holds the traffic
#   (at least 300 packets) and B saw the marker in every packet it decrypted. A control
#   capture of one plain UDP datagram carrying the marker shows the method detects it.
# shellcheck disable=SC2119  # topo_up without options
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
ie_init "$@"
topo_up

N=300
MARKER="IE-PLAINTEXT-MARK-$$-$RANDOM$RANDOM"
count_marker() { grep -a -o -- "$MARKER" "$1" | wc -l; }

capture_start linkA hA eth0 udp
capture_start linkB hB eth0 udp
capture_start backbone bb br0 udp
host_start B --echo --reply-sn dom1.sn2 --expect "$N" --marker "$MARKER" --duration 30
host_spawn A --to 10.2.0.2 --dest-sn dom2.sn1 --count "$N" \
  --rate 500 --flows 2 --expect "$N" --marker "$MARKER" --duration 20
wait_exit A 25
check "A exits 0 (every echo back)" $? "exit status"
wait_exit B 10
check "B exits 0 (received every packet)" $? "exit status"
for c in linkA linkB backbone; do capture_stop "$c" "$N"; done

B="$(host_json B)"
expect_eq "B received (unique)" "$(jget "$B" "j['unique']")" "$N"
expect_eq "B packets without the marker" "$(jget "$B" "j['marker_mismatch']")" 0
for c in linkA linkB backbone; do
  expect_ge "$c: packets captured" "$(capture_count "$c")" "$N"
  expect_eq "$c: marker occurrences" "$(count_marker "$IE_WORK/$c.pcap")" 0
done

# Control: the same capture and search on a plain datagram carrying the marker.
capture_start control hA eth0 udp
in_ns hA bash -c "printf '%s' '$MARKER' > /dev/udp/${IE_HOST_GW[A]}/9" || true
capture_stop control 1
expect_eq "control capture: marker occurrences" "$(count_marker "$IE_WORK/control.pcap")" 1
ie_finish
