#!/usr/bin/env bash
# Runs a real single-node Apache Kafka broker (KRaft, one combined
# broker+controller node) for vigil's tests, from Maven Central jars.
#
#   kafka-broker.sh start  STATE_DIR   start (restart) the broker, wait until ready
#   kafka-broker.sh stop   STATE_DIR   stop it (exit 0 even if not running)
#   kafka-broker.sh status STATE_DIR   exit 0 if it is running, 1 if not
#
# start writes STATE_DIR/bootstrap ("127.0.0.1:29092"), STATE_DIR/broker.pid,
# STATE_DIR/broker.log, STATE_DIR/server.properties and keeps the data in
# STATE_DIR/data (kept across restarts; use a fresh STATE_DIR for a fresh
# cluster).  Exit codes: 0 ready, 1 failure, 77 java or mvn missing (the
# CTest skip code; 1 instead when VIGIL_REQUIRE_BROKER=1), 2 usage.
#
# Environment:
#   VIGIL_KAFKA_VERSION          Kafka release (default below)
#   VIGIL_KAFKA_PORT             PLAINTEXT port on 127.0.0.1 (29092)
#   VIGIL_KAFKA_CONTROLLER_PORT  KRaft controller port on 127.0.0.1 (29093)
#   VIGIL_KAFKA_START_TIMEOUT    seconds to wait for readiness (120)
#   VIGIL_KAFKA_HEAP             -Xmx of the broker JVM (384m)
#   VIGIL_KAFKA_JVM_OPTS         more JVM options, split on spaces, after
#                                ours (e.g. a GC log for a benchmark); one
#                                naming a collector (-XX:+Use...GC) replaces
#                                our -XX:+UseSerialGC
#   VIGIL_KAFKA_LOG4J_VERSION    override the log4j2 release paired with Kafka
#   VIGIL_REQUIRE_BROKER=1       missing java/mvn is an error, not a skip
#   JAVA_HOME                    java to use (else java on PATH)
set -euo pipefail

# Newest release found to work fully with librdkafka 2.0.2 (README.md).
readonly DEFAULT_KAFKA_VERSION=4.4.0

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
kafka_version=${VIGIL_KAFKA_VERSION:-$DEFAULT_KAFKA_VERSION}
port=${VIGIL_KAFKA_PORT:-29092}
cport=${VIGIL_KAFKA_CONTROLLER_PORT:-29093}
start_timeout=${VIGIL_KAFKA_START_TIMEOUT:-120}
stop_timeout=30
heap=${VIGIL_KAFKA_HEAP:-384m}

log() { printf 'kafka-broker: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

usage() {
    echo "usage: ${0##*/} start|stop|status STATE_DIR" >&2
    exit 2
}

# The log4j2 release each Kafka release ships with (its kafka-server pom).
log4j_version_for() {
    case $1 in
        3.9.* | 4.0.* | 4.1.*) echo 2.24.3 ;;
        4.2.*) echo 2.25.3 ;;
        4.3.*) echo 2.25.4 ;;
        *) echo 2.25.5 ;;
    esac
}

