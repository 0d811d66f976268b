#!/usr/bin/env bash
# The analyst's commands as a user runs them: exit codes, what is printed
# on stdout and stderr. Usage: cli_test.sh VIGIL_BINARY SOURCE_DIR
set -uo pipefail
vigil=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0

check() { # check NAME EXPECTED_STATUS ACTUAL_STATUS
    if [ "$2" = "$3" ]; then
        pass=$((pass + 1))
    else
        echo "FAIL: $1: exit status $3, expected $2" >&2
        fail=$((fail + 1))
    fi
}

contains() { # contains NAME FILE TEXT
    if grep -qF -- "$3" "$2"; then
        pass=$((pass + 1))
    else
        echo "FAIL: $1: '$3' not in output:" >&2
        sed 's/^/    /' "$2" >&2
        fail=$((fail + 1))
    fi
}

# --help, --version, usage errors
"$vigil" --help >"$tmp/out" 2>&1; check "--help" 0 $?
contains "--help lists commands" "$tmp/out" "scan --rules PATH"
"$vigil" --version >"$tmp/out" 2>&1; check "--version" 0 $?
contains "--version" "$tmp/out" "vigil "
"$vigil" scan --help >"$tmp/out" 2>&1; check "scan --help" 0 $?
"$vigil" frobnicate >"$tmp/out" 2>&1; check "unknown command" 2 $?
"$vigil" scan "$tmp/none.jsonl" >"$tmp/out" 2>&1; check "scan without --rules" 2 $?
"$vigil" check >"$tmp/out" 2>&1; check "check without paths" 2 $?

# The shipped rule packs are valid and their embedded tests pass.
"$vigil" check "$src/rules" >"$tmp/out" 2>&1; check "check rules/" 0 $?
contains "check lists rules" "$tmp/out" "chipmaker-export-restriction"
"$vigil" test "$src/rules" >"$tmp/out" 2>&1; check "test rules/" 0 $?
contains "test summary" "$tmp/out" "0 failed"

# A broken file: exit 1, every error with file:line:col and a hint.
cat >"$tmp/bad.yaml" <<'YAML'
rules:
  - id: bad
    severity: hihg
    match:
      all:
        - tetx: {any: [a]}
        - {field: x, lt: "5"}
YAML
"$vigil" check "$tmp/bad.yaml" >"$tmp/out" 2>&1; check "check broken" 1 $?
contains "severity typo" "$tmp/out" "bad.yaml:3:15: error: unknown severity 'hihg' (did you mean 'high'?)"
contains "condition typo" "$tmp/out" "bad.yaml:6:11: error: unknown condition 'tetx' (did you mean 'text'?)"
contains "quoted number" "$tmp/out" "bad.yaml:7:26: error: 'lt' compares numbers"

# A rule whose embedded test fails: exit 1, and the deciding condition.
cat >"$tmp/failing.yaml" <<'YAML'
rules:
  - id: wants-ban
    match: {text: {any: [ban]}}
    tests:
      match: [{title: "an urban myth"}]
YAML
"$vigil" test "$tmp/failing.yaml" >"$tmp/out" 2>&1; check "test failing" 1 $?
contains "failing case located" "$tmp/out" "failing.yaml:5: expected a match"
contains "explains the condition" "$tmp/out" 'text any ["ban"] in [title, body] -> false'

# scan: malformed lines are reported with file:line, scanning goes on.
cat >"$tmp/rules.yaml" <<'YAML'
rules:
  - id: curbs
    match: {text: {any: ["export curb*"]}}
YAML
{
    echo '{"title":"New export curbs announced"}'
    echo 'not json'
    printf '{"title":"caf\xc3\x28"}\n'
    echo '[1,2]'
    echo ''
    echo '{"title":"Export  CURB on gallium"}'
} >"$tmp/events.jsonl"
"$vigil" scan --rules "$tmp/rules.yaml" "$tmp/events.jsonl" >"$tmp/alerts" 2>"$tmp/err"
check "scan with malformed lines" 0 $?
contains "invalid JSON reported" "$tmp/err" "events.jsonl:2: invalid JSON"
contains "invalid UTF-8 reported" "$tmp/err" "events.jsonl:3: event is not valid UTF-8"
contains "not an object reported" "$tmp/err" "events.jsonl:4: event is a JSON array, not an object"
if [ "$(wc -l <"$tmp/alerts")" -eq 2 ]; then pass=$((pass + 1)); else
    echo "FAIL: scan: expected 2 alerts, got $(wc -l <"$tmp/alerts")" >&2; fail=$((fail + 1)); fi
