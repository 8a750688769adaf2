#!/usr/bin/env bash
# Runs the pipeline's services from bin/ in the background, for `make up`.
#
#   scripts/services.sh up SERVICE...   start each (a no-op for one already running),
#                                       then wait until every one is ready (/readyz)
#   scripts/services.sh down            stop every service this script started
#   scripts/services.sh status
#   scripts/services.sh where           what runs where, and how to get a device token
#
# Logs and pid files live in $SEQCHAT_STACK_DIR/services (default .stack/services).
# Each service reads its configuration from SEQCHAT_* variables (see README).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${SEQCHAT_STACK_DIR:-$ROOT/.stack}/services
BIN=$ROOT/bin
mkdir -p "$DIR"

log() { printf 'services: %s\n' "$*" >&2; }
# shellcheck source=lib/process.sh
. "$ROOT/scripts/lib/process.sh"
alive() { pid_alive "$DIR/$1.pid"; }

# admin_addr SERVICE: its default admin address (/readyz); the binaries'
# defaults, internal/service/ports.go (TestServicesScriptAgreesWithCode).
admin_addr() {
	case $1 in
	ingest) echo 127.0.0.1:9181 ;;
	sequencer) echo 127.0.0.1:9182 ;;
	fanout) echo 127.0.0.1:9183 ;;
	history) echo 127.0.0.1:9184 ;;
	gateway) echo 127.0.0.1:9185 ;;
	esac
}

# wait_ready SERVICE...: until each answers /readyz with 200, for up to
# SEQCHAT_READY_WAIT seconds (default 60); on failure the tail of the
# service's log (its /readyz reasons are logged there too).
wait_ready() {
	local deadline=$((SECONDS + ${SEQCHAT_READY_WAIT:-60})) s addr
	for s in "$@"; do
		addr=$(admin_addr "$s")
		until http_ok "${addr%:*}" "${addr##*:}" /readyz; do
			if ! alive "$s" || ((SECONDS >= deadline)); then
				log "error: $s is not ready ($(alive "$s" && echo "still not ready after ${SEQCHAT_READY_WAIT:-60} s" || echo exited)); the tail of its log:"
				tail -n 20 "$DIR/$s.log" >&2
				return 1
			fi
			sleep 0.2
		done
	done
	log "ready: $*"
}

case ${1:-} in
up)
	shift
	for s in "$@"; do
		[[ -x $BIN/$s ]] || { log "error: $BIN/$s is missing (make build)"; exit 1; }
		if alive "$s"; then
			log "$s: already running (pid $(cat "$DIR/$s.pid"))"
			continue
		fi
		setsid nohup "$BIN/$s" >"$DIR/$s.log" 2>&1 </dev/null &
		echo $! >"$DIR/$s.pid"
		log "$s: started (pid $!, log $DIR/$s.log)"
	done
	wait_ready "$@"
	;;
down)
	# Every service at once: each flushes what it holds on SIGTERM, and what
	# the ingest side took is already in Kafka, so no order is needed.
	for f in "$DIR"/*.pid; do
		[[ -e $f ]] || continue
		s=$(basename "$f" .pid)
		if alive "$s"; then
			terminate "$s" "$f" &
		else
			rm -f "$f"
		fi
	done
	wait
	;;
where)
	cat >&2 <<-EOF
		services: running
		  demo chat page   http://127.0.0.1:8090/   (the gateway with SEQCHAT_DEMO=true)
		  WebSocket        ws://127.0.0.1:8090/ws   (schemas/wsprotocol/protocol.md)
		  ingest API       http://127.0.0.1:8080    (docs/ingest-api.md)
		  history API      http://127.0.0.1:8081    (docs/history-api.md)
		  admin            /metrics /healthz /readyz on 127.0.0.1:9181 ingest, :9182 sequencer, :9183 fanout, :9184 history, :9185 gateway
		  service token    ${SEQCHAT_SERVICE_TOKEN:-(unset)}
		  your shell       eval "\$(make -s env)"   (the development settings, for the docs' examples)
		  device token     bin/imctl token -user alice -device phone   (after the eval)
		  stop             make down
	EOF
	;;
status)
	for f in "$DIR"/*.pid; do
		[[ -e $f ]] || continue
		s=$(basename "$f" .pid)
		if alive "$s"; then echo "$s running pid $(cat "$f")"; else echo "$s stopped"; fi
	done
	;;
*)
	sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
