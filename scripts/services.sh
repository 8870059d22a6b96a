#!/usr/bin/env bash
# Starts and stops PostgreSQL (the control plane's server, pg, and the sandboxes' own server,
# pg-workers), Redis (the control plane's standalone server, redis, the sandboxes' own,
# redis-workers, and a pool of Redis Clusters) and SQS (moto) servers on
# 127.0.0.1 for tests and local runs. Everything lives in one run directory, so
# several sets can run side by side.
#
#   scripts/services.sh start [pg] [pg-workers] [redis] [redis-workers] [redis-cluster] [sqs]
#                                                                  start the named services (all when none named)
#   scripts/services.sh stop                                       stop what this run directory started; idempotent
#   scripts/services.sh env                                        print `export VAR=...` lines for the running set
#
# The run directory is $SANDBOX_RUN_DIR, or .run/ at the repository root. It holds logs, pid files,
# one env fragment per service and services.env (their union).
#
# redis-cluster is a pool of SANDBOX_REDIS_CLUSTERS Redis Clusters (default 4), started side by
# side, so that tests in parallel each take one (shared/internal/testenv). Each has three
# primaries with SANDBOX_REDIS_CLUSTER_REPLICAS replicas each (default 1), node timeout
# SANDBOX_REDIS_CLUSTER_NODE_TIMEOUT ms (default 2000), each node's files in redis-cluster/K/ of
# the run directory (K = 1..N); it has the standalone server's users on every node. Its fragment
# gives SANDBOX_TEST_REDIS_CLUSTER_ADDRS (the clusters separated by ';', each one's nodes by ',')
# and SANDBOX_TEST_REDIS_CLUSTER_LOCK (each cluster's lock file, in the same order, separated by
# ';'; a test holds a cluster alone while it holds its flock).
#
# The data is throwaway by default: each PostgreSQL cluster is a mktemp directory under /tmp
# (recorded in pg.dir and pg-workers.dir, so that the postgres OS user can reach it), Redis
# keeps nothing on disk, and stop removes them. With SANDBOX_SERVICES_DATA_DIR set (`make dev
# PERSIST=1` sets it to .run/dev/data), the data lives there and outlives stop: PostgreSQL's
# clusters in pg/ and pg-workers/ (created with their users and database on the first start,
# reused as they are afterwards) and each standalone Redis's
# append-only file and ACL users in redis/ and redis-workers/ (users.acl, saved at every stop). SQS (moto) and the
# Redis Cluster always start empty.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ALL_SERVICES=(pg pg-workers redis redis-workers redis-cluster sqs)
# The cluster's superuser is for this script and the test harness only (creating databases).
# The functions and the tests connect as PG_USER, which has the rights production's control
# user has (docs/deploy.md): LOGIN CREATEROLE, pg_signal_backend, owner of its database; no
# SUPERUSER, no BYPASSRLS, no CREATEDB.
PG_ADMIN_USER=sandbox_admin
PG_ADMIN_PASSWORD=sandbox_admin
PG_USER=sandbox
PG_PASSWORD=sandbox
PG_DATABASE=sandbox
# The sandboxes' own database, on a server of its own (pg-workers), as docs/deploy.md
# recommends for production: the same control user owns it.
PG_WORKER_DATABASE=sandbox_workers
# The router's own role, as docs/deploy.md creates it: LOGIN and nothing else. The migrate step
# (api -migrate -router-role) grants it what the router reads and deletes, and no DDL.
PG_ROUTER_USER=sandbox_router
PG_ROUTER_PASSWORD=sandbox_router
# The functions that make a large object, which PUBLIC may not call in the sandboxes' database
# (docs/deploy.md, Server settings; controlplane.LargeObjectMakers).
PG_LARGE_OBJECT_MAKERS="pg_catalog.lo_creat(integer), pg_catalog.lo_create(oid), pg_catalog.lo_from_bytea(oid, bytea)"
REDIS_DATABASES=256
# Redis users: the default user is the harness's administrator (FLUSHDB, CONFIG, leases); the
# functions and the tests use REDIS_CONTROL_USER, whose rules are those of docs/deploy.md.
REDIS_ADMIN_PASSWORD=sandbox-admin
REDIS_CONTROL_USER=sandbox-control
REDIS_CONTROL_PASSWORD=sandbox-control
# The Redis Clusters (redis-cluster): SANDBOX_REDIS_CLUSTERS of them, 4 unless told. A test
# holds a cluster alone (it has database 0 only), so the pool bounds how many tests use one at
# once: go test runs GOMAXPROCS packages, each with GOMAXPROCS parallel tests, so 4 on a 2-CPU
# machine never wait for a cluster, and 24 idle servers cost a few MB and a few ms of CPU a
# second. Each has three primaries (the fewest redis-cli --cluster create accepts) and
# SANDBOX_REDIS_CLUSTER_REPLICAS replicas of each, 1 unless told: failover tests need a replica
# to promote, and three more idle servers cost next to nothing. A node is failed after
# SANDBOX_REDIS_CLUSTER_NODE_TIMEOUT ms without answering (2000 unless told), so that a failover
# takes seconds.
REDIS_CLUSTERS=${SANDBOX_REDIS_CLUSTERS:-4}
REDIS_CLUSTER_PRIMARIES=3
REDIS_CLUSTER_REPLICAS=${SANDBOX_REDIS_CLUSTER_REPLICAS:-1}
REDIS_CLUSTER_NODE_TIMEOUT=${SANDBOX_REDIS_CLUSTER_NODE_TIMEOUT:-2000}
# Where the data outlives the servers (see above); empty: throwaway.
DATA_DIR=""

