#!/usr/bin/env bash
# ied SN discovery at an anycast address (issue 4): real kernel anycast, the host's route
# decides which SN answers.
#   dom1.sn2 and dom1.sn1 both have 192.0.2.1/32 on their loopback and listen on 0.0.0.0:1000;
#   each advertises its unicast endpoint ([sn] advertise). Host A has a link to each
#   (eth0 -> dom1.sn2 172.16.1.1, eth1 -> dom1.sn1 172.16.4.1) and a /32 route for the anycast
#   address through one of them. A's ied knows no SN: discovery.order = ["anycast"],
#   anycast = ["192.0.2.1:1000"], re-probed every 3 s. B runs from static configuration
#   behind dom2.sn1.
# 1. Route via dom1.sn2: ied's XX probe reaches dom1.sn2, learns its name and unicast endpoint
#    over the authenticated session, closes it, pins the key and associates by IK at
#    172.16.1.1:1000 (sn list: source anycast, pinned; one host pipe on dom1.sn2: the probe's
#    session is gone); ping A -> B goes through dom1.sn2.
# 2. Route moved to dom1.sn1: within the re-probe period + the probe timeout ied finds
#    dom1.sn1, associates at 172.16.4.1:1000 while dom1.sn2 (retiring) still carries the
#    traffic, switches to dom1.sn1 once it is ready (make before break: the log says
#    "dom1.sn2 -> dom1.sn1", not a gap without a first hop), then drops dom1.sn2 (its host
#    pipe goes), and ping goes through dom1.sn1.
# 3. An impostor: dom1.sn2's iesn replaced by one that calls itself dom1.sn1 with another key;
#    the route moved back to it. ied refuses it (sn list: a failed dom1.sn1 with the
#    impostor's key, the error names the pin and --repin; status names the responder), the
#    pin is unchanged, the real dom1.sn1 stays active and ping still goes through it; the
#    impostor keeps no host pipe.
# 4. `iectl sn use dom1.sn1 --repin` pins the impostor's key: it becomes the active dom1.sn1
#    (associated at its advertised endpoint), the candidate under the old key is refused now
#    and loses its association.
# 5. An anycast address per IESP: A restarts with discovery.anycast (default IESP, routed to
#    dom1.sn2 again) and an [[iesp]] "two" whose anycast address lives on dom1.sn1 only;
#    each IESP finds its own SN there, and a policy's pings to B go through dom1.sn1.
source "$(dirname "$0")/lib.sh"
ie_init "$@"
source "$(dirname "$0")/ied_lib.sh"

ANYCAST=192.0.2.1
INTERVAL=3
declare -A ADVERTISE=([dom1.sn2]=172.16.1.1 [dom1.sn1]=172.16.4.1)
sn_config_hook() {  # NAME FILE: the SNs A can reach advertise their unicast endpoint
  [ -n "${ADVERTISE[$1]:-}" ] || return 0
  sed -i "/^listen = /a advertise = \"${ADVERTISE[$1]}:$IE_PORT\"" "$2"
}
ied_config_hook() {  # A: anycast discovery only
  [ "$1" = A ] || return 0
  cat >"$IE_WORK/ied-A.toml" <<EOF
[daemon]
state_dir = "$IE_WORK/ied-A.state"
socket = "$IE_WORK/ied-A.sock"
[tun]
name = "ie0"
[host]
addresses = ["${IE_HOST_INNER[A]}"]
prefixes = ["10.2.0.0/24"]
[timers]
keepalive_ms = 500
dead_after_ms = 2000
[discovery]
order = ["anycast"]
anycast = ["$ANYCAST:$IE_PORT"]
anycast_interval_s = $INTERVAL
[[peer]]
prefix = "10.2.0.0/24"
sn = "dom2.sn1"
key = "${IED_KEY[B]}"
EOF
  "$IED" --check-config "$IE_WORK/ied-A.toml" >"$IE_WORK/ied-A.check" 2>&1 ||
    die "ied --check-config: $(cat "$IE_WORK/ied-A.check")"
}

topo_up
link_add hA eth1 172.16.4.2/24 d1s1 hA2 172.16.4.1/24
for role in d1s2 d1s1; do in_ns "$role" ip addr add "$ANYCAST/32" dev lo; done
in_ns hA ip route add "$ANYCAST/32" via 172.16.1.1
ied_start B static

