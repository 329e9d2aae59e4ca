"""Messages that left PostgreSQL for the archive (schema/0021).

The relay's delete leaves one ``archived_messages`` row per message (room, seq, author, dates):
enough to check who may still delete the message and to tell clients it is gone, without asking
chat-archive. With ``ARCHIVE_TTL_DAYS`` set, the file sweep forgets rows past it, as chat-archive
drops the messages themselves. Deleting an archived message marks that row, trashes its files
and writes a tombstone into ``archive_outbox`` in one transaction; the relay carries it to
chat-archive.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from chatcore.events import MessageRecord, archive_tombstone

ARCHIVED_COLS = "id, room_id, seq, author_id, author_kind, author_name, created_at, edited_at, deleted_at"


def to_record(row: asyncpg.Record) -> MessageRecord:
    """What chat-server can say of an archived message: no text (the archive holds it)."""
    return MessageRecord(id=row["id"], room_id=row["room_id"], seq=row["seq"], author_id=row["author_id"],
                         author_kind=row["author_kind"], author_name=row["author_name"], body="",
                         created_at=row["created_at"], edited_at=row["edited_at"], deleted_at=row["deleted_at"])


async def get_archived(conn: asyncpg.Connection | asyncpg.Pool, message_id: int) -> MessageRecord | None:
    row = await conn.fetchrow(f"SELECT {ARCHIVED_COLS} FROM archived_messages WHERE id = $1", message_id)
    return None if row is None else to_record(row)


# the files go with the message, as for a hot delete (storage/messages.py DELETE_ONE): their
# attachment rows outlive the relay's delete, having no foreign key to messages
TRASH_FILES = (
    "WITH gone AS (DELETE FROM files f USING message_attachments a WHERE a.message_id = $1 AND a.file_id = f.id"
    "  RETURNING f.id)"
    " INSERT INTO file_trash (id) SELECT id FROM gone ON CONFLICT DO NOTHING"
)


async def delete_archived(conn: asyncpg.Connection, message_id: int) -> MessageRecord | None:
    """Mark an archived message deleted and queue its tombstone; None when it is not archived
    or already deleted. The tombstone's version comes from the sequence every change of a hot
    row draws from, so it is above any version the archive holds for the message. ``conn`` is
    in the caller's transaction: the mark, the tombstone and the files' trash commit together."""
    row = await conn.fetchrow(
        "UPDATE archived_messages SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL"
        f" RETURNING {ARCHIVED_COLS}, nextval('message_version_seq') AS version", message_id)
    if row is None:
        return None
    deleted_at: datetime = row["deleted_at"]
    await conn.execute(
        "INSERT INTO archive_outbox (message_id, room_id, record) VALUES ($1, $2, $3::jsonb)",
        message_id, row["room_id"], archive_tombstone(message_id, row["room_id"], row["version"], deleted_at))
    await conn.execute(TRASH_FILES, message_id)
    return to_record(row)


PRUNE = (
    "DELETE FROM archived_messages WHERE id IN (SELECT id FROM archived_messages"
    " WHERE created_at < now() - make_interval(secs => $1) ORDER BY created_at LIMIT $2)"
)


async def prune_expired(pool: asyncpg.Pool, older_than_s: float, batch: int = 1000, batches: int = 20) -> int:
    """Forget archived messages past archive retention (``ARCHIVE_TTL_DAYS``, by ``created_at``
    as chat-archive drops them): at most ``batches`` statements of ``batch`` rows, so one call
    stays short; the next call takes the rest. The number of rows deleted."""
    done = 0
    for _ in range(batches):
        status = await pool.execute(PRUNE, older_than_s, batch)
        n = int(status.split()[-1])
        done += n
        if n < batch:
            break
    return done
