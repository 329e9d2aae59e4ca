"""``GET /api/v1/asyncapi.json``: the AsyncAPI 3.0 document of the Socket.IO events.

Generated once per app from the models in ``chatcore/protocol.py`` (the ones the socket
namespace validates payloads with), with this server's configured limits filled in. Public,
like the OpenAPI document next to it.
"""

from __future__ import annotations

from aiohttp import web

from chatcore.asyncapi import build_asyncapi

from .. import jsonlib
from ..config import Config

ASYNCAPI_PATH = "/api/v1/asyncapi.json"


def add_event_routes(app: web.Application, config: Config) -> None:
    body = jsonlib.dumps(build_asyncapi(max_body_chars=config.limits.max_body_chars,
                                        history_page_max=config.limits.history_page_max))

    async def asyncapi(request: web.Request) -> web.Response:
        return web.Response(text=body, content_type="application/json")

    app.router.add_get(ASYNCAPI_PATH, asyncapi)
