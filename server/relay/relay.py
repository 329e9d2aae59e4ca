"""Moves messages older than the hot retention from PostgreSQL to Kafka.

One leader at a time across all nodes: each pass runs under a PostgreSQL advisory lock. A pass
selects a batch of aged messages (oldest first, per room in seq order) with each row's
``version`` (schema/0021: bumped by every change of the row), produces them with an idempotent
producer (``acks=all``, keyed by room id so a room keeps its order in one partition), waits for
every ack, and only then, in one transaction, locks those rows and deletes the ones whose
version is still the one sent. A row changed meanwhile (edited, deleted, reacted to) stays and
is sent again, newer, on the next pass; so do the later rows of its room in the batch, so the
hot part of a room stays a suffix of its seqs and ``archived_upto_seq`` stays exact. The
deleted rows leave a line in ``archived_messages`` (who may still delete them). Then the pass
sends the outbox (``archive_outbox``: tombstones of archived messages deleted since) the same
way and deletes the acknowledged outbox rows.

A crash anywhere before the delete means the batch is sent again; chat-archive keeps the record
with the highest version per message, so a redelivery is counted as a duplicate and changes
nothing. Every Kafka call is bounded by a timeout (aiokafka can wait forever with idempotence on
and the broker down); after a failure the producer is rebuilt on the next pass. The sends of a
batch are queued at once and awaited together (one ack wait per batch, not per message).
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer
from prometheus_client import Counter

from chatcore.events import ARCHIVE_TOPIC, MessageRecord
from chatcore.faults import FaultPause

from ..storage.messages import MSG_COLS, to_record

log = logging.getLogger(__name__)

RELAY_LOCK = 7_240_002  # advisory lock id of the relay leader
BACKOFF_MAX_S = 30.0  # longest wait between passes while Kafka or PostgreSQL is down


@dataclass(frozen=True)
class RelaySettings:
    hot_retention_s: float
    batch_size: int = 500
    interval_s: float = 5.0
    send_timeout_s: float = 10.0
    topic: str = ARCHIVE_TOPIC
    fault_pause: str | None = None  # FAULT_PAUSE_AT, for fault tests only (chatcore/faults.py)


class ArchiveRelay:
    def __init__(self, pool: asyncpg.Pool, bootstrap_servers: str, settings: RelaySettings,
                 counter: Counter | None = None) -> None:
        self.pool = pool
        self.counter = counter  # chat_relay_records_total{kind}
        self.bootstrap = bootstrap_servers
        self.settings = settings
        self._producer: AIOKafkaProducer | None = None
        self.archived_total = 0
        self.failed_passes = 0
        self.kept_changed = 0  # rows changed between send and delete: kept, sent again next pass
        self.outbox_sent = 0
        self._pause = FaultPause(settings.fault_pause)

    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap,
                enable_idempotence=True,
                acks="all",
                linger_ms=5,
                request_timeout_ms=int(self.settings.send_timeout_s * 1000),
                retry_backoff_ms=200,
            )
            try:
                await asyncio.wait_for(producer.start(), self.settings.send_timeout_s)
            except BaseException:
                await self._close(producer)
                raise
            self._producer = producer
        return self._producer

    async def _close(self, producer: AIOKafkaProducer | None) -> None:
        if producer is None:
            return
        try:
            await asyncio.wait_for(producer.stop(), self.settings.send_timeout_s)
        except (TimeoutError, Exception) as exc:  # a stuck producer is dropped, not awaited forever
            log.warning("relay: producer did not stop cleanly: %s", type(exc).__name__)

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        await self._close(producer)

    async def run_once(self) -> int:
        """One leader-guarded pass; returns how many messages were archived."""
        async with self.pool.acquire() as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", RELAY_LOCK):
                return 0
            try:
                return await self._pass(conn)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", RELAY_LOCK)

    async def _pass(self, conn: asyncpg.Connection) -> int:
        rows = await conn.fetch(
            f"SELECT {MSG_COLS}, version FROM messages WHERE created_at < now() - make_interval(secs => $1)"
            " ORDER BY created_at, room_id, seq LIMIT $2",
            self.settings.hot_retention_s, self.settings.batch_size,
        )
        moved = 0
        if rows:
            records = [(to_record(r), r["version"]) for r in rows]
            await self._send([(m.room_id, m.to_archive(version)) for m, version in records])
            await self._pause.reach("relay.sent", {"ids": [m.id for m, _ in records]})
            moved = await self._delete_unchanged(conn, records)
        await self._relay_outbox(conn)
        return moved

    async def _send(self, items: list[tuple[int, dict[str, object]]]) -> None:
        """Produce every record and wait for all the acks, bounded; on any failure the producer
        is dropped (rebuilt next pass) and the caller deletes nothing."""
        try:
            producer = await self._ensure_producer()
            topic = self.settings.topic

            async def queue_all() -> list[asyncio.Future[object]]:
                # send() only queues (it waits when the producer's buffer is full); the acks come later
                return [await producer.send(topic, value=orjson.dumps(rec), key=str(room).encode())
                        for room, rec in items]

            futures = await asyncio.wait_for(queue_all(), self.settings.send_timeout_s)
            await asyncio.wait_for(asyncio.gather(*futures), self.settings.send_timeout_s)
        except BaseException:
            producer, self._producer = self._producer, None
            await self._close(producer)
            raise

    async def _delete_unchanged(self, conn: asyncpg.Connection, records: list[tuple[MessageRecord, int]]) -> int:
        """Delete the sent rows still at the version sent; a changed row and the later rows of
        its room stay for the next pass. Returns how many rows left PostgreSQL."""
        async with conn.transaction():
            now = {r["id"]: r["version"] for r in await conn.fetch(
                "SELECT id, version FROM messages WHERE id = ANY($1::bigint[]) FOR UPDATE",
                [m.id for m, _ in records])}
            stop: dict[int, int] = {}  # room -> lowest seq that must stay hot
            for m, version in records:
                if now.get(m.id, version) != version and m.seq < stop.get(m.room_id, m.seq + 1):
                    stop[m.room_id] = m.seq
            gone = [m for m, version in records if m.id in now and m.seq < stop.get(m.room_id, m.seq + 1)]
            await conn.execute(
                "WITH d AS (DELETE FROM messages WHERE id = ANY($1::bigint[])"
                "  RETURNING id, room_id, seq, author_id, author_kind, author_name, created_at, edited_at, deleted_at)"
                " INSERT INTO archived_messages (id, room_id, seq, author_id, author_kind, author_name, created_at,"
                "  edited_at, deleted_at) SELECT * FROM d ON CONFLICT (id) DO NOTHING",
                [m.id for m in gone])
            await conn.execute(
                "UPDATE rooms r SET archived_upto_seq = greatest(r.archived_upto_seq, v.upto)"
                " FROM (SELECT unnest($1::bigint[]) AS room_id, unnest($2::bigint[]) AS upto) v WHERE r.id = v.room_id",
                *_max_seq_per_room(gone),
            )
        self.archived_total += len(gone)
        self.kept_changed += len(records) - len(gone)
        self._count("message", len(records))
        self._count("kept_changed", len(records) - len(gone))
        if len(gone) < len(records):
            log.info("relay: %d of %d sent messages changed meanwhile; they go again", len(records) - len(gone),
                     len(records))
        log.info("relay: archived %d messages", len(gone))
        return len(gone)

    async def _relay_outbox(self, conn: asyncpg.Connection) -> None:
        """Send the changes of archived messages (tombstones), oldest first, then delete them.
        Outbox rows never change, so deleting exactly the ids sent is safe."""
        rows = await conn.fetch("SELECT id, room_id, record FROM archive_outbox ORDER BY id LIMIT $1",
                                self.settings.batch_size)
        if not rows:
            return
        await self._send([(r["room_id"], r["record"]) for r in rows])
        await conn.execute("DELETE FROM archive_outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows])
        self.outbox_sent += len(rows)
        self._count("tombstone", len(rows))

    def _count(self, kind: str, n: int) -> None:
        if self.counter is not None and n:
            self.counter.labels(kind).inc(n)

    async def run_forever(self) -> None:
        """Passes back to back while there is a backlog, then every ``interval_s``.

        A failed pass (Kafka or PostgreSQL unreachable) is logged in one line and retried with
        capped exponential backoff, so an outage neither spins nor floods the log; the batch of
        a failed pass was not deleted and goes again.
        """
        delay = self.settings.interval_s
        while True:
            try:
                moved = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failed_passes += 1
                delay = min(max(delay * 2, 0.5), BACKOFF_MAX_S)
                log.warning("relay: pass failed (%s: %s); retrying in %.1fs", type(exc).__name__, exc, delay)
                await asyncio.sleep(delay * (0.5 + random.random() / 2))
                continue
            delay = self.settings.interval_s
            if moved < self.settings.batch_size:
                await asyncio.sleep(self.settings.interval_s)


def _max_seq_per_room(records: list[MessageRecord]) -> tuple[list[int], list[int]]:
    upto: dict[int, int] = {}
    for m in records:
        upto[m.room_id] = max(upto.get(m.room_id, 0), m.seq)
    return list(upto), list(upto.values())
