#!/usr/bin/env bash
# The end-to-end test of `make test`: starts the whole stack (scripts/dev.sh) in the
# background in its own run directory, waits until it is ready, runs the demo
# (scripts/demo.sh) and then the runbook's local procedures against it
# (go test -tags devstack ./shared/docscheck), stops the stack as Ctrl-C would (SIGTERM), and
# checks that nothing it started is left running. Then it checks `make dev PERSIST=1`: a stack
# that keeps its data, a sandbox created, an event routed to it and a worker's credentials
# handed out, a restart, and the sandbox, its event, its worker's Redis user and the tokens
# are all still there. The exit status is the first failure's.
#
# Needs no terminal and no manual step: dev.sh installs PostgreSQL and Redis through apt when
# run as root and missing.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export SANDBOX_DEV_DIR="$REPO/.run/demo-test-$$"
READY_TIMEOUT=${DEMO_TEST_READY_TIMEOUT:-300} # a cold Go build of four binaries included
STOP_TIMEOUT=60

mkdir -p "$SANDBOX_DEV_DIR"
DEV_OUT="$SANDBOX_DEV_DIR/dev.out"
STATUS=0
DEV_PID=""
T0=$SECONDS

elapsed() { echo "$((SECONDS - T0))s"; }

fail() {
	log "FAIL: $*"
	((STATUS != 0)) || STATUS=1
}

# capture_pids records the pids of everything the stack started (the functions from dev.sh's
# pid list, the services from their pid files) and the services' ports, before the stop
# removes those files.
CAPTURED=() PORTS=() PG_DATA=()
capture_pids() {
	local svc="$SANDBOX_DEV_DIR/services" pid f data
	CAPTURED=() PORTS=() PG_DATA=()
	if [[ -f $SANDBOX_DEV_DIR/pids ]]; then
		while read -r _ pid; do CAPTURED+=("$pid"); done <"$SANDBOX_DEV_DIR/pids"
	fi
	for f in "$svc/redis.pid" "$svc/redis-workers.pid" "$svc/sqs.pid"; do
		if [[ -f $f ]]; then CAPTURED+=("$(<"$f")"); fi
	done
	for f in "$svc/pg.dir" "$svc/pg-workers.dir"; do
		[[ -f $f ]] || continue
		data="$(<"$f")/data"
		PG_DATA+=("$data")
		if [[ -f $data/postmaster.pid ]]; then CAPTURED+=("$(head -n 1 "$data/postmaster.pid")"); fi
	done
	for f in "$svc/pg.port" "$svc/pg-workers.port" "$svc/redis.port" "$svc/redis-workers.port" "$svc/sqs.port"; do
		if [[ -f $f ]]; then PORTS+=("$(<"$f")"); fi
	done
}

stop_dev() {
	[[ -n $DEV_PID ]] || return 0
	if pid_alive "$DEV_PID"; then
		kill -TERM "$DEV_PID" 2>/dev/null || true
		local _
		for _ in $(seq $((STOP_TIMEOUT * 10))); do
			pid_alive "$DEV_PID" || break
			sleep 0.1
		done
		if pid_alive "$DEV_PID"; then
			fail "dev.sh did not stop within ${STOP_TIMEOUT}s of SIGTERM"
			kill -KILL "$DEV_PID" 2>/dev/null || true
		fi
	fi
	wait "$DEV_PID" 2>/dev/null || fail "dev.sh exited with status $? on SIGTERM (expected 0)"
	DEV_PID=""
}