contains "alert source line 1" "$tmp/alerts" '"source":{"file":"'"$tmp"'/events.jsonl","line":1}'
contains "alert source line 6" "$tmp/alerts" '"line":6}'

# --text-fields takes any number of fields (the 40th is scanned too)
fields=$(seq -f 'f%g' -s, 1 40)
echo '{"f40":"Export curbs on gallium"}' |
    "$vigil" scan --text-fields "$fields" --rules "$tmp/rules.yaml" - >"$tmp/alerts" 2>"$tmp/err"
check "scan --text-fields with 40 fields" 0 $?
contains "the 40th text field is scanned" "$tmp/alerts" '"field":"f40"'

# scan from stdin, and the same result whatever the number of threads.
for w in 0 1 2; do
    VIGIL_WORKERS=$w "$vigil" scan --rules "$src/rules" <"$src/rules/demo/events.jsonl" 2>/dev/null |
        sed 's/"time":"[^"]*"//' >"$tmp/w$w"
done
if cmp -s "$tmp/w0" "$tmp/w2" && cmp -s "$tmp/w0" "$tmp/w1" && [ -s "$tmp/w0" ]; then
    pass=$((pass + 1))
else
    echo "FAIL: scan output differs between 0, 1 and 2 worker threads" >&2
    fail=$((fail + 1))
fi

# A tuning variable that is not a number is reported, not read as 0.
for bad in abc -1 4x 100000; do
    VIGIL_WORKERS=$bad "$vigil" scan --rules "$src/rules" <"$src/rules/demo/events.jsonl" \
        >"$tmp/wraw" 2>"$tmp/err"
    check "scan with VIGIL_WORKERS=$bad" 0 $?
    sed 's/"time":"[^"]*"//' "$tmp/wraw" >"$tmp/wbad"
    contains "VIGIL_WORKERS=$bad is named in a warning" "$tmp/err" "variable=VIGIL_WORKERS value=$bad"
    if cmp -s "$tmp/w0" "$tmp/wbad"; then pass=$((pass + 1)); else
        echo "FAIL: scan output with VIGIL_WORKERS=$bad differs" >&2; fail=$((fail + 1)); fi
done

# Stateful rules: each input file is one partition, fed in line order.
cat >"$tmp/surge.yaml" <<'YAML'
rules:
  - id: surge
    match: {text: {any: [entity list]}}
    threshold: {count: 3, window: 24h, group_by: entities}
YAML
for i in 1 2 3 4; do
    echo '{"published_at":"2024-03-01T0'$i':00:00Z","title":"entity list","entities":["SMIC"]}'
done >"$tmp/day.jsonl"
"$vigil" check "$tmp/surge.yaml" >"$tmp/out" 2>&1; check "check stateful" 0 $?
contains "check lists stateful" "$tmp/out" "stateful: threshold 3 in 1d by entities"
"$vigil" scan --rules "$tmp/surge.yaml" "$tmp/day.jsonl" >"$tmp/alerts" 2>"$tmp/err"
check "scan stateful" 0 $?
contains "threshold alert" "$tmp/alerts" '"state":{"kind":"threshold","group":{"entities":"smic"},"count":3'
contains "threshold alert source" "$tmp/alerts" '"line":3}'
if [ "$(wc -l <"$tmp/alerts")" -ne 1 ]; then
    echo "FAIL: stateful scan: expected 1 alert, got $(wc -l <"$tmp/alerts")" >&2; fail=$((fail + 1)); fi
"$vigil" scan --rules "$tmp/surge.yaml" "$tmp/day.jsonl" 2>/dev/null >"$tmp/alerts2"
if cmp -s <(sed 's/"time":"[^"]*"//' "$tmp/alerts") <(sed 's/"time":"[^"]*"//' "$tmp/alerts2"); then
    pass=$((pass + 1))
else
    echo "FAIL: stateful scan: a replay gave other alerts or ids" >&2; fail=$((fail + 1))
fi
head -2 "$tmp/day.jsonl" >"$tmp/p0.jsonl"; tail -2 "$tmp/day.jsonl" >"$tmp/p1.jsonl"
"$vigil" scan --rules "$tmp/surge.yaml" "$tmp/p0.jsonl" "$tmp/p1.jsonl" >"$tmp/alerts" 2>/dev/null
check "scan two partitions" 0 $?
if [ -s "$tmp/alerts" ]; then
    echo "FAIL: stateful scan: two files are two partitions, counts must not mix" >&2; fail=$((fail + 1)); fi
