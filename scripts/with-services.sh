#!/usr/bin/env bash
# Runs a command with throwaway PostgreSQL, Redis (a standalone server and a Redis Cluster) and SQS
# services, then always stops them.
#
#   scripts/with-services.sh go test ./...
#   SANDBOX_SERVICES="pg redis" scripts/with-services.sh go test ./shared/...
#
# Each invocation uses its own run directory (.run/ci-<pid>) unless SANDBOX_RUN_DIR is set, so
# several can run at once; it is removed afterwards unless the services failed to start. The exit
# status is the command's.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

(($# > 0)) || die "usage: $(basename "$0") CMD [ARGS...]"

own_run_dir=false
if [[ -z ${SANDBOX_RUN_DIR:-} ]]; then
	SANDBOX_RUN_DIR="$REPO/.run/ci-$$"
	own_run_dir=true
fi
export SANDBOX_RUN_DIR

read -r -a services <<<"${SANDBOX_SERVICES:-pg pg-workers redis redis-workers redis-cluster sqs}"
status=1
started=false

cleanup() {
	trap - EXIT INT TERM
	if ! "$REPO/scripts/services.sh" stop; then
		log "warning: stopping the services failed; see $SANDBOX_RUN_DIR"
	elif $own_run_dir && $started; then
		rm -rf -- "$SANDBOX_RUN_DIR"
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'status=130; exit' INT
trap 'status=143; exit' TERM

"$REPO/scripts/services.sh" start "${services[@]}"
started=true # from here on the service logs are no longer needed to explain a failure
# shellcheck source=/dev/null
source "$SANDBOX_RUN_DIR/services.env"

set +e
"$@"
status=$?
set -e
