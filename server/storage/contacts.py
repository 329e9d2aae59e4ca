"""Contacts (``contacts``), the identifiers they are known by (``contact_identities``) and their
conversations (``wa_contacts`` rows linked by ``contact_id``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from chatcore.events import iso

from .whatsapp import Conn

_COLUMNS = "id, name, name_edited, phone, email, notes, attributes, created_at, updated_at"
# one advisory lock namespace for identity values: two first messages of one person on two
# nodes wait for each other instead of making two contacts
IDENTITY_LOCK_SPACE = 7_240_018


@dataclass(frozen=True, slots=True)
class Contact:
    id: int
    name: str
    name_edited: bool
    phone: str | None
    email: str | None
    notes: str
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    def to_wire(self, identities: list[dict[str, str]], labels: list[dict[str, Any]]) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "name_edited": self.name_edited, "phone": self.phone,
                "email": self.email, "notes": self.notes, "attributes": self.attributes,
                "identities": identities, "labels": labels,
                "created_at": iso(self.created_at), "updated_at": iso(self.updated_at)}


def _contact(row: asyncpg.Record | None) -> Contact | None:
    return None if row is None else Contact(**dict(row))


async def lock_identities(conn: asyncpg.Connection, pairs: list[tuple[str, str]]) -> None:
    """Transaction-scoped locks on identity values, taken in one order (no deadlock)."""
    for kind, value in sorted(pairs):
        await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", IDENTITY_LOCK_SPACE, f"{kind}:{value}")


async def identities_known(conn: Conn, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    rows = await conn.fetch(
        "SELECT kind, value, contact_id FROM contact_identities i"
        " JOIN unnest($1::text[], $2::text[]) AS q(k, v) ON i.kind = q.k AND i.value = q.v",
        [k for k, _ in pairs], [v for _, v in pairs])
    return {(r["kind"], r["value"]): r["contact_id"] for r in rows}


async def put_identity(conn: asyncpg.Connection, kind: str, value: str, contact_id: int) -> None:
    """Point ``(kind, value)`` at ``contact_id``, moving it from another contact if it was theirs
    (a number that now belongs to the person the BSUID names)."""
    await conn.execute(
        "INSERT INTO contact_identities (kind, value, contact_id) VALUES ($1, $2, $3)"
        " ON CONFLICT (kind, value) DO UPDATE SET contact_id = EXCLUDED.contact_id, created_at = now()",
        kind, value, contact_id)


async def identities_of(conn: Conn, contact_ids: list[int]) -> dict[int, list[dict[str, str]]]:
    rows = await conn.fetch("SELECT contact_id, kind, value FROM contact_identities WHERE contact_id = ANY($1::bigint[])"
                            " ORDER BY kind, created_at, value", contact_ids)
    out: dict[int, list[dict[str, str]]] = {i: [] for i in contact_ids}
    for r in rows:
        out[r["contact_id"]].append({"kind": r["kind"], "value": r["value"]})
    return out


async def insert(conn: asyncpg.Connection, name: str, phone: str | None) -> int:
    return int(await conn.fetchval("INSERT INTO contacts (name, phone) VALUES ($1, $2) RETURNING id", name, phone))


async def note_profile(conn: asyncpg.Connection, contact_id: int, profile_name: str | None, phone: str | None) -> None:
    """What a new message says about the person: their WhatsApp profile name (kept unless staff
    edited the name) and their current number."""
    await conn.execute(
        "UPDATE contacts SET"
        " name = CASE WHEN $2::text IS NOT NULL AND $2 <> '' AND NOT name_edited THEN $2 ELSE name END,"
        " phone = coalesce($3, phone),"
        " updated_at = CASE WHEN ($2::text IS NOT NULL AND $2 <> '' AND NOT name_edited AND name <> $2)"
        "   OR ($3::text IS NOT NULL AND phone IS DISTINCT FROM $3) THEN now() ELSE updated_at END"
        " WHERE id = $1",
        contact_id, profile_name, phone)


async def get(conn: Conn, contact_id: int, *, for_update: bool = False) -> Contact | None:
    lock = " FOR UPDATE" if for_update else ""
    return _contact(await conn.fetchrow(f"SELECT {_COLUMNS} FROM contacts WHERE id = $1{lock}", contact_id))


async def update(conn: asyncpg.Connection, contact_id: int, **fields: Any) -> Contact:
    allowed = {"name", "name_edited", "email", "notes", "attributes"}
    assert fields and set(fields) <= allowed
    sets = ", ".join(f"{k} = ${i}" for i, k in enumerate(fields, start=2))
    contact = _contact(await conn.fetchrow(
        f"UPDATE contacts SET {sets}, updated_at = now() WHERE id = $1 RETURNING {_COLUMNS}",
        contact_id, *fields.values()))
    assert contact is not None  # locked by the caller in this transaction
    return contact


async def touch(conn: asyncpg.Connection, contact_id: int) -> None:
    await conn.execute("UPDATE contacts SET updated_at = now() WHERE id = $1", contact_id)


async def search(conn: Conn, *, like: str | None, digits: str | None, label_id: int | None, before_id: int | None,
                 limit: int) -> list[Contact]:
    """Newest first. ``like``: an ILIKE pattern for name and email; ``digits``: a substring of the
    phone number or of any identity (wa_id)."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM contacts p"
        " WHERE ($1::text IS NULL OR p.name ILIKE $1 OR p.email ILIKE $1"
        "        OR ($2::text IS NOT NULL AND (p.phone LIKE '%' || $2 || '%' OR EXISTS (SELECT 1 FROM contact_identities i"
        "            WHERE i.contact_id = p.id AND i.value LIKE '%' || $2 || '%'))))"
        "   AND ($3::bigint IS NULL OR EXISTS (SELECT 1 FROM contact_labels cl WHERE cl.contact_id = p.id"
        "        AND cl.label_id = $3))"
        "   AND ($4::bigint IS NULL OR p.id < $4)"
        " ORDER BY p.id DESC LIMIT $5",
        like, digits, label_id, before_id, limit)
    return [c for c in (_contact(r) for r in rows) if c is not None]


async def conversation_rooms(conn: Conn, contact_id: int, limit: int) -> list[int]:
    """The contact's conversations on every business number, the most recently active first."""
    rows = await conn.fetch("SELECT room_id FROM wa_contacts WHERE contact_id = $1 ORDER BY updated_at DESC, id DESC"
                            " LIMIT $2", contact_id, limit)
    return [r["room_id"] for r in rows]
