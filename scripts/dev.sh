#!/usr/bin/env bash
# `make dev`: runs the whole system on this machine (docs/architecture.md, "Local mode"). It
# starts PostgreSQL (two servers, as docs/deploy.md recommends: the control plane's, and the
# sandboxes' own, where their schemas and roles live: WORKER_DATABASE_URL), Redis (two
# servers likewise: the route cache's, and the sandboxes' own, WORKER_REDIS_ADDR) and
# moto_server (an SQS-compatible endpoint) on free loopback ports,
# creates the ingress queue, its dead-letter queue and the production queue, builds the three
# functions and the sandbox CLI, runs the migrate step (api -migrate, which also grants the
# router's database role its privileges), and runs the functions in local mode with their logs
# prefixed and interleaved:
#
#   [api]      the API on a loopback port, behind bearer tokens printed below: two owners,
#              alice and bob, and an admin, ops-admin
#   [router]   polling the ingress queue, routing to sandbox streams or the production queue
#              (one "batch routed" line per batch), connected to PostgreSQL as its own role
#              (sandbox_router), which may run no DDL
#   [cleanup]  tearing down expired sandboxes every DEV_CLEANUP_INTERVAL (30s); a pass with
#              nothing to do logs only at debug
#
# One guild, DEV_PROTECTED_GUILD, is a production guild (SANDBOX_PROTECTED_GUILDS): no sandbox
# may map it, and its events always go to production. The guilds of DEV_TEST_GUILDS are
# registered test guilds (the admin registers them at start): a sandbox maps only those, and
# the ones an admin registers later (sandbox guilds register).
#
# The data is throwaway: PostgreSQL and Redis start empty and lose everything at Ctrl-C. With
# DEV_PERSIST=1 (`make dev PERSIST=1`) they keep it in $SANDBOX_DEV_DIR/data/ instead, and the
# next DEV_PERSIST=1 start finds its sandboxes, streams, Redis users and tokens again; remove
# that directory to start afresh. Runs without DEV_PERSIST leave it alone.
#
# With DEV_REDIS_CLUSTER=1 (`make dev REDIS_CLUSTER=1`) Redis is a local Redis Cluster
# (scripts/services.sh start redis-cluster: three primaries, a replica each) instead of a
# standalone server: the functions get REDIS_CLUSTER=true and REDIS_ADDR set to one of its nodes,
# the seed from which their cluster client finds the others (REDIS_ADDR is one address). The
# cluster always starts empty, so it does not go with DEV_PERSIST.
#
# Ctrl-C (or SIGTERM) stops everything it started, functions and services alike.
# The run directory ($SANDBOX_DEV_DIR, default .run/dev) holds the binaries (bin/), each
# function's logs, EMF metric lines and (cleanup) run reports (logs/), the services' own
# directory (services/), the kept data (data/, DEV_PERSIST only), and `env`: the exports a
# shell (or scripts/demo.sh) needs, written once everything is ready.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DEV_DIR="${SANDBOX_DEV_DIR:-$REPO/.run/dev}"
# Queue names as Terraform names them for name_prefix "discord-sandboxes" and environment "dev",
# so that the runbook's commands read the same here as in AWS.
QUEUE_PREFIX="discord-sandboxes-dev"
# The local callers, each with a bearer token: two owners (the principals docs/cli.md's examples
# use) and an admin (API_ADMIN_PRINCIPALS), who may manage every sandbox and run cleanup.
DEV_OWNERS=(alice bob)
DEV_ADMIN=ops-admin
# A production guild: SANDBOX_PROTECTED_GUILDS.
DEV_PROTECTED_GUILD="${DEV_PROTECTED_GUILD:-1111111111111111111}"
# Test guilds registered at start (the guilds of the README's and docs/cli.md's examples).
DEV_TEST_GUILDS="${DEV_TEST_GUILDS:-1234567890123456789 1234567890123456790}"
CLEANUP_INTERVAL="${DEV_CLEANUP_INTERVAL:-30s}"
case ${DEV_PERSIST:-} in
1 | true | yes) PERSIST=true ;;
'' | 0 | false | no) PERSIST=false ;;
*) die "DEV_PERSIST=${DEV_PERSIST}: want 1 (keep the data in .run/dev/data) or 0" ;;
esac
case ${DEV_REDIS_CLUSTER:-} in
1 | true | yes) REDIS_CLUSTER_MODE=true ;;
'' | 0 | false | no) REDIS_CLUSTER_MODE=false ;;
*) die "DEV_REDIS_CLUSTER=${DEV_REDIS_CLUSTER}: want 1 (Redis is a local Redis Cluster) or 0" ;;
esac
if $PERSIST && $REDIS_CLUSTER_MODE; then
	die "DEV_PERSIST=1 keeps a standalone Redis's data; the Redis Cluster (DEV_REDIS_CLUSTER=1) always starts empty: choose one"
