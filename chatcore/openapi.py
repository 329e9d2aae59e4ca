"""The interactive docs page (Swagger UI) both HTTP services serve next to their OpenAPI document.

The documents themselves are generated from the route declarations: ``chatcore/api.py``.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

# the web app build (Swagger UI assets live in its api-docs/), in a source checkout
REPO_WEB_DIST = Path(__file__).resolve().parents[1] / "web" / "dist"

# Swagger UI comes from the web build (npm's swagger-ui-dist copied to web/dist/api-docs), served
# from this origin: the page runs no script from elsewhere (it shares the origin, and so the
# stored tokens, with the app)
DOCS_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} API</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css"></head>
<body data-spec="{spec}"><div id="ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/init.js"></script>
<noscript>The machine-readable document is at <a href="{spec}">{spec}</a>.</noscript>
</body></html>"""
DOCS_MISSING = """<!doctype html><meta charset="utf-8"><title>{title} API</title>
<p>The interactive page needs the built web assets (<code>scripts/serve</code> builds them, or
<code>cd web && npm ci && npm run build</code>). The machine-readable document is at
<a href="{spec}">{spec}</a>.</p>"""


def add_docs_page(app: web.Application, path: str, spec_url: str, title: str, web_dist: Path) -> None:
    """``path``: the docs page; ``path + "/assets/"``: Swagger UI from ``web_dist/api-docs``."""
    assets_dir = web_dist / "api-docs"
    assets = path + "/assets"

    async def page(request: web.Request) -> web.Response:
        built = (assets_dir / "swagger-ui-bundle.js").is_file()
        text = (DOCS_HTML if built else DOCS_MISSING).format(spec=spec_url, title=title, assets=assets)
        return web.Response(text=text, content_type="text/html",
                            headers={"Content-Security-Policy": DOCS_CSP, "Cache-Control": "no-cache"})

    app.router.add_get(path, page)
    if assets_dir.is_dir():
        app.router.add_static(assets, assets_dir, append_version=False)
