# The ied part of the netns test library (sourced after lib.sh): real `ied` daemons as hosts
# A and B of lib.sh's topology, with their inner addresses (10.1.0.2, 10.2.0.2) on their
# loopback devices, routes into ie0 for the other hosts' /24s, a dnsmasq when asked, and
# iectl to read their state.
#
#   ied_start B --static                 # B: [[sn]] from configuration (its SN dom2.sn1)
#   ied_start A --dns                    # A: SN and peers from a dnsmasq in A's namespace
#   iectl_json A status                  # iectl --json status against A's socket
#
# Each ied gets a work-dir state directory and control socket, so kill -9 tests can restart it.

[ -n "${IED:-}" ] && [ -x "$IED" ] || die "ied not executable: '${IED:-}' (give --ied PATH)"
[ -n "${IECTL:-}" ] && [ -x "$IECTL" ] || die "iectl not executable: '${IECTL:-}' (give --iectl PATH)"

declare -A IED_KEY=()  # host -> its identity public key (ied_identities)
declare -A IE_HOST_EP=()  # host -> its ied endpoint published in its peer record (dns_serve)

# Every host's identity, created in its state directory before any daemon starts (`ied
# --identity`, milliseconds), so each configuration carries the keys of all its peers: a host
# started first is not answer-only towards the hosts started after it. ied_config calls it.
ied_identities() {
  local o
  for o in A B C; do
    [ -n "${IED_KEY[$o]:-}" ] && continue
    IED_KEY[$o]="$("$IED" --identity --state-dir "$IE_WORK/ied-$o.state")" ||
      die "ied --identity for $o failed"
  done
}

# [[sn]] and [[peer]] entries for configurations: an SN by name at ADDR (port IE_PORT) with
# its key (KEY_OF: another SN whose key it claims, default its own); peer host H's /24
# behind its SN (default H's own) with its key.
ied_sn_toml() {  # NAME ADDR [KEY_OF]
  printf '[[sn]]\nname = "%s"\nendpoint = "%s:%s"\nkey = "%s"\n' "$1" "$2" "$IE_PORT" \
    "${IE_SNKEY[${3:-$1}]}"
}
ied_peer_toml() {  # H [PREFIX [SN]]
  printf '[[peer]]\nprefix = "%s"\nsn = "%s"\n' "${2:-${IE_HOST_INNER[$1]%.*}.0/24}" \
    "${3:-${IE_HOST_SN[$1]}}"
  [ -n "${IED_KEY[$1]:-}" ] && printf 'key = "%s"\n' "${IED_KEY[$1]}"
  return 0
}

iectl_json() {  # H VERB...
  local h="$1"
  shift
  in_ns "h$h" "$IECTL" --socket "$IE_WORK/ied-$h.sock" --json "$@"
}

ied_registered() {  # H: its active SN is associated and its addresses registered
  iectl_json "$1" status | jget - "j['sn'] is not None and j['sn']['registered']" | grep -qx true
}

# Writes IE_WORK/ied-H.toml. Peers: every other host's /24 routed into ie0 and served by its
# SN, with its key (ied_identities).
ied_config() {  # H static|dns
  local h="$1" mode="$2" o f="$IE_WORK/ied-$1.toml"
  ied_identities
  {
    echo "[daemon]"
    echo "state_dir = \"$IE_WORK/ied-$h.state\""
    echo "socket = \"$IE_WORK/ied-$h.sock\""
    echo "[tun]"
    echo "name = \"ie0\""
    echo "[host]"
    echo "addresses = [\"${IE_HOST_INNER[$h]}\"]"
    local prefixes=""
    for o in A B C; do
      [ "$o" = "$h" ] && continue
      prefixes+="\"${IE_HOST_INNER[$o]%.*}.0/24\", "
    done
    echo "prefixes = [${prefixes%, }]"
    echo "[timers]"
    echo "keepalive_ms = 500"
    echo "dead_after_ms = 2000"
    if [ "$mode" = dns ]; then
      echo "[discovery]"
      echo "order = [\"dns\"]"
      echo "dns_domain = \"dom1.test\""
      echo "dns_servers = [\"127.0.0.1:5353\"]"
      echo "peer_dns = true"
    else
      ied_sn_toml "${IE_HOST_SN[$h]}" "${IE_HOST_GW[$h]}"
      for o in A B C; do
        [ "$o" = "$h" ] && continue
        ied_peer_toml "$o"
      done
    fi
  } >"$f"
}

