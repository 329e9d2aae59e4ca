"""Serves the built web app (``web/dist``) at ``/`` with an ``index.html`` fallback."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from chatcore.openapi import REPO_WEB_DIST

from ..config import Config
from .middleware import APP_CSP

MISSING = """<!doctype html><meta charset="utf-8"><title>chat-server</title>
<p>The web app is not built. Run <code>scripts/serve</code> (it builds it), or
<code>cd web && npm ci && npm run build</code>. The API is at <a href="/api/docs">/api/docs</a>.</p>"""


def add_static(app: web.Application, config: Config) -> None:
    dist = config.web_dist or REPO_WEB_DIST

    async def index(request: web.Request) -> web.StreamResponse:
        page = dist / "index.html"
        if not page.exists():
            return web.Response(text=MISSING, content_type="text/html")
        # FileResponse sets its content type only when it is sent, after the middlewares ran,
        # so the page's policy is set here
        return web.FileResponse(page, headers={"Cache-Control": "no-cache", "Content-Security-Policy": APP_CSP})

    app.router.add_get("/", index)
    assets = dist / "assets"
    if assets.is_dir():
        app.router.add_static("/assets", assets, append_version=False)
    for name in ("favicon.svg", "favicon.ico", "manifest.webmanifest", "robots.txt"):
        if (dist / name).exists():
            app.router.add_get(f"/{name}", _file_handler(dist / name))


def _file_handler(path: Path) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(path)

    return handler
