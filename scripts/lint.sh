#!/usr/bin/env bash
# make lint: every static check, in order of speed:
#   1. gofmt (every tracked Go file)
#   2. go vet ./...
#   3. shellcheck on every tracked shell script (Debian's package; installed through apt when
#      running as root and missing)
#   4. golangci-lint, the version pinned below, built once from the Go module proxy into
#      .run/tools (configuration: .golangci.yml)
#
# Modes, for scripts/test.sh: --install only makes sure the tools are there (the suite starts
# it in the background while the tests run, so that building golangci-lint costs it little
# wall time); --quick runs 1-2 (first, for fast feedback); --deep runs 3-4 (at the end).
set -euo pipefail
cd "$(dirname "$0")/.."

GOLANGCI_LINT_VERSION=v2.15.0
TOOLS="$PWD/.run/tools"
GOLANGCI_LINT="$TOOLS/golangci-lint-$GOLANGCI_LINT_VERSION"

install_golangci_lint() {
	[[ -x $GOLANGCI_LINT ]] && return
	mkdir -p "$TOOLS"
	local tmp
	tmp=$(mktemp -d "$TOOLS/build.XXXXXX")
	# Outside the module: the linter's dependencies never touch this module's go.mod.
	(cd "$tmp" && GOBIN="$tmp" GOFLAGS='' go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$GOLANGCI_LINT_VERSION")
	mv "$tmp/golangci-lint" "$GOLANGCI_LINT"
	rm -rf "$tmp"
}

install_shellcheck() {
	command -v shellcheck >/dev/null && return
	if [[ $(id -u) -ne 0 ]]; then
		echo "lint.sh: shellcheck is missing: install Debian's shellcheck package" >&2
		return 1
	fi
	apt-get install -y -qq shellcheck >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq shellcheck >/dev/null; }
}

mode=${1:-all}
case $mode in
--install)
	install_shellcheck
	install_golangci_lint
	exit 0
	;;
all | --quick | --deep) ;;
*)
	echo "usage: scripts/lint.sh [--quick|--deep|--install]" >&2
	exit 2
	;;
esac

if [[ $mode != --deep ]]; then
	# Tracked and new files alike, as they are in the working tree.
	mapfile -t go_files < <(git ls-files --cached --others --exclude-standard '*.go' | while read -r f; do [[ -e $f ]] && echo "$f"; done)
	unformatted=$(gofmt -l "${go_files[@]}")
	if [[ -n $unformatted ]]; then
		echo "gofmt would change:" >&2
		echo "$unformatted" >&2
		exit 1
	fi
	echo "gofmt: ok"

	go vet ./...
	echo "go vet: ok"
fi
[[ $mode == --quick ]] && exit 0

install_shellcheck
mapfile -t scripts < <(git ls-files --cached --others --exclude-standard '*.sh' .ci/run | while read -r f; do [[ -e $f ]] && echo "$f"; done)
shellcheck -x "${scripts[@]}"
echo "shellcheck: ok (${#scripts[@]} scripts)"

install_golangci_lint
"$GOLANGCI_LINT" run ./...
echo "golangci-lint $GOLANGCI_LINT_VERSION: ok"
