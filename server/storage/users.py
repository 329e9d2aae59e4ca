"""Users and refresh tokens."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

USER_COLS = (
    "id, username, display_name, password_hash, phone, role, kind, token_version, last_seen_at, created_at, compliance,"
    " deactivated_at, must_change_password, avatar_file_id"
)


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    display_name: str
    password_hash: str | None
    phone: str | None
    role: str
    kind: str
    token_version: int
    last_seen_at: datetime | None
    created_at: datetime
    compliance: bool = False  # may read private rooms and DMs without membership (audited)
    deactivated_at: datetime | None = None  # set: no login, refresh, connect or token use
    must_change_password: bool = False  # an admin forced a reset: login refuses until it is changed
    avatar_file_id: str | None = None  # the upload shown as the user's picture (its thumbnail)

    def public(self, avatar_url: str | None = None) -> dict[str, Any]:
        """The record clients get. ``avatar_url`` is the signed thumbnail URL of ``avatar_file_id``
        (``actions.account.public_user`` signs it); storage holds no signer."""
        return {
            "id": self.id,
            "username": self.username,
            "display_name": self.display_name,
            "role": self.role,
            "kind": self.kind,
            "avatar_url": avatar_url,
        }


def _user(row: asyncpg.Record | None) -> User | None:
    return None if row is None else User(**dict(row))


async def insert_user(
    conn: asyncpg.Connection | asyncpg.Pool,
    username: str,
    display_name: str,
    password_hash: str | None,
    *,
    role: str = "user",
    kind: str = "human",
    phone: str | None = None,
) -> User:
    """Raises ``asyncpg.UniqueViolationError`` when the username or phone is taken."""
    row = await conn.fetchrow(
        f"INSERT INTO users (username, display_name, password_hash, role, kind, phone)"
        f" VALUES ($1, $2, $3, $4, $5, $6) RETURNING {USER_COLS}",
        username, display_name, password_hash, role, kind, phone,
    )
    user = _user(row)
    assert user is not None
    return user


async def get_user(conn: asyncpg.Connection | asyncpg.Pool, user_id: int) -> User | None:
    return _user(await conn.fetchrow(f"SELECT {USER_COLS} FROM users WHERE id = $1", user_id))


async def get_user_by_username(conn: asyncpg.Connection | asyncpg.Pool, username: str) -> User | None:
    return _user(
        await conn.fetchrow(f"SELECT {USER_COLS} FROM users WHERE lower(username) = lower($1)", username)
    )


async def get_user_by_phone(conn: asyncpg.Connection | asyncpg.Pool, phone: str) -> User | None:
    return _user(await conn.fetchrow(f"SELECT {USER_COLS} FROM users WHERE phone = $1", phone))


async def search_users(pool: asyncpg.Pool, query: str, limit: int, *, after: str = "",
                       roles: Collection[str] | None = None) -> list[User]:
    """People (not contacts) whose username or display name contains ``query``, by username:
    those after ``after`` (the last username of the previous page); with ``roles``, only active
    accounts of those roles."""
    rows = await pool.fetch(
        f"SELECT {USER_COLS} FROM users WHERE kind <> 'contact' AND"
        " (username ILIKE $1 OR display_name ILIKE $1) AND username > $3"
        " AND ($4::text[] IS NULL OR (role = ANY($4::text[]) AND deactivated_at IS NULL)) ORDER BY username LIMIT $2",
        "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%", limit, after,
        None if roles is None else sorted(roles),
    )
    return [User(**dict(r)) for r in rows]


async def list_users(pool: asyncpg.Pool, limit: int, after_id: int = 0) -> list[User]:
    rows = await pool.fetch(
        f"SELECT {USER_COLS} FROM users WHERE id > $1 ORDER BY id LIMIT $2", after_id, limit
    )
    return [User(**dict(r)) for r in rows]


async def set_role(pool: asyncpg.Connection | asyncpg.Pool, user_id: int, role: str) -> User | None:
    # bumping token_version makes old tokens (with the old role) invalid
    return _user(
        await pool.fetchrow(
            f"UPDATE users SET role = $2, token_version = token_version + 1, tv_reason = 'revoked'"
            f" WHERE id = $1 RETURNING {USER_COLS}",
            user_id, role,
        )
    )


# --- token versions and revocations ---------------------------------------------------------


async def get_user_for_token(
    conn: asyncpg.Connection | asyncpg.Pool, user_id: int, family: str | None
) -> tuple[User | None, bool]:
    """The token's user and whether the token's refresh family was revoked, in one round trip."""
    try:
        family_id = uuid.UUID(family) if family is not None else None
    except ValueError:
        return None, True  # signed by us, so never malformed; refuse rather than guess
    row = await conn.fetchrow(
        f"SELECT {USER_COLS}, ($2::uuid IS NOT NULL AND EXISTS"
        " (SELECT 1 FROM revoked_families WHERE family_id = $2)) AS family_revoked FROM users WHERE id = $1",
        user_id, family_id,
    )
    if row is None:
        return None, False
    values = dict(row)
    revoked = bool(values.pop("family_revoked"))
    return User(**values), revoked


async def bump_token_version(conn: asyncpg.Connection | asyncpg.Pool, user_id: int, reason: str) -> None:
    """Invalidate every access token of the user; ``reason`` (revoked|logged_out) is what open
    sockets are told when they are ended for it."""
    await conn.execute(
        "UPDATE users SET token_version = token_version + 1, tv_reason = $2 WHERE id = $1", user_id, reason
    )


@dataclass(frozen=True, slots=True)
class Revocation:
    """A user whose token version changed (``family_id`` None) or a revoked refresh family."""

    user_id: int
    token_version: int | None
    family_id: str | None
    reason: str


async def revocations_since(
    pool: asyncpg.Pool, since: datetime | None, overlap_s: float
) -> tuple[datetime, list[Revocation]]:
    """The database's clock now, and the revocations stamped after ``since - overlap_s``
    (``since`` None: the last ``overlap_s``). The overlap re-reads what a transaction still
    open at the last look may have stamped earlier but committed later."""
    rows = await pool.fetch(
        "WITH w AS (SELECT coalesce($1::timestamptz, now()) - make_interval(secs => $2) AS since)"
        " SELECT now() AS now, c.user_id, c.token_version, c.family_id, c.reason"
        " FROM (SELECT 1) one LEFT JOIN LATERAL ("
        "  SELECT u.id AS user_id, u.token_version, NULL::uuid AS family_id, u.tv_reason AS reason"
        "   FROM users u, w WHERE u.tv_changed_at > w.since"
        "  UNION ALL"
        "  SELECT f.user_id, NULL::integer, f.family_id, f.reason"
        "   FROM revoked_families f, w WHERE f.revoked_at > w.since"
        " ) c ON true",
        since, float(overlap_s),
    )
    found = [
        Revocation(int(r["user_id"]), r["token_version"], None if r["family_id"] is None else str(r["family_id"]), r["reason"])
        for r in rows
        if r["user_id"] is not None
    ]
    return rows[0]["now"], found


async def prune_revoked_families(pool: asyncpg.Pool, older_than_s: float) -> int:
    """Forget revoked families whose access tokens have all expired; how many were removed."""
    status = await pool.execute(
        "DELETE FROM revoked_families WHERE revoked_at < now() - make_interval(secs => $1)", float(older_than_s)
    )
    return int(status.split()[-1])


# --- account management (actions/account.py) ------------------------------------------------


async def set_display_name(pool: asyncpg.Pool, user_id: int, display_name: str) -> User | None:
    return _user(await pool.fetchrow(
        f"UPDATE users SET display_name = $2 WHERE id = $1 RETURNING {USER_COLS}", user_id, display_name))


async def set_avatar(conn: asyncpg.Connection, user_id: int, file_id: str | None) -> tuple[User, str | None]:
    """Point the user's picture at ``file_id`` (None: no picture); the user as it now is and the
    previous picture's file id. The caller holds a transaction (the old id is read under a row lock)."""
    old = await conn.fetchval("SELECT avatar_file_id FROM users WHERE id = $1 FOR UPDATE", user_id)
    user = _user(await conn.fetchrow(
        f"UPDATE users SET avatar_file_id = $2 WHERE id = $1 RETURNING {USER_COLS}", user_id, file_id))
    assert user is not None
    return user, old


