"""Users and refresh tokens."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

USER_COLS = (
    "id, username, display_name, password_hash, phone, role, kind, token_version, last_seen_at, created_at, compliance"
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

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "display_name": self.display_name,
            "role": self.role,
            "kind": self.kind,
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


async def search_users(pool: asyncpg.Pool, query: str, limit: int) -> list[User]:
    rows = await pool.fetch(
        f"SELECT {USER_COLS} FROM users WHERE kind <> 'contact' AND"
        " (username ILIKE $1 OR display_name ILIKE $1) ORDER BY username LIMIT $2",
        "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%", limit,
    )
    return [User(**dict(r)) for r in rows]


async def list_users(pool: asyncpg.Pool, limit: int, after_id: int = 0) -> list[User]:
    rows = await pool.fetch(
        f"SELECT {USER_COLS} FROM users WHERE id > $1 ORDER BY id LIMIT $2", after_id, limit
    )
    return [User(**dict(r)) for r in rows]


async def set_role(pool: asyncpg.Pool, user_id: int, role: str) -> User | None:
    # bumping token_version makes old tokens (with the old role) invalid
    return _user(
        await pool.fetchrow(
            f"UPDATE users SET role = $2, token_version = token_version + 1 WHERE id = $1 RETURNING {USER_COLS}",
            user_id, role,
        )
    )


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


async def revoke_family(conn: asyncpg.Connection | asyncpg.Pool, family_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE refresh_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE family_id = $1", family_id
    )


async def revoke_all_for_user(conn: asyncpg.Connection | asyncpg.Pool, user_id: int) -> None:
    await conn.execute(
        "UPDATE refresh_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE user_id = $1", user_id
    )