# ---- helpers ----
# A snapshot of A's sn list, one line per SN: name state source anycast endpoint key pinned
# error (empty fields as -).
sn_snap() {
  iectl_json A sn list | python3 -c '
import json, sys
for s in json.load(sys.stdin)["sns"]:
    f = [s["name"], s["state"], s["source"], s.get("anycast"), s["endpoint"], s["key"],
         s["pinned"], s.get("error", "")]
    print("\t".join("-" if v in ("", None) else str(v).lower() if isinstance(v, bool) else str(v)
                    for v in f))' >"$IE_WORK/snap" 2>/dev/null
}
# Field N (2 state, 3 source, 4 anycast, 5 endpoint, 6 key, 7 pinned, 8 error) of the SN
# NAME in state STATE in the last snapshot.
snf() { awk -F'\t' -v n="$1" -v s="$2" -v f="$3" '$1 == n && $2 == s {print $f}' "$IE_WORK/snap"; }
has_state() { sn_snap; [ -n "$(snf "$1" "$2" 1)" ]; }
anycast_error() { iectl_json A status | jget - "j['discovery']['anycast'][0]['error'] or ''"; }

# ---- 1. the route leads to dom1.sn2 ----
ied_start A anycast
active_is dom1.sn2
check "A found dom1.sn2 at the anycast address and uses it" $? "active: $(active_sn)"
sn_snap
expect_eq "sn list: only dom1.sn2" "$(cut -f1 "$IE_WORK/snap" | xargs)" "dom1.sn2"
expect_eq "dom1.sn2: source, anycast address, unicast endpoint, pinned" \
  "$(snf dom1.sn2 active 3) $(snf dom1.sn2 active 4) $(snf dom1.sn2 active 5) $(snf dom1.sn2 active 7)" \
  "anycast $ANYCAST:$IE_PORT 172.16.1.1:$IE_PORT true"
expect_eq "dom1.sn2's key as its handshake proved it" "$(snf dom1.sn2 active 6)" \
  "${IE_SNKEY[dom1.sn2]}"
expect_eq "dom1.sn2's key pinned on first use" "$(pin_of dom1.sn2)" "${IE_SNKEY[dom1.sn2]}"
expect_eq "status: the anycast probe answered" "$(anycast_error)" ""
wait_for 5 "the probe session closed (one host pipe on dom1.sn2)" host_pipes_are dom1.sn2 1
rx0="$(host_rx dom1.sn2)"
ping_ok
check "ping A -> B through dom1.sn2" $? ""
expect_ge "dom1.sn2 carried the pings" "$(($(host_rx dom1.sn2) - rx0))" 2

# ---- 2. the route moves to dom1.sn1 ----
log "anycast route moved to dom1.sn1"
t0="$(date +%s%3N)"
in_ns hA ip route replace "$ANYCAST/32" via 172.16.4.1
wait_for 15 "A on dom1.sn1" active_is dom1.sn1
took=$(($(date +%s%3N) - t0))
log "found and used dom1.sn1 $took ms after the route moved"
expect_le "within the re-probe period + probe timeout + 2 s (ms)" "$took" $(((INTERVAL + 3 + 2) * 1000))
moves="$(grep -E 'first-hop SN|retir' "$IE_WORK/ied-A.err" | sed 's/.*\] //' | tail -n 4 | tr '\n' ';')"
grep -q "SN dom1.sn2 (172.16.1.1:$IE_PORT) retiring" "$IE_WORK/ied-A.err"
check "make before break: dom1.sn2 kept as the first hop while dom1.sn1 associates" $? "$moves"
grep -q "first-hop SN: dom1.sn2 -> dom1.sn1" "$IE_WORK/ied-A.err"
check "make before break: A switched from dom1.sn2 straight to a ready dom1.sn1" $? "$moves"
grep -q "SN dom1.sn2 (172.16.1.1:$IE_PORT) retired" "$IE_WORK/ied-A.err"
check "make before break: dom1.sn2 retired after the switch" $? "$moves"
sn_snap
expect_eq "sn list: only dom1.sn1 now" "$(cut -f1 "$IE_WORK/snap" | xargs)" "dom1.sn1"
expect_eq "dom1.sn1: source, unicast endpoint, key" \
  "$(snf dom1.sn1 active 3) $(snf dom1.sn1 active 5) $(snf dom1.sn1 active 6)" \
  "anycast 172.16.4.1:$IE_PORT ${IE_SNKEY[dom1.sn1]}"
