#!/usr/bin/env bash
# Runs `go test -v ARGS...`, prints each test's result and the packages'
# lines, then one summary line: "tests: N passed, N failed, N skipped".
# The full output is kept in .stack/test.log; on failure it is printed too.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log=${SEQCHAT_TEST_LOG:-${SEQCHAT_STACK_DIR:-$ROOT/.stack}/test.log}
mkdir -p "$(dirname "$log")"
go test -v "$@" 2>&1 | tee "$log" | grep -E '^(--- (PASS|FAIL|SKIP)|ok |FAIL|panic:)'
rc=${PIPESTATUS[0]}
count() { grep -cE "^ *--- $1" "$log"; }
if ((rc != 0)); then
	echo "---- full output of the failing run ($log) ----"
	grep -vE '^(=== (RUN|PAUSE|CONT)|    --- PASS)' "$log"
fi
echo "tests: $(count PASS) passed, $(count FAIL) failed, $(count SKIP) skipped"
exit "$rc"
