"""Moves messages older than the hot retention from PostgreSQL to Kafka.

One leader at a time across all nodes: each pass runs under a PostgreSQL advisory lock. A pass
selects a batch of aged messages (oldest first, per room in seq order), produces them with an
idempotent producer (``acks=all``, keyed by room id so a room keeps its order in one
partition), waits for every ack, and only then deletes exactly those rows and advances each
room's ``archived_upto_seq`` in one transaction. A crash anywhere before the delete means the
batch is sent again; chat-archive's upserts by message id make that harmless. Every Kafka call
is bounded by a timeout (aiokafka can wait forever with idempotence on and the broker down);
after a failure the producer is rebuilt on the next pass.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer

from chatcore.events import ARCHIVE_TOPIC, MessageRecord

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


class ArchiveRelay:
    def __init__(self, pool: asyncpg.Pool, bootstrap_servers: str, settings: RelaySettings) -> None:
        self.pool = pool
        self.bootstrap = bootstrap_servers
        self.settings = settings
        self._producer: AIOKafkaProducer | None = None
        self.archived_total = 0
        self.failed_passes = 0

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
            f"SELECT {MSG_COLS} FROM messages WHERE created_at < now() - make_interval(secs => $1)"
            " ORDER BY created_at, room_id, seq LIMIT $2",
            self.settings.hot_retention_s, self.settings.batch_size,
        )
        if not rows:
            return 0
        records = [to_record(r) for r in rows]
        try:
            producer = await self._ensure_producer()
            futures = [
                await asyncio.wait_for(
                    producer.send(self.settings.topic, value=orjson.dumps(m.to_archive()), key=str(m.room_id).encode()),
                    self.settings.send_timeout_s,
                )
                for m in records
            ]
            await asyncio.wait_for(asyncio.gather(*futures), self.settings.send_timeout_s)
        except BaseException:
            # nothing is deleted: the same batch goes again on the next pass
            producer, self._producer = self._producer, None
            await self._close(producer)
            raise
        async with conn.transaction():
            await conn.execute("DELETE FROM messages WHERE id = ANY($1::bigint[])", [m.id for m in records])
            await conn.execute(
                "UPDATE rooms r SET archived_upto_seq = greatest(r.archived_upto_seq, v.upto)"
                " FROM (SELECT unnest($1::bigint[]) AS room_id, unnest($2::bigint[]) AS upto) v WHERE r.id = v.room_id",
                *_max_seq_per_room(records),
            )
        self.archived_total += len(records)
        log.info("relay: archived %d messages", len(records))
        return len(records)

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
