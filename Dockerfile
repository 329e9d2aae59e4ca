# One image for chat-server and chat-archive.
# Stage 1 builds the web app; stage 2 installs the Python package; the runtime runs as non-root.
FROM node:20-bookworm-slim AS web
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund || npm install --no-audit --no-fund
COPY web/ ./
RUN npm run build

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY server ./server
COPY ai ./ai
COPY archive ./archive
COPY whatsapp_bridge ./whatsapp_bridge
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim-bookworm
RUN useradd --create-home --uid 10001 chat
COPY --from=build /install /usr/local
COPY --from=web /src/web/dist /app/web/dist
ENV WEB_DIST=/app/web/dist BUILD_WEB=false CHAT_HOST=0.0.0.0 CHAT_DATA_DIR=/data PYTHONUNBUFFERED=1
RUN mkdir -p /data && chown chat:chat /data
USER chat
WORKDIR /app
EXPOSE 8080 8090
HEALTHCHECK --interval=10s --timeout=3s --retries=5 CMD python -c "import urllib.request,os; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('HEALTH_PORT', os.environ.get('CHAT_PORT', '8080')), timeout=2)"
CMD ["chat-server"]