# A dnsmasq in H's namespace on 127.0.0.1:5353 serving: SRV _interedge._udp.dom1.test -> the
# SN of H (TXT key record, A record), and reverse TXT peer records for the other hosts.
dns_start() {  # H
  local h="$1" sn="${IE_HOST_SN[$1]}"
  dns_serve "$h" 30 "sn,$sn,${IE_HOST_GW[$h]},10,100"
}

# Writes H's dnsmasq configuration (IE_WORK/dnsmasq-H.conf) and starts dnsmasq, stopping the
# one already running (records cannot be reloaded: SIGHUP rereads only hosts files). TTL is
# dnsmasq's local-ttl: the TTL of every record it serves. Each SPEC
# "LABEL,SN,ADDR,PRIORITY,WEIGHT[,KEY[,DOMAIN]]" publishes SRV _interedge._udp.DOMAIN ->
# target LABEL.DOMAIN (port IE_PORT), that target's A record ADDR and its TXT record naming SN
# with KEY (default: SN's real key, IE_SNKEY; DOMAIN default dom1.test, any name under .test). The reverse TXT peer records of the other hosts
# whose keys are known (IED_KEY) are published too, with the ied endpoint in IE_HOST_EP (ep=,
# for a direct path) where the test set one. Queries are logged (dnsmasq-H.err).
dns_serve() {  # H TTL SPEC...
  local h="$1" ttl="$2" o spec f="$IE_WORK/dnsmasq-$1.conf"
  shift 2
  {
    echo "port=5353"
    echo "listen-address=127.0.0.1"
    echo "bind-interfaces"
    echo "no-resolv"
    echo "no-hosts"
    echo "log-queries"
    echo "local-ttl=$ttl"
    # Names it serves answer NXDOMAIN (not REFUSED) when missing.
    echo "local=/test/"
    echo "local=/in-addr.arpa/"
    for spec in "$@"; do
      local label sn addr prio weight key dom
      IFS=, read -r label sn addr prio weight key dom <<<"$spec"
      [ -n "$key" ] || key="${IE_SNKEY[$sn]}"
      [ -n "$dom" ] || dom=dom1.test
      echo "srv-host=_interedge._udp.$dom,$label.$dom,$IE_PORT,$prio,$weight"
      echo "host-record=$label.$dom,$addr"
      echo "txt-record=$label.$dom,\"v=ie1 name=$sn key=$key\""
    done
    for o in A B C; do
      [ "$o" = "$h" ] && continue
      [ -n "${IED_KEY[$o]:-}" ] || continue
      local a="${IE_HOST_INNER[$o]}" rev
      rev="$(echo "$a" | awk -F. '{print $4"."$3"."$2"."$1}').in-addr.arpa"
      local ep=""
      [ -n "${IE_HOST_EP[$o]:-}" ] && ep=" ep=${IE_HOST_EP[$o]}"
      echo "txt-record=$rev,\"v=ie1 sn=${IE_HOST_SN[$o]} key=${IED_KEY[$o]}$ep\""
    done
  } >"$f"
  if [ -n "${IE_PID[dnsmasq-$h]:-}" ] && alive "dnsmasq-$h"; then
    stop "dnsmasq-$h" || true
  fi
  spawn "dnsmasq-$h" "h$h" dnsmasq --keep-in-foreground --conf-file="$f" --pid-file= \
    --log-facility=- --user=root
  wait_for 10 "dnsmasq in h$h" in_ns "h$h" python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.2); s.sendto(bytes.fromhex("00010100000100000000000003777777076578616d706c6503636f6d0000010001"), ("127.0.0.1", 5353)); s.recv(512)'
}

# Sends one raw control request to H's ied and prints the reply line (for parameters iectl
# has no option for). Exit status 0 when the reply is ok, 1 when it is an error reply.
ied_call() {  # H METHOD PARAMS_JSON
  in_ns "h$1" python3 -c '
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
s.connect(sys.argv[1])
req = {"v": 1, "id": 1, "method": sys.argv[2], "params": json.loads(sys.argv[3])}
s.sendall(json.dumps(req).encode() + b"\n")
buf = b""
while not buf.endswith(b"\n"):
    d = s.recv(65536)
    if not d:
        break
    buf += d
print(buf.decode().strip())
sys.exit(0 if json.loads(buf).get("ok") else 1)' "$IE_WORK/ied-$1.sock" "$2" "$3"
}

