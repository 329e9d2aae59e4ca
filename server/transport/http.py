"""REST routes under ``/api/v1`` plus ``/healthz``, ``/readyz`` and ``/metrics``.

Each route is declared once with ``chatcore.api``: pydantic models for its body, query, path
and responses, which validate the request and generate the OpenAPI document
(``/api/v1/openapi.json``). Each handler: take the validated values, call one action,
serialise. Where an action enforces a rule on an input, the model states the same rule from the
action's constants and runs the action's check (``Checked``), so the document cannot promise
more than the server accepts.
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Annotated, Any, Literal

import orjson
from aiohttp import web
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt

from chatcore.api import Body, Call, Cursor, Id, IdPath, Link, QueryParams, Reply, RouteTable, mount
from chatcore.errors import Forbidden, Invalid, NotFound, TooLarge, Unauthorized
from chatcore.events import iso
from chatcore.schemas import (
    MessagesPage,
    RoomEnvelope,
    RoomRecord,
    RoomsPage,
    Session,
    TokenPair,
    UserEnvelope,
    UserRecord,
    UsersPage,
    Wire,
)
from chatcore.tokens import bearer_matches
from chatcore.types import DESK_MANAGER_ROLES, ROLES, STAFF_ROLES

from ..actions import account, room_admin
from ..actions import audit as audit_actions
from ..actions import auth as auth_actions
from ..actions import mentions as mention_actions
from ..actions import messages as msg_actions
from ..actions import rooms as room_actions
from ..config import Config
from ..context import SERVICES, Services
from ..readiness import check_dependencies, wa_sessions_health
from ..storage import users as udb

routes = RouteTable()

# text PostgreSQL stores cannot hold NUL; every stored string refuses it
NO_NUL = r"^[^\x00]*$"
USERS_PAGE_MAX, ADMIN_USERS_PAGE_MAX = 50, 500
assert set(room_actions.CREATABLE_KINDS) == {"public", "private"}
assert set(ROLES) == {"user", "staff", "supervisor", "admin"}


def svc_of(request: web.Request) -> Services:
    return request.app[SERVICES]


async def read_json(request: web.Request) -> dict[str, Any]:
    """A JSON object body, for routes not declared with a body model."""
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
    """The client's address for per-IP limits and the audit log (``client_address``)."""
    return client_address(request.remote, request.headers.getall("X-Forwarded-For", []),
                          svc_of(request).config.trusted_proxies)


def client_address(peer: str | None, forwarded_for: list[str],
                   trusted: tuple[IPv4Network | IPv6Network, ...]) -> str:
    """Behind proxies listed in ``TRUSTED_PROXIES`` (nginx in front of the nodes), the right-most
    address in ``X-Forwarded-For`` that is not one of them: each trusted proxy appends the
    address it saw, and only those entries can be believed (a client can put anything on the
    left). Otherwise the peer address."""
    peer = peer or "unknown"
    hops = [peer] + [h.strip() for v in reversed(forwarded_for) for h in reversed(v.split(",")) if h.strip()]
    for i, hop in enumerate(hops):  # from the peer leftwards, while the hop is a trusted proxy
        try:
            ip = ip_address(hop)
        except ValueError:
            return peer  # garbage where an address should be: believe only the peer
        if not any(ip in n for n in trusted):
            return hop if i else peer
    return peer


async def current_user(request: web.Request, role: str | None = "user") -> udb.User:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        raise Unauthorized("missing bearer token")
    user = await auth_actions.authenticate(svc_of(request), header[7:].strip())
    if role == "staff" and user.role not in STAFF_ROLES:
        raise Forbidden("staff only")
    if role == "supervisor" and user.role not in DESK_MANAGER_ROLES:
        raise Forbidden("supervisors and admins only")
    if role == "admin" and user.role != "admin":
        raise Forbidden("admin only")
    return user


def user_of(call: Call[Any, Any, Any]) -> udb.User:
    user = call.principal
    assert isinstance(user, udb.User), "route declared without auth"
    return user


def actor_of(call: Call[Any, Any, Any]) -> audit_actions.Actor:
    """The caller as the audit log records them: the user and their client address."""
    return audit_actions.Actor(user_of(call), client_ip(call.request))


