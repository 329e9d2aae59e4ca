"""The audit log (``audit_log``): who did what to which target, written in the caller's transaction."""

from __future__ import annotations

from typing import Any

import asyncpg


async def insert_entry(conn: asyncpg.Connection | asyncpg.Pool, actor_id: int | None, action: str, target_type: str,
                       target_id: int | None, meta: dict[str, Any]) -> int:
    return int(await conn.fetchval(
        "INSERT INTO audit_log (actor_id, action, target_type, target_id, meta) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        actor_id, action, target_type, target_id, meta,
    ))
