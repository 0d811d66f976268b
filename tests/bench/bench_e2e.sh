#!/bin/sh
# End-to-end benchmark of `vigil run` on a real Kafka broker: throughput
# against a bare librdkafka consumer, latency at a fixed offered rate,
# ruleset load time and RSS, and two instances in one consumer group (see
# tests/bench/bench_e2e.c). Prints markdown tables on stdout, progress on
# stderr. Timings never make it fail.
#
#   tests/bench/bench_e2e.sh [bench_e2e options]     e.g. --count 200000
#
# --terms words|sdn (first argument, default words) picks the 1,000-term
# list of the throughput, latency and scale-out runs: "words" = 800
# middle-frequency words + 200 company names, so every event alerts (with
# ~31 matches each); "sdn" = 1,000 OFAC SDN names sampled as in
# bench_scan.sh, so few events alert (the latency probes still alert
# once each, on their "latency probe" phrase).
#
# --server-broker (before the bench_e2e options): run the broker JVM as a
# long-lived server would run: the C2 compiler and the ZGC collector
# (-XX:TieredStopAtLevel=4 -XX:+UseZGC) instead of the test suite's
# quick-start C1 + serial GC, whose 15-35 ms young-generation pauses every
# ~1.5 s at 5,000 events/s set the p99. C2 needs ~15 s to compile the hot
# paths, so pass --warmup-seconds 30 with it.
#
# --broker-tmpfs: keep the broker's data in /dev/shm instead of /tmp. On a
# disk, the kernel writes the broker's log back every 30 s
# (vm.dirty_expire_centisecs) in one burst of ~600 MB at 5,000 events/s;
# while it does, the broker's appends wait and every client (vigil and the
# relay alike) sees 40-110 ms. In production the broker has disks of its
# own; on this shared 2-core machine the burst lands in the measurement.
# Pass it to measure vigil rather than the disk; the report names where the
# data was.
#
# --rules PATH: the throughput job also runs vigil with this rule file or
# folder (e.g. rules/, the shipped packs with near/except/entity rules) on
# the 1-partition topic.
#
# --lean-alerts: vigil leaves the event out of its alerts
# (output.include_event: false); the latency rule's summary carries the
# probe's seq and sent_ns instead.
#
# bench_e2e options: --count M (events per topic, default 150000),
# --rate R[,R...] (latency offered rates, default 5000,1000),
# --rounds N (throughput runs per job, interleaved, median kept; 3),
# --latency-seconds S (10), --warmup-seconds S (paced warm-up before each
# latency run, 2), --timeout S (per consumer run, 300),
# --only tput,lat,load,scale (default: all).
#
# It starts its own broker (tests/kafka/kafka-broker.sh) on ports other than
# the test suite's, in a fresh temporary folder, and stops it on exit.
#
# Environment:
#   VIGIL_BUILD_DIR   build folder with vigil and bench_e2e (default: build;
#                     bench_e2e may be in it or in its tests/ folder)
#   VIGIL_SHARED_DIR  the folder holding data/reuters21578/ and
#                     data/screening/ofac-sdn-2024-05-03/ (default: ../shared
#                     next to the repository)
#   VIGIL_KAFKA_PORT, VIGIL_KAFKA_CONTROLLER_PORT   default 29192, 29193
#   VIGIL_WORKERS     vigil's evaluation threads (default nproc)
#   BENCH_E2E_KEEP=1  keep the work folder (configs, vigil logs, the broker's
#                     log; the broker data is always deleted)
#
# Exit status: 0 done, 77 skipped (no data, no Java/Maven for the broker),
# other: could not run.
set -eu
terms_kind=words
broker_tmpfs=
# The wrapper's own options come first, in any order.
while [ $# -gt 0 ]; do
    case $1 in
        --terms)
            terms_kind=${2:-}
            shift 2 || { echo "bench_e2e.sh: --terms needs words or sdn" >&2; exit 2; } ;;
        --server-broker)
            shift
            VIGIL_KAFKA_JVM_OPTS="-XX:TieredStopAtLevel=4 -XX:+UseZGC ${VIGIL_KAFKA_JVM_OPTS:-}"
            export VIGIL_KAFKA_JVM_OPTS ;;
        --broker-tmpfs)
            shift
            broker_tmpfs=1 ;;
        --rules)
            [ -e "${2:-}" ] || { echo "bench_e2e.sh: --rules needs a rule file or folder" >&2; exit 2; }
            BENCH_RULES=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
            export BENCH_RULES
            shift 2 ;;
        *) break ;;
    esac
done
case $terms_kind in
    words|sdn) ;;
    *) echo "bench_e2e.sh: --terms must be words or sdn" >&2; exit 2 ;;
esac
# bench_e2e prints it in its report
export BENCH_BROKER_JVM="${VIGIL_KAFKA_JVM_OPTS:-test defaults (C1 only, serial GC)}"

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${VIGIL_BUILD_DIR:-$ROOT/build}
SHARED=${VIGIL_SHARED_DIR:-$ROOT/../shared}
REUTERS=$SHARED/data/reuters21578
SDN=$SHARED/data/screening/ofac-sdn-2024-05-03
export VIGIL_KAFKA_PORT=${VIGIL_KAFKA_PORT:-29192}
export VIGIL_KAFKA_CONTROLLER_PORT=${VIGIL_KAFKA_CONTROLLER_PORT:-29193}

if [ ! -f "$REUTERS/reut2-000.sgm" ]; then
    echo "bench_e2e.sh: SKIP: Reuters-21578 not found at $REUTERS" \
         "(set VIGIL_SHARED_DIR to the folder holding data/)" >&2
    exit 77
fi
if ! command -v python3 >/dev/null; then
    echo "bench_e2e.sh: SKIP: python3 is needed to prepare the data" >&2
    exit 77