expect_eq "dom1.sn1's key pinned" "$(pin_of dom1.sn1)" "${IE_SNKEY[dom1.sn1]}"
wait_for 5 "A's association with dom1.sn2 closed" host_pipes_are dom1.sn2 0
wait_for 10 "ping through dom1.sn1" ping_ok
rx0="$(host_rx dom1.sn1)"
ping_ok
check "ping A -> B through dom1.sn1" $? ""
expect_ge "dom1.sn1 carried the pings" "$(($(host_rx dom1.sn1) - rx0))" 2

# ---- 3. an impostor under the pinned name ----
log "dom1.sn2's iesn replaced by an impostor calling itself dom1.sn1 (another key)"
stop dom1.sn2 || true
imp_key="$("$IESN" genkey "$IE_WORK/imp.key")" || die "iesn genkey"
cat >"$IE_WORK/imp.toml" <<EOF
[sn]
name = "dom1.sn1"
listen = "0.0.0.0:$IE_PORT"
advertise = "172.16.1.1:$IE_PORT"
workers = 1
private_key_file = "$IE_WORK/imp.key"
control_socket = "$IE_WORK/imp.sock"
EOF
"$IESN" check-config "$IE_WORK/imp.toml" >"$IE_WORK/imp.check" 2>&1 || die "impostor config"
spawn imp d1s2 "$IESN" run --config "$IE_WORK/imp.toml" --log-level debug
wait_for 10 "the impostor's control socket" "$IESN" status --socket "$IE_WORK/imp.sock"
in_ns hA ip route replace "$ANYCAST/32" via 172.16.1.1
wait_for $((INTERVAL + 8)) "ied to refuse the impostor" has_state dom1.sn1 failed
err="$(snf dom1.sn1 failed 8)"
case "$err" in *"pinned key"*"--repin"*) ok=0 ;; *) ok=1 ;; esac
check "the refusal names the pin and --repin" "$ok" "$err"
expect_eq "sn list shows the impostor's (refused) key" "$(snf dom1.sn1 failed 6)" "$imp_key"
expect_eq "the real dom1.sn1 stays active under its key" "$(snf dom1.sn1 active 6)" \
  "${IE_SNKEY[dom1.sn1]}"
case "$(anycast_error)" in "responder dom1.sn1: key differs"*) ok=0 ;; *) ok=1 ;; esac
check "status names the refused responder" "$ok" "$(anycast_error)"
expect_eq "the pin is unchanged" "$(pin_of dom1.sn1)" "${IE_SNKEY[dom1.sn1]}"
expect_eq "traffic stays on dom1.sn1" "$(active_sn)" "dom1.sn1"
rx0="$(host_rx dom1.sn1)"
ping_ok
check "ping A -> B through dom1.sn1 while the impostor answers the anycast address" $? ""
expect_ge "dom1.sn1 carried the pings" "$(($(host_rx dom1.sn1) - rx0))" 2
wait_for 5 "the impostor keeps no host pipe" host_pipes_are imp 0

# ---- 4. the operator re-pins the name to the new key ----
log "re-pinning dom1.sn1 to the key found at the anycast address"
in_ns hA "$IECTL" --socket "$IE_WORK/ied-A.sock" sn use dom1.sn1 --repin >"$IE_WORK/repin.out" 2>&1
repin_rc=$?
[ "$repin_rc" -eq 0 ] || grep -q "(busy)" "$IE_WORK/repin.out"
check "iectl sn use dom1.sn1 --repin accepted" $? "rc $repin_rc: $(cat "$IE_WORK/repin.out")"
expect_eq "the pin is now the new key" "$(pin_of dom1.sn1)" "$imp_key"
wait_for 10 "A on the re-pinned dom1.sn1" iectl_json A sn use dom1.sn1
wait_for 5 "sn list after the re-pin" has_state dom1.sn1 active
expect_eq "active dom1.sn1 under the new key, at the endpoint it advertised" \
  "$(snf dom1.sn1 active 6) $(snf dom1.sn1 active 5)" "$imp_key 172.16.1.1:$IE_PORT"
