"""The archive consumer: Kafka -> MongoDB with manual commits.

Each batch: decode every record; valid ones are upserted into MongoDB in one bulk write, bad
ones (not JSON, unknown version, missing fields) go raw to the dead-letter topic with a log
line; only then are the offsets committed. A crash anywhere before the commit redelivers the
batch, and upserts by message id make redelivery harmless. Every call has a timeout.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from server.events import ARCHIVE_RECORD_VERSION

from .config import ArchiveConfig
from .storage import ArchiveStore, to_doc

log = logging.getLogger(__name__)

BATCH = 500


def decode(raw: bytes | None) -> dict[str, Any]:
    """A valid archive document, or ValueError saying why not."""
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
    try:
        return to_doc(record)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"bad fields: {exc}") from None


class ArchiveConsumer:
    def __init__(self, config: ArchiveConfig, store: ArchiveStore) -> None:
        self.config = config
        self.store = store
        self.consumer: AIOKafkaConsumer | None = None
        self.dlq: AIOKafkaProducer | None = None
        self.stored = 0
        self.dead_letters = 0
        self.alive = False

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
        finally:
            self.alive = False
            await self.stop()

    async def poll_once(self) -> int:
        assert self.consumer is not None and self.dlq is not None
        t = self.config.timeout_s
        batches = await self.consumer.getmany(timeout_ms=1000, max_records=BATCH)
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
            await asyncio.wait_for(self.store.upsert(docs), t)
            self.stored += len(docs)
        if batches:
            await asyncio.wait_for(self.consumer.commit(), t)
        return len(docs)
