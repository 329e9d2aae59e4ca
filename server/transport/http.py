"""REST routes under ``/api/v1`` plus ``/healthz``, ``/readyz`` and ``/metrics``.

Each handler: parse JSON, authenticate, call one action, serialise. Every route is declared
once in ``ROUTES`` with its OpenAPI description.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from ipaddress import ip_address
from typing import Any

import orjson
from aiohttp import web

from chatcore.errors import Forbidden, Invalid, NotFound, TooLarge, Unauthorized
from chatcore.openapi import MESSAGE, ROOM, S_INT, S_STR, TOKENS, USER, ApiRoute, build_document, obj
from chatcore.tokens import bearer_matches
from chatcore.types import ROLES, STAFF_ROLES

from ..actions import audit as audit_actions
from ..actions import auth as auth_actions
from ..actions import messages as msg_actions
from ..actions import rooms as room_actions
from ..context import SERVICES, Services
from ..readiness import check_dependencies
from ..storage import rooms as rdb
from ..storage import users as udb

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ROUTES: list[tuple[ApiRoute, Handler]] = []


def api(method: str, path: str, summary: str, **spec: Any) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        ROUTES.append((ApiRoute(method, path, summary, **spec), fn))
        return fn

    return register


def svc_of(request: web.Request) -> Services:
    return request.app[SERVICES]


async def read_json(request: web.Request) -> dict[str, Any]:
    if request.content_length == 0 or not request.can_read_body:
        return {}
    limit = svc_of(request).config.limits.max_http_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(f"request body is larger than {limit} bytes")
    raw = await request.read()
    if len(raw) > limit:
        raise TooLarge(f"request body is larger than {limit} bytes")
    try:
        data = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        raise Invalid("body is not valid JSON") from None
    if not isinstance(data, dict):
        raise Invalid("body must be a JSON object")
    return data


def client_ip(request: web.Request) -> str:
    """The client's address for per-IP limits. Behind proxies listed in ``TRUSTED_PROXIES`` (nginx
    in front of the nodes), the right-most address in ``X-Forwarded-For`` that is not one of
    them: each trusted proxy appends the address it saw, and only those entries can be
    believed (a client can put anything on the left). Otherwise the peer address."""
    peer = request.remote or "unknown"
    trusted = svc_of(request).config.trusted_proxies
    hops = [peer] + [h.strip() for v in reversed(request.headers.getall("X-Forwarded-For", []))
                     for h in reversed(v.split(",")) if h.strip()]
    for i, hop in enumerate(hops):  # from the peer leftwards, while the hop is a trusted proxy
        try:
            ip = ip_address(hop)
        except ValueError:
            return peer  # garbage where an address should be: believe only the peer
        if not any(ip in n for n in trusted):
            return hop if i else peer
    return peer


async def current_user(request: web.Request, role: str = "user") -> udb.User:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        raise Unauthorized("missing bearer token")
    user = await auth_actions.authenticate(svc_of(request), header[7:].strip())
    if role == "staff" and user.role not in STAFF_ROLES:
        raise Forbidden("staff only")
    if role == "admin" and user.role != "admin":
        raise Forbidden("admin only")
    return user


def path_id(request: web.Request, name: str = "id") -> int:
    try:
        value = int(request.match_info[name])
    except ValueError:
        raise NotFound("not found") from None
    if value <= 0:
        raise NotFound("not found")
    return value


def query_int(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise Invalid(f"{name} must be an integer", field=name) from None


def ok(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


# --- auth -------------------------------------------------------------------------------------

@api("POST", "/api/v1/auth/register", "Create an account", auth=None, status=201,
     body=obj(["username", "password"], username=S_STR, password=S_STR, display_name=S_STR), response=TOKENS)
async def register(request: web.Request) -> web.Response:
    data = await read_json(request)
    user, tokens = await auth_actions.do_register(
        svc_of(request), data.get("username"), data.get("password"), data.get("display_name"), client_ip(request)
    )
    return ok({"user": user.public(), **tokens}, 201)


@api("POST", "/api/v1/auth/login", "Log in with username and password", auth=None,
     body=obj(["username", "password"], username=S_STR, password=S_STR), response=TOKENS)
async def login(request: web.Request) -> web.Response:
    data = await read_json(request)
    user, tokens = await auth_actions.do_login(svc_of(request), data.get("username"), data.get("password"), client_ip(request))
    return ok({"user": user.public(), **tokens})


@api("POST", "/api/v1/auth/refresh", "Rotate a refresh token", auth=None, body=obj(["refresh_token"], refresh_token=S_STR))
async def refresh(request: web.Request) -> web.Response:
    data = await read_json(request)
    return ok(await auth_actions.do_refresh(svc_of(request), data.get("refresh_token")))


@api("POST", "/api/v1/auth/logout", "Revoke this login's refresh tokens", status=204, body=obj([], refresh_token=S_STR))
async def logout(request: web.Request) -> web.Response:
    user = await current_user(request)
    data = await read_json(request)
    await auth_actions.do_logout(svc_of(request), user, data.get("refresh_token"))
    return web.Response(status=204)


@api("POST", "/api/v1/auth/logout-all", "Revoke every token of the user", status=204)
async def logout_all(request: web.Request) -> web.Response:
    user = await current_user(request)
    await auth_actions.do_logout_all(svc_of(request), user)
    return web.Response(status=204)


# --- users ------------------------------------------------------------------------------------

@api("GET", "/api/v1/users/me", "The current user", response=obj(["user"], user=USER))
async def me(request: web.Request) -> web.Response:
    user = await current_user(request)
    return ok({"user": user.public()})


@api("GET", "/api/v1/users", "Find users by name", query={"q": S_STR, "limit": S_INT})
async def find_users(request: web.Request) -> web.Response:
    await current_user(request)
    q = request.query.get("q", "")
    if len(q) > 64:
        raise Invalid("q is too long", field="q")
    limit = min(max(query_int(request, "limit") or 20, 1), 50)
    users = await udb.search_users(svc_of(request).pool, q, limit)
    return ok({"users": [u.public() for u in users]})


# --- rooms ------------------------------------------------------------------------------------

@api("GET", "/api/v1/rooms", "Rooms of the user and public rooms, with unread counts, by id; page with"
     f" after_id=next_cursor while has_more (limit {room_actions.ROOMS_PAGE_DEFAULT}, at most {room_actions.ROOMS_PAGE_MAX})",
     query={"after_id": S_INT, "limit": S_INT},
     response=obj(["rooms", "has_more", "next_cursor"], rooms={"type": "array", "items": ROOM},
                  has_more={"type": "boolean"}, next_cursor={"type": ["integer", "null"]}))
async def list_rooms(request: web.Request) -> web.Response:
    user = await current_user(request)
    return ok(await room_actions.do_list_rooms(svc_of(request), user, query_int(request, "after_id"),
                                               query_int(request, "limit")))


@api("POST", "/api/v1/rooms", "Create a public or private room", status=201,
     body=obj(["name", "kind"], name=S_STR, kind={"enum": ["public", "private"]}, topic=S_STR,
              members={"type": "array", "items": S_INT}), response=obj(["room"], room=ROOM))
async def create_room(request: web.Request) -> web.Response:
    user = await current_user(request)
    data = await read_json(request)
    svc = svc_of(request)
    room = await room_actions.do_create_room(svc, user, data.get("name"), data.get("kind"), data.get("topic"), data.get("members"))
    return ok({"room": await room_actions.room_view(svc, room, user)}, 201)


@api("GET", "/api/v1/rooms/{id}", "A room with its members", response=obj(["room"], room=ROOM))
async def get_room(request: web.Request) -> web.Response:
    user = await current_user(request)
    svc = svc_of(request)
    room = await room_actions.access_room_by_id(svc, user, path_id(request))
    view = await room_actions.room_view(svc, room, user)
    view["members"] = await rdb.members(svc.pool, room.id)
    return ok({"room": view})


@api("POST", "/api/v1/rooms/{id}/members", "Add a user to a room", status=204, body=obj(["user_id"], user_id=S_INT))
async def add_member(request: web.Request) -> web.Response:
    user = await current_user(request)
    data = await read_json(request)
    await room_actions.do_invite(svc_of(request), user, path_id(request), data.get("user_id"))
    return web.Response(status=204)


@api("GET", "/api/v1/rooms/{id}/messages", "History, newest page first; page with before_seq",
     query={"before_seq": S_INT, "limit": S_INT},
     response=obj(["messages", "has_more"], messages={"type": "array", "items": MESSAGE}, has_more={"type": "boolean"}))
async def room_messages(request: web.Request) -> web.Response:
    user = await current_user(request)
    result = await msg_actions.do_history(
        svc_of(request), user, path_id(request), query_int(request, "before_seq"), query_int(request, "limit")
    )
    return ok(result)


@api("POST", "/api/v1/dms", "Open (or find) the direct conversation with a user", body=obj(["user_id"], user_id=S_INT),
     response=obj(["room"], room=ROOM))
async def open_dm(request: web.Request) -> web.Response:
    user = await current_user(request)
    data = await read_json(request)
    svc = svc_of(request)
    room, created = await room_actions.do_open_dm(svc, user, data.get("user_id"))
    return ok({"room": await room_actions.room_view(svc, room, user)}, 201 if created else 200)


# --- admin ------------------------------------------------------------------------------------

@api("GET", "/api/v1/admin/users", "All users", auth="admin", query={"after_id": S_INT, "limit": S_INT})
async def admin_users(request: web.Request) -> web.Response:
    await current_user(request, "admin")
    limit = min(max(query_int(request, "limit") or 100, 1), 500)
    users = await udb.list_users(svc_of(request).pool, limit, query_int(request, "after_id") or 0)
    return ok({"users": [u.public() for u in users]})


@api("PATCH", "/api/v1/admin/users/{id}", "Change a user's role", auth="admin", body=obj(["role"], role={"enum": list(ROLES)}))
async def admin_set_role(request: web.Request) -> web.Response:
    admin = await current_user(request, "admin")
    data = await read_json(request)
    role = data.get("role")
    if role not in ROLES:
        raise Invalid("role must be user, staff or admin", field="role")
    target_id = path_id(request)
    if target_id == admin.id and role != "admin":
        raise Invalid("admins cannot demote themselves", field="role")
    user = await auth_actions.do_set_role(svc_of(request), target_id, role)
    if user is None:
        raise NotFound("user not found")
    return ok({"user": user.public()})


@api("PUT", "/api/v1/users/{id}/compliance", "Grant or revoke the compliance permission (audited)", auth="admin",
     body=obj(["enabled"], enabled={"type": "boolean"}), response=obj(["user"], user=USER))
async def set_compliance(request: web.Request) -> web.Response:
    admin = await current_user(request, "admin")
    data = await read_json(request)
    user = await audit_actions.do_set_compliance(svc_of(request), admin, path_id(request), data.get("enabled"))
    return ok({"user": {**user.public(), "compliance": user.compliance}})


@api("POST", "/api/v1/access/rooms", "The caller's standing and the rooms of room_ids they may read (chat-archive's check)",
     body=obj(["room_ids"], room_ids={"type": "array", "items": S_INT}),
     response=obj(["user", "rooms"], user={"type": "object"}, rooms={"type": "array", "items": {"type": "object"}}))
async def access_rooms(request: web.Request) -> web.Response:
    user = await current_user(request)
    data = await read_json(request)
    facts = await room_actions.room_access_facts(svc_of(request), user, data.get("room_ids"))
    return ok({"user": {"id": user.id, "role": user.role, "compliance": user.compliance},
               "rooms": [{"id": f.id, "kind": f.kind, "member": f.member} for f in facts]})


@api("GET", "/api/v1/archive/config", "Whether the archive is on, and where its API lives")
async def archive_config(request: web.Request) -> web.Response:
    await current_user(request)
    svc = svc_of(request)
    url = svc.config.archive_url
    # browsers reach chat-archive through the same origin (nginx routes /archive/) unless told otherwise
    return ok({"enabled": url is not None, "base_url": svc.config.archive_public_url or ""})


# --- operations -------------------------------------------------------------------------------

async def healthz(request: web.Request) -> web.Response:
    return ok({"status": "ok", "node": svc_of(request).node_id})


async def readyz(request: web.Request) -> web.Response:
    checks = await check_dependencies(svc_of(request))
    ready = all(v == "ok" for v in checks.values())
    return ok({"status": "ready" if ready else "not ready", "checks": checks}, 200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    svc = svc_of(request)
    token = svc.config.metrics_token
    if token is not None and not bearer_matches(request.headers.get("Authorization", ""), token):
        raise Unauthorized("metrics need the METRICS_TOKEN bearer token")
    return web.Response(body=svc.metrics.render(), content_type="text/plain", charset="utf-8")


def add_routes(app: web.Application, extra: list[tuple[ApiRoute, Handler]] | None = None) -> None:
    table = ROUTES + (extra or [])
    for spec, handler in table:
        app.router.add_route(spec.method, spec.path, handler)
    document = build_document([spec for spec, _ in table])

    async def openapi(request: web.Request) -> web.Response:
        return ok(document)

    app.router.add_get("/api/v1/openapi.json", openapi)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
