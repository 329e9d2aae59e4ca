"""Relay (PostgreSQL -> Kafka) and consumer (Kafka -> MongoDB) on the real services, with faults."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from server.relay.relay import PRODUCER_CLIENT_ID, RELAY_LOCK, ArchiveRelay, RelaySettings
from server.storage.db import create_pool
from tests.archive.conftest import ArchiveEnv, RunningArchive, seed_messages
from tests.support import fault_seconds

pytestmark = pytest.mark.solo


def _relay(database_pool: asyncpg.Pool, env: ArchiveEnv, **kw: object) -> ArchiveRelay:
    settings = RelaySettings(hot_retention_s=60, batch_size=200, interval_s=0.1, send_timeout_s=3, topic=env.topic)
    settings = RelaySettings(**{**settings.__dict__, **kw})  # type: ignore[arg-type]
    return ArchiveRelay(database_pool, env.kafka.bootstrap, settings)


async def _wait_count(env: ArchiveEnv, n: int, timeout: float = 60) -> tuple[int, int]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        got = await env.count()
        if got[0] >= n or loop.time() > deadline:
            return got
        await asyncio.sleep(0.3)


async def test_relay_moves_only_aged_messages_and_advances_the_watermark(database_url: str, archive_env: ArchiveEnv,
                                                                         archive_app: RunningArchive) -> None:
    total = await seed_messages(database_url, rooms=3, per_room=50, age_s=3600)
    pool = await create_pool(database_url, timeout_s=10, min_size=1, max_size=4)
    try:
        conn = await pool.acquire()
        young_room = await conn.fetchval("SELECT id FROM rooms LIMIT 1")
        await conn.execute("UPDATE messages SET created_at = now() WHERE room_id = $1 AND seq > 40", young_room)
        await pool.release(conn)
        relay = _relay(pool, archive_env)
        moved = 0
        while (n := await relay.run_once()) > 0:
            moved += n
        await relay.close()
        assert moved == total - 10
        assert await pool.fetchval("SELECT count(*) FROM messages") == 10
        assert await pool.fetchval("SELECT archived_upto_seq FROM rooms WHERE id = $1", young_room) == 40
        docs, distinct = await _wait_count(archive_env, moved)
        assert docs == distinct == moved
    finally:
        await pool.close()


async def test_kafka_outage_mid_run_relay_resumes_by_itself_losing_and_duplicating_nothing(database_url: str, archive_env: ArchiveEnv,
                                                                 archive_app: RunningArchive) -> None:
    total = await seed_messages(database_url, rooms=4, per_room=2500, age_s=3600)
    pool = await create_pool(database_url, timeout_s=10, min_size=1, max_size=4)
    relay = _relay(pool, archive_env, batch_size=50)
    task = asyncio.create_task(relay.run_forever())  # the loop itself must back off and resume
    try:
        while await pool.fetchval("SELECT count(*) FROM messages") == total:  # the relay has started
            await asyncio.sleep(0.05)
        before_stop = await pool.fetchval("SELECT count(*) FROM messages")
        archive_env.kafka.stop()
        await asyncio.sleep(1)  # a batch acked just before the broker exited may still be deleting
        after_stop = await pool.fetchval("SELECT count(*) FROM messages")
        await asyncio.sleep(4)  # the relay keeps trying; nothing may be deleted meanwhile
        during = await pool.fetchval("SELECT count(*) FROM messages")
        archive_env.kafka.start()
        for _ in range(1200):
            if await pool.fetchval("SELECT count(*) FROM messages") == 0:
                break
            await asyncio.sleep(0.1)
        failures = relay.failed_passes
        docs, distinct = await _wait_count(archive_env, total, timeout=90)
        print(f"kafka outage: {total} messages, {failures} failed passes, pg rows before/after/during stop "
              f"{before_stop}/{after_stop}/{during}, archive docs {docs} distinct {distinct}")
        assert 0 < before_stop < total and failures > 0
        assert during == after_stop  # with the broker down not one row left PostgreSQL
        assert docs == distinct == total
        assert await pool.fetchval("SELECT count(*) FROM messages") == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await relay.close()
        await pool.close()


def _relay_producer_tasks() -> list[asyncio.Task[Any]]:
    """Background tasks of relay producers still running: their sender loops and metadata
    synchronizers (told from the archive's own Kafka clients by the relay's client id)."""
    found = []
    for task in asyncio.all_tasks():
        frame = getattr(task.get_coro(), "cr_frame", None)
        owner = frame.f_locals.get("self") if frame is not None else None
        client = getattr(owner, "client", owner)  # a Sender holds its client; the synchronizer is the client's
        if getattr(client, "_client_id", None) == PRODUCER_CLIENT_ID:
            found.append(task)
    return found


HUNG_BROKER_S = fault_seconds("CHAT_FAULT_KAFKA_HUNG_S", 15)


async def test_a_hung_kafka_broker_stalls_no_relay_pass_and_after_the_thaw_everything_is_archived_once(
        database_url: str, archive_env: ArchiveEnv, archive_app: RunningArchive) -> None:
    """The broker SIGSTOPped while the relay moves a backlog in passes back to back (so the
    freeze lands in a pass in flight): its process and connections stay, nothing answers. Every
    pass still ends within its bounds and the relay keeps trying, not one row leaves PostgreSQL,
    no producer it dropped stays behind retrying, and within 60 s of the SIGCONT the backlog is
    archived, each message once."""
    total = await seed_messages(database_url, rooms=4, per_room=1000, age_s=3600)
    pool = await create_pool(database_url, timeout_s=10, min_size=1, max_size=4)
    relay = _relay(pool, archive_env, batch_size=50, pass_timeout_s=12)
    task = asyncio.create_task(relay.run_forever())
    loop = asyncio.get_running_loop()
    try:
        while await pool.fetchval("SELECT count(*) FROM messages") == total:  # the relay has started
            await asyncio.sleep(0.05)
        with archive_env.kafka.frozen():  # SIGCONT on the way out, whatever happens in the block
            await asyncio.sleep(1)  # a batch acked just before the freeze may still be deleting
            at_freeze = await pool.fetchval("SELECT count(*) FROM messages")
            failed_before = relay.failed_passes
            await asyncio.sleep(HUNG_BROKER_S)
            during = await pool.fetchval("SELECT count(*) FROM messages")
            failed_during = relay.failed_passes - failed_before
        thawed = loop.time()
        left = during
        while left and loop.time() - thawed < 60:
            await asyncio.sleep(0.2)
            left = await pool.fetchval("SELECT count(*) FROM messages")
        drained_s = loop.time() - thawed
        docs, distinct = await _wait_count(archive_env, total, timeout=60)
        print(f"hung broker {HUNG_BROKER_S:g} s: {total} messages, {at_freeze} hot at the freeze, {failed_during} "
              f"passes failed while frozen, {relay.abandoned_passes} abandoned, backlog drained {drained_s:.1f} s "
              f"after the thaw, archive docs {docs} distinct {distinct}")
        assert 0 < at_freeze < total
        assert during == at_freeze  # with the broker hung not one row left PostgreSQL
        assert failed_during >= 2  # the pass in flight ended and the relay tried again: nothing stalled
        assert left == 0, f"{left} messages still hot 60 s after the broker's thaw"
        assert docs == distinct == total
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await relay.close()
        await pool.close()
    # every producer a failed pass dropped was stopped for good, not left retrying its batch
    assert _relay_producer_tasks() == []


class _DeafPause:
    """Stands in for the relay's fault pause (chatcore/faults.py): the ``nth`` pass that reaches
    ``relay.sent`` (its batch acknowledged, nothing deleted, the leader lock held) stops there
    and ignores every cancellation, as a library call that eats its cancellation would, until
    the test frees it."""

    def __init__(self, nth: int) -> None:
        self.nth = nth
        self.seen = 0
        self.held: list[int] = []
        self.cancels_ignored = 0
        self.freed = asyncio.Event()

    async def reach(self, point: str, state: dict[str, Any]) -> None:
        if point != "relay.sent":
            return
        self.seen += 1
        if self.seen != self.nth:
            return
        self.held = state["ids"]
        while not self.freed.is_set():
            try:
                await self.freed.wait()
            except asyncio.CancelledError:
                self.cancels_ignored += 1


async def test_a_pass_that_ignores_its_cancellation_is_abandoned_at_its_deadline_and_the_next_pass_takes_over(
        database_url: str, archive_env: ArchiveEnv, archive_app: RunningArchive) -> None:
    """A pass stuck for good while holding the leader lock (here: a batch sent, nothing deleted)
    is abandoned at ``pass_timeout_s``: its PostgreSQL session is ended, which frees the lock,
    the next pass resends the held batch and moves the rest; when the stuck pass wakes up it
    can touch nothing (its connection is gone). Every message archived once."""
    total = await seed_messages(database_url, rooms=2, per_room=200, age_s=3600)
    pool = await create_pool(database_url, timeout_s=10, min_size=1, max_size=4)
    relay = _relay(pool, archive_env, batch_size=50, pass_timeout_s=3)
    pause = _DeafPause(nth=2)
    relay._pause = pause  # type: ignore[assignment]
    task = asyncio.create_task(relay.run_forever())
    loop = asyncio.get_running_loop()
    try:
        started = loop.time()
        left = total
        while left and loop.time() - started < 30:
            await asyncio.sleep(0.2)
            left = await pool.fetchval("SELECT count(*) FROM messages")
        print(f"stuck pass: {total} messages, {len(pause.held)} held by the stuck pass, {pause.cancels_ignored} "
              f"cancellations ignored, {relay.abandoned_passes} abandoned, {left} left after "
              f"{loop.time() - started:.1f} s")
        assert len(pause.held) == 50
        assert left == 0, f"{left} messages still hot: the stuck pass kept the relay out"
        assert relay.abandoned_passes == 1 and pause.cancels_ignored >= 1
        held = await pool.fetchval("SELECT count(*) FROM messages WHERE id = ANY($1::bigint[])", pause.held)
        assert held == 0  # the next pass resent and deleted the stuck pass's batch
        docs, distinct = await _wait_count(archive_env, total, timeout=60)
        assert docs == distinct == total
        pause.freed.set()  # the stuck pass wakes up and goes on to delete, on a connection it no longer has
        await asyncio.sleep(0.5)
        assert await pool.fetchval("SELECT count(*) FROM archived_messages") == total  # it changed nothing
    finally:
        pause.freed.set()
        task.cancel()
        await asyncio.wait({task}, timeout=5)
        task.cancel()  # again: without a pass deadline the first one may have gone to the deaf pause
        await asyncio.gather(task, return_exceptions=True)
        await relay.close()
        await pool.close()


async def test_two_relay_candidates_never_run_at_once(database_url: str, archive_env: ArchiveEnv,
                                                      archive_app: RunningArchive) -> None:
    total = await seed_messages(database_url, rooms=2, per_room=300, age_s=3600)
    pool = await create_pool(database_url, timeout_s=10, min_size=2, max_size=6)
    relays = [_relay(pool, archive_env, batch_size=50), _relay(pool, archive_env, batch_size=50)]
    try:
        # while another candidate holds the leader lock, a relay does nothing
        holder = await asyncpg.connect(database_url)
        assert await holder.fetchval("SELECT pg_try_advisory_lock($1)", RELAY_LOCK)
        assert await relays[0].run_once() == 0 and await relays[1].run_once() == 0
        await holder.close()
        # racing candidates: passes serialise on the lock, so no message is sent twice
        while await pool.fetchval("SELECT count(*) FROM messages") > 0:
            await asyncio.gather(*(r.run_once() for r in relays))
        assert sum(r.archived_total for r in relays) == total
        docs, distinct = await _wait_count(archive_env, total)
        assert docs == distinct == total
    finally:
        for r in relays:
            await r.close()
        await pool.close()


async def test_malformed_records_go_to_the_dead_letter_topic(archive_env: ArchiveEnv, archive_app: RunningArchive) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=archive_env.kafka.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(archive_env.topic, b"{not json")
        await producer.send_and_wait(archive_env.topic, b'{"v": 99, "id": 1}')
        await producer.send_and_wait(archive_env.topic, b'{"v": 1, "id": "x"}')
        good = (b'{"v":1,"id":777,"room_id":5,"seq":1,"author_id":1,"author_kind":"user","author_name":"A",'
                b'"body":"ok","created_at":"2026-01-01T00:00:00.000Z","edited_at":null,"deleted_at":null}')
        await producer.send_and_wait(archive_env.topic, good)
    finally:
        await producer.stop()
    docs, _ = await _wait_count(archive_env, 1, timeout=30)
    assert docs == 1
    from archive.app import CONSUMER

    consumer = archive_app.app[CONSUMER]
    for _ in range(50):
        if consumer.dead_letters >= 3:
            break
        await asyncio.sleep(0.2)
    assert consumer.dead_letters == 3


def _record(i: int) -> bytes:
    return (b'{"v":1,"id":%d,"room_id":9,"seq":%d,"author_id":1,"author_kind":"user","author_name":"A",'
            b'"body":"m","created_at":"2026-01-01T00:00:00.000Z","edited_at":null,"deleted_at":null}' % (1000 + i, i))


async def test_a_wedged_consumer_is_rebuilt_and_catches_up(archive_env: ArchiveEnv) -> None:
    """A consumer that stops fetching (as aiokafka's can after the whole cluster was down) is
    noticed by the lag check and replaced; nothing is lost or stored twice."""
    from archive.app import CONSUMER
    from tests.archive.conftest import start_archive

    running = await start_archive(archive_env.config(stall_check_s=1.0))
    producer = AIOKafkaProducer(bootstrap_servers=archive_env.kafka.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(archive_env.topic, _record(1))
        assert (await _wait_count(archive_env, 1, timeout=30))[0] == 1
        consumer = running.app[CONSUMER]
        wedged = consumer.consumer
        assert wedged is not None and wedged.assignment()
        wedged.pause(*wedged.assignment())  # connected, in the group, fetching nothing
        for i in range(2, 51):
            await producer.send_and_wait(archive_env.topic, _record(i))
        docs, distinct = await _wait_count(archive_env, 50, timeout=45)
        assert docs == distinct == 50
        assert consumer.stalls >= 1 and consumer.consumer is not wedged
    finally:
        await producer.stop()
        await running.runner.cleanup()
