# One image for both processes: chat-server (the default command) and chat-archive
# (docker-compose.yml runs both from it).
#   web     builds the browser app: web/ -> web/dist
#   build   installs requirements-runtime.lock (every dependency pinned with its file hashes, the
#           versions the tests ran: scripts/lock), then the Python package (server, ai, archive,
#           whatsapp_bridge) without resolving anything, into /install
#   final   Python runtime + /install + web/dist; a non-root user; no secret anywhere: keys and
#           passwords arrive at run time (mounted files, environment)
FROM node:22-bookworm-slim AS web
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
# exactly package-lock.json (which lists every platform's optional packages)
RUN npm ci --no-audit --no-fund
COPY web/ ./
RUN npm run build

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY requirements-runtime.lock ./
RUN pip install --prefix=/install --require-hashes -r requirements-runtime.lock
COPY pyproject.toml README.md ./
COPY chatcore ./chatcore
COPY server ./server
COPY ai ./ai
COPY archive ./archive
COPY whatsapp_bridge ./whatsapp_bridge
RUN pip install --prefix=/install --no-deps .

FROM python:3.11-slim-bookworm
# libmagic1: upload types are detected from their bytes (python-magic)
RUN apt-get update && apt-get install -y --no-install-recommends libmagic1 && rm -rf /var/lib/apt/lists/*
RUN useradd --system --create-home --uid 10001 --user-group chat \
    && mkdir -p /data && chown chat:chat /data
COPY --from=build /install /usr/local
COPY --from=web /src/web/dist /app/web/dist
# the web app is prebuilt here; /data only matters for the embedded PostgreSQL/Redis (no URLs set)
ENV WEB_DIST=/app/web/dist BUILD_WEB=false CHAT_HOST=0.0.0.0 CHAT_DATA_DIR=/data \
    PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
USER chat
WORKDIR /app
EXPOSE 8080 8090
# liveness of whichever process runs: chat-server on CHAT_PORT, chat-archive sets HEALTH_PORT
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=5 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('HEALTH_PORT', os.environ.get('CHAT_PORT', '8080')), timeout=2)"
# SIGTERM: chat-server drains its sockets (clients reconnect to another node) and exits
STOPSIGNAL SIGTERM
CMD ["chat-server"]
