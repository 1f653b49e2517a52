#!/usr/bin/env bash
# Installs, from Debian 12 packages, exactly what InterEdge needs to build, test and run its demo.
# Idempotent: packages already present are left alone; safe to run on every build.
set -euo pipefail

PKGS=(
  # toolchain
  build-essential cmake ninja-build pkg-config git clang llvm lld clang-format libclang-rt-14-dev
  # libraries
  libbpf-dev bpftool libelf-dev zlib1g-dev linux-libc-dev
  libsodium-dev libssl-dev libc-ares-dev libcli11-dev libsqlite3-dev sqlite3
  nlohmann-json3-dev libtomlplusplus-dev libspdlog-dev libfmt-dev libsystemd-dev
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  # test and demo tools (file: the steering tests check their clients are static)
  iproute2 iputils-ping procps psmisc python3 curl iperf3 dnsmasq tcpdump file
  # Go (Debian's 1.19): the static, libc-free client of tests/netns/ied_steer_go.sh
  golang-go
  # benchmark baselines (tests/bench/ied_path.sh)
  wireguard-go wireguard-tools
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: need root to install: ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "install-deps: installing ${missing[*]}"
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# dnsmasq's package starts a system-wide instance; tests start their own inside namespaces.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet dnsmasq 2>/dev/null; then
  systemctl disable --now dnsmasq >/dev/null 2>&1 || true
fi
