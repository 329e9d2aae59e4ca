"""The audit log (``audit_log``): who did what to which target, written in the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg


async def insert_entry(conn: asyncpg.Connection | asyncpg.Pool, actor_id: int | None, action: str, target_type: str,
                       target_id: int | None, meta: dict[str, Any]) -> int:
    return int(await conn.fetchval(
        "INSERT INTO audit_log (actor_id, action, target_type, target_id, meta) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        actor_id, action, target_type, target_id, meta,
    ))


async def list_entries(conn: asyncpg.Connection | asyncpg.Pool, *, actor_id: int | None, action: str | None,
                       target_type: str | None, since: datetime | None, before: datetime | None,
                       before_id: int | None, limit: int) -> list[asyncpg.Record]:
    """Newest first (by id), with the actor's names; ``before_id`` is the page cursor."""
    return list(await conn.fetch(
        "SELECT a.id, a.actor_id, u.username AS actor_username, u.display_name AS actor_display_name, a.action,"
        " a.target_type, a.target_id, a.meta, a.created_at"
        " FROM audit_log a LEFT JOIN users u ON u.id = a.actor_id"
        " WHERE ($1::bigint IS NULL OR a.actor_id = $1) AND ($2::text IS NULL OR a.action = $2)"
        " AND ($3::text IS NULL OR a.target_type = $3) AND ($4::timestamptz IS NULL OR a.created_at >= $4)"
        " AND ($5::timestamptz IS NULL OR a.created_at < $5) AND ($6::bigint IS NULL OR a.id < $6)"
        " ORDER BY a.id DESC LIMIT $7",
        actor_id, action, target_type, since, before, before_id, limit,
    ))
