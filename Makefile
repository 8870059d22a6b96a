# The two commands that matter: `make dev` runs the whole system locally, `make test` runs
# every test (it starts PostgreSQL, Redis and moto_server itself and stops them afterwards).
SHELL := /bin/bash
GO    ?= go

.PHONY: build test test-go lint bench package dev demo clean

build:
	$(GO) build ./...

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

# The whole system on this machine; Ctrl-C stops everything it started.
dev:
	scripts/dev.sh

# Against a running `make dev`, in another terminal.
demo:
	scripts/demo.sh

clean:
	rm -rf dist bin .run