sed 's/window: 24h/window: 24/' "$tmp/surge.yaml" >"$tmp/bad-surge.yaml"
"$vigil" check "$tmp/bad-surge.yaml" >"$tmp/out" 2>&1; check "check duration without unit" 1 $?
contains "duration error location" "$tmp/out" "bad-surge.yaml:4:35: error: 'window: 24' has no unit"

# eval: precision/recall against a label.
{
    echo '{"title":"export curbs on chips","topics":["trade"]}'
    echo '{"title":"export curbs widen","topics":["trade","grain"]}'
    echo '{"title":"export curbs rumour","topics":["earn"]}'
    echo '{"title":"grain exports rise","topics":["trade"]}'
} >"$tmp/labelled.jsonl"
"$vigil" eval --rules "$tmp/rules.yaml" --label topics=trade "$tmp/labelled.jsonl" >"$tmp/out" 2>&1
check "eval" 0 $?
contains "eval counts" "$tmp/out" "4 events, 3 labelled topics=trade"
contains "eval scores" "$tmp/out" "curbs                                          2       1       1     0.667   0.667   0.667"
contains "eval false positive" "$tmp/out" "false positive: $tmp/labelled.jsonl:3 export curbs rumour"
"$vigil" eval --rules "$tmp/rules.yaml" --label nolabel "$tmp/labelled.jsonl" >"$tmp/out" 2>&1
check "eval bad label" 2 $?

# check warns about terms that cannot match or mislead; --strict fails on them.
cat >"$tmp/warn.yaml" <<'YAML'
lists:
  empty: []
  dup: ["SMIC", "smic"]
rules:
  - id: warned
    match:
      any:
        - text: {any: ["chip?", "/[A-Z]{3}/", "ok"]}
        - text: {any: $dup}
YAML
"$vigil" check "$tmp/warn.yaml" >"$tmp/out" 2>&1; check "check with warnings" 0 $?
contains "wildcard warning" "$tmp/out" "warn.yaml:8:24: warning: '?' in the term 'chip?' is a literal character"
contains "case regex warning" "$tmp/out" "warn.yaml:8:33: warning: regular expression /[A-Z]{3}/ tells case apart"
contains "duplicate warning" "$tmp/out" "warn.yaml:3:17: warning: 'smic' is in list 'dup' twice"
contains "empty list warning" "$tmp/out" "warn.yaml:2:3: warning: list 'empty' is empty"
"$vigil" check --strict "$tmp/warn.yaml" >"$tmp/out" 2>&1; check "check --strict with warnings" 1 $?
contains "strict makes errors" "$tmp/out" "warn.yaml:8:24: error: '?' in the term"
printf 'rules:\n  - id: flags\n    match: {text: {any: ["/(?i)ban/"]}}\n' >"$tmp/flags.yaml"
"$vigil" check "$tmp/flags.yaml" >"$tmp/out" 2>&1; check "inline regex flag" 1 $?
contains "inline flag located" "$tmp/out" "flags.yaml:3:26: error: inline option '(?i)'"

# A byte-order mark before a list file's first term or an events file's
# first line is not part of it.
printf '\xef\xbb\xbfSMIC\nMicron\n' >"$tmp/bom-list.txt"
printf 'lists:\n  makers: {file: bom-list.txt}\nrules:\n  - id: bom\n    match: {text: {any: $makers}}\n' \
    >"$tmp/bom.yaml"
printf '\xef\xbb\xbf{"title":"SMIC on the list"}\n{"title":"Micron too"}\n' >"$tmp/bom.jsonl"
"$vigil" scan --rules "$tmp/bom.yaml" "$tmp/bom.jsonl" >"$tmp/out" 2>"$tmp/err"; check "scan BOM" 0 $?
contains "BOM first term and first event" "$tmp/out" '"term":"SMIC"'
contains "BOM nothing malformed" "$tmp/err" "2 events, 0 malformed, 2 alerts"

