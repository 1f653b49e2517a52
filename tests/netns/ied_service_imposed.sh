#!/usr/bin/env bash
# Imposed invocation (issue 5, mode 4): A's network's operator runs a pass-through SN
# (dom1.sn2) at its boundary that imposes an allow-list firewall (`passthrough` module) on
# all of A's traffic and then relays it, unchanged, to the next-hop SN dom1.sn1, where the
# services A invokes run. Real ied on A, B and C; real curl and ping.
#   allow list "ip 10.2.0.0/24": A <-> B (dom2) allowed; A <-> C (10.3.0.2, behind dom1.sn1)
#   denied both ways. Then a reload adds C's prefix and A reaches C.
# Checks: curl A -> B works through dom1.sn2 -> dom1.sn1 -> dom2.sn1; the pass-through SN ran
# no service of A's (its ip module saw nothing; dom1.sn1's did); pings A -> C and C -> A are
# dropped at the pass-through SN (passthrough.denied) and reach neither host; no plaintext of
# the page on the pass-through SN's uplink; after `iesn reload` with C's prefix allowed,
# A <-> C works.
source "$(dirname "$0")/lib.sh"
ie_init "$@"
source "$(dirname "$0")/ied_lib.sh"

topo_up --host-c --passthrough "ip 10.2.0.0/24"
ied_start B static
ied_start C static
ied_start A static
# C started before A, with A's key (ied_identities): C opens its own session to A.

counter() {  # SN KEY (module counter, 0 if absent)
  sn_json "$1" counters | jget - "j['module_counters'].get('$2', 0)"
}

# --- allowed: A -> B (curl of a page), through the pass-through SN ---
marker="interedge-imposed-marker-$RANDOM$RANDOM"
mkdir -p "$IE_WORK/www"
for _ in $(seq 1000); do echo "$marker"; done >"$IE_WORK/www/index.html"
spawn http hB python3 -m http.server 8080 --bind 10.2.0.2 --directory "$IE_WORK/www"
wait_for 10 "http.server on B" in_ns hB python3 -c 'import socket; socket.create_connection(("10.2.0.2", 8080), 1)'
# The pass-through SN's uplink (its bridge port) carries A's traffic to dom1.sn1.
capture_start pt d1s2 bb0 udp  # the pass-through SN's uplink
in_ns hA curl -sS --max-time 10 -o "$IE_WORK/curl.out" http://10.2.0.2:8080/index.html
check "curl A -> B through the pass-through SN" $? "exit status"
expect_eq "the page arrived whole" "$(grep -c "$marker" "$IE_WORK/curl.out" 2>/dev/null)" 1000
capture_stop pt 25  # the 37 KB page is at least 25 full-size datagrams
expect_gt "the uplink capture holds the transfer" "$(stat -c %s "$IE_WORK/pt.pcap" 2>/dev/null || echo 0)" 30000
if grep -a -q "$marker" "$IE_WORK/pt.pcap"; then found=1; else found=0; fi
expect_eq "no plaintext on the pass-through SN's uplink" "$found" 0

allowed="$(counter dom1.sn2 passthrough.allowed)"
expect_gt "the pass-through SN checked every packet (passthrough.allowed)" "$allowed" 20
expect_eq "the pass-through SN ran none of A's services (its ip module saw nothing)" \
  "$(counter dom1.sn2 ip.packets)" 0
expect_gt "the next-hop SN dom1.sn1 ran A's ip service" "$(counter dom1.sn1 ip.packets)" 0
expect_eq "nothing denied yet" "$(counter dom1.sn2 passthrough.denied)" 0

# --- denied: A -> C and C -> A (C's prefix is not on the list) ---
in_ns hA ping -c 3 -i 0.2 -W 1 10.3.0.2 >"$IE_WORK/ping-ac.out" 2>&1
expect_eq "ping A -> C gets no answer" "$?" 1
denied_ac="$(counter dom1.sn2 passthrough.denied)"
# (ied holds the pings until its end-to-end session with C is up: what the SN drops are the
# session's handshake attempts, so count > 0, not one per ping.)
expect_gt "A -> C dropped at the pass-through SN" "$denied_ac" 0
in_ns hC ping -c 3 -i 0.2 -W 1 10.1.0.2 >"$IE_WORK/ping-ca.out" 2>&1
expect_eq "ping C -> A gets no answer" "$?" 1
expect_gt "C sent to A through its SN (sn_tx_packets)" "$(iectl_json C status | jget - "j['counters']['sn_tx_packets']")" 0
expect_gt "C -> A dropped at the pass-through SN" "$(counter dom1.sn2 passthrough.denied)" \
  "$denied_ac"
tx_c="$(sn_json dom1.sn1 pipes | jget - "sum(p['tx_packets'] for p in j['pipes'] if '10.3.0.2' in p['addrs'])")"
expect_eq "nothing from A reached C's pipe" "$tx_c" 0

# --- the operator widens the list: reload, and A reaches C ---
sed -i 's|^allow = .*|allow = "ip 10.2.0.0/24, ip 10.3.0.0/24"|' "$IE_WORK/dom1.sn2.toml"
"$IESN" reload --socket "$IE_WORK/dom1.sn2.sock" >"$IE_WORK/reload.out" 2>&1
check "iesn reload of the allow list" $? "$(cat "$IE_WORK/reload.out")"
wait_for 10 "A -> C allowed after the reload" in_ns hA ping -c 1 -W 1 10.3.0.2
in_ns hC ping -c 2 -i 0.2 -W 2 10.1.0.2 >"$IE_WORK/ping-ca2.out" 2>&1
check "ping C -> A after the reload" $? "$(tail -2 "$IE_WORK/ping-ca2.out" | head -1)"
# A list that does not parse is refused; the running one stays.
sed -i 's|^allow = .*|allow = "ip 10.3.0.1/24"|' "$IE_WORK/dom1.sn2.toml"
"$IESN" reload --socket "$IE_WORK/dom1.sn2.sock" >/dev/null 2>&1 || true
in_ns hA ping -c 2 -i 0.2 -W 2 10.3.0.2 >"$IE_WORK/ping-ac3.out" 2>&1
check "a bad allow list leaves the running one (A -> C still allowed)" $? "$(tail -2 "$IE_WORK/ping-ac3.out" | head -1)"
grep -q "reload refused, keeping the running allow list" "$IE_WORK/dom1.sn2.err"
check "the refused allow list is logged" $? "dom1.sn2.err"

ie_finish
