#!/usr/bin/env bash
# `make demo`: the whole story against the stack that `make dev` runs, as a new user would
# see it: an admin registers a test guild; alice creates a sandbox with it and a short TTL; bob,
# another developer, cannot touch it, and nobody can map the production guild or a guild that
# is not registered; Discord gateway events for the test guild and for other guilds go into
# the ingress queue and arrive in the sandbox's stream (read as a worker reads it) and in the
# production queue; the router's log says where each
# batch went; the sandbox expires, the admin runs the cleanup, and nothing of it remains.
#
# Every step says what it expects and checks it; the demo exits non-zero at the first
# expectation that fails. It reads the stack's settings from $SANDBOX_DEV_DIR/env (default
# .run/dev/env), written by scripts/dev.sh once the stack is ready.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DEV_DIR="${SANDBOX_DEV_DIR:-$REPO/.run/dev}"
# Long enough for steps 1-5 (which need the sandbox running) on a slow, shared machine; the
# demo then waits for the expiry.
TTL_SECONDS=45
# How long to wait for an event to travel ingress queue -> router -> destination.
DELIVERY_TIMEOUT=20

if [[ ! -f $DEV_DIR/env ]]; then
	die "no running stack in $DEV_DIR: start it with 'make dev' in another terminal, wait until it prints 'ready', then run 'make demo' again"
fi
# shellcheck source=/dev/null
source "$DEV_DIR/env"
pid_is "$SANDBOX_DEV_PID" dev.sh ||
	die "$DEV_DIR/env is left over from a stack that no longer runs: start it again with 'make dev'"
[[ -n ${SANDBOX_BOB_TOKEN:-} && -n ${SANDBOX_ADMIN_TOKEN:-} && -n ${SANDBOX_PROTECTED_GUILD:-} ]] ||
	die "the stack in $DEV_DIR predates the demo's principals (alice, bob, ops-admin): stop it and run 'make dev' again"
for tool in sandbox sqsctl psql redis-cli jq; do
	command -v "$tool" >/dev/null || die "$tool not found (the dev stack puts sandbox and sqsctl in $DEV_DIR/bin)"
done

# ---------------------------------------------------------------------------------------------
# Narration and checks

if [[ -t 1 && -z ${NO_COLOR:-} ]]; then
	BOLD=$'\e[1m' GREEN=$'\e[32m' RED=$'\e[31m' CYAN=$'\e[36m' RESET=$'\e[0m'
else
	BOLD='' GREEN='' RED='' CYAN='' RESET=''
fi
STEP=0
CHECKS=0

step() {
	STEP=$((STEP + 1))
	printf '\n%s== %d. %s%s\n' "$BOLD" "$STEP" "$*" "$RESET"
}
say() { printf '%s\n' "$*" | fold -s -w 100; }

# show CMD... prints the command as a user would type it (rcli, srcli, sql and wsql are redis-cli
# and psql with the stack's addresses), then runs it with its output indented.
show() {
	local shown=() arg
	for arg in "$@"; do
		if [[ $arg =~ ^[A-Za-z0-9_./:=@,+-]+$ ]]; then
			shown+=("$arg")
		else
			shown+=("'${arg//\'/\'\\\'\'}'")
		fi
	done
	case $1 in
	rcli) shown[0]="redis-cli" ;;
	srcli) shown[0]="redis-cli -h \$WORKER_REDIS_HOST -p \$WORKER_REDIS_PORT" ;;
	wcli) shown[0]="redis-cli -h \${SANDBOX_REDIS_ADDR%:*} -p \${SANDBOX_REDIS_ADDR##*:} --user \$SANDBOX_REDIS_USERNAME" ;;
	sql) shown[0]="psql" ;;
	wsql) shown[0]="psql \$WORKER_DATABASE_URL" ;;
	as_bob) shown[0]="SANDBOX_API_TOKEN=\$SANDBOX_BOB_TOKEN" ;;
	as_admin) shown[0]="SANDBOX_API_TOKEN=\$SANDBOX_ADMIN_TOKEN" ;;
	esac
	printf '%s$ %s%s\n' "$CYAN" "${shown[*]}" "$RESET"
	"$@" 2>&1 | sed 's/^/    /'
	return "${PIPESTATUS[0]}"
}

