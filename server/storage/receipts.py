"""Read cursors for read receipts (``room_members.last_read_seq``, which ``read`` moves).

``advance_read`` moves a member's cursor up (never down, never past the room's last seq) and
says whether it moved, in one statement whose ``WHERE`` is re-checked on the row's latest
version, so of two concurrent reads only one can report the same advance. It also returns
what decides whether the room has receipts: its kind and its member count, counted no
further than the given bound (a large room is not counted in full on every read).
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

ADVANCE = (
    "UPDATE room_members m SET last_read_seq = least($3, r.last_seq) FROM rooms r"
    " WHERE r.id = m.room_id AND m.room_id = $1 AND m.user_id = $2 AND m.last_read_seq < least($3, r.last_seq)"
    " RETURNING m.last_read_seq, r.kind,"
    "  (SELECT count(*) FROM (SELECT 1 FROM room_members x WHERE x.room_id = $1 LIMIT $4) c) AS members"
)


@dataclass(frozen=True, slots=True)
class ReadAdvance:
    cursor: int
    advanced: bool
    room_kind: str = ""
    members: int = 0  # at most the bound given to ``advance_read``


async def advance_read(pool: asyncpg.Pool, room_id: int, user_id: int, seq: int, count_upto: int) -> ReadAdvance | None:
    """The member's cursor after reading up to ``seq``; None when the user is not a member."""
    row = await pool.fetchrow(ADVANCE, room_id, user_id, seq, count_upto)
    if row is not None:
        return ReadAdvance(row["last_read_seq"], True, row["kind"], row["members"])
    cursor = await pool.fetchval(
        "SELECT last_read_seq FROM room_members WHERE room_id = $1 AND user_id = $2", room_id, user_id
    )
    return None if cursor is None else ReadAdvance(cursor, False)


async def read_cursors(pool: asyncpg.Pool, room_id: int) -> list[dict[str, int]]:
    rows = await pool.fetch(
        "SELECT user_id, last_read_seq FROM room_members WHERE room_id = $1 ORDER BY user_id", room_id
    )
    return [{"user_id": r["user_id"], "last_read_seq": r["last_read_seq"]} for r in rows]
