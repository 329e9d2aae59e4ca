"""``/readyz`` tells the truth: a dependency that refuses NEW connections is reported down,
even while the node's pooled connections to it still work."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from server.context import SERVICES
from tests.services import PostgresService
from tests.services.base import wait_until
from tests.services.redis import _redis_server
from tests.support import ChatNode, ServerHarness


@pytest.fixture
def unix_redis() -> Iterator[Path]:
    """A private redis-server on a unix socket (the embedded default's transport); its path."""
    rdir = Path(tempfile.mkdtemp(prefix="chat-rdy-"))  # short: a unix socket path is capped at 107 bytes
    sock = rdir / "redis.sock"
    with open(rdir / "redis.log", "ab") as log:
        proc = subprocess.Popen([_redis_server(), "--port", "0", "--unixsocket", str(sock), "--dir", str(rdir),
                                 "--save", "", "--appendonly", "no"], stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        wait_until(sock.exists, 15, "redis", proc, rdir / "redis.log")
        yield sock
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(rdir, ignore_errors=True)


async def _ready(harness: ServerHarness, node: ChatNode) -> tuple[int, dict[str, Any]]:
    async with harness.http.get(node.base_url + "/readyz") as r:
        return r.status, await r.json()


async def test_readyz_reports_redis_down_when_new_connections_fail_though_pooled_ones_still_work(
        harness: ServerHarness, unix_redis: Path) -> None:
    node = await harness.start_node(redis_url=f"unix://{unix_redis}")
    assert await _ready(harness, node) == (200, {"status": "ready", "checks": {"postgres": "ok", "redis": "ok"}})

    await asyncio.to_thread(unix_redis.unlink)  # what a second redis-server on the same path did: no new connection gets in
    status, body = await _ready(harness, node)
    assert status == 503 and body["status"] == "not ready", body
    assert body["checks"]["redis"].startswith("down") and body["checks"]["postgres"] == "ok"
    assert node.app is not None
    assert await node.app[SERVICES].redis.ping()  # the pool's connection alone would have said "ok"


async def test_readyz_reports_postgres_down_when_it_refuses_new_connections_though_pooled_ones_still_work(
        harness: ServerHarness, pg_service: PostgresService) -> None:
    node = await harness.start_node()
    assert (await _ready(harness, node))[0] == 200
    database = harness.database_url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(pg_service.dsn)
    try:
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        status, body = await _ready(harness, node)
        assert status == 503 and body["checks"]["postgres"].startswith("down") and body["checks"]["redis"] == "ok", body
        assert node.app is not None
        assert await node.app[SERVICES].pool.fetchval("SELECT 1") == 1  # the pool alone would have said "ok"
    finally:
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        await admin.close()
    assert (await _ready(harness, node))[0] == 200
