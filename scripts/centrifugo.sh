#!/usr/bin/env bash
# Centrifugo, the peer our pipeline is benchmarked against: a single node with
# the memory engine, history and recovery on for every channel, on loopback.
# Installed with `go install` (pinned version, cached), run in the background
# with project-local config, log and pid file. Used by the benchmarks and by
# the integration test of tools/centrifugo.
#
#   scripts/centrifugo.sh up       install if needed, start (a no-op when running); prints the WebSocket URL
#   scripts/centrifugo.sh down     stop only what this script started
#   scripts/centrifugo.sh status   running, foreign or stopped
#
# Environment (defaults in brackets):
#   SEQCHAT_STACK_DIR [<repo>/.stack]        config, log, pid file (in centrifugo/)
#   SEQCHAT_CACHE_DIR [~/.cache/seqchat]     the installed binary
#   SEQCHAT_CENTRIFUGO_VERSION [v6.9.1]
#   SEQCHAT_CENTRIFUGO_PORT [18000]
#   SEQCHAT_CENTRIFUGO_SECRET [seqchat-dev-centrifugo-secret]  HMAC key of connection JWTs
#   SEQCHAT_CENTRIFUGO_WAIT [30]             seconds to wait for /health
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACK_DIR=${SEQCHAT_STACK_DIR:-$ROOT/.stack}
CACHE_DIR=${SEQCHAT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/seqchat}
VERSION=${SEQCHAT_CENTRIFUGO_VERSION:-v6.9.1}
PORT=${SEQCHAT_CENTRIFUGO_PORT:-18000}
SECRET=${SEQCHAT_CENTRIFUGO_SECRET:-seqchat-dev-centrifugo-secret}
WAIT_SECONDS=${SEQCHAT_CENTRIFUGO_WAIT:-30}
HOST=127.0.0.1
# Retained publications per channel; also the recovery limit, so a client can
# recover anything still in the history.
HISTORY_SIZE=10000

DIR=$STACK_DIR/centrifugo
PIDFILE=$DIR/centrifugo.pid
LOGFILE=$DIR/centrifugo.log
CONFIG=$DIR/config.json
BIN_DIR=$CACHE_DIR/centrifugo-$VERSION
BIN=$BIN_DIR/centrifugo
URL=ws://$HOST:$PORT/connection/websocket

log() { printf 'centrifugo: %s\n' "$*" >&2; }
die() { printf 'centrifugo: error: %s\n' "$*" >&2; exit 1; }

[[ $PORT =~ ^[0-9]+$ ]] || die "SEQCHAT_CENTRIFUGO_PORT=$PORT is not a port number"

# port_open: true when something accepts connections on HOST:PORT.
port_open() { (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; }

# shellcheck source=lib/process.sh
. "$ROOT/scripts/lib/process.sh"

# alive: true when the pid file names a live Centrifugo (not a reused pid).
alive() {
	pid_alive "$PIDFILE" && [[ $(cat "/proc/$(cat "$PIDFILE")/comm" 2>/dev/null || echo centrifugo) == centrifugo ]]
}

# healthy: GET /health answers 200.
healthy() { http_ok "$HOST" "$PORT" /health; }

install() {
	[[ -x $BIN ]] && return 0
	command -v go >/dev/null || die "go is missing: Centrifugo $VERSION is installed with 'go install'"
	mkdir -p "$BIN_DIR"
	log "installing github.com/centrifugal/centrifugo/v6@$VERSION into $BIN_DIR (takes a few minutes)"
	# build.Version makes `centrifugo version` honest (release builds set it
	# the same way); GOFLAGS from the caller (e.g. -mod=vendor) must not leak in.
	if ! GOBIN=$BIN_DIR GOFLAGS= go install \
		-ldflags "-X github.com/centrifugal/centrifugo/v6/internal/build.Version=${VERSION#v}" \
		"github.com/centrifugal/centrifugo/v6@$VERSION" >"$BIN_DIR/install.log" 2>&1; then
		tail -n 30 "$BIN_DIR/install.log" >&2
		die "go install of Centrifugo $VERSION failed (full log: $BIN_DIR/install.log)"
	fi
	[[ -x $BIN ]] || die "go install succeeded but $BIN is missing"
}

# json_string S: S as a JSON string literal (the secret comes from the environment).
json_string() {
	local s=${1//\\/\\\\}
	s=${s//\"/\\\"}
	printf '"%s"' "$s"
}

write_config() {
	mkdir -p "$DIR"
	# Channel options shared by the default namespace and "readonly".
	local history="\"history_size\": $HISTORY_SIZE, \"history_ttl\": \"1h\",
      \"force_positioning\": true, \"force_recovery\": true,
      \"allow_subscribe_for_client\": true"
	# The file holds the secret: readable by this user only.
	(
		umask 077
		cat >"$CONFIG" <<EOF
{
  "http_server": {"address": "$HOST", "port": "$PORT"},
  "log": {"level": "warn"},
  "engine": {"type": "memory"},
  "usage_stats": {"disabled": true},
  "health": {"enabled": true},
  "http_api": {"disabled": true},
  "admin": {"enabled": false},
  "client": {
    "token": {"hmac_secret_key": $(json_string "$SECRET")},
    "history_max_publication_limit": $HISTORY_SIZE,
    "recovery_max_publication_limit": $HISTORY_SIZE
  },
  "channel": {
    "without_namespace": {
      $history,
      "allow_publish_for_client": true
    },
    "namespaces": [
      {
        "name": "readonly",
        $history
      }
    ]
  }
}
EOF
	)
	local out
	out=$("$BIN" checkconfig --strict -c "$CONFIG" 2>&1) || die "generated config $CONFIG is invalid: $out"
}

stop() {
	if ! alive; then
		rm -f "$PIDFILE"
		log "not running (started by this script)"
		return 0
	fi
	terminate "" "$PIDFILE"
}

up() {
	if alive; then
		log "already running (pid $(cat "$PIDFILE")) on $HOST:$PORT"
		echo "$URL"
		return 0
	fi
	port_open && die "port $HOST:$PORT is taken by another process (set SEQCHAT_CENTRIFUGO_PORT)"
	install
	write_config
	log "starting $VERSION on $HOST:$PORT (log: $LOGFILE)"
	setsid nohup "$BIN" -c "$CONFIG" >"$LOGFILE" 2>&1 </dev/null &
	echo $! >"$PIDFILE"
	local deadline=$((SECONDS + WAIT_SECONDS))
	until healthy; do
		if ! alive; then
			tail -n 30 "$LOGFILE" >&2 || true
			rm -f "$PIDFILE"
			die "the server exited during start-up (log above)"
		fi
		if ((SECONDS >= deadline)); then
			tail -n 30 "$LOGFILE" >&2 || true
			stop
			die "/health did not answer 200 within ${WAIT_SECONDS}s; stopped it (log above)"
		fi
		sleep 0.2
	done
	log "ready on $HOST:$PORT"
	echo "$URL"
}

case ${1:-} in
up) up ;;
down) stop ;;
status)
	if alive; then
		echo "centrifugo running pid $(cat "$PIDFILE") $URL"
	elif port_open; then
		echo "centrifugo foreign $HOST:$PORT (something not started by this script listens)"
	else
		echo "centrifugo stopped"
	fi
	;;
*)
	sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
