#!/usr/bin/env bash
# The test command (README "command 2"): installs what the build and tests need (Debian 12
# packages), builds a CMake preset and runs its ctest suite. As root it runs everything,
# including the `root` tests (TUN, namespaces, BPF); without root it says which it left out.
#
#   sudo tests/run.sh                       # release preset, every test
#   sudo tests/run.sh --preset asan         # the same under ASan/UBSan
#   tests/run.sh --labels 'unit|fuzz'       # only some ctest labels (regex)
#   tests/run.sh --target ie_test_programs  # build only this target (default: everything)
#
# Exit status: 0 all run tests passed, 1 a test failed, 2 usage or set-up error.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
preset=release
labels=""
target=""
jobs="$(nproc)"

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --preset) preset="${2:?--preset needs a value}"; shift 2 ;;
    --labels) labels="${2:?--labels needs a value}"; shift 2 ;;
    --target) target="${2:?--target needs a value}"; shift 2 ;;
    -j) jobs="${2:?-j needs a value}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

cd "$here"
if ! packaging/install-deps.sh; then
  echo "run.sh: dependencies missing; run as root (sudo tests/run.sh) to install them" >&2
  exit 2
fi

echo "== configure + build ($preset)"
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$jobs" ${target:+--target "$target"}

ctest_args=(--preset "$preset" -j "$jobs" --timeout 900)
if [ -n "$labels" ]; then
  ctest_args+=(-L "$labels")
fi
if [ "$(id -u)" -ne 0 ]; then
  skipped="$(cd "build/$preset" && ctest -N -L 'root|netns' | sed -n 's/^Total Tests: //p')"
  echo "run.sh: not root: leaving out ${skipped:-0} tests labelled root/netns (run with sudo)" >&2
  ctest_args+=(-LE 'root|netns')
fi
echo "== ctest ($preset${labels:+, labels $labels})"
if ! ctest "${ctest_args[@]}"; then
  exit 1
fi
