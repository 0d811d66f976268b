#!/usr/bin/env bash
# The shipped unit is valid (systemd-analyze verify), hardened to an
# exposure of at most 1.2 (systemd-analyze security --offline=true) with
# no @resources system calls, and bounded: a start-up timeout that fits
# the rules' compilation, memory and task limits, and no restart loop on
# exit status 1 (invalid configuration or rules).
# Usage: unit_test.sh VIGIL_BINARY SOURCE_DIR
set -uo pipefail
vigil=$1
src=$2
if ! command -v systemd-analyze >/dev/null; then
    echo "SKIP: systemd-analyze not found (apt-get install systemd)"
    exit 77
fi
unit=$src/systemd/vigil.service
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# verify wants the binaries to exist: point the unit at the built one.
sed "s|/usr/bin/vigil|$vigil|g" "$unit" >"$tmp/vigil.service"
if ! out=$(systemd-analyze verify "$tmp/vigil.service" 2>&1) || [ -n "$out" ]; then
    bad "systemd-analyze verify:"
    echo "$out"
else
    ok
fi
security=$(systemd-analyze security --offline=true "$tmp/vigil.service" 2>&1)
level=$(sed -n 's/.*Overall exposure level for vigil.service: \([0-9.]*\).*/\1/p' <<<"$security")
if [ -z "$level" ]; then
    bad "no exposure level from systemd-analyze security"
else
    echo "exposure level $level (limit 1.2)"
    if awk -v l="$level" 'BEGIN { exit !(l <= 1.2) }'; then ok; else bad "exposure $level > 1.2"; fi
fi
if grep -q '✓ SystemCallFilter=~@resources' <<<"$security"; then ok; else
    bad "systemd-analyze security: @resources system calls are allowed"
fi

# The last value a [Service] key is given (what systemd uses for these).
value() { sed -n "s/^$1=//p" "$unit" | tail -1; }
seconds() { systemd-analyze timespan "$1" 2>/dev/null | sed -n 's/^ *μs: *\([0-9]*\)$/\1/p'; }
bytes() { numfmt --from=iec "$1" 2>/dev/null; }

# run compiles the rules before READY=1.
start_us=$(seconds "$(value TimeoutStartSec)")
if [ -n "$start_us" ] && [ "$start_us" -ge 90000000 ] && [ "$start_us" -le 600000000 ]; then ok
else bad "TimeoutStartSec='$(value TimeoutStartSec)': wanted 90 s to 10 min"; fi

if value RestartPreventExitStatus | tr ' ' '\n' | grep -qx 1; then ok
else bad "RestartPreventExitStatus does not hold 1 (invalid rules or configuration)"; fi
# It looks at the main process only: a check in ExecStartPre that fails
# would be restarted every RestartSec all the same.
if ! grep -q '^ExecStartPre=' "$unit"; then ok
else bad "ExecStartPre= fails outside RestartPreventExitStatus's reach: let run check"; fi

high=$(bytes "$(value MemoryHigh)") max=$(bytes "$(value MemoryMax)")
if [ -n "$high" ] && [ -n "$max" ] && [ "$high" -ge $((512 << 20)) ] && [ "$high" -lt "$max" ]
then ok
else bad "MemoryHigh='$(value MemoryHigh)' MemoryMax='$(value MemoryMax)': wanted 512M <= high < max"; fi

# 256 evaluation workers (VG_MAX_WORKERS) and librdkafka's threads.
tasks=$(value TasksMax)
if [[ "$tasks" =~ ^[0-9]+$ ]] && [ "$tasks" -ge 512 ]; then ok
else bad "TasksMax='$tasks': wanted a number of at least 512"; fi

echo "systemd unit: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
