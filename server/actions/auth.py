"""Accounts and tokens.

Access tokens are short-lived JWTs; refresh tokens are opaque random strings stored hashed,
rotated on every use. Presenting a refresh token that was already rotated means it leaked:
the whole family is revoked. ``logout-all`` bumps ``users.token_version``, which every
request and connect compares with the token's ``tv`` claim. Access tokens name their refresh
family (``fam``): a revoked family's access tokens are refused too. Open sockets follow every
revocation (``actions/sessions.py``): this node's at once, the other nodes' at their next look.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from chatcore.errors import Conflict, Deactivated, Forbidden, Invalid, PasswordChangeRequired, Unauthorized
from chatcore.tokens import AccessClaims

from ..storage import users as db
from . import audit
from .sessions import sessions_of

if TYPE_CHECKING:
    from ..context import Services

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{3,32}$")
ROLE_CHANGED = "user.role"
RESERVED_USERNAMES = frozenset({"assistant", "system", "admin", "root", "staff"})
# handles of accounts made by WhatsApp code login (``wa_`` + random letters): nobody may register
# one, so no name can pass for a code-login account or squat the handle of one
RESERVED_PREFIX = "wa_"
PASSWORD_MIN, PASSWORD_MAX = 8, 256
DISPLAY_NAME_MAX = 64


def check_username(username: Any) -> str:
    if not isinstance(username, str) or not USERNAME_RE.fullmatch(username):
        raise Invalid("username must be 3-32 letters, digits, '_', '.' or '-'", field="username")
    if username.lower() in RESERVED_USERNAMES:
        raise Conflict("username is taken", field="username")
    if username.lower().startswith(RESERVED_PREFIX):
        raise Invalid(f"usernames starting with '{RESERVED_PREFIX}' are reserved for accounts made by WhatsApp code login",
                      field="username")
    return username


def check_password(password: Any) -> str:
    if not isinstance(password, str) or not (PASSWORD_MIN <= len(password) <= PASSWORD_MAX):
        raise Invalid(f"password must be {PASSWORD_MIN}-{PASSWORD_MAX} characters", field="password")
    return password


def check_display_name(name: Any, fallback: str) -> str:
    if name is None or name == "":
        return fallback
    if not isinstance(name, str) or len(name.strip()) == 0 or len(name) > DISPLAY_NAME_MAX:
        raise Invalid(f"display_name must be 1-{DISPLAY_NAME_MAX} characters", field="display_name")
    return name.strip()


def _hash_refresh(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def issue_tokens(svc: Services, user: db.User, family_id: uuid.UUID | None = None, conn: asyncpg.Connection | None = None) -> dict[str, str]:
    check_active(user)  # every way in (password, refresh, WhatsApp code) passes here
    refresh = secrets.token_urlsafe(32)
    family_id = family_id or uuid.uuid4()
    await db.insert_refresh(conn or svc.pool, user.id, family_id, _hash_refresh(refresh), svc.config.refresh_ttl_s)
    return {
        "access_token": svc.issuer.issue(user.id, user.role, user.token_version, str(family_id)),
        "refresh_token": refresh,
        "token_type": "Bearer",
        "expires_in": str(svc.issuer.ttl_s),
    }


async def do_register(svc: Services, username: Any, password: Any, display_name: Any, ip: str) -> tuple[db.User, dict[str, str]]:
    await svc.limiter.hit("register", ip, svc.config.limits.register_per_min, 60)
    username = check_username(username)
    password = check_password(password)
    display = check_display_name(display_name, username)
    pw_hash = await svc.passwords.hash(password)
    try:
        user = await db.insert_user(svc.pool, username, display, pw_hash)
    except asyncpg.UniqueViolationError:
        raise Conflict("username is taken", field="username") from None
    return user, await issue_tokens(svc, user)


async def do_login(svc: Services, username: Any, password: Any, ip: str) -> tuple[db.User, dict[str, str]]:
    if not isinstance(username, str) or not isinstance(password, str) or len(password) > PASSWORD_MAX:
        raise Invalid("username and password are required")
    await svc.limiter.hit("login-ip", ip, svc.config.limits.login_per_min, 60)
    await svc.limiter.hit("login-user", username.lower(), svc.config.limits.login_per_min, 60)
    user = await db.get_user_by_username(svc.pool, username)
    ok = await svc.passwords.verify(user.password_hash if user else None, password)
    if user is None or not ok or user.kind != "human":
        raise Unauthorized("wrong username or password")
    # only after the password matched: these answers must not reveal an account's state to a guesser
    check_active(user)
    if user.must_change_password:
        raise PasswordChangeRequired("an admin reset this password: set a new one (POST /api/v1/auth/password)")
    await _rehash_if_outdated(svc, user, password)
    return user, await issue_tokens(svc, user)


def check_active(user: db.User) -> None:
    if user.deactivated_at is not None:
        raise Deactivated("this account is deactivated")


async def _rehash_if_outdated(svc: Services, user: db.User, password: str) -> None:
    """After the Argon2 costs changed (raised, as a rule), a login is the one moment the plain
    password is at hand: store a hash made with the current parameters, so weak old hashes do
    not linger. Once per user per change; the next login finds the hash current."""
    if user.password_hash is None or not svc.passwords.needs_rehash(user.password_hash):
        return
    await db.replace_password_hash(svc.pool, user.id, user.password_hash, await svc.passwords.hash(password))


async def do_refresh(svc: Services, refresh_token: Any) -> dict[str, str]:
    if not isinstance(refresh_token, str) or not refresh_token:
        raise Invalid("refresh_token is required")
    revoke_family: uuid.UUID | None = None
    revoke_user = 0
    async with svc.pool.acquire() as conn, conn.transaction():
        row = await db.get_refresh_for_update(conn, _hash_refresh(refresh_token))
        if row is None:
            raise Unauthorized("unknown refresh token")
        owner = await db.get_user(conn, row.user_id)
        if owner is not None:
            # deactivation revokes every refresh token: say why rather than "reuse detected"
            check_active(owner)
            if owner.must_change_password:
                raise PasswordChangeRequired("an admin reset this password: set a new one (POST /api/v1/auth/password)")
        if row.revoked_at is not None:
            # a rotated token presented again: it leaked, revoke the whole family
            revoke_family, revoke_user = row.family_id, row.user_id
        else:
            if row.expires_at < datetime.now(UTC):
                raise Unauthorized("refresh token expired")
            user = await db.get_user(conn, row.user_id)
            if user is None:
                raise Unauthorized("unknown user")
            tokens = await issue_tokens(svc, user, row.family_id, conn)
            new_id = await conn.fetchval(
                "SELECT id FROM refresh_tokens WHERE token_hash = $1", _hash_refresh(tokens["refresh_token"])
            )
            await db.mark_replaced(conn, row.id, new_id)
            return {k: tokens[k] for k in ("access_token", "refresh_token", "token_type", "expires_in")}
    await db.revoke_family(svc.pool, revoke_family, revoke_user, "revoked")
    await close_sockets(svc, revoke_user, "revoked", family=str(revoke_family))
    raise Unauthorized("refresh token reuse detected; all sessions of this login were revoked")


async def do_logout(svc: Services, user: db.User, refresh_token: Any) -> None:
    if isinstance(refresh_token, str) and refresh_token:
        family: uuid.UUID | None = None
        async with svc.pool.acquire() as conn, conn.transaction():
            row = await db.get_refresh_for_update(conn, _hash_refresh(refresh_token))
            if row is not None and row.user_id == user.id:
                family = row.family_id
                await db.revoke_family(conn, family, user.id, "logged_out")
        if family is not None:
            await close_sockets(svc, user.id, "logged_out", family=str(family))


async def do_logout_all(svc: Services, user: db.User) -> None:
    async with svc.pool.acquire() as conn, conn.transaction():
        await db.bump_token_version(conn, user.id, "logged_out")
        await db.revoke_all_for_user(conn, user.id)
    await close_sockets(svc, user.id, "logged_out")


async def do_set_role(svc: Services, actor: audit.Actor, user_id: int, role: str) -> db.User | None:
    """Change a role, with its audit row in the same transaction; tokens and open sockets that
    carry the old one stop working."""
    async with svc.pool.acquire() as conn, conn.transaction():
        before = await db.get_user(conn, user_id)
        if before is None:
            return None
        user = await db.set_role(conn, user_id, role)  # bumps token_version
        await audit.record(conn, actor, ROLE_CHANGED, "user", user_id, {"from": before.role, "to": role})
    if user is not None:
        # a socket keeps the user (and the staff channel) it connected with: end it, the
        # client reconnects with a refreshed token that carries the new role
        await close_sockets(svc, user.id, "revoked", keep_version=user.token_version)
    return user


async def close_sockets(
    svc: Services, user_id: int, reason: str = "revoked", *, keep_version: int | None = None, family: str | None = None
) -> None:
    """End this node's sockets that a committed revocation covers, now. The other nodes end
    theirs at their next look at PostgreSQL (``REVOCATION_CHECK_S``), Redis or not, for what
    they can see there: a token-version bump or a revoked family, so call this after one."""
    sessions = sessions_of(svc)
    if sessions is not None:
        await sessions.end_local(user_id, reason, keep_version=keep_version, family=family)


async def authenticate(svc: Services, token: Any) -> db.User:
    """Verify an access token and that it was not revoked (logout-all, a role change, or its
    login's refresh family revoked)."""
    return (await authenticate_claims(svc, token))[0]


async def authenticate_claims(svc: Services, token: Any) -> tuple[db.User, AccessClaims]:
    claims = svc.verifier.verify(token)
    user, family_revoked = await db.get_user_for_token(svc.pool, claims.user_id, claims.family)
    if user is not None:
        check_active(user)
    if user is None or user.token_version != claims.token_version or family_revoked:
        raise Unauthorized("token revoked")
    return user, claims


async def do_renew(svc: Services, user: db.User, sid: str, token: Any) -> tuple[db.User, AccessClaims]:
    """``auth {token}`` on an open socket: a new access token of the same user, fully checked
    like a connect; the socket then lives until that token expires."""
    new_user, claims = await authenticate_claims(svc, token)
    if new_user.id != user.id:
        raise Forbidden("the token is for another user; connect again with it")
    if new_user.role != user.role or new_user.kind != user.kind:
        raise Forbidden("the role changed; connect again")
    sessions = sessions_of(svc)
    if sessions is not None and not sessions.renew(sid, claims):
        raise Forbidden("the session has ended; connect again")
    return new_user, claims