# Sets $java, or exits 77 (1 with VIGIL_REQUIRE_BROKER=1) naming what to
# install.  mvn is needed only when the classpath is not cached yet, but
# is checked always so that a machine behaves the same on every run.
check_tools() {
    local missing=() spec
    if [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then
        java=$JAVA_HOME/bin/java
    else
        java=$(command -v java || true)
    fi
    if [[ -z $java ]]; then
        missing+=(java)
    else
        spec=$("$java" -XshowSettings:properties -version 2>&1 |
            sed -n 's/^ *java\.specification\.version = //p')
        if [[ ! $spec =~ ^[0-9]+$ ]] || ((spec < 17)); then
            missing+=("java 17 or newer (found ${spec:-none} at $java)")
        fi
    fi
    command -v mvn >/dev/null 2>&1 || missing+=(mvn)
    if ((${#missing[@]})); then
        log "cannot run the test Kafka broker: missing ${missing[*]}"
        log "install with: apt-get install openjdk-17-jre-headless maven"
        if [[ ${VIGIL_REQUIRE_BROKER:-0} == 1 ]]; then
            exit 1
        fi
        exit 77
    fi
}

# Prints the broker's classpath, resolving it with mvn the first time for
# a given Kafka version and pom (cached; jars stay in ~/.m2).
resolve_classpath() {
    local log4j cache key cpfile tmp jar ok=1
    log4j=${VIGIL_KAFKA_LOG4J_VERSION:-$(log4j_version_for "$kafka_version")}
    cache=${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/vigil-kafka
    key=$(sha1sum <"$here/pom.xml" | cut -c1-12)
    cpfile=$cache/classpath-$kafka_version-$log4j-$key
    if [[ -s $cpfile ]]; then
        while IFS= read -r -d: jar; do
            [[ -f $jar ]] || { ok=0; break; }
        done < <(tr -d '\n' <"$cpfile"; printf ':')
        if ((ok)); then
            cat "$cpfile"
            return 0
        fi
    fi
    mkdir -p "$cache"
    tmp=$(mktemp "$cpfile.XXXXXX")
    log "resolving Kafka $kafka_version jars with mvn (the first run downloads ~60 MB)"
    if ! mvn -q -B -f "$here/pom.xml" \
        -Dkafka.version="$kafka_version" -Dlog4j.version="$log4j" \
        dependency:build-classpath -Dmdep.outputFile="$tmp" \
        >"$state/mvn.log" 2>&1 || [[ ! -s $tmp ]]; then
        rm -f "$tmp"
        tail -n 30 "$state/mvn.log" >&2
        die "mvn could not resolve Kafka $kafka_version (log: $state/mvn.log)"
    fi
    mv -f "$tmp" "$cpfile"
    cat "$cpfile"
}

# True while $1 is a live process (not a zombie awaiting its reaper).
alive() {
    local stat
    # (read, not $(<file): under set -e a missing file kills the script)
    read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
    stat=${stat##*) } # the state letter follows "pid (comm) "
    [[ ${stat:0:1} != [ZX] ]]
}

# Prints the pid of the broker running from $state, if any.
broker_pid() {
    local pid
    read -r pid 2>/dev/null <"$state/broker.pid" || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    alive "$pid" || return 1
    # Guard against a recycled pid: it must be our broker.
    tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null |
        grep -xF -- "$state/server.properties" >/dev/null || return 1
    echo "$pid"
}

# SIGTERM, up to $stop_timeout s, then SIGKILL.
kill_broker() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < stop_timeout * 10; i++)); do
        alive "$pid" || break
        sleep 0.1
    done
    if alive "$pid"; then
        log "broker (pid $pid) still running after ${stop_timeout}s; SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            alive "$pid" || break
            sleep 0.1
        done
    fi
    if ! alive "$pid"; then
        wait "$pid" 2>/dev/null || true # reaps it when it is our child
    fi
}

cmd_stop() {
    local pid
    if pid=$(broker_pid); then
        kill_broker "$pid"
    fi
    rm -f "$state/broker.pid"
}

cmd_status() {
    local pid
    if pid=$(broker_pid); then
        echo "running (pid $pid, $(cat "$state/bootstrap" 2>/dev/null))"
        return 0
    fi
    echo "not running"
    return 1
}

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# A metadata request answered by the broker (a TCP probe without kcat).
metadata_ok() {
    if command -v kcat >/dev/null 2>&1; then
        kcat -L -b "127.0.0.1:$port" -m 5 2>/dev/null | grep ' 1 brokers:' >/dev/null
    else
        port_in_use "$port"
    fi
}

write_properties() {
    cat >"$state/server.properties" <<EOF
# Written by kafka-broker.sh (Kafka $kafka_version); rewritten on every start.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$state/data

auto.create.topics.enable=true
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000

# Small footprint on a 2-core test machine.
num.network.threads=2
num.io.threads=2
background.threads=2
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=8388608
EOF
}

# Starts a JVM class in the background, detached, output to broker.log;
# sets $pid.
launch() {
    setsid "$java" "$@" </dev/null >>"$state/broker.log" 2>&1 9>&- &
    pid=$!
}

on_start_exit() {
    local rc=$?
    if ((rc != 0)); then
        if [[ -n ${pid:-} ]] && alive "$pid"; then
            kill_broker "$pid"
        fi
        rm -f "$state/broker.pid" "$state/bootstrap"
        if [[ -n ${offset:-} ]]; then
            log "---- tail of $state/broker.log ----"
            tail -c +"$((offset + 1))" "$state/broker.log" | tail -n 40 >&2
            log "----"
        fi
        ((rc == 77)) || rc=1
    fi
    exit "$rc"
}

cmd_start() {
    local cp cid p started=0 t0 deadline rc
    offset= # broker.log size before this start; set once it is appended to
    local -a jvm
    t0=$(($(date +%s%N) / 1000000))
    check_tools
    trap on_start_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM HUP
    cmd_stop
    rm -f "$state/bootstrap"
    for p in "$port" "$cport"; do
        if port_in_use "$p"; then
            if command -v ss >/dev/null 2>&1; then
                ss -Hltnp "sport = :$p" >&2 || true
            fi
            die "127.0.0.1:$p is already in use (a broker of another STATE_DIR? stop it, or set VIGIL_KAFKA_PORT / VIGIL_KAFKA_CONTROLLER_PORT)"
        fi
    done
    cp=$(resolve_classpath)

    jvm=("-Xmx$heap" -XX:+UseSerialGC -XX:TieredStopAtLevel=1
        -XX:+ExitOnOutOfMemoryError -XX:-UsePerfData
        -Djava.awt.headless=true -Djava.net.preferIPv4Stack=true
        "-Dlog4j2.configurationFile=$here/log4j2.properties"
        -cp "$cp")
    if [[ -n ${VIGIL_KAFKA_JVM_OPTS:-} ]]; then
        local -a extra
        read -r -a extra <<<"$VIGIL_KAFKA_JVM_OPTS"
        if [[ " ${extra[*]} " == *" -XX:+Use"*GC" "* ]]; then
            local -a kept=()
            for p in "${jvm[@]}"; do
                [[ $p == -XX:+UseSerialGC ]] || kept+=("$p")
            done
            jvm=("${kept[@]}")
        fi
        jvm+=("${extra[@]}")
    fi

    # A data dir formatted by another Kafka release may not load: start over.
    if [[ -d $state/data && "$(cat "$state/kafka-version" 2>/dev/null)" != "$kafka_version" ]]; then
        rm -rf "$state/data"
    fi
    write_properties
    echo "$kafka_version" >"$state/kafka-version"
    offset=0
    if [[ -f $state/broker.log ]]; then
        offset=$(stat -c %s "$state/broker.log")
    fi
    echo "==== kafka-broker.sh start: Kafka $kafka_version, $(date '+%F %T') ====" >>"$state/broker.log"

    if [[ ! -f $state/data/meta.properties ]]; then
        rm -rf "$state/data"
        # A random cluster id: a base64url-encoded 16-byte UUID. One in 64
        # starts with '-', which the storage tool takes for an option:
        # draw again.
        cid=-
        while [[ $cid == -* ]]; do
            cid=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
        done
        if ! "$java" "${jvm[@]/-Xmx$heap/-Xmx128m}" kafka.tools.StorageTool format \
            -t "$cid" -c "$state/server.properties" \
            </dev/null >>"$state/broker.log" 2>&1 9>&-; then
            die "formatting the storage in $state/data failed"
        fi
    fi

    launch "${jvm[@]}" kafka.Kafka "$state/server.properties"
    echo "$pid" >"$state/broker.pid"

    deadline=$((SECONDS + start_timeout))
    while :; do
        if ! alive "$pid"; then
            wait "$pid" 2>/dev/null && rc=0 || rc=$?
            die "the broker exited during startup (status $rc)"
        fi
        if ((!started)) && tail -c +"$((offset + 1))" "$state/broker.log" |
            grep -E 'Kafka ?Server started|\[KafkaServer id=[0-9]+\] started' >/dev/null; then
            started=1
        fi
        if ((started)) && metadata_ok; then
            break
        fi
        if ((SECONDS >= deadline)); then
            die "the broker was not ready within ${start_timeout}s"
        fi
        sleep 0.2
    done
    echo "127.0.0.1:$port" >"$state/bootstrap"
    trap - EXIT INT TERM HUP
    t0=$(($(date +%s%N) / 1000000 - t0))
    log "Kafka $kafka_version ready at 127.0.0.1:$port (pid $pid, $((t0 / 1000)).$((t0 % 1000 / 100))s)"
}

(($# == 2)) || usage
case $1 in start | stop | status) ;; *) usage ;; esac
[[ -n $2 ]] || usage
if [[ $1 != start && ! -d $2 ]]; then
    [[ $1 == stop ]] && exit 0
    echo "not running"
    exit 1
fi
mkdir -p "$2"
state=$(cd "$2" && pwd)
# One start/stop at a time per STATE_DIR (fd 9 is closed for the JVMs).
exec 9>"$state/.lock"
if command -v flock >/dev/null 2>&1 && ! flock -w 180 9; then
    die "timed out waiting for another kafka-broker.sh on $state"
fi

case $1 in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
esac
