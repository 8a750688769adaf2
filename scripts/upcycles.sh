#!/usr/bin/env bash
# Brings the whole system up from nothing N times in a row and checks that
# every service ends up running and ready each time (the start-up races of
# services against topics being created). Uses a stack of its own (its own
# directory and Kafka/ClickHouse ports), so a running development stack is
# left alone; the services' own ports must be free (no `make up` running).
#
#   scripts/upcycles.sh [N]    default 20; exit status 1 if any cycle failed
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${1:-20}
export SEQCHAT_STACK_DIR=${SEQCHAT_UPCYCLES_DIR:-/tmp/seqchat-upcycles}
export SEQCHAT_KAFKA_PORT=19392 SEQCHAT_KAFKA_CONTROLLER_PORT=19393
export SEQCHAT_CLICKHOUSE_PORT=19300 SEQCHAT_CLICKHOUSE_HTTP_PORT=19323
export SEQCHAT_KAFKA_BROKERS=127.0.0.1:$SEQCHAT_KAFKA_PORT SEQCHAT_CLICKHOUSE_ADDR=127.0.0.1:$SEQCHAT_CLICKHOUSE_PORT
eval "$(make -s -C "$ROOT" env)"
export SEQCHAT_GATEWAY_ID=gw-1 SEQCHAT_DEMO=true
SERVICES=(sequencer fanout history ingest gateway)

log() { printf 'upcycles: %s\n' "$*" >&2; }
make -s -C "$ROOT" build
failed=0
for i in $(seq 1 "$N"); do
	start=$SECONDS
	ok=true
	out=$SEQCHAT_STACK_DIR.cycle.log # what the scripts said in this cycle
	"$ROOT/scripts/stack.sh" clean >/dev/null 2>&1
	if ! "$ROOT/scripts/stack.sh" up >"$out" 2>&1; then
		log "cycle $i: the stack did not start"
		ok=false
	fi
	# Services start while topics are being created, as in a fresh `make up`
	# would if init ran late: init and the services race on purpose.
	$ok && { "$ROOT/bin/imctl" init -log-format text >>"$out" 2>&1 & }
	$ok && { "$ROOT/scripts/services.sh" up "${SERVICES[@]}" >>"$out" 2>&1 || ok=false; }
	wait || ok=false
	if $ok; then
		# Still running and ready a moment later (a service that died after
		# its first ready answer).
		sleep 3
		for s in "${SERVICES[@]}"; do
			if ! SEQCHAT_READY_WAIT=10 "$ROOT/scripts/services.sh" up "$s" >>"$out" 2>&1; then
				log "cycle $i: $s is not running and ready after start"
				ok=false
			fi
		done
	fi
	if ! $ok; then
		failed=$((failed + 1))
		kept=${SEQCHAT_STACK_DIR}.failed-$i
		rm -rf "$kept" && mkdir -p "$kept" && cp "$out" "$SEQCHAT_STACK_DIR"/services/*.log "$kept"/ 2>/dev/null || true
		grep -h 'error\|not ready\|exited' "$out" | tail -n 5 | sed 's/^/  /' >&2 || true
		log "cycle $i: logs kept in $kept"
	fi
	"$ROOT/scripts/services.sh" down >/dev/null 2>&1
	"$ROOT/scripts/stack.sh" down >/dev/null 2>&1
	log "cycle $i/$N: $($ok && echo ok || echo FAILED) in $((SECONDS - start)) s"
done
"$ROOT/scripts/stack.sh" clean >/dev/null 2>&1
log "$((N - failed)) of $N cycles had every service running and ready"
((failed == 0))
