# shellcheck shell=bash
# Shared helpers for the scripts in this directory. Source it; do not run it.

# REPO is the repository root, found from this file's location so scripts work from any cwd.
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export REPO

log() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

is_root() { [[ $(id -u) -eq 0 ]]; }

# sha256_hex STRING prints the SHA-256 of STRING in hex (the form of a Redis ACL password hash).
sha256_hex() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

# port_answers PORT succeeds when something accepts TCP connections on 127.0.0.1:PORT.
port_answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port prints a port on 127.0.0.1 that nobody listens on. It picks at random below the
# kernel's ephemeral range, so concurrent runs rarely pick the same one; callers still check
# that the process they started owns the port (pid_listens_on) and retry if not.
free_port() {
	local low=20000 high=32000 range_low port _
	if read -r range_low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null && ((range_low > low + 1000)); then
		high=$range_low
	fi
	for _ in $(seq 50); do
		port=$((low + (RANDOM * 32768 + RANDOM) % (high - low)))
		if ! port_answers "$port"; then
			echo "$port"
			return 0
		fi
	done
	die "no free TCP port found between $low and $high"
}

# listening_inode PORT prints the socket inode listening on 127.0.0.1:PORT (or 0.0.0.0:PORT).
listening_inode() {
	local hexport
	hexport=$(printf '%04X' "$1")
	awk -v p="$hexport" '$4 == "0A" && ($2 == "0100007F:" p || $2 == "00000000:" p) { print $10; exit }' /proc/net/tcp
}

# pid_listens_on PID PORT succeeds when process PID itself holds the listening socket of PORT:
# a server that lost a port race to another run must not be mistaken for ready.
pid_listens_on() {
	local pid=$1 port=$2 inode fd
	inode=$(listening_inode "$port")
	[[ -n $inode ]] || return 1
	for fd in "/proc/$pid/fd/"*; do
		[[ $(readlink "$fd" 2>/dev/null) == "socket:[$inode]" ]] && return 0
	done
	return 1
}

# pid_alive PID succeeds while PID runs. A zombie counts as gone: our daemons are reparented to
# an init that may reap them only seconds later.
pid_alive() {
	local stat
	[[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null || return 1
	stat=$(<"/proc/$1/stat") 2>/dev/null || return 1
	stat=${stat##*) }
	[[ ${stat%% *} != Z ]]
}

# pid_is PID WORD... succeeds when PID is alive and its command line contains every WORD, so a
# pid file left behind never makes us signal a process that merely reused the pid.
pid_is() {
	local pid=$1 cmdline word
	shift
	pid_alive "$pid" || return 1
	cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
	for word in "$@"; do
		[[ $cmdline == *"$word"* ]] || return 1
	done
}

# stop_pid PID NAME sends TERM, waits up to 10 s, then KILL.
stop_pid() {
	local pid=$1 name=$2 _
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 100); do
		pid_alive "$pid" || return 0
		sleep 0.1
	done
	log "$name (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL"
	kill -KILL "$pid" 2>/dev/null || true
}

# show_log_tail FILE prints the last lines of a service log to stderr, for failure messages.
show_log_tail() {
	[[ -f $1 ]] || return 0
	log "last lines of $1:"
	tail -n 25 "$1" | sed 's/^/    /' >&2
}

# port_lost ATTEMPT LOG WHAT decides after a failed start of a server, attempt ATTEMPT of 3,
# whose output is in LOG: true (with a log line) when another process bound the port between
# free_port and the server's bind and an attempt is left, so the caller retries on a new port;
# false, with the log's tail shown, otherwise.
port_lost() {
	local attempt=$1 logfile=$2 what=$3
	# Servers in C say "Address already in use", Go's net package "address already in use".
	if ((attempt < 3)) && grep -qi 'address already in use' "$logfile"; then
		log "$what lost its port to another process; retrying"
		return 0
	fi
	show_log_tail "$logfile"
	return 1
}
