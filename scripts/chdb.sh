#!/usr/bin/env bash
# chdb (PyPI's in-process engine of a current ClickHouse) in a virtualenv of
# its own, for the test that runs the migrations and the query pack on a
# current version (analysis/analytics, TestQueryPackOnCurrentClickHouse).
#
#   scripts/chdb.sh install   install once, then print the venv's python
#
# Environment: SEQCHAT_CACHE_DIR [~/.cache/seqchat], SEQCHAT_CHDB_VERSION [4.4.0]
set -euo pipefail

CACHE_DIR=${SEQCHAT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/seqchat}
VERSION=${SEQCHAT_CHDB_VERSION:-4.4.0}
VENV=$CACHE_DIR/chdb-venv
log() { printf 'chdb: %s\n' "$*" >&2; }

case ${1:-} in
install)
	if [[ $(cat "$VENV/.installed" 2>/dev/null) != "$VERSION" ]]; then
		command -v python3 >/dev/null || { log "error: python3 is missing"; exit 1; }
		log "installing chdb $VERSION into $VENV"
		rm -rf "$VENV"
		mkdir -p "$CACHE_DIR"
		python3 -m venv "$VENV"
		"$VENV/bin/pip" install -q --disable-pip-version-check "chdb==$VERSION" >&2
		echo "$VERSION" >"$VENV/.installed"
	fi
	echo "$VENV/bin/python"
	;;
*)
	sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
