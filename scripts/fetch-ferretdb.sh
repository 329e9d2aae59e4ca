#!/usr/bin/env bash
# Idempotent: builds FerretDB 1.x (a MongoDB wire-protocol server) into .cache/bin.
# `go install pkg@version` asks the proxy for the module's version list (for deprecation
# notices), which the proxy refuses for this module; so the exact version is downloaded and
# built from a copy of its source (FerretDB reads its version from build/version/version.txt,
# which its release process generates). The Go module and build caches make later runs fast.
set -euo pipefail
cd "$(dirname "$0")/.."
version=v1.24.2
bin=$(pwd)/.cache/bin/ferretdb
[ -x "$bin" ] && "$bin" --version >/dev/null 2>&1 && exit 0
mkdir -p .cache/bin
echo "[fetch-ferretdb] building FerretDB $version" >&2
dir=$(go mod download -json "github.com/FerretDB/FerretDB@$version" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
src=$(mktemp -d)
trap 'chmod -R u+w "$src"; rm -rf "$src"' EXIT
cp -r "$dir/." "$src/"
chmod -R u+w "$src"
echo "$version" > "$src/build/version/version.txt"
(cd "$src" && GOFLAGS=-mod=mod go build -trimpath -o "$bin" ./cmd/ferretdb)
