#!/usr/bin/env bash
# Packaging smoke test (issue 6): each function, built like the Lambda package (lambda.norpc,
# static, trimmed) but for this machine's architecture, answers a real invocation under the
# AWS Lambda Runtime Interface Emulator; then the arm64 zips of `make package` are checked to
# be under 10 MB. Runs inside scripts/with-services.sh (needs PostgreSQL, Redis and moto).
# As in a deployment, the api function's migrate invocation runs first (the functions only
# check the schema at cold start), and the router connects as its own database role.
set -euo pipefail
shopt -s inherit_errexit
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO"

: "${SANDBOX_TEST_DATABASE_URL:?run through scripts/with-services.sh}"
: "${SANDBOX_TEST_REDIS_ADDR:?run through scripts/with-services.sh}"
: "${SANDBOX_TEST_SQS_ENDPOINT:?run through scripts/with-services.sh}"
: "${SANDBOX_TEST_ROUTER_DATABASE_URL:?run through scripts/with-services.sh}"
: "${SANDBOX_TEST_ROUTER_ROLE:?run through scripts/with-services.sh}"

RIE_VERSION=v0.0.0-20261030222936-bef5c4ba774d
work=$(mktemp -d /tmp/rie-smoke.XXXXXX)
rie_pid=""
cleanup() {
	[[ -n $rie_pid ]] && kill "$rie_pid" 2>/dev/null && wait "$rie_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

tools="$REPO/.run/tools"
if [[ ! -x $tools/aws-lambda-rie ]]; then
	log "installing aws-lambda-rie $RIE_VERSION from the Go module proxy"
	GOBIN="$tools" go install "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$RIE_VERSION"
fi

# The queues on moto; the router delivers to the production one.
go build -o "$work/sqsctl" ./scripts/sqsctl
export SQS_ENDPOINT="$SANDBOX_TEST_SQS_ENDPOINT"
eval "$("$work/sqsctl" setup -prefix "smoke-$$")"
prod_queue=$PRODUCTION_QUEUE_URL

common_env=(
	ENVIRONMENT=smoke
	DATABASE_URL="$SANDBOX_TEST_DATABASE_URL"
	REDIS_ADDR="$SANDBOX_TEST_REDIS_ADDR"
	REDIS_USERNAME="$SANDBOX_TEST_REDIS_USERNAME"
	REDIS_PASSWORD="$SANDBOX_TEST_REDIS_PASSWORD"
	AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
	AWS_ENDPOINT_URL="$SANDBOX_TEST_SQS_ENDPOINT"
	PRODUCTION_QUEUE_URL="$prod_queue"
	ROUTER_DEAD_LETTER_QUEUE_URL="$INGRESS_DLQ_URL"
	LOG_LEVEL=warn
)

# invoke FUNCTION EVENT_FILE [VAR=VALUE...]: starts the emulator on the function (with the
# common environment and these variables), posts the event, prints the response.
invoke() {
	local fn=$1 event=$2 port api_port
	port=$(free_port)
	api_port=$(free_port)
	env -i PATH="$PATH" HOME="$HOME" "${common_env[@]}" "${@:3}" \
		"$tools/aws-lambda-rie" --log-level error \
		--runtime-interface-emulator-address "127.0.0.1:$port" \
		--runtime-api-address "127.0.0.1:$api_port" \
		"$work/$fn/bootstrap" >"$work/$fn.log" 2>&1 &
	rie_pid=$!
	local url="http://127.0.0.1:$port/2015-03-31/functions/function/invocations"
	for _ in $(seq 1 100); do
		curl -fsS -o /dev/null -d '{}' --max-time 1 "http://127.0.0.1:$port/" 2>/dev/null && break
		kill -0 "$rie_pid" 2>/dev/null || { cat "$work/$fn.log" >&2; die "$fn: emulator exited"; }
		sleep 0.1
	done
	if ! curl -fsS --max-time 60 -d @"$event" "$url" >"$work/$fn.out"; then
		cat "$work/$fn.log" >&2
		die "$fn: invocation failed"
	fi
	kill "$rie_pid" 2>/dev/null
	wait "$rie_pid" 2>/dev/null || true
	rie_pid=""
	cat "$work/$fn.out"
}

for fn in api router cleanup; do
	CGO_ENABLED=0 go build -tags lambda.norpc -trimpath -ldflags='-s -w' -o "$work/$fn/bootstrap" "./functions/$fn"
done

expect() { # expect NAME JQ_FILTER RESPONSE
	if ! jq -e "$2" <<<"$3" >/dev/null; then
		echo "$3" >&2
		die "$1: response does not satisfy $2"
	fi
	log "$1: ok ($2)"
}

# The migrate step, as Terraform invokes it after an update of the api function.
migrations=(shared/controlplane/migrations/*.sql)
schema_version=$(basename "${migrations[-1]}" .sql)
printf '{"migrate": true, "router_role": "%s"}\n' "$SANDBOX_TEST_ROUTER_ROLE" >"$work/migrate.json"
out=$(invoke api "$work/migrate.json")
expect api ".version == \"$schema_version\" and .router_role == \"$SANDBOX_TEST_ROUTER_ROLE\" and (.applied | type == \"array\")" "$out"

out=$(invoke api scripts/smoke/api-health.json)
expect api '.statusCode == 200 and (.body | fromjson | .overall == "healthy")' "$out"

out=$(invoke router scripts/smoke/router-sqs.json DATABASE_URL="$SANDBOX_TEST_ROUTER_DATABASE_URL")
expect router '.batchItemFailures == []' "$out"
received=$("$work/sqsctl" receive -queue "$prod_queue" -min 1 -timeout 10s)
grep -q 'hello from the smoke test' <<<"$received" || die "router: the event did not reach the production queue"
log "router: event delivered to the production queue"
# The event's second record is poison: handled (not a batch item failure), it is in the
# dead-letter queue with its reason.
dead=$("$work/sqsctl" receive -queue "$INGRESS_DLQ_URL" -min 1 -timeout 10s -json)
expect router '.attributes["sandbox-poison-reason"] == "malformed" and .attributes.ingress_message_id == "6f1c2a86-4a1e-4f39-9d1b-1c9a3a4f0002"' "$dead"
log "router: poison message sent to the dead-letter queue"

out=$(invoke cleanup scripts/smoke/cleanup-scheduled.json)
expect cleanup '(.started_at | type == "string") and .failed == [] and .left_at_deadline == 0' "$out"

log "packaging for provided.al2023 arm64"
scripts/package.sh >/dev/null
for fn in api router cleanup; do
	size=$(stat -c %s "dist/$fn.zip")
	((size < 10 * 1024 * 1024)) || die "dist/$fn.zip is $size bytes, over 10 MB"
	unzip -l "dist/$fn.zip" >"$work/$fn.list"
	grep -q ' bootstrap$' "$work/$fn.list" || die "dist/$fn.zip has no bootstrap"
	unzip -p "dist/$fn.zip" bootstrap >"$work/$fn.arm64"
	file_arch=$(od -An -tx1 -N 20 "$work/$fn.arm64" | tr -d ' \n')
	# ELF header: e_machine at offset 18 is 0xb7 0x00 for aarch64.
	[[ ${file_arch:36:4} == b700 ]] || die "dist/$fn.zip bootstrap is not an arm64 ELF"
	log "dist/$fn.zip: $size bytes, arm64 bootstrap"
done
