#!/usr/bin/env bash
# Throughput of `vigil run` with delivery: at-least-once against
# exactly-once (several commit intervals), on a real broker. A benchmark:
# it prints a markdown table and never fails on slow figures.
#
#   tests/fault/eos_throughput.sh VIGIL_BIN BOOTSTRAP [EVENTS]
#
# BOOTSTRAP is a running broker (e.g. one started with
# tests/kafka/kafka-broker.sh on ports of your own). EVENTS (default
# 200000) synthetic news/trade events (~41% raise an alert, 1% are dead
# letters) go to a fresh topic once; each mode then reads
# them all with a fresh consumer group. The time runs from the first
# event consumed to the last output acknowledged (exactly-once: and the
# last transaction committed, vigil_transaction_open 0), read from
# vigil's /metrics every 50 ms.
# Needs kcat, curl and python3.
set -euo pipefail
vigil=${1:?usage: eos_throughput.sh VIGIL_BIN BOOTSTRAP [EVENTS]}
boot=${2:?usage: eos_throughput.sh VIGIL_BIN BOOTSTRAP [EVENTS]}
n=${3:-200000}
for tool in kcat curl python3; do
    command -v "$tool" >/dev/null || { echo "eos_throughput: needs $tool" >&2; exit 77; }
done
work=$(mktemp -d /tmp/vigil-eos-tput.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
topic=eos-tput-$$-$RANDOM

python3 - "$n" >"$work/events.jsonl" <<'EOF'
import sys
n = int(sys.argv[1])
for i in range(n):
    if i % 97 == 50:
        print('{"type":"news","title":"cut off %d' % i)
    elif i % 3 == 0:
        print('{"type":"news","id":"n-%d","title":"Ministry announces new SANCTIONS on exporter %d","body":"Details follow."}' % (i, i))
    elif i % 3 == 1:
        print('{"type":"news","id":"n-%d","title":"Urban sanctuary opens %d","body":"A suburban ban on cars."}' % (i, i))
    else:
        cn, drop = (i // 3) % 2 == 0, (i // 6) % 2 == 0
        print('{"type":"trade","id":"t-%d","reporter":"TW","partner":"%s","flow":"export","hs_code":854231,"change_pct":%s}'
              % (i, "cn" if cn else "DE", "-30.5" if drop else "5"))
EOF
cat >"$work/rules.yaml" <<EOF
lists:
  watch_partners: [CN, RU]
rules:
  - id: sanction-news
    severity: medium
    match:
      all:
        - {field: type, eq: news}
        - text: {any: ["sanction*", "export ban"]}
  - id: trade-drop
    severity: high
    match:
      all:
        - {field: type, eq: trade}
        - {field: partner, in: \$watch_partners}
        - {field: change_pct, lte: -20}
EOF
outputs=$("$vigil" scan --rules "$work/rules.yaml" "$work/events.jsonl" 2>/dev/null | wc -l)
broken=$(grep -c 'cut off' "$work/events.jsonl" || true)
want=$((outputs + broken))
# kcat cannot create topics: the broker auto-creates it (its
# num.partitions, 1 with kafka-broker.sh).
kcat -b "$boot" -P -t "$topic" -l "$work/events.jsonl"
echo "eos_throughput: $n events in $topic, $outputs alerts + $broken dead letters expected" >&2

port=$((20000 + RANDOM % 20000))
run() { # label delivery interval_ms
    local label=$1 delivery=$2 interval=$3 group=$topic-$RANDOM
    cat >"$work/$group.yaml" <<EOF
kafka:
  brokers: "$boot"
  group: $group
input:
  topics: [$topic]
output:
  topic: $topic.alerts
  dead_letter_topic: $topic.dlq
rules:
  paths: [$work/rules.yaml]
delivery: $delivery
exactly_once:
  commit_interval_ms: $interval
metrics:
  listen: "127.0.0.1:$port"
EOF
    "$vigil" run --config "$work/$group.yaml" >"$work/$group.log" 2>&1 &
    local pid=$! t0="" t1="" m consumed acked open
    local deadline=$((SECONDS + 600))
    while ((SECONDS < deadline)); do
        m=$(curl -s "http://127.0.0.1:$port/metrics" || true)
        consumed=$(awk '/^vigil_events_consumed_total\{/ {s += $2} END {print s + 0}' <<<"$m")
        acked=$(awk '/^vigil_alerts_produced_total\{|^vigil_events_dead_lettered_total\{/ {s += $2} END {print s + 0}' <<<"$m")
        # Exactly-once: done once the transaction holding the last outputs
        # has committed too.
        open=$(awk '/^vigil_transaction_open / {print $2}' <<<"$m")
        if [[ -z $t0 && $consumed != 0 ]]; then t0=$(date +%s.%N); fi
        if ((acked >= want)) && [[ ${open:-0} == 0 ]]; then
            t1=$(date +%s.%N)
            break
        fi
        sleep 0.05
    done
    kill -TERM "$pid"
    wait "$pid" || true
    if [[ -z $t1 || -z $t0 ]]; then
        echo "| $label | did not finish (see $work/$group.log) | |"
        return
    fi
    python3 -c "import sys; t=float(sys.argv[2])-float(sys.argv[1]); print('| %s | %.1f s | %.0f events/s |' % (sys.argv[4], t, int(sys.argv[3]) / t))" \
        "$t0" "$t1" "$n" "$label"
    port=$((port + 1))
}

echo "| delivery | time for $n events | throughput |"
echo "|---|---|---|"
run "at-least-once" at-least-once 100
run "exactly-once, commit every 100 ms (default)" exactly-once 100
run "exactly-once, commit every 1000 ms" exactly-once 1000
run "at-least-once (again)" at-least-once 100
run "exactly-once, 100 ms (again)" exactly-once 100
