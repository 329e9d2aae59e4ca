"""HTTP middleware: one place that turns errors into ``{error: {code, message}}``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import asyncpg
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from redis.exceptions import RedisError

from chatcore.errors import ChatError, error_body

log = logging.getLogger(__name__)

_STATUS_CODES = {400: "invalid", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "invalid", 413: "too_large", 429: "rate_limited"}

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
APP_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self' ws: wss: http: https:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def json_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(error_body(code, message), status=status, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    try:
        return await handler(request)
    except ChatError as exc:
        headers = {}
        retry = exc.details.get("retry_after")
        if retry is not None:
            headers["Retry-After"] = str(max(1, int(float(retry) + 0.999)))
        return web.json_response({"error": exc.to_dict()}, status=exc.status, headers=headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _STATUS_CODES.get(exc.status, "invalid" if exc.status < 500 else "unavailable")
        message = exc.reason if exc.status != 413 else "request body too large"
        # a 405 names the methods the path has (HTTP requires it; aiohttp puts them on the exception)
        return json_error(exc.status, code, message, {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None)
    except (TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, RedisError, OSError) as exc:
        log.warning("%s %s: dependency unavailable: %s", request.method, request.path, type(exc).__name__)
        return json_error(503, "unavailable", "service temporarily unavailable", {"Retry-After": "1"})
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return json_error(500, "internal", "internal error")


@web.middleware
async def security_headers_middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    response = await handler(request)
    if not response.prepared:
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        if response.content_type == "text/html":
            response.headers.setdefault("Content-Security-Policy", APP_CSP)
    return response


def passing_websockets(middleware: Middleware) -> Middleware:
    """``middleware`` for every request but WebSocket upgrades, which go straight to the handler.

    A WebSocket request's handler runs as long as the socket lives; every middleware coroutine
    around it would stay suspended that long (a frame per connection, about 400 bytes each) only
    to pass on a 101 answer it does not change. The wrapper is a plain function returning the
    handler's own awaitable, so it leaves no frame behind."""

    @web.middleware
    def wrapped(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return handler(request)
        return middleware(request, handler)

    return wrapped
