#!/usr/bin/env bash
# Keyword-scan throughput of `vigil scan` against two baselines, on the
# Reuters-21578 corpus (21,578 news events) with rule sets of 10, 1,000 and
# ~14,900 terms. Prints figures (markdown tables); never passes or fails on
# time.
#
#   tests/bench/bench_scan.sh [RUNS]          (default RUNS=3; medians)
#
# Term sets: 10 hand-picked trade words; 1,000 and all ~14,900 OFAC SDN
# names (tests/tools/sdn2list.py --types all [--sample 1000 --seed 1]).
# vigil runs one rule `text: {any: $terms}` (default fields title, body)
# whose list is a file of the terms.
#
# Baselines, on the same events and terms:
#   raw   tests/bench/raw_scan.c: json-c parse, ASCII lower-case of title and
#         body, one Vectorscan literal database (hs_compile_lit_multi,
#         caseless), count matches. No word boundaries, no white-space
#         folding, no rules, no alerts: the practical limit. "scan only" is
#         the time inside hs_scan alone.
#   grep  LC_ALL=C grep -F -i -w -c -f terms.txt on the same text (title and
#         body of each event on one line, white space squeezed:
#         tests/bench/jsonl2text.py). Its time includes building its
#         matcher. Runs longer than BENCH_GREP_TIMEOUT seconds (default
#         300) are stopped; a run over 10 s is not repeated.
#
# Rates: events/s, and MB/s of title+body text (10^6 bytes; the same bytes
# for all three tools; vigil's own MB/s figure counts JSON input bytes and
# is higher). Two kinds, kept apart:
#   - whole process ("wall" columns and the first ratio table): events over
#     the wall time of the whole process, the same measure for every tool:
#     start, rule loading or database compilation, reading, parsing,
#     scanning, output, exit. This is the comparison that holds.
#   - each tool's own figure ("own" columns, the second ratio table):
#     vigil's over its own scan time (excluding rule loading, measured
#     separately as `vigil check` wall time); raw's over read+parse+scan
#     (excluding database compilation, shown apart); grep has none (wall).
#     These measure different spans and are kept for continuity only.
# Peak RSS from /usr/bin/time (GNU time; `apt-get install time`).
#
# Environment: VIGIL_BIN (default <repo>/build/vigil), RAW_SCAN (default
# <repo>/build/raw_scan, else built into a temporary folder with gcc),
# VIGIL_SHARED_DIR (default <repo>/../shared), BENCH_REPEAT=N (concatenate
# the corpus N times, default 1), BENCH_GREP_TIMEOUT.
# Exit: 0, or 77 when the shared data is absent, 2 on setup errors.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
shared=${VIGIL_SHARED_DIR:-$root/../shared}
data=$shared/data
reuters=$data/reuters21578
sdn=$data/screening/ofac-sdn-2024-05-03
vigil=${VIGIL_BIN:-$root/build/vigil}
raw=${RAW_SCAN:-$root/build/raw_scan}
runs=${1:-3}
repeat=${BENCH_REPEAT:-1}
grep_timeout=${BENCH_GREP_TIMEOUT:-300}

if [ ! -f "$reuters/reut2-000.sgm" ] || [ ! -f "$sdn/sdn.csv" ]; then
    echo "SKIP: shared data not found (need $reuters and $sdn/sdn.csv; set VIGIL_SHARED_DIR)"
    exit 77
