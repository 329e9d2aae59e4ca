"""Kills that land while work is in flight (real processes, SIGKILL), counted by outcome.

Each kill is instrumented: the process is started with ``FAULT_PAUSE_AT`` and stops at the named
point (chatcore/faults.py); the test checks the state it describes there (the relay has sent a
batch and not deleted it; the consumer has written a batch and not committed it) and only then
kills it. The archive's write log (``ARCHIVE_WRITE_LOG``) says how each record was applied, so
a redelivery shows as ``duplicate`` and its count is bounded by what the kills left in flight.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import asyncpg
import pytest

from server.relay.relay import RELAY_LOCK
from server.storage.db import create_pool
from tests.archive.conftest import ArchiveEnv, RunningArchive, seed_messages
from tests.archive.faults import (
    BATCH,
    committed,
    kill,
    paused,
    spawn_archive,
    stop,
    stored_ids,
    until_consumed,
    write_log,
)
from tests.archive.test_relay_and_consumer import _relay, _wait_count
from tests.support import ServerHarness

pytestmark = pytest.mark.heavy


def _relay_env(env: ArchiveEnv, pause: str | None = None, batch: int = 500) -> dict[str, str]:
    out = {"KAFKA_BOOTSTRAP_SERVERS": env.kafka.bootstrap, "ARCHIVE_TOPIC": env.topic, "HOT_RETENTION": "60s",
           "RELAY_INTERVAL": "100ms", "RELAY_BATCH_SIZE": str(batch)}
    if pause:
        out["FAULT_PAUSE_AT"] = pause
    return out


async def _until_hot_rows(pool: asyncpg.Pool, n: int, timeout: float = 120) -> int:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (left := await pool.fetchval("SELECT count(*) FROM messages")) > n and loop.time() < deadline:
        await asyncio.sleep(0.1)
    return int(left)


def _exact_unless_retaken(archive: RunningArchive, outcomes: Counter[str], total: int) -> None:
    """Each message inserted once: exactly, unless the consumer took a batch again after a store
    timeout, which turns what that batch had written into duplicates (at most a batch each)."""
    from archive.app import CONSUMER

    retakes = archive.app[CONSUMER].shrunk
    assert total - retakes * BATCH <= outcomes["inserted"] <= total
    if retakes == 0:
        assert outcomes["inserted"] == total


@pytest.mark.timeout(300)  # five lives of chat-archive, each rejoining the group after the killed one
async def test_consumer_killed_with_a_written_uncommitted_batch_stores_each_message_once(
        database_url: str, archive_env: ArchiveEnv, tmp_path: Path) -> None:
    total = await seed_messages(database_url, rooms=5, per_room=1000, age_s=3600)
    pool = await create_pool(database_url, timeout_s=10, min_size=1, max_size=4)
    # the relay's default send bound: this file runs beside other workers, where a first send that
    # also creates the topic took over the 3 s of the solo outage tests
    relay = _relay(pool, archive_env, batch_size=BATCH, send_timeout_s=10)
    kills, in_flight = 0, set[int]()
    proc = None
    try:
        while (await relay.run_once()) > 0:
            pass
        for life in range(5):
            file = tmp_path / f"consumer-{life}.json"
            proc = await asyncio.to_thread(spawn_archive, archive_env, tmp_path, f"consumer.written:{2 + life % 3}:{file}")
            state = await paused(file, proc)
            # at the kill: the batch is in MongoDB and its offsets are not committed
            ids = state["ids"]
            assert ids and await stored_ids(archive_env, ids) == len(set(ids))
            done = await committed(archive_env)
            assert all(done.get(p, 0) < end for p, end in state["commit"].items()), (done, state["commit"])
            in_flight.update(ids)
            kill(proc)
            kills += 1
        proc = await asyncio.to_thread(spawn_archive, archive_env, tmp_path)
        docs, distinct = await _wait_count(archive_env, total, timeout=120)
        await until_consumed(archive_env)
        log = await write_log(archive_env)
        stop(proc)
        print(f"consumer kills: {total} messages, {kills} SIGKILLs with {len(in_flight)} records written and not "
              f"committed, archive docs {docs} distinct {distinct}, write log {dict(log)}")
        assert docs == distinct == total
        # every message written as new exactly once; a batch that timed out in the store (a loaded
        # machine: logged as interrupted) is taken again, and what it had written counts as duplicate
        assert log["inserted"] == total or (log["interrupted"] and log["inserted"] < total)
        # what the kills left uncommitted came again (a later batch may hold records of an earlier
        # one, so the union is the floor), and at most one batch per kill or retake
        assert len(in_flight) <= log["duplicate"] <= (kills + log["interrupted"]) * BATCH
        assert log["updated"] == log["stale"] == 0
    finally:
        if proc is not None:
            stop(proc)
        await relay.close()
        await pool.close()


@pytest.mark.timeout(300)
async def test_relay_killed_with_a_sent_undeleted_batch_loses_nothing_and_resends_only_that_batch(
        harness: ServerHarness, database_url: str, archive_env: ArchiveEnv, archive_app: RunningArchive,
        tmp_path: Path) -> None:
    from archive.app import CONSUMER

    total = await seed_messages(database_url, rooms=5, per_room=1200, age_s=3600)
    pool = await create_pool(database_url, timeout_s=10, min_size=1, max_size=2)
    kills, resent = 0, 0
    try:
        for life in range(5):  # SIGKILL the whole chat-server while its relay holds a sent batch
            file = tmp_path / f"relay-{life}.json"
            node = await asyncio.to_thread(harness.spawn_node, **_relay_env(archive_env, f"relay.sent:{2 + life % 2}:{file}"))
            assert node.process is not None
            state = await paused(file, node.process)
            ids = state["ids"]
            # at the kill: every row of the batch is still in PostgreSQL, and the leader lock is held
            assert ids and await pool.fetchval("SELECT count(*) FROM messages WHERE id = ANY($1::bigint[])", ids) == len(ids)
            assert await pool.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = $1",
                                       RELAY_LOCK) == 1
            resent += len(ids)
            kill(node.process)
            kills += 1
        await asyncio.to_thread(harness.spawn_node, **_relay_env(archive_env))  # a last node finishes the job
        assert await _until_hot_rows(pool, 0) == 0
        docs, distinct = await _wait_count(archive_env, total, timeout=120)
        outcomes = archive_app.app[CONSUMER].outcomes
        for _ in range(100):
            if outcomes["inserted"] + outcomes["duplicate"] >= total + resent:
                break
            await asyncio.sleep(0.1)
        print(f"relay kills: {total} messages, {kills} SIGKILLs each with a sent, undeleted batch ({resent} records), "
              f"archive docs {docs} distinct {distinct}, outcomes {dict(outcomes)}")
        assert docs == distinct == total
        # every record of the topic counted once; exactly the batches the kills left undeleted were
        # sent twice, unless a batch timed out in the store (a loaded machine) and was taken again:
        # what it had written then counts as duplicate, not inserted
        assert outcomes["inserted"] + outcomes["duplicate"] == total + resent
        _exact_unless_retaken(archive_app, outcomes, total)
    finally:
        await pool.close()


async def test_relay_leader_in_one_process_excludes_the_relay_of_another_process(
        harness: ServerHarness, database_url: str, archive_env: ArchiveEnv, archive_app: RunningArchive,
        tmp_path: Path) -> None:
    from archive.app import CONSUMER

    total = await seed_messages(database_url, rooms=2, per_room=1000, age_s=3600)
    pool = await create_pool(database_url, timeout_s=10, min_size=1, max_size=2)
    try:
        file = tmp_path / "leader.json"
        leader = await asyncio.to_thread(harness.spawn_node, **_relay_env(archive_env, f"relay.sent:1:{file}"))
        assert leader.process is not None
        state = await paused(file, leader.process)
        held = len(state["ids"])
        other = await asyncio.to_thread(harness.spawn_node, **_relay_env(archive_env))
        assert other.process is not None
        # the other process polls every 100 ms; for 3 s it moves and sends nothing
        await asyncio.sleep(3)
        assert await pool.fetchval("SELECT count(*) FROM messages") == total
        assert (await _wait_count(archive_env, held, timeout=30))[0] == held
        await asyncio.sleep(1)
        assert (await archive_env.count())[0] == held
        kill(leader.process)  # the lock goes with its session; the other process takes over
        assert await _until_hot_rows(pool, 0) == 0
        docs, distinct = await _wait_count(archive_env, total, timeout=90)
        outcomes = archive_app.app[CONSUMER].outcomes
        for _ in range(100):
            if outcomes["inserted"] + outcomes["duplicate"] >= total + held:
                break
            await asyncio.sleep(0.1)
        print(f"leader exclusivity: {total} messages, leader paused holding {held} sent, outcomes {dict(outcomes)}")
        assert docs == distinct == total
        assert outcomes["inserted"] + outcomes["duplicate"] == total + held
        _exact_unless_retaken(archive_app, outcomes, total)
    finally:
        await pool.close()
