#!/usr/bin/env bash
# The end-to-end test of `make test`: starts the whole stack (scripts/dev.sh) in the
# background in its own run directory, waits until it is ready, runs the demo
# (scripts/demo.sh) and then the runbook's local procedures against it
# (go test -tags devstack ./shared/docscheck), stops the stack as Ctrl-C would (SIGTERM), and
# checks that nothing it started is left running. The exit status is the first failure's.
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
capture_pids() {
	local svc="$SANDBOX_DEV_DIR/services" pid f
	CAPTURED=() PORTS=() PG_DATA=""
	if [[ -f $SANDBOX_DEV_DIR/pids ]]; then
		while read -r _ pid; do CAPTURED+=("$pid"); done <"$SANDBOX_DEV_DIR/pids"
	fi
	for f in "$svc/redis.pid" "$svc/sqs.pid"; do
		if [[ -f $f ]]; then CAPTURED+=("$(<"$f")"); fi
	done
	if [[ -f $svc/pg.dir ]]; then
		PG_DATA="$(<"$svc/pg.dir")/data"
		if [[ -f $PG_DATA/postmaster.pid ]]; then CAPTURED+=("$(head -n 1 "$PG_DATA/postmaster.pid")"); fi
	fi
	for f in "$svc/pg.port" "$svc/redis.port" "$svc/sqs.port"; do
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

on_exit() {
	trap - EXIT INT TERM
	capture_pids
	stop_dev
	# Nothing of ours may outlive the stack: not a function, not a service.
	local pid left=() port pattern
	for pid in "${CAPTURED[@]}"; do
		if pid_alive "$pid"; then left+=("$pid"); fi
	done
	local patterns=("$SANDBOX_DEV_DIR")
	if [[ -n $PG_DATA ]]; then patterns+=("$PG_DATA"); fi
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
	if ((STATUS == 0)); then
		rm -rf -- "$SANDBOX_DEV_DIR"
		log "PASS: stack, demo and runbook procedures in $(elapsed)"
	else
		log "dev.sh output (all of it is in $DEV_OUT):"
		tail -n 40 "$DEV_OUT" | sed 's/^/    /' >&2
	fi
	exit "$STATUS"
}
trap on_exit EXIT
trap 'fail "interrupted"; exit' INT TERM

# The functions are built with the race detector, and stop at the first race (dev.sh then
# stops everything and the demo fails): the end-to-end run doubles as a race test, and the
# build reuses the packages `go test -race ./...` compiled.
log "starting the stack in $SANDBOX_DEV_DIR"
DEV_GO_BUILD_FLAGS=-race GORACE=halt_on_error=1 LOG_LEVEL=warn "$REPO/scripts/dev.sh" >"$DEV_OUT" 2>&1 &
DEV_PID=$!

while [[ ! -f $SANDBOX_DEV_DIR/env ]]; do
	pid_alive "$DEV_PID" || {
		fail "dev.sh exited before the stack was ready"
		exit
	}
	((SECONDS - T0 < READY_TIMEOUT)) || {
		fail "the stack was not ready within ${READY_TIMEOUT}s"
		exit
	}
	sleep 0.2
done
log "stack ready ($(elapsed))"

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
fi
