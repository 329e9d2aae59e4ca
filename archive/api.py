"""The query API, ``/archive/v1``, under the same access rule as live history.

Access: the caller's bearer token (issued by chat-server) is verified here first (signature,
expiry: a cheap rejection); then chat-server is asked for the caller's current standing and
the rooms involved (``archive.access``), and ``chatcore.access.can_read_room`` decides. A room
the caller may not read answers ``not_found``, as chat-server does (it does not reveal that
the room exists); user-scoped routes and user searches are restricted to the readable rooms.
chat-server's own service token (role ``service``) reads the history route only: chat-server
applied the rule to its user before asking.

Every list has a stable order and an opaque cursor: rooms by ``seq``; users and searches by
``(created_at, id)``. Search needs a room or a user (so it always runs on an index) and uses
an escaped, case-insensitive ``$regex``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from chatcore.access import SERVICE_ROLE
from chatcore.errors import ChatError, Forbidden, Invalid, NotFound, Unauthorized
from chatcore.events import parse_iso
from chatcore.files import FileUrlSigner
from chatcore.openapi import REPO_WEB_DIST, add_docs_page, path_params
from chatcore.tokens import AccessClaims, TokenVerifier, bearer_matches

from .access import ROOMS_PER_QUESTION, ChatServerAccess, Standing
from .storage import ArchiveStore, to_wire

MAX_LIMIT = 200
EXPORT_PAGE = 500


class ArchiveMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.stored = Gauge("archive_messages_stored_total", "Messages upserted by this process", registry=self.registry)
        self.dead = Gauge("archive_dead_letters_total", "Records sent to the dead-letter topic", registry=self.registry)
        self.stalls = Gauge("archive_consumer_stalls_total", "Times a wedged Kafka consumer was rebuilt",
                            registry=self.registry)
        self.queries = Counter("archive_queries_total", "API queries", ["route"], registry=self.registry)
        self.retention_deleted = Counter("archive_retention_deleted_total", "Messages deleted by retention",
                                         registry=self.registry)


STORE = web.AppKey("store", ArchiveStore)
ACCESS = web.AppKey("access", ChatServerAccess)
VERIFIER = web.AppKey("verifier", TokenVerifier)
METRICS = web.AppKey("metrics", ArchiveMetrics)
STATUS = web.AppKey("status", dict)
METRICS_TOKEN = web.AppKey("metrics_token", str)
SIGNER = web.AppKey("file_url_signer", FileUrlSigner)  # absent: attachment URLs are null  # empty: /metrics is open (keep it on the private network)


@web.middleware
async def errors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    try:
        return await handler(request)
    except ChatError as exc:
        return web.json_response({"error": exc.to_dict()}, status=exc.status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {401: "unauthorized", 403: "forbidden", 404: "not_found", 413: "too_large"}.get(exc.status, "invalid")
        return web.json_response({"error": {"code": code, "message": exc.reason}}, status=exc.status)


def _wire(request: web.Request, doc: dict[str, Any]) -> dict[str, Any]:
    """A stored message as served: attachments signed when chat-archive shares chat-server's
    file-URL secret (the caller passed the same access rule as live history to get here)."""
    return to_wire(doc, request.app.get(SIGNER))


def caller(request: web.Request) -> tuple[str, AccessClaims]:
    """The ``Authorization`` header and its verified claims (signature and expiry only)."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        raise Unauthorized("missing bearer token")
    return header, request.app[VERIFIER].verify(header[7:].strip())


async def standing(request: web.Request, room_ids: list[int]) -> Standing:
    """The caller's current standing from chat-server, and which of ``room_ids`` they may read."""
    header, claims = caller(request)
    if claims.role == SERVICE_ROLE:
        raise Forbidden("the service token reads room history only")
    return await request.app[ACCESS].standing(header, [r for r in room_ids if r > 0])


async def readable_room(request: web.Request, room_id: int | None) -> int:
    """``room_id`` if the caller may read it; ``not_found`` otherwise, as for a room that does not exist."""
    caller(request)
    if room_id is None or room_id <= 0 or room_id not in (await standing(request, [room_id])).readable:
        raise NotFound("room not found")
    return room_id


async def readable_rooms(request: web.Request, query: dict[str, Any]) -> list[int]:
    """The rooms of the messages ``query`` matches that the caller may read (one question to chat-server)."""
    caller(request)  # a bad token is refused before MongoDB is asked anything
    room_ids = await request.app[STORE].room_ids(query, ROOMS_PER_QUESTION + 1)
    return sorted((await standing(request, room_ids)).readable)


def _int(request: web.Request, name: str, default: int | None = None) -> int | None:
    raw = request.query.get(name) or request.match_info.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise Invalid(f"{name} must be an integer", field=name) from None