usage() {
	sed -n '6,8s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
	exit 2
}

set_run_dir() {
	mkdir -p "${SANDBOX_RUN_DIR:-$REPO/.run}"
	RUN_DIR="$(cd "${SANDBOX_RUN_DIR:-$REPO/.run}" && pwd)"
	if [[ -n ${SANDBOX_SERVICES_DATA_DIR:-} ]]; then
		mkdir -p "$SANDBOX_SERVICES_DATA_DIR"
		DATA_DIR="$(cd "$SANDBOX_SERVICES_DATA_DIR" && pwd)"
	fi
}

# apt_install PACKAGE... installs Debian packages when we are root, and otherwise says what to run.
apt_install() {
	if ! is_root; then
		die "missing $*: install with 'sudo apt-get install -y $*' and run again"
	fi
	log "installing $* with apt-get (log: $RUN_DIR/apt.log)"
	local apt=(apt-get -q -y -o DPkg::Lock::Timeout=300)
	if ! { DEBIAN_FRONTEND=noninteractive "${apt[@]}" update &&
		DEBIAN_FRONTEND=noninteractive "${apt[@]}" install --no-install-recommends "$@"; } >"$RUN_DIR/apt.log" 2>&1; then
		show_log_tail "$RUN_DIR/apt.log"
		die "apt-get install $* failed"
	fi
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL

# pg_bindir prints the bin directory of the newest PostgreSQL installed under /usr/lib/postgresql.
pg_bindir() {
	local dir
	dir=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -type d -name bin 2>/dev/null | sort -V | tail -n 1)
	[[ -n $dir && -x $dir/initdb ]] || return 1
	echo "$dir"
}

