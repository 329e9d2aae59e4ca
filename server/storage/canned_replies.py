"""Canned replies (``canned_replies``): shared (``owner_id`` NULL) and personal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from chatcore.events import iso

_COLUMNS = "id, owner_id, shortcut, body, created_at, updated_at"


@dataclass(frozen=True, slots=True)
class CannedReply:
    id: int
    owner_id: int | None
    shortcut: str
    body: str
    created_at: datetime
    updated_at: datetime

    @property
    def scope(self) -> str:
        return "shared" if self.owner_id is None else "personal"

    def to_wire(self) -> dict[str, Any]:
        return {"id": self.id, "scope": self.scope, "shortcut": self.shortcut, "body": self.body,
                "created_at": iso(self.created_at), "updated_at": iso(self.updated_at)}


def _reply(row: asyncpg.Record | None) -> CannedReply | None:
    return None if row is None else CannedReply(*row.values())


async def visible(conn: asyncpg.Connection | asyncpg.Pool, user_id: int, prefix: str, limit: int) -> list[CannedReply]:
    """The shared replies and the user's own whose shortcut starts with ``prefix``; by shortcut,
    a personal one before a shared one of the same shortcut."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM canned_replies WHERE (owner_id IS NULL OR owner_id = $1) "
        "AND starts_with(shortcut, $2) ORDER BY shortcut, owner_id NULLS LAST LIMIT $3",
        user_id, prefix, limit,
    )
    return [r for r in (_reply(row) for row in rows) if r is not None]


async def get_visible(conn: asyncpg.Connection | asyncpg.Pool, user_id: int, reply_id: int, *,
                      for_update: bool = False) -> CannedReply | None:
    lock = " FOR UPDATE" if for_update else ""
    return _reply(await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM canned_replies WHERE id = $1 AND (owner_id IS NULL OR owner_id = $2){lock}",
        reply_id, user_id))


async def insert(conn: asyncpg.Connection, owner_id: int | None, shortcut: str, body: str, created_by: int) -> CannedReply:
    """Raises ``asyncpg.UniqueViolationError`` for a shortcut taken in the scope."""
    reply = _reply(await conn.fetchrow(
        f"INSERT INTO canned_replies (owner_id, shortcut, body, created_by) VALUES ($1, $2, $3, $4) RETURNING {_COLUMNS}",
        owner_id, shortcut, body, created_by))
    assert reply is not None
    return reply


async def update(conn: asyncpg.Connection, reply_id: int, shortcut: str, body: str) -> CannedReply:
    reply = _reply(await conn.fetchrow(
        f"UPDATE canned_replies SET shortcut = $2, body = $3, updated_at = now() WHERE id = $1 RETURNING {_COLUMNS}",
        reply_id, shortcut, body))
    assert reply is not None  # locked by the caller in this transaction
    return reply


async def delete(conn: asyncpg.Connection, reply_id: int) -> None:
    await conn.execute("DELETE FROM canned_replies WHERE id = $1", reply_id)
