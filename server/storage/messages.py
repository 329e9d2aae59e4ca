"""Messages. Per-room ``seq`` is assigned inside the insert transaction.

A message's attachments are written by its insert statement: their metadata into
``messages.attachments`` and one ``message_attachments`` row per file (``schema/0009``), so a
send with files is as atomic as one without. A duplicate attachment raises
``asyncpg.UniqueViolationError`` on ``message_attachments_pkey``; an upload that is gone or
belongs to someone else raises ``asyncpg.ForeignKeyViolationError``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from chatcore.events import Attachment, MessageRecord, Reaction

MSG_COLS = (
    "id, room_id, seq, author_id, author_kind, author_name, body, client_id, reply_to, meta,"
    " created_at, edited_at, deleted_at, attachments, reactions"
)

# appended to an insert whose CTE ``ins`` returns MSG_COLS: one attachment row per file, in order
ATTACH_CTE = (
    " att AS (INSERT INTO message_attachments (file_id, owner_id, message_id, position, attached_at)"
    "  SELECT e.value->>'id', ins.author_id, ins.id, e.ord, ins.created_at"
    "  FROM ins, jsonb_array_elements(ins.attachments) WITH ORDINALITY AS e(value, ord))"
)


def to_record(row: asyncpg.Record) -> MessageRecord:
    return MessageRecord(
        id=row["id"],
        room_id=row["room_id"],
        seq=row["seq"],
        author_id=row["author_id"],
        author_kind=row["author_kind"],
        author_name=row["author_name"],
        body=row["body"],
        client_id=row["client_id"],
        reply_to=row["reply_to"],
        meta=row["meta"] or {},
        created_at=row["created_at"],
        edited_at=row["edited_at"],
        deleted_at=row["deleted_at"],
        attachments=tuple(Attachment.from_wire(a) for a in row["attachments"]) if row["attachments"] else (),
        # the summary ``storage/reactions.py`` keeps on the row (schema/0012)
        reactions=tuple(Reaction.from_wire(r) for r in row["reactions"]) if row["reactions"] else (),
    )


def attachments_param(attachments: tuple[Attachment, ...] | list[Attachment] | None) -> list[dict[str, Any]]:
    return [a.meta() for a in attachments or ()]


async def find_by_client_id(conn: asyncpg.Connection | asyncpg.Pool, author_id: int, client_id: str) -> MessageRecord | None:
    row = await conn.fetchrow(
        f"SELECT {MSG_COLS} FROM messages WHERE author_id = $1 AND client_id = $2", author_id, client_id
    )
    return None if row is None else to_record(row)


INSERT_ONE = (
    "WITH s AS (UPDATE rooms SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq),"
    " ins AS (INSERT INTO messages (room_id, seq, author_id, author_kind, author_name, body, client_id, reply_to,"
    "  meta, attachments)"
    f"  SELECT $1, s.last_seq, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb FROM s RETURNING {MSG_COLS}),"
    f"{ATTACH_CTE}"
    " SELECT * FROM ins"
)


async def insert_message(
    conn: asyncpg.Connection | asyncpg.Pool,
    room_id: int,
    *,
    author_id: int | None,
    author_kind: str,
    author_name: str | None,
    body: str,
    client_id: str | None = None,
    reply_to: int | None = None,
    meta: dict[str, Any] | None = None,
    attachments: tuple[Attachment, ...] | list[Attachment] | None = None,
) -> MessageRecord:
    """Insert with the room's next seq, in one statement (one round trip).

    The statement is atomic: on a duplicate ``(author_id, client_id)`` it raises
    ``asyncpg.UniqueViolationError`` and the seq increment is undone with it, so seqs stay
    gap-free. The caller then reads the stored message.
    """
    row = await conn.fetchrow(
        INSERT_ONE, room_id, author_id, author_kind, author_name, body, client_id, reply_to, meta or {},
        attachments_param(attachments),
    )
    if row is None:
        raise LookupError(f"room {room_id} does not exist")
    return to_record(row)


INSERT_MEMBER = (
    # an archived room takes no sends; the caller's slow path then says so (``archived``)
    "WITH s AS (UPDATE rooms r SET last_seq = r.last_seq + 1 WHERE r.id = $1 AND r.kind <> 'whatsapp'"
    "   AND r.archived_at IS NULL"
    "   AND EXISTS (SELECT 1 FROM room_members m WHERE m.room_id = $1 AND m.user_id = $2)"
    "   RETURNING r.last_seq, r.kind),"
    " ins AS (INSERT INTO messages (room_id, seq, author_id, author_kind, author_name, body, client_id, reply_to,"
    "  meta, attachments)"
    f"  SELECT $1, s.last_seq, $2, $3, $4, $5, $6, $7, '{{}}'::jsonb, $8::jsonb FROM s RETURNING {MSG_COLS}),"
    f"{ATTACH_CTE}"
    " SELECT ins.*, (SELECT kind FROM s) AS room_kind FROM ins"
)


async def insert_member_message(
    conn: asyncpg.Connection | asyncpg.Pool,
    room_id: int,
    *,
    author_id: int,
    author_kind: str,
    author_name: str | None,
    body: str,
    client_id: str | None,
    reply_to: int | None,
    attachments: tuple[Attachment, ...] | list[Attachment] | None = None,
) -> tuple[MessageRecord, str] | None:
    """Insert a member's message in one round trip; None when the author is not a member of a
    chat room (the caller then checks access the slow way). Same atomicity as ``insert_message``."""
    row = await conn.fetchrow(INSERT_MEMBER, room_id, author_id, author_kind, author_name, body, client_id, reply_to,
                              attachments_param(attachments))
    return None if row is None else (to_record(row), row["room_kind"])



async def get_message(conn: asyncpg.Connection | asyncpg.Pool, message_id: int) -> MessageRecord | None:
    row = await conn.fetchrow(f"SELECT {MSG_COLS} FROM messages WHERE id = $1", message_id)
    return None if row is None else to_record(row)


async def history(pool: asyncpg.Pool, room_id: int, before_seq: int | None, limit: int) -> tuple[list[MessageRecord], bool]:
    """The ``limit`` messages just before ``before_seq`` (or the latest), in ascending seq."""
    rows = await pool.fetch(
        f"SELECT {MSG_COLS} FROM messages WHERE room_id = $1 AND ($2::bigint IS NULL OR seq < $2)"
        " ORDER BY seq DESC LIMIT $3",
        room_id, before_seq, limit + 1,
    )
    has_more = len(rows) > limit
    return [to_record(r) for r in reversed(rows[:limit])], has_more


async def after(pool: asyncpg.Pool, room_id: int, after_seq: int, limit: int) -> list[MessageRecord]:
    rows = await pool.fetch(
        f"SELECT {MSG_COLS} FROM messages WHERE room_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        room_id, after_seq, limit,
    )
    return [to_record(r) for r in rows]


async def changed(pool: asyncpg.Pool, room_id: int, upto_seq: int, since: datetime, limit: int) -> list[MessageRecord]:
    """Messages up to ``upto_seq`` edited, deleted or reacted to at or after ``since``, in seq order."""
    rows = await pool.fetch(
        f"SELECT {MSG_COLS} FROM messages WHERE room_id = $1 AND seq <= $2"
        " AND (edited_at >= $3 OR deleted_at >= $3 OR reacted_at >= $3) ORDER BY seq LIMIT $4",
        room_id, upto_seq, since, limit,
    )
    return [to_record(r) for r in rows]


async def between(pool: asyncpg.Pool, room_id: int, after_seq: int, upto_seq: int) -> list[MessageRecord]:
    rows = await pool.fetch(
        f"SELECT {MSG_COLS} FROM messages WHERE room_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq",
        room_id, after_seq, upto_seq,
    )
    return [to_record(r) for r in rows]



async def edit_message(conn: asyncpg.Connection | asyncpg.Pool, message_id: int, body: str) -> MessageRecord | None:
    row = await conn.fetchrow(
        f"UPDATE messages SET body = $2, edited_at = now() WHERE id = $1 AND deleted_at IS NULL RETURNING {MSG_COLS}",
        message_id, body,
    )
    return None if row is None else to_record(row)


DELETE_ONE = (
    "WITH d AS (UPDATE messages SET deleted_at = coalesce(deleted_at, now()), body = '' WHERE id = $1"
    f"  RETURNING {MSG_COLS}),"
    # the files go in the same statement: their URLs stop working at once (no row, 404) and
    # the sweep deletes the bytes from the trash
    " gone AS (DELETE FROM files f USING message_attachments a WHERE a.message_id = $1 AND a.file_id = f.id"
    "  RETURNING f.id),"
    " t AS (INSERT INTO file_trash (id) SELECT id FROM gone ON CONFLICT DO NOTHING)"
    " SELECT * FROM d"
)


async def delete_message(conn: asyncpg.Connection | asyncpg.Pool, message_id: int) -> MessageRecord | None:
    row = await conn.fetchrow(DELETE_ONE, message_id)
    return None if row is None else to_record(row)