# as_pg runs a PostgreSQL server program: as the postgres OS user when we are root, because
# initdb and postgres refuse to run as root.
as_pg() {
	if is_root; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

ensure_pg() {
	if ! PG_BIN=$(pg_bindir); then
		apt_install postgresql
		PG_BIN=$(pg_bindir) || die "PostgreSQL server binaries not found under /usr/lib/postgresql"
	fi
	if is_root && ! id postgres >/dev/null 2>&1; then
		die "running as root needs the 'postgres' OS user to run the server (the postgresql package creates it)"
	fi
}

# The PostgreSQL servers: pg, the control plane's, and pg-workers, the sandboxes' own server
# (WORKER_DATABASE_URL, docs/deploy.md "A database server for the sandboxes"). Each keeps its
# files under its name in the run directory: NAME.dir (the cluster's directory), NAME.port,
# NAME.env, NAME.log.

# pg_postmaster_pid NAME prints the postmaster's pid of server NAME.
pg_postmaster_pid() {
	local name=$1 dir
	[[ -f $RUN_DIR/$name.dir ]] || return 1
	dir=$(<"$RUN_DIR/$name.dir")
	[[ -f $dir/data/postmaster.pid ]] || return 1
	head -n 1 "$dir/data/postmaster.pid"
}

pg_running() {
	local name=$1 pid
	pid=$(pg_postmaster_pid "$name") && [[ -f $RUN_DIR/$name.env ]] && pid_is "$pid" "$(<"$RUN_DIR/$name.dir")/data"
}

start_pg() { start_pg_server pg "$PG_DATABASE"; }
start_pg_workers() { start_pg_server pg-workers "$PG_WORKER_DATABASE"; }
ensure_pg_workers() { ensure_pg; }
stop_pg() { stop_pg_server pg; }
stop_pg_workers() { stop_pg_server pg-workers; }

# start_pg_server NAME DATABASE starts server NAME with the control user PG_USER, owner of
# DATABASE (and on pg, the router's role), and writes its env fragment.
start_pg_server() {
	local name=$1 database=$2
	if pg_running "$name"; then
		log "$name already running on port $(<"$RUN_DIR/$name.port")"
		return 0
	fi
	stop_pg_server "$name"

	local dir port url admin_url attempt reused=false log=$RUN_DIR/$name.log
	if [[ -n $DATA_DIR ]]; then
		dir=$DATA_DIR/$name
		mkdir -p "$dir"
		if is_root; then
			chown postgres: "$dir"
			runuser -u postgres -- test -w "$dir" ||
				die "the postgres OS user cannot write $dir: make its parent directories traversable (chmod o+x) or choose another SANDBOX_SERVICES_DATA_DIR"
		fi
		[[ -f $dir/data/PG_VERSION ]] && reused=true
	else
		dir=$(mktemp -d "/tmp/sandbox-$name.XXXXXX")
	fi
	echo "$dir" >"$RUN_DIR/$name.dir"
	if $reused; then
		[[ $(<"$dir/data/PG_VERSION") == "$(basename "$(dirname "$PG_BIN")")" ]] ||
			die "the kept cluster $dir/data is PostgreSQL $(<"$dir/data/PG_VERSION"), the server installed is $(basename "$(dirname "$PG_BIN")"): remove $dir to start afresh"
	else
		init_pg_cluster "$name" "$dir"
	fi

	for attempt in 1 2 3; do
		port=$(free_port)
		# The server inherits this file as its stderr: the root shell opens it, so the postgres
		# user needs no access to the run directory. -k: the socket goes where the cluster is
		# now, whatever directory a kept cluster was created in.
		# temp_file_limit bounds the temporary files of one session, which a sandbox's query
		# could otherwise grow until the disk is full (docs/security.md); production sets it
		# too (docs/deploy.md). On the command line, so that a kept cluster gets it as well.
		if as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -o "-p $port -k $dir -c temp_file_limit=256MB" -w -t 60 start >"$log" 2>&1; then
			break
		fi
		port_lost "$attempt" "$log" "$name (postgres, port $port)" && continue
		die "$name (postgres) did not start"
	done
	echo "$port" >"$RUN_DIR/$name.port"

	local _ ready=false
	for _ in $(seq 100); do
		if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port"; then
			ready=true
			break
		fi
		sleep 0.1
	done
	if ! $ready; then
		show_log_tail "$log"
		die "$name (postgres) on port $port is not accepting connections after 10 s"
	fi

	# Over TCP with the password, as the tests will connect. The control user owns its
	# database; PUBLIC loses CONNECT everywhere, so a sandbox role reaches only the database
	# it is granted. A kept cluster has them already. The router's role exists on the control
	# plane's server only: it never reaches the sandboxes'.
	local router_role=""
	if [[ $name == pg ]]; then
		router_role="CREATE ROLE $PG_ROUTER_USER LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD '$PG_ROUTER_PASSWORD';"
	fi
	if $reused && [[ $(PGPASSWORD=$PG_ADMIN_PASSWORD "$PG_BIN/psql" -X -At -h 127.0.0.1 -p "$port" -U "$PG_ADMIN_USER" -d postgres \
		-c "SELECT count(*) FROM pg_database WHERE datname = '$database'" 2>>"$log") == 1 ]]; then
		:
	elif ! PGPASSWORD=$PG_ADMIN_PASSWORD "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" \
		-U "$PG_ADMIN_USER" -d postgres >>"$log" 2>&1 <<-EOF; then
			CREATE ROLE $PG_USER LOGIN CREATEROLE NOSUPERUSER NOCREATEDB NOREPLICATION NOBYPASSRLS PASSWORD '$PG_PASSWORD';
			$router_role
			GRANT pg_signal_backend TO $PG_USER;
			CREATE DATABASE $database OWNER $PG_USER;
			REVOKE CONNECT ON DATABASE $database FROM PUBLIC;
			REVOKE CONNECT ON DATABASE postgres FROM PUBLIC;
			REVOKE CONNECT ON DATABASE template1 FROM PUBLIC;
		EOF
		show_log_tail "$log"
		die "could not create the control user $PG_USER and database $database on $name"
	fi
	# The control user keeps sandbox roles' messages out of the server's log (docs/deploy.md);
	# granted on a kept cluster too, which may predate the grant.
	if ! PGPASSWORD=$PG_ADMIN_PASSWORD "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U "$PG_ADMIN_USER" -d postgres \
		-c "GRANT SET ON PARAMETER log_min_messages, log_min_error_statement TO $PG_USER" >>"$log" 2>&1; then
		show_log_tail "$log"
		die "could not grant $PG_USER SET on the log parameters on $name"
	fi
	# No sandbox role may make large objects: they live outside its schema, where no share
	# measures them (docs/deploy.md, docs/security.md). Function rights are a database's, so in
	# template1 (the tests' fresh databases are copies of it) and in the database itself.
	local db
	for db in template1 "$database"; do
		if ! PGPASSWORD=$PG_ADMIN_PASSWORD "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U "$PG_ADMIN_USER" -d "$db" \
			-c "REVOKE EXECUTE ON FUNCTION $PG_LARGE_OBJECT_MAKERS FROM PUBLIC" >>"$log" 2>&1; then
			show_log_tail "$log"
			die "could not take the large object functions from PUBLIC in $db on $name"
		fi
	done

	url="postgres://$PG_USER:$PG_PASSWORD@127.0.0.1:$port/$database?sslmode=disable"
	admin_url="postgres://$PG_ADMIN_USER:$PG_ADMIN_PASSWORD@127.0.0.1:$port/postgres?sslmode=disable"
	if [[ $name == pg ]]; then
		cat >"$RUN_DIR/$name.env" <<-EOF
			export SANDBOX_TEST_DATABASE_URL='$url'
			export SANDBOX_TEST_ROUTER_DATABASE_URL='postgres://$PG_ROUTER_USER:$PG_ROUTER_PASSWORD@127.0.0.1:$port/$database?sslmode=disable'
			export SANDBOX_TEST_ROUTER_ROLE='$PG_ROUTER_USER'
			export SANDBOX_TEST_ADMIN_DATABASE_URL='$admin_url'
			export SANDBOX_TEST_PG_LOG='$log'
			export DATABASE_URL='$url'
		EOF
	else
		cat >"$RUN_DIR/$name.env" <<-EOF
			export SANDBOX_TEST_WORKER_DATABASE_URL='$url'
			export SANDBOX_TEST_WORKER_ADMIN_DATABASE_URL='$admin_url'
			export WORKER_DATABASE_URL='$url'
		EOF
	fi
	if $reused; then
		log "$name: postgres $(basename "$(dirname "$PG_BIN")") ready on 127.0.0.1:$port (data kept in $dir, reused)"
	else
		log "$name: postgres $(basename "$(dirname "$PG_BIN")") ready on 127.0.0.1:$port (data $dir)"
	fi
}

# init_pg_cluster NAME DIR creates server NAME's cluster in DIR/data, its superuser PG_ADMIN_USER.
init_pg_cluster() {
	local name=$1 dir=$2
	printf '%s\n' "$PG_ADMIN_PASSWORD" >"$dir/pwfile"
	if is_root; then
		chown -R postgres: "$dir"
	fi
	if ! as_pg "$PG_BIN/initdb" -D "$dir/data" -U "$PG_ADMIN_USER" --pwfile="$dir/pwfile" \
		--auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 \
		--no-sync --no-instructions >"$RUN_DIR/$name-initdb.log" 2>&1; then
		rm -f "$dir/pwfile"
		show_log_tail "$RUN_DIR/$name-initdb.log"
		die "initdb of $name failed"
	fi
	rm -f "$dir/pwfile"
	cat >>"$dir/data/postgresql.conf" <<-EOF
		listen_addresses = '127.0.0.1'
		synchronous_commit = off
		max_connections = 300
	EOF
	if [[ -z $DATA_DIR ]]; then
		# Durability is worthless for a throwaway cluster; speed is what the tests need. A kept
		# cluster keeps fsync: an interrupted machine must not corrupt it.
		cat >>"$dir/data/postgresql.conf" <<-EOF
			fsync = off
			full_page_writes = off
		EOF
	fi
}

# stop_pg_server NAME stops server NAME and removes its throwaway cluster.
stop_pg_server() {
	local name=$1 dir pid
	[[ -f $RUN_DIR/$name.dir ]] || return 0
	dir=$(<"$RUN_DIR/$name.dir")
	if pid=$(pg_postmaster_pid "$name") && pid_is "$pid" "$dir/data"; then
		if ! as_pg "$(pg_bindir)/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >>"$RUN_DIR/$name.log" 2>&1; then
			log "pg_ctl stop of $name failed; killing postmaster $pid"
			stop_pid "$pid" "$name (postgres)"
		fi
	fi
	# Only ever remove a directory that start_pg_server made.
	if [[ $dir == /tmp/sandbox-$name.* ]]; then
		rm -rf -- "$dir"
	fi
	rm -f "$RUN_DIR/$name.dir" "$RUN_DIR/$name.env" "$RUN_DIR/$name.port"
}

# ---------------------------------------------------------------------------------------------
# Redis

ensure_redis() {
	if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
		apt_install redis-server
	fi
}

# redis_pid [PREFIX] prints the pid of the redis-server whose files are PREFIX.pid and
# PREFIX.port ($RUN_DIR/redis by default: the standalone server), if it runs.
redis_pid() {
	local pid port prefix=${1:-$RUN_DIR/redis}
	[[ -f $prefix.pid && -f $prefix.port ]] || return 1
	pid=$(<"$prefix.pid")
	port=$(<"$prefix.port")
	pid_is "$pid" redis-server ":$port" || return 1
	echo "$pid"
}

# redis_launch PREFIX [--cluster] ARGS... starts a daemonized redis-server on a free port of
# 127.0.0.1 with the settings of scripts/redis-server.conf and the extra ARGS, its pid, port and log in PREFIX.pid, PREFIX.port and PREFIX.log,
# and waits until it answers PING; it retries with other ports when one is taken meanwhile.
# --cluster also gives it a free cluster bus port (not port+10000, which may be anybody's).
redis_launch() {
	local prefix=$1 port attempt pid _ ready bus=()
	shift
	local cluster=false
	if [[ ${1:-} == --cluster ]]; then
		cluster=true
		shift
	fi
	for attempt in 1 2 3; do
		port=$(free_port)
		bus=()
		if $cluster; then
			bus=(--cluster-port "$(free_port)")
		fi
		echo "$port" >"$prefix.port"
		rm -f "$prefix.pid"
		: >"$prefix.log"
		if ! redis-server "$REPO/scripts/redis-server.conf" --bind 127.0.0.1 --port "$port" --daemonize yes \
			--pidfile "$prefix.pid" --logfile "$prefix.log" "${bus[@]}" "$@"; then
			show_log_tail "$prefix.log"
			die "redis-server refused to start"
		fi
		ready=false
		for _ in $(seq 100); do
			if pid=$(redis_pid "$prefix") && pid_listens_on "$pid" "$port" &&
				[[ $(redis_admin "$port" ping 2>/dev/null) == PONG ]]; then
				ready=true
				break
			fi
			# It writes its pid file only once listening, so a failed bind shows in the log alone.
			if grep -q 'Address already in use' "$prefix.log" ||
				{ [[ -f $prefix.pid ]] && ! redis_pid "$prefix" >/dev/null; }; then
				break
			fi
			sleep 0.1
		done
		$ready && return 0
		if pid=$(redis_pid "$prefix"); then
			stop_pid "$pid" redis-server
		fi
		port_lost "$attempt" "$prefix.log" "redis (port $port or its bus port)" && continue
		die "redis did not answer PING on port $port"
	done
}

# redis_set_users PORT sets up the users of one server (every node of the cluster alike): the
# functions' own user with the rules of docs/deploy.md, then a password on the default user.
# From here on nothing reaches the server without a user and a password. Passwords go over as
# SHA-256 hashes.
redis_set_users() {
	local port=$1 rules
	read -r -a rules <"$REPO/scripts/redis-control-user.rules"
	redis_admin "$port" ACL SETUSER "$REDIS_CONTROL_USER" reset on \
		"#$(sha256_hex "$REDIS_CONTROL_PASSWORD")" "${rules[@]}" &&
		redis_admin "$port" ACL SETUSER default resetpass "#$(sha256_hex "$REDIS_ADMIN_PASSWORD")"
}

start_redis() { start_redis_server redis; }
start_redis_workers() { start_redis_server redis-workers; }
ensure_redis_workers() { ensure_redis; }
stop_redis() { stop_redis_server redis; }
stop_redis_workers() { stop_redis_server redis-workers; }

# start_redis_server NAME starts a standalone server, its files in $RUN_DIR/NAME*: redis (the
# control plane's, with the route cache) or redis-workers (the sandboxes' own, as docs/deploy.md
# recommends for production), each with the same users.
start_redis_server() {
	local name=$1
	if redis_pid "$RUN_DIR/$name" >/dev/null && [[ -f $RUN_DIR/$name.env ]]; then
		log "$name already running on port $(<"$RUN_DIR/$name.port")"
		return 0
	fi
	stop_redis_server "$name"

	local port dir=$RUN_DIR/$name persistence=(--save '' --appendonly no) log=$RUN_DIR/$name.log
	if [[ -n $DATA_DIR ]]; then
		# The append-only file (fsync every second) keeps the keys; the ACL file keeps the users
		# (the sandboxes' own among them), saved at every stop (stop_redis_server).
		dir=$DATA_DIR/$name
		mkdir -p "$dir"
		touch "$dir/users.acl"
		persistence=(--save '' --appendonly yes --appendfsync everysec --aclfile "$dir/users.acl")
		echo "$dir" >"$RUN_DIR/$name.data"
	fi
	mkdir -p "$dir"
	redis_launch "$RUN_DIR/$name" --dir "$dir" "${persistence[@]}" --databases "$REDIS_DATABASES"
	port=$(<"$RUN_DIR/$name.port")

	# The users (a kept ACL file has them already; setting them again changes nothing).
	if ! redis_set_users "$port" >>"$log" 2>&1 ||
		{ [[ -n $DATA_DIR ]] && ! redis_admin "$port" ACL SAVE >>"$log" 2>&1; }; then
		show_log_tail "$log"
		die "could not create the Redis users on port $port"
	fi

	if [[ $name == redis ]]; then
		cat >"$RUN_DIR/$name.env" <<-EOF
			export SANDBOX_TEST_REDIS_ADDR='127.0.0.1:$port'
			export SANDBOX_TEST_REDIS_ADMIN_PASSWORD='$REDIS_ADMIN_PASSWORD'
			export SANDBOX_TEST_REDIS_USERNAME='$REDIS_CONTROL_USER'
			export SANDBOX_TEST_REDIS_PASSWORD='$REDIS_CONTROL_PASSWORD'
			export REDIS_ADDR='127.0.0.1:$port'
			export REDIS_USERNAME='$REDIS_CONTROL_USER'
			export REDIS_PASSWORD='$REDIS_CONTROL_PASSWORD'
		EOF
	else
		cat >"$RUN_DIR/$name.env" <<-EOF
			export SANDBOX_TEST_WORKER_REDIS_ADDR='127.0.0.1:$port'
			export WORKER_REDIS_ADDR='127.0.0.1:$port'
		EOF
	fi
	if [[ -n $DATA_DIR ]]; then
		log "$name ready on 127.0.0.1:$port ($REDIS_DATABASES databases, user $REDIS_CONTROL_USER, data kept in $dir)"
	else
		log "$name ready on 127.0.0.1:$port ($REDIS_DATABASES databases, user $REDIS_CONTROL_USER)"
	fi
}

# redis_admin PORT ARGS... runs redis-cli as the server's administrator (the default user).
# Before its password is set the default user takes any password, so this works from the
# first PING on, and against a server that loaded a kept ACL file.
redis_admin() {
	local port=$1
	shift
	redis-cli -h 127.0.0.1 -p "$port" --user default --pass "$REDIS_ADMIN_PASSWORD" --no-auth-warning "$@"
}

stop_redis_server() {
	local pid name=$1
	if pid=$(redis_pid "$RUN_DIR/$name"); then
		# Kept data: the ACL users (the sandboxes' own, created since the start) go to the ACL
		# file; the server writes its append-only file itself when it stops.
		if [[ -f $RUN_DIR/$name.data ]] && ! redis_admin "$(<"$RUN_DIR/$name.port")" ACL SAVE >>"$RUN_DIR/$name.log" 2>&1; then
			log "warning: ACL SAVE failed: the Redis users created since the start are lost (see $RUN_DIR/$name.log)"
		fi
		stop_pid "$pid" redis-server
	fi
	rm -rf -- "${RUN_DIR:?}/$name"
	rm -f "$RUN_DIR/$name.pid" "$RUN_DIR/$name.port" "$RUN_DIR/$name.env" "$RUN_DIR/$name.data"
}

# ---------------------------------------------------------------------------------------------
# Redis Cluster

# redis_cluster_node_count prints how many nodes the cluster has: REDIS_CLUSTER_PRIMARIES
# primaries and REDIS_CLUSTER_REPLICAS replicas of each.
redis_cluster_node_count() { echo $((REDIS_CLUSTER_PRIMARIES * (1 + REDIS_CLUSTER_REPLICAS))); }

# redis_cluster_dirs prints the directory of each cluster of the pool, one a line.
redis_cluster_dirs() {
	local k
	for k in $(seq "$REDIS_CLUSTERS"); do
		echo "$RUN_DIR/redis-cluster/$k"
	done
}

redis_cluster_running() {
	local dir i count
	[[ -f $RUN_DIR/redis-cluster.env ]] || return 1
	count=$(redis_cluster_node_count)
	while read -r dir; do
		for i in $(seq "$count"); do
			redis_pid "$dir/node-$i" >/dev/null || return 1
		done
	done < <(redis_cluster_dirs)
}

# redis_cluster_node_ready PORT succeeds when the node at PORT sees the whole cluster: state ok,
# every slot served, every node known, and (a replica) its link to its primary up.
redis_cluster_node_ready() {
	local port=$1 info role
	info=$(redis_admin "$port" CLUSTER INFO 2>/dev/null) || return 1
	[[ $info == *cluster_state:ok* && $info == *cluster_slots_ok:16384* &&
		$info == *"cluster_known_nodes:$(redis_cluster_node_count)"* ]] || return 1
	role=$(redis_admin "$port" ROLE 2>/dev/null) || return 1
	[[ $role != slave* || $role == *connected* ]]
}

ensure_redis_cluster() {
	[[ $REDIS_CLUSTERS =~ ^[1-9][0-9]?$ ]] ||
		die "SANDBOX_REDIS_CLUSTERS must be a number of clusters (1-99), not '$REDIS_CLUSTERS'"
	[[ $REDIS_CLUSTER_REPLICAS =~ ^[0-9]$ ]] ||
		die "SANDBOX_REDIS_CLUSTER_REPLICAS must be a number of replicas per primary (0-9), not '$REDIS_CLUSTER_REPLICAS'"
	[[ $REDIS_CLUSTER_NODE_TIMEOUT =~ ^[1-9][0-9]*$ ]] ||
		die "SANDBOX_REDIS_CLUSTER_NODE_TIMEOUT must be milliseconds, not '$REDIS_CLUSTER_NODE_TIMEOUT'"
	ensure_redis
}

start_redis_cluster() {
	if redis_cluster_running; then
		log "redis clusters already running ($REDIS_CLUSTERS of $(redis_cluster_node_count) nodes)"
		return 0
	fi
	stop_redis_cluster

	# Side by side: each cluster takes a second or two, mostly waiting for its nodes to agree.
	local dirs dir pids=() addrs=() locks=() k
	mapfile -t dirs < <(redis_cluster_dirs)
	for dir in "${dirs[@]}"; do
		start_one_redis_cluster "$dir" &
		pids+=($!)
	done
	for k in "${!pids[@]}"; do
		wait "${pids[$k]}" || die "redis cluster $((k + 1)) of $REDIS_CLUSTERS did not start (logs: ${dirs[$k]})"
	done
	for dir in "${dirs[@]}"; do
		addrs+=("$(<"$dir/addrs")")
		locks+=("$dir/tests.lock")
	done

	cat >"$RUN_DIR/redis-cluster.env" <<-EOF
		export SANDBOX_TEST_REDIS_CLUSTER_ADDRS='$(
			IFS=';'
			echo "${addrs[*]}"
		)'
		export SANDBOX_TEST_REDIS_CLUSTER_LOCK='$(
			IFS=';'
			echo "${locks[*]}"
		)'
		export SANDBOX_TEST_REDIS_ADMIN_PASSWORD='$REDIS_ADMIN_PASSWORD'
		export SANDBOX_TEST_REDIS_USERNAME='$REDIS_CONTROL_USER'
		export SANDBOX_TEST_REDIS_PASSWORD='$REDIS_CONTROL_PASSWORD'
	EOF
	log "redis clusters ready: $REDIS_CLUSTERS, each of $REDIS_CLUSTER_PRIMARIES primaries, $REDIS_CLUSTER_REPLICAS replica(s) each, user $REDIS_CONTROL_USER: ${addrs[*]}"
}

