#!/usr/bin/env bash
# The manual pages format without a single warning (groff -ww, and man's
# own check when man-db is there), have the sections an operator looks
# for, and name every command `vigil --help` lists.
# Usage: man_test.sh VIGIL_BINARY MAN_DIR   (MAN_DIR: the configured pages)
set -uo pipefail
vigil=$1
dir=$2
if ! command -v groff >/dev/null; then
    echo "SKIP: groff not found (apt-get install groff-base)"
    exit 77
fi
export LC_ALL=C.UTF-8 MANWIDTH=80
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }

for page in vigil.8 vigil-rules.5; do
    f=$dir/$page
    if [ ! -f "$f" ]; then
        bad "$f is missing"
        continue
    fi
    out=$(groff -man -Tutf8 -ww -z "$f" 2>&1)
    if [ -n "$out" ]; then bad "$page: groff warnings:"; echo "$out"; else ok; fi
    if command -v man >/dev/null; then
        out=$(man --warnings -l "$f" 2>&1 >/dev/null)
        if [ -n "$out" ]; then bad "$page: man --warnings:"; echo "$out"; else ok; fi
    fi
    if grep -q '@VERSION@' "$f"; then bad "$page: @VERSION@ not filled in"; else ok; fi
    if [ -f "$f.gz" ]; then
        if cmp -s <(gzip -dc "$f.gz") "$f"; then ok; else bad "$page.gz differs from $page"; fi
    fi
done

text=$(groff -man -Tutf8 -P-cbou "$dir/vigil.8" 2>/dev/null)
for section in NAME SYNOPSIS DESCRIPTION COMMANDS OPTIONS CONFIGURATION LOGGING SIGNALS \
    "EXIT STATUS" ENVIRONMENT FILES "SEE ALSO"; do
    if grep -q "^$section\$" <<<"$text"; then ok; else bad "vigil.8 has no $section section"; fi
done
# Every command and signal a user can meet is documented.
for cmd in $("$vigil" --help | sed -n 's/^  \([a-z]*\) .*/\1/p'); do
    if grep -q "vigil $cmd" <<<"$text"; then ok; else bad "vigil.8 does not show 'vigil $cmd'"; fi
done
for word in SIGTERM SIGHUP --log-format rules.watch log.format /etc/vigil/vigil.yaml \
    VIGIL_WORKERS JOURNAL_STREAM; do
    if grep -q -- "$word" <<<"$text"; then ok; else bad "vigil.8 does not mention $word"; fi
done
rtext=$(groff -man -Tutf8 -P-cbou "$dir/vigil-rules.5" 2>/dev/null)
for word in lists: macros: rules: all: any: not: macro: text: field: eq in prefix matches \
    exists severity tests; do
    if grep -q -- "$word" <<<"$rtext"; then ok; else bad "vigil-rules.5 does not mention $word"; fi
done
echo "man pages: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
