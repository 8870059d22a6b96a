#!/usr/bin/env bash
# Benchmarks on real stores, run by `make bench` inside scripts/with-services.sh. Figures and
# how to read them: docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
go test -run '^$' -bench . -benchmem -count 1 ./...
