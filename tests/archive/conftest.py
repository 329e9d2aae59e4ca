"""Real Kafka and a real MongoDB-protocol server (FerretDB) for the archive tests, one topic,
consumer group and database per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from pymongo import AsyncMongoClient
from pymongo.monitoring import CommandListener

from archive.app import create_app as create_archive_app
from archive.config import ArchiveConfig
from tests.services.base import free_port
from tests.services.ferretdb import FerretService
from tests.services.kafka import KafkaService
from tests.support import ChatNode, Client, ServerHarness


@pytest.fixture(scope="session")
def kafka() -> Iterator[KafkaService]:
    k = KafkaService().start()
    yield k
    k.cleanup()


@pytest.fixture(scope="session")
def ferret() -> Iterator[FerretService]:
    f = FerretService().start()
    yield f
    f.cleanup()


@dataclass
class ArchiveEnv:
    topic: str
    dlq: str
    group: str
    db: str
    kafka: KafkaService
    ferret: FerretService
    public_key: Path

    def config(self, **overrides: object) -> ArchiveConfig:
        """chat-archive's config; ``chat_server_url`` defaults to a port nothing listens on (for
        tests that only consume: every query there answers 503)."""
        values: dict[str, object] = dict(kafka_bootstrap=self.kafka.bootstrap, mongo_url=self.ferret.url,
                                         jwt_public_key_file=self.public_key, mongo_db=self.db, topic=self.topic,
                                         chat_server_url=f"http://127.0.0.1:{free_port()}", chat_server_timeout_s=3.0,
                                         dlq_topic=self.dlq, group_id=self.group, port=free_port(), timeout_s=5.0,
                                         stall_check_s=5.0)
        values.update(overrides)
        return ArchiveConfig(**values)  # type: ignore[arg-type]

    def env(self, port: int, chat_server_url: str | None = None) -> dict[str, str]:
        return {"CHAT_SERVER_URL": chat_server_url or f"http://127.0.0.1:{free_port()}",
                "KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap, "MONGO_URL": self.ferret.url, "MONGO_DB": self.db,
                "ARCHIVE_TOPIC": self.topic, "ARCHIVE_DLQ_TOPIC": self.dlq, "ARCHIVE_GROUP_ID": self.group,
                "JWT_PUBLIC_KEY_FILE": str(self.public_key), "ARCHIVE_PORT": str(port), "ARCHIVE_HOST": "127.0.0.1"}

    async def document(self, message_id: int) -> dict[str, Any] | None:
        """The archive's stored document of one message (what the consumer wrote)."""
        client: AsyncMongoClient = AsyncMongoClient(self.ferret.url, serverSelectionTimeoutMS=5000)
        try:
            doc: dict[str, Any] | None = await client[self.db]["messages"].find_one({"_id": message_id})
            return doc
        finally:
            await client.close()

    async def count(self) -> tuple[int, int]:
        """(documents, distinct ids) in the archive."""
        client: AsyncMongoClient = AsyncMongoClient(self.ferret.url, serverSelectionTimeoutMS=5000)
        try:
            col = client[self.db]["messages"]
            ids = [d["_id"] async for d in col.find({}, {"_id": 1})]
            return len(ids), len(set(ids))
        finally:
            await client.close()


@pytest.fixture
def archive_env(kafka: KafkaService, ferret: FerretService, key_dir: Path) -> ArchiveEnv:
    tag = uuid.uuid4().hex[:8]
    return ArchiveEnv(f"archive-{tag}", f"archive-dlq-{tag}", f"group-{tag}", f"archive_{tag}", kafka, ferret,
                      key_dir / "jwt.pub.pem")


@dataclass
class ChatSide:
    """The chat-server that chat-archive asks about access, with a staff and an admin user on it."""

    node: ChatNode
    staff: Client
    admin: Client

    @property
    def url(self) -> str:
        return self.node.base_url


@pytest.fixture
async def chat(harness: ServerHarness) -> ChatSide:
    node = await harness.start_node()
    return ChatSide(node, await harness.user(node, role="staff"), await harness.user(node, role="admin"))


@dataclass
class RunningArchive:
    base_url: str
    app: web.Application
    runner: web.AppRunner


async def start_archive(config: ArchiveConfig, mongo_listeners: Sequence[CommandListener] = ()) -> RunningArchive:
    app = create_archive_app(config, mongo_listeners)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", config.port).start()
    return RunningArchive(f"http://127.0.0.1:{config.port}", app, runner)


@pytest.fixture
async def archive_app(archive_env: ArchiveEnv) -> AsyncIterator[RunningArchive]:
    running = await start_archive(archive_env.config())
    yield running
    await running.runner.cleanup()


async def seed_messages(database_url: str, rooms: int, per_room: int, age_s: float) -> int:
    """Rooms with aged messages, inserted straight into PostgreSQL; returns the total."""
    conn = await asyncpg.connect(database_url)
    try:
        uid = await conn.fetchval("INSERT INTO users (username, display_name) VALUES ($1, 'Seeder') RETURNING id",
                                  f"seed_{uuid.uuid4().hex[:6]}")
        for _r in range(rooms):
            room = await conn.fetchval("INSERT INTO rooms (slug, name, kind, last_seq) VALUES ($1, 'seed', 'public', $2) RETURNING id",
                                       f"seed-{uuid.uuid4().hex[:8]}", per_room)
            await conn.execute(
                "INSERT INTO messages (room_id, seq, author_id, author_kind, author_name, body, client_id, created_at)"
                " SELECT $1, s, $2, 'user', 'Seeder', 'archived message ' || s, 'c' || $1::bigint::text || '-' || s,"
                " now() - make_interval(secs => $3) - make_interval(secs => $4 - s)"
                " FROM generate_series(1, $4) s",
                room, uid, age_s, per_room)
        return rooms * per_room
    finally:
        await conn.close()
