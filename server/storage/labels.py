"""Labels (``labels``) and where they are put: ``conversation_labels`` (by room id) and
``contact_labels``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from chatcore.events import iso

from .whatsapp import Conn

_COLUMNS = "id, name, color, created_at, updated_at"


@dataclass(frozen=True, slots=True)
class Label:
    id: int
    name: str
    color: str
    created_at: datetime
    updated_at: datetime

    def to_wire(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "color": self.color, "created_at": iso(self.created_at),
                "updated_at": iso(self.updated_at)}


def _label(row: asyncpg.Record | None) -> Label | None:
    return None if row is None else Label(**dict(row))


async def all_labels(conn: Conn) -> list[Label]:
    return [Label(**dict(r)) for r in await conn.fetch(f"SELECT {_COLUMNS} FROM labels ORDER BY lower(name), id")]


async def get(conn: Conn, label_id: int, *, for_update: bool = False) -> Label | None:
    lock = " FOR UPDATE" if for_update else ""
    return _label(await conn.fetchrow(f"SELECT {_COLUMNS} FROM labels WHERE id = $1{lock}", label_id))


async def insert(conn: asyncpg.Connection, name: str, color: str) -> Label:
    """Raises ``asyncpg.UniqueViolationError`` for a name taken (case-insensitively)."""
    label = _label(await conn.fetchrow(f"INSERT INTO labels (name, color) VALUES ($1, $2) RETURNING {_COLUMNS}",
                                       name, color))
    assert label is not None
    return label


async def update(conn: asyncpg.Connection, label_id: int, name: str, color: str) -> Label:
    label = _label(await conn.fetchrow(
        f"UPDATE labels SET name = $2, color = $3, updated_at = now() WHERE id = $1 RETURNING {_COLUMNS}",
        label_id, name, color))
    assert label is not None  # locked by the caller in this transaction
    return label


async def delete(conn: asyncpg.Connection, label_id: int) -> list[int]:
    """Delete the label; returns the rooms of the conversations it was on."""
    rooms = await conn.fetch("SELECT room_id FROM conversation_labels WHERE label_id = $1", label_id)
    await conn.execute("DELETE FROM labels WHERE id = $1", label_id)
    return [r["room_id"] for r in rooms]


async def contacts_with(conn: Conn, label_id: int) -> list[int]:
    return [r["contact_id"] for r in await conn.fetch("SELECT contact_id FROM contact_labels WHERE label_id = $1",
                                                      label_id)]


async def put_on_conversation(conn: asyncpg.Connection, room_id: int, label_id: int, user_id: int) -> bool:
    """True when the label was not on the conversation yet."""
    status = await conn.execute("INSERT INTO conversation_labels (room_id, label_id, added_by) VALUES ($1, $2, $3)"
                                " ON CONFLICT DO NOTHING", room_id, label_id, user_id)
    return status.endswith(" 1")


async def take_off_conversation(conn: asyncpg.Connection, room_id: int, label_id: int) -> bool:
    status = await conn.execute("DELETE FROM conversation_labels WHERE room_id = $1 AND label_id = $2", room_id, label_id)
    return status.endswith(" 1")


async def put_on_contact(conn: asyncpg.Connection, contact_id: int, label_id: int, user_id: int) -> bool:
    status = await conn.execute("INSERT INTO contact_labels (contact_id, label_id, added_by) VALUES ($1, $2, $3)"
                                " ON CONFLICT DO NOTHING", contact_id, label_id, user_id)
    return status.endswith(" 1")


async def take_off_contact(conn: asyncpg.Connection, contact_id: int, label_id: int) -> bool:
    status = await conn.execute("DELETE FROM contact_labels WHERE contact_id = $1 AND label_id = $2",
                                contact_id, label_id)
    return status.endswith(" 1")


async def of_contacts(conn: Conn, contact_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    rows = await conn.fetch(
        "SELECT cl.contact_id, l.id, l.name, l.color FROM contact_labels cl JOIN labels l ON l.id = cl.label_id"
        " WHERE cl.contact_id = ANY($1::bigint[]) ORDER BY lower(l.name), l.id", contact_ids)
    out: dict[int, list[dict[str, Any]]] = {i: [] for i in contact_ids}
    for r in rows:
        out[r["contact_id"]].append({"id": r["id"], "name": r["name"], "color": r["color"]})
    return out