# start_one_redis_cluster DIR starts one cluster of the pool, its nodes' files in DIR, and writes
# DIR/addrs (its nodes, comma-separated) and DIR/tests.lock once every node sees it whole.
start_one_redis_cluster() {
	local dir=$1 count i port pids=() addrs=() ready=false
	count=$(redis_cluster_node_count)
	mkdir -p "$dir"
	# Side by side: each node takes a fraction of a second. Each gets the users at once, the same
	# on every node, replicas included (ACL users are not replicated, and a replica that takes
	# over must know them). The node timeout is short so that a
	# primary made unreachable (DEBUG SLEEP, which --enable-debug-command allows from 127.0.0.1)
	# loses its slots to its replica within seconds. masterauth: the replicas authenticate to
	# their primaries as the default user, which gets a password below. No diskless-sync delay:
	# the replicas sync at once.
	for i in $(seq "$count"); do
		mkdir -p "$dir/node-$i"
		redis_launch "$dir/node-$i" --cluster --dir "$dir/node-$i" --save '' --appendonly no \
			--cluster-enabled yes --cluster-config-file "$dir/node-$i/nodes.conf" \
			--cluster-node-timeout "$REDIS_CLUSTER_NODE_TIMEOUT" --enable-debug-command local \
			--masterauth "$REDIS_ADMIN_PASSWORD" --repl-diskless-sync-delay 0 &&
			redis_set_users "$(<"$dir/node-$i.port")" >>"$dir/node-$i.log" 2>&1 &
		pids+=($!)
	done
	for i in "${!pids[@]}"; do
		wait "${pids[$i]}" || die "redis cluster node $dir/node-$((i + 1)) did not start, or has no users (log: $dir/node-$((i + 1)).log)"
	done
	for i in $(seq "$count"); do
		addrs+=("127.0.0.1:$(<"$dir/node-$i.port")")
	done

	if ! redis-cli --user default --pass "$REDIS_ADMIN_PASSWORD" --no-auth-warning \
		--cluster create "${addrs[@]}" --cluster-replicas "$REDIS_CLUSTER_REPLICAS" \
		--cluster-yes >"$dir/create.log" 2>&1; then
		show_log_tail "$dir/create.log"
		die "redis-cli --cluster create failed"
	fi
	local deadline=$((SECONDS + 30))
	while ((SECONDS < deadline)); do
		ready=true
		for i in $(seq "$count"); do
			if ! redis_cluster_node_ready "$(<"$dir/node-$i.port")"; then
				ready=false
				break
			fi
		done
		$ready && break
		sleep 0.1
	done
	if ! $ready; then
		port=$(<"$dir/node-$i.port")
		redis_admin "$port" CLUSTER INFO >&2 || true
		show_log_tail "$dir/node-$i.log"
		die "redis cluster node 127.0.0.1:$port does not see the whole cluster ok after 30 s"
	fi

	# The lock serializes the tests that use this cluster (shared/internal/testenv): it has
	# database 0 alone, so two tests cannot share it.
	: >"$dir/tests.lock"
	(
		IFS=,
		echo "${addrs[*]}"
	) >"$dir/addrs"
}

