#!/usr/bin/env bash
# Runs the pipeline's services from bin/ in the background, for `make up`.
#
#   scripts/services.sh up SERVICE...   start each (a no-op for one already running)
#   scripts/services.sh down            stop every service this script started
#   scripts/services.sh status
#
# Logs and pid files live in $SEQCHAT_STACK_DIR/services (default .stack/services).
# Each service reads its configuration from SEQCHAT_* variables (see README).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${SEQCHAT_STACK_DIR:-$ROOT/.stack}/services
BIN=$ROOT/bin
mkdir -p "$DIR"

log() { printf 'services: %s\n' "$*" >&2; }
alive() { [[ -f $DIR/$1.pid ]] && kill -0 "$(cat "$DIR/$1.pid")" 2>/dev/null; }

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
	;;
down)
	for f in "$DIR"/*.pid; do
		[[ -e $f ]] || continue
		s=$(basename "$f" .pid)
		if alive "$s"; then
			pid=$(cat "$f")
			log "$s: stopping pid $pid"
			kill -TERM "$pid" 2>/dev/null || true
			for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
			kill -KILL "$pid" 2>/dev/null || true
		fi
		rm -f "$f"
	done
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
