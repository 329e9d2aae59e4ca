"""What ``/readyz`` checks: that PostgreSQL and Redis accept a NEW connection now.

A query through the pools proves less than it seems: an idle pooled connection keeps working
after its server stopped accepting new ones (Redis whose unix socket file was unlinked by a
second ``redis-server`` on the same path, PostgreSQL at ``max_connections`` or closed to
connections), while everything that connects afresh fails: the Socket.IO bus reconnecting, the
pools replacing a connection. So each probe opens its own connection with the configured URL
and options, asks one trivial thing and closes it, all within ``READY_TIMEOUT_S``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis

from .storage import db

if TYPE_CHECKING:
    from .context import Services

READY_TIMEOUT_S = 2.0  # per dependency; the probes run side by side


async def _probe_redis(client: aioredis.Redis) -> None:
    # a connection made by the pool's factory (same URL, credentials, TLS) but never given to it
    conn = client.connection_pool.make_connection()
    try:
        await conn.connect()
        await conn.send_command("PING")
        if await conn.read_response() not in (b"PONG", "PONG"):
            raise ConnectionError("Redis did not answer PING with PONG")
    finally:
        await conn.disconnect()


async def _outcome(probe: Awaitable[None]) -> str:
    try:
        await asyncio.wait_for(probe, READY_TIMEOUT_S)
    except Exception as exc:
        return f"down: {type(exc).__name__}"
    return "ok"


async def check_dependencies(svc: Services) -> dict[str, str]:
    """``{"postgres": "ok" | "down: <error>", "redis": ...}`` from fresh connections."""
    assert svc.config.database_url is not None
    postgres, redis = await asyncio.gather(
        _outcome(db.probe(svc.config.database_url, timeout_s=READY_TIMEOUT_S)),
        _outcome(_probe_redis(svc.redis)),
    )
    return {"postgres": postgres, "redis": redis}


async def wa_sessions_health(svc: Services) -> dict[str, Any] | None:
    """Linked WhatsApp sessions for ``/readyz``: ``{"down": n, "by_state": {...}}``, or None
    without sessions (or when the count cannot be had in time: readiness is the probes' call)."""
    service = svc.extras.get("wa_sessions")
    if service is None:
        return None
    try:
        health: dict[str, Any] | None = await asyncio.wait_for(service.health(), READY_TIMEOUT_S)
    except Exception:
        return None
    return health
