"""Mentions: resolving ``@username`` tokens to room members, storing who a message mentions,
and the per-room notification setting (``schema/0013``).

The unread mention count of a room is the user's ``mentions`` rows above their read cursor
(``rooms.rooms_for_user`` counts them; ``mark_read`` deletes the rows the read cursor passed
and counts the rest).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from chatcore.events import MessageRecord

from .messages import MSG_COLS, to_record

MENTION_COUNT_CAP = 1000  # like the unread count: "1000+" rather than scanning a backlog
NOTIFY_LEVELS = ("all", "mentions", "none")


@dataclass(frozen=True, slots=True)
class Resolved:
    """What one query says about a message's ``@`` tokens in its room."""

    named: dict[str, int]  # lower-case username -> member id, for the usernames that are members
    sender_role: str | None  # the sender's room role (owner, admin, member); None: not a member


async def resolve(conn: asyncpg.Connection | asyncpg.Pool, room_id: int, sender_id: int,
                  usernames: list[str]) -> Resolved:
    """The members of ``room_id`` whose usernames (compared lower-case) are in ``usernames``,
    and the sender's role there, in one round trip."""
    rows = await conn.fetch(
        "SELECT u.id, lower(u.username) AS name, m.role FROM room_members m JOIN users u ON u.id = m.user_id"
        " WHERE m.room_id = $1 AND (lower(u.username) = ANY($2::text[]) OR m.user_id = $3)",
        room_id, usernames, sender_id,
    )
    named = {r["name"]: r["id"] for r in rows if r["name"] in usernames}
    role = next((r["role"] for r in rows if r["id"] == sender_id), None)
    return Resolved(named, role)


STORE = (
    "WITH upd AS (UPDATE messages SET meta = meta || $4::jsonb WHERE id = $1 AND deleted_at IS NULL"
    f"  RETURNING {MSG_COLS}),"
    " ins AS (INSERT INTO mentions (room_id, user_id, seq, message_id)"
    "  SELECT $2, m.user_id, $3, $1 FROM room_members m JOIN users u ON u.id = m.user_id"
    # people only: the assistant and contacts read nothing, their rows would never go
    "  WHERE m.room_id = $2 AND m.user_id <> $5 AND u.kind = 'human' AND ($7 OR m.user_id = ANY($6::bigint[]))"
    "  ON CONFLICT DO NOTHING RETURNING user_id)"
    " SELECT upd.*, (SELECT coalesce(array_agg(i.user_id), '{}') FROM ins i JOIN room_members m"
    "   ON m.room_id = $2 AND m.user_id = i.user_id WHERE m.notify <> 'none') AS push FROM upd"
)


async def store(conn: asyncpg.Connection | asyncpg.Pool, msg: MessageRecord, meta: dict[str, Any],
                targets: list[int], everyone: bool) -> tuple[MessageRecord, list[int]] | None:
    """Add ``meta`` to the stored message and a mention row for each of ``targets`` (every
    member but the author with ``everyone``), in one statement. Returns the updated record and
    the users to tell now (those not muting the room); None when the message is gone."""
    assert msg.author_id is not None
    row = await conn.fetchrow(STORE, msg.id, msg.room_id, msg.seq, meta, msg.author_id, targets, everyone)
    if row is None:
        return None
    return to_record(row), list(row["push"])


async def set_notify(conn: asyncpg.Connection | asyncpg.Pool, room_id: int, user_id: int, notify: str) -> bool:
    """Store the member's setting; False when ``user_id`` is not a member of the room."""
    status = await conn.execute(
        "UPDATE room_members SET notify = $3 WHERE room_id = $1 AND user_id = $2", room_id, user_id, notify
    )
    return status.endswith(" 1")


async def counts(conn: asyncpg.Connection | asyncpg.Pool, room_id: int, user_id: int) -> tuple[int, str] | None:
    """The member's unread mentions (capped) and notify setting; None for a non-member."""
    row = await conn.fetchrow(
        "SELECT m.notify, (SELECT count(*) FROM (SELECT 1 FROM mentions x WHERE x.room_id = m.room_id"
        f"  AND x.user_id = m.user_id AND x.seq > m.last_read_seq LIMIT {MENTION_COUNT_CAP}) c) AS n"
        " FROM room_members m WHERE m.room_id = $1 AND m.user_id = $2",
        room_id, user_id,
    )
    return None if row is None else (int(row["n"]), str(row["notify"]))


async def mark_read(conn: asyncpg.Connection | asyncpg.Pool, room_id: int, user_id: int, cursor: int) -> int:
    """Forget the member's mentions at or below ``cursor`` (read); the unread ones left (capped)."""
    return int(await conn.fetchval(
        "WITH d AS (DELETE FROM mentions WHERE room_id = $1 AND user_id = $2 AND seq <= $3)"
        " SELECT count(*) FROM (SELECT 1 FROM mentions x WHERE x.room_id = $1 AND x.user_id = $2 AND x.seq > $3"
        f"  LIMIT {MENTION_COUNT_CAP}) c",
        room_id, user_id, cursor,
    ))
