#!/usr/bin/env bash
# Apache Kafka on loopback, the reference broker of the tests and benchmarks.
#
#   kafka.sh install          resolve Kafka (broker, tools, clients) with Maven
#                             into the cache, once; later calls do nothing
#   kafka.sh start DIR PORT [KEY=VALUE...]
#                             format DIR as a one-node KRaft cluster (broker
#                             and controller in one process) listening on
#                             127.0.0.1:PORT, with more server.properties
#                             settings, start it, wait until it serves
#                             Metadata; prints its pid
#   kafka.sh stop DIR         SIGTERM the broker started in DIR and wait
#   kafka.sh run CLASS ARG... run a Kafka main class (kafka.tools.DumpLogSegments,
#                             org.apache.kafka.tools.ProducerPerformance, ...)
#   kafka.sh classpath        print the classpath of the resolved jars
#   kafka.sh version          print the pinned version
#
# The version is pinned in scripts/kafka/pom.xml. Jars go to
# $RUNNEL_TOOLS_CACHE/kafka-<version>/libs (default ~/.cache/runnel-test-tools)
# and Maven's own cache (~/.m2); nothing is written inside the repository.
# KAFKA_HEAP_OPTS sets the heap (default -Xmx1G -Xms1G, as
# kafka-server-start.sh); KAFKA_JVM_OPTS adds JVM flags; KAFKA_CONTROLLER_PORT
# picks the controller listener's port (default: a free one).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
POM="$HERE/kafka/pom.xml"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM")"
CACHE="${RUNNEL_TOOLS_CACHE:-$HOME/.cache/runnel-test-tools}"
LIBS="$CACHE/kafka-$KAFKA_VERSION/libs"

die() { echo "kafka.sh: $*" >&2; exit 1; }
# shellcheck source=scripts/process.sh
source "$HERE/process.sh"

install() {
    [ -f "$LIBS/.complete" ] && return 0
    command -v mvn >/dev/null 2>&1 || die "mvn not found: Maven is needed to resolve Kafka $KAFKA_VERSION"
    echo "kafka.sh: resolving Apache Kafka $KAFKA_VERSION from Maven Central into $LIBS" >&2
    rm -rf "$LIBS"
    mkdir -p "$LIBS"
    mvn -q -B -f "$POM" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$LIBS" >&2 \
        || die "Maven could not resolve Kafka $KAFKA_VERSION (see its output above)"
    [ -f "$LIBS/kafka_2.13-$KAFKA_VERSION.jar" ] || die "kafka_2.13-$KAFKA_VERSION.jar missing from $LIBS after resolving"
    touch "$LIBS/.complete"
}

classpath() {
    [ -f "$LIBS/.complete" ] || die "Kafka $KAFKA_VERSION is not installed: run scripts/kafka.sh install"
    local cp="" jar
    for jar in "$LIBS"/*.jar; do cp="$cp${cp:+:}$jar"; done
    printf '%s\n' "$cp"
}

# java_main LOG4J_CONFIG CLASS ARG...: the JVM flags kafka-run-class.sh uses.
java_main() {
    local log4j="$1"; shift
    # shellcheck disable=SC2086 # the *_OPTS variables hold several flags
    exec java ${KAFKA_HEAP_OPTS:--Xmx1G -Xms1G} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
        -Djava.awt.headless=true -Dlog4j2.configurationFile="$log4j" ${KAFKA_JVM_OPTS:-} \
        -cp "$(classpath)" "$@"
}

write_log4j() { # FILE LEVEL
    cat >"$1" <<EOF
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = $2
rootLogger.appenderRef.out.ref = out
EOF
}

start() {
    local dir="${1:-}" port="${2:-}"
    [ -n "$dir" ] && [ -n "$port" ] || die "usage: kafka.sh start DIR PORT [KEY=VALUE...]"
    shift 2
    install
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    running "$dir/kafka.pid" && die "a Kafka broker already runs from $dir (pid $(cat "$dir/kafka.pid"))"
    local controller_port
    controller_port="${KAFKA_CONTROLLER_PORT:-$(python3 "$HERE/free_port.py")}"
    cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
    local setting
    for setting in "$@"; do
        case "$setting" in
            *=*) printf '%s\n' "$setting" >>"$dir/server.properties" ;;
            *) die "$setting is not KEY=VALUE" ;;
        esac
    done
    write_log4j "$dir/log4j2.properties" INFO
    write_log4j "$dir/tools-log4j2.properties" WARN
    if [ ! -f "$dir/data/meta.properties" ]; then
        local cluster_id
        cluster_id="$(KAFKA_HEAP_OPTS=-Xmx256M java_main_sub "$dir/tools-log4j2.properties" kafka.tools.StorageTool random-uuid)"
        KAFKA_HEAP_OPTS=-Xmx256M java_main_sub "$dir/tools-log4j2.properties" kafka.tools.StorageTool \
            format -t "$cluster_id" -c "$dir/server.properties" >"$dir/format.log" 2>&1 \
            || { cat "$dir/format.log" >&2; die "formatting $dir/data failed"; }
    fi
    ( java_main "$dir/log4j2.properties" kafka.Kafka "$dir/server.properties" ) >"$dir/kafka.log" 2>&1 &
    local pid=$!
    echo "$pid" >"$dir/kafka.pid"
    # Ready when the broker has registered and answers on its listener.
    wait_for_line "Kafka" "$pid" "$dir/kafka.log" 'Kafka Server started' 90 || exit 1
    echo "$pid"
}

# java_main in a subshell, so that the caller goes on.
java_main_sub() { ( java_main "$@" ); }

stop() {
    stop_pid_file "$1/kafka.pid" 60
}

run() {
    [ $# -ge 1 ] || die "usage: kafka.sh run CLASS ARG..."
    install
    local log4j="$CACHE/kafka-$KAFKA_VERSION/tools-log4j2.properties"
    [ -f "$log4j" ] || write_log4j "$log4j" WARN
    KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx512M}" java_main "$log4j" "$@"
}

cmd="${1:-}"
shift || true
case "$cmd" in
    install) install ;;
    start) start "$@" ;;
    stop) [ -n "${1:-}" ] || die "usage: kafka.sh stop DIR"; stop "$1" ;;
    run) run "$@" ;;
    classpath) install; classpath ;;
    version) echo "$KAFKA_VERSION" ;;
    *) die "usage: kafka.sh install | start DIR PORT [KEY=VALUE...] | stop DIR | run CLASS ARG... | classpath | version" ;;
esac
