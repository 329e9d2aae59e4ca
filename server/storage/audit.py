"""The audit log (``audit_log``): who did what to which target, written in the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

AUDIT_COLS = "id, actor_id, action, target_type, target_id, meta, created_at"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    actor_id: int | None
    action: str
    target_type: str
    target_id: int | None
    meta: dict[str, Any]
    created_at: datetime


async def insert_entry(conn: asyncpg.Connection | asyncpg.Pool, actor_id: int | None, action: str, target_type: str,
                       target_id: int | None, meta: dict[str, Any]) -> int:
    return int(await conn.fetchval(
        "INSERT INTO audit_log (actor_id, action, target_type, target_id, meta) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        actor_id, action, target_type, target_id, meta,
    ))


async def entries(conn: asyncpg.Connection | asyncpg.Pool, action: str | None = None, limit: int = 100) -> list[AuditEntry]:
    """The newest entries first, of one action or all."""
    rows = await conn.fetch(
        f"SELECT {AUDIT_COLS} FROM audit_log WHERE $1::text IS NULL OR action = $1 ORDER BY id DESC LIMIT $2",
        action, limit,
    )
    return [AuditEntry(**dict(r)) for r in rows]
