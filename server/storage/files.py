"""Uploads (``files``), their attachment to messages, and the trash of bytes to delete.

Attaching happens in the message's insert statement (``storage/messages.py``,
``storage/batcher.py``): see ``schema/0009_files.sql`` for the constraints that make it
atomic. Everything that ends a file moves its id into ``file_trash`` in the same statement as
the row's deletion; the sweep (``server/files/service.py``) deletes the bytes, then the trash row.

An upload that is a user's picture (``users.avatar_file_id``) is in use like an attached one:
the orphan sweep keeps it; replacing or removing the picture trashes it (``trash_avatar``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from chatcore.events import Attachment

ATTACHMENT_PKEY = "message_attachments_pkey"  # the upload is attached to a message already


@dataclass(frozen=True, slots=True)
class FileRow:
    id: str
    owner_id: int | None  # None: media a WhatsApp contact sent (contacts have no user row)
    name: str
    mime: str
    size: int
    width: int | None
    height: int | None
    created_at: datetime
    message_id: int | None  # the message it is attached to, if any

    def attachment(self) -> Attachment:
        return Attachment(self.id, self.name, self.mime, self.size, self.width, self.height)


_COLS = "f.id, f.owner_id, f.name, f.mime, f.size, f.width, f.height, f.created_at, a.message_id"


def _row(r: asyncpg.Record) -> FileRow:
    return FileRow(r["id"], r["owner_id"], r["name"], r["mime"], r["size"], r["width"], r["height"],
                   r["created_at"], r["message_id"])


async def insert_file(pool: asyncpg.Pool, a: Attachment, owner_id: int) -> FileRow:
    row = await pool.fetchrow(
        "INSERT INTO files (id, owner_id, name, mime, size, width, height) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " RETURNING id, owner_id, name, mime, size, width, height, created_at, NULL::bigint AS message_id",
        a.id, owner_id, a.name, a.mime, a.size, a.width, a.height,
    )
    assert row is not None
    return _row(row)


async def get_files(pool: asyncpg.Pool, ids: list[str]) -> dict[str, FileRow]:
    rows = await pool.fetch(
        f"SELECT {_COLS} FROM files f LEFT JOIN message_attachments a ON a.file_id = f.id WHERE f.id = ANY($1::text[])",
        ids,
    )
    return {r["id"]: _row(r) for r in rows}


async def get_servable(pool: asyncpg.Pool, file_id: str) -> tuple[FileRow, datetime | None] | None:
    """The file and the deletion time of the message holding it (None: not deleted, not
    attached, or the message has moved to the archive)."""
    row = await pool.fetchrow(
        f"SELECT {_COLS}, m.deleted_at FROM files f LEFT JOIN message_attachments a ON a.file_id = f.id"
        " LEFT JOIN messages m ON m.id = a.message_id WHERE f.id = $1",
        file_id,
    )
    return None if row is None else (_row(row), row["deleted_at"])


# Each of these moves what it deletes into the trash in the same statement: a crash between the
# row's deletion and the bytes' leaves the id in the trash, never bytes nobody knows about.

TRASH_ORPHANS = (
    "WITH gone AS (DELETE FROM files f WHERE f.created_at < now() - make_interval(secs => $1)"
    "  AND NOT EXISTS (SELECT 1 FROM message_attachments a WHERE a.file_id = f.id)"
    "  AND NOT EXISTS (SELECT 1 FROM users u WHERE u.avatar_file_id = f.id)"
    "  AND f.id IN (SELECT id FROM files WHERE created_at < now() - make_interval(secs => $1)"
    "   ORDER BY created_at LIMIT $2) RETURNING f.id)"
    " INSERT INTO file_trash (id) SELECT id FROM gone ON CONFLICT DO NOTHING"
)

TRASH_OF_DELETED = (
    "WITH gone AS (DELETE FROM files f USING message_attachments a, messages m"
    "  WHERE a.file_id = f.id AND m.id = a.message_id AND m.deleted_at IS NOT NULL RETURNING f.id)"
    " INSERT INTO file_trash (id) SELECT id FROM gone ON CONFLICT DO NOTHING"
)

TRASH_EXPIRED = (
    "WITH gone AS (DELETE FROM files f USING message_attachments a"
    "  WHERE a.file_id = f.id AND a.attached_at < now() - make_interval(secs => $1)"
    "  AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = a.message_id) RETURNING f.id)"
    " INSERT INTO file_trash (id) SELECT id FROM gone ON CONFLICT DO NOTHING"
)


async def trash_orphans(pool: asyncpg.Pool, older_than_s: float, limit: int = 500) -> int:
    """Uploads neither attached to a message nor a user's picture within ``older_than_s``."""
    status = await pool.execute(TRASH_ORPHANS, older_than_s, limit)
    return int(status.split()[-1])


async def trash_of_deleted_messages(pool: asyncpg.Pool) -> int:
    """Files of deleted messages that ``delete_message`` did not already trash (none in
    practice; a net for rows written before it did)."""
    status = await pool.execute(TRASH_OF_DELETED)
    return int(status.split()[-1])


async def trash_expired(pool: asyncpg.Pool, older_than_s: float) -> int:
    """Files of messages that left PostgreSQL for the archive and are past archive retention."""
    status = await pool.execute(TRASH_EXPIRED, older_than_s)
    return int(status.split()[-1])


async def trash_batch(pool: asyncpg.Pool, limit: int = 200) -> list[str]:
    return [r["id"] for r in await pool.fetch("SELECT id FROM file_trash ORDER BY trashed_at LIMIT $1", limit)]


async def forget_trashed(pool: asyncpg.Pool, ids: list[str]) -> None:
    await pool.execute("DELETE FROM file_trash WHERE id = ANY($1::text[])", ids)


async def trash_now(pool: asyncpg.Pool, file_id: str) -> None:
    """An upload whose row could not be completed (the insert failed after the bytes were stored)."""
    await pool.execute("INSERT INTO file_trash (id) VALUES ($1) ON CONFLICT DO NOTHING", file_id)


async def lock_upload(conn: asyncpg.Connection, file_id: str) -> FileRow | None:
    """The upload, its row locked until the transaction ends: the orphan sweep's delete of it
    waits, then re-checks, so it cannot remove an upload being made someone's picture."""
    row = await conn.fetchrow(
        f"SELECT {_COLS} FROM files f LEFT JOIN message_attachments a ON a.file_id = f.id WHERE f.id = $1"
        " FOR UPDATE OF f",
        file_id,
    )
    return None if row is None else _row(row)


async def trash_avatar(conn: asyncpg.Connection | asyncpg.Pool, file_id: str) -> None:
    """A picture that was replaced or removed: its row goes and its id into the trash, unless it
    is (still) in use elsewhere: attached to a message (the message keeps it) or another
    user's picture (never, as pictures are the owner's own uploads; checked all the same)."""
    await conn.execute(
        "WITH gone AS (DELETE FROM files f WHERE f.id = $1"
        "  AND NOT EXISTS (SELECT 1 FROM message_attachments a WHERE a.file_id = f.id)"
        "  AND NOT EXISTS (SELECT 1 FROM users u WHERE u.avatar_file_id = f.id) RETURNING f.id)"
        " INSERT INTO file_trash (id) SELECT id FROM gone ON CONFLICT DO NOTHING",
        file_id,
    )
