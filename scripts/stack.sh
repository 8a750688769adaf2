#!/usr/bin/env bash
# The development stack: a single-node Apache Kafka (KRaft, from Maven Central
# jars) and a ClickHouse server (Debian's package), both on loopback, both with
# project-local data and logs. Used by the Makefile, the tests and CI.
#
#   scripts/stack.sh up [kafka|clickhouse]    start (a no-op for what already runs)
#   scripts/stack.sh down [kafka|clickhouse]  stop only what this script started
#   scripts/stack.sh status                   what runs where
#   scripts/stack.sh clean                    down, then delete data and logs
#   scripts/stack.sh signal kafka-N SIG       KILL, STOP, CONT or TERM to one Kafka node
#   scripts/stack.sh controller               the active KRaft controller's node (kafka-N)
#
# Environment (defaults in brackets):
#   SEQCHAT_STACK_DIR [<repo>/.stack]        data, logs, pid files
#   SEQCHAT_CACHE_DIR [~/.cache/seqchat]     resolved Kafka jars
#   SEQCHAT_KAFKA_VERSION [4.1.1]
#   SEQCHAT_KAFKA_PORT [9092]  SEQCHAT_KAFKA_CONTROLLER_PORT [9093]
#   SEQCHAT_KAFKA_HEAP [1g; 512m a node with 3]
#   SEQCHAT_KAFKA_NODES [1]                  3: a KRaft cluster of three broker+controller
#                                            nodes on ports PORT, PORT+2, PORT+4 (controllers
#                                            CONTROLLER_PORT, +2, +4), replication factor 3
#                                            and min.insync.replicas 2 for internal topics
#   SEQCHAT_KAFKA_HOST [127.0.0.1]           the address Kafka listens on and advertises
#   SEQCHAT_KAFKA_BRIDGE []                  a Linux bridge to create (root, iproute2) holding
#                                            SEQCHAT_KAFKA_HOST/24, so that services in network
#                                            namespaces joined to it reach the brokers
#                                            (tools/netns; removed by clean)
#   SEQCHAT_KAFKA_JAVA_OPTS []               more JVM options (JMX, JFR settings)
#   SEQCHAT_KAFKA_EXTRA_CONFIG []            more server.properties lines
#   SEQCHAT_CLICKHOUSE_PORT [9000]  SEQCHAT_CLICKHOUSE_HTTP_PORT [8123]
#   SEQCHAT_STACK_WAIT [120]                 seconds to wait for health
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACK_DIR=${SEQCHAT_STACK_DIR:-$ROOT/.stack}
CACHE_DIR=${SEQCHAT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/seqchat}
KAFKA_VERSION=${SEQCHAT_KAFKA_VERSION:-4.1.1}
KAFKA_PORT=${SEQCHAT_KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${SEQCHAT_KAFKA_CONTROLLER_PORT:-9093}
KAFKA_NODES=${SEQCHAT_KAFKA_NODES:-1}
KAFKA_HEAP=${SEQCHAT_KAFKA_HEAP:-$( ((KAFKA_NODES > 1)) && echo 512m || echo 1g)}
CH_PORT=${SEQCHAT_CLICKHOUSE_PORT:-9000}
CH_HTTP_PORT=${SEQCHAT_CLICKHOUSE_HTTP_PORT:-8123}
WAIT_SECONDS=${SEQCHAT_STACK_WAIT:-120}
HOST=127.0.0.1
KAFKA_HOST=${SEQCHAT_KAFKA_HOST:-$HOST}
KAFKA_BRIDGE=${SEQCHAT_KAFKA_BRIDGE:-}
# A fixed cluster id: base64url of the 16 bytes "seqchat-stack-01".
KAFKA_CLUSTER_ID=c2VxY2hhdC1zdGFjay0wMQ

KAFKA_DIR=$STACK_DIR/kafka
KAFKA_LIBS=$CACHE_DIR/kafka-$KAFKA_VERSION/libs
CH_DIR=$STACK_DIR/clickhouse

log() { printf 'stack: %s\n' "$*" >&2; }
die() { printf 'stack: error: %s\n' "$*" >&2; exit 1; }

# port_open PORT [ADDR]: true when something accepts connections on
# ADDR:PORT (ADDR defaults to HOST).
port_open() { (exec 3<>"/dev/tcp/${2:-$HOST}/$1") 2>/dev/null; }

# shellcheck source=lib/process.sh
. "$ROOT/scripts/lib/process.sh"

# stop_pid NAME FILE: stop the process in FILE if this script started it.
stop_pid() {
	if ! pid_alive "$2"; then
		rm -f "$2"
		log "$1: not running (started by this script)"
		return 0
	fi
	terminate "$1" "$2"
}

# ---------------------------------------------------------------- Kafka

kafka_resolve() {
	# .complete holds the checksum of the pom the jars came from: a changed
	# pom resolves them again.
	local pom sum
	pom=$(sed "s/@KAFKA_VERSION@/$KAFKA_VERSION/" "$ROOT/scripts/stack/kafka-pom.xml")
	sum=$(printf '%s' "$pom" | sha256sum | cut -d' ' -f1)
	[[ -f $KAFKA_LIBS/.complete && $(cat "$KAFKA_LIBS/.complete") == "$sum" ]] && return 0
	command -v mvn >/dev/null || die "mvn is missing: install Maven (apt-get install maven) to resolve Kafka $KAFKA_VERSION"
	local work=$CACHE_DIR/kafka-$KAFKA_VERSION
	log "kafka: resolving org.apache.kafka:kafka_2.13:$KAFKA_VERSION from Maven Central into $work"
	mkdir -p "$work"
	rm -rf "$KAFKA_LIBS"
	printf '%s\n' "$pom" >"$work/pom.xml"
	if ! mvn -q -B -f "$work/pom.xml" dependency:copy-dependencies \
		-DoutputDirectory="$KAFKA_LIBS" -DincludeScope=runtime >"$work/mvn.log" 2>&1; then
		tail -n 30 "$work/mvn.log" >&2
		die "kafka: resolving the jars failed (full log: $work/mvn.log)"
	fi
	ls "$KAFKA_LIBS"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null 2>&1 || die "kafka: resolved jars lack kafka_2.13-$KAFKA_VERSION.jar"
	echo "$sum" >"$KAFKA_LIBS/.complete"
}

# Node i (1-based) of the cluster: its directory (the single node keeps
# the layout of before: .stack/kafka), client and controller ports.
node_dir() { ((KAFKA_NODES == 1)) && echo "$KAFKA_DIR" || echo "$KAFKA_DIR/node-$1"; }
node_port() { echo $((KAFKA_PORT + 2 * ($1 - 1))); }
node_cport() { echo $((KAFKA_CONTROLLER_PORT + 2 * ($1 - 1))); }
nodes() { seq 1 "$KAFKA_NODES"; }
node_name() { ((KAFKA_NODES == 1)) && echo kafka || echo "kafka-$1"; }
kafka_java() { # kafka_java DIR: the JVM command line of the node in DIR
	KAFKA_JAVA=(java ${SEQCHAT_KAFKA_JAVA_OPTS:-} -Xms256m -Xmx"$KAFKA_HEAP" -XX:+UseG1GC -Djava.awt.headless=true
		-Dlog4j2.configurationFile="$1/log4j2.properties" -Dkafka.logs.dir="$1/logs"
		-cp "$KAFKA_LIBS/*")
}
# The cluster's bootstrap list.
bootstrap() {
	local i out=
	for i in $(nodes); do out+=${out:+,}$KAFKA_HOST:$(node_port "$i"); done
	echo "$out"
}

kafka_write_config() { # kafka_write_config NODE
	local id=$1 dir port cport voters= i rf=$KAFKA_NODES isr=$((KAFKA_NODES > 1 ? 2 : 1))
	dir=$(node_dir "$id") port=$(node_port "$id") cport=$(node_cport "$id")
	for i in $(nodes); do voters+=${voters:+,}$i@$KAFKA_HOST:$(node_cport "$i"); done
	mkdir -p "$dir/data" "$dir/logs"
	cat >"$dir/server.properties" <<EOF
# Written by scripts/stack.sh: KRaft broker+controller $id of $KAFKA_NODES for development and tests.
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=PLAINTEXT://$KAFKA_HOST:$port,CONTROLLER://$KAFKA_HOST:$cport
advertised.listeners=PLAINTEXT://$KAFKA_HOST:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
# Topics are created by the project (internal/kafkawire), never implicitly.
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=$isr
# Internal topics on every node (one node: one replica).
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
group.initial.rebalance.delay.ms=0
# A node that stops heartbeating (killed, paused) is fenced and its
# partitions' leaders move after 6 s (the default: 9 s, heartbeats every 2 s).
broker.session.timeout.ms=6000
broker.heartbeat.interval.ms=1000
# Tests create and delete many topics; keep segments small.
log.segment.bytes=67108864
log.retention.check.interval.ms=60000
# A crashed instance's open transaction is aborted this soon after its
# transaction.timeout (the default check runs every 10 s).
transaction.abort.timed.out.transaction.cleanup.interval.ms=1000
${SEQCHAT_KAFKA_EXTRA_CONFIG:-}
EOF
	cat >"$dir/log4j2.properties" <<EOF
status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = $dir/logs/server.log
appender.file.filePattern = $dir/logs/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 50MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
EOF
}

kafka_probe() { # kafka_probe PORT: the node serves clients
	# An ApiVersions request (v0, correlation id 1, client "probe"), answered
	# once the broker enabled request processing (after it is unfenced). In
	# bash, not a JVM per try: a JVM's start competes with the broker's own
	# on a small machine, and a restart is measured by this probe.
	local reply
	reply=$(timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1" || exit 1
		printf "\x00\x00\x00\x0f\x00\x12\x00\x00\x00\x00\x00\x01\x00\x05probe" >&3
		head -c 10 <&3 | od -An -tx1' "$KAFKA_HOST" "$1" 2>/dev/null) || return 1
	# size (4 bytes), correlation id 1, error code 0
	[[ $(echo $reply) =~ ^([0-9a-f]{2}\ ){4}00\ 00\ 00\ 01\ 00\ 00$ ]]
}

# kafka_bridge: the bridge SEQCHAT_KAFKA_BRIDGE with KAFKA_HOST/24, up
# (idempotent; a no-op without SEQCHAT_KAFKA_BRIDGE).
kafka_bridge() {
	[[ -n $KAFKA_BRIDGE ]] || return 0
	command -v ip >/dev/null || die "SEQCHAT_KAFKA_BRIDGE needs ip (apt-get install iproute2)"
	[[ $(id -u) -eq 0 ]] || die "SEQCHAT_KAFKA_BRIDGE needs root (it creates a network bridge)"
	ip link show "$KAFKA_BRIDGE" >/dev/null 2>&1 || ip link add "$KAFKA_BRIDGE" type bridge forward_delay 0 ||
		die "kafka: cannot create bridge $KAFKA_BRIDGE"
	# No `| grep -q` under pipefail: grep exits at the match, ip may then
	# die of SIGPIPE, and the pipeline reads as "no address" (a restart in
	# make chaos-cluster failed with "Address already assigned").
	local addrs
	addrs=$(ip -o addr show dev "$KAFKA_BRIDGE")
	[[ $addrs == *" inet $KAFKA_HOST/"* ]] || ip addr add "$KAFKA_HOST/24" dev "$KAFKA_BRIDGE" ||
		die "kafka: cannot add $KAFKA_HOST/24 to bridge $KAFKA_BRIDGE"
	ip link set "$KAFKA_BRIDGE" up || die "kafka: cannot bring bridge $KAFKA_BRIDGE up"
}

kafka_up() {
	local i dir pidfile started=()
	kafka_bridge
	command -v java >/dev/null || die "java is missing: Kafka needs Java 17+ (apt-get install openjdk-17-jre-headless)"
	local jv
	jv=$(java -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2}')
	[[ ${jv%%.*} -ge 17 ]] 2>/dev/null || die "java $jv is too old: Kafka $KAFKA_VERSION needs Java 17+"
	kafka_resolve
	mkdir -p "$KAFKA_DIR"
	printf 'status = error\nrootLogger.level = ERROR\n' >"$KAFKA_DIR/log4j2-tools.properties"
	for i in $(nodes); do
		dir=$(node_dir "$i") pidfile=$(node_dir "$i")/kafka.pid
		if pid_alive "$pidfile"; then
			log "$(node_name "$i"): already running (pid $(cat "$pidfile")) on $KAFKA_HOST:$(node_port "$i")"
			continue
		fi
		for p in "$(node_port "$i")" "$(node_cport "$i")"; do
			for _ in $(seq 1 50); do # a node killed a moment ago may still hold it
				port_open "$p" "$KAFKA_HOST" || break
				sleep 0.2
			done
			port_open "$p" "$KAFKA_HOST" && die "kafka: port $KAFKA_HOST:$p is taken by another process (set SEQCHAT_KAFKA_PORT / SEQCHAT_KAFKA_CONTROLLER_PORT)"
		done
		kafka_write_config "$i"
		kafka_java "$dir"
		if [[ ! -f $dir/data/meta.properties ]]; then
			log "$(node_name "$i"): formatting KRaft storage (cluster $KAFKA_CLUSTER_ID)"
			"${KAFKA_JAVA[@]}" kafka.tools.StorageTool format --cluster-id "$KAFKA_CLUSTER_ID" \
				--config "$dir/server.properties" --ignore-formatted >"$dir/logs/format.log" 2>&1 ||
				{ cat "$dir/logs/format.log" >&2; die "kafka: formatting storage failed"; }
		fi
		log "$(node_name "$i"): starting $KAFKA_VERSION on $KAFKA_HOST:$(node_port "$i") (log: $dir/logs/server.log)"
		setsid nohup "${KAFKA_JAVA[@]}" kafka.Kafka "$dir/server.properties" \
			>"$dir/logs/stdout.log" 2>&1 </dev/null &
		echo $! >"$pidfile"
		started+=("$i")
	done
	# A quorum needs its majority up: wait for every node only after all started.
	local deadline=$((SECONDS + WAIT_SECONDS))
	for i in "${started[@]}"; do
		dir=$(node_dir "$i") pidfile=$(node_dir "$i")/kafka.pid
		until kafka_probe "$(node_port "$i")"; do
			if ! pid_alive "$pidfile"; then
				tail -n 30 "$dir/logs/stdout.log" "$dir/logs/server.log" >&2 2>/dev/null || true
				rm -f "$pidfile"
				die "$(node_name "$i"): exited during start-up (logs above)"
			fi
			if ((SECONDS >= deadline)); then
				kafka_down
				die "$(node_name "$i"): no answer to a metadata request within ${WAIT_SECONDS}s; stopped Kafka (log: $dir/logs/server.log)"
			fi
			sleep 0.2
		done
	done
	log "kafka: ready on $(bootstrap)"
}

# kafka_down: stop every node this script started, together.
kafka_down() {
	local i
	for i in $(nodes); do
		stop_pid "$(node_name "$i")" "$(node_dir "$i")/kafka.pid" &
	done
	wait
}

kafka_running() { # true when any node runs
	local i
	for i in $(nodes); do pid_alive "$(node_dir "$i")/kafka.pid" && return 0; done
	return 1
}

# ----------------------------------------------------------- ClickHouse

ch_server_bin() {
	command -v clickhouse-server 2>/dev/null || { [[ -x /usr/sbin/clickhouse-server ]] && echo /usr/sbin/clickhouse-server; } || true
}

ch_install() {
	[[ -n $(ch_server_bin) ]] && command -v clickhouse-client >/dev/null && return 0
	[[ $(id -u) -eq 0 ]] || die "clickhouse-server is missing and this is not root: run 'sudo apt-get install clickhouse-server clickhouse-client'"
	command -v apt-get >/dev/null || die "clickhouse-server is missing and apt-get is not available: install ClickHouse by hand"
	log "clickhouse: installing Debian's clickhouse-server"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q clickhouse-server clickhouse-client >/dev/null 2>&1 ||
		{ apt-get update -q >/dev/null && apt-get install -y -q clickhouse-server clickhouse-client >/dev/null; } ||
		die "clickhouse: apt-get install clickhouse-server failed"
	[[ -n $(ch_server_bin) ]] || die "clickhouse: installed, but no clickhouse-server binary found"
}

ch_write_config() {
	mkdir -p "$CH_DIR/data" "$CH_DIR/tmp" "$CH_DIR/user_files" "$CH_DIR/format_schemas" "$CH_DIR/logs"
	cat >"$CH_DIR/config.xml" <<EOF
<?xml version="1.0"?>
<!-- Written by scripts/stack.sh: a loopback-only server for development and tests. -->
<yandex>
    <logger>
        <level>information</level>
        <log>$CH_DIR/logs/server.log</log>
        <errorlog>$CH_DIR/logs/error.log</errorlog>
        <size>100M</size>
        <count>3</count>
    </logger>
    <listen_host>$HOST</listen_host>
    <tcp_port>$CH_PORT</tcp_port>
    <http_port>$CH_HTTP_PORT</http_port>
    <path>$CH_DIR/data/</path>
    <tmp_path>$CH_DIR/tmp/</tmp_path>
    <user_files_path>$CH_DIR/user_files/</user_files_path>
    <format_schema_path>$CH_DIR/format_schemas/</format_schema_path>
    <users_config>$CH_DIR/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <max_connections>1024</max_connections>
    <max_concurrent_queries>100</max_concurrent_queries>
    <mark_cache_size>536870912</mark_cache_size>
    <uncompressed_cache_size>536870912</uncompressed_cache_size>
    <mlock_executable>false</mlock_executable>
</yandex>
EOF
	cat >"$CH_DIR/users.xml" <<EOF
<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
EOF
}

ch_probe() {
	[[ $(timeout 10 clickhouse-client --host "$HOST" --port "$CH_PORT" --query 'SELECT 1' 2>/dev/null) == 1 ]]
}

clickhouse_up() {
	local pidfile=$CH_DIR/clickhouse.pid
	if pid_alive "$pidfile"; then
		log "clickhouse: already running (pid $(cat "$pidfile")) on $HOST:$CH_PORT"
		return 0
	fi
	for p in "$CH_PORT" "$CH_HTTP_PORT"; do
		port_open "$p" && die "clickhouse: port $HOST:$p is taken by another process (set SEQCHAT_CLICKHOUSE_PORT / SEQCHAT_CLICKHOUSE_HTTP_PORT)"
	done
	ch_install
	ch_write_config
	local bin
	bin=$(ch_server_bin)
	log "clickhouse: starting $(clickhouse-client --version 2>/dev/null | sed -n "s/.*version \([0-9.]*[0-9]\).*/\1/p") on $HOST:$CH_PORT (log: $CH_DIR/logs/server.log)"
	setsid nohup "$bin" --config-file="$CH_DIR/config.xml" >"$CH_DIR/logs/stdout.log" 2>&1 </dev/null &
	echo $! >"$pidfile"
	local deadline=$((SECONDS + WAIT_SECONDS))
	until ch_probe; do
		if ! pid_alive "$pidfile"; then
			tail -n 30 "$CH_DIR/logs/stdout.log" "$CH_DIR/logs/error.log" >&2 2>/dev/null || true
			rm -f "$pidfile"
			die "clickhouse: the server exited during start-up (logs above)"
		fi
		if ((SECONDS >= deadline)); then
			stop_pid clickhouse "$pidfile"
			die "clickhouse: SELECT 1 got no answer within ${WAIT_SECONDS}s; stopped it (log: $CH_DIR/logs/server.log)"
		fi
		sleep 0.5
	done
	log "clickhouse: ready on $HOST:$CH_PORT"
}

# ---------------------------------------------------------------- main

status_line() {
	local name=$1 pidfile=$2 port=$3 addr=${4:-$HOST}
	if pid_alive "$pidfile"; then
		printf '%-11s running  pid %-8s %s:%s\n' "$name" "$(cat "$pidfile")" "$addr" "$port"
	elif port_open "$port" "$addr"; then
		printf '%-11s foreign  %-12s %s:%s (something not started by this script listens)\n' "$name" "" "$addr" "$port"
	else
		printf '%-11s stopped\n' "$name"
	fi
}

# signal NODE SIG: SIG (KILL, STOP, CONT, TERM) to one Kafka node of this
# stack, for fault tests (tools/chaos); `up kafka` starts a killed node
# again and waits until every node answers.
if [[ ${1:-} == signal ]]; then
	node=${2:-} sig=${3:-}
	id=${node#kafka-}
	[[ $node == kafka-* && $id =~ ^[0-9]+$ ]] && ((id >= 1 && id <= KAFKA_NODES)) ||
		die "signal: want a node kafka-1..kafka-$KAFKA_NODES, got '$node'"
	[[ $sig =~ ^(KILL|STOP|CONT|TERM)$ ]] || die "signal: want KILL, STOP, CONT or TERM, got '$sig'"
	pidfile=$(node_dir "$id")/kafka.pid
	pid_alive "$pidfile" || die "signal: $node is not running"
	pid=$(cat "$pidfile")
	kill -s "$sig" "$pid"
	if [[ $sig == KILL ]]; then # gone, its ports free, before `up kafka` may look
		for _ in $(seq 1 100); do
			running "$pid" || break
			sleep 0.1
		done
	fi
	log "$node: sent SIG$sig to pid $pid"
	exit 0
fi

# controller: the node that is the active KRaft controller (kafka-N), as
# the controllers' quorum says.
if [[ ${1:-} == controller ]]; then
	controllers=
	for i in $(nodes); do controllers+=${controllers:+,}$KAFKA_HOST:$(node_cport "$i"); done
	out=$(timeout 20 java -Xmx128m -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2-tools.properties" \
		-cp "$KAFKA_LIBS/*" org.apache.kafka.tools.MetadataQuorumCommand \
		--bootstrap-controller "$controllers" describe --status 2>&1) || die "controller: $out"
	id=$(sed -n 's/^LeaderId:[[:space:]]*\([0-9]*\).*/\1/p' <<<"$out")
	[[ -n $id ]] || die "controller: no LeaderId in: $out"
	echo "kafka-$id"
	exit 0
fi

what=${2:-all}
case $what in all | kafka | clickhouse) ;; *) die "unknown component '$what' (kafka, clickhouse)" ;; esac
want() { [[ $what == all || $what == "$1" ]]; }

case ${1:-} in
up)
	mkdir -p "$STACK_DIR"
	# Start both; if the second fails, stop the first only if this call started it.
	kafka_was_up=false
	kafka_running && kafka_was_up=true
	want kafka && kafka_up
	if want clickhouse && ! (clickhouse_up); then
		want kafka && ! $kafka_was_up && kafka_down
		exit 1
	fi
	;;
down)
	# Both at once; nothing of one depends on the other while it stops.
	want clickhouse && stop_pid clickhouse "$CH_DIR/clickhouse.pid" &
	want kafka && kafka_down &
	wait
	true
	;;
status)
	for i in $(nodes); do
		status_line "$(node_name "$i")" "$(node_dir "$i")/kafka.pid" "$(node_port "$i")" "$KAFKA_HOST"
	done
	status_line clickhouse "$CH_DIR/clickhouse.pid" "$CH_PORT"
	;;
clean)
	want clickhouse && stop_pid clickhouse "$CH_DIR/clickhouse.pid" && rm -rf "$CH_DIR"
	want kafka && kafka_down && rm -rf "$KAFKA_DIR"
	if want kafka && [[ -n $KAFKA_BRIDGE ]] && ip link show "$KAFKA_BRIDGE" >/dev/null 2>&1; then
		ip link del "$KAFKA_BRIDGE"
	fi
	true
	;;
*)
	sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
