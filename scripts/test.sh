#!/usr/bin/env bash
# The whole test suite, run by `make test` inside scripts/with-services.sh (which exports
# SANDBOX_TEST_DATABASE_URL, SANDBOX_TEST_REDIS_ADDR and SANDBOX_TEST_SQS_ENDPOINT).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== lint (gofmt, go vet)"
make --no-print-directory lint

echo "== go test -race"
go test -race -count=1 ./...
