#!/usr/bin/env bash
# Idempotent set-up of everything the project needs on a fresh machine.
#   scripts/bootstrap.sh serve   Python env + web app build (what `scripts/serve` needs)
#   scripts/bootstrap.sh test    the above + system packages, Kafka and FerretDB for the tests
#   scripts/bootstrap.sh python  the Python env only (VENV=/some/dir puts it elsewhere than .venv)
# Each step checks before it acts, so re-running is cheap.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
MODE=${1:-serve}
VENV=${VENV:-.venv}
log() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

python_env() {
  local py=${PYTHON:-python3}
  # a venv without pip is one whose creation was interrupted: make it again
  if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
    log "creating $VENV"
    "$py" -m venv --clear "$VENV"
  fi
  # requirements.lock pins every package and its file hashes (scripts/lock writes it from
  # pyproject.toml); pyproject.toml itself brings the project's entry points and package data
  local stamp
  stamp="$VENV/.installed-$(cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    log "installing Python dependencies from requirements.lock"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --require-hashes -r requirements.lock
    # the locked setuptools builds it: nothing unpinned is fetched for the build
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
    rm -f "$VENV"/.installed-* && touch "$stamp"
  fi
}

web_build() {
  [ -f web/package.json ] || return 0
  local stamp=web/node_modules/.installed-$(sha256sum web/package-lock.json 2>/dev/null | cut -c1-16)
  if [ ! -f "$stamp" ]; then
    log "installing web dependencies"
    # exactly package-lock.json (it lists every platform's optional packages, which npm ci needs);
    # --prefer-offline: what npm's cache holds is not fetched again
    (cd web && npm ci --no-audit --no-fund --prefer-offline --loglevel=error)
    touch "$stamp"
  fi
  local newest_src
  newest_src=$(find web/src web/scripts web/index.html web/package.json web/vite.config.* -newer web/dist/index.html 2>/dev/null | head -1 || true)
  if [ ! -f web/dist/index.html ] || [ -n "$newest_src" ]; then
    log "building the web app"
    (cd web && npm run build --silent)
  fi
}

# libmagic: upload types are detected from their bytes (python-magic)
apt_install libmagic1
python_env
[ "$MODE" = python ] && { log "ready ($MODE)"; exit 0; }
web_build
if [ "$MODE" = test ]; then
  apt_install chromium nginx-light docker-compose
  [ -x scripts/fetch-kafka.sh ] && scripts/fetch-kafka.sh
  [ -x scripts/fetch-ferretdb.sh ] && scripts/fetch-ferretdb.sh
  [ -x scripts/fetch-s3.sh ] && scripts/fetch-s3.sh
fi
log "ready ($MODE)"
