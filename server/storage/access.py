"""The facts the shared access rule (``chatcore.access``) needs about many rooms at once."""

from __future__ import annotations

import asyncpg

from chatcore.access import RoomFacts

from .queues import VISIBLE_SQL

# a WhatsApp room's conversation is visible to the user through queues (true for other rooms)
IN_QUEUES_SQL = f"COALESCE((SELECT {VISIBLE_SQL.format(uid='$2')} FROM wa_contacts c WHERE c.room_id = r.id), true)"


async def room_facts(conn: asyncpg.Connection | asyncpg.Pool, room_ids: list[int], user_id: int) -> list[RoomFacts]:
    """Kind and membership of ``user_id`` for each existing room of ``room_ids``, in one round trip."""
    rows = await conn.fetch(
        "SELECT r.id, r.kind, EXISTS (SELECT 1 FROM room_members m WHERE m.room_id = r.id AND m.user_id = $2) AS member,"
        f" {IN_QUEUES_SQL} AS in_queues FROM rooms r WHERE r.id = ANY($1::bigint[]) ORDER BY r.id",
        room_ids, user_id,
    )
    return [RoomFacts(int(r["id"]), str(r["kind"]), bool(r["member"]), bool(r["in_queues"])) for r in rows]
