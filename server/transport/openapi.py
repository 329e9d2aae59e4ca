"""The OpenAPI 3.1 document, built from the route table, and the interactive docs page."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

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
            for p in _path_params(r.path)
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


def _path_params(path: str) -> list[str]:
    return [seg[1:-1] for seg in path.split("/") if seg.startswith("{") and seg.endswith("}")]


DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} API</title>
<link rel="stylesheet" href="https://unpkg.com/swagger-ui-dist@5/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="https://unpkg.com/swagger-ui-dist@5/swagger-ui-bundle.js" crossorigin></script>
<script>window.onload = () => SwaggerUIBundle({{url: "{spec}", dom_id: "#ui"}});</script>
<noscript>The machine-readable document is at <a href="{spec}">{spec}</a>.</noscript>
</body></html>"""


def docs_page(spec_url: str, title: str) -> web.Response:
    return web.Response(text=DOCS_HTML.format(spec=spec_url, title=title), content_type="text/html")
