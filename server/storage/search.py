"""Full-text search over the hot ``messages`` table (schema ``0011_search.sql``).

Every message has a stored ``search_doc`` tsvector of ``chat_unaccent(body)`` under the text
search configuration ``chat_search`` (GIN index ``messages_search``). A query is
``websearch_to_tsquery('chat_search', chat_unaccent(q))`` (quotes, ``or``, ``-word``), matched
with ``@@`` in the rooms the caller may read, ranked by ``ts_rank_cd`` (scaled to an integer
score, so the keyset cursor compares exact values), ties by recency then id.

Highlighting: ``ts_headline`` runs on the folded text (``chat_unaccent``), where ``cafe`` and
``café`` are the same word, with private-use characters as markers (removed from the body
first, so a body cannot forge them); the action maps the fragments back onto the original
text by position (``chat_unaccent`` keeps one character for one).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from chatcore.access import RoomFacts
from chatcore.events import MessageRecord

from .access import IN_QUEUES_SQL
from .messages import MSG_COLS, to_record

CONFIG = "chat_search"
MARK_START, MARK_STOP, FRAGMENT_SEP = "\ue000", "\ue001", "\ue002"
MARKERS = MARK_START + MARK_STOP + FRAGMENT_SEP
# short chat messages come back whole (every match marked); long ones as two fragments around matches
WHOLE_MAX = 240  # characters
HEADLINE_OPTIONS = (f"StartSel={MARK_START}, StopSel={MARK_STOP}, FragmentDelimiter={FRAGMENT_SEP},"
                    " MaxFragments=2, MaxWords=30, MinWords=12, ShortWord=2")
SCORE_SCALE = 1_000_000  # ts_rank_cd is a float4; its score is kept to 6 decimals as a bigint

LANGUAGE_LOCK = 7_240_011  # advisory lock id: one node re-points the configuration at a time


@dataclass(frozen=True, slots=True)
class HotHit:
    message: MessageRecord
    score: int
    headline: str  # ts_headline over the folded text, with the markers
    folded: str  # chat_unaccent(body without marker characters): aligned with the original


@dataclass(frozen=True, slots=True)
class After:
    """The last hit of the previous page: the next page starts below it."""

    score: int
    created_at: datetime
    id: int


SEARCH_HOT = (
    f"WITH q AS (SELECT websearch_to_tsquery('{CONFIG}', chat_unaccent($1)) AS q),"
    " ranked AS ("
    f"  SELECT m.id, m.created_at, (ts_rank_cd(m.search_doc, q.q) * {SCORE_SCALE})::bigint AS score"
    "   FROM messages m, q"
    "   WHERE m.search_doc @@ q.q AND m.room_id = ANY($2::bigint[]) AND m.deleted_at IS NULL"
    "    AND ($3::bigint IS NULL OR m.author_id = $3)"
    "    AND ($4::timestamptz IS NULL OR m.created_at >= $4)"
    "    AND ($5::timestamptz IS NULL OR m.created_at < $5)),"
    " page AS ("
    "  SELECT * FROM ranked"
    "   WHERE $6::bigint IS NULL OR (score, created_at, id) < ($6, $7::timestamptz, $8::bigint)"
    "   ORDER BY score DESC, created_at DESC, id DESC LIMIT $9)"
    f" SELECT {', '.join('m.' + c.strip() for c in MSG_COLS.split(','))}, page.score,"
    f"  ts_headline('{CONFIG}', chat_unaccent(translate(m.body, '{MARKERS}', '')), q.q,"
    f"   CASE WHEN length(m.body) <= {WHOLE_MAX} THEN '{HEADLINE_OPTIONS}, HighlightAll=true'"
    f"   ELSE '{HEADLINE_OPTIONS}' END) AS headline,"
    f"  chat_unaccent(translate(m.body, '{MARKERS}', '')) AS folded"
    " FROM page JOIN messages m ON m.id = page.id, q"
    " ORDER BY page.score DESC, page.created_at DESC, page.id DESC"
)


async def search_hot(pool: asyncpg.Pool, q: str, room_ids: list[int], *, author_id: int | None,
                     since: datetime | None, before: datetime | None, after: After | None, limit: int) -> list[HotHit]:
    """At most ``limit`` hits of ``q`` in ``room_ids``, best first, below ``after``."""
    rows = await pool.fetch(
        SEARCH_HOT, q, room_ids, author_id, since, before,
        after.score if after else None, after.created_at if after else None, after.id if after else None, limit,
    )
    return [HotHit(to_record(r), int(r["score"]), r["headline"], r["folded"]) for r in rows]


async def searchable_rooms(pool: asyncpg.Pool, user_id: int) -> list[RoomFacts]:
    """The facts of every room the shared rule could let ``user_id`` read without the
    compliance permission: their own rooms, public rooms and WhatsApp rooms (the rule decides)."""
    rows = await pool.fetch(
        "SELECT r.id, r.kind, m.user_id IS NOT NULL AS member,"
        f" {IN_QUEUES_SQL.replace('$2', '$1')} AS in_queues FROM rooms r"
        " LEFT JOIN room_members m ON m.room_id = r.id AND m.user_id = $1"
        " WHERE m.user_id IS NOT NULL OR r.kind IN ('public', 'whatsapp')",
        user_id,
    )
    return [RoomFacts(int(r["id"]), str(r["kind"]), bool(r["member"]), bool(r["in_queues"])) for r in rows]


@dataclass(frozen=True, slots=True)
class RoomInfo:
    id: int
    name: str
    kind: str
    archived_upto_seq: int


async def rooms_info(pool: asyncpg.Pool, room_ids: list[int]) -> dict[int, RoomInfo]:
    rows = await pool.fetch("SELECT id, name, kind, archived_upto_seq FROM rooms WHERE id = ANY($1::bigint[])",
                            room_ids)
    return {int(r["id"]): RoomInfo(int(r["id"]), r["name"], r["kind"], int(r["archived_upto_seq"])) for r in rows}


async def any_archived(pool: asyncpg.Pool, room_ids: list[int]) -> bool:
    """Whether any of ``room_ids`` has messages in the archive."""
    return bool(await pool.fetchval(
        "SELECT EXISTS (SELECT 1 FROM rooms WHERE id = ANY($1::bigint[]) AND archived_upto_seq > 0)", room_ids))


async def apply_language(pool: asyncpg.Pool, language: str) -> bool:
    """Point ``chat_search`` at ``language``'s dictionaries; when that changes what it held,
    recompute every stored vector (a full rewrite of ``messages``: one time, at start).
    Returns whether it changed. Raises ``LookupError`` when PostgreSQL has no such configuration."""
    async with pool.acquire() as conn:
        current = await conn.fetchval("SELECT language FROM search_settings")
        if current == language:
            return False
        await conn.execute("SELECT pg_advisory_lock($1)", LANGUAGE_LOCK)
        try:
            async with conn.transaction():
                current = await conn.fetchval("SELECT language FROM search_settings FOR UPDATE")
                if current == language:
                    return False
                mappings = await conn.fetch(
                    "SELECT t.alias, array_agg(d.dictname::text ORDER BY m.mapseqno) AS dicts"
                    " FROM pg_ts_config c JOIN pg_namespace n ON n.oid = c.cfgnamespace"
                    " JOIN pg_ts_config_map m ON m.mapcfg = c.oid"
                    " JOIN ts_token_type('default') t ON t.tokid = m.maptokentype"
                    " JOIN pg_ts_dict d ON d.oid = m.mapdict"
                    " WHERE n.nspname = 'pg_catalog' AND c.cfgname = $1 GROUP BY t.alias", language)
                if not mappings:
                    raise LookupError(f"SEARCH_LANGUAGE: PostgreSQL has no text search configuration {language!r}")
                for row in mappings:
                    dicts = ", ".join(f'pg_catalog."{d}"' for d in row["dicts"])
                    await conn.execute(f'ALTER TEXT SEARCH CONFIGURATION {CONFIG} ALTER MAPPING FOR "{row["alias"]}"'
                                       f" WITH {dicts}")
                # a generated column is recomputed when its row is written
                await conn.execute("UPDATE messages SET body = body")
                await conn.execute("UPDATE search_settings SET language = $1", language)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", LANGUAGE_LOCK)
    return True