pass() {
	CHECKS=$((CHECKS + 1))
	printf '%s  ✓ %s%s\n' "$GREEN" "$*" "$RESET"
}
fail() {
	printf '%s  ✗ %s%s\n' "$RED" "$*" "$RESET" >&2
	printf '%sdemo failed at step %d after %d checks passed (stack logs: %s/logs/)%s\n' \
		"$RED" "$STEP" "$CHECKS" "$DEV_DIR" "$RESET" >&2
	exit 1
}

# expect_status WHAT WANT CMD... runs CMD (shown), and checks its exit status.
expect_status() {
	local what=$1 want=$2 status=0
	shift 2
	show "$@" || status=$?
	expect_eq "$what (exit $want)" "$want" "$status"
}

# expect_eq WHAT WANT GOT
expect_eq() {
	if [[ $3 == "$2" ]]; then
		pass "$1"
	else
		fail "$1: expected '$2', got '$3'"
	fi
}

# eventually SECONDS CMD... retries CMD every half second until it succeeds or time runs out.
eventually() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || return 1
		sleep 0.5
	done
}

# rcli is redis-cli as the stack's own user (the functions') on the control plane's Redis, where
# the route cache is; srcli the same on the sandboxes' own Redis (WORKER_REDIS_HOST and
# WORKER_REDIS_PORT: the same server when the sandboxes share it); wcli the sandbox's worker
# user, at the address and with the credentials `sandbox connect` handed out.
rcli() { redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" --user "$REDIS_USERNAME" --pass "$REDIS_PASSWORD" --no-auth-warning "$@"; }
srcli() { redis-cli -h "$WORKER_REDIS_HOST" -p "$WORKER_REDIS_PORT" --user "$REDIS_USERNAME" --pass "$REDIS_PASSWORD" --no-auth-warning "$@"; }
wcli() { redis-cli -h "${SANDBOX_REDIS_ADDR%:*}" -p "${SANDBOX_REDIS_ADDR##*:}" --user "$SANDBOX_REDIS_USERNAME" --pass "$SANDBOX_REDIS_PASSWORD" --no-auth-warning "$@"; }
# sql is psql on the control plane's database; wsql on the sandboxes' own server (the worker
# database, WORKER_DATABASE_URL), where their schemas and roles live.
sql() { psql "$DATABASE_URL" -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }
wsql() { psql "$WORKER_DATABASE_URL" -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }
# The sandbox CLI sends SANDBOX_API_TOKEN, alice's; as_bob and as_admin send another's.
as_bob() { SANDBOX_API_TOKEN=$SANDBOX_BOB_TOKEN "$@"; }
as_admin() { SANDBOX_API_TOKEN=$SANDBOX_ADMIN_TOKEN "$@"; }

# random_snowflake prints a Discord-shaped id (19 digits) no other demo run uses.
random_snowflake() {
	printf '1%018d\n' "$(((RANDOM << 30 | RANDOM << 15 | RANDOM) * 1000 + RANDOM % 1000))"
}

# ---------------------------------------------------------------------------------------------
# Gateway events, shaped as the Discord gateway sends them (op 0 dispatches).

event_message_create() { # GUILD SEQ CONTENT
	cat <<-EOF
		{"op":0,"s":$2,"t":"MESSAGE_CREATE","d":{"id":"130$RANDOM$RANDOM$RANDOM","channel_id":"1300000000000000101","guild_id":"$1","author":{"id":"1200000000000000042","username":"alice","discriminator":"0","global_name":"Alice","avatar":null},"member":{"roles":[],"joined_at":"2025-01-20T10:00:00.000000+00:00","deaf":false,"mute":false,"flags":0},"content":"$3","timestamp":"$(date -u +%FT%T.000000+00:00)","edited_timestamp":null,"tts":false,"mention_everyone":false,"mentions":[],"mention_roles":[],"attachments":[],"embeds":[],"pinned":false,"type":0,"flags":0}}
	EOF
}

event_guild_member_add() { # GUILD SEQ
	cat <<-EOF
		{"op":0,"s":$2,"t":"GUILD_MEMBER_ADD","d":{"guild_id":"$1","user":{"id":"1200000000000000077","username":"bob","discriminator":"0","global_name":"Bob","avatar":null},"nick":null,"roles":[],"joined_at":"$(date -u +%FT%T.000000+00:00)","premium_since":null,"deaf":false,"mute":false,"pending":false,"flags":0}}
	EOF
}

event_reaction_add() { # GUILD SEQ
	cat <<-EOF
		{"op":0,"s":$2,"t":"MESSAGE_REACTION_ADD","d":{"user_id":"1200000000000000042","channel_id":"1300000000000000101","message_id":"1300000000000000555","guild_id":"$1","emoji":{"id":null,"name":"👍"},"burst":false,"type":0}}
	EOF
}

event_guild_update() { # GUILD SEQ (the guild id is d.id for GUILD_* events about the guild itself)
	cat <<-EOF
		{"op":0,"s":$2,"t":"GUILD_UPDATE","d":{"id":"$1","name":"Sandbox test guild","icon":null,"owner_id":"1200000000000000042","afk_timeout":300,"verification_level":1,"default_message_notifications":1,"explicit_content_filter":2,"roles":[],"emojis":[],"features":[],"mfa_level":0,"system_channel_id":null,"premium_tier":0,"preferred_locale":"en-US","nsfw_level":0}}
	EOF
}

event_dm_message_create() { # SEQ TEXT (a direct message: no guild, so it belongs to production)
	cat <<-EOF
		{"op":0,"s":$1,"t":"MESSAGE_CREATE","d":{"id":"130$RANDOM$RANDOM$RANDOM","channel_id":"1300000000000000999","author":{"id":"1200000000000000042","username":"alice","discriminator":"0","global_name":"Alice","avatar":null},"content":"hello bot, says $2","timestamp":"$(date -u +%FT%T.000000+00:00)","edited_timestamp":null,"tts":false,"mention_everyone":false,"mentions":[],"mention_roles":[],"attachments":[],"embeds":[],"pinned":false,"type":0,"flags":0}}
	EOF
}

# send_event LABEL < JSON: puts one gateway payload on the ingress queue.
send_event() {
	local id
	id=$(sqsctl send -queue "$INGRESS_QUEUE_URL") || fail "sending $1 to the ingress queue"
	printf '    sent %-44s message %s\n' "$1" "$id"
}

# ---------------------------------------------------------------------------------------------

NAME="demo-$(head -c 32 /dev/urandom | tr -dc 'a-z0-9' | head -c 6)"
while ((${#NAME} < 11)); do NAME+=$((RANDOM % 10)); done
GUILD=$(random_snowflake)
OTHER_GUILD=$(random_snowflake)
SANDBOX_ID=""

# If the demo stops half-way, its sandbox is destroyed so a rerun starts clean.
on_exit() {
	local status=$?
	if ((status != 0)) && [[ -n $SANDBOX_ID ]]; then
		sandbox destroy "$NAME" --yes >/dev/null 2>&1 || true
	fi
}
trap on_exit EXIT

printf '%sDiscord server sandboxes: the whole story on the local stack%s\n' "$BOLD" "$RESET"
say "API $SANDBOX_API_URL, PostgreSQL and Redis of the dev stack, SQS on $SQS_ENDPOINT."
say "Sandbox '$NAME' with test guild $GUILD; guild $OTHER_GUILD belongs to production."
say "psql and redis-cli below connect to the stack's PostgreSQL and Redis (DATABASE_URL, REDIS_HOST and REDIS_PORT of $DEV_DIR/env); psql \$WORKER_DATABASE_URL and redis-cli -h \$WORKER_REDIS_HOST -p \$WORKER_REDIS_PORT to the sandboxes' own servers, apart from the control plane's."
say "The stack has three principals, each with a token in $DEV_DIR/env: alice and bob, two developers, and ops-admin, an admin. The sandbox commands run as alice (SANDBOX_API_TOKEN is her token) unless shown otherwise."

step "An admin registers the test guild"
say "A sandbox maps only the test guilds an admin registered, so that no developer can take a production guild's events:"
show as_admin sandbox guilds register "$GUILD" --note "test guild of the demo" ||
	fail "sandbox guilds register failed"
expect_eq "the test guild is registered and free" free \
	"$(sandbox guilds registered --json | jq -r --arg g "$GUILD" '.guilds[] | select(.guild_id == $g) | .state')"

step "Create a sandbox with a test guild and a ${TTL_SECONDS}s TTL"
say "The CLI calls POST /v1/sandboxes: the API clones the template schema into a new schema, creates a role, the Redis event stream with its consumer group, and maps the guild."
show sandbox create "$NAME" --guild "$GUILD" --ttl "${TTL_SECONDS}s" --meta purpose=demo ||
	fail "sandbox create failed"
SANDBOX_JSON=$(sandbox status "$NAME" --json) || fail "sandbox status $NAME failed"
SANDBOX_ID=$(jq -r .sandbox.id <<<"$SANDBOX_JSON")
STREAM=$(jq -r .sandbox.stream <<<"$SANDBOX_JSON")
SCHEMA=$(jq -r .sandbox.schema <<<"$SANDBOX_JSON")
ROLE=$(jq -r .sandbox.role <<<"$SANDBOX_JSON")
expect_eq "the sandbox is running" running "$(jq -r .sandbox.status <<<"$SANDBOX_JSON")"
expect_eq "the guild is mapped to it" "$GUILD" "$(jq -r '.sandbox.guilds | join(",")' <<<"$SANDBOX_JSON")"
show wsql -c "SELECT table_name FROM information_schema.tables WHERE table_schema = '$SCHEMA' ORDER BY 1"
expect_eq "its schema $SCHEMA holds the template's tables" \
	"$(wsql -c "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'sandbox_template'")" \
	"$(wsql -c "SELECT count(*) FROM information_schema.tables WHERE table_schema = '$SCHEMA'")"
expect_eq "its role $ROLE exists on the sandboxes' server" 1 "$(wsql -c "SELECT count(*) FROM pg_roles WHERE rolname = '$ROLE'")"
expect_eq "and not on the control plane's, which its code never reaches" 0 "$(sql -c "SELECT count(*) FROM pg_roles WHERE rolname = '$ROLE'")"
show srcli XINFO GROUPS "$STREAM"
expect_eq "its stream has the consumer group 'workers'" workers "$(srcli --json XINFO GROUPS "$STREAM" | jq -r '.[0].name')"
if [[ -n ${WORKER_REDIS_ADDR:-} ]]; then
	expect_eq "its stream is on the sandboxes' own Redis, not on the control plane's (the route cache's)" 0 "$(rcli EXISTS "$STREAM")"
fi
say "A worker gets its own credentials with sandbox connect: a database password for its role, and a Redis user that reaches the sandbox's namespace and nothing else:"
CONNECT_EXPORTS=$(sandbox connect "$NAME" 2>/dev/null) || fail "sandbox connect $NAME failed"
eval "$CONNECT_EXPORTS"
expect_eq "its Redis user is the sandbox's own" "sb_$SANDBOX_ID" "$SANDBOX_REDIS_USERNAME"
expect_eq "connect hands out the sandboxes' Redis" "$WORKER_REDIS_HOST:$WORKER_REDIS_PORT" "$SANDBOX_REDIS_ADDR"
show wcli GET "sandbox:route:{routes}:$GUILD"
expect_eq "the worker's user may not touch the route cache" NOPERM "$(wcli GET "sandbox:route:{routes}:$GUILD" 2>&1 | awk '{print $1}')"

step "Other developers cannot touch it; production guilds cannot be mapped"
say "bob owns nothing of alice's: every route of her sandbox answers him 403 forbidden (exit 5), reads included, and nothing changes:"
expect_status "bob cannot see alice's sandbox" 5 as_bob sandbox status "$NAME"
expect_status "bob cannot destroy it" 5 as_bob sandbox destroy "$NAME" --yes
expect_eq "it is still running" running "$(sandbox status "$NAME" --json | jq -r .sandbox.status)"
say "The stack's production guild $SANDBOX_PROTECTED_GUILD is protected (SANDBOX_PROTECTED_GUILDS): no sandbox may map it (409 guild_protected, exit 4), and its events always go to production:"
expect_status "the production guild cannot be mapped" 4 sandbox create "$NAME-prod" --guild "$SANDBOX_PROTECTED_GUILD" --ttl 10m
expect_eq "it routes to production" production "$(sandbox route "$SANDBOX_PROTECTED_GUILD" --json | jq -r .destination)"
say "Nor may a sandbox map guild $OTHER_GUILD, which nobody registered as a test guild (409 guild_not_registered, exit 4):"
expect_status "an unregistered guild cannot be mapped" 4 sandbox guilds add "$NAME" "$OTHER_GUILD"

step "Send gateway events into the ingress queue"
ROUTER_LOG_LINES=$(wc -l <"$DEV_DIR/logs/router.log")
say "The Discord ingress service puts every gateway dispatch on the ingress queue as it came from the gateway. Four events of the test guild (GUILD_UPDATE carries the guild in d.id), one of another guild, one direct message (no guild):"
event_message_create "$GUILD" 101 "testing my new command" | send_event "MESSAGE_CREATE (test guild)"
event_guild_member_add "$GUILD" 102 | send_event "GUILD_MEMBER_ADD (test guild)"
event_reaction_add "$GUILD" 103 | send_event "MESSAGE_REACTION_ADD (test guild)"
event_guild_update "$GUILD" 104 | send_event "GUILD_UPDATE (test guild)"
event_message_create "$OTHER_GUILD" 9001 "a production message for $NAME" | send_event "MESSAGE_CREATE (other guild)"
event_dm_message_create 9002 "$NAME" | send_event "MESSAGE_CREATE (direct message)"
say "And one message that is not a gateway payload at all (the router sends it to the dead-letter queue itself, with the reason, from the first receive):"
POISON_ID=$(printf 'this is not JSON' | sqsctl send -queue "$INGRESS_QUEUE_URL") || fail "sending the poison message to the ingress queue"
printf '    sent %-44s message %s\n' "poison message" "$POISON_ID"

step "The test guild's events arrive in the sandbox's stream"
say "The router polls the ingress queue, resolves each guild (in-process cache, Redis route cache, PostgreSQL) and appends sandbox events to the sandbox's stream. A worker reads them with a consumer group:"
# stream_has N: the stream holds N distinct events (by their gateway sequence; see below).
stream_has() {
	[[ $(srcli -2 --json XRANGE "$STREAM" - + |
		jq '[.[] | .[1] | [range(0; length; 2) as $i | {(.[$i]): .[$i + 1]}] | add | .seq] | unique | length') -ge $1 ]]
}
eventually "$DELIVERY_TIMEOUT" stream_has 4 || fail "the stream $STREAM has $(srcli XLEN "$STREAM") entries after ${DELIVERY_TIMEOUT}s, expected 4"
# shellcheck disable=SC2016 # the command is shown as the reader types it, variables unexpanded
printf '%s$ redis-cli -h ${SANDBOX_REDIS_ADDR%%:*} -p ${SANDBOX_REDIS_ADDR##*:} --user $SANDBOX_REDIS_USERNAME XREADGROUP GROUP workers demo-worker COUNT 10 STREAMS %s ">"%s\n' "$CYAN" "$STREAM" "$RESET"
ENTRIES=$(wcli -2 --json XREADGROUP GROUP workers demo-worker COUNT 10 STREAMS "$STREAM" ">")
# RESP2 JSON: [[stream, [[id, [field, value, ...]], ...]]]
jq -r '.[0][1][] | .[0] as $id | (.[1] | [range(0; length; 2) as $i | {(.[$i]): .[$i + 1]}] | add) as $f
	| "    \($id)  type=\($f.type)  guild_id=\($f.guild_id)  seq=\($f.seq // "-")  message_id=\($f.message_id)  payload=\($f.payload | .[0:60])…"' <<<"$ENTRIES"
# SQS delivers at least once, and its producers send at least once: an SDK that retries a send
# whose answer it lost (a loaded machine) puts the event on the queue twice, under two message
# ids. A worker drops such a repeat by the gateway sequence (seq), as a bot drops a replayed
# dispatch; so does this check.
expect_eq "the stream holds exactly the test guild's 4 events, in order (a repeated seq counted once)" \
	"MESSAGE_CREATE GUILD_MEMBER_ADD MESSAGE_REACTION_ADD GUILD_UPDATE" \
	"$(jq -r '[.[0][1][] | .[1] | [range(0; length; 2) as $i | {(.[$i]): .[$i + 1]}] | add]
		| reduce .[] as $e ([]; if any(.[]; .seq == $e.seq) then . else . + [$e] end) | map(.type) | join(" ")' <<<"$ENTRIES")"
expect_eq "every entry carries the test guild's id" "$GUILD" \
	"$(jq -r '[.[0][1][] | .[1] | [range(0; length; 2) as $i | {(.[$i]): .[$i + 1]}] | add | .guild_id] | unique | join(",")' <<<"$ENTRIES")"
IDS=$(jq -r '.[0][1][] | .[0]' <<<"$ENTRIES" | tr '\n' ' ')
# shellcheck disable=SC2086 # one argument per entry id
show wcli XACK "$STREAM" workers $IDS
expect_eq "the worker acknowledged them: nothing pending" 0 "$(wcli --json XPENDING "$STREAM" workers | jq -r '.[0]')"
if [[ ${SANDBOX_DEV_LOG_LEVEL:-info} =~ ^(debug|info)$ ]]; then
	say "The router logs one line per batch: where its events went (to_sandbox, to_production, parked, dropped, each drop by reason), failures and poison. Watch them with tail -f $DEV_DIR/logs/router.log; this demo's batches so far:"
	# A batch's line comes once all its deliveries are done, a moment after its stream appends.
	router_summaries() {
		ROUTER_SUMMARIES=$(tail -n +$((ROUTER_LOG_LINES + 1)) "$DEV_DIR/logs/router.log" |
			jq -c 'select(.message == "batch routed") | del(.timestamp, .level, .request_id, .message)')
		[[ $(jq -s 'map(.to_sandbox) | add // 0' <<<"$ROUTER_SUMMARIES") -ge 4 ]]
	}
	eventually 5 router_summaries || true
	jq -r '"    " + tostring' <<<"$ROUTER_SUMMARIES"
	router_summaries || fail "the router's batch lines do not account for the 4 events delivered to the sandbox"
	pass "the router's batch lines account for the stream's events"
fi

step "The other events arrive in the production queue"
say "Events of guilds that belong to no sandbox, and events without a guild, go to the production bot's queue unchanged:"
PRODUCTION_FILE=$(mktemp)
# Both events are found by content, whatever else the queue holds.
production_has_both() {
	sqsctl receive -queue "$PRODUCTION_QUEUE_URL" -min 0 -timeout 1s >>"$PRODUCTION_FILE"
	[[ $(jq -s --arg n "$NAME" '[.[] | select(.d.content? // "" | endswith($n))] | length' "$PRODUCTION_FILE") -ge 2 ]]
}
printf '%s$ sqsctl receive -queue %s%s\n' "$CYAN" "$PRODUCTION_QUEUE_URL" "$RESET"
eventually "$DELIVERY_TIMEOUT" production_has_both ||
	fail "the production queue did not receive both events within ${DELIVERY_TIMEOUT}s"
PRODUCTION=$(jq -c --arg n "$NAME" 'select(.d.content? // "" | endswith($n))' "$PRODUCTION_FILE")
jq -r '"    \(.t)  guild_id=\(.d.guild_id // "none (direct message)")  content=\(.d.content)"' <<<"$PRODUCTION"
expect_eq "production got the other guild's event and the direct message" \
	"$(printf '%s\n' "$OTHER_GUILD" none | sort | paste -sd,)" \
	"$(jq -r '.d.guild_id // "none"' <<<"$PRODUCTION" | sort | paste -sd,)"
if grep -q "$GUILD" "$PRODUCTION_FILE"; then
	fail "a test guild event reached the production queue"
fi
rm -f "$PRODUCTION_FILE"
pass "no test guild event reached production"

step "Ask why a guild routes where it does"
show sandbox route "$GUILD" || fail "sandbox route $GUILD failed"
expect_eq "the test guild routes to the sandbox" sandbox "$(sandbox route "$GUILD" --json | jq -r .destination)"
show sandbox route "$OTHER_GUILD" || fail "sandbox route $OTHER_GUILD failed"
expect_eq "the other guild routes to production" production "$(sandbox route "$OTHER_GUILD" --json | jq -r .destination)"

step "Let the sandbox expire"
say "The sandbox was created with a ${TTL_SECONDS}s TTL. Once past it, it shows as expired and is a cleanup candidate (the stack's scheduled cleanup may already be tearing it down):"
sandbox_status() { sandbox status "$NAME" --json | jq -r .sandbox.status; }
is_expired() { [[ $(sandbox_status) =~ ^(expired|destroying|destroyed)$ ]]; }
eventually $((TTL_SECONDS + 30)) is_expired || fail "the sandbox is not shown as expired ${TTL_SECONDS}s after creation"
show sandbox status "$NAME"
pass "the sandbox is $(sandbox_status)"

step "The poison message is in the dead-letter queue, with its reason"
say "The router never fails a whole batch for one message, and never waits for the queue's redrive policy (3 receives here, 5 in AWS) to take a message that retrying cannot help: it sends the poison message to the dead-letter queue itself, with the original body and the reason as message attributes, where an operator finds it at once (docs/runbook.md, ingress-dlq-not-empty)."
DLQ_FILE=$(mktemp)
# Found by its ingress message id, whatever else the queue holds (the demo takes it out).
dlq_has_poison() {
	sqsctl receive -queue "$INGRESS_DLQ_URL" -min 0 -timeout 1s -json >>"$DLQ_FILE"
	jq -e -s --arg id "$POISON_ID" 'any(.[]; .attributes.ingress_message_id == $id)' "$DLQ_FILE"
}
printf '%s$ sqsctl receive -queue %s -json%s\n' "$CYAN" "$INGRESS_DLQ_URL" "$RESET"
eventually "$DELIVERY_TIMEOUT" dlq_has_poison ||
	fail "the poison message $POISON_ID did not reach the dead-letter queue within ${DELIVERY_TIMEOUT}s"
POISON=$(jq -c -s --arg id "$POISON_ID" 'first(.[] | select(.attributes.ingress_message_id == $id))' "$DLQ_FILE")
rm -f "$DLQ_FILE"
jq -r '"    body=\(.body)  " + (.attributes | to_entries | map(select(.key | startswith("sandbox-poison-"))) | map("\(.key)=\(.value)") | join("  "))' <<<"$POISON"
expect_eq "its reason is malformed" malformed "$(jq -r '.attributes["sandbox-poison-reason"]' <<<"$POISON")"
expect_eq "its body is the original" "this is not JSON" "$(jq -r .body <<<"$POISON")"
[[ -n $(jq -r '.attributes["sandbox-poison-at"] // empty' <<<"$POISON") ]] || fail "the poison message does not say when it was dead-lettered"
poison_logged() { grep -qF "\"message_id\":\"$POISON_ID\"" "$DEV_DIR/logs/router.log"; }
eventually 5 poison_logged || fail "the router did not log the poison message $POISON_ID"
expect_eq "the router received it once and dead-lettered it (the redrive policy adds no reason)" \
	'1 1' "$(grep -cF "\"message_id\":\"$POISON_ID\"" "$DEV_DIR/logs/router.log") $(grep -F "\"message_id\":\"$POISON_ID\"" "$DEV_DIR/logs/router.log" | grep -c '"dead_lettered":true')"

step "Run the cleanup"
say "Cleanup runs every 15 minutes in AWS (every 30s here). An admin can also run it now; alice cannot (exit 5), ops-admin can:"
expect_status "alice may not run the cleanup" 5 sandbox cleanup run
WAIT=30
if show as_admin sandbox cleanup run; then
	:
elif (($? == 6)); then # unavailable: this API was started without the cleanup service
	say "The API answered 503 unavailable: it runs without the cleanup service. Waiting for the stack's scheduled cleanup run instead (every 30s)."
	WAIT=75
else
	fail "sandbox cleanup run failed"
fi
is_destroyed() { [[ $(sandbox_status) == destroyed ]]; }
eventually "$WAIT" is_destroyed || fail "the sandbox is $(sandbox_status), not destroyed, after the cleanup run"
show sandbox status "$NAME"
pass "the sandbox is destroyed, its teardown record shows every step"

step "Nothing of the sandbox remains"
show sql -c "SELECT id, name, status, destroyed_at IS NOT NULL AS destroyed FROM sandbox_control.sandboxes WHERE id = '$SANDBOX_ID'"
expect_eq "schema $SCHEMA is gone" 0 "$(wsql -c "SELECT count(*) FROM pg_namespace WHERE nspname = '$SCHEMA'")"
expect_eq "role $ROLE is gone" 0 "$(wsql -c "SELECT count(*) FROM pg_roles WHERE rolname = '$ROLE'")"
expect_eq "no guild mapping is left" 0 "$(sql -c "SELECT count(*) FROM sandbox_control.guild_mappings WHERE sandbox_id = '$SANDBOX_ID' OR guild_id = '$GUILD'")"
show srcli --scan --pattern "sandbox:{$SANDBOX_ID}:*"
expect_eq "no Redis key of its namespace is left" "" "$(srcli --scan --pattern "sandbox:{$SANDBOX_ID}:*")"
expect_eq "no route cache entry of its guild is left" 0 "$(rcli EXISTS "sandbox:route:{routes}:$GUILD")"

step "The test guild stays a test guild: parked"
say "Its sandbox is gone, but the guild is still a test guild: the teardown parked it. Its events are dropped and counted (EventsRouted, Destination=parked), never sent to the production bot, until its owner or an admin releases it or maps it again:"
show sandbox route "$GUILD"
expect_eq "the test guild is parked" parked "$(sandbox route "$GUILD" --json | jq -r .destination)"
show sandbox guilds parked
expect_eq "it is listed among the owner's parked guilds" "$GUILD" "$(sandbox guilds parked --json | jq -r --arg g "$GUILD" '.guilds[] | select(.guild_id == $g) | .guild_id')"
event_message_create "$GUILD" 106 "after the teardown of $NAME" | send_event "MESSAGE_CREATE (parked test guild)"
parked_counted() { grep -q '"Destination":"parked"' "$DEV_DIR/logs/router.metrics.jsonl"; }
eventually "$DELIVERY_TIMEOUT" parked_counted || fail "the router did not count an event of the parked guild within ${DELIVERY_TIMEOUT}s"
pass "the router dropped it as parked"

step "Release the test guild to production"
show sandbox guilds release "$GUILD" || fail "sandbox guilds release $GUILD failed"
show sandbox route "$GUILD"
expect_eq "the released guild routes to production" production "$(sandbox route "$GUILD" --json | jq -r .destination)"
event_message_create "$GUILD" 107 "released by $NAME" | send_event "MESSAGE_CREATE (released guild)"
RELEASED_FILE=$(mktemp)
released_arrived() {
	sqsctl receive -queue "$PRODUCTION_QUEUE_URL" -min 0 -timeout 1s >>"$RELEASED_FILE"
	grep -qF "released by $NAME" "$RELEASED_FILE"
}
eventually "$DELIVERY_TIMEOUT" released_arrived || fail "the released guild's event did not reach production within ${DELIVERY_TIMEOUT}s"
if grep -qF "after the teardown of $NAME" "$RELEASED_FILE"; then
	fail "the event sent while the guild was parked reached production"
fi
rm -f "$RELEASED_FILE"
pass "its events reach production from the release on, and the parked one never did"
show sql -c "SELECT at, actor, action FROM sandbox_control.audit_log WHERE sandbox_id = '$SANDBOX_ID' ORDER BY id"

printf '\n%sDemo complete: %d checks passed.%s\n' "$GREEN$BOLD" "$CHECKS" "$RESET"