fi
[ -x "$vigil" ] || { echo "bench_scan.sh: no vigil at $vigil (build it or set VIGIL_BIN)" >&2; exit 2; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vigil-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
if [ ! -x "$raw" ]; then
    raw=$tmp/raw_scan
    gcc -O2 "$here/raw_scan.c" -lhs -ljson-c -o "$raw" \
        || { echo "bench_scan.sh: cannot build raw_scan.c (needs libhs-dev, libjson-c-dev)" >&2; exit 2; }
fi
timebin=/usr/bin/time
[ -x "$timebin" ] && "$timebin" -f %M true >/dev/null 2>&1 || timebin=

# -- inputs
python3 "$root/tests/tools/reuters2jsonl.py" "$reuters" > "$tmp/one.jsonl" 2>/dev/null
: > "$tmp/events.jsonl"
for _ in $(seq "$repeat"); do cat "$tmp/one.jsonl" >> "$tmp/events.jsonl"; done
python3 "$here/jsonl2text.py" "$tmp/events.jsonl" > "$tmp/text.txt"
printf '%s\n' "trade deficit" tariffs semiconductors Japan OPEC sanctions embargo dumping \
    microchips "export controls" > "$tmp/terms-10.txt"
python3 "$root/tests/tools/sdn2list.py" --types all --sample 1000 --seed 1 "$sdn" \
    > "$tmp/terms-1k.txt" 2>/dev/null
python3 "$root/tests/tools/sdn2list.py" --types all "$sdn" > "$tmp/terms-14k.txt" 2>/dev/null

events=$(wc -l < "$tmp/events.jsonl")
json_bytes=$(wc -c < "$tmp/events.jsonl")
text_bytes=$(python3 -c 'import json,sys
n=0
for l in open(sys.argv[1],"rb"):
    e=json.loads(l)
    n+=sum(len(e[k].encode()) for k in ("title","body") if isinstance(e.get(k),str))
print(n)' "$tmp/events.jsonl")

nowns() { date +%s%N; }
# run OUT CMD...: wall ns in OUT.wall; "peak-RSS-KB user-s sys-s" in OUT.rss
# (empty without GNU time); stdout in OUT.out, stderr in OUT.err
run() {
    local out=$1; shift
    local s e
    s=$(nowns)
    if [ -n "$timebin" ]; then
        "$timebin" -f '%M %U %S' -o "$out.rss" "$@" > "$out.out" 2> "$out.err" || true
        # GNU time writes "Command exited with non-zero status N" first
        tail -n 1 "$out.rss" > "$out.rss1" && mv "$out.rss1" "$out.rss"
    else
        "$@" > "$out.out" 2> "$out.err" || true
        : > "$out.rss"
    fi
    e=$(nowns)
    echo $(( e - s )) > "$out.wall"
}
row() {  # row SET TOOL OUT EXTRA: one line of results.tsv
    printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$(cat "$3.wall")" "$(cat "$3.rss")" "$4" >> "$res"
}

res=$tmp/results.tsv
: > "$res"
for set in 10 1k 14k; do
    terms=$tmp/terms-$set.txt
    nterms=$(grep -c . "$terms")
    rules=$tmp/rules-$set
    mkdir -p "$rules"
    cp "$terms" "$rules/terms.txt"
    printf 'lists:\n  bench_terms: { file: terms.txt }\nrules:\n  - id: bench-%s\n    match:\n      text: { any: $bench_terms }\n' \
        "$set" > "$rules/bench.yaml"
    echo "== $set: $nterms terms" >&2
    for i in $(seq "$runs"); do
        run "$tmp/c" "$vigil" check "$rules"
        row "$set" check "$tmp/c" "$nterms"
        run "$tmp/v" "$vigil" scan --rules "$rules" "$tmp/events.jsonl"
        # "vigil scan: N events, 0 malformed, A alerts from 1 rules in T s
        #  (R events/s, M MB/s, W worker threads)"
        line=$(grep '^vigil scan:' "$tmp/v.err" | tail -1)
        eps=$(sed -n 's/.*(\([0-9.]*\) events\/s.*/\1/p' <<< "$line")
        workers=$(sed -n 's/.* \([0-9]*\) worker thread.*/\1/p' <<< "$line")
        if [ -z "$eps" ]; then
            echo "bench_scan.sh: vigil scan failed:" >&2; tail -3 "$tmp/v.err" >&2; exit 3
        fi
        row "$set" vigil "$tmp/v" "eps=$eps alerts=$(wc -l < "$tmp/v.out") workers=${workers:-1}"
        for mode in json-c minimal; do
            opt=; [ $mode = minimal ] && opt=--minimal
            run "$tmp/r" "$raw" $opt "$terms" "$tmp/events.jsonl"
            if ! grep -q events_per_s "$tmp/r.out"; then
                echo "bench_scan.sh: raw_scan failed:" >&2; cat "$tmp/r.err" >&2; exit 3
            fi
            row "$set" "raw-$mode" "$tmp/r" "$(cat "$tmp/r.out")"
        done
    done
    for i in $(seq "$runs"); do
        run "$tmp/g" env LC_ALL=C timeout "$grep_timeout" grep -F -i -w -c -f "$terms" "$tmp/text.txt"
        count=$(cat "$tmp/g.out"); [ -n "$count" ] || count=timeout
        row "$set" grep "$tmp/g" "count=$count"
        [ "$count" = timeout ] && break
        [ "$(cat "$tmp/g.wall")" -gt 10000000000 ] && break
    done
done

python3 - "$res" "$events" "$json_bytes" "$text_bytes" "$runs" "$repeat" "$grep_timeout" \
    "$(nproc 2>/dev/null || echo ?)" "$("$vigil" --version 2>&1 | head -1)" <<'EOF'
import statistics, sys
res, events, json_bytes, text_bytes, runs, repeat, gto, cpus, version = sys.argv[1:]
events, json_bytes, text_bytes = int(events), int(json_bytes), int(text_bytes)
mb = text_bytes / 1e6
med = statistics.median
rows = []
for l in open(res):
    st, tool, wall, tm, extra = l.rstrip("\n").split("\t")
    t = tm.split()
    kv = dict(x.split("=", 1) for x in extra.split() if "=" in x)
    rows.append({"set": st, "tool": tool, "wall": int(wall) / 1e9, "extra": extra, "kv": kv,
                 "rss": int(t[0]) if len(t) == 3 else None,
                 "cpu": float(t[1]) + float(t[2]) if len(t) == 3 else None})


def sel(st, tool):
    return [r for r in rows if r["set"] == st and r["tool"] == tool]


def rss(rs):
    v = [r["rss"] for r in rs if r["rss"] is not None]
    return "%.0f MB" % (max(v) / 1024) if v else "n/a"


def cpu_rate(rs):
    v = [r["cpu"] for r in rs if r["cpu"]]
    return "%.0f" % (events / med(v)) if v else "n/a"


print()
print("## Keyword scan: vigil vs. raw Vectorscan vs. grep (%s)" % version)
print()
print("Input: Reuters-21578 as JSON lines%s: %d events, %.1f MB of JSON, %.1f MB of "
      "title+body text. %s CPUs; medians of %s runs." % (
          " (x%s)" % repeat if repeat != "1" else "", events, json_bytes / 1e6, mb, cpus, runs))
print()
print("| terms | tool | events/s (wall) | text MB/s (wall) | events/s (own) | events per CPU-s | wall s | peak RSS | events matched |")
print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
summary = []
for st in ("10", "1k", "14k"):
    chk, vig = sel(st, "check"), sel(st, "vigil")
    rj, rm, grp = sel(st, "raw-json-c"), sel(st, "raw-minimal"), sel(st, "grep")
    label = "{:,}".format(int(chk[0]["extra"]))
    v_eps = med(float(r["kv"]["eps"]) for r in vig)
    v_wall = med(r["wall"] for r in vig)
    workers = vig[0]["kv"].get("workers", "1")
    print("| %s | vigil scan (%s worker threads) | %.0f | %.1f | %.0f | %s | %.2f | %s | %s |" % (
        label, workers, events / v_wall, mb / v_wall, v_eps, cpu_rate(vig), v_wall, rss(vig),
        vig[0]["kv"]["alerts"]))
    raw_eps, raw_wall = {}, {}
    for name, rs in (("json-c", rj), ("minimal", rm)):
        eps = med(float(r["kv"]["events_per_s"]) for r in rs)
        raw_eps[name] = eps
        raw_wall[name] = med(r["wall"] for r in rs)
        print("| %s | raw Vectorscan, %s extract + scan | %.0f | %.1f | %.0f | %s | %.2f | %s | %s (no word boundaries) |" % (
            label, name, events / raw_wall[name], mb / raw_wall[name], eps, cpu_rate(rs),
            raw_wall[name], rss(rs), rs[0]["kv"]["matched_events"]))
    scan_s = med(float(r["kv"]["scan_s"]) for r in rj + rm)
    print("| %s | raw Vectorscan, hs_scan calls only | | | %.0f | | | | |" % (label, events / scan_s))
    done = [r for r in grp if r["kv"].get("count") != "timeout"]
    g_wall = None
    if done:
        g_wall = med(r["wall"] for r in done)
        print("| %s | grep -F -i -w (LC_ALL=C) | %.0f | %.1f | | %s | %.2f | %s | %s |" % (
            label, events / g_wall, mb / g_wall, cpu_rate(done), g_wall, rss(done),
            done[0]["kv"]["count"]))
    else:
        print("| %s | grep -F -i -w (LC_ALL=C) | < %.0f | < %.2f | | | > %s | | timed out |" % (
            label, events / float(gto), mb / float(gto), gto))
    summary.append((label, v_eps, v_wall, raw_eps, raw_wall, events / scan_s, g_wall,
                    med(r["wall"] for r in chk), rss(chk), rss(vig),
                    med(float(r["kv"]["compile_s"]) for r in rj + rm)))
print()
print("Whole process (ratios of wall times on the same input; > 1: vigil is faster):")
print()
print("| terms | vigil / raw json-c | vigil / raw minimal | vigil / grep | ruleset load (`vigil check` wall) | check peak RSS | scan peak RSS | raw hs compile |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|")
for label, v, vw, raw_eps, raw_wall, hs, gw, load, crss, vrss, comp in summary:
    gtxt = "%.1f" % (gw / vw) if gw else "> %.0f" % (float(gto) / vw)
    print("| %s | %.2f | %.2f | %s | %.2f s | %s | %s | %.2f s |" % (
        label, raw_wall["json-c"] / vw, raw_wall["minimal"] / vw, gtxt, load, crss, vrss, comp))
print()
print("Each tool's own figure (different spans, see the header of bench_scan.sh):")
print()
print("| terms | vigil / raw json-c | vigil / raw minimal | vigil / hs_scan only |")
print("|---:|---:|---:|---:|")
for label, v, vw, raw_eps, raw_wall, hs, gw, load, crss, vrss, comp in summary:
    print("| %s | %.2f | %.2f | %.3f |" % (label, v / raw_eps["json-c"], v / raw_eps["minimal"], v / hs))
print()
print("wall: the whole process, start to exit, for every tool (vigil: rule loading, all worker "
      "threads, alerts written to a file; raw: one thread, compile included; grep: one thread, "
      "building its matcher included). own: vigil's scan time (rules loaded), raw's "
      "read+parse+scan (compile excluded). events per CPU-s: user+sys CPU time of the whole "
      "process, including loading.")
EOF
