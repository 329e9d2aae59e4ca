"""The fetch queue of WhatsApp contacts' media (``wa_media``, ``schema/0010_wa_media.sql``) and
the writes that turn a pending attachment into a ready or unavailable one.

A row is written with its message (``insert``, same transaction); fetches claim due rows
(``claim``, with a lease so one node fetches each and a node that dies mid-fetch leaves the row
to another); a fetch ends ``ready`` (``finish_ready``: the ``files`` row, the message's
attachment and the queue row in one transaction) or ``unavailable`` (``finish_unavailable``);
a staff retry (``reset``) makes it ``pending`` again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias

import asyncpg

from chatcore.events import ATTACHMENT_PENDING, ATTACHMENT_UNAVAILABLE, Attachment, MessageRecord

from .messages import MSG_COLS, to_record

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool

_COLS = "file_id, message_id, room_id, account_id, media_id, kind, state, error, attempts, session_id, payload"


@dataclass(frozen=True, slots=True)
class MediaRow:
    file_id: str
    message_id: int
    room_id: int
    account_id: int | None  # the Cloud API number it came to; None for a linked session's
    media_id: str
    kind: str
    state: str  # pending | ready | unavailable
    error: str | None
    attempts: int
    session_id: int | None = None  # the linked session it came through (``schema/0024``)
    payload: bytes | None = None  # the waE2E.Message whatsmeow downloads a linked file from


def _row(r: asyncpg.Record | None) -> MediaRow | None:
    return None if r is None else MediaRow(**{k: r[k] for k in MediaRow.__slots__})


async def insert(conn: Conn, file_id: str, message_id: int, room_id: int, account_id: int | None, media_id: str,
                 kind: str, *, session_id: int | None = None, payload: bytes | None = None) -> None:
    """Queue a fetch: from the Cloud API number ``account_id``, or through the linked session
    ``session_id`` (then ``payload`` is the message to download from)."""
    await conn.execute(
        "INSERT INTO wa_media (file_id, message_id, room_id, account_id, media_id, kind, session_id, payload)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        file_id, message_id, room_id, account_id, media_id, kind, session_id, payload)


async def get(conn: Conn, file_id: str) -> MediaRow | None:
    return _row(await conn.fetchrow(f"SELECT {_COLS} FROM wa_media WHERE file_id = $1", file_id))


async def claim(conn: Conn, file_id: str, lease_s: float) -> MediaRow | None:
    """Take one pending row for a fetch if it is due and nobody holds it."""
    return _row(await conn.fetchrow(
        "UPDATE wa_media SET next_attempt_at = now() + make_interval(secs => $2), attempts = attempts + 1,"
        " updated_at = now() WHERE file_id = $1 AND state = 'pending' AND next_attempt_at <= now()"
        f" RETURNING {_COLS}", file_id, lease_s))


async def claim_due(conn: Conn, limit: int, lease_s: float, node: str) -> list[MediaRow]:
    """Pending rows that are due (new ones a node did not get to, or whose fetch lost its node).
    A linked session's file is fetched through that session's client, so it is claimed only by
    ``node`` holding the session's lease, or by any node while nobody holds it (the fetch then
    ends with the session's state: logged out, deleted, or back later)."""
    rows = await conn.fetch(
        "UPDATE wa_media w SET next_attempt_at = now() + make_interval(secs => $2), attempts = w.attempts + 1,"
        " updated_at = now() WHERE w.file_id IN (SELECT m.file_id FROM wa_media m WHERE m.state = 'pending'"
        "  AND m.next_attempt_at <= now() AND (m.session_id IS NULL OR NOT EXISTS (SELECT 1 FROM wa_sessions s"
        "   WHERE s.id = m.session_id AND s.lease_until > now() AND s.lease_node IS DISTINCT FROM $3))"
        "  ORDER BY m.next_attempt_at LIMIT $1 FOR UPDATE OF m SKIP LOCKED)"
        f" RETURNING {_COLS}", limit, lease_s, node)
    return [r for r in (_row(x) for x in rows) if r is not None]


async def retry_later(conn: Conn, file_id: str, delay_s: float) -> None:
    """A fetch that failed for a passing reason: still pending, due again in ``delay_s``."""
    await conn.execute("UPDATE wa_media SET next_attempt_at = now() + make_interval(secs => $2), updated_at = now()"
                       " WHERE file_id = $1 AND state = 'pending'", file_id, delay_s)


# replaces the attachment with id $2 in message $1's list (keeping the order), unless deleted
SET_ATTACHMENT = (
    "UPDATE messages SET attachments = (SELECT jsonb_agg(CASE WHEN e.value->>'id' = $2 THEN $3::jsonb ELSE e.value END"
    "  ORDER BY e.ord) FROM jsonb_array_elements(attachments) WITH ORDINALITY AS e(value, ord))"
    " WHERE id = $1 AND deleted_at IS NULL AND attachments @> jsonb_build_array(jsonb_build_object('id', $2::text))"
    f" RETURNING {MSG_COLS}"
)


async def finish_ready(pool: asyncpg.Pool, row: MediaRow, att: Attachment) -> MessageRecord | None:
    """Record the fetched file: its ``files`` row (no owner: a contact has no user), the message's
    attachment ready, the queue row done. None when the message was deleted or archived
    meanwhile (then nothing is written and the caller deletes the bytes)."""
    async with pool.acquire() as conn, conn.transaction():
        updated = await conn.fetchrow(SET_ATTACHMENT, row.message_id, att.id, att.meta())
        if updated is None:
            await conn.execute("UPDATE wa_media SET state = 'unavailable', error = 'message_gone', updated_at = now()"
                               " WHERE file_id = $1", row.file_id)
            return None
        await conn.execute(
            "INSERT INTO files (id, owner_id, name, mime, size, width, height) VALUES ($1, NULL, $2, $3, $4, $5, $6)"
            " ON CONFLICT (id) DO NOTHING",  # a second fetch of the same file (its lease ran out)
            att.id, att.name, att.mime, att.size, att.width, att.height)
        await conn.execute("UPDATE wa_media SET state = 'ready', error = NULL, updated_at = now() WHERE file_id = $1",
                           row.file_id)
        return to_record(updated)


async def finish_unavailable(pool: asyncpg.Pool, row: MediaRow, att: Attachment, error: str) -> MessageRecord | None:
    """The fetch failed: the attachment shows ``unavailable``, the queue row keeps why."""
    return await _set_state(pool, row.file_id, row.message_id, att, ATTACHMENT_UNAVAILABLE, "unavailable", error)


async def reset(pool: asyncpg.Pool, row: MediaRow, att: Attachment) -> MessageRecord | None:
    """A staff retry: pending again, due now."""
    return await _set_state(pool, row.file_id, row.message_id, att, ATTACHMENT_PENDING, "pending", None)


async def _set_state(pool: asyncpg.Pool, file_id: str, message_id: int, att: Attachment, status: str, state: str,
                     error: str | None) -> MessageRecord | None:
    meta: dict[str, Any] = {**att.meta(), "status": status}
    async with pool.acquire() as conn, conn.transaction():
        # a staff retry starts the count of a linked file's passing failures again
        await conn.execute("UPDATE wa_media SET state = $2, error = $3, next_attempt_at = now(), updated_at = now(),"
                           " attempts = CASE WHEN $2 = 'pending' THEN 0 ELSE attempts END"
                           " WHERE file_id = $1", file_id, state, error)
        updated = await conn.fetchrow(SET_ATTACHMENT, message_id, file_id, meta)
    return None if updated is None else to_record(updated)
