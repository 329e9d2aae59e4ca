"""The persisted path's references, on chat-server's own embedded PostgreSQL.

- ``prepare_ref_db``: a second database (``ref``) in the PostgreSQL that chat-server under test
  runs on, with chat-server's schema applied by its own migrations (the same tables, indexes
  and generated columns the send path writes), and a copy of the persist scenario's users,
  rooms and memberships (same ids, so chat-server's access tokens name the same users). The
  Node+pg reference (``bench/reference/node/server-pg.js``) and the database limit use it.
- ``db_limit``: the database's own limit on this machine: ``clients`` closed loops issuing
  chat-server's insert statements straight from asyncpg (no sockets, no JSON, no fan-out),
  either one ``INSERT_MEMBER`` per message on a pool of 20, or through ``SendBatcher`` (the
  same cross-room group commit chat-server uses). Its client runs on the load generator's
  CPU, so PostgreSQL has the server CPU to itself.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from pathlib import Path
from typing import Any

import asyncpg

from .loadgen.coordinator import tree_cpu_s
from .loadgen.stats import percentiles

POOL_SIZE = 20  # chat-server's pool (server/storage/db.py create_pool)


def pg_dir(data_dir: Path) -> Path:
    return data_dir / "postgres"


def pg_socket(data_dir: Path) -> tuple[str, int]:
    """(socket directory, port) of the embedded PostgreSQL, from its ``postmaster.pid``."""
    lines = (pg_dir(data_dir) / "postmaster.pid").read_text().splitlines()
    return lines[4].strip(), int(lines[3])


def dsn(data_dir: Path, database: str) -> str:
    sock, port = pg_socket(data_dir)
    return f"postgresql://postgres@/{database}?host={sock}&port={port}"


def postmaster_pid(data_dir: Path) -> int:
    return int((pg_dir(data_dir) / "postmaster.pid").read_text().split()[0])


async def _prepare(data_dir: Path, user_ids: list[int], room_ids: list[int]) -> None:
    from server.storage.db import create_pool, migrate

    admin = await asyncpg.connect(dsn(data_dir, "postgres"), timeout=10)
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = 'ref'"):
            await admin.execute("CREATE DATABASE ref")
    finally:
        await admin.close()
    src = await asyncpg.connect(dsn(data_dir, "chat"), timeout=10)
    pool = await create_pool(dsn(data_dir, "ref"), timeout_s=30, min_size=1, max_size=2)
    try:
        await migrate(pool)
        users = await src.fetch("SELECT id, username, display_name, role, kind, token_version FROM users"
                                " WHERE id = any($1::bigint[])", user_ids)
        rooms = await src.fetch("SELECT id, slug, name, kind, created_by, last_seq FROM rooms"
                                " WHERE id = any($1::bigint[])", room_ids)
        members = await src.fetch("SELECT room_id, user_id, role FROM room_members WHERE room_id = any($1::bigint[])",
                                  room_ids)
        async with pool.acquire() as conn:
            # COPY writes identity columns as given (like OVERRIDING SYSTEM VALUE): same ids
            await conn.copy_records_to_table("users", records=[tuple(r) for r in users],
                                             columns=["id", "username", "display_name", "role", "kind", "token_version"])
            await conn.copy_records_to_table("rooms", records=[tuple(r) for r in rooms],
                                             columns=["id", "slug", "name", "kind", "created_by", "last_seq"])
            await conn.copy_records_to_table("room_members", records=[tuple(r) for r in members],
                                             columns=["room_id", "user_id", "role"])
            await conn.execute("ANALYZE")
    finally:
        await src.close()
        await pool.close()


def prepare_ref_db(data_dir: Path, user_ids: list[int], room_ids: list[int]) -> None:
    asyncio.run(_prepare(data_dir, user_ids, room_ids))


async def _limit(url: str, pg_pid: int, pairs: list[tuple[int, int, str]], duration: float,
                 batched: bool) -> dict[str, Any]:
    from server.storage.batcher import SendBatcher
    from server.storage.db import create_pool
    from server.storage.messages import insert_member_message

    pool = await create_pool(url, timeout_s=10, min_size=POOL_SIZE, max_size=POOL_SIZE)
    batcher = SendBatcher(pool)
    samples: list[int] = []
    errors = 0
    stop = 0.0

    async def client(user_id: int, room_id: int, name: str) -> None:
        nonlocal errors
        while time.monotonic() < stop:
            fields = dict(author_id=user_id, author_kind="user", author_name=name,
                          body=f"t{time.time_ns()} persisted", client_id=f"lim-{time.time_ns()}-{user_id}",
                          reply_to=None, attachments=[])
            t = time.perf_counter_ns()
            try:
                if batched:
                    row = await batcher.insert_member_message(room_id, **fields)
                else:
                    row = await insert_member_message(pool, room_id, **fields)  # type: ignore[arg-type]
            except (asyncpg.PostgresError, TimeoutError, OSError):
                errors += 1
                continue
            if row is None:
                errors += 1
            else:
                samples.append(time.perf_counter_ns() - t)

    try:
        stop = time.monotonic() + 0.5  # warm the prepared statements
        await asyncio.gather(*(client(*p) for p in pairs))
        samples.clear()
        errors = 0
        c0, (u0, s0) = time.process_time(), tree_cpu_s([pg_pid])
        t0 = time.monotonic()
        stop = t0 + duration
        await asyncio.gather(*(client(*p) for p in pairs))
        elapsed = time.monotonic() - t0
        (u1, s1), c1 = tree_cpu_s([pg_pid]), time.process_time()
    finally:
        await batcher.close()
        await pool.close()
    return {"acks": len(samples), "acks_s": round(len(samples) / elapsed), "errors": errors,
            "clients": len(pairs), "batched": batched, "closed_loop": True,
            "delivered_ratio": 1.0 if samples else 0.0,
            "server_cpu": round((u1 - u0 + s1 - s0) / elapsed, 3), "loadgen_cpu": round((c1 - c0) / elapsed, 3),
            **percentiles(array("q", samples))}


def db_limit(data_dir: Path, pairs: list[tuple[int, int, str]], duration: float, batched: bool) -> dict[str, Any]:
    """One closed-loop step against the ``ref`` database: acks/s, latency, and the CPU of
    PostgreSQL (server cores) and of this client (loadgen cores) over the measured window."""
    return asyncio.run(_limit(dsn(data_dir, "ref"), postmaster_pid(data_dir), pairs, duration, batched))
