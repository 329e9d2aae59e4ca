"""Account management: a user's own display name and password; admins deactivate, reactivate
and force a password reset.

Password change (``do_change_password``): the current password is required; every OTHER login
of the user (refresh family) is revoked in the same transaction as the new hash, and their
sockets end (this node at once, the others at their next revocation check). The login that
asked keeps its family, so its access token and socket keep working, and gets a fresh token
pair in that family.

Deactivation (``do_set_active``): ``users.deactivated_at`` is set, the token version bumped
(every access token refused; every node ends the user's sockets within
``REVOCATION_CHECK_S``) and every refresh token revoked. Login, refresh, connect and every
token use then answer ``deactivated`` (``auth.check_active``); messages stay. Reactivation
clears the column; the user logs in again.

Forced reset (``do_force_password_reset``): ``users.must_change_password`` is set and every
token revoked like a deactivation. Login with the old password then answers
``password_change_required`` without tokens; ``POST /api/v1/auth/password {username,
password, new_password}`` (``do_finish_forced_reset``) sets the new one and answers a normal
session. The flag holds until then, so no half-authorised session exists meanwhile.

Admin changes are recorded in ``audit_log`` in the same transaction.

Pictures (``do_set_avatar``, ``do_remove_avatar``): the user's own upload, not attached to a
message, of a raster type that has a thumbnail (``AVATAR_TYPES``), becomes their picture in one
transaction that locks the upload's row (so the orphan sweep cannot take it meanwhile) and
trashes the previous picture's file (the sweep then deletes its bytes). Every user record sent
to clients carries ``avatar_url``, the signed URL of the picture's thumbnail
(``public_user``, ``avatar_url``), or null.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from chatcore.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized, UnsupportedType

from ..files.service import files_of
from ..storage import files as fdb
from ..storage import users as db
from . import audit
from .auth import (
    PASSWORD_MAX,
    check_active,
    check_display_name,
    check_password,
    close_sockets,
    issue_tokens,
)

if TYPE_CHECKING:
    from ..context import Services

DEACTIVATE, REACTIVATE, FORCE_RESET = "user.deactivate", "user.reactivate", "user.force_password_reset"
# the raster types content.py thumbnails that browsers show everywhere (BMP is thumbnailed but not offered)
AVATAR_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif"})
AVATAR_NAME = "avatar.webp"  # the name in the URL path is cosmetic; thumbnails are WebP


def avatar_url(svc: Services, file_id: str | None) -> str | None:
    """The signed thumbnail URL of a picture (None: no picture). Expiries are rounded
    (chatcore/files.py), so the same picture signed within a minute gives the same URL."""
    return None if file_id is None else files_of(svc).signer.url(file_id, AVATAR_NAME, "thumb")


def public_user(svc: Services, user: db.User) -> dict[str, Any]:
    """``user``'s record for clients, with its picture's URL signed."""
    return user.public(avatar_url(svc, user.avatar_file_id))


async def do_set_avatar(svc: Services, user: db.User, upload_id: Any) -> db.User:
    """Make the user's own unattached image upload their picture; the previous one is trashed."""
    if not isinstance(upload_id, str) or not upload_id:
        raise Invalid("upload_id is required", field="upload_id")
    async with svc.pool.acquire() as conn, conn.transaction():
        row = await fdb.lock_upload(conn, upload_id)
        if row is None:
            raise Invalid("unknown upload; upload the picture first (POST /api/v1/uploads)", field="upload_id")
        if row.owner_id != user.id:
            raise Forbidden("only your own uploads can be your picture", field="upload_id")
        if row.message_id is not None:
            raise Conflict("this upload is attached to a message; upload the picture again", field="upload_id")
        if row.mime not in AVATAR_TYPES or row.width is None:
            raise UnsupportedType("a picture must be a PNG, JPEG, WebP or GIF image", mime=row.mime)
        updated, old = await db.set_avatar(conn, user.id, row.id)
        if old is not None and old != row.id:
            await fdb.trash_avatar(conn, old)
    return updated


async def do_remove_avatar(svc: Services, user: db.User) -> db.User:
    """No picture any more (initials); the file is trashed. Idempotent."""
    async with svc.pool.acquire() as conn, conn.transaction():
        updated, old = await db.set_avatar(conn, user.id, None)
        if old is not None:
            await fdb.trash_avatar(conn, old)
    return updated


async def do_set_display_name(svc: Services, user: db.User, display_name: Any) -> db.User:
    if display_name is None or display_name == "":
        raise Invalid("display_name must not be empty", field="display_name")
    name = check_display_name(display_name, user.username)
    updated = await db.set_display_name(svc.pool, user.id, name)
    if updated is None:
        raise NotFound("user not found")
    return updated