async def set_password(conn: asyncpg.Connection | asyncpg.Pool, user_id: int, password_hash: str) -> None:
    """A new password, which also ends a forced reset."""
    await conn.execute("UPDATE users SET password_hash = $2, must_change_password = false WHERE id = $1",
                       user_id, password_hash)


async def set_deactivated(conn: asyncpg.Connection | asyncpg.Pool, user_id: int, deactivated: bool) -> User | None:
    """Deactivate (and invalidate every access token: the token-version bump ends the user's
    sockets on every node) or reactivate a human or assistant account."""
    return _user(await conn.fetchrow(
        "UPDATE users SET deactivated_at = CASE WHEN $2 THEN coalesce(deactivated_at, now()) END,"
        " token_version = token_version + CASE WHEN $2 THEN 1 ELSE 0 END, tv_reason = 'revoked'"
        f" WHERE id = $1 RETURNING {USER_COLS}",
        user_id, deactivated))


async def force_password_change(conn: asyncpg.Connection | asyncpg.Pool, user_id: int) -> User | None:
    """Flag the account and invalidate its access tokens (the bump ends its sockets)."""
    return _user(await conn.fetchrow(
        "UPDATE users SET must_change_password = true, token_version = token_version + 1, tv_reason = 'revoked'"
        f" WHERE id = $1 RETURNING {USER_COLS}",
        user_id))


