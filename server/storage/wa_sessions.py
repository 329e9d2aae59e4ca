"""Linked-device sessions (``wa_sessions``): rows, the per-node lease with its fencing token,
and the schema of each session's whatsmeow store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

from chatcore.events import iso

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool

SESSION_COLS = "id, name, status, jid, phone, last_error, lease_node, lease_token, lease_until, created_at, updated_at"
# a node runs a session in these states; logged_out and qr_expired wait for an admin
RUNNABLE = ("new", "connecting", "qr", "pairing_code", "connected", "disconnected")
STATES = (*RUNNABLE, "logged_out", "qr_expired")


@dataclass(frozen=True, slots=True)
class Session:
    id: int
    name: str
    status: str
    jid: str | None
    phone: str | None
    last_error: str | None
    lease_node: str | None
    lease_token: int
    lease_until: datetime | None
    created_at: datetime
    updated_at: datetime

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "status": self.status, "jid": self.jid, "phone": self.phone,
                "last_error": self.last_error, "node": self.lease_node, "created_at": iso(self.created_at),
                "updated_at": iso(self.updated_at)}


def store_schema(session_id: int) -> str:
    """The schema of a session's whatsmeow tables (an identifier made of a number only)."""
    return f"wa_store_{int(session_id)}"


def _session(row: asyncpg.Record | None) -> Session | None:
    return None if row is None else Session(**dict(row))


async def insert(conn: Conn, name: str) -> Session:
    s = _session(await conn.fetchrow(f"INSERT INTO wa_sessions (name) VALUES ($1) RETURNING {SESSION_COLS}", name))
    assert s is not None
    return s


async def get(conn: Conn, session_id: int) -> Session | None:
    return _session(await conn.fetchrow(f"SELECT {SESSION_COLS} FROM wa_sessions WHERE id = $1", session_id))


async def list_all(conn: Conn) -> list[Session]:
    return [Session(**dict(r)) for r in await conn.fetch(f"SELECT {SESSION_COLS} FROM wa_sessions ORDER BY id")]


async def delete(conn: Conn, session_id: int) -> bool:
    return (await conn.execute("DELETE FROM wa_sessions WHERE id = $1", session_id)).endswith(" 1")


async def create_store(conn: Conn, session_id: int) -> None:
    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {store_schema(session_id)}")


async def drop_store(conn: Conn, session_id: int) -> None:
    """Forget the device keys: the next start shows a new QR code."""
    await conn.execute(f"DROP SCHEMA IF EXISTS {store_schema(session_id)} CASCADE")


async def store_has_device(conn: Conn, session_id: int) -> bool:
    schema = store_schema(session_id)
    exists = await conn.fetchval("SELECT to_regclass($1)", f"{schema}.whatsmeow_device")
    if exists is None:
        return False
    return bool(await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {schema}.whatsmeow_device)"))


async def set_state(conn: Conn, session_id: int, token: int | None, status: str, *, last_error: str | None = None,
                    jid: str | None = None, keep_error: bool = False) -> Session | None:
    """Record a state change. With ``token`` (the lease holder's write), only while that token is
    still the session's: a node that lost the lease changes nothing. None when not written."""
    row = await conn.fetchrow(
        "UPDATE wa_sessions SET status = $3,"
        " last_error = CASE WHEN $6 THEN last_error ELSE $4 END,"
        " jid = COALESCE($5, jid), phone = COALESCE(split_part(split_part($5, '@', 1), ':', 1), phone),"
        " updated_at = now()"
        f" WHERE id = $1 AND ($2::bigint IS NULL OR lease_token = $2) RETURNING {SESSION_COLS}",
        session_id, token, status, last_error, jid, keep_error)
    return _session(row)


async def claim(conn: Conn, node: str, lease_s: float, exclude: list[int], limit: int) -> list[Session]:
    """Take the lease of runnable sessions nobody holds (never held, expired, or released),
    bumping each one's fencing token. Skips rows another node is claiming right now."""
    rows = await conn.fetch(
        "UPDATE wa_sessions s SET lease_node = $1, lease_token = s.lease_token + 1,"
        " lease_until = now() + make_interval(secs => $2), updated_at = now()"
        " WHERE s.id IN (SELECT id FROM wa_sessions WHERE status = ANY($3::text[]) AND NOT (id = ANY($4::bigint[]))"
        "  AND (lease_until IS NULL OR lease_until < now()) ORDER BY id LIMIT $5 FOR UPDATE SKIP LOCKED)"
        f" RETURNING {SESSION_COLS}",
        node, lease_s, list(RUNNABLE), exclude, limit)
    return [Session(**dict(r)) for r in rows]


async def renew(conn: Conn, session_id: int, node: str, token: int, lease_s: float) -> Session | None:
    """Extend a held lease; None when it is no longer ours (taken over, or the row is gone)."""
    return _session(await conn.fetchrow(
        "UPDATE wa_sessions SET lease_until = now() + make_interval(secs => $4)"
        f" WHERE id = $1 AND lease_node = $2 AND lease_token = $3 RETURNING {SESSION_COLS}",
        session_id, node, token, lease_s))


async def release(conn: Conn, session_id: int, token: int) -> None:
    await conn.execute("UPDATE wa_sessions SET lease_until = NULL WHERE id = $1 AND lease_token = $2",
                       session_id, token)


async def counts_by_state(conn: Conn) -> dict[str, int]:
    rows = await conn.fetch("SELECT status, count(*) AS n FROM wa_sessions GROUP BY status")
    return {r["status"]: int(r["n"]) for r in rows}


async def claim_deferred_outbound(conn: Conn, session_ids: list[int], limit: int, lease_s: float) -> list[asyncpg.Record]:
    """Queued sends of conversations on ``session_ids`` that a node without the session left
    for its holder (state ``session_elsewhere``), claimed like the outbox's own rows."""
    return await conn.fetch(
        "UPDATE wa_messages w SET next_attempt_at = now() + make_interval(secs => $3), updated_at = now()"
        " WHERE w.id IN (SELECT m.id FROM wa_messages m JOIN wa_contacts c ON c.room_id = m.room_id"
        "  WHERE m.direction = 'out' AND m.status = 'queued' AND m.error_title = 'session_elsewhere'"
        "  AND c.session_id = ANY($1::bigint[]) ORDER BY m.id LIMIT $2 FOR UPDATE OF m SKIP LOCKED)"
        " RETURNING w.id, w.message_id, w.room_id, w.attempts",
        session_ids, limit, lease_s)