# stop_and_check stops the stack and checks that nothing it started is left running.
stop_and_check() {
	capture_pids
	stop_dev
	# Nothing of ours may outlive the stack: not a function, not a service.
	local pid left=() port pattern
	for pid in "${CAPTURED[@]}"; do
		if pid_alive "$pid"; then left+=("$pid"); fi
	done
	local patterns=("$SANDBOX_DEV_DIR" "${PG_DATA[@]}")
	for pattern in "${patterns[@]}"; do
		while read -r pid; do
			if [[ -n $pid ]]; then left+=("$pid"); fi
		done < <(pgrep -f -- "$pattern" || true)
	done
	for port in "${PORTS[@]}"; do
		if port_answers "$port"; then fail "port $port still answers after the stack stopped"; fi
	done
	if ((${#left[@]} > 0)); then
		fail "processes left running after the stack stopped:"
		ps -o pid,args -p "$(printf '%s,' "${left[@]}" | sed 's/,$//')" >&2 || true
		kill -KILL "${left[@]}" 2>/dev/null || true
	else
		log "stopped; nothing left running ($(elapsed))"
	fi
}

on_exit() {
	trap - EXIT INT TERM
	stop_and_check
	if ((STATUS == 0)); then
		rm -rf -- "$SANDBOX_DEV_DIR"
		log "PASS: stack, demo, runbook procedures and a kept stack's restart in $(elapsed)"
	else
		log "dev.sh output (all of it is in $DEV_OUT):"
		tail -n 40 "$DEV_OUT" | sed 's/^/    /' >&2
	fi
	exit "$STATUS"
}
trap on_exit EXIT
trap 'fail "interrupted"; exit' INT TERM

# start_dev [VAR=VALUE...] starts the stack with these variables and waits until it is ready.
# The functions are built with the race detector, and stop at the first race (dev.sh then
# stops everything and the demo fails): the end-to-end run doubles as a race test, and the
# build reuses the packages `go test -race ./...` compiled.
start_dev() {
	local t=$SECONDS
	log "starting the stack in $SANDBOX_DEV_DIR${*:+ with $*}"
	env "$@" DEV_GO_BUILD_FLAGS=-race GORACE=halt_on_error=1 LOG_LEVEL=info "$REPO/scripts/dev.sh" >>"$DEV_OUT" 2>&1 &
	DEV_PID=$!
	while [[ ! -f $SANDBOX_DEV_DIR/env ]]; do
		pid_alive "$DEV_PID" || {
			fail "dev.sh exited before the stack was ready"
			wait "$DEV_PID" 2>/dev/null || true
			DEV_PID=""
			exit
		}
		((SECONDS - t < READY_TIMEOUT)) || {
			fail "the stack was not ready within ${READY_TIMEOUT}s"
			exit
		}
		sleep 0.2
	done
	log "stack ready ($(elapsed))"
}

# in_stack SCRIPT runs bash SCRIPT in a shell that sourced the stack's env file, as a
# developer's terminal would, with srcli (redis-cli as the functions' user on the sandboxes' Redis)
# defined.
in_stack() {
	bash -c 'set -euo pipefail
. "$SANDBOX_DEV_DIR/env"
srcli() { redis-cli -h "$WORKER_REDIS_HOST" -p "$WORKER_REDIS_PORT" --user "$REDIS_USERNAME" --pass "$REDIS_PASSWORD" --no-auth-warning "$@"; }
'"$1"
}

start_dev

t=$SECONDS
if "$REPO/scripts/demo.sh"; then
	log "demo passed in $((SECONDS - t))s"
else
	fail "the demo failed"
	exit
fi

t=$SECONDS
if (cd "$REPO" && go test -race -tags devstack -count=1 -run '^TestRunbookLocalProcedures$' ./shared/docscheck); then
	log "runbook procedures passed in $((SECONDS - t))s"
else
	fail "the runbook's local procedures failed"
	exit
fi
stop_and_check
((STATUS == 0)) || exit

# ---------------------------------------------------------------------------------------------
# make dev PERSIST=1: what a restart keeps.

t=$SECONDS
start_dev DEV_PERSIST=1
PERSIST_GUILD="17$(printf '%017d' "$(((RANDOM << 30 | RANDOM << 15 | RANDOM) % 100000000000000000))")"
export PERSIST_GUILD
# shellcheck disable=SC2016 # expanded by the stack's shell
if ! BEFORE=$(in_stack '
	[[ $SANDBOX_DEV_PERSIST == true ]] || { echo "the env file says the data is not kept" >&2; exit 1; }
	SANDBOX_API_TOKEN=$SANDBOX_ADMIN_TOKEN sandbox guilds register "$PERSIST_GUILD" >/dev/null
	sandbox create kept-sandbox --guild "$PERSIST_GUILD" --ttl 1h >/dev/null
	stream=$(sandbox status kept-sandbox --json | jq -r .sandbox.stream)
	printf "{\"op\":0,\"t\":\"MESSAGE_CREATE\",\"s\":1,\"d\":{\"guild_id\":\"%s\"}}" "$PERSIST_GUILD" |
		sqsctl send -queue "$INGRESS_QUEUE_URL" >/dev/null
	for _ in $(seq 100); do [[ $(srcli XLEN "$stream") == 1 ]] && break; sleep 0.2; done
	[[ $(srcli XLEN "$stream") == 1 ]] || { echo "the event did not reach $stream" >&2; exit 1; }
	eval "$(sandbox connect kept-sandbox 2>/dev/null)"
	printf "%s %s %s %s\n" "$SANDBOX_ALICE_TOKEN" "$stream" "$SANDBOX_REDIS_USERNAME" "$SANDBOX_REDIS_PASSWORD"
'); then
	fail "preparing the kept stack failed"
	exit
fi
read -r ALICE_TOKEN STREAM WORKER_USER WORKER_PASSWORD <<<"$BEFORE"
stop_and_check
((STATUS == 0)) || exit
[[ -f $SANDBOX_DEV_DIR/data/pg/data/PG_VERSION && -d $SANDBOX_DEV_DIR/data/redis && -d $SANDBOX_DEV_DIR/data/redis-workers ]] ||
	fail "the stopped stack left no data in $SANDBOX_DEV_DIR/data"

start_dev DEV_PERSIST=1
export ALICE_TOKEN STREAM WORKER_USER WORKER_PASSWORD
# shellcheck disable=SC2016 # expanded by the stack's shell
if in_stack '
	[[ $SANDBOX_API_TOKEN == "$ALICE_TOKEN" ]] || { echo "alice has a new token after the restart" >&2; exit 1; }
	status=$(sandbox status kept-sandbox --json)
	[[ $(jq -r .sandbox.status <<<"$status") == running ]] || { echo "the sandbox is not running: $status" >&2; exit 1; }
	jq -e "[.health.checks[] | select(.status != \"ok\")] | length == 0" <<<"$status" >/dev/null ||
		{ echo "the sandbox is not healthy after the restart: $status" >&2; exit 1; }
	[[ $(sandbox route "$PERSIST_GUILD" --json | jq -r .destination) == sandbox ]] ||
		{ echo "its guild no longer routes to it" >&2; exit 1; }
	[[ $(sandbox guilds registered --json | jq -r --arg g "$PERSIST_GUILD" ".guilds[] | select(.guild_id == \$g) | .state") == mapped ]] ||
		{ echo "its guild is no longer a registered test guild" >&2; exit 1; }
	# The worker authenticates with the credentials handed out before the restart.
	got=$(redis-cli -h "$WORKER_REDIS_HOST" -p "$WORKER_REDIS_PORT" --user "$WORKER_USER" --pass "$WORKER_PASSWORD" --no-auth-warning XLEN "$STREAM")
	[[ $got == 1 ]] || { echo "the worker reads XLEN $got on $STREAM, want the 1 event of before the restart" >&2; exit 1; }
	sandbox destroy kept-sandbox --yes >/dev/null
'; then
	log "a kept stack's restart kept the sandbox, its event, its worker's user and the tokens ($((SECONDS - t))s)"
else
	fail "the kept stack lost something at its restart"
fi
