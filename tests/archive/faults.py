"""Helpers of the archive fault tests: processes stopped at a pause point (``FAULT_PAUSE_AT``,
chatcore/faults.py) and killed there, the archive's write log, the consumer group's offsets."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient

from archive.storage import OUTCOMES
from tests.archive.conftest import ArchiveEnv
from tests.services.base import REPO_ROOT, free_port, port_open, wait_until

BATCH = 500  # the consumer's poll batch and the relay's default batch: the most one kill can redeliver


def spawn_archive(env: ArchiveEnv, log_dir: Path, pause: str | None = None,
                  chat_server_url: str | None = None) -> subprocess.Popen[bytes]:
    """chat-archive (``python -m archive``) in its own process, writing its write log."""
    port = free_port()
    full = {**os.environ, **env.env(port, chat_server_url), "ARCHIVE_WRITE_LOG": "true"}
    if pause:
        full["FAULT_PAUSE_AT"] = pause
    with open(log_dir / f"archive-{port}.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "archive"], env=full, cwd=REPO_ROOT, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    wait_until(lambda: port_open(port), 30, "chat-archive", proc)
    return proc


async def paused(file: Path, proc: subprocess.Popen[bytes], timeout: float = 90) -> dict[str, Any]:
    """The state a process wrote at its pause point (it waits there), within ``timeout`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await asyncio.to_thread(file.exists):
        assert proc.poll() is None, f"the process exited ({proc.returncode}) before its pause point"
        assert loop.time() < deadline, f"no pause point reached within {timeout} s"
        await asyncio.sleep(0.05)
    state: dict[str, Any] = orjson.loads(await asyncio.to_thread(file.read_bytes))
    assert state["pid"] == proc.pid
    return state


def kill(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            kill(proc)


async def write_log(env: ArchiveEnv) -> Counter[str]:
    """The outcomes of every batch chat-archive applied, summed over all its processes, and how
    many consumer runs ended in an error (``interrupted``: their last batch comes again)."""
    client: AsyncMongoClient = AsyncMongoClient(env.ferret.url, serverSelectionTimeoutMS=5000)
    try:
        total: Counter[str] = Counter()
        async for d in client[env.db]["write_log"].find({}):
            total.update({k: int(d.get(k, 0)) for k in OUTCOMES})
            total["interrupted"] += 1 if d.get("interrupted") else 0
        return total
    finally:
        await client.close()


async def stored_ids(env: ArchiveEnv, ids: list[int]) -> int:
    client: AsyncMongoClient = AsyncMongoClient(env.ferret.url, serverSelectionTimeoutMS=5000)
    try:
        return await client[env.db]["messages"].count_documents({"_id": {"$in": ids}})
    finally:
        await client.close()


async def committed(env: ArchiveEnv) -> dict[str, int]:
    """The consumer group's committed offset per partition of the archive topic."""
    admin = AIOKafkaAdminClient(bootstrap_servers=env.kafka.bootstrap, request_timeout_ms=10000)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(env.group)
        return {str(tp.partition): meta.offset for tp, meta in offsets.items() if tp.topic == env.topic}
    finally:
        await admin.close()


async def end_offsets(env: ArchiveEnv) -> dict[str, int]:
    """The end offset of every partition of the archive topic."""
    admin = AIOKafkaAdminClient(bootstrap_servers=env.kafka.bootstrap, request_timeout_ms=10000)
    await admin.start()
    try:
        topics = await admin.describe_topics([env.topic])
        parts = [p["partition"] for t in topics for p in t.get("partitions", [])]
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=env.kafka.bootstrap, request_timeout_ms=10000)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(env.topic, p) for p in parts])
        return {str(tp.partition): off for tp, off in ends.items()}
    finally:
        await consumer.stop()


async def until_consumed(env: ArchiveEnv, timeout: float = 180) -> None:
    """Until the consumer group has committed every record of the topic (and so has written it
    and its write log entry). A liveness bound, not a speed claim: with the suite's workers
    sharing two cores, FerretDB-on-SQLite applies a large backlog at a few hundred records/s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        ends, done = await end_offsets(env), await committed(env)
        if ends and all(done.get(p, 0) >= end for p, end in ends.items()):
            return
        assert loop.time() < deadline, f"the group did not commit everything within {timeout} s: {done} of {ends}"
        await asyncio.sleep(0.5)
