"""Management routes: a room's owners manage it (``actions/room_admin.py``), users manage their
account and admins other accounts (``actions/account.py``), and the limits the web app shows.

Declared in the same table as ``http.py`` (``chatcore.api``); the room directory lives there,
before ``/rooms/{id}``, which would otherwise take its path.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from chatcore.api import Body, Call, Id, IdPath, Link, PathParams, Reply
from chatcore.schemas import RoomEnvelope, Session, TokenPair, UserEnvelope, Wire

from ..actions import account, room_admin
from ..actions import auth as auth_actions
from ..actions import rooms as room_actions
from .http import NO_NUL, Password, RoomName, Topic, actor_of, admin_view, client_ip, routes, svc_of, user_of
from .http import AdminUser as AdminUserRecord

# a display name someone chose: not empty, not only spaces (the account page has no "reset to username")
ChosenName = Annotated[str, Field(min_length=1, max_length=auth_actions.DISPLAY_NAME_MAX,
                                  pattern=r"^[^\x00]*\S[^\x00]*$", description="stored trimmed")]


class UpdateRoomBody(Body):
    name: RoomName | None = None
    topic: Topic | None = Field(default=None, description="empty: no topic")
    archived: bool | None = Field(default=None, description="true: read-only (sends refused with archived); "
                                                            "false: writable again")


class MemberPath(PathParams):
    id: Id
    user_id: Id


class MemberRoleBody(Body):
    role: Literal["owner", "member"]


class DisplayNameBody(Body):
    display_name: ChosenName


class AvatarBody(Body):
    upload_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
                           description="the id POST /api/v1/uploads answered")


class ChangePasswordBody(Body):
    current_password: str = Field(max_length=auth_actions.PASSWORD_MAX)
    new_password: Password


class FinishResetBody(Body):
    username: str = Field(max_length=256, pattern=NO_NUL)
    password: str = Field(max_length=auth_actions.PASSWORD_MAX, description="the password the reset was forced on")
    new_password: Password


class AdminUserEnvelope(Wire):
    user: AdminUserRecord


class ClientConfig(Wire):
    max_message_chars: int = Field(description="longer message bodies are refused (too_large)")
    max_upload_bytes: int


ROOM = {"GetRoom": Link("get_room", id="$response.body#/room/id")}


# --- rooms, by their owners --------------------------------------------------------------------

@routes.patch("/api/v1/rooms/{id}", "Rename a room, change its topic, archive or unarchive it (owners, admins)",
              body=UpdateRoomBody, responses={200: RoomEnvelope}, links={200: ROOM},
              description="Fields left out stay as they are. Each change is posted in the room as a system message "
                          "and sent as room:updated. Direct and WhatsApp rooms are not managed here (403).")
async def update_room(call: Call[UpdateRoomBody, None, IdPath]) -> Reply:
    svc, user, b = svc_of(call.request), user_of(call), call.body
    room = await room_admin.do_update_room(svc, user, call.path.id, name=b.name, topic=b.topic, archived=b.archived)
    return Reply({"room": await room_actions.room_view(svc, room, user)})


@routes.delete("/api/v1/rooms/{id}", "Delete a room with its members and messages (owners, admins)",
               responses={204: None}, description="Members get room:deleted.")
async def delete_room(call: Call[None, None, IdPath]) -> Reply:
    await room_admin.do_delete_room(svc_of(call.request), actor_of(call), call.path.id)
    return Reply(None, 204)


@routes.delete("/api/v1/rooms/{id}/members/{user_id}", "Remove a member (owners, admins)", params=MemberPath,
               responses={204: None},
               description="The removed user gets member:removed and stops receiving the room's events; the room gets "
                           "member:left. Owners are removed by admins only; to leave, use room:leave.")
async def remove_member(call: Call[None, None, MemberPath]) -> Reply:
    await room_admin.do_remove_member(svc_of(call.request), actor_of(call), call.path.id, call.path.user_id)
    return Reply(None, 204)


@routes.put("/api/v1/rooms/{id}/members/{user_id}/role", "Make a member an owner, or an owner a member (owners, admins)",
            params=MemberPath, body=MemberRoleBody, responses={204: None})
async def set_member_role(call: Call[MemberRoleBody, None, MemberPath]) -> Reply:
    p = call.path
    await room_admin.do_set_member_role(svc_of(call.request), user_of(call), p.id, p.user_id, call.body.role)
    return Reply(None, 204)


# --- the user's own account ------------------------------------------------------------------------

@routes.patch("/api/v1/users/me", "Change the display name", body=DisplayNameBody, responses={200: UserEnvelope})
async def update_me(call: Call[DisplayNameBody, None, None]) -> Reply:
    user = await account.do_set_display_name(svc_of(call.request), user_of(call), call.body.display_name)
    return Reply({"user": account.public_user(svc_of(call.request), user)})


@routes.put("/api/v1/users/me/avatar", "Set the user's picture to one of their image uploads", body=AvatarBody,
            responses={200: UserEnvelope},
            description="The upload must be the user's own (403 forbidden), known (400 invalid), not attached to a "
                        "message (409 conflict) and a PNG, JPEG, WebP or GIF image with a thumbnail (415 "
                        "unsupported_type). The previous picture's file is deleted. The user record's avatar_url is "
                        "then the picture's signed thumbnail URL.")
async def set_avatar(call: Call[AvatarBody, None, None]) -> Reply:
    svc = svc_of(call.request)
    user = await account.do_set_avatar(svc, user_of(call), call.body.upload_id)
    return Reply({"user": account.public_user(svc, user)})


@routes.delete("/api/v1/users/me/avatar", "Remove the user's picture (initials are shown again)",
               responses={200: UserEnvelope}, description="Its file is deleted. Removing no picture is not an error.")
async def remove_avatar(call: Call[None, None, None]) -> Reply:
    svc = svc_of(call.request)
    user = await account.do_remove_avatar(svc, user_of(call))
    return Reply({"user": account.public_user(svc, user)})


@routes.post("/api/v1/users/me/password", "Change the password; every other login of the user is logged out",
             body=ChangePasswordBody, responses={200: TokenPair},
             description="The current password is required (403 forbidden when wrong, under the login limits). "
                         "Other logins' tokens are revoked and their sockets end (session:ended logged_out); this "
                         "login stays and gets a fresh token pair.")
async def change_password(call: Call[ChangePasswordBody, None, None]) -> Reply:
    svc, b = svc_of(call.request), call.body
    header = call.request.headers.get("Authorization", "")
    _, claims = await auth_actions.authenticate_claims(svc, header[7:].strip())  # this login's family
    tokens = await account.do_change_password(svc, user_of(call), claims.family, b.current_password, b.new_password,
                                              client_ip(call.request))
    return Reply(tokens)


@routes.post("/api/v1/auth/password", "Set a new password after an admin forced a reset, and log in", auth=None,
             body=FinishResetBody, responses={200: Session}, links={200: {"Me": Link("me")}},
             description="Login answers 403 password_change_required for such an account; this takes the old "
                         "password and a new one and answers like login.")
async def finish_password_reset(call: Call[FinishResetBody, None, None]) -> Reply:
    b = call.body
    user, tokens = await account.do_finish_forced_reset(svc_of(call.request), b.username, b.password, b.new_password,
                                                        client_ip(call.request))
    return Reply({"user": account.public_user(svc_of(call.request), user), **tokens})


# --- admins: other accounts ----------------------------------------------------------------------

async def _admin_set(call: Call[None, None, IdPath], active: bool) -> Reply:
    user = await account.do_set_active(svc_of(call.request), actor_of(call), call.path.id, active)
    return Reply({"user": admin_view(svc_of(call.request), user)})


@routes.post("/api/v1/admin/users/{id}/deactivate", "Deactivate an account (admins)", auth="admin",
             responses={200: AdminUserEnvelope},
             description="Its sockets end on every node within REVOCATION_CHECK_S; login, refresh, connect and its "
                         "tokens answer 403 deactivated; its messages stay. Admins cannot deactivate themselves (403).")
async def deactivate_user(call: Call[None, None, IdPath]) -> Reply:
    return await _admin_set(call, False)


@routes.post("/api/v1/admin/users/{id}/reactivate", "Reactivate a deactivated account (admins)", auth="admin",
             responses={200: AdminUserEnvelope})
async def reactivate_user(call: Call[None, None, IdPath]) -> Reply:
    return await _admin_set(call, True)


@routes.post("/api/v1/admin/users/{id}/force-password-reset", "Make a user set a new password at next login (admins)",
             auth="admin", responses={200: AdminUserEnvelope},
             description="Every token of the user is revoked and its sockets end; login then answers 403 "
                         "password_change_required until POST /api/v1/auth/password.")
async def force_password_reset(call: Call[None, None, IdPath]) -> Reply:
    user = await account.do_force_password_reset(svc_of(call.request), actor_of(call), call.path.id)
    return Reply({"user": admin_view(svc_of(call.request), user)})


# --- what the web app shows ----------------------------------------------------------------------

@routes.get("/api/v1/config", "Limits the client shows before the server refuses (message length, upload size)",
            auth=None, responses={200: ClientConfig})
async def client_config(call: Call[None, None, None]) -> Reply:
    config = svc_of(call.request).config
    return Reply({"max_message_chars": config.limits.max_body_chars, "max_upload_bytes": config.files.max_upload_bytes})

