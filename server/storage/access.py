"""The facts the shared access rule (``chatcore.access``) needs about many rooms at once."""

from __future__ import annotations

import asyncpg

from chatcore.access import RoomFacts


async def room_facts(conn: asyncpg.Connection | asyncpg.Pool, room_ids: list[int], user_id: int) -> list[RoomFacts]:
    """Kind and membership of ``user_id`` for each existing room of ``room_ids``, in one round trip."""
    rows = await conn.fetch(
        "SELECT r.id, r.kind, EXISTS (SELECT 1 FROM room_members m WHERE m.room_id = r.id AND m.user_id = $2) AS member"
        " FROM rooms r WHERE r.id = ANY($1::bigint[]) ORDER BY r.id",
        room_ids, user_id,
    )
    return [RoomFacts(int(r["id"]), str(r["kind"]), bool(r["member"])) for r in rows]
