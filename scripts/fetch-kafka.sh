#!/usr/bin/env bash
# Idempotent: copies the Kafka broker jars from Maven Central into .cache/kafka/libs.
# The Maven repository (~/.m2) caches downloads between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.cache/kafka/libs
stamp=$dest/.complete-$(sha256sum scripts/kafka/pom.xml | cut -c1-12)
[ -f "$stamp" ] && exit 0
rm -rf "$dest" && mkdir -p "$dest"
echo "[fetch-kafka] resolving the broker jars with Maven" >&2
mvn -q -B -f scripts/kafka/pom.xml dependency:copy-dependencies -DoutputDirectory="$(pwd)/$dest" -DincludeScope=runtime
touch "$stamp"
