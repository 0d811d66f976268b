#!/bin/sh
# Soak benchmark: `vigil run` on a real Kafka broker over 1,000,000 events
# with a SIGHUP reload every few seconds (two equivalent rule sets in turn,
# now and then a broken one), checking that every expected alert arrives
# exactly once and that RSS stays flat (see tests/bench/soak.c). Prints a
# markdown table on stdout, progress on stderr.
#
#   tests/bench/soak.sh [soak options]      e.g. --count 50000 (CI-sized)
#
# soak options: --count N (events, default 1000000), --rate R (produce at R
# events/s while vigil runs; default: all beforehand, vigil at full speed),
# --reload-every S (1), --broken-every K (5: every 5th reload is to a broken
# set), --bad-every M (10000: every M-th event is not JSON),
# --sample-every S (2), --timeout S (1800).
#
#   tests/bench/soak.sh                           1M events at full speed
#   tests/bench/soak.sh --rate 5000 --reload-every 3    1M over ~200 s
#   tests/bench/soak.sh --count 50000 --reload-every 0.5   CI-sized, ~1 min
#
# It starts its own broker (tests/kafka/kafka-broker.sh) on ports 29492/29493
# in a fresh temporary folder and stops it on exit. The events are the
# Reuters-21578 stories (tests/tools/reuters2jsonl.py), cycled; the rules
# are the four stateless shipped packs (with rules/lists) plus one rule on
# common business words, so that about a third of the stories alert.
# The expected alerts come from `vigil scan` of the same stories.
#
# Environment:
#   VIGIL_BUILD_DIR   build folder with vigil and soak (default: build)
#   VIGIL_SHARED_DIR  folder holding data/reuters21578 (default ../shared)
#   VIGIL_KAFKA_PORT, VIGIL_KAFKA_CONTROLLER_PORT   default 29492, 29493
#   SOAK_KEEP=1       keep the work folder (config, rule sets, vigil.log)
#
# Exit status: 0 nothing lost, 1 alerts missing/duplicated/unexpected or
# dead letters wrong, 77 skipped (no data, no Java/Maven), other: could
# not run.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${VIGIL_BUILD_DIR:-$ROOT/build}
SHARED=${VIGIL_SHARED_DIR:-$ROOT/../shared}
REUTERS=$SHARED/data/reuters21578
export VIGIL_KAFKA_PORT=${VIGIL_KAFKA_PORT:-29492}
export VIGIL_KAFKA_CONTROLLER_PORT=${VIGIL_KAFKA_CONTROLLER_PORT:-29493}

if [ ! -f "$REUTERS/reut2-000.sgm" ]; then
    echo "soak.sh: SKIP: Reuters-21578 not found at $REUTERS" \
         "(set VIGIL_SHARED_DIR to the folder holding data/)" >&2
    exit 77
fi
command -v python3 >/dev/null || { echo "soak.sh: SKIP: python3 is needed" >&2; exit 77; }

if [ -f "$BUILD/CMakeCache.txt" ]; then
    cmake --build "$BUILD" --target vigil soak >&2 ||
        echo "soak.sh: building vigil and soak in $BUILD failed; using what is there" >&2
fi
VIGIL=$BUILD/vigil
SOAK=
for b in "$BUILD/soak" "$BUILD/tests/soak"; do
    [ -x "$b" ] && { SOAK=$b; break; }
done
if [ ! -x "$VIGIL" ] || [ -z "$SOAK" ]; then
    echo "soak.sh: vigil or soak is not built in $BUILD;" \
         "build them: cmake --build $BUILD --target vigil soak" >&2
    exit 2
fi