expect_eq "the candidate under the old key is refused now" "$(snf dom1.sn1 failed 6)" \
  "${IE_SNKEY[dom1.sn1]}"
expect_eq "a host associated at the re-pinned SN" "$(host_pipes imp)" 1
wait_for 5 "A's association with the old-key dom1.sn1 closed" host_pipes_are dom1.sn1 0

# ---- 5. an anycast address per IESP ----
# The real dom1.sn2 back on d1s2 (192.0.2.1 routed there) and a second anycast address,
# 192.0.2.2, on dom1.sn1 only, routed via eth1. A restarts (its pins forgotten) with
# discovery.anycast for its default IESP and an [[iesp]] "two" whose anycast address is
# 192.0.2.2; a [[policy]] sends B's /24 through "two". Each IESP finds its own SN at its
# own address, and the pings to B go through dom1.sn1.
log "part 5: IESP default at $ANYCAST (dom1.sn2), IESP two at 192.0.2.2 (dom1.sn1)"
stop ied-A
stop imp || true
sn_start dom1.sn2
in_ns d1s1 ip addr add 192.0.2.2/32 dev lo
in_ns hA ip route add 192.0.2.2/32 via 172.16.4.1
in_ns hA ip route replace "$ANYCAST/32" via 172.16.1.1
# A keeps its identity (B's [[peer]] names its key) but forgets its pins (dom1.sn1 is pinned
# to the impostor's key since part 4).
python3 -c 'import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); db.execute("DELETE FROM sn_pin"); db.commit()' \
  "$IE_WORK/ied-A.state/state.db"
expect_eq "A's pins forgotten" "$(pin_of dom1.sn1)" ""
ied_config_hook A
cat >>"$IE_WORK/ied-A.toml" <<EOF
[[iesp]]
name = "two"
anycast = ["192.0.2.2:$IE_PORT"]
[[policy]]
prefix = "10.2.0.0/24"
iesp = "two"
EOF
in_ns hA "$IED" --check-config "$IE_WORK/ied-A.toml" >"$IE_WORK/ied-A.check" 2>&1
check "A's configuration with an [[iesp]] anycast passes --check-config" $? \
  "$(cat "$IE_WORK/ied-A.check")"
spawn ied-A hA "$IED" --config "$IE_WORK/ied-A.toml" --log-level debug
iesp_active() {  # IESP: its active SN in A's status
  iectl_json A status | jget - "[i['active'] or '' for i in j['iesps'] if i['name']=='$1'][0]"
}
both_found() { [ "$(iesp_active default)" = dom1.sn2 ] && [ "$(iesp_active two)" = dom1.sn1 ]; }
wait_for 15 "each IESP's SN found at its own anycast address" both_found
sn_snap
expect_eq "dom1.sn2: from anycast $ANYCAST, active" \
  "$(snf dom1.sn2 active 3) $(snf dom1.sn2 active 4)" "anycast $ANYCAST:$IE_PORT"
expect_eq "dom1.sn1: from anycast 192.0.2.2, active" \
  "$(snf dom1.sn1 active 3) $(snf dom1.sn1 active 4)" "anycast 192.0.2.2:$IE_PORT"
expect_eq "sn list: dom1.sn1 belongs to IESP two" \
  "$(iectl_json A sn list | jget - "[s['iesp'] for s in j['sns'] if s['name']=='dom1.sn1'][0]")" two
expect_eq "status: each anycast address with its IESP, both answered" \
  "$(iectl_json A status | jget - "[(a['address'], a['iesp'], a['error']) for a in j['discovery']['anycast']]")" \
  "[[\"$ANYCAST:$IE_PORT\", \"default\", null], [\"192.0.2.2:$IE_PORT\", \"two\", null]]"
wait_for 10 "ping A -> B" ping_ok
rx1="$(host_rx dom1.sn1)"
rx2="$(host_rx dom1.sn2)"
ping_ok
check "ping A -> B (policy: IESP two)" $? ""
expect_ge "dom1.sn1 (IESP two) carried the pings" "$(($(host_rx dom1.sn1) - rx1))" 2
expect_le "dom1.sn2 (the default IESP) did not" "$(($(host_rx dom1.sn2) - rx2))" 1
ie_finish
