#!/usr/bin/env bash
# Runs every shell example of README.md and docs/*.md (each ```sh block) in
# a fresh shell against the system `make up` started, as a reader pastes
# it: after README's first step, `eval "$(make -s env)"`, in a scratch
# directory that has the repository's bin/ and schemas/. An example fails
# the run when it exits non-zero (the docs' curl calls use --fail-with-body).
# A block right after a line `<!-- example: not run (why) -->` is skipped.
#
#   scripts/docs-examples.sh     (make docs-check: make up, then this)
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { printf 'docs-examples: %s\n' "$*" >&2; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
ln -s "$ROOT/bin" "$ROOT/schemas" "$ROOT/Makefile" "$scratch/"
env_lines=$(make -s -C "$ROOT" env) || { log "make env failed"; exit 1; }

ran=0 failed=0 skipped=0
for doc in "$ROOT"/README.md "$ROOT"/docs/*.md; do
	name=${doc#"$ROOT/"}
	block=() in=false skip=false start=0 n=0
	while IFS= read -r line || [[ -n $line ]]; do
		n=$((n + 1))
		if ! $in; then
			case $line in
			'<!-- example: not run'*) skip=true ;;
			'```sh')
				in=true start=$n block=()
				;;
			'') ;;
			*) skip=false ;;
			esac
			continue
		fi
		if [[ $line == '```' ]]; then
			in=false
			if $skip; then
				skipped=$((skipped + 1))
				skip=false
				continue
			fi
			ran=$((ran + 1))
			out=$(cd "$scratch" && env -i HOME="$HOME" PATH="$PATH" TERM=dumb bash -e -c "$env_lines"$'\n'"$(printf '%s\n' "${block[@]}")" 2>&1)
			rc=$?
			if ((rc != 0)); then
				failed=$((failed + 1))
				log "FAILED $name:$start (exit $rc):"
				printf '%s\n' "$out" | tail -n 15 | sed 's/^/    /' >&2
			else
				log "ok $name:$start"
			fi
			continue
		fi
		block+=("$line")
	done <"$doc"
done
log "$ran examples run, $failed failed, $skipped marked not run"
((failed == 0 && ran > 0))
