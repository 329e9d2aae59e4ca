"""Emoji reactions: ``message_reactions`` rows and the summary kept on the message row.

A change runs in one transaction that first locks the message row (``FOR NO KEY UPDATE``), so
the changes to one message serialise: the distinct-emoji cap is exact under concurrency, and
the summary written last (``messages.reactions``, recomputed from the rows by the same
transaction) always matches the rows. ``messages.reacted_at`` is stamped by every change, so
``sync`` with ``changed_since`` finds a reaction change as it finds an edit.

The summary names the first ``REACTION_USER_IDS_MAX`` users per emoji in the order they
reacted (ties, within one transaction's ``now()``, by user id).
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from chatcore.events import REACTION_USER_IDS_MAX, MessageRecord

from .messages import MSG_COLS, to_record


@dataclass(frozen=True, slots=True)
class ReactOutcome:
    """What a change did. ``message`` is None when the message does not exist (or was deleted);
    ``capped`` when adding a new emoji would pass the cap (nothing changed)."""

    message: MessageRecord | None
    changed: bool = False
    capped: bool = False
    mine: tuple[str, ...] = ()


RESUMMARISE = (
    "UPDATE messages SET reacted_at = now(), reactions = coalesce(("
    "  SELECT jsonb_agg(jsonb_build_object('emoji', g.emoji, 'count', g.n, 'user_ids', g.ids)"
    "   ORDER BY g.first, g.emoji)"
    "  FROM (SELECT emoji, count(*) AS n, min(created_at) AS first,"
    f"    (array_agg(user_id ORDER BY created_at, user_id))[1:{REACTION_USER_IDS_MAX}] AS ids"
    "   FROM message_reactions WHERE message_id = $1 GROUP BY emoji) g), '[]'::jsonb)"
    f" WHERE id = $1 RETURNING {MSG_COLS}"
)


async def _mine(conn: asyncpg.Connection, message_id: int, user_id: int) -> tuple[str, ...]:
    rows = await conn.fetch(
        "SELECT emoji FROM message_reactions WHERE message_id = $1 AND user_id = $2 ORDER BY created_at, emoji",
        message_id, user_id,
    )
    return tuple(r["emoji"] for r in rows)


async def set_reaction(pool: asyncpg.Pool, message_id: int, user_id: int, emoji: str, on: bool,
                       *, max_distinct: int) -> ReactOutcome:
    """Add (``on``) or remove ``user_id``'s ``emoji`` on a message; idempotent. A message may
    carry at most ``max_distinct`` different emojis; adding another one is refused (``capped``)."""
    async with pool.acquire() as conn, conn.transaction():
        locked = await conn.fetchrow(
            f"SELECT {MSG_COLS} FROM messages WHERE id = $1 AND deleted_at IS NULL FOR NO KEY UPDATE", message_id
        )
        if locked is None:
            return ReactOutcome(None)
        if on:
            present = await conn.fetchrow(
                "SELECT count(DISTINCT emoji) AS n, bool_or(emoji = $2) AS has,"
                "  bool_or(emoji = $2 AND user_id = $3) AS mine"
                " FROM message_reactions WHERE message_id = $1",
                message_id, emoji, user_id,
            )
            if present["mine"]:
                return ReactOutcome(to_record(locked), mine=await _mine(conn, message_id, user_id))
            if not present["has"] and present["n"] >= max_distinct:
                return ReactOutcome(to_record(locked), capped=True, mine=await _mine(conn, message_id, user_id))
            await conn.execute(
                "INSERT INTO message_reactions (message_id, user_id, emoji) VALUES ($1, $2, $3)",
                message_id, user_id, emoji,
            )
        else:
            gone = await conn.fetchval(
                "DELETE FROM message_reactions WHERE message_id = $1 AND user_id = $2 AND emoji = $3 RETURNING 1",
                message_id, user_id, emoji,
            )
            if gone is None:
                return ReactOutcome(to_record(locked), mine=await _mine(conn, message_id, user_id))
        row = await conn.fetchrow(RESUMMARISE, message_id)
        return ReactOutcome(to_record(row), changed=True, mine=await _mine(conn, message_id, user_id))