async def _verify(svc: Services, user: db.User, password: Any, ip: str) -> None:
    """The account's current password, under the login limits (this is a password guess too)."""
    if not isinstance(password, str) or len(password) > PASSWORD_MAX:
        raise Invalid("password is required", field="password")
    await svc.limiter.hit("login-ip", ip, svc.config.limits.login_per_min, 60)
    await svc.limiter.hit("login-user", user.username.lower(), svc.config.limits.login_per_min, 60)
    if user.password_hash is None or not await svc.passwords.verify(user.password_hash, password):
        raise Forbidden("the current password is wrong", field="current_password")


async def do_change_password(svc: Services, user: db.User, family: str | None, current: Any, new: Any,
                             ip: str) -> dict[str, str]:
    """Set a new password; log out every other login of the user. Returns fresh tokens for the
    login ``family`` (the caller's), which stays open."""
    new = check_password(new)
    fresh = await db.get_user(svc.pool, user.id)  # the hash as it is now, not as the socket saw it
    if fresh is None:
        raise NotFound("user not found")
    await _verify(svc, fresh, current, ip)
    if new == current:
        raise Invalid("the new password must differ from the current one", field="new_password")
    keep = uuid.UUID(family) if family is not None else None
    pw_hash = await svc.passwords.hash(new)
    async with svc.pool.acquire() as conn, conn.transaction():
        await db.set_password(conn, fresh.id, pw_hash)
        others = await db.other_families(conn, fresh.id, keep)
        for fam in others:
            await db.revoke_family(conn, fam, fresh.id, "logged_out")
    for fam in others:
        await close_sockets(svc, fresh.id, "logged_out", family=str(fam))
    return await issue_tokens(svc, fresh, keep)


async def do_finish_forced_reset(svc: Services, username: Any, password: Any, new: Any,
                                 ip: str) -> tuple[db.User, dict[str, str]]:
    """After an admin's forced reset: the old password and a new one -> a normal session."""
    if not isinstance(username, str):
        raise Invalid("username is required", field="username")
    new = check_password(new)
    user = await db.get_user_by_username(svc.pool, username)
    if user is None or user.kind != "human":
        # the same limits and answer as a wrong password: no probing for accounts
        await svc.limiter.hit("login-ip", ip, svc.config.limits.login_per_min, 60)
        raise Unauthorized("wrong username or password")
    try:
        await _verify(svc, user, password, ip)
    except Forbidden:
        raise Unauthorized("wrong username or password") from None
    check_active(user)
    if not user.must_change_password:
        raise Invalid("no password change is pending; signed in users change it with POST /api/v1/users/me/password")
    if new == password:
        raise Invalid("the new password must differ from the current one", field="new_password")
    await db.set_password(svc.pool, user.id, await svc.passwords.hash(new))
    fresh = await db.get_user(svc.pool, user.id)
    assert fresh is not None
    return fresh, await issue_tokens(svc, fresh)


async def _target(conn: Any, admin: db.User, target_id: int, what: str) -> db.User:
    if target_id == admin.id:
        raise Forbidden(f"admins cannot {what} their own account")
    target = await db.get_user(conn, target_id)
    if target is None:
        raise NotFound("user not found")
    if target.kind != "human":
        raise Conflict("only human accounts are managed here")
    return target


async def do_set_active(svc: Services, actor: audit.Actor, target_id: int, active: bool) -> db.User:
    """Deactivate (``active`` False) or reactivate an account."""
    async with svc.pool.acquire() as conn, conn.transaction():
        await _target(conn, actor.user, target_id, "reactivate" if active else "deactivate")
        user = await db.set_deactivated(conn, target_id, not active)
        assert user is not None
        if not active:
            await db.revoke_all_for_user(conn, target_id)
        await audit.record(conn, actor, REACTIVATE if active else DEACTIVATE, "user", target_id)
    if not active:
        await close_sockets(svc, target_id, "revoked", keep_version=user.token_version)
    return user


async def do_force_password_reset(svc: Services, actor: audit.Actor, target_id: int) -> db.User:
    async with svc.pool.acquire() as conn, conn.transaction():
        target = await _target(conn, actor.user, target_id, "reset")
        if target.password_hash is None:
            raise Conflict("this account signs in without a password (WhatsApp code)")
        user = await db.force_password_change(conn, target_id)
        assert user is not None
        await db.revoke_all_for_user(conn, target_id)
        await audit.record(conn, actor, FORCE_RESET, "user", target_id)
    await close_sockets(svc, target_id, "revoked", keep_version=user.token_version)
    return user
