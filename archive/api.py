"""The query API, ``/archive/v1``, under the same access rule as live history.

Access: the caller's bearer token (issued by chat-server) is verified here first (signature,
expiry: a cheap rejection); then chat-server is asked for the caller's current standing and
the rooms involved (``archive.access``), and ``chatcore.access.can_read_room`` decides. A room
the caller may not read answers ``not_found``, as chat-server does (it does not reveal that
the room exists); user-scoped routes and user searches are restricted to the readable rooms.
chat-server's own service token (role ``service``) reads the history route only: chat-server
applied the rule to its user before asking.

Every list has a stable order and an opaque cursor: rooms by ``seq``; users and searches by
``(created_at, id)`` (searches may ask for newest first). Search is in a room or a user's messages (the caller's own when neither is named), so it runs on an index, or,
with ``scope=readable`` (chat-server's search continuing into the archive, with the user's own
token), in every room the caller may read: a scan of the time range, its rooms checked with
chat-server like a user search's. It uses an escaped, case-insensitive ``$regex``. Cursors are plain text a pattern describes: a room's
is the last ``seq``; a time-ordered list's is ``<microseconds since 1970 UTC>.<id>``.

Routes are declared with ``chatcore.api`` (models validate and generate the OpenAPI document).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from pydantic import AfterValidator, Field
from pymongo.errors import ConnectionFailure, PyMongoError

from chatcore.access import SERVICE_ROLE
from chatcore.api import Call, Id, PathParams, QueryParams, Reply, RouteTable, mount
from chatcore.errors import ChatError, Conflict, Forbidden, NotFound, Unauthorized, Unavailable
from chatcore.files import FileUrlSigner
from chatcore.openapi import REPO_WEB_DIST, add_docs_page
from chatcore.schemas import MessageRecordWire, Wire
from chatcore.tokens import AccessClaims, TokenVerifier, bearer_matches

from .access import ROOMS_PER_QUESTION, ChatServerAccess, Standing
from .ratelimit import QueryLimiter
from .storage import ArchiveStore, to_wire

log = logging.getLogger(__name__)

MAX_LIMIT = 200
EXPORT_PAGE = 500
# An export is many pages, each bounded by the store's time limit; these bound the whole. A
# reader that takes nothing for EXPORT_STALL_S, or an export still running after EXPORT_MAX_S,
# is cut (the response ends without its last chunk, so the client sees an incomplete transfer):
# the client resumes with ``after_seq`` set to the last seq it received.
EXPORT_STALL_S = 30.0
EXPORT_MAX_S = 600.0


class ArchiveMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.stored = Gauge("archive_messages_stored_total", "New messages stored by this process",
                            registry=self.registry)
        self.writes = Gauge("archive_writes_total", "Records applied by this process, by outcome (inserted, updated, "
                            "duplicate, stale, missing)", ["outcome"], registry=self.registry)
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
LIMITER = web.AppKey("query_limiter", QueryLimiter)  # per-caller limits on search and export
STATUS = web.AppKey("status", dict)
METRICS_TOKEN = web.AppKey("metrics_token", str)
STREAMING = "archive_streaming"  # request key: the response's headers are sent
SIGNER = web.AppKey("file_url_signer", FileUrlSigner)  # absent: attachment URLs are null  # empty: /metrics is open (keep it on the private network)


@web.middleware
async def errors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    try:
        return await handler(request)
    except ChatError as exc:
        retry = exc.details.get("retry_after")
        # as chat-server answers it: whole seconds, rounded up, at least 1
        headers = {"Retry-After": str(max(1, math.ceil(float(retry))))} if retry is not None else None
        return web.json_response({"error": exc.to_dict()}, status=exc.status, headers=headers)
    except PyMongoError as exc:
        # the store stopped a query at its time limit (ExecutionTimeout, code 50: maxTimeMS,
        # storage.py) or did not answer within chat-archive's MongoDB timeout
        # (ArchiveConfig.timeout_s: the store down): a retryable 503 like any other missing
        # dependency, not a 500; a stream already started (export) can only be cut
        if request.get(STREAMING) or not (exc.timeout or isinstance(exc, ConnectionFailure)):
            raise
        err = Unavailable(f"the archive store did not answer ({type(exc).__name__})")
        return web.json_response({"error": err.to_dict()}, status=err.status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {401: "unauthorized", 403: "forbidden", 404: "not_found", 413: "too_large"}.get(exc.status, "invalid")
        # a 405 names the methods the path has (HTTP requires it)
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return web.json_response({"error": {"code": code, "message": exc.reason}}, status=exc.status, headers=headers)


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


async def standing(request: web.Request, room_ids: list[int], action: str | None = None) -> Standing:
    """The caller's current standing from chat-server, and which of ``room_ids`` they may read.

    ``action`` (``archive.query``, ``.search``, ``.export``, ``.retention``) tells chat-server
    what the request is for, with its parameters and the caller's address: a staff caller's
    request is written to chat-server's audit log before the answer comes back."""
    header, claims = caller(request)
    if claims.role == SERVICE_ROLE:
        raise Forbidden("the service token reads room history only")
    purpose = None if action is None else {
        "action": action, "params": _audited_params(request), "peer": request.remote or "",
        "forwarded_for": request.headers.getall("X-Forwarded-For", [])[:8]}
    return await request.app[ACCESS].standing(header, [r for r in room_ids if r > 0], purpose)


