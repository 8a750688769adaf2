# Process helpers shared by the scripts that start background servers
# (stack.sh, services.sh, centrifugo.sh). Source it after defining log.

# running PID: the process exists and has not exited. An exited process
# stays a zombie until init reaps it, which takes seconds in some
# containers, and `kill -0` still succeeds on it.
running() {
	local st
	st=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $st != Z* ]]
}

# pid_alive FILE: true when FILE names a live process.
pid_alive() {
	[[ -f $1 ]] || return 1
	local pid
	pid=$(cat "$1")
	[[ -n $pid ]] && running "$pid"
}

# terminate NAME FILE: TERM the process in FILE, KILL it after 30 s, then
# remove FILE (NAME may be empty: the log lines are then unprefixed). The
# caller has checked that FILE names its own process.
terminate() {
	local name=$1 file=$2 pid start
	pid=$(cat "$file")
	start=$(date +%s%N)
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 300); do
		running "$pid" || break
		sleep 0.1
	done
	if running "$pid"; then
		log "${name:+$name: }still alive after 30 s, sending KILL"
		kill -KILL "$pid" 2>/dev/null || true
	else
		log "${name:+$name: }stopped pid $pid in $((($(date +%s%N) - start) / 1000000)) ms"
	fi
	rm -f "$file"
}

# http_ok HOST PORT PATH: GET PATH answers 200 (bash's /dev/tcp, so curl is
# not needed).
http_ok() {
	local status
	status=$(timeout 5 bash -c '
		exec 3<>"/dev/tcp/$0/$1" || exit 1
		printf "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" "$2" "$0" >&3
		head -n 1 <&3' "$1" "$2" "$3" 2>/dev/null) || return 1
	[[ $status == "HTTP/1."[01]" 200"* ]]
}
