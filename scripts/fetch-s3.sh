#!/usr/bin/env bash
# Idempotent: builds versitygw (an S3-compatible gateway; its posix backend keeps objects as
# plain files under a directory) into the test cache's bin/, for the S3 file-store tests.
# The Go module and build caches make later runs fast (a first build takes a few minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
version=v1.8.0
cache=${CHAT_TEST_CACHE:-$(pwd)/.cache}
bin=$cache/bin/versitygw
[ -x "$bin" ] && "$bin" --version >/dev/null 2>&1 && exit 0
mkdir -p "$cache/bin"
echo "[fetch-s3] building versitygw $version" >&2
GOBIN="$cache/bin" GOFLAGS=-mod=mod go install -trimpath "github.com/versity/versitygw/cmd/versitygw@$version"
