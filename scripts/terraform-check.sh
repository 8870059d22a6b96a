#!/usr/bin/env bash
# Checks terraform/ without network access or an AWS account:
#   1. terraform fmt -check
#   2. terraform init -backend=false against a local provider mirror
#   3. terraform validate
#   4. terraform test, mocked provider (tests/unit.tftest.hcl)
#   5. terraform test, whole stack applied to moto_server, read back and
#      destroyed (tests/moto.tftest.hcl)
# 4 and 5 run side by side: 5 spends most of its time in the provider's
# SQS propagation waits.
#
# Environment:
#   TF_PLUGIN_MIRROR_DIR        provider mirror to use instead of searching for one
#   SANDBOX_TEST_MOTO_ENDPOINT  a running moto_server (http://host:port) instead of starting one
#   SANDBOX_TEST_SKIP_MOTO=1    skip step 5 (it says so loudly)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tfdir=$root/terraform
work=$(mktemp -d)
moto_pid=
moto_test_pid=

cleanup() {
	if [[ -n $moto_test_pid ]]; then
		kill "$moto_test_pid" 2>/dev/null || true
		wait "$moto_test_pid" 2>/dev/null || true
	fi
	if [[ -n $moto_pid ]]; then
		kill "$moto_pid" 2>/dev/null || true
		wait "$moto_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

fail() {
	echo "terraform-check: $*" >&2
	exit 1
}

step() {
	echo "==> $*"
}

elapsed() {
	echo "    ($(($(date +%s) - $1)) s)"
}

command -v terraform >/dev/null || fail "terraform is not installed"

# The provider comes from a filesystem mirror (these machines have no registry
# access): the directory that holds registry.terraform.io/hashicorp/aws.
find_mirror() {
	if [[ -n ${TF_PLUGIN_MIRROR_DIR:-} ]]; then
		[[ -d $TF_PLUGIN_MIRROR_DIR/registry.terraform.io/hashicorp/aws ]] ||
			fail "TF_PLUGIN_MIRROR_DIR=$TF_PLUGIN_MIRROR_DIR holds no registry.terraform.io/hashicorp/aws"
		echo "$TF_PLUGIN_MIRROR_DIR"
		return
	fi
	local candidates=(
		"${XDG_DATA_HOME:-$HOME/.local/share}/terraform/plugins"
		"$HOME/.terraform.d/plugins"
		/usr/local/share/terraform/plugins
		/usr/share/terraform/plugins
		/opt
		/usr/local/share
		/usr/share
	)
	local dir found
	for dir in "${candidates[@]}"; do
		[[ -d $dir ]] || continue
		found=$(find "$dir" -maxdepth 5 -type d -path '*/registry.terraform.io/hashicorp/aws' -print -quit 2>/dev/null || true)
		if [[ -n $found ]]; then
			echo "${found%/registry.terraform.io/hashicorp/aws}"
			return
		fi
	done
	fail "no Terraform provider mirror found (a directory holding registry.terraform.io/hashicorp/aws) under: ${candidates[*]}; set TF_PLUGIN_MIRROR_DIR"
}

mirror=$(find_mirror)
cat >"$work/terraform.rc" <<EOF
provider_installation {
  filesystem_mirror {
    path    = "$mirror"
    include = ["registry.terraform.io/*/*"]
  }
}
EOF
export TF_CLI_CONFIG_FILE=$work/terraform.rc
export TF_IN_AUTOMATION=1 TF_INPUT=0
echo "provider mirror: $mirror"

cd "$tfdir"
total=$(date +%s)

t=$(date +%s)
step "terraform fmt -check -recursive"
terraform fmt -check -recursive -diff || fail "run: terraform -chdir=terraform fmt -recursive"
elapsed "$t"

t=$(date +%s)
step "terraform init -backend=false"
terraform init -backend=false -no-color >"$work/init.log" 2>&1 || {
	cat "$work/init.log"
	fail "terraform init failed"
}
elapsed "$t"

t=$(date +%s)
step "terraform validate"
terraform validate -no-color
elapsed "$t"

start_moto() {
	command -v moto_server >/dev/null ||
		fail "moto_server is not installed (pip install 'moto[server]'); or set SANDBOX_TEST_MOTO_ENDPOINT, or SANDBOX_TEST_SKIP_MOTO=1"
	local port
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	MOTO_IAM_LOAD_MANAGED_POLICIES=true moto_server -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
	moto_pid=$!
	moto_endpoint=http://127.0.0.1:$port
	for _ in $(seq 1 60); do
		if python3 -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1] + '/moto-api/', timeout=1)" "$moto_endpoint" 2>/dev/null; then
			return
		fi
		kill -0 "$moto_pid" 2>/dev/null || {
			cat "$work/moto.log"
			fail "moto_server exited"
		}
		sleep 0.5
	done
	fail "moto_server did not answer on $moto_endpoint within 30 s"
}

moto_status=skipped
if [[ ${SANDBOX_TEST_SKIP_MOTO:-} == 1 ]]; then
	echo "!!! SANDBOX_TEST_SKIP_MOTO=1: NOT applying the stack to moto"
else
	moto_endpoint=${SANDBOX_TEST_MOTO_ENDPOINT:-}
	[[ -n $moto_endpoint ]] || start_moto
	echo "moto: $moto_endpoint"
	moto_t=$(date +%s)
	# The test file declares moto_endpoint itself; -var values for it are
	# HCL expressions, hence the quotes.
	terraform test -no-color -filter=tests/moto.tftest.hcl -var="moto_endpoint=\"$moto_endpoint\"" \
		>"$work/moto-test.log" 2>&1 &
	moto_test_pid=$!
	moto_status=running
fi

t=$(date +%s)
step "terraform test (mocked provider)"
unit_status=0
terraform test -no-color -filter=tests/unit.tftest.hcl || unit_status=$?
elapsed "$t"

if [[ $moto_status == running ]]; then
	step "terraform test (applied to moto, read back, destroyed)"
	moto_status=0
	wait "$moto_test_pid" || moto_status=$?
	moto_test_pid=
	cat "$work/moto-test.log"
	elapsed "$moto_t"
	if [[ $moto_status != 0 && -n $moto_pid ]]; then
		echo "--- moto_server log (last 40 lines)"
		tail -n 40 "$work/moto.log"
	fi
fi

echo "terraform checks took $(($(date +%s) - total)) s"
[[ $unit_status == 0 ]] || fail "mocked-provider tests failed"
case $moto_status in
0) ;;
skipped) echo "!!! the moto apply test was skipped" ;;
*) fail "moto apply test failed" ;;
esac