def _limit(request: web.Request) -> int:
    limit = _int(request, "limit", 50) or 50
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit must be 1-{MAX_LIMIT}", field="limit")
    return limit


def _time_range(request: web.Request) -> dict[str, Any]:
    rng: dict[str, Any] = {}
    for name, op in (("from", "$gte"), ("to", "$lt")):
        raw = request.query.get(name)
        if raw:
            try:
                rng[op] = parse_iso(raw)
            except ValueError:
                raise Invalid(f"{name} must be an ISO-8601 time", field=name) from None
    return {"created_at": rng} if rng else {}


def _encode_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def _decode_cursor(request: web.Request) -> Any:
    raw = request.query.get("cursor")
    if not raw:
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except ValueError:
        raise Invalid("bad cursor", field="cursor") from None


def _ok(data: Any) -> web.Response:
    return web.Response(body=orjson.dumps(data), content_type="application/json")


async def _time_ordered(request: web.Request, base: dict[str, Any], route: str) -> web.Response:
    """A page ordered by (created_at, id), after the cursor."""
    limit = _limit(request)
    query = {**base, **_time_range(request)}
    cursor = _decode_cursor(request)
    if cursor is not None:
        try:
            at, last_id = parse_iso(cursor[0]), int(cursor[1])
        except (TypeError, ValueError, IndexError):
            raise Invalid("bad cursor", field="cursor") from None
        after = {"$or": [{"created_at": {"$gt": at}}, {"created_at": at, "_id": {"$gt": last_id}}]}
        query = {"$and": [query, after]}
    docs = await request.app[STORE].find(query, [("created_at", 1), ("_id", 1)], limit + 1)
    request.app[METRICS].queries.labels(route).inc()
    page = docs[:limit]
    nxt = _encode_cursor([page[-1]["created_at"].isoformat(), page[-1]["_id"]]) if len(docs) > limit else None
    return _ok({"messages": [_wire(request, d) for d in page], "next_cursor": nxt})


async def room_messages(request: web.Request) -> web.Response:
    room_id, limit = _int(request, "room_id"), _limit(request)
    await readable_room(request, room_id)
    cursor = _decode_cursor(request)
    query: dict[str, Any] = {"room_id": room_id, **_time_range(request)}
    if cursor is not None:
        if not isinstance(cursor, int):
            raise Invalid("bad cursor", field="cursor")
        query["seq"] = {"$gt": cursor}
    docs = await request.app[STORE].find(query, [("seq", 1)], limit + 1)
    request.app[METRICS].queries.labels("room").inc()
    page = docs[:limit]
    return _ok({"messages": [_wire(request, d) for d in page],
                "next_cursor": _encode_cursor(page[-1]["seq"]) if len(docs) > limit else None})


async def room_history(request: web.Request) -> web.Response:
    """chat-server's history continuation: the ``limit`` messages before ``before_seq``, ascending.

    chat-server's service token, or a user who may read the room."""
    room_id, limit = _int(request, "room_id"), _limit(request)
    if caller(request)[1].role != SERVICE_ROLE:
        await readable_room(request, room_id)
    before = _int(request, "before_seq")
    query: dict[str, Any] = {"room_id": room_id}
    if before is not None:
        query["seq"] = {"$lt": before}
    docs = await request.app[STORE].find(query, [("seq", -1)], limit + 1)
    request.app[METRICS].queries.labels("history").inc()
    return _ok({"messages": [_wire(request, d) for d in reversed(docs[:limit])], "has_more": len(docs) > limit})


async def user_messages(request: web.Request) -> web.Response:
    _limit(request)
    base: dict[str, Any] = {"author_id": _int(request, "user_id")}
    return await _time_ordered(request, await _in_readable_rooms(request, base), "user")


async def _in_readable_rooms(request: web.Request, base: dict[str, Any]) -> dict[str, Any]:
    rooms = await readable_rooms(request, {**base, **_time_range(request)})
    return {**base, "room_id": {"$in": rooms}}


async def search(request: web.Request) -> web.Response:
    caller(request)
    q = request.query.get("q", "")
    if not 1 <= len(q) <= 200:
        raise Invalid("q must be 1-200 characters", field="q")
    room_id, user_id = _int(request, "room_id"), _int(request, "user_id")
    if room_id is None and user_id is None:
        raise Invalid("search needs room_id or user_id", field="room_id")
    _limit(request)
    base: dict[str, Any] = ArchiveStore.text_filter(q)
    if user_id is not None:
        base["author_id"] = user_id
    if room_id is not None:
        base["room_id"] = await readable_room(request, room_id)
    else:
        base = await _in_readable_rooms(request, base)
    return await _time_ordered(request, base, "search")


