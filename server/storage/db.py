"""Connection pool and schema migrations."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import asyncpg

log = logging.getLogger(__name__)

MIGRATION_LOCK = 7_240_001  # advisory lock id: one node migrates at a time


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release without asyncpg's reset query (advisory unlock all, CLOSE ALL, UNLISTEN, RESET ALL):
    it is a second round trip for every pooled query. Nothing here changes session state; the
    two users of advisory locks (migrations, the relay leader) unlock in ``finally``."""


async def create_pool(dsn: str, *, timeout_s: float, min_size: int = 2, max_size: int = 20) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        command_timeout=timeout_s,
        timeout=timeout_s,  # connect timeout
        init=_init_connection,
        reset=_keep_session,
    )
    assert pool is not None
    return pool


def _schema_files() -> list[tuple[int, str, str]]:
    files = []
    for entry in (Path(__file__).parent / "schema").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            files.append((int(name[:4]), name, entry.read_text()))
    return sorted(files)


async def migrate(pool: asyncpg.Pool) -> list[str]:
    """Apply the numbered schema files not applied yet, under an advisory lock."""
    applied: list[str] = []
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for version, name, sql in _schema_files():
                if version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name
                    )
                applied.append(name)
                log.info("applied schema %s", name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
    return applied


async def probe(dsn: str, *, timeout_s: float) -> None:
    """Open a new connection, run one query, close it: raises unless PostgreSQL accepts new
    connections now. The pool cannot tell: its idle connections outlive a server that has
    stopped accepting (a full ``max_connections``, a database closed to connections)."""
    conn = await asyncpg.connect(dsn, timeout=timeout_s, command_timeout=timeout_s)
    try:
        await conn.fetchval("SELECT 1")
    finally:
        await conn.close(timeout=timeout_s)
