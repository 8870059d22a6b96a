#!/usr/bin/env bash
# Builds the Lambda packages Terraform deploys: for each functions/<name>,
# dist/<name>/bootstrap (linux/arm64, static, for provided.al2023) zipped as
# dist/<name>.zip.
#
# usage: scripts/package.sh [name...]        (default: every functions/*)
# environment:
#   PACKAGE_GOARCH  target architecture (default arm64, what Terraform deploys;
#                   a local emulator run may want the machine's own)
#   DIST_DIR        output directory (default dist)
#
# The zips are reproducible: same sources, same bytes (no VCS stamp, fixed
# timestamps), so `terraform apply` only redeploys functions whose code changed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

goarch=${PACKAGE_GOARCH:-arm64}
dist=${DIST_DIR:-dist}

if [[ $# -gt 0 ]]; then
	names=("$@")
else
	names=()
	for dir in functions/*/; do
		names+=("$(basename "$dir")")
	done
fi
[[ ${#names[@]} -gt 0 ]] || {
	echo "package: no functions under functions/" >&2
	exit 1
}

for name in "${names[@]}"; do
	[[ -d functions/$name ]] || {
		echo "package: no such function: functions/$name" >&2
		exit 1
	}
	out=$dist/$name
	mkdir -p "$out"
	GOOS=linux GOARCH=$goarch CGO_ENABLED=0 go build \
		-tags lambda.norpc -trimpath -buildvcs=false -ldflags='-s -w' \
		-o "$out/bootstrap" "./functions/$name"

	# Lambda runs the file named bootstrap at the zip's root; it must keep its
	# executable bit, hence a Unix-attributed entry.
	python3 - "$out/bootstrap" "$dist/$name.zip" <<'EOF'
import sys, zipfile

src, dst = sys.argv[1], sys.argv[2]
entry = zipfile.ZipInfo("bootstrap", date_time=(1980, 1, 1, 0, 0, 0))
entry.create_system = 3  # Unix, so external_attr carries the mode
entry.external_attr = (0o100755 << 16)
entry.compress_type = zipfile.ZIP_DEFLATED
with open(src, "rb") as f, zipfile.ZipFile(dst, "w") as z:
    z.writestr(entry, f.read(), compresslevel=9)
EOF
	printf '%-8s %s  %s bytes (bootstrap %s bytes, %s)\n' "$name" "$dist/$name.zip" \
		"$(stat -c %s "$dist/$name.zip")" "$(stat -c %s "$out/bootstrap")" "linux/$goarch"
done
