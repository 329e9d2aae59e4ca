"""Private notes in WhatsApp conversations (``notes``): staff-only, never messages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from chatcore.events import iso

_COLUMNS = "n.id, n.room_id, n.author_id, u.username, u.display_name, n.body, n.created_at"


@dataclass(frozen=True, slots=True)
class Note:
    id: int
    room_id: int
    author_id: int
    author_username: str
    author_display_name: str
    body: str
    created_at: datetime

    def to_wire(self) -> dict[str, Any]:
        return {"id": self.id, "room_id": self.room_id, "body": self.body, "created_at": iso(self.created_at),
                "author": {"id": self.author_id, "username": self.author_username,
                           "display_name": self.author_display_name}}


def _note(row: asyncpg.Record) -> Note:
    return Note(*row.values())


async def insert_note(conn: asyncpg.Connection, room_id: int, author_id: int, body: str) -> Note:
    row = await conn.fetchrow(
        f"WITH n AS (INSERT INTO notes (room_id, author_id, body) VALUES ($1, $2, $3) RETURNING *) "
        f"SELECT {_COLUMNS} FROM n JOIN users u ON u.id = n.author_id",
        room_id, author_id, body,
    )
    assert row is not None
    return _note(row)


async def list_notes(conn: asyncpg.Connection | asyncpg.Pool, room_id: int, before_id: int | None,
                     limit: int) -> list[Note]:
    """The newest ``limit`` notes of the room older than ``before_id``, oldest first."""
    rows = await conn.fetch(
        f"SELECT * FROM (SELECT {_COLUMNS} FROM notes n JOIN users u ON u.id = n.author_id "
        f"WHERE n.room_id = $1 AND ($2::bigint IS NULL OR n.id < $2) ORDER BY n.id DESC LIMIT $3) t ORDER BY id",
        room_id, before_id, limit,
    )
    return [_note(r) for r in rows]