async def export_room(request: web.Request) -> web.StreamResponse:
    room_id = await readable_room(request, _int(request, "room_id"))
    resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson",
                                       "Content-Disposition": f'attachment; filename="room-{room_id}.jsonl"'})
    await resp.prepare(request)
    last = 0
    while True:
        docs = await request.app[STORE].find({"room_id": room_id, "seq": {"$gt": last}}, [("seq", 1)], EXPORT_PAGE)
        if not docs:
            break
        await resp.write(b"".join(orjson.dumps(_wire(request, d)) + b"\n" for d in docs))
        last = docs[-1]["seq"]
    await resp.write_eof()
    return resp


async def run_retention(request: web.Request) -> web.Response:
    if (await standing(request, [])).principal.role != "admin":
        raise Forbidden("admin only")
    days = request.app[STATUS].get("ttl_days")
    if days is None:
        raise Invalid("ARCHIVE_TTL_DAYS is not set: the archive keeps everything")
    deleted = await request.app[STORE].delete_older_than(days)
    request.app[METRICS].retention_deleted.inc(deleted)
    return _ok({"deleted": deleted})


async def healthz(request: web.Request) -> web.Response:
    return _ok({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    checks = {}
    try:
        await request.app[STORE].ping()
        checks["mongo"] = "ok"
    except Exception as exc:
        checks["mongo"] = f"down: {type(exc).__name__}"
    checks["consumer"] = "ok" if request.app[STATUS].get("consumer_alive") else "down"
    ready = all(v == "ok" for v in checks.values())
    return web.json_response({"status": "ready" if ready else "not ready", "checks": checks}, status=200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    token = request.app.get(METRICS_TOKEN)
    if token and not bearer_matches(request.headers.get("Authorization", ""), token):
        raise Unauthorized("metrics need the METRICS_TOKEN bearer token")
    return web.Response(body=generate_latest(request.app[METRICS].registry), content_type="text/plain")


def _operation(summary: str, query: str = "", description: str = "") -> dict[str, Any]:
    """An operation whose ``query`` names its query parameters ("name" required, "name?" optional)."""
    params = [{"name": q.rstrip("?"), "in": "query", "required": not q.endswith("?"), "schema": {"type": "string"}}
              for q in query.split()]
    op: dict[str, Any] = {"summary": summary, "parameters": params,
                          "responses": {"200": {"description": "success"}, "default": {"description": "error"}}}
    if description:
        op["description"] = description
    return op


_PAGED = "from? to? cursor? limit?"
OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "chat-archive", "version": "1",
             "description": "Query API of the message archive. Bearer token of a user (the access token "
                            "chat-server issues); a room is readable under chat-server's rule (members, public "
                            "rooms, WhatsApp rooms for staff, private rooms and DMs for members or with the "
                            "audited compliance permission); others answer 404. Times are ISO 8601."},
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    "security": [{"bearer": []}],
    "paths": {
        "/archive/v1/rooms/{room_id}/messages": {"get": _operation("A room's archive by seq", _PAGED)},
        "/archive/v1/rooms/{room_id}/history": {"get": _operation("The page before before_seq (chat-server's history)",
                                                                  "before_seq? limit?")},
        "/archive/v1/users/{user_id}/messages": {"get": _operation("A user's messages by time", _PAGED)},
        "/archive/v1/search": {"get": _operation("Literal, case-insensitive text search in a room or a user's messages",
                                                 "q room_id? user_id? " + _PAGED,
                                                 "One of room_id and user_id is required.")},
        "/archive/v1/rooms/{room_id}/export": {"get": _operation("A room's archive as JSON lines")},
        "/archive/v1/retention/run": {"post": _operation("Delete messages older than ARCHIVE_TTL_DAYS", "",
                                                         "Admin only.")},
    },
}
for _path, _ops in OPENAPI["paths"].items():  # every id in a path is an integer
    for _op in _ops.values():
        _op["parameters"] = [{"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}
                             for name in path_params(_path)] + _op["parameters"]


def add_routes(app: web.Application, web_dist: Path | None = None) -> None:
    r = app.router
    r.add_get("/archive/v1/rooms/{room_id}/messages", room_messages)
    r.add_get("/archive/v1/rooms/{room_id}/history", room_history)
    r.add_get("/archive/v1/users/{user_id}/messages", user_messages)
    r.add_get("/archive/v1/search", search)
    r.add_get("/archive/v1/rooms/{room_id}/export", export_room)
    r.add_post("/archive/v1/retention/run", run_retention)
    r.add_get("/archive/v1/openapi.json", openapi)
    r.add_get("/healthz", healthz)
    r.add_get("/readyz", readyz)
    r.add_get("/metrics", metrics)
    # Swagger UI, served from the web build like chat-server's /api/docs (same image, same files)
    add_docs_page(app, "/archive/docs", "/archive/v1/openapi.json", "chat-archive", web_dist or REPO_WEB_DIST)


async def openapi(request: web.Request) -> web.Response:
    return _ok(OPENAPI)