async def other_families(conn: asyncpg.Connection | asyncpg.Pool, user_id: int, keep: uuid.UUID | None) -> list[uuid.UUID]:
    """The user's logins (refresh families) still usable, except ``keep``."""
    rows = await conn.fetch(
        "SELECT DISTINCT family_id FROM refresh_tokens WHERE user_id = $1 AND expires_at > now()"
        " AND ($2::uuid IS NULL OR family_id <> $2)"
        " AND NOT EXISTS (SELECT 1 FROM revoked_families f WHERE f.family_id = refresh_tokens.family_id)",
        user_id, keep)
    return [r["family_id"] for r in rows]


async def replace_password_hash(pool: asyncpg.Pool, user_id: int, old_hash: str, new_hash: str) -> bool:
    # only over the hash that was verified: a password change that landed meanwhile wins
    status = await pool.execute(
        "UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2", user_id, old_hash, new_hash
    )
    return bool(status == "UPDATE 1")


async def set_compliance(conn: asyncpg.Connection | asyncpg.Pool, user_id: int, enabled: bool) -> User | None:
    # no token_version bump: the permission is read from this row on every request that uses it
    return _user(
        await conn.fetchrow(f"UPDATE users SET compliance = $2 WHERE id = $1 RETURNING {USER_COLS}", user_id, enabled)
    )


async def has_compliance(conn: asyncpg.Connection | asyncpg.Pool, user_id: int) -> bool:
    return bool(await conn.fetchval("SELECT compliance FROM users WHERE id = $1", user_id))


async def touch_last_seen(pool: asyncpg.Pool, user_id: int, at: datetime) -> None:
    await pool.execute("UPDATE users SET last_seen_at = $2 WHERE id = $1", user_id, at)


# --- refresh tokens -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RefreshToken:
    id: int
    user_id: int
    family_id: uuid.UUID
    expires_at: datetime
    revoked_at: datetime | None
    replaced_by: int | None


async def insert_refresh(
    conn: asyncpg.Connection | asyncpg.Pool, user_id: int, family_id: uuid.UUID, token_hash: bytes, ttl_s: int
) -> int:
    return int(
        await conn.fetchval(
            "INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at)"
            " VALUES ($1, $2, $3, now() + make_interval(secs => $4)) RETURNING id",
            user_id, family_id, token_hash, float(ttl_s),
        )
    )


async def get_refresh_for_update(conn: asyncpg.Connection, token_hash: bytes) -> RefreshToken | None:
    row = await conn.fetchrow(
        "SELECT id, user_id, family_id, expires_at, revoked_at, replaced_by FROM refresh_tokens"
        " WHERE token_hash = $1 FOR UPDATE",
        token_hash,
    )
    return None if row is None else RefreshToken(**dict(row))


async def mark_replaced(conn: asyncpg.Connection, token_id: int, replaced_by: int) -> None:
    await conn.execute(
        "UPDATE refresh_tokens SET revoked_at = now(), replaced_by = $2 WHERE id = $1", token_id, replaced_by
    )


async def revoke_family(conn: asyncpg.Connection | asyncpg.Pool, family_id: uuid.UUID, user_id: int, reason: str) -> None:
    """Revoke a login's refresh tokens and record it, in one statement, for its access tokens
    and open sockets (``reason``: revoked|logged_out)."""
    await conn.execute(
        "WITH r AS (UPDATE refresh_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE family_id = $1)"
        " INSERT INTO revoked_families (family_id, user_id, reason) VALUES ($1, $2, $3)"
        " ON CONFLICT (family_id) DO NOTHING",
        family_id, user_id, reason,
    )


async def revoke_all_for_user(conn: asyncpg.Connection | asyncpg.Pool, user_id: int) -> None:
    await conn.execute(
        "UPDATE refresh_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE user_id = $1", user_id
    )
