#!/bin/sh
# Runs every libFuzzer target for a bounded time and fails on any crash,
# leak, timeout or out-of-memory, naming the reproducer.
#
#   tests/fuzz/run.sh BUILD_DIR SECONDS [TARGET...]   TARGET: rules config event state norm
#
# BUILD_DIR must be configured with clang and -DVIGIL_FUZZ=ON:
#   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DVIGIL_FUZZ=ON
# (the fuzz targets are built here if needed). Each target runs SECONDS
# seconds, one after the other, on one core.
#
# Corpora: BUILD_DIR/fuzz/corpus/TARGET keeps what libFuzzer found between
# runs. Seeds are assembled at run time in BUILD_DIR/fuzz/seeds/TARGET from
# this repository (tests/fuzz/seeds and regressions, rules/*.yaml,
# tests/data, systemd/vigil.yaml, rules/demo/events.jsonl, the rules'
# embedded tests) and, when present, from ../shared/data (VIGIL_SHARED_DIR):
# SigmaHQ rules (YAML) and Reuters-21578 stories as events. Nothing
# third-party is written into the repository.
#
# A failing input is saved as BUILD_DIR/fuzz/artifacts/TARGET/crash-*
# (leak-*, timeout-*, oom-*); replay it with
#   BUILD_DIR/tests/fuzz/fuzz_TARGET FILE
# then minimise it by hand and commit it to tests/fuzz/regressions/TARGET/,
# where ctest (fuzz_replay_TARGET) replays it in every build.
#
# Exit status: 0 no failure, 1 a target failed, 2 usage or build error.
set -u

usage() { echo "usage: $0 BUILD_DIR SECONDS [rules|config|event|state|norm]..." >&2; exit 2; }
[ $# -ge 2 ] || usage
BUILD=$(cd "$1" 2>/dev/null && pwd) || { echo "run.sh: no folder $1" >&2; exit 2; }
SECONDS_EACH=$2
shift 2
case $SECONDS_EACH in ''|*[!0-9]*) usage ;; esac
TARGETS=${*:-rules config event state norm}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
FUZZ=$ROOT/tests/fuzz
SHARED=${VIGIL_SHARED_DIR:-$ROOT/../shared}

if ! grep -q '^VIGIL_FUZZ:BOOL=ON' "$BUILD/CMakeCache.txt" 2>/dev/null; then
    echo "run.sh: $BUILD is not configured with -DVIGIL_FUZZ=ON (and clang)" >&2
    exit 2
fi
cmake --build "$BUILD" --target fuzz -j2 >&2 || { echo "run.sh: build failed" >&2; exit 2; }

W=$BUILD/fuzz
mkdir -p "$W"

# Copies up to MAX files from a list on stdin into folder DIR (prefixed).
take() { # DIR PREFIX MAX
    n=0
    while IFS= read -r f; do
        [ -f "$f" ] || continue
        n=$((n + 1))
        [ "$n" -le "$3" ] || break
        cp "$f" "$1/$2-$n-$(basename "$f")"
    done
}

# Writes each line of a JSON-lines stream (stdin) into DIR as a file.
split_lines() { # DIR PREFIX MAX
    awk -v dir="$1" -v p="$2" -v max="$3" 'NF && n < max {
        n++; f = sprintf("%s/%s-%05d.json", dir, p, n); printf "%s", $0 > f; close(f) }'
}

seed_rules() {
    d=$W/seeds/rules
    find "$FUZZ/seeds/rules" "$FUZZ/regressions/rules" "$ROOT/rules" "$ROOT/tests/data" \
        -name '*.y*ml' 2>/dev/null | sort | take "$d" own 1000
    if [ -d "$SHARED/data/sigma-rules" ]; then
        # Every 8th SigmaHQ rule: ~400 files of varied real-world YAML.
        find "$SHARED/data/sigma-rules" -name '*.yml' | sort | awk 'NR % 8 == 1' |
            take "$d" sigma 500
    else
        echo "run.sh: no $SHARED/data/sigma-rules; rules seeds from the repository only" >&2
    fi
}

seed_config() {
    d=$W/seeds/config
    find "$FUZZ/seeds/config" "$FUZZ/regressions/config" -type f 2>/dev/null | sort |
        take "$d" own 1000
    echo "$ROOT/systemd/vigil.yaml" | take "$d" unit 1
    # Rule files are YAML too: structures the key table must refuse.
    find "$ROOT/rules" "$ROOT/tests/data" -name '*.y*ml' | sort | take "$d" yaml 100
}