def ok(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def checked(check: Any) -> BeforeValidator:
    """Run an action's own check first (its readable ``ChatError``); the declared constraints state the same rule."""
    return BeforeValidator(check)


# --- request models: the actions' rules, stated once ---------------------------------------------

Username = Annotated[str, Field(min_length=3, max_length=32, pattern=r"^(?![wW][aA]_)[A-Za-z0-9_.-]{3,32}$",
                                description="letters, digits, '_', '.', '-'; not starting with 'wa_' "
                                            f"(reserved); {', '.join(sorted(auth_actions.RESERVED_USERNAMES))} are taken"),
                     checked(auth_actions.check_username)]
Password = Annotated[str, Field(min_length=auth_actions.PASSWORD_MIN, max_length=auth_actions.PASSWORD_MAX),
                     checked(auth_actions.check_password)]
DisplayName = Annotated[str, Field(max_length=auth_actions.DISPLAY_NAME_MAX, pattern=r"^(?:[^\x00]*\S[^\x00]*)?$",
                                   description="empty: the username")]
RoomName = Annotated[str, Field(min_length=1, max_length=room_actions.ROOM_NAME_MAX, pattern=r"^[^\x00]*\S[^\x00]*$",
                                description="not only spaces; stored trimmed"),
                     checked(room_actions.check_room_name)]
Topic = Annotated[str, Field(max_length=room_actions.TOPIC_MAX, pattern=NO_NUL)]


class RegisterBody(Body):
    username: Username
    password: Password
    display_name: DisplayName | None = None


class LoginBody(Body):
    username: str = Field(max_length=256, pattern=NO_NUL)
    password: str = Field(max_length=auth_actions.PASSWORD_MAX)


class RefreshBody(Body):
    refresh_token: str = Field(min_length=1, max_length=256)


class LogoutBody(Body):
    refresh_token: str | None = Field(default=None, max_length=256, description="revokes this login; omitted: none")


class FindUsersQuery(QueryParams):
    q: str = Field(default="", max_length=64, pattern=NO_NUL)
    limit: int = Field(default=20, ge=1, le=USERS_PAGE_MAX)
    after: str = Field(default="", max_length=64, pattern=NO_NUL,
                       description="usernames after this one: the last of the previous page")
    staff: bool = Field(default=False, description="only active staff, supervisors and admins")


class RoomsQuery(QueryParams):
    after_id: Cursor | None = None
    limit: int | None = Field(default=None, ge=1, le=room_actions.ROOMS_PAGE_MAX,
                              description=f"default {room_actions.ROOMS_PAGE_DEFAULT}")


class CreateRoomBody(Body):
    name: RoomName
    kind: Literal["public", "private"] = Field(description="direct rooms: POST /api/v1/dms")
    topic: Topic | None = None
    members: list[Id] | None = Field(default=None, max_length=100, description="user ids to add")


class DirectoryQuery(QueryParams):
    q: str = Field(default="", max_length=80, pattern=NO_NUL, description="part of a name, handle (slug) or topic")
    cursor: Id | None = Field(default=None, description="next_cursor of the previous page")
    limit: int | None = Field(default=None, ge=1, le=room_admin.DIRECTORY_PAGE_MAX,
                              description=f"default {room_admin.DIRECTORY_PAGE_DEFAULT}")


class UserIdBody(Body):
    user_id: Id


def history_query(config: Config) -> type[BaseModel]:
    """The history page query; its largest page is configured (``HISTORY_PAGE_MAX``)."""
    page_max = config.limits.history_page_max

    class HistoryQuery(QueryParams):
        before_seq: Id | None = Field(default=None, description="the page ends below this seq")
        limit: int | None = Field(default=None, ge=1, le=page_max, description="default 50")

    return HistoryQuery


class RoomSettingsBody(Body):
    notify: Literal["all", "mentions", "none"] = Field(
        description="all: every message may notify; mentions: only mentions of the user; none: muted")


class RoomSettings(Wire):
    room_id: int
    notify: Literal["all", "mentions", "none"]
    mentions: int = Field(ge=0, description="the user's unread mentions in the room; capped")


class AdminUsersQuery(QueryParams):
    after_id: Cursor | None = None
    limit: int = Field(default=100, ge=1, le=ADMIN_USERS_PAGE_MAX)


class RoleBody(Body):
    role: Literal["user", "staff", "supervisor", "admin"]


class ComplianceBody(Body):
    enabled: bool


class AccessPurpose(BaseModel):
    """What chat-archive asks for (audited when the caller is staff)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: audit_actions.ArchiveAction
    params: dict[Annotated[str, Field(max_length=40)], Annotated[str, Field(max_length=200)] | StrictInt | None] = Field(
        default_factory=dict, max_length=12, description="the query's parameters, as the archive received them")
    peer: str = Field(default="", max_length=64, description="the address chat-archive's request came from")
    forwarded_for: list[Annotated[str, Field(max_length=512)]] = Field(
        default_factory=list, max_length=8, description="that request's X-Forwarded-For headers, believed only "
                                                        "from TRUSTED_PROXIES, as for chat-server's own requests")


class AccessRoomsBody(Body):
    room_ids: list[Id] = Field(max_length=room_actions.ACCESS_ROOMS_MAX)
    purpose: AccessPurpose | None = Field(
        default=None, description="chat-archive says what the request is for; staff callers' requests are audited")


# --- response models only this module sends ----------------------------------------------------------

class DirectoryRoom(RoomRecord):
    model_config = ConfigDict(extra="forbid", frozen=True)

    members_count: int


class DirectoryPage(Wire):
    rooms: list[DirectoryRoom]
    next_cursor: int | None = Field(description="pass as cursor for the next page; null on the last")


class AdminUser(UserRecord):
    deactivated_at: str | None = Field(description="set: the account is deactivated")
    must_change_password: bool = Field(description="an admin forced a password reset not yet done")


class AdminUsersPage(Wire):
    users: list[AdminUser]


class ComplianceUser(UserRecord):
    compliance: bool


class ComplianceEnvelope(Wire):
    user: ComplianceUser


class Standing(Wire):
    id: int
    role: Literal["user", "staff", "supervisor", "admin"]
    compliance: bool


class RoomFact(Wire):
    id: int
    kind: Literal["public", "private", "direct", "whatsapp"]
    member: bool


class AccessAnswer(Wire):
    user: Standing
    rooms: list[RoomFact]


class ArchiveConfig(Wire):
    enabled: bool
    base_url: str = Field(description="empty: the same origin, under /archive/")


ME = {"Me": Link("me", "the account just made")}
ROOM_LINKS = {"GetRoom": Link("get_room", id="$response.body#/room/id"),
              "RoomMessages": Link("room_messages", id="$response.body#/room/id"),
              "RoomSettings": Link("room_settings", id="$response.body#/room/id")}
# the management routes (http_manage.py) on a room just made, by its owner
CREATED_ROOM_LINKS = {**ROOM_LINKS,
                      "UpdateRoom": Link("update_room", id="$response.body#/room/id"),
                      "DeleteRoom": Link("delete_room", id="$response.body#/room/id"),
                      "SetMemberRole": Link("set_member_role", id="$response.body#/room/id",
                                            user_id="$response.body#/room/created_by"),
                      "RemoveMember": Link("remove_member", id="$response.body#/room/id",
                                           user_id="$response.body#/room/created_by")}


# --- auth ---------------------------------------------------------------------------------------------

@routes.post("/api/v1/auth/register", "Create an account", auth=None, body=RegisterBody, responses={201: Session},
             links={201: {**ME, "SetRole": Link("admin_set_role", id="$response.body#/user/id"),
                          "SetCompliance": Link("set_compliance", id="$response.body#/user/id"),
                          "OpenDm": Link("open_dm", request_body={"user_id": "$response.body#/user/id"}),
                          "Refresh": Link("refresh", request_body={"refresh_token": "$response.body#/refresh_token"})}})
async def register(call: Call[RegisterBody, None, None]) -> Reply:
    b = call.body
    user, tokens = await auth_actions.do_register(svc_of(call.request), b.username, b.password, b.display_name,
                                                  client_ip(call.request))
    return Reply({"user": account.public_user(svc_of(call.request), user), **tokens}, 201)


@routes.post("/api/v1/auth/login", "Log in with username and password", auth=None, body=LoginBody,
             responses={200: Session})
async def login(call: Call[LoginBody, None, None]) -> Reply:
    user, tokens = await auth_actions.do_login(svc_of(call.request), call.body.username, call.body.password,
                                               client_ip(call.request))
    return Reply({"user": account.public_user(svc_of(call.request), user), **tokens})


@routes.post("/api/v1/auth/refresh", "Rotate a refresh token", auth=None, body=RefreshBody, responses={200: TokenPair})
async def refresh(call: Call[RefreshBody, None, None]) -> Reply:
    return Reply(await auth_actions.do_refresh(svc_of(call.request), call.body.refresh_token))


@routes.post("/api/v1/auth/logout", "Revoke this login's refresh tokens", body=LogoutBody, responses={204: None})
async def logout(call: Call[LogoutBody, None, None]) -> Reply:
    await auth_actions.do_logout(svc_of(call.request), user_of(call), call.body.refresh_token)
    return Reply(None, 204)


@routes.post("/api/v1/auth/logout-all", "Revoke every token of the user", responses={204: None})
async def logout_all(call: Call[None, None, None]) -> Reply:
    await auth_actions.do_logout_all(svc_of(call.request), user_of(call))
    return Reply(None, 204)


# --- users --------------------------------------------------------------------------------------------

@routes.get("/api/v1/users/me", "The current user", responses={200: UserEnvelope})
async def me(call: Call[None, None, None]) -> Reply:
    return Reply({"user": account.public_user(svc_of(call.request), user_of(call))})


@routes.get("/api/v1/users", "Find users by name (username or display name, case-insensitive), by username; page with"
            " after=the last username while a page is full", query=FindUsersQuery,
            responses={200: UsersPage})
async def find_users(call: Call[None, FindUsersQuery, None]) -> Reply:
    q = call.query
    users = await udb.search_users(svc_of(call.request).pool, q.q, q.limit, after=q.after,
                                   roles=STAFF_ROLES if q.staff else None)
    return Reply({"users": [account.public_user(svc_of(call.request), u) for u in users]})


# --- rooms --------------------------------------------------------------------------------------------

@routes.get("/api/v1/rooms", "Rooms of the user and public rooms, with unread and mention counts and notification settings, by id; page with"
            " after_id=next_cursor while has_more", query=RoomsQuery, responses={200: RoomsPage})
async def list_rooms(call: Call[None, RoomsQuery, None]) -> Reply:
    q = call.query
    return Reply(await room_actions.do_list_rooms(svc_of(call.request), user_of(call), q.after_id, q.limit))


@routes.post("/api/v1/rooms", "Create a public or private room", body=CreateRoomBody, responses={201: RoomEnvelope},
             links={201: CREATED_ROOM_LINKS})
async def create_room(call: Call[CreateRoomBody, None, None]) -> Reply:
    svc, user, b = svc_of(call.request), user_of(call), call.body
    room = await room_actions.do_create_room(svc, user, b.name, b.kind, b.topic, b.members)
    return Reply({"room": await room_actions.room_view(svc, room, user)}, 201)


# before /rooms/{id}: routes match in the order they are added
@routes.get("/api/v1/rooms/directory", "Public rooms to join, newest first, with member counts; search by name,"
            " handle or topic with q; page with cursor=next_cursor", query=DirectoryQuery,
            responses={200: DirectoryPage})
async def room_directory(call: Call[None, DirectoryQuery, None]) -> Reply:
    q = call.query
    return Reply(await room_admin.do_directory(svc_of(call.request), q.q, q.cursor, q.limit))


@routes.get("/api/v1/rooms/{id}", "A room with its members", responses={200: RoomEnvelope})
async def get_room(call: Call[None, None, IdPath]) -> Reply:
    svc, user = svc_of(call.request), user_of(call)
    room = await room_actions.access_room_by_id(svc, user, call.path.id)
    view = await room_actions.room_view(svc, room, user)
    view["members"] = await room_actions.members_view(svc, room.id)
    return Reply({"room": view})


@routes.post("/api/v1/rooms/{id}/members", "Add a user to a room", body=UserIdBody, responses={204: None})
async def add_member(call: Call[UserIdBody, None, IdPath]) -> Reply:
    await room_actions.do_invite(svc_of(call.request), user_of(call), call.path.id, call.body.user_id)
    return Reply(None, 204)


@routes.put("/api/v1/rooms/{id}/settings", "Set the user's notification setting for a room they belong to",
            body=RoomSettingsBody, responses={200: RoomSettings},
            description="403 for a room the user can see but is not a member of.")
async def room_settings(call: Call[RoomSettingsBody, None, IdPath]) -> Reply:
    return Reply(await mention_actions.do_set_room_settings(svc_of(call.request), user_of(call), call.path.id,
                                                            call.body.notify))


@routes.get("/api/v1/rooms/{id}/messages", "History, newest page first; page with before_seq", query=history_query,
            responses={200: MessagesPage})
async def room_messages(call: Call[None, Any, IdPath]) -> Reply:
    q = call.query
    return Reply(await msg_actions.do_history(svc_of(call.request), user_of(call), call.path.id, q.before_seq, q.limit))


@routes.post("/api/v1/dms", "Open (or find) the direct conversation with a user", body=UserIdBody,
             responses={200: RoomEnvelope, 201: RoomEnvelope}, links={200: ROOM_LINKS, 201: ROOM_LINKS},
             description="201 when the conversation was made by this call, 200 when it existed.")
async def open_dm(call: Call[UserIdBody, None, None]) -> Reply:
    svc, user = svc_of(call.request), user_of(call)
    room, created = await room_actions.do_open_dm(svc, user, call.body.user_id)
    return Reply({"room": await room_actions.room_view(svc, room, user)}, 201 if created else 200)


# --- admin --------------------------------------------------------------------------------------------

@routes.get("/api/v1/admin/users", "All users, by id, with their account state; page with after_id", auth="admin",
            query=AdminUsersQuery, responses={200: AdminUsersPage})
async def admin_users(call: Call[None, AdminUsersQuery, None]) -> Reply:
    users = await udb.list_users(svc_of(call.request).pool, call.query.limit, call.query.after_id or 0)
    return Reply({"users": [admin_view(svc_of(call.request), u) for u in users]})


def admin_view(svc: Services, user: udb.User) -> dict[str, Any]:
    return {**account.public_user(svc, user), "deactivated_at": iso(user.deactivated_at),
            "must_change_password": user.must_change_password}


@routes.patch("/api/v1/admin/users/{id}", "Change a user's role", auth="admin", body=RoleBody,
              responses={200: UserEnvelope}, description="Admins cannot demote themselves (403).")
async def admin_set_role(call: Call[RoleBody, None, IdPath]) -> Reply:
    admin, role, target_id = user_of(call), call.body.role, call.path.id
    if target_id == admin.id and role != "admin":
        raise Forbidden("admins cannot demote themselves")
    user = await auth_actions.do_set_role(svc_of(call.request), actor_of(call), target_id, role)
    if user is None:
        raise NotFound("user not found")
    return Reply({"user": account.public_user(svc_of(call.request), user)})


@routes.put("/api/v1/users/{id}/compliance", "Grant or revoke the compliance permission (audited)", auth="admin",
            body=ComplianceBody, responses={200: ComplianceEnvelope})
async def set_compliance(call: Call[ComplianceBody, None, IdPath]) -> Reply:
    user = await audit_actions.do_set_compliance(svc_of(call.request), actor_of(call), call.path.id, call.body.enabled)
    return Reply({"user": {**account.public_user(svc_of(call.request), user), "compliance": user.compliance}})


@routes.post("/api/v1/access/rooms", "The caller's standing and the rooms of room_ids they may read (chat-archive's check)",
             body=AccessRoomsBody, responses={200: AccessAnswer})
async def access_rooms(call: Call[AccessRoomsBody, None, None]) -> Reply:
    user, purpose, svc = user_of(call), call.body.purpose, svc_of(call.request)
    audit_as = None
    if purpose is not None:
        ip = client_address(purpose.peer or call.request.remote, purpose.forwarded_for, svc.config.trusted_proxies)
        audit_as = room_actions.ArchivePurpose(purpose.action, dict(purpose.params), audit_actions.Actor(user, ip))
    facts = await room_actions.room_access_facts(svc, user, call.body.room_ids, audit_as)
    return Reply({"user": {"id": user.id, "role": user.role, "compliance": user.compliance},
                  "rooms": [{"id": f.id, "kind": f.kind, "member": f.member} for f in facts]})


@routes.get("/api/v1/archive/config", "Whether the archive is on, and where its API lives", responses={200: ArchiveConfig})
async def archive_config(call: Call[None, None, None]) -> Reply:
    config = svc_of(call.request).config
    # browsers reach chat-archive through the same origin (nginx routes /archive/) unless told otherwise
    return Reply({"enabled": config.archive_url is not None, "base_url": config.archive_public_url or ""})


# --- operations -------------------------------------------------------------------------------

async def healthz(request: web.Request) -> web.Response:
    return ok({"status": "ok", "node": svc_of(request).node_id})


async def readyz(request: web.Request) -> web.Response:
    svc = svc_of(request)
    checks = await check_dependencies(svc)
    ready = all(v == "ok" for v in checks.values())
    body: dict[str, Any] = {"status": "ready" if ready else "not ready", "checks": checks}
    if ready:
        # a linked WhatsApp session that is down degrades the node, never fails it: the rest serves
        sessions = await wa_sessions_health(svc)
        if sessions is not None:
            body["wa_sessions"] = sessions
            if sessions["down"]:
                body["status"] = "degraded"
    return ok(body, 200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    svc = svc_of(request)
    token = svc.config.metrics_token
    if token is not None and not bearer_matches(request.headers.get("Authorization", ""), token):
        raise Unauthorized("metrics need the METRICS_TOKEN bearer token")
    return web.Response(body=svc.metrics.render(), content_type="text/plain", charset="utf-8")


def add_routes(app: web.Application, config: Config, extra: RouteTable | None = None) -> None:
    table = routes.routes + (extra.routes if extra is not None else [])
    mount(app, table, current_user, settings=config, max_body_bytes=config.limits.max_http_body_bytes,
          title="chat-server", spec_path="/api/v1/openapi.json",
          description="The chat-server REST API. Bearer access tokens from register, login or refresh; errors are "
                      "ErrorBody with a stable code.")
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
