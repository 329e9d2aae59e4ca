"""Suite-wide fixtures: real PostgreSQL and Redis, a fresh database and Redis key prefix per
test, and helpers that run chat-server apps and connect real clients to them."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.services import PostgresService, RedisService
from tests.support import ChatNode, ServerHarness

_counter = itertools.count(1)


@pytest.fixture(scope="session")
def pg_service() -> Iterator[PostgresService]:
    pg = PostgresService().start()
    yield pg
    pg.cleanup()


@pytest.fixture(scope="session")
def redis_service() -> Iterator[RedisService]:
    r = RedisService().start()
    yield r
    r.cleanup()


@pytest.fixture(scope="session")
async def template_db(pg_service: PostgresService) -> str:
    """A database with the schema applied once; each test clones it (fast, isolated)."""
    from server.storage.db import create_pool, migrate

    conn = await asyncpg.connect(pg_service.dsn)
    await conn.execute("CREATE DATABASE chat_template")
    await conn.close()
    pool = await create_pool(pg_service.dsn_for("chat_template"), timeout_s=10, min_size=1, max_size=2)
    await migrate(pool)
    await pool.close()
    return "chat_template"


@pytest.fixture
async def database_url(pg_service: PostgresService, template_db: str) -> AsyncIterator[str]:
    name = f"t_{os.getpid()}_{next(_counter)}"
    conn = await asyncpg.connect(pg_service.dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE {template_db}')
    finally:
        await conn.close()
    yield pg_service.dsn_for(name)


@pytest.fixture
def redis_prefix() -> str:
    return f"t{os.getpid()}x{next(_counter)}:"


@pytest.fixture(scope="session")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from chatcore.tokens import generate_keypair

    d = tmp_path_factory.mktemp("keys")
    generate_keypair(d / "jwt.pem", d / "jwt.pub.pem")
    return d


@pytest.fixture
async def harness(database_url: str, redis_service: RedisService, redis_prefix: str, key_dir: Path, tmp_path: Path) -> AsyncIterator[ServerHarness]:
    h = ServerHarness(database_url, redis_service.url, redis_prefix, key_dir, tmp_path)
    yield h
    await h.close()


@pytest.fixture
async def node(harness: ServerHarness) -> ChatNode:
    """One chat-server app, in this process, on a free loopback port."""
    return await harness.start_node()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files marked ``heavy`` (minutes each) first, the rest in their usual order: scripts/test
    hands whole files to parallel workers in this order, and a long file handed out last would
    leave the run waiting on one worker."""
    items.sort(key=lambda item: item.get_closest_marker("heavy") is None)