ied_start() {  # H static|dns
  local h="$1" mode="${2:-static}"
  in_ns "h$h" ip addr replace "${IE_HOST_INNER[$h]}/32" dev lo
  ied_config "$h" "$mode"
  # A test may edit the configuration before the daemon starts (e.g. ied_steer.sh).
  if declare -F ied_config_hook >/dev/null; then ied_config_hook "$h"; fi
  spawn "ied-$h" "h$h" "$IED" --config "$IE_WORK/ied-$h.toml" --log-level debug
  wait_for 15 "ied $h registered with its SN" ied_registered "$h"
  expect_eq "ied $h runs with the identity ied --identity printed" \
    "$(iectl_json "$h" status | jget - "j['identity']")" "${IED_KEY[$h]}"
  log "ied $h up (identity ${IED_KEY[$h]})"
}

# Host A with SNs on two links (ied_failover.sh, ied_iesp.sh): a second link, eth1
# 172.16.NET.2/24 to SN_ROLE's namespace (its end 172.16.NET.1), A's inner address on lo, and
# the head of A's configuration on stdout: [daemon], [host] with PREFIXES, [timers] and the
# [[sn]] of its first link (dom1.sn2 on eth0), left open for the caller's keys (priority,
# iesp); the caller adds the second link's [[sn]], [[peer]]s, [[policy]]s.
ied_second_link() {  # SN_ROLE NET
  link_add hA eth1 "172.16.$2.2/24" "$1" hA2 "172.16.$2.1/24"
  in_ns hA ip addr replace "${IE_HOST_INNER[A]}/32" dev lo
  ied_identities
}
ied_two_link_head() {  # PREFIXES (TOML array items, e.g. '"10.2.0.0/24"')
  cat <<EOT
[daemon]
state_dir = "$IE_WORK/ied-A.state"
socket = "$IE_WORK/ied-A.sock"
[host]
addresses = ["${IE_HOST_INNER[A]}"]
prefixes = [$1]
[timers]
keepalive_ms = 500
dead_after_ms = 2000
EOT
  ied_sn_toml dom1.sn2 "${IE_HOST_GW[A]}"
}

