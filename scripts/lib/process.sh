# Process helpers shared by the scripts that start background servers
# (stack.sh, centrifugo.sh). Source it after defining log.

# pid_alive FILE: true when FILE names a live process.
pid_alive() {
	[[ -f $1 ]] || return 1
	local pid
	pid=$(cat "$1")
	[[ -n $pid ]] && kill -0 "$pid" 2>/dev/null
}

# terminate NAME FILE: TERM the process in FILE, KILL it after 30 s, then
# remove FILE (NAME may be empty: the log lines are then unprefixed). The
# caller has checked that FILE names its own process.
terminate() {
	local name=$1 file=$2 pid
	pid=$(cat "$file")
	log "${name:+$name: }stopping pid $pid"
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 60); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.5
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "${name:+$name: }still alive after 30 s, sending KILL"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$file"
}
