"""The OpenAPI 3.1 document, built from the route table, and the interactive docs page."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

# the web app build (Swagger UI assets live in its api-docs/), in a source checkout
REPO_WEB_DIST = Path(__file__).resolve().parents[1] / "web" / "dist"

S_STR: dict[str, Any] = {"type": "string"}
S_INT: dict[str, Any] = {"type": "integer"}
S_BOOL: dict[str, Any] = {"type": "boolean"}


def obj(required: list[str] | None = None, **props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required or [], "additionalProperties": False}


ERROR = obj(["error"], error=obj(["code", "message"], code=S_STR, message=S_STR, details={"type": "object"}))
USER = obj(["id", "username"], id=S_INT, username=S_STR, display_name=S_STR, role=S_STR, kind=S_STR)
MESSAGE = {
    "type": "object",
    "properties": {
        "id": S_INT, "room_id": S_INT, "seq": S_INT, "author_id": {"type": ["integer", "null"]},
        "author_kind": {"enum": ["user", "assistant", "contact", "system"]}, "author_name": {"type": ["string", "null"]},
        "body": S_STR, "client_id": {"type": ["string", "null"]}, "reply_to": {"type": ["integer", "null"]},
        "created_at": S_STR, "edited_at": {"type": ["string", "null"]}, "deleted_at": {"type": ["string", "null"]},
        "meta": {"type": "object"},
    },
}
ROOM = {"type": "object", "properties": {"id": S_INT, "slug": S_STR, "name": S_STR, "kind": S_STR, "topic": S_STR, "last_seq": S_INT}}
TOKENS = {"type": "object", "properties": {"user": USER, "access_token": S_STR, "refresh_token": S_STR}}


@dataclass(frozen=True)
class ApiRoute:
    method: str
    path: str
    summary: str
    auth: str | None = "user"  # None | user | staff | admin
    body: dict[str, Any] | None = None
    query: dict[str, dict[str, Any]] = field(default_factory=dict)
    status: int = 200
    response: dict[str, Any] | None = None


def build_document(routes: list[ApiRoute], title: str = "chat-server") -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for r in routes:
        op: dict[str, Any] = {"summary": r.summary, "responses": {}}
        params = [
            {"name": p, "in": "path", "required": True, "schema": S_INT}
            for p in path_params(r.path)
        ] + [{"name": k, "in": "query", "required": False, "schema": v} for k, v in r.query.items()]
        if params:
            op["parameters"] = params
        if r.body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": r.body}}}
        ok: dict[str, Any] = {"description": "success"}
        if r.response is not None:
            ok["content"] = {"application/json": {"schema": r.response}}
        op["responses"][str(r.status)] = ok
        op["responses"]["default"] = {"description": "error", "content": {"application/json": {"schema": ERROR}}}
        if r.auth is not None:
            op["security"] = [{"bearer": []}]
            if r.auth != "user":
                op["description"] = f"Requires role {r.auth} or higher."
        paths.setdefault(r.path, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1"},
        "paths": paths,
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    }


def path_params(path: str) -> list[str]:
    return [seg[1:-1] for seg in path.split("/") if seg.startswith("{") and seg.endswith("}")]


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
