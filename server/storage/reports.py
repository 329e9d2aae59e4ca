"""The desk's report figures, computed from the conversation timeline (``conversation_events``).

A **stay** is one life of a conversation as a ticket: it starts at an ``opened`` or
``reopened`` event and runs to the next one (a ``closed`` event inside it ends the work). Per
stay: its start, its first human reply (``first_response``), its first ``closed``, whether a
person took part (assigned, taken over, transferred to an agent, or replied), its queue (the
last one it was routed, queued or transferred to) and its agent (the last one it was assigned,
taken over by or transferred to; a transfer to a queue alone leaves it unassigned).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import asyncpg

DIMENSIONS = {"day": "day", "queue": "queue_id", "agent": "agent_id"}

# $1, $2: the stays' start window [from, to); $3: the time zone that days are counted in
_STAYS = """
WITH started AS (
    SELECT s.room_id, s.id AS start_id, s.created_at AS started,
           (SELECT min(n.id) FROM conversation_events n
             WHERE n.room_id = s.room_id AND n.id > s.id AND n.kind IN ('opened', 'reopened')) AS next_id
      FROM conversation_events s
     WHERE s.kind IN ('opened', 'reopened') AND s.created_at >= $1 AND s.created_at < $2
), stays AS (
    SELECT b.room_id, b.start_id, b.started, (b.started AT TIME ZONE $3)::date AS day,
           min(e.created_at) FILTER (WHERE e.kind = 'first_response') AS first_response_at,
           min(e.created_at) FILTER (WHERE e.kind = 'closed') AS closed_at,
           coalesce(bool_or(e.kind IN ('assigned', 'taken_over', 'first_response')
                            OR (e.kind = 'transferred' AND e.to_user_id IS NOT NULL)), false) AS human,
           (array_agg(e.queue_id ORDER BY e.id DESC)
              FILTER (WHERE e.queue_id IS NOT NULL AND e.kind IN ('routed', 'queued', 'transferred')))[1] AS queue_id,
           (array_agg(CASE WHEN e.kind = 'taken_over' THEN coalesce(e.to_user_id, e.actor_id) ELSE e.to_user_id END
                      ORDER BY e.id DESC)
              FILTER (WHERE e.kind IN ('assigned', 'taken_over', 'transferred')))[1] AS agent_id
      FROM started b
      JOIN conversation_events e
        ON e.room_id = b.room_id AND e.id >= b.start_id AND (b.next_id IS NULL OR e.id < b.next_id)
     GROUP BY b.room_id, b.start_id, b.started
)
"""


async def summary(conn: asyncpg.Connection | asyncpg.Pool, start: datetime, end: datetime, tz: str,
                  group_by: list[str]) -> list[asyncpg.Record]:
    """One row per group of ``group_by`` (names of ``DIMENSIONS``; empty: one row in all)."""
    dims = [DIMENSIONS[d] for d in group_by]  # whitelisted names only: never the caller's text
    select = "".join(f"{d}, " for d in dims)
    group = f"GROUP BY {', '.join(dims)} ORDER BY {', '.join(f'{d} NULLS LAST' for d in dims)}" if dims else ""
    return list(await conn.fetch(_STAYS + f"""
    SELECT {select}
           count(*) AS opened,
           count(closed_at) AS resolved,
           count(closed_at) FILTER (WHERE NOT human) AS resolved_by_ai,
           count(closed_at) FILTER (WHERE human) AS resolved_by_human,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM first_response_at - started)) AS frt_median,
           percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM first_response_at - started)) AS frt_p90,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM closed_at - started)) AS res_median,
           percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM closed_at - started)) AS res_p90
      FROM stays {group}
    """, start, end, tz))


async def names(conn: asyncpg.Connection | asyncpg.Pool, queue_ids: list[int],
                user_ids: list[int]) -> tuple[dict[int, str], dict[int, str]]:
    queues = await conn.fetch("SELECT id, name FROM queues WHERE id = ANY($1::bigint[])", queue_ids)
    users = await conn.fetch("SELECT id, display_name FROM users WHERE id = ANY($1::bigint[])", user_ids)
    return {r["id"]: r["name"] for r in queues}, {r["id"]: r["display_name"] for r in users}


async def stays(conn: asyncpg.Connection, start: datetime, end: datetime, tz: str,
                prefetch: int = 500) -> AsyncIterator[asyncpg.Record]:
    """Every stay of the window, oldest first, through a server-side cursor (``conn`` must be in
    a transaction): memory stays flat however long the window."""
    query = _STAYS + """
    SELECT s.room_id, s.day, s.started, s.first_response_at, s.closed_at, s.human,
           s.queue_id, q.name AS queue_name, s.agent_id, u.display_name AS agent_name, c.wa_id,
           COALESCE(NULLIF(p.name, ''), c.name) AS contact_name
      FROM stays s
      LEFT JOIN queues q ON q.id = s.queue_id
      LEFT JOIN users u ON u.id = s.agent_id
      LEFT JOIN wa_contacts c ON c.room_id = s.room_id
      LEFT JOIN contacts p ON p.id = c.contact_id  -- the contact's name as staff set it, as the inbox shows
     ORDER BY s.started, s.start_id
    """
    async for row in conn.cursor(query, start, end, tz, prefetch=prefetch):
        yield row