WORK=$(mktemp -d /tmp/vigil-soak.XXXXXX)
cleanup() {
    "$ROOT/tests/kafka/kafka-broker.sh" stop "$WORK/kafka" >/dev/null 2>&1 || true
    rm -rf "$WORK/kafka/data"
    if [ "${SOAK_KEEP:-}" = 1 ]; then
        echo "soak.sh: work folder kept: $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "soak.sh: preparing events and rule sets in $WORK" >&2
python3 "$ROOT/tests/tools/reuters2jsonl.py" "$REUTERS" > "$WORK/reuters.jsonl"

# Rule set A: the shipped packs and a rule on common words.
A=$WORK/rules-a B=$WORK/rules-b X=$WORK/rules-broken
mkdir -p "$A" "$B" "$X"
# The stateless packs only: a rule with a time window or a throttle alerts
# according to arrival times, which `vigil scan` cannot predict exactly.
for p in export-controls critical-minerals trade-flows sanctions-screening; do
    cp "$ROOT/rules/$p.yaml" "$A/"
done
cp -r "$ROOT/rules/lists" "$A/lists"
cat > "$A/soak-common-words.yaml" <<'YAML'
# Soak benchmark: a rule that many stories match (business words).
rules:
  - id: soak-common-words
    title: A story on markets
    severity: low
    tags: [soak]
    match:
      text: { any: [oil, bank, dollar, tonnes, profit, shares, exports] }
    alert:
      summary: "{title}"
YAML
# Rule set B: the same rules under other names (so loaded in the reverse
# order) and with other comments: it alerts exactly as A does.
cp -r "$A/lists" "$B/lists"
n=90
for f in "$A"/*.yaml; do
    { echo "# soak variant B of $(basename "$f")"; cat "$f"; echo "# end of variant B"; } \
        > "$B/$n-$(basename "$f")"
    n=$((n - 10))
done
# The broken set: A plus a file with an error; vigil must keep its rules.
cp -r "$A"/. "$X/"
printf 'rules:\n  - id: soak-broken\n    title: Broken\n    severity: urgent\n    match: {text: {any: [x]}}\n' \
    > "$X/zz-broken.yaml"

"$VIGIL" check "$A" >&2
"$VIGIL" check "$B" >&2
if "$VIGIL" check "$X" >/dev/null 2>&1; then
    echo "soak.sh: the broken rule set passed vigil check" >&2
    exit 2
fi
"$VIGIL" scan --rules "$A" "$WORK/reuters.jsonl" > "$WORK/expected.jsonl"
"$VIGIL" scan --rules "$B" "$WORK/reuters.jsonl" > "$WORK/expected-b.jsonl"
# Same (rule, line) pairs from both sets, or the soak would prove nothing.
for s in a b; do
    f=$WORK/expected.jsonl; [ "$s" = b ] && f=$WORK/expected-b.jsonl
    sed 's/^.*"rule":"\([^"]*\)".*"source":{"file":"[^"]*","line":\([0-9]*\)}.*$/\1 \2/' "$f" |
        sort > "$WORK/pairs-$s.txt"
done
if ! cmp -s "$WORK/pairs-a.txt" "$WORK/pairs-b.txt"; then
    echo "soak.sh: rule sets A and B do not alert identically" >&2
    exit 2
fi
echo "soak.sh: $(wc -l < "$WORK/expected.jsonl") alerts over $(wc -l < "$WORK/reuters.jsonl") stories per cycle" >&2

rc=0
"$ROOT/tests/kafka/kafka-broker.sh" start "$WORK/kafka" >&2 || rc=$?
if [ "$rc" -ne 0 ]; then
    [ "$rc" -eq 77 ] && echo "soak.sh: SKIP: no Kafka broker (Java 17 and Maven are needed)" >&2
    exit "$rc"
fi

# Rules with their own alert.topic send there, not to the default topic.
TOPICS=$(sed -n 's/^ *topic: *\([^ #]*\).*$/\1/p' "$A"/*.yaml | sort -u | paste -sd, -)

rc=0
"$SOAK" --brokers "$(cat "$WORK/kafka/bootstrap")" --vigil "$VIGIL" --workdir "$WORK" \
    --events "$WORK/reuters.jsonl" --expected "$WORK/expected.jsonl" \
    --rules-link "$WORK/rules" --variants "$A,$B,$X" ${TOPICS:+--alert-topics "$TOPICS"} \
    "$@" || rc=$?
exit "$rc"