# kafka.properties that librdkafka refuses: check --config finds them, and
# run exits 1 (an invalid configuration, not restarted by the unit) before
# it contacts a broker, naming the property; a value from the environment
# is never shown.
printf 'rules:\n  - id: r\n    match: {text: {any: [ban]}}\n' >"$tmp/props-rules.yaml"
props_config() { # props_config FILE PROPERTY-LINES...
    local f=$1
    shift
    printf 'kafka:\n  brokers: "127.0.0.1:1"\n  group: g\n  properties:\n' >"$f"
    printf '    %s\n' "$@" >>"$f"
    printf 'input:\n  topics: [news]\nrules:\n  paths: [%s]\nmetrics:\n  listen: "off"\n' \
        "$tmp/props-rules.yaml" >>"$f"
}
props_config "$tmp/props-unknown.yaml" "sasl.pasword: x" "acks: all"
"$vigil" check --config "$tmp/props-unknown.yaml" >"$tmp/out" 2>&1; check "check unknown kafka property" 1 $?
contains "unknown property named" "$tmp/out" "kafka property 'sasl.pasword': No such configuration property"
props_config "$tmp/props-invalid.yaml" "queue.buffering.max.ms: 99999999"
"$vigil" check --config "$tmp/props-invalid.yaml" >"$tmp/out" 2>&1; check "check invalid kafka value" 1 $?
contains "invalid value named" "$tmp/out" "kafka property 'queue.buffering.max.ms':"
contains "invalid value why" "$tmp/out" "outside allowed range"
timeout 20 "$vigil" run --config "$tmp/props-invalid.yaml" >"$tmp/out" 2>&1; check "run with an invalid kafka value" 1 $?
contains "run names the property" "$tmp/out" "kafka property 'queue.buffering.max.ms'"
props_config "$tmp/props-env.yaml" 'security.protocol: ${VIGIL_TEST_PROTOCOL}'
VIGIL_TEST_PROTOCOL=hunter2-protocol "$vigil" check --config "$tmp/props-env.yaml" >"$tmp/out" 2>&1
check "check invalid value from the environment" 1 $?
contains "environment value named" "$tmp/out" "kafka property 'security.protocol': Invalid value \"[redacted]\""
if grep -q hunter2 "$tmp/out"; then echo "FAIL: check showed a value from the environment" >&2; fail=$((fail + 1)); else pass=$((pass + 1)); fi
VIGIL_TEST_PROTOCOL=hunter2-protocol timeout 20 "$vigil" run --config "$tmp/props-env.yaml" >"$tmp/out" 2>&1
check "run with an invalid value from the environment" 1 $?
if grep -q hunter2 "$tmp/out"; then echo "FAIL: run showed a value from the environment" >&2; fail=$((fail + 1)); else pass=$((pass + 1)); fi
props_config "$tmp/props-ok.yaml" "queue.buffering.max.ms: 5" "session.timeout.ms: 10000"
"$vigil" check --config "$tmp/props-ok.yaml" >"$tmp/out" 2>&1; check "check valid kafka properties" 0 $?

# A FIFO or a device as a rule, list or configuration file is refused at
# once (it used to block check, a reload and SIGTERM for good); `timeout`
# turns a regression into a failure (status 124) rather than a hang.
mkfifo "$tmp/fifo.yaml" "$tmp/fifo.txt"
timeout 10 "$vigil" check "$tmp/fifo.yaml" >"$tmp/out" 2>&1; check "FIFO rule file" 1 $?
contains "FIFO rule file named" "$tmp/out" "fifo.yaml: error: is a FIFO (named pipe), not a regular file"
printf 'lists:\n  l: {file: fifo.txt}\nrules:\n  - id: f\n    match: {text: {any: $l}}\n' \
    >"$tmp/fifo-list.yaml"
timeout 10 "$vigil" check "$tmp/fifo-list.yaml" >"$tmp/out" 2>&1; check "FIFO list file" 1 $?
contains "FIFO list file named" "$tmp/out" "fifo-list.yaml:2:13: error: list file '$tmp/fifo.txt': is a FIFO"
timeout 10 "$vigil" check --config "$tmp/fifo.yaml" >"$tmp/out" 2>&1; check "FIFO config" 1 $?
contains "FIFO config named" "$tmp/out" "fifo.yaml: error: is a FIFO (named pipe)"
timeout 10 "$vigil" check /dev/zero >"$tmp/out" 2>&1; check "device rule file" 1 $?
contains "device named" "$tmp/out" "/dev/zero: error: is a character device"