stop_redis_cluster() {
	local prefix pid
	# Side by side: each takes a tenth of a second or more, and a pool has dozens.
	for prefix in "$RUN_DIR"/redis-cluster/*/node-*.port; do
		prefix=${prefix%.port}
		if pid=$(redis_pid "$prefix"); then
			stop_pid "$pid" redis-server &
		fi
	done
	wait
	rm -rf -- "$RUN_DIR/redis-cluster"
	rm -f "$RUN_DIR/redis-cluster.env"
}

# ---------------------------------------------------------------------------------------------
# SQS (moto)

ensure_sqs() {
	command -v moto_server >/dev/null ||
		die "moto_server not found: the SQS endpoint needs moto's server, installed with: pip install 'moto[server]'"
}

sqs_pid() {
	local pid port
	[[ -f $RUN_DIR/sqs.pid && -f $RUN_DIR/sqs.port ]] || return 1
	pid=$(<"$RUN_DIR/sqs.pid")
	port=$(<"$RUN_DIR/sqs.port")
	pid_is "$pid" moto_server "-p $port" || return 1
	echo "$pid"
}

# http_answers PORT succeeds when an HTTP server answers a request on 127.0.0.1:PORT.
http_answers() {
	(
		exec 3<>"/dev/tcp/127.0.0.1/$1"
		printf 'GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
		IFS= read -r -t 5 line <&3
		[[ $line == HTTP/* ]]
	) 2>/dev/null
}

start_sqs() {
	if sqs_pid >/dev/null && [[ -f $RUN_DIR/sqs.env ]]; then
		log "sqs (moto) already running on port $(<"$RUN_DIR/sqs.port")"
		return 0
	fi
	stop_sqs

	local port attempt pid _ ready
	for attempt in 1 2 3; do
		port=$(free_port)
		echo "$port" >"$RUN_DIR/sqs.port"
		# setsid: its own session, so a terminal's Ctrl-C reaches it only through stop.
		MOTO_IAM_LOAD_MANAGED_POLICIES=true setsid moto_server -H 127.0.0.1 -p "$port" \
			</dev/null >"$RUN_DIR/sqs.log" 2>&1 &
		pid=$!
		echo "$pid" >"$RUN_DIR/sqs.pid"
		ready=false
		for _ in $(seq 300); do
			if pid_listens_on "$pid" "$port" && http_answers "$port"; then
				ready=true
				break
			fi
			pid_alive "$pid" || break
			sleep 0.1
		done
		$ready && break
		if sqs_pid >/dev/null; then
			stop_pid "$pid" moto_server
		fi
		port_lost "$attempt" "$RUN_DIR/sqs.log" "moto (port $port)" && continue
		die "moto_server did not answer HTTP on port $port within 30 s"
	done

	# AWS credentials and region default to moto's dummies only where the caller set none.
	cat >"$RUN_DIR/sqs.env" <<-EOF
		export SANDBOX_TEST_SQS_ENDPOINT='http://127.0.0.1:$port'
		export AWS_ACCESS_KEY_ID="\${AWS_ACCESS_KEY_ID:-test}"
		export AWS_SECRET_ACCESS_KEY="\${AWS_SECRET_ACCESS_KEY:-test}"
		export AWS_REGION="\${AWS_REGION:-us-east-1}"
	EOF
	log "sqs (moto) ready on http://127.0.0.1:$port"
}

stop_sqs() {
	local pid
	if pid=$(sqs_pid); then
		stop_pid "$pid" moto_server
	fi
	rm -f "$RUN_DIR/sqs.pid" "$RUN_DIR/sqs.port" "$RUN_DIR/sqs.env"
}

# ---------------------------------------------------------------------------------------------

write_env_file() {
	local svc
	: >"$RUN_DIR/services.env.tmp"
	for svc in "${ALL_SERVICES[@]}"; do
		if [[ -f $RUN_DIR/$svc.env ]]; then
			cat "$RUN_DIR/$svc.env" >>"$RUN_DIR/services.env.tmp"
		fi
	done
	if [[ -s $RUN_DIR/services.env.tmp ]]; then
		mv "$RUN_DIR/services.env.tmp" "$RUN_DIR/services.env"
	else
		rm -f "$RUN_DIR/services.env.tmp" "$RUN_DIR/services.env"
	fi
}

cmd_start() {
	local services=("$@") svc failed=() pids=() i
	if ((${#services[@]} == 0)); then
		services=("${ALL_SERVICES[@]}")
	fi
	for svc in "${services[@]}"; do
		case $svc in
		pg | pg-workers | redis | redis-workers | redis-cluster | sqs) ;;
		*) die "unknown service '$svc' (expected: ${ALL_SERVICES[*]})" ;;
		esac
	done
	# Installs and missing tools first, one at a time, so their messages come out whole.
	for svc in "${services[@]}"; do
		"ensure_${svc//-/_}"
	done
	# Then start them side by side: PostgreSQL's initdb and moto's imports take a second each.
	for svc in "${services[@]}"; do
		"start_${svc//-/_}" &
		pids+=($!)
	done
	for i in "${!services[@]}"; do
		wait "${pids[$i]}" || failed+=("${services[$i]}")
	done
	if ((${#failed[@]} > 0)); then
		log "failed to start: ${failed[*]}; stopping ${services[*]} (logs stay in $RUN_DIR)"
		for svc in "${services[@]}"; do
			"stop_${svc//-/_}"
		done
		write_env_file
		exit 1
	fi
	write_env_file
}

cmd_stop() {
	stop_sqs
	stop_redis_cluster
	stop_redis_workers
	stop_redis
	stop_pg_workers
	stop_pg
	rm -f "$RUN_DIR/services.env"
}

cmd_env() {
	[[ -s $RUN_DIR/services.env ]] ||
		die "no services running in $RUN_DIR; start them with scripts/services.sh start"
	cat "$RUN_DIR/services.env"
}

main() {
	(($# > 0)) || usage
	local cmd=$1
	shift
	set_run_dir
	case $cmd in
	start) cmd_start "$@" ;;
	stop) cmd_stop ;;
	env) cmd_env ;;
	*) usage ;;
	esac
}

main "$@"