def _audited_params(request: web.Request) -> dict[str, str | int | None]:
    """The request's path and query parameters, as the audit row keeps them (bounded)."""
    params: dict[str, str | int | None] = {"path": request.path[:200]}
    for key, value in list(request.query.items())[:11]:
        params[key[:40]] = value[:200]
    return params


async def readable_room(request: web.Request, room_id: int | None, action: str = "archive.query") -> int:
    """``room_id`` if the caller may read it; ``not_found`` otherwise, as for a room that does not exist."""
    caller(request)
    if room_id is None or room_id <= 0 or room_id not in (await standing(request, [room_id], action)).readable:
        raise NotFound("room not found")
    return room_id


async def readable_rooms(request: web.Request, query: dict[str, Any], action: str = "archive.query") -> list[int]:
    """The rooms of the messages ``query`` matches that the caller may read (one question to chat-server)."""
    caller(request)  # a bad token is refused before MongoDB is asked anything
    room_ids = await request.app[STORE].room_ids(query, ROOMS_PER_QUESTION + 1)
    return sorted((await standing(request, room_ids, action)).readable)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _instant(value: str) -> datetime:
    """An ISO 8601 / RFC 3339 time (``Z`` or an offset; none: UTC)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))


def _check_instant(value: str) -> str:
    _instant(value)
    return value


Instant = Annotated[str, Field(json_schema_extra={"format": "date-time"}), AfterValidator(_check_instant)]
SeqCursor = Annotated[str, Field(pattern=r"^[0-9]{1,18}$", description="next_cursor of the previous page")]
TimeCursor = Annotated[str, Field(pattern=r"^[0-9]{1,16}[.][0-9]{1,18}$", description="next_cursor of the previous page")]


class RoomPath(PathParams):
    room_id: Id


class UserPath(PathParams):
    user_id: Id


class Paged(QueryParams):
    from_: Instant | None = Field(default=None, alias="from", description="from this time (inclusive)")
    to: Instant | None = Field(default=None, description="before this time")
    limit: int = Field(default=50, ge=1, le=MAX_LIMIT)


class RoomPage(Paged):
    cursor: SeqCursor | None = None


class TimePage(Paged):
    cursor: TimeCursor | None = None


class SearchQuery(TimePage):
    q: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00]*$", description="literal text, any case")
    room_id: Id | None = Field(default=None, description="without room_id and user_id: see scope")
    user_id: Id | None = None
    scope: Literal["own", "readable"] = Field(
        default="own", description="without room_id and user_id: the caller's own messages (own), or every room "
                                   "the caller may read (readable: a scan of the time range, at most "
                                   f"{ROOMS_PER_QUESTION} rooms with hits)")
    order: Literal["asc", "desc"] = Field(default="asc", description="by (created_at, id); desc: newest first")


class ExportQuery(QueryParams):
    after_seq: Annotated[int, Field(ge=0, le=2**63 - 1)] = Field(
        default=0, description="only messages after this seq: resumes an export that was cut")


class HistoryQuery(QueryParams):
    before_seq: Annotated[int, Field(ge=1, le=2**63 - 1)] | None = None
    limit: int = Field(default=50, ge=1, le=MAX_LIMIT)


class Page(Wire):
    messages: list[MessageRecordWire]
    next_cursor: str | None = Field(description="pass as cursor for the next page; null on the last")


class HistoryPage(Wire):
    messages: list[MessageRecordWire] = Field(description="ascending by seq")
    has_more: bool


class Deleted(Wire):
    deleted: int


routes = RouteTable()


def _time_range(q: Paged) -> dict[str, Any]:
    rng: dict[str, Any] = {}
    if q.from_ is not None:
        rng["$gte"] = _instant(q.from_)
    if q.to is not None:
        rng["$lt"] = _instant(q.to)
    return {"created_at": rng} if rng else {}


def _time_cursor(doc: dict[str, Any]) -> str:
    at: datetime = doc["created_at"]
    at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return f"{(at - EPOCH) // timedelta(microseconds=1)}.{doc['_id']}"


def _ok(data: Any) -> web.Response:
    return web.Response(body=orjson.dumps(data), content_type="application/json")


async def _time_ordered(request: web.Request, q: TimePage, base: dict[str, Any], route: str,
                        direction: int = 1) -> Reply:
    """A page ordered by (created_at, id), ascending (``direction`` 1) or descending (-1), after the cursor."""
    query = {**base, **_time_range(q)}
    if q.cursor is not None:
        micros, last_id = q.cursor.split(".")
        at = EPOCH + timedelta(microseconds=int(micros))
        op = "$gt" if direction > 0 else "$lt"
        after = {"$or": [{"created_at": {op: at}}, {"created_at": at, "_id": {op: int(last_id)}}]}
        query = {"$and": [query, after]}
    docs = await request.app[STORE].find(query, [("created_at", direction), ("_id", direction)], q.limit + 1)
    request.app[METRICS].queries.labels(route).inc()
    page = docs[:q.limit]
    nxt = _time_cursor(page[-1]) if len(docs) > q.limit else None
    return Reply({"messages": [_wire(request, d) for d in page], "next_cursor": nxt})


@routes.get("/archive/v1/rooms/{room_id}/messages", "A room's archive by seq", params=RoomPath, query=RoomPage,
            responses={200: Page})
async def room_messages(call: Call[None, RoomPage, RoomPath]) -> Reply:
    request, q = call.request, call.query
    room_id = await readable_room(request, call.path.room_id)
    query: dict[str, Any] = {"room_id": room_id, **_time_range(q)}
    if q.cursor is not None:
        query["seq"] = {"$gt": int(q.cursor)}
    docs = await request.app[STORE].find(query, [("seq", 1)], q.limit + 1)
    request.app[METRICS].queries.labels("room").inc()
    page = docs[:q.limit]
    return Reply({"messages": [_wire(request, d) for d in page],
                  "next_cursor": str(page[-1]["seq"]) if len(docs) > q.limit else None})


@routes.get("/archive/v1/rooms/{room_id}/history", "The page before before_seq (chat-server's history)",
            params=RoomPath, query=HistoryQuery, responses={200: HistoryPage},
            description="chat-server's service token, or a user who may read the room.")
async def room_history(call: Call[None, HistoryQuery, RoomPath]) -> Reply:
    request, q, room_id = call.request, call.query, call.path.room_id
    if call.principal.role != SERVICE_ROLE:
        await readable_room(request, room_id)
    query: dict[str, Any] = {"room_id": room_id}
    if q.before_seq is not None:
        query["seq"] = {"$lt": q.before_seq}
    docs = await request.app[STORE].find(query, [("seq", -1)], q.limit + 1)
    request.app[METRICS].queries.labels("history").inc()
    return Reply({"messages": [_wire(request, d) for d in reversed(docs[:q.limit])], "has_more": len(docs) > q.limit})


@routes.get("/archive/v1/users/{user_id}/messages", "A user's messages by time", params=UserPath, query=TimePage,
            responses={200: Page})
async def user_messages(call: Call[None, TimePage, UserPath]) -> Reply:
    base: dict[str, Any] = {"author_id": call.path.user_id}
    return await _time_ordered(call.request, call.query, await _in_readable_rooms(call.request, call.query, base), "user")


async def _in_readable_rooms(request: web.Request, q: Paged, base: dict[str, Any],
                             action: str = "archive.query") -> dict[str, Any]:
    rooms = await readable_rooms(request, {**base, **_time_range(q)}, action)
    return {**base, "room_id": {"$in": rooms}}


@routes.get("/archive/v1/search", "Literal, case-insensitive text search in a room or a user's messages",
            query=SearchQuery, responses={200: Page},
            description="In a room (room_id), a user's messages (user_id), or else the caller's own messages "
                        "(scope=own) or every room they may read (scope=readable: chat-server's search asks so, "
                        "with the user's own token). Limited per caller (ARCHIVE_SEARCHES_PER_MINUTE): past it "
                        "429 rate_limited with Retry-After.")
async def search(call: Call[None, SearchQuery, None]) -> Reply:
    request, q = call.request, call.query
    await request.app[LIMITER].take("search", call.principal.user_id)
    base: dict[str, Any] = ArchiveStore.text_filter(q.q)
    if q.user_id is not None:
        base["author_id"] = q.user_id
    elif q.room_id is None and q.scope == "own":  # on an index: the caller's own messages
        base["author_id"] = call.principal.user_id
    if q.room_id is not None:
        base["room_id"] = await readable_room(request, q.room_id, "archive.search")
    else:
        base = await _in_readable_rooms(request, q, base, "archive.search")
    return await _time_ordered(request, q, base, "search", 1 if q.order == "asc" else -1)


@routes.get("/archive/v1/rooms/{room_id}/export", "A room's archive as JSON lines (one message record a line)",
            params=RoomPath, query=ExportQuery, responses={200: "application/x-ndjson"},
            description="Limited per caller (ARCHIVE_EXPORTS_PER_MINUTE): past it 429 rate_limited with Retry-After. "
                        f"Bounded in time: a reader that takes nothing for {EXPORT_STALL_S:.0f} s, or an export still "
                        f"running after {EXPORT_MAX_S:.0f} s, is cut (an incomplete transfer); resume it with after_seq "
                        "set to the last seq received.")
async def export_room(call: Call[None, ExportQuery, RoomPath]) -> web.StreamResponse:
    request = call.request
    await request.app[LIMITER].take("export", call.principal.user_id)
    room_id = await readable_room(request, call.path.room_id, "archive.export")
    resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson",
                                       "Content-Disposition": f'attachment; filename="room-{room_id}.jsonl"'})
    store = request.app[STORE]
    # the first page before the headers, so a store that does not answer is still a 503
    docs = await store.find({"room_id": room_id, "seq": {"$gt": call.query.after_seq}}, [("seq", 1)], EXPORT_PAGE)
    await resp.prepare(request)
    request[STREAMING] = True
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + EXPORT_MAX_S
    try:
        while docs:
            async with asyncio.timeout(min(EXPORT_STALL_S, max(0.0, deadline - loop.time()))):
                await resp.write(b"".join(orjson.dumps(_wire(request, d)) + b"\n" for d in docs))
            if loop.time() >= deadline:
                raise TimeoutError
            docs = await store.find({"room_id": room_id, "seq": {"$gt": docs[-1]["seq"]}}, [("seq", 1)], EXPORT_PAGE)
    except TimeoutError:
        log.warning("export of room %s cut after %.0f s (a reader that stalled, or past %.0f s in all)",
                    room_id, loop.time() - started, EXPORT_MAX_S)
        if request.transport is not None:
            request.transport.close()  # no last chunk: the client sees the transfer incomplete
        return resp
    await resp.write_eof()
    return resp


@routes.post("/archive/v1/retention/run", "Delete messages older than ARCHIVE_TTL_DAYS", auth="admin",
             responses={200: Deleted}, description="Without ARCHIVE_TTL_DAYS the archive keeps everything: 409.")
async def run_retention(call: Call[None, None, None]) -> Reply:
    request = call.request
    days = request.app[STATUS].get("ttl_days")
    if days is None:
        raise Conflict("ARCHIVE_TTL_DAYS is not set: the archive keeps everything")
    deleted = await request.app[STORE].delete_older_than(days)
    request.app[METRICS].retention_deleted.inc(deleted)
    return Reply({"deleted": deleted})


async def authenticate(request: web.Request, level: str) -> AccessClaims:
    """``user``: a valid token (signature, expiry); ``admin``: chat-server says the caller is an admin now."""
    claims = caller(request)[1]
    # the archive's one admin route is the retention run; chat-server audits it for admins only
    if level == "admin" and (await standing(request, [], "archive.retention")).principal.role != "admin":
        raise Forbidden("admin only")
    return claims


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


DESCRIPTION = ("Query API of the message archive. Bearer token of a user (the access token chat-server issues); a "
               "room is readable under chat-server's rule (members, public rooms, WhatsApp rooms for staff, private "
               "rooms and DMs for members or with the audited compliance permission); others answer 404. Times are "
               "ISO 8601.")


def add_routes(app: web.Application, web_dist: Path | None = None) -> None:
    mount(app, routes.routes, authenticate, title="chat-archive", description=DESCRIPTION,
          spec_path="/archive/v1/openapi.json")
    r = app.router
    r.add_get("/healthz", healthz)
    r.add_get("/readyz", readyz)
    r.add_get("/metrics", metrics)
    # Swagger UI, served from the web build like chat-server's /api/docs (same image, same files)
    add_docs_page(app, "/archive/docs", "/archive/v1/openapi.json", "chat-archive", web_dist or REPO_WEB_DIST)