seed_event() {
    d=$W/seeds/event
    find "$FUZZ/seeds/event" "$FUZZ/regressions/event" -type f 2>/dev/null | sort |
        take "$d" own 1000
    split_lines "$d" demo 1000 < "$ROOT/rules/demo/events.jsonl"
    # The embedded tests of the shipped rules: events that match.
    if python3 -c 'import yaml' 2>/dev/null; then
        python3 - "$ROOT"/rules/*.yaml <<'PY' | split_lines "$d" ruletest 1000
import json, sys, yaml
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f) or {}
    for rule in doc.get("rules") or []:
        for kind in ("match", "no_match"):
            for ev in ((rule.get("tests") or {}).get(kind) or []):
                print(json.dumps(ev, ensure_ascii=False, default=str))
PY
    fi
    if [ -f "$SHARED/data/reuters21578/reut2-000.sgm" ]; then
        # 300 stories from across the corpus (every 70th), as vigil news events.
        python3 "$ROOT/tests/tools/reuters2jsonl.py" "$SHARED/data/reuters21578" |
            awk 'NR % 70 == 1' | split_lines "$d" reuters 300
    else
        echo "run.sh: no $SHARED/data/reuters21578; event seeds from the repository only" >&2
    fi
}

# The stateful rules' test sequences (tests.sequences) as JSON lines, one
# file per sequence.
seed_state() {
    d=$W/seeds/state
    find "$FUZZ/seeds/state" "$FUZZ/regressions/state" -type f 2>/dev/null | sort |
        take "$d" own 1000
    if python3 -c 'import yaml' 2>/dev/null; then
        python3 - "$d" "$ROOT"/rules/*.yaml <<'PY'
import json, os, sys, yaml
out, n = sys.argv[1], 0
for path in sys.argv[2:]:
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f) or {}
    for rule in doc.get("rules") or []:
        for seq in ((rule.get("tests") or {}).get("sequences") or []):
            n += 1
            with open(os.path.join(out, "sequence-%03d.jsonl" % n), "w", encoding="utf-8") as f:
                for ev in seq.get("events") or []:
                    f.write(json.dumps(ev, ensure_ascii=False, default=str) + "\n")
PY
    fi
}

# Field values for the normaliser: its own seeds and regressions, and the
# demo events' lines (Chinese, Korean, Japanese and English stories).
seed_norm() {
    d=$W/seeds/norm
    find "$FUZZ/seeds/norm" "$FUZZ/regressions/norm" -type f 2>/dev/null | sort |
        take "$d" own 1000
    n=0
    while IFS= read -r line; do
        n=$((n + 1))
        printf '%s' "$line" >"$d/demo-$n.txt"
    done <"$ROOT/rules/demo/events.jsonl"
}

max_len() {
    case $1 in rules) echo 16384 ;; config) echo 8192 ;; event|state) echo 16384 ;; norm) echo 4096 ;; esac
}

dict() {
    case $1 in state|norm) echo "$FUZZ/event.dict" ;; *) echo "$FUZZ/$1.dict" ;; esac
}

failed=0
summary=
for t in $TARGETS; do
    case $t in rules|config|event|state|norm) ;; *) usage ;; esac
    bin=$BUILD/tests/fuzz/fuzz_$t
    [ -x "$bin" ] || { echo "run.sh: $bin is not built" >&2; exit 2; }
    rm -rf "$W/seeds/$t"
    mkdir -p "$W/seeds/$t" "$W/corpus/$t" "$W/artifacts/$t"
    "seed_$t"
    log=$W/$t.log
    echo "==> fuzz_$t: ${SECONDS_EACH}s, $(ls "$W/seeds/$t" | wc -l) seeds," \
         "$(ls "$W/corpus/$t" | wc -l) inputs in the kept corpus" >&2
    start=$(date +%s)
    # -timeout: one input may take 10 s (a rule set compiles vectorscan
    # databases); -rss_limit_mb/-malloc_limit_mb: 2 GiB; leaks are failures.
    VIGIL_FUZZ_RULES=$ROOT/rules ASAN_OPTIONS=detect_leaks=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "$bin" -max_total_time="$SECONDS_EACH" -max_len="$(max_len "$t")" \
        -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 \
        -dict="$(dict "$t")" -artifact_prefix="$W/artifacts/$t/" \
        -print_final_stats=1 "$W/corpus/$t" "$W/seeds/$t" >"$log" 2>&1
    rc=$?
    secs=$(( $(date +%s) - start ))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
    corpus=$(ls "$W/corpus/$t" | wc -l)
    if [ "$rc" -ne 0 ]; then
        failed=1
        art=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        echo "run.sh: fuzz_$t FAILED (exit $rc) after ${secs}s; last lines of $log:" >&2
        grep -E 'ERROR|invariant broken|SUMMARY|#[0-9]+ in ' "$log" | head -n 25 >&2
        echo "run.sh: reproducer: ${art:-see $log}" >&2
        echo "run.sh: replay with: $bin ${art:-FILE}" >&2
        summary="$summary
| fuzz_$t | ${execs:-?} | ${secs} s | ${cov:-?} | $corpus | **FAILED**: ${art:-see $log} |"
    else
        summary="$summary
| fuzz_$t | ${execs:-?} | ${secs} s | ${cov:-?} | $corpus | none |"
    fi
done
echo "| target | executions | time | coverage (edges) | corpus | failures |"
echo "|---|---|---|---|---|---|$summary"
exit $failed
