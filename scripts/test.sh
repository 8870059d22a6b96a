#!/usr/bin/env bash
# The whole test suite, run by `make test` inside scripts/with-services.sh (which exports
# SANDBOX_TEST_DATABASE_URL, SANDBOX_TEST_REDIS_ADDR and SANDBOX_TEST_SQS_ENDPOINT).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "lint (gofmt, go vet)"
make --no-print-directory lint

step "go test -race (unit, integration on PostgreSQL/Redis/moto, fuzz seed corpora)"
go test -race -count=1 ./...

step "packaging smoke test under the Lambda Runtime Interface Emulator"
scripts/rie-smoke.sh

step "terraform fmt, validate, test (mocked provider, then applied to moto_server)"
scripts/terraform-check.sh

step "local stack + demo + runbook commands (make dev, make demo)"
scripts/demo-test.sh
