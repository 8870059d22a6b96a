# The two commands that matter: `make dev` runs the whole system locally, `make test` runs
# every test (it starts PostgreSQL, Redis and moto_server itself and stops them afterwards).
SHELL := /bin/bash
GO    ?= go

.PHONY: build test test-go lint bench package dev demo clean

# The CLI's version (sandbox version): git describe of the checkout, unless given
# (make build VERSION=v1.4.0); CLI_VERSION_VAR is the variable it stamps (shared/cli/version.go).
VERSION         ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
CLI_VERSION_VAR := github.com/botplatform/discord-sandboxes/shared/cli.version

# Every package, and the CLI as bin/sandbox with its version stamped.
build:
	$(GO) build ./...
	$(GO) build -buildvcs=auto -ldflags "-X $(CLI_VERSION_VAR)=$(VERSION)" -o bin/sandbox ./cmd/sandbox

# Everything CI runs. Services start before and stop after, even when a test fails.
test:
	scripts/with-services.sh scripts/test.sh

# Only the Go tests, with services (for a quicker loop).
test-go:
	scripts/with-services.sh $(GO) test -race -count=1 ./...

# gofmt, go vet, shellcheck and golangci-lint (pinned; built into .run/tools on first use).
lint:
	scripts/lint.sh

bench:
	scripts/with-services.sh scripts/bench.sh

package:
	scripts/package.sh

# The whole system on this machine; Ctrl-C stops everything it started. Its data is
# throwaway; `make dev PERSIST=1` keeps PostgreSQL's and Redis's data in .run/dev/data.
# `make dev REDIS_CLUSTER=1` runs it on a local Redis Cluster instead of a standalone Redis.
dev:
	$(if $(PERSIST),DEV_PERSIST=$(PERSIST)) $(if $(REDIS_CLUSTER),DEV_REDIS_CLUSTER=$(REDIS_CLUSTER)) scripts/dev.sh

# Against a running `make dev`, in another terminal.
demo:
	scripts/demo.sh

clean:
	rm -rf dist bin .run