# The socket-steering tests' set-up (ied_steer.sh, ied_steer_go.sh): a cgroup tree
# CG/{policy/child,other} under the host's cgroup2 mount (removed, with every process in
# it, at clean-up), A's configuration with no [host] prefixes and a [[steering.policy]] for
# CG/policy and B's /24, and in_cg CGROUP ROLE CMD... to run a command in a cgroup and a
# role's namespace. Needs IE_NS_ENTER=nsenter (the host's /sys/fs/cgroup stays visible).
steer_setup() {
  cg2="$(findmnt -t cgroup2 -n -o TARGET | head -1)"
  [ -n "$cg2" ] || die "no cgroup2 mount"
  CG="$cg2/$IE_PREFIX"
  mkdir -p "$CG/policy/child" "$CG/other" || die "mkdir $CG"
  ie_cleanup_hook() {
    local d pid
    for d in "$CG/policy/child" "$CG/policy" "$CG/other" "$CG"; do
      [ -d "$d" ] || continue
      for pid in $(cat "$d/cgroup.procs" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
    done
    for d in "$CG/policy/child" "$CG/policy" "$CG/other" "$CG"; do
      [ -d "$d" ] || continue
      for _ in $(seq 20); do rmdir "$d" 2>/dev/null && break; sleep 0.1; done
      [ -d "$d" ] && { log "cleanup: cgroup $d still exists"; return 1; }
    done
    return 0
  }

  # A: no [host] prefixes; a cgroup policy for B's /24.
  ied_config_hook() {
    [ "$1" = A ] || return 0
    sed -i '/^prefixes = /d' "$IE_WORK/ied-A.toml"
    printf '[steering]\ntable = 7300\nrule_priority = 7300\n[[steering.policy]]\ncgroup = "%s"\nprefixes = ["10.2.0.0/24"]\nservice = "ip"\n' \
      "$CG/policy" >>"$IE_WORK/ied-A.toml"
  }

  in_cg() {  # CGROUP ROLE CMD...: run CMD in the cgroup and the role's namespace
    local cg="$1" role="$2"
    shift 2
    sh -c 'echo $$ >"$1/cgroup.procs" && shift 2 && exec nsenter --net="/run/netns/$0" -- "$@"' \
      "${IE_NS[$role]}" "$cg" x "$@"
  }
}

# What steer_setup's policy must have made ied install on A (RULES: `ip rule show` on A): the
# fwmark rule and table for the policy, sock_create on its cgroup, no main-table route.
steer_check_policy() {
  local rules="$1"
  echo "$rules" | grep -q "fwmark 0x1e180000 lookup 7301"
  check "rule for the cgroup policy" $? "$rules"
  in_ns hA ip route show table 7301 | grep -q "10.2.0.0/24 dev ie0"
  check "policy table holds the policy's prefix" $? "$(in_ns hA ip route show table 7301)"
  bpftool cgroup show "$CG/policy" | grep -q ie_sock_create
  check "sock_create attached to the policy cgroup" $? "$(bpftool cgroup show "$CG/policy")"
  expect_eq "no main-table route into ie0" "$(in_ns hA ip route show dev ie0 table main | wc -l)" 0
}

# ---- checks shared by the discovery tests (ied_discovery.sh, ied_anycast.sh): host A's
# active SN, pinned keys, the SNs' host pipes, a ping A -> B.
active_sn() { iectl_json A status | jget - "j['sn']['name'] if j['sn'] and j['sn']['registered'] else ''"; }
active_is() { [ "$(active_sn)" = "$1" ]; }
pin_of() {  # NAME: the key pinned for NAME in A's state database (base64), '' if none
  python3 -c '
import base64, sqlite3, sys
db = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
r = db.execute("SELECT public_key FROM sn_pin WHERE name = ?", (sys.argv[2],)).fetchone()
print(base64.b64encode(r[0]).decode() if r else "")' "$IE_WORK/ied-A.state/state.db" "$1"
}
host_pipes() { sn_json "$1" status | jget - "j['pipe_summary']['hosts']"; }
host_pipes_are() { [ "$(host_pipes "$1")" = "$2" ]; }
host_rx() {  # SN: packets received from hosts
  sn_json "$1" pipes | jget - "sum(p['rx_packets'] for p in j['pipes'] if p['kind']=='host')"
}
# The time (ms since the epoch) of the last line of a daemon log (ISO timestamps first)
# containing TEXT; "" if none.
log_ms() {  # FILE TEXT
  python3 -c '
import datetime, sys
ms = ""
for line in open(sys.argv[1]):
    if sys.argv[2] in line:
        t = datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%f")
        ms = int(t.astimezone().timestamp() * 1000)
print(ms)' "$1" "$2"
}
ping_ok() { in_ns hA ping -c 2 -i 0.2 -W 2 10.2.0.2 >/dev/null 2>&1; }

# Restarts ied H listening on a fixed UDP port (the endpoint its peers' [[peer]] names, for a
# direct path); its configuration file gets daemon.listen.
ied_restart_listening() {  # H PORT
  stop "ied-$1" || true
  sed -i "s|^\[daemon\]$|[daemon]\nlisten = \"0.0.0.0:$2\"|" "$IE_WORK/ied-$1.toml"
  spawn "ied-$1" "h$1" "$IED" --config "$IE_WORK/ied-$1.toml" --log-level debug
  wait_for 15 "ied $1 back" ied_registered "$1"
}

# iperf3 from A to B (10.2.0.2) for SECONDS over a direct path: exits 0, the SN's host pipes
# see (almost) none of it, A's iperf3 flows are `direct`. Logs the rate.
iperf3_direct() {  # SECONDS SN WHAT
  local before after bps via
  before="$(host_rx "$2")"
  spawn iperf3-B hB iperf3 -s -B 10.2.0.2 -1
  sleep 0.5
  in_ns hA iperf3 -c 10.2.0.2 -t "$1" -J >"$IE_WORK/iperf3-direct.json" 2>&1
  check "iperf3 A -> B $3" $? "exit status"
  bps="$(jget "$IE_WORK/iperf3-direct.json" "int(j['end']['sum_received']['bits_per_second'])" 2>/dev/null || echo 0)"
  log "iperf3 A -> B $3: $((bps / 1000000)) Mbit/s"
  after="$(host_rx "$2")"
  expect_le "$2 saw (almost) none of it: host-pipe packets during the run" "$((after - before))" 200
  via="$(iectl_json A flows | jget - "sorted(set(f['via'] for f in j['flows'] if f['dst'].endswith(':5201')))")"
  expect_eq "iectl flows: the iperf3 flows went direct" "$via" '["direct"]'
}
