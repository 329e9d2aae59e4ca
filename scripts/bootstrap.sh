#!/usr/bin/env bash
# Idempotent set-up of everything the project needs on a fresh machine.
#   scripts/bootstrap.sh serve   Python env + web app build (what `scripts/serve` needs)
#   scripts/bootstrap.sh test    the above + system packages, Kafka and FerretDB for the tests
# Each step checks before it acts, so re-running is cheap.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
MODE=${1:-serve}
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
  if [ ! -x .venv/bin/python ] || ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
    log "creating .venv"
    "$py" -m venv --clear .venv
  fi
  local stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
  if [ ! -f "$stamp" ]; then
    log "installing Python dependencies"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[dev,bench]'
    rm -f .venv/.installed-* && touch "$stamp"
  fi
}

web_build() {
  [ -f web/package.json ] || return 0
  local stamp=web/node_modules/.installed-$(sha256sum web/package-lock.json 2>/dev/null | cut -c1-16)
  if [ ! -f "$stamp" ]; then
    log "installing web dependencies"
    # npm ci refuses lock files without every platform's optional packages (rollup's), which
    # some npm configurations write; npm install follows the lock file just the same.
    (cd web && { npm ci --no-audit --no-fund --loglevel=error 2>/dev/null || npm install --no-audit --no-fund --loglevel=error; })
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
web_build
if [ "$MODE" = test ]; then
  apt_install chromium nginx-light docker-compose
  [ -x scripts/fetch-kafka.sh ] && scripts/fetch-kafka.sh
  [ -x scripts/fetch-ferretdb.sh ] && scripts/fetch-ferretdb.sh
  [ -x scripts/fetch-s3.sh ] && scripts/fetch-s3.sh
fi
log "ready ($MODE)"