# A compile past its time or memory limit is stopped with an error that
# names the limit: VIGIL_MAX_COMPILE_SECONDS / _MEMORY (MiB) for check,
# test and scan, rules.max_compile_seconds / _memory with --config.
printf 'rules:\n  - id: slow\n    match: {text: {any: ['"'"'/(\\w+\\s+){30}x1/'"'"']}}\n' >"$tmp/slow.yaml"
VIGIL_MAX_COMPILE_SECONDS=1 timeout 20 "$vigil" check "$tmp/slow.yaml" >"$tmp/out" 2>&1
check "compile time limit" 1 $?
contains "time limit named" "$tmp/out" "slow.yaml:3:26: error: compiling this regular expression took longer than the limit of 1 s"
VIGIL_MAX_COMPILE_MEMORY=16 timeout 20 "$vigil" scan --rules "$tmp/slow.yaml" /dev/null >"$tmp/out" 2>&1
check "compile memory limit" 1 $?
contains "memory limit named" "$tmp/out" "needed more than the limit of 16 MiB (rules.max_compile_memory"
VIGIL_MAX_COMPILE_SECONDS=5s "$vigil" test "$tmp/slow.yaml" >"$tmp/out" 2>&1; check "bad limit" 1 $?
contains "bad limit named" "$tmp/out" "VIGIL_MAX_COMPILE_SECONDS must be a whole number from 1 to 1000000, got '5s'"
printf 'rules:\n  paths: ["%s"]\n  max_compile_seconds: 1\n' "$tmp/slow.yaml" >"$tmp/slow-config.yaml"
timeout 20 "$vigil" check --config "$tmp/slow-config.yaml" >"$tmp/out" 2>&1
check "config time limit" 1 $?
contains "config time limit named" "$tmp/out" "took longer than the limit of 1 s on a rule load (rules.max_compile_seconds"
printf 'rules:\n  max_compile_memory: 1\n' >"$tmp/bad-config.yaml"
"$vigil" check --config "$tmp/bad-config.yaml" >"$tmp/out" 2>&1; check "config memory limit range" 1 $?
contains "config memory limit range named" "$tmp/out" "rules.max_compile_memory: expected a whole number from 64 to 1048576"

# Alert topics that would be read back as something else (issue 18, item
# 1): a rule's alert.topic that is an input, dead-letter, checkpoint or
# internal topic, and output.topic against the others, are refused with
# file:line:col by check --config.
cat >"$tmp/topics.yaml" <<'YAML'
rules:
  - id: loop
    match: {text: {any: [x]}}
    alert: {topic: news}
  - id: checkpoint
    match: {text: {any: [y]}}
    alert:
      summary: s
      topic: vigil.state
  - id: dlq
    match: {text: {any: [y]}}
    alert: {topic: vigil.dead-letter}
  - id: internal
    match: {text: {any: [y]}}
    alert: {topic: __consumer_offsets}
  - id: fine
    match: {text: {any: [z]}}
    alert: {topic: news.alerts}
YAML
printf 'rules:\n  paths: [%s]\n' "$tmp/topics.yaml" >"$tmp/topics-config.yaml"
"$vigil" check --config "$tmp/topics-config.yaml" >"$tmp/out" 2>&1; check "rule alert topics refused" 1 $?
contains "input topic refused" "$tmp/out" "topics.yaml:4:20: error: rule 'loop': alert.topic 'news' is input.topics"
contains "checkpoint topic refused" "$tmp/out" "topics.yaml:9:14: error: rule 'checkpoint': alert.topic 'vigil.state' is state.checkpoint_topic"
contains "dead-letter topic refused" "$tmp/out" "topics.yaml:12:20: error: rule 'dlq': alert.topic 'vigil.dead-letter' is output.dead_letter_topic"
contains "internal topic refused" "$tmp/out" "topics.yaml:15:20: error: rule 'internal': alert.topic '__consumer_offsets' is a Kafka internal topic"
if grep -q "'fine'" "$tmp/out"; then check "a distinct topic passes" 0 1; else check "a distinct topic passes" 0 0; fi
"$vigil" check "$tmp/topics.yaml" >"$tmp/out" 2>&1; check "without --config no topics to compare" 0 $?
printf 'input:\n  topics: [news, alerts]\nstate:\n  checkpoint_topic: vigil.dead-letter\n' >"$tmp/topics-bad.yaml"
"$vigil" check --config "$tmp/topics-bad.yaml" "$tmp/flags.yaml" >"$tmp/out" 2>&1; check "output.topic refused" 1 $?
contains "default output.topic is an input" "$tmp/out" "topics-bad.yaml:2:18: error: output.topic is the same topic as input.topics[1]"
contains "dead letters as checkpoints" "$tmp/out" "topics-bad.yaml:4:21: error: output.dead_letter_topic is the same topic as state.checkpoint_topic"

echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
