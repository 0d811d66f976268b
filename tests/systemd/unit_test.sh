#!/usr/bin/env bash
# The shipped unit is valid (systemd-analyze verify) and hardened to an
# exposure of at most 1.5 (systemd-analyze security --offline=true).
# Usage: unit_test.sh VIGIL_BINARY SOURCE_DIR
set -uo pipefail
vigil=$1
src=$2
if ! command -v systemd-analyze >/dev/null; then
    echo "SKIP: systemd-analyze not found (apt-get install systemd)"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# verify wants the binaries to exist: point the unit at the built one.
sed "s|/usr/bin/vigil|$vigil|g" "$src/systemd/vigil.service" >"$tmp/vigil.service"
if ! out=$(systemd-analyze verify "$tmp/vigil.service" 2>&1) || [ -n "$out" ]; then
    echo "FAIL: systemd-analyze verify:"
    echo "$out"
    exit 1
fi
level=$(systemd-analyze security --offline=true "$tmp/vigil.service" 2>&1 |
    sed -n 's/.*Overall exposure level for vigil.service: \([0-9.]*\).*/\1/p')
if [ -z "$level" ]; then
    echo "FAIL: no exposure level from systemd-analyze security"
    exit 1
fi
echo "exposure level $level (limit 1.5)"
awk -v l="$level" 'BEGIN { exit !(l <= 1.5) }' || { echo "FAIL: exposure $level > 1.5"; exit 1; }
echo "systemd unit: 2 passed, 0 failed"
