#!/usr/bin/env bash
# Keyword-scan throughput on Chinese, Korean and Japanese news: `vigil scan`
# with the shipped packs (the desk packs' entities, near and except rules,
# and every other pack) over a corpus built from the demo's CJK stories
# (tests/bench/cjk_corpus.py), side by side in the same run with
# `grep -F -c -f` of the desk entities' CJK aliases over the same file.
# Whole-process wall times, outputs written to files, medians of RUNS
# interleaved runs. Prints figures; never fails on time.
#
#   tests/bench/bench_cjk.sh [RUNS] [EVENTS]     (defaults 3, 50000)
#
# Environment: VIGIL_BIN (default <repo>/build/vigil).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
vigil=${VIGIL_BIN:-$root/build/vigil}
runs=${1:-3}
count=${2:-50000}
[ -x "$vigil" ] || { echo "bench_cjk.sh: no vigil at $vigil" >&2; exit 2; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vigil-cjk.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

python3 "$here/cjk_corpus.py" --count "$count" "$root/rules/demo/events.jsonl" > "$tmp/cjk.jsonl"
# The CJK aliases of the desk entities, one per line, for grep.
python3 - "$root/rules/desk-entities.yaml" > "$tmp/terms.txt" <<'PY'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
seen = set()
for items in doc.get("lists", {}).values():
    for it in items:
        names = [it] if isinstance(it, str) else [it.get("name", "")] + it.get("aliases", [])
        for n in names:
            if isinstance(n, str) and any(ord(c) > 0x2E80 for c in n) and n not in seen:
                seen.add(n)
                print(n)
PY
bytes=$(stat -c %s "$tmp/cjk.jsonl")
terms=$(wc -l < "$tmp/terms.txt")

now() { date +%s.%N; }
declare -a tv tg
for ((i = 0; i < runs; i++)); do
    t0=$(now); "$vigil" scan --rules "$root/rules" "$tmp/cjk.jsonl" > "$tmp/alerts.jsonl" 2> "$tmp/vigil.err"; t1=$(now)
    tv+=("$(awk -v a="$t0" -v b="$t1" "BEGIN { print b - a }")")
    t0=$(now); LC_ALL=C.UTF-8 grep -F -c -f "$tmp/terms.txt" "$tmp/cjk.jsonl" > "$tmp/grep.out" || true; t1=$(now)
    tg+=("$(awk -v a="$t0" -v b="$t1" "BEGIN { print b - a }")")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }
mv=$(median "${tv[@]}"); mg=$(median "${tg[@]}")
alerts=$(wc -l < "$tmp/alerts.jsonl")
rules=$("$vigil" check "$root/rules" 2>/dev/null | sed -n 's/^OK: .* \([0-9]*\) rules,.*/\1/p')
echo "CJK corpus: $count events, $(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e6 }') MB of JSON, built from the demo's stories"
echo
echo "| tool | what | wall s (median of $runs) | events/s | MB/s | result |"
echo "|---|---|---:|---:|---:|---|"
printf '| vigil scan | %s rules of rules/ (entities, near, except, regex, stateful) | %s | %.0f | %.1f | %s alerts |\n' \
    "$rules" "$mv" "$(awk -v n="$count" -v t="$mv" 'BEGIN { print n / t }')" \
    "$(awk -v b="$bytes" -v t="$mv" 'BEGIN { print b / 1e6 / t }')" "$alerts"
printf '| grep -F -c | %s CJK aliases, no rules, no boundaries | %s | %.0f | %.1f | %s matching lines |\n' \
    "$terms" "$mg" "$(awk -v n="$count" -v t="$mg" 'BEGIN { print n / t }')" \
    "$(awk -v b="$bytes" -v t="$mg" 'BEGIN { print b / 1e6 / t }')" "$(cat "$tmp/grep.out")"
