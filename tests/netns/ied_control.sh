#!/usr/bin/env bash
# ied's control socket under abuse (issue 4): one real ied in a namespace of its own (its
# only SN is configured at an address that never answers; no topology, no SNs), then
# ied_control_cases.py sends it over 200 malformed or abusive inputs — bad JSON, wrong
# envelopes, wrong parameter types for every method that takes some, oversized frames,
# admin methods from user nobody, slow and half-closed clients, more connections than the
# server allows — and checks that each gets a clear error (or the documented close) while a
# status request keeps working. Then: ied's memory and descriptors did not grow, and it
# exits 0 on SIGTERM, removing its socket and TUN.
source "$(dirname "$0")/lib.sh"
ie_init "$@"
source "$(dirname "$0")/ied_lib.sh"

for tool in setpriv getent; do
  command -v "$tool" >/dev/null || die "missing tool: $tool"
done
getent group staff >/dev/null || die "group staff missing (Debian's base-passwd has it)"

ns_add h
# The host's address on a veth whose peer (in the same namespace) has no address: the SN's
# address is routed there and never answers.
in_ns h ip link add d0 type veth peer name d1 || die "veth d0-d1"
in_ns h ip addr add 10.9.0.1/24 dev d0
in_ns h ip link set d0 up
in_ns h ip link set d1 up
in_ns h ip route add 192.0.2.0/24 dev d0
sn_key="$("$IESN" genkey "$IE_WORK/sn.key")" || die "iesn genkey"

# User nobody must reach the socket (mode 0666) to be refused by credentials, not by the
# file system: the work directory is traversable, the socket's directory readable.
chmod 0711 "$IE_WORK"
mkdir -m 0755 "$IE_WORK/run"
sock="$IE_WORK/run/ied.sock"
cfg="$IE_WORK/ied.toml"
cat >"$cfg" <<EOF
[daemon]
state_dir = "$IE_WORK/state"
socket = "$sock"
admin_group = "staff"

[tun]
name = "ie0"

[host]
addresses = ["10.9.0.1"]
prefixes = ["10.8.0.0/24"]

[[sn]]
name = "dom9.sn1"
endpoint = "192.0.2.1:1000"
key = "$sn_key"
EOF
"$IED" --check-config "$cfg" >"$IE_WORK/check.out" 2>&1 || {
  cat "$IE_WORK/check.out" >&2
  die "ied --check-config $cfg"
}

spawn ied h "$IED" --config "$cfg" --log-level info
wait_for 15 "ied's control socket" in_ns h "$IECTL" --socket "$sock" status
pid="${IE_PID[ied]}"
expect_eq "socket mode" "$(stat -c %a "$sock")" 666
setpriv --reuid=nobody --regid=nogroup --clear-groups "$IECTL" --socket "$sock" status \
  >/dev/null 2>"$IE_WORK/nobody-status.err"
check "iectl status works as nobody" $? "$(head -c 200 "$IE_WORK/nobody-status.err")"

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$pid/status"; }
fds() { find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 | wc -l; }
rss_before="$(rss_kb)"
fds_before="$(fds)"

# Two passes: the first shows every case answered as documented; the second, against the
# warmed-up daemon, shows nothing accumulates (the allocator may keep some of the first
# pass's large buffers, a leak grows again). Under AddressSanitizer RSS says nothing (its
# quarantine holds freed memory) and time is short: one pass, and LeakSanitizer checks
# at ied's exit instead (a leak makes the exit status non-zero).
asan=0
ldd "$IED" 2>/dev/null | grep -q libasan && asan=1
run_cases() {  # PASS [ARGS...]
  local pass="$1"
  shift
  in_ns h python3 "$(dirname "$0")/ied_control_cases.py" --socket "$sock" --work "$IE_WORK" \
    --sn dom9.sn1 --config "$cfg" "$@" >"$IE_WORK/cases-$pass.out" 2>&1
  local rc=$?
  grep -E '^(FAIL|XFAIL|XPASS|the daemon)' "$IE_WORK/cases-$pass.out" | cut -c1-400 >&2
  summary="$(tail -n 1 "$IE_WORK/cases-$pass.out")"
  log "pass $pass: $summary"
  check "pass $pass: every case answered as documented, daemon up throughout" "$rc" "$summary"
}
run_cases 1
expect_ge "number of cases" "$(awk '{print $1}' <<<"$summary")" 200
rss_mid="$(rss_kb)"
# The second pass skips the cases that wait ~11 s for the server's line and backlog
# timeouts (slow/...): pass 1 showed them, and the test's time is limited.
[ "$asan" = 1 ] || run_cases 2 --skip-slow

alive ied
check "ied still running" $? "pid $pid"
sleep 0.3  # closes of the checker's last connections reach the loop
rss_after="$(rss_kb)"
fds_after="$(fds)"
log "ied VmRSS ${rss_before} -> ${rss_mid} -> ${rss_after} kB, fds ${fds_before} -> ${fds_after}"
if [ "$asan" = 1 ]; then
  log "ied built with AddressSanitizer: RSS not checked"
else
  expect_le "ied's RSS growth over both passes (kB)" "$((rss_after - rss_before))" 8192
  expect_le "ied's RSS growth in the second pass (kB)" "$((rss_after - rss_mid))" 2048
fi
expect_eq "ied's descriptors (every connection closed)" "$fds_after" "$fds_before"
in_ns h "$IECTL" --socket "$sock" status >/dev/null
check "iectl status still works" $? ""

stop ied
check "ied exits 0 on SIGTERM" $? ""
[ -e "$sock" ] && left=1 || left=0
expect_eq "control socket removed" "$left" 0
in_ns h ip link show ie0 >/dev/null 2>&1 && left=1 || left=0
expect_eq "no ie0 after SIGTERM" "$left" 0
ie_finish
