"""In-memory message source and recording sink (ours, not infrastructure), real Redis, the local
Gemini server, and helpers to build an Assistant on them."""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis

from ai.assistant import Assistant, build_provider
from ai.prompt import read_data_block
from ai.settings import AISettings
from chatcore.events import AssistantDelta, MessageRecord
from tests.fakes.gemini import GeminiFake, Recorded
from tests.services import RedisService

_ids = itertools.count(1)


@dataclass
class MemorySource:
    rooms: dict[int, list[MessageRecord]] = field(default_factory=dict)

    def add(self, room_id: int, body: str, author: str = "alice", kind: str = "user",
            author_id: int | None = 1) -> MessageRecord:
        msgs = self.rooms.setdefault(room_id, [])
        msg = MessageRecord(id=next(_ids), room_id=room_id, seq=len(msgs) + 1, author_id=author_id, author_kind=kind,
                            author_name=author, body=body, created_at=datetime.now(UTC))
        msgs.append(msg)
        return msg

    async def latest(self, room_id: int, limit: int) -> list[MessageRecord]:
        return self.rooms.get(room_id, [])[-limit:]

    async def between(self, room_id: int, after_seq: int, upto_seq: int) -> list[MessageRecord]:
        return [m for m in self.rooms.get(room_id, []) if after_seq < m.seq <= upto_seq]


@dataclass
class RecordingSink:
    source: MemorySource
    deltas: list[AssistantDelta] = field(default_factory=list)
    finals: list[MessageRecord] = field(default_factory=list)
    systems: list[MessageRecord] = field(default_factory=list)

    async def delta(self, event: AssistantDelta) -> None:
        self.deltas.append(event)

    async def final(self, room_id: int, reply_id: str, text: str, meta: dict[str, Any]) -> MessageRecord:
        msg = self.source.add(room_id, text, author="Assistant", kind="assistant")
        msg = dataclasses.replace(msg, meta={**meta, "reply_id": reply_id})
        self.source.rooms[room_id][-1] = msg
        self.finals.append(msg)
        return msg

    async def system(self, room_id: int, text: str, meta: dict[str, Any]) -> MessageRecord:
        msg = self.source.add(room_id, text, author="system", kind="system")
        self.systems.append(msg)
        self.last_system_meta = meta
        return msg


@pytest.fixture
async def redis(redis_service: RedisService) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_service.url, socket_timeout=2)
    yield client
    await client.aclose()


@pytest.fixture
async def gemini() -> AsyncIterator[GeminiFake]:
    fake = await GeminiFake().start()
    yield fake
    await fake.stop()


def gemini_settings(gemini: GeminiFake, **kw: object) -> AISettings:
    """Gemini against the local server, with small K and threshold so tests stay short."""
    base = AISettings(provider="gemini", api_key="test-key", base_url=gemini.base_url, recent_k=3,
                      summary_threshold=5, timeout_s=5, max_retries=2)
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def chat_data(call: Recorded) -> list[dict[str, str]]:
    """The records of a Gemini request's data block; the request must hold exactly one user turn."""
    [content] = call.body["contents"]
    [text] = call.user_texts()
    assert content["role"] == "user"
    return read_data_block(text)


def chat_lines(call: Recorded) -> list[str]:
    """The messages of a Gemini request's data block, as ``author: text``."""
    return [f"{r['from']}: {r['text']}" for r in chat_data(call) if "text" in r]


def chat_summary(call: Recorded) -> str | None:
    return next((r["summary"] for r in chat_data(call) if "summary" in r), None)


def make_assistant(settings: AISettings, redis: aioredis.Redis, source: MemorySource,
                   prefix: str | None = None) -> tuple[Assistant, RecordingSink]:
    """An Assistant (one node) with its own recording sink and, unless given, its own key space."""
    sink = RecordingSink(source)
    prefix = prefix if prefix is not None else f"t{uuid.uuid4().hex[:8]}:"
    return Assistant(settings, build_provider(settings), redis, source, sink, key_prefix=prefix), sink
