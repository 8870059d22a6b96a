#!/usr/bin/env bash
# The whole test suite, run by `make test` inside scripts/with-services.sh (which exports
# SANDBOX_TEST_DATABASE_URL, SANDBOX_TEST_REDIS_ADDR, SANDBOX_TEST_REDIS_CLUSTER_ADDRS and
# SANDBOX_TEST_SQS_ENDPOINT).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

# The lint tools build in the background (golangci-lint from the Go module proxy, minutes of
# CPU on a fresh machine) while the suite runs; the deep lint runs at the end.
mkdir -p .run
scripts/lint.sh --install >.run/lint-install.log 2>&1 &
lint_tools=$!

step "lint, quick (gofmt, go vet)"
scripts/lint.sh --quick

step "go test -race (unit, integration on PostgreSQL/Redis/moto, fuzz seed corpora)"
go test -race -count=1 ./...

# The packages whose code runs Redis commands, again on Redis Clusters: production runs on one,
# where keys hash to slots on several primaries. A test holds a cluster alone, so as many tests
# use Redis at once as scripts/services.sh started clusters (SANDBOX_REDIS_CLUSTERS); -timeout
# is a safety net for a package that waits long for them. Not shared/cli: its Redis use is the
# API's, which this pass runs in shared/api, and its tests are end to end and slow.
step "go test -race on Redis Clusters (SANDBOX_TEST_REDIS_MODE=cluster)"
redis_pkgs=(
	./shared/internal/testenv
	./shared/routecache
	./shared/routing
	./shared/routing/sqsadapter
	./shared/cleanup
	./shared/provision
	./shared/api
	./shared/clients
)
time SANDBOX_TEST_REDIS_MODE=cluster go test -race -count=1 -timeout 30m "${redis_pkgs[@]}"

# The packages that build the whole control plane, again with the sandboxes on a PostgreSQL
# server and a Redis server of their own (WORKER_DATABASE_URL and WORKER_REDIS_ADDR,
# scripts/services.sh's pg-workers and redis-workers), as production should run: every API
# route and every teardown, orphan and session pass over two of each (the router's split is
# shared/routing's TestProductionIsRoutedWithoutTheSandboxesRedis).
step "go test -race with the sandboxes on servers of their own (SANDBOX_TEST_WORKERS=apart)"
time SANDBOX_TEST_WORKERS=apart go test -race -count=1 ./shared/api ./shared/cleanup

step "packaging smoke test under the Lambda Runtime Interface Emulator"
scripts/rie-smoke.sh

step "terraform fmt, validate, test (mocked provider, then applied to moto_server)"
scripts/terraform-check.sh

step "local stack + demo + runbook commands (make dev, make demo)"
scripts/demo-test.sh

step "lint, deep (shellcheck, golangci-lint)"
if ! wait "$lint_tools"; then
	cat .run/lint-install.log >&2
	echo "test.sh: installing the lint tools failed" >&2
	exit 1
fi
scripts/lint.sh --deep