fi
# Standalone, the sandboxes get a Redis of their own (redis-workers: WORKER_REDIS_ADDR), as
# docs/deploy.md recommends; on the Redis Cluster they share it with the route cache.
REDIS_SERVICES=(redis redis-workers)
if $REDIS_CLUSTER_MODE; then
	REDIS_SERVICES=(redis-cluster)
fi

# ---------------------------------------------------------------------------------------------
# Prerequisites

# check_prerequisites lists everything missing at once, with what to install. PostgreSQL and
# Redis are installed by scripts/services.sh when we are root, so they are only missing for
# other users.
check_prerequisites() {
	local missing=() go_want go_have
	if ! command -v go >/dev/null; then
		missing+=("go: the Go toolchain (https://go.dev/dl/), version $(sed -n 's/^go //p' "$REPO/go.mod") or newer")
	else
		go_want=$(sed -n 's/^go //p' "$REPO/go.mod")
		go_have=$(go env GOVERSION)
		go_have=${go_have#go}
		if [[ $(printf '%s\n%s\n' "$go_want" "$go_have" | sort -V | head -n 1) != "$go_want" ]]; then
			missing+=("go $go_want or newer (found $go_have): https://go.dev/dl/")
		fi
	fi
	if ! is_root; then
		if ! find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -name initdb 2>/dev/null | grep -q .; then
			missing+=("PostgreSQL 15 server binaries: sudo apt-get install -y postgresql")
		fi
		if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
			missing+=("redis-server and redis-cli: sudo apt-get install -y redis-server")
		fi
	fi
	if ! command -v moto_server >/dev/null; then
		missing+=("moto_server (the local SQS endpoint): pip install 'moto[server]'")
	fi
	# The demo and the runbook use psql, redis-cli (installed with the servers), curl and jq.
	local tool
	for tool in curl jq; do
		if ! command -v "$tool" >/dev/null; then
			if is_root; then
				log "installing $tool with apt-get"
				{ DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=300 update &&
					DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=300 install --no-install-recommends "$tool"; } >/dev/null ||
					missing+=("$tool: apt-get install -y $tool failed")
			else
				missing+=("$tool: sudo apt-get install -y $tool")
			fi
		fi
	done
	if ((${#missing[@]} > 0)); then
		log "missing prerequisites; install them and run again:"
		printf '  - %s\n' "${missing[@]}" >&2
		exit 1
	fi
}

# ---------------------------------------------------------------------------------------------
# Lifecycle

declare -A PIDS=()
BUILD_PID=""
STOPPING=false
EXIT_STATUS=0

# shutdown stops the functions, then the services, and removes the env file: nothing started
# here outlives this script.
shutdown() {
	trap - EXIT INT TERM
	$STOPPING && return
	STOPPING=true
	rm -f "$DEV_DIR/env"
	local name
	if [[ -n $BUILD_PID ]] && pid_alive "$BUILD_PID"; then
		kill -TERM -- "$BUILD_PID" 2>/dev/null || true
		wait "$BUILD_PID" 2>/dev/null || true
	fi
	for name in "${!PIDS[@]}"; do
		kill -TERM "${PIDS[$name]}" 2>/dev/null || true
	done
	for name in "${!PIDS[@]}"; do
		stop_pid "${PIDS[$name]}" "$name"
		wait "${PIDS[$name]}" 2>/dev/null || true
	done
	if [[ -d $DEV_DIR/services ]]; then
		SANDBOX_RUN_DIR="$DEV_DIR/services" "$REPO/scripts/services.sh" stop ||
			log "warning: stopping the services failed; see $DEV_DIR/services"
	fi
	rm -f "$DEV_DIR/dev.pid" "$DEV_DIR/pids"
	log "stopped"
	exit "$EXIT_STATUS"
}

on_signal() {
	log "$1 received: stopping"
	EXIT_STATUS=0
	shutdown
}

# route_output NAME reads a function's output: CloudWatch EMF metric lines go to
# logs/NAME.metrics.jsonl, every other line to logs/NAME.log and to the terminal as
# "[NAME] line". It ignores INT and
# TERM: it ends when the function closes its output, so the function's last lines are never
# lost to a Ctrl-C.
route_output() {
	local label line
	label=$(printf '%-9s' "[$1]")
	trap '' INT TERM
	exec 3>>"$DEV_DIR/logs/$1.metrics.jsonl" 4>>"$DEV_DIR/logs/$1.log"
	# A read loop, not awk: mawk buffers its input, which would hold the logs back.
	while IFS= read -r line || [[ -n $line ]]; do
		if [[ $line == *'"_aws":{'* ]]; then
			printf '%s\n' "$line" >&3
		else
			printf '%s\n' "$line" >&4
			printf '%s %s\n' "$label" "$line" >&2
		fi
	done
}

# start_function NAME ARGS... runs a function binary in the background, its output through
# route_output. The cleanup function prints each run's report (indented JSON) on stdout: that
# goes to logs/cleanup.reports.json instead of the terminal.
start_function() {
	local name=$1
	shift
	if [[ $name == cleanup ]]; then
		"$DEV_DIR/bin/$name" "$@" >>"$DEV_DIR/logs/$name.reports.json" 2> >(route_output "$name") &
	else
		"$DEV_DIR/bin/$name" "$@" > >(route_output "$name") 2>&1 &
	fi
	PIDS[$name]=$!
	echo "$name ${PIDS[$name]}" >>"$DEV_DIR/pids"
}

# load_tokens sets TOKENS[principal] for every local principal: fresh random tokens, or with
# DEV_PERSIST those of the previous run, so that shells that exported them keep working.
declare -A TOKENS=()
load_tokens() {
	local file=$DEV_DIR/data/tokens principal token
	if $PERSIST && [[ -f $file ]]; then
		while read -r principal token; do TOKENS[$principal]=$token; done <"$file"
	fi
	for principal in "${DEV_OWNERS[@]}" "$DEV_ADMIN"; do
		if [[ -z ${TOKENS[$principal]:-} ]]; then
			TOKENS[$principal]="dev-$principal-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
		fi
	done
	if $PERSIST; then
		(
			umask 077
			for principal in "${DEV_OWNERS[@]}" "$DEV_ADMIN"; do
				printf '%s %s\n' "$principal" "${TOKENS[$principal]}"
			done >"$file"
		)
	fi
}

# wait_for_api waits until GET /health answers 200 on the API's port, or the API exits.
wait_for_api() {
	local _
	for _ in $(seq 300); do
		if curl -fsS -o /dev/null -H "Authorization: Bearer $SANDBOX_API_TOKEN" "$SANDBOX_API_URL/health" 2>/dev/null; then
			return 0
		fi
		pid_alive "${PIDS[api]}" || return 1
		sleep 0.1
	done
	return 1
}

# ---------------------------------------------------------------------------------------------

main() {
	check_prerequisites
	mkdir -p "$DEV_DIR"
	DEV_DIR="$(cd "$DEV_DIR" && pwd)"
	if [[ -f $DEV_DIR/dev.pid ]] && pid_is "$(<"$DEV_DIR/dev.pid")" dev.sh; then
		die "a dev stack already runs from $DEV_DIR (pid $(<"$DEV_DIR/dev.pid")); stop it with Ctrl-C first"
	fi
	echo $$ >"$DEV_DIR/dev.pid"
	rm -rf "$DEV_DIR/logs" "$DEV_DIR/env" "$DEV_DIR/pids"
	mkdir -p "$DEV_DIR/logs" "$DEV_DIR/bin"
	trap 'EXIT_STATUS=1; shutdown' EXIT
	trap 'on_signal SIGINT' INT
	trap 'on_signal SIGTERM' TERM

	# Build while the services start: both take seconds.
	log "building the functions and the CLI into $DEV_DIR/bin"
	# DEV_GO_BUILD_FLAGS: extra `go build` flags, e.g. -race (scripts/demo-test.sh uses it).
	# shellcheck disable=SC2086 # one word per flag
	(cd "$REPO" && go build ${DEV_GO_BUILD_FLAGS:-} -o "$DEV_DIR/bin/" ./functions/api ./functions/router \
		./functions/cleanup ./cmd/sandbox ./scripts/sqsctl) >"$DEV_DIR/logs/build.log" 2>&1 &
	BUILD_PID=$!
	if $PERSIST; then
		mkdir -p "$DEV_DIR/data"
		log "keeping the data in $DEV_DIR/data (DEV_PERSIST=1)"
		SANDBOX_SERVICES_DATA_DIR="$DEV_DIR/data" SANDBOX_RUN_DIR="$DEV_DIR/services" \
			"$REPO/scripts/services.sh" start pg pg-workers redis redis-workers sqs
	else
		# One Redis Cluster: the pool of several serves the tests alone.
		SANDBOX_SERVICES_DATA_DIR="" SANDBOX_RUN_DIR="$DEV_DIR/services" SANDBOX_REDIS_CLUSTERS=1 \
			"$REPO/scripts/services.sh" start pg pg-workers "${REDIS_SERVICES[@]}" sqs
	fi
	if ! wait "$BUILD_PID"; then
		cat "$DEV_DIR/logs/build.log" >&2
		die "go build failed"
	fi
	BUILD_PID=""
	# shellcheck source=/dev/null
	source "$DEV_DIR/services/services.env"
	export REDIS_CLUSTER=$REDIS_CLUSTER_MODE
	if $REDIS_CLUSTER_MODE; then
		# One node as the seed: the functions' cluster client discovers the others from it.
		export REDIS_ADDR=${SANDBOX_TEST_REDIS_CLUSTER_ADDRS%%,*}
		export REDIS_USERNAME=$SANDBOX_TEST_REDIS_USERNAME REDIS_PASSWORD=$SANDBOX_TEST_REDIS_PASSWORD
		export WORKER_REDIS_ADDR=""
	fi
	# Where the sandboxes' keys, streams and users are (the runbook's commands over them).
	WORKER_REDIS=${WORKER_REDIS_ADDR:-$REDIS_ADDR}
	export SQS_ENDPOINT="$SANDBOX_TEST_SQS_ENDPOINT"
	export AWS_DEFAULT_REGION="$AWS_REGION" # the aws CLI v1 reads this one

	log "creating the queues $QUEUE_PREFIX-{ingress,ingress-dlq,production}"
	# A short visibility timeout and few receives, so a message that keeps failing reaches
	# the dead-letter queue within seconds here.
	"$DEV_DIR/bin/sqsctl" setup -prefix "$QUEUE_PREFIX" -max-receive 3 -visibility 5s >"$DEV_DIR/queues.env"
	# shellcheck source=/dev/null
	source "$DEV_DIR/queues.env"
	# As in AWS, the router sends poison messages to the dead-letter queue itself, at once.
	export ROUTER_DEAD_LETTER_QUEUE_URL="$INGRESS_DLQ_URL"

	load_tokens
	# A shell that sources the env file acts as alice.
	SANDBOX_API_TOKEN=${TOKENS[alice]}
	export ENVIRONMENT=dev
	export LOG_LEVEL="${LOG_LEVEL:-info}"
	# Short sandboxes are allowed here so the demo can watch one expire.
	export SANDBOX_MIN_TTL=10s
	local principal entries=()
	for principal in "${DEV_OWNERS[@]}" "$DEV_ADMIN"; do
		entries+=("${TOKENS[$principal]}=$principal")
	done
	API_LOCAL_TOKENS=$(
		IFS=,
		echo "${entries[*]}"
	)
	export API_LOCAL_TOKENS
	export API_ADMIN_PRINCIPALS="$DEV_ADMIN"
	export SANDBOX_PROTECTED_GUILDS="$DEV_PROTECTED_GUILD"
	# The migrate step, once, as a deployment runs it (docs/deploy.md): the control plane's
	# migrations, then the router's role granted what it reads and deletes. The functions only
	# check the schema at start.
	log "migrating the control plane and the sandboxes' database (api -migrate -router-role $SANDBOX_TEST_ROUTER_ROLE)"
	if ! "$DEV_DIR/bin/api" -migrate -router-role "$SANDBOX_TEST_ROUTER_ROLE" \
		>"$DEV_DIR/logs/migrate.json" 2>"$DEV_DIR/logs/migrate.log"; then
		show_log_tail "$DEV_DIR/logs/migrate.log"
		die "the migrate step failed (log: $DEV_DIR/logs/migrate.log)"
	fi
	log "schema at $(jq -r .version "$DEV_DIR/logs/migrate.json"), the sandboxes' database at $(jq -r .worker_version "$DEV_DIR/logs/migrate.json")"
	local attempt port
	for attempt in 1 2 3; do
		port=$(free_port)
		export API_LISTEN_ADDR="127.0.0.1:$port"
		SANDBOX_API_URL="http://$API_LISTEN_ADDR"
		start_function api
		if wait_for_api; then
			break
		fi
		if pid_alive "${PIDS[api]}"; then
			die "the API did not answer $SANDBOX_API_URL/health within 30 s (log: $DEV_DIR/logs/api.log)"
		fi
		wait "${PIDS[api]}" 2>/dev/null || true
		unset 'PIDS[api]'
		port_lost "$attempt" "$DEV_DIR/logs/api.log" "the API (port $port)" && continue
		die "the API exited at start (log: $DEV_DIR/logs/api.log)"
	done
	# The router connects as its own role, which may run no DDL (docs/deploy.md), and never to
	# the sandboxes' server.
	DATABASE_URL="$SANDBOX_TEST_ROUTER_DATABASE_URL" WORKER_DATABASE_URL="" start_function router
	start_function cleanup -interval "$CLEANUP_INTERVAL"
	sleep 0.5
	local name status guild
	for name in router cleanup; do
		pid_alive "${PIDS[$name]}" || die "$name exited at start (log: $DEV_DIR/logs/$name.log)"
	done
	for guild in $DEV_TEST_GUILDS; do
		SANDBOX_API_URL=$SANDBOX_API_URL SANDBOX_API_TOKEN=${TOKENS[$DEV_ADMIN]} NO_COLOR=1 \
			"$DEV_DIR/bin/sandbox" guilds register "$guild" --note "a test guild of make dev" >/dev/null ||
			die "registering the test guild $guild failed (DEV_TEST_GUILDS)"
	done

	cat >"$DEV_DIR/env.tmp" <<-EOF
		# Written by scripts/dev.sh; valid while it runs (pid $$). Source it: . $DEV_DIR/env
		export SANDBOX_DEV_DIR='$DEV_DIR'
		export SANDBOX_DEV_PID='$$'
		export SANDBOX_DEV_PERSIST='$PERSIST'
		export SANDBOX_DEV_LOG_LEVEL='$LOG_LEVEL'
		export PATH='$DEV_DIR/bin':"\$PATH"
		export SANDBOX_API_URL='$SANDBOX_API_URL'
		# The sandbox CLI sends SANDBOX_API_TOKEN: alice's. Act as someone else with
		# SANDBOX_API_TOKEN=\$SANDBOX_BOB_TOKEN sandbox ... (or --token).
		export SANDBOX_API_TOKEN='$SANDBOX_API_TOKEN'
		export SANDBOX_ALICE_TOKEN='${TOKENS[alice]}'
		export SANDBOX_BOB_TOKEN='${TOKENS[bob]}'
		export SANDBOX_ADMIN_TOKEN='${TOKENS[$DEV_ADMIN]}'
		# A production guild (SANDBOX_PROTECTED_GUILDS): it can never be mapped to a sandbox.
		export SANDBOX_PROTECTED_GUILD='$DEV_PROTECTED_GUILD'
		export DATABASE_URL='$DATABASE_URL'
		# The sandboxes' own server: their schemas, roles and sessions are there.
		export WORKER_DATABASE_URL='$WORKER_DATABASE_URL'
		export REDIS_ADDR='$REDIS_ADDR'
		export REDIS_CLUSTER='$REDIS_CLUSTER'
		export REDIS_USERNAME='$REDIS_USERNAME'
		export REDIS_PASSWORD='$REDIS_PASSWORD'
		# redis-cli without --user authenticates as the server's administrator (the runbook's
		# commands need INFO and SCAN over every namespace).
		export REDISCLI_AUTH='$SANDBOX_TEST_REDIS_ADMIN_PASSWORD'
		export REDIS_HOST='${REDIS_ADDR%:*}'
		export REDIS_PORT='${REDIS_ADDR##*:}'
		# The sandboxes' own Redis (WORKER_REDIS_ADDR): their keys, streams and users are there.
		export WORKER_REDIS_ADDR='$WORKER_REDIS_ADDR'
		export WORKER_REDIS_HOST='${WORKER_REDIS%:*}'
		export WORKER_REDIS_PORT='${WORKER_REDIS##*:}'
		export SQS_ENDPOINT='$SQS_ENDPOINT'
		export INGRESS_QUEUE_URL='$INGRESS_QUEUE_URL'
		export INGRESS_DLQ_URL='$INGRESS_DLQ_URL'
		export PRODUCTION_QUEUE_URL='$PRODUCTION_QUEUE_URL'
		export AWS_ACCESS_KEY_ID='$AWS_ACCESS_KEY_ID'
		export AWS_SECRET_ACCESS_KEY='$AWS_SECRET_ACCESS_KEY'
		export AWS_REGION='$AWS_REGION'
		export AWS_DEFAULT_REGION='$AWS_DEFAULT_REGION'
	EOF
	mv "$DEV_DIR/env.tmp" "$DEV_DIR/env"

	local principals
	# shellcheck disable=SC2016 # the variables' names, as the reader types them
	principals=$(
		printf '   %-10s %-6s %-40s %s\n' alice owner "${TOKENS[alice]}" '$SANDBOX_ALICE_TOKEN' \
			bob owner "${TOKENS[bob]}" '$SANDBOX_BOB_TOKEN' \
			"$DEV_ADMIN" admin "${TOKENS[$DEV_ADMIN]}" '$SANDBOX_ADMIN_TOKEN'
	)
	local data="throwaway: everything is lost at Ctrl-C (make dev PERSIST=1 keeps it)" redis_kind=""
	if $REDIS_CLUSTER_MODE; then
		redis_kind=", a node of the Redis Cluster ${SANDBOX_TEST_REDIS_CLUSTER_ADDRS//,/ } (redis-cli -c)"
	fi
	if $PERSIST; then
		data="kept in $DEV_DIR/data between restarts (rm -rf it to start afresh)"
	fi
	cat >&2 <<-EOF

		================================================================================
		 The sandbox stack is running. In another terminal:

		   . $DEV_DIR/env        # or the exports below; you are alice
		   sandbox list
		   make demo

		   export SANDBOX_API_URL='$SANDBOX_API_URL'
		   export SANDBOX_API_TOKEN='$SANDBOX_API_TOKEN'
		   export PATH='$DEV_DIR/bin':"\$PATH"

		 Principals (API_LOCAL_TOKENS): act as one with SANDBOX_API_TOKEN=<token> sandbox ...
		$principals
		 Protected guild  $DEV_PROTECTED_GUILD (a production guild: never mapped)
		 Test guilds      $DEV_TEST_GUILDS (registered: sandboxes may map them)
		 Data             $data

		 PostgreSQL  $DATABASE_URL (the control plane)
		             $WORKER_DATABASE_URL (the sandboxes' schemas and roles)
		 Redis       $REDIS_ADDR$redis_kind (user $REDIS_USERNAME: the route cache)
             $WORKER_REDIS (the sandboxes' keys and streams; each gets a user of its own from connect)
		 SQS (moto)  $SQS_ENDPOINT
		   ingress     $INGRESS_QUEUE_URL
		   dead-letter $INGRESS_DLQ_URL
		   production  $PRODUCTION_QUEUE_URL
		 Logs and metrics: $DEV_DIR/logs/ (watch routing: tail -f $DEV_DIR/logs/router.log)
		 Ctrl-C stops everything.
		================================================================================

	EOF
	log "ready"

	# Run until a signal, or until a function exits on its own (then stop everything).
	while true; do
		wait -n "${PIDS[@]}" || true
		for name in "${!PIDS[@]}"; do
			if ! pid_alive "${PIDS[$name]}"; then
				wait "${PIDS[$name]}" 2>/dev/null && status=0 || status=$?
				log "$name exited unexpectedly (status $status); stopping everything (log: $DEV_DIR/logs/$name.log)"
				unset "PIDS[$name]"
				EXIT_STATUS=1
				shutdown
			fi
		done
	done
}

main "$@"