fi

if [ -f "$BUILD/CMakeCache.txt" ]; then
    cmake --build "$BUILD" --target vigil bench_e2e >&2 ||
        echo "bench_e2e.sh: building vigil and bench_e2e in $BUILD failed; using what is there" >&2
fi
VIGIL=$BUILD/vigil
BENCH=
for b in "$BUILD/bench_e2e" "$BUILD/tests/bench_e2e" "$BUILD/tests/bench/bench_e2e"; do
    [ -x "$b" ] && { BENCH=$b; break; }
done
if [ ! -x "$VIGIL" ] || [ -z "$BENCH" ]; then
    echo "bench_e2e.sh: vigil or bench_e2e is not built in $BUILD;" \
         "build them: cmake --build $BUILD --target vigil bench_e2e" >&2
    exit 2
fi

WORK=$(mktemp -d /tmp/vigil-bench-e2e.XXXXXX)
KDIR=$WORK/kafka
export BENCH_BROKER_DATA="$KDIR (disk)"
if [ -n "$broker_tmpfs" ]; then
    if [ ! -d /dev/shm ] || [ ! -w /dev/shm ]; then
        echo "bench_e2e.sh: --broker-tmpfs needs a writable /dev/shm" >&2
        exit 2
    fi
    KDIR=$(mktemp -d /dev/shm/vigil-bench-kafka.XXXXXX)
    export BENCH_BROKER_DATA="$KDIR (tmpfs)"
fi
cleanup() {
    "$ROOT/tests/kafka/kafka-broker.sh" stop "$KDIR" >/dev/null 2>&1 || true
    rm -rf "$KDIR/data"
    if [ -n "$broker_tmpfs" ]; then
        [ "${BENCH_E2E_KEEP:-}" != 1 ] || cp "$KDIR/broker.log" "$WORK/broker.log" 2>/dev/null || :
        rm -rf "$KDIR"
    fi
    if [ "${BENCH_E2E_KEEP:-}" = 1 ]; then
        echo "bench_e2e.sh: work folder kept: $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rc=0
"$ROOT/tests/kafka/kafka-broker.sh" start "$KDIR" >&2 || rc=$?
if [ "$rc" -ne 0 ]; then
    [ "$rc" -eq 77 ] &&
        echo "bench_e2e.sh: SKIP: no Kafka broker (Java 17 and Maven are needed)" >&2
    exit "$rc"
fi

echo "bench_e2e.sh: preparing events and term lists in $WORK" >&2
python3 "$ROOT/tests/tools/reuters2jsonl.py" "$REUTERS" > "$WORK/reuters.jsonl"

# 1,000 terms: 800 words of middle frequency in the corpus (document
# frequency ranks 1000-1799, words of 4+ letters: "recovery", "partnership",
# "worldwide", ...) and the 200 company names written most often before
# Inc/Corp/Co/Ltd ("General Motors", "Salomon Brothers", ...). The first 10
# names are the 10-term list.
python3 - "$WORK/reuters.jsonl" "$WORK/terms-1000.txt" "$WORK/terms-10.txt" <<'EOF'
import collections, json, re, sys
src, out1k, out10 = sys.argv[1:4]
df, firms = collections.Counter(), collections.Counter()
word = re.compile(r"[A-Za-z]{4,}")
firm = re.compile(r"((?:[A-Z][a-zA-Z&]+ ){1,3})"
                  r"(?:Inc|Corp|Co|Ltd|PLC|Plc|Group|Corporation|Company)\b")
skip_first = {"The", "A", "An", "Reuter", "In", "Its", "Of", "And", "For", "By"}
with open(src, encoding="utf-8") as f:
    for line in f:
        e = json.loads(line)
        text = e.get("title", "") + " " + e.get("body", "")
        df.update({w.lower() for w in word.findall(text)})
        for m in firm.finditer(text):
            name = m.group(1).strip()
            if name.split()[0] in skip_first or (" " not in name and len(name) < 5):
                continue
            firms[name] += 1
words = [w for w, _ in df.most_common()][1000:1800]
seen = set(words)
names = [n for n, _ in firms.most_common(400) if n.lower() not in seen][:200]
with open(out1k, "w", encoding="utf-8") as f:
    f.write("\n".join(words + names) + "\n")
with open(out10, "w", encoding="utf-8") as f:
    f.write("\n".join(names[:10]) + "\n")
EOF

terms1k=$WORK/terms-1000.txt
if [ "$terms_kind" = sdn ]; then
    if [ ! -f "$SDN/sdn.csv" ]; then
        echo "bench_e2e.sh: SKIP: --terms sdn needs the OFAC SDN list at $SDN" >&2
        exit 77
    fi
    terms1k=$WORK/terms-sdn-1000.txt
    python3 "$ROOT/tests/tools/sdn2list.py" --types all --sample 1000 --seed 1 "$SDN" > "$terms1k"
fi
set -- --terms-10 "$WORK/terms-10.txt" --terms-1000 "$terms1k" "$@"
if [ -f "$SDN/sdn.csv" ]; then
    python3 "$ROOT/tests/tools/sdn2list.py" --types all "$SDN" > "$WORK/terms-sdn.txt"
    set -- --terms-14k "$WORK/terms-sdn.txt" "$@"
else
    echo "bench_e2e.sh: no OFAC SDN list at $SDN; the 14k-term load is skipped" >&2
fi

rc=0
"$BENCH" --brokers "$(cat "$KDIR/bootstrap")" --vigil "$VIGIL" \
    --workdir "$WORK" --events "$WORK/reuters.jsonl" \
    --broker-pid "$(cat "$KDIR/broker.pid")" "$@" || rc=$?
exit "$rc"
