"""A batch the store cannot take within chat-archive's timeout, on real Kafka and FerretDB: the
consumer takes the same records again in smaller batches instead of redelivering the same
too-big batch for ever (a slow store applying a redelivered batch one record at a time did that
under a loaded machine, and the partition never moved again)."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient

from archive import consumer as consumer_module
from archive.consumer import BATCH, MIN_BATCH, ArchiveConsumer
from archive.storage import ArchiveStore
from tests.archive.conftest import ArchiveEnv
from tests.archive.faults import committed, end_offsets

PER_RECORD_S = 0.008  # the slow store's time per record: 500 records take 4 s, past the 2 s timeout


class SlowStore(ArchiveStore):
    """The real store behind a delay per record, as a loaded FerretDB applying one by one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batch_sizes: list[int] = []

    async def apply(self, items: list[dict[str, Any]]) -> Counter[str]:
        self.batch_sizes.append(len(items))
        await asyncio.sleep(PER_RECORD_S * len(items))
        return await super().apply(items)


def _record(i: int) -> bytes:
    return orjson.dumps({"v": 1, "id": 5000 + i, "room_id": 3, "seq": i, "author_id": 1, "author_kind": "user",
                         "author_name": "A", "body": f"m{i}", "created_at": "2026-01-01T00:00:00.000Z",
                         "edited_at": None, "deleted_at": None, "version": 0})


async def test_a_batch_past_the_timeout_comes_again_in_smaller_batches_until_every_record_is_stored_once(
        archive_env: ArchiveEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consumer_module, "CALM_BATCHES", 2)  # grows again within this test's records
    n = 1200
    producer = AIOKafkaProducer(bootstrap_servers=archive_env.kafka.bootstrap, linger_ms=20)
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(archive_env.topic, _record(i), key=b"3") for i in range(n)])
    finally:
        await producer.stop()
    client: AsyncMongoClient = AsyncMongoClient(archive_env.ferret.url, serverSelectionTimeoutMS=5000)
    store = SlowStore(client, archive_env.db)
    await store.setup(None)
    consumer = ArchiveConsumer(archive_env.config(timeout_s=2.0, write_log=True), store)
    try:
        await consumer.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 90
        ends = await end_offsets(archive_env)
        while (done := await committed(archive_env)) != ends:
            assert loop.time() < deadline, f"committed {done} of {ends}"
            await consumer.poll_once()  # a timed-out batch raised here before
        print(f"slow store: {n} records, batch sizes {store.batch_sizes}, {consumer.shrunk} taken again")
        assert consumer.shrunk >= 1 and min(store.batch_sizes) < BATCH
        assert all(size >= MIN_BATCH for size in store.batch_sizes[:-1])
        # it grew again once batches went through (the last batch is what was left, any size)
        assert any(b > a for a, b in itertools.pairwise(store.batch_sizes[:-1]))
        docs = [d async for d in client[archive_env.db]["messages"].find({}, {"_id": 1, "body": 1})]
        assert sorted(d["_id"] for d in docs) == [5000 + i for i in range(n)]
        assert all(d["body"] == f"m{d['_id'] - 5000}" for d in docs)
        interrupted = await client[archive_env.db]["write_log"].count_documents({"interrupted": {"$exists": True}})
        assert interrupted == consumer.shrunk  # each batch taken again is in the write log
    finally:
        await consumer.stop()
        await client.close()
