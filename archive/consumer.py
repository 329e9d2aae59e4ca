"""The archive consumer: Kafka -> MongoDB with manual commits.

Each batch: decode every record; valid ones (messages and tombstones) are applied to MongoDB
by version (``ArchiveStore.apply``: a record never overwrites a newer one), bad ones (not JSON,
unknown version, missing fields) go raw to the dead-letter topic with a log line; only then are
the offsets committed. A crash anywhere before the commit redelivers the batch, which the
version rule makes harmless; each record's outcome (``inserted``, ``updated``, ``duplicate``,
``stale``, ``missing``) is counted (``archive_writes_total{outcome}``, and with
``ARCHIVE_WRITE_LOG`` one ``write_log`` document per batch), so redelivery is visible and its
size known. Every call has a timeout.

A batch the store cannot take within the timeout (a slow store: a redelivered batch whose
records are applied one by one) is not given up with the consumer: the same records come again
from this consumer (``seek`` back to the batch's first offsets) in batches half the size, down to
``MIN_BATCH``; after ``CALM_BATCHES`` batches at that size went through it grows again by a
quarter per batch (growing straight back to the size that timed out spent a timeout on every
other batch of a slow store). Rebuilding the consumer instead redelivered the same too-big batch
after every rejoin, and the partition never moved again.

aiokafka's consumer can stay wedged after the whole cluster was down (it keeps asking a broker
connection marked dead and fetches nothing: aio-libs/aiokafka#703, #1133). So every
``stall_check_s`` the consumer compares the group's committed offsets with the partitions' end
offsets; lag whose committed offset has not moved since the previous check, or a check that
cannot reach the broker, raises ``ConsumerStalled`` and the supervisor builds a fresh consumer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from chatcore.events import ARCHIVE_OP_DELETE, ARCHIVE_RECORD_VERSION
from chatcore.faults import FaultPause

from .config import ArchiveConfig
from .storage import ArchiveStore, to_doc, to_tombstone

log = logging.getLogger(__name__)

BATCH = 500  # records per batch, at most
MIN_BATCH = 10  # the smallest batch after timeouts
CALM_BATCHES = 20  # batches kept at the halved size after a timeout before it grows again


def decode(raw: bytes | None) -> dict[str, Any]:
    """A valid archive document or tombstone, or ValueError saying why not."""
    if raw is None:
        raise ValueError("empty record")
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ValueError("not JSON") from None
    if not isinstance(record, dict):
        raise ValueError("not an object")
    if record.get("v") != ARCHIVE_RECORD_VERSION:
        raise ValueError(f"unknown record version {record.get('v')!r}")
    op = record.get("op")
    if op not in (None, ARCHIVE_OP_DELETE):
        raise ValueError(f"unknown op {op!r}")
    try:
        return to_doc(record) if op is None else to_tombstone(record)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"bad fields: {exc}") from None


class ConsumerStalled(RuntimeError):
    """The group has lag and its committed offsets do not move."""


class ArchiveConsumer:
    def __init__(self, config: ArchiveConfig, store: ArchiveStore) -> None:
        self.config = config
        self.store = store
        self.consumer: AIOKafkaConsumer | None = None
        self.dlq: AIOKafkaProducer | None = None
        self.stored = 0
        self.outcomes: Counter[str] = Counter()  # records applied, by outcome (storage.OUTCOMES)
        self.dead_letters = 0
        self.stalls = 0  # times a wedged consumer was given up and rebuilt
        self.alive = False
        self._next_check = 0.0
        self._lag_seen: dict[TopicPartition, int] = {}  # lagging partition -> committed offset at the last check
        self._pause = FaultPause(config.fault_pause_at)
        self.batch = BATCH  # the next batch's size: halved after a timeout, then grown back slowly
        self._calm = 0  # batches still to go through at this size before it grows
        self.shrunk = 0  # batches given back to Kafka for a smaller size

    async def start(self) -> None:
        t = self.config.timeout_s
        self.consumer = AIOKafkaConsumer(
            self.config.topic, bootstrap_servers=self.config.kafka_bootstrap, group_id=self.config.group_id,
            enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=BATCH,
            request_timeout_ms=int(t * 1000) + 5000, session_timeout_ms=10000, heartbeat_interval_ms=2000,
        )
        self.dlq = AIOKafkaProducer(bootstrap_servers=self.config.kafka_bootstrap, acks="all",
                                    request_timeout_ms=int(t * 1000))
        await asyncio.wait_for(self.consumer.start(), t * 3)
        await asyncio.wait_for(self.dlq.start(), t * 3)
        self._next_check = time.monotonic() + self.config.stall_check_s
        self._lag_seen = {}

    async def stop(self) -> None:
        for part in (self.consumer, self.dlq):
            if part is not None:
                try:
                    await asyncio.wait_for(part.stop(), self.config.timeout_s)
                except (TimeoutError, Exception) as exc:
                    log.warning("archive consumer: stop failed: %s", type(exc).__name__)

    async def run(self) -> None:
        """Consume until cancelled; the supervisor restarts it after a failure."""
        try:
            await self.start()  # inside the try: a start cut short still closes what it opened
            while True:
                await self.poll_once()
                if time.monotonic() >= self._next_check:
                    await self.check_progress()
        except Exception as exc:
            await self._log_interrupted(type(exc).__name__)
            raise
        finally:
            self.alive = False
            await self.stop()

    async def poll_once(self) -> int:
        assert self.consumer is not None and self.dlq is not None
        t = self.config.timeout_s
        batches = await self.consumer.getmany(timeout_ms=1000, max_records=self.batch)
        self.alive = True
        docs: list[dict[str, Any]] = []
        for records in batches.values():
            for rec in records:
                try:
                    docs.append(decode(rec.value))
                except ValueError as exc:
                    log.warning("archive: dead-lettering %s[%d]@%d: %s", rec.topic, rec.partition, rec.offset, exc)
                    await asyncio.wait_for(self.dlq.send_and_wait(self.config.dlq_topic, rec.value or b"", key=rec.key), t)
                    self.dead_letters += 1
        if docs:
            try:
                outcomes = await asyncio.wait_for(self.store.apply(docs), t)
            except TimeoutError:
                await self._again_smaller(batches)
                return 0
            if self._calm:
                self._calm -= 1
            else:
                self.batch = min(BATCH, self.batch + max(1, self.batch // 4))
            self.outcomes.update(outcomes)
            self.stored += outcomes["inserted"]
            if self.config.write_log:
                ends = {f"{tp.partition}": recs[-1].offset + 1 for tp, recs in batches.items() if recs}
                await asyncio.wait_for(self.store.log_writes(outcomes, ends), t)
        if batches:
            await self._pause.reach("consumer.written", {
                "ids": [d["_id"] for d in docs],
                "commit": {f"{tp.partition}": recs[-1].offset + 1 for tp, recs in batches.items() if recs}})
            await asyncio.wait_for(self.consumer.commit(), t)
        return len(docs)

    async def _again_smaller(self, batches: dict[TopicPartition, list[Any]]) -> None:
        """The batch timed out in the store: take its records again, in a smaller batch."""
        assert self.consumer is not None
        for tp, recs in batches.items():
            if recs:
                self.consumer.seek(tp, recs[0].offset)
        self.shrunk += 1
        log.warning("archive consumer: a batch of %d records timed out in the store; taking them again, %d at a time",
                    sum(len(r) for r in batches.values()), max(MIN_BATCH, self.batch // 2))
        self.batch = max(MIN_BATCH, self.batch // 2)
        self._calm = CALM_BATCHES
        await self._log_interrupted("TimeoutError")

    async def _log_interrupted(self, reason: str) -> None:
        """A batch cut short (a timeout, MongoDB gone) comes again: the records it wrote so far
        come again as duplicates, so the write log (``ARCHIVE_WRITE_LOG``) says it happened."""
        if not self.config.write_log:
            return
        try:
            await asyncio.wait_for(self.store.log_interrupted(reason), self.config.timeout_s)
        except Exception as exc:
            log.warning("archive consumer: write log unavailable: %s", type(exc).__name__)

    async def check_progress(self) -> None:
        """Raise ``ConsumerStalled`` when a partition has had lag for a whole check interval with
        its committed offset standing still (this member or another one of the group is wedged:
        a fresh consumer rejoins and triggers a rebalance), or when the broker cannot be asked."""
        assert self.consumer is not None
        self._next_check = time.monotonic() + self.config.stall_check_s
        t = self.config.timeout_s
        try:
            parts = self.consumer.partitions_for_topic(self.config.topic) or set()
            tps = [TopicPartition(self.config.topic, p) for p in sorted(parts)]
            if not tps:
                return  # the topic does not exist yet: nothing to consume
            ends = await asyncio.wait_for(self.consumer.end_offsets(tps), t)
            starts = await asyncio.wait_for(self.consumer.beginning_offsets(tps), t)
            lagging: dict[TopicPartition, int] = {}
            for tp in tps:
                # nothing committed, or only records Kafka's retention has since removed: the log start counts
                committed = max(await asyncio.wait_for(self.consumer.committed(tp), t) or 0, starts[tp])
                if ends[tp] > committed:
                    lagging[tp] = committed
        except (TimeoutError, Exception) as exc:
            self.stalls += 1
            raise ConsumerStalled(f"cannot check the group's progress ({type(exc).__name__})") from None
        stuck = [tp for tp, committed in lagging.items() if self._lag_seen.get(tp) == committed]
        self._lag_seen = lagging
        if stuck:
            self.stalls += 1
            raise ConsumerStalled(f"partitions {[tp.partition for tp in stuck]} have lag and their committed "
                                  f"offsets did not move in {self.config.stall_check_s:g} s")
