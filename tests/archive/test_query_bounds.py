"""What bounds a staff query's cost: the store's own time limit on every query (``maxTimeMS``,
so a scan chat-archive gave up on does not go on in the store) and the per-user rate limits on
text search and export."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from pymongo import AsyncMongoClient
from pymongo.monitoring import CommandFailedEvent, CommandListener, CommandStartedEvent, CommandSucceededEvent

from archive.config import ArchiveConfig, ConfigError
from archive.ratelimit import QueryLimiter
from chatcore.errors import RateLimited
from tests.archive.conftest import ArchiveEnv, ChatSide, start_archive
from tests.services.base import free_port
from tests.services.redis import RedisService
from tests.support import make_room

QUERIES = {"find", "aggregate", "count", "getMore"}
T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Recorder(CommandListener):
    """The query commands chat-archive sent to one database, and the store's refusals of them."""

    def __init__(self, db: str) -> None:
        self.db = db
        self.commands: list[dict[str, Any]] = []
        self.failures: list[tuple[str, Any]] = []

    def started(self, event: CommandStartedEvent) -> None:
        if event.database_name == self.db and event.command_name in QUERIES:
            self.commands.append(dict(event.command))

    def succeeded(self, event: CommandSucceededEvent) -> None:
        pass

    def failed(self, event: CommandFailedEvent) -> None:
        if event.database_name == self.db and event.command_name in QUERIES:
            failure = event.failure if isinstance(event.failure, dict) else {}
            self.failures.append((event.command_name, failure.get("code")))


async def _call(url: str, token: str, **params: Any) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as s, \
            s.get(url, params=params, headers={"Authorization": f"Bearer {token}"}) as r:
        return r.status, dict(r.headers), await r.read()


async def _seed(env: ArchiveEnv, room: int, seqs: range) -> None:
    client: AsyncMongoClient = AsyncMongoClient(env.ferret.url, serverSelectionTimeoutMS=5000)
    try:
        filler = "hay " * 50
        for start in range(seqs.start, seqs.stop, 5000):
            await client[env.db]["messages"].insert_many([
                {"_id": 1_000_000 + s, "room_id": room, "seq": s, "author_id": 1, "author_kind": "user",
                 "author_name": "u1", "body": f"{filler}{s}", "client_id": None, "reply_to": None, "meta": {},
                 "created_at": T0 + timedelta(seconds=s), "edited_at": None, "deleted_at": None, "version": 1}
                for s in range(start, min(seqs.stop, start + 5000))])
    finally:
        await client.close()


async def test_a_scan_past_the_time_limit_is_stopped_by_the_store_and_answers_503_unavailable(
        archive_env: ArchiveEnv, chat: ChatSide) -> None:
    room = await make_room(chat.staff, name="big")
    recorder = Recorder(archive_env.db)
    # 1 s: the store's limit is 800 ms; the scan below takes about 3 s on FerretDB/SQLite
    config = archive_env.config(chat_server_url=chat.url, timeout_s=1.0)
    running = await start_archive(config, [recorder])
    try:
        token, base = chat.staff.tokens["access_token"], running.base_url
        # quick on a small room: each kind of query carries the store's limit
        await _seed(archive_env, room, range(1, 4))
        for path, params in [(f"/archive/v1/rooms/{room}/messages", {}), (f"/archive/v1/rooms/{room}/export", {}),
                             (f"/archive/v1/users/{chat.staff.user['id']}/messages", {}),
                             ("/archive/v1/search", {"q": "hay", "room_id": room})]:
            status, _, body = await _call(base + path, token, **params)
            assert status == 200, (path, body)
        assert {c["find"] if "find" in c else c.get("aggregate") for c in recorder.commands} == {"messages"}
        assert {next(iter(c)) for c in recorder.commands} == {"find", "aggregate"}
        assert [c.get("maxTimeMS") for c in recorder.commands] == [config.query_time_limit_ms] * len(recorder.commands)
        assert recorder.failures == []

        # a text search that reads more than the limit allows: the store itself stops it
        await _seed(archive_env, room, range(4, 25_000))
        recorder.commands.clear()
        status, _, body = await _call(f"{base}/archive/v1/search", token, q="no such text", room_id=room)
        assert status == 503 and orjson.loads(body)["error"]["code"] == "unavailable", body
        assert [(c["find"], c.get("maxTimeMS")) for c in recorder.commands] == [("messages", 800)]
        assert recorder.failures == [("find", 50)]  # MaxTimeMSExpired: the store's answer, not chat-archive's wait
    finally:
        await running.runner.cleanup()


async def test_searches_and_exports_past_a_callers_allowance_are_429_rate_limited_with_retry_after(
        archive_env: ArchiveEnv, chat: ChatSide) -> None:
    room = await make_room(chat.staff, name="limited")
    running = await start_archive(archive_env.config(chat_server_url=chat.url, searches_per_minute=3,
                                                     exports_per_minute=2))
    try:
        await _seed(archive_env, room, range(1, 4))
        staff, admin, base = chat.staff.tokens["access_token"], chat.admin.tokens["access_token"], running.base_url
        search, export = f"{base}/archive/v1/search", f"{base}/archive/v1/rooms/{room}/export"
        for _ in range(3):
            status, _, body = await _call(search, staff, q="hay", room_id=room)
            assert status == 200, body
        status, headers, body = await _call(search, staff, q="hay", room_id=room)
        error = orjson.loads(body)["error"]
        assert status == 429 and error["code"] == "rate_limited", body
        # 3 a minute: one more in at most 20 s, said in whole seconds as chat-server says it
        assert 1 <= int(headers["Retry-After"]) <= 20 and 0 < error["details"]["retry_after"] <= 20

        status, _, body = await _call(search, admin, q="hay", room_id=room)  # another caller: their own allowance
        assert status == 200, body
        for _ in range(5):  # plain page reads are not limited
            for path in (f"/archive/v1/rooms/{room}/messages", f"/archive/v1/users/{chat.staff.user['id']}/messages"):
                status, _, body = await _call(base + path, staff)
                assert status == 200, (path, body)

        for _ in range(2):
            status, _, body = await _call(export, staff)
            assert status == 200, body
        status, headers, body = await _call(export, staff)
        assert status == 429 and orjson.loads(body)["error"]["code"] == "rate_limited", body
        assert 1 <= int(headers["Retry-After"]) <= 30
        status, _, body = await _call(export, admin)
        assert status == 200, body
    finally:
        await running.runner.cleanup()


async def test_a_callers_bucket_refills_at_the_per_minute_rate_and_zero_means_unlimited() -> None:
    now = [1000.0]
    limiter = QueryLimiter({"search": 30, "export": 0}, clock=lambda: now[0])
    for _ in range(30):
        await limiter.take("search", 7)
    with pytest.raises(RateLimited) as refused:
        await limiter.take("search", 7)
    assert refused.value.retry_after == pytest.approx(2.0)  # 30 a minute: one every 2 s
    now[0] += 2.0
    await limiter.take("search", 7)
    with pytest.raises(RateLimited):
        await limiter.take("search", 7)
    now[0] += 61.0  # a minute idle: the whole allowance again (its bucket forgotten)
    for _ in range(30):
        await limiter.take("search", 7)
    for _ in range(1000):
        await limiter.take("export", 7)


async def test_with_redis_every_chat_archive_process_counts_against_one_allowance(
        archive_env: ArchiveEnv, chat: ChatSide, redis_service: RedisService) -> None:
    room = await make_room(chat.staff, name="shared limit")
    shared = dict(chat_server_url=chat.url, searches_per_minute=3, redis_url=redis_service.url,
                  redis_prefix=f"t{uuid.uuid4().hex[:8]}:")
    first = await start_archive(archive_env.config(**shared))
    second = await start_archive(archive_env.config(**shared))
    try:
        await _seed(archive_env, room, range(1, 4))
        staff = chat.staff.tokens["access_token"]
        answers = [(await _call(f"{a.base_url}/archive/v1/search", staff, q="hay", room_id=room))[0]
                   for a in (first, second, first, second, first)]
        # 3 a minute for the caller, wherever the balancer sends each search (per process: 5 of 5)
        assert answers == [200, 200, 200, 429, 429], answers
        status, _, body = await _call(f"{second.base_url}/archive/v1/search", chat.admin.tokens["access_token"],
                                      q="hay", room_id=room)
        assert status == 200, body  # another caller: their own allowance
        # a restarted process keeps counting against the same bucket
        await first.runner.cleanup()
        first = await start_archive(archive_env.config(**shared))
        status, headers, _ = await _call(f"{first.base_url}/archive/v1/search", staff, q="hay", room_id=room)
        assert status == 429 and 1 <= int(headers["Retry-After"]) <= 20
    finally:
        await first.runner.cleanup()
        await second.runner.cleanup()


async def test_while_redis_does_not_answer_each_process_counts_its_own_and_nothing_fails(
        archive_env: ArchiveEnv, chat: ChatSide, caplog: pytest.LogCaptureFixture) -> None:
    room = await make_room(chat.staff, name="no redis")
    nowhere = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens: refused at once
    running = await start_archive(archive_env.config(chat_server_url=chat.url, searches_per_minute=2, redis_url=nowhere))
    try:
        await _seed(archive_env, room, range(1, 4))
        staff = chat.staff.tokens["access_token"]
        answers = [(await _call(f"{running.base_url}/archive/v1/search", staff, q="hay", room_id=room))[0]
                   for _ in range(3)]
        assert answers == [200, 200, 429], answers
        assert [r for r in caplog.records if "Redis unavailable" in r.getMessage()], "the fallback was not logged"
    finally:
        await running.runner.cleanup()


def test_the_rate_limits_are_read_from_the_environment_and_bad_values_name_the_variable(tmp_path: Path) -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092", "MONGO_URL": "mongodb://127.0.0.1:27017/",
           "JWT_PUBLIC_KEY_FILE": str(tmp_path / "k.pem"), "CHAT_SERVER_URL": "http://chat-server:8080"}
    config = ArchiveConfig.from_env(env)
    assert (config.searches_per_minute, config.exports_per_minute) == (30, 5)
    assert config.query_time_limit_ms == 9500  # under the 10 s timeout
    config = ArchiveConfig.from_env({**env, "ARCHIVE_SEARCHES_PER_MINUTE": "0", "ARCHIVE_EXPORTS_PER_MINUTE": "12"})
    assert (config.searches_per_minute, config.exports_per_minute) == (0, 12)
    assert (config.redis_url, config.redis_prefix) == (None, "chat:")  # unset: each process counts its own
    config = ArchiveConfig.from_env({**env, "REDIS_URL": "redis://redis:6379/0", "REDIS_PREFIX": "prod:"})
    assert (config.redis_url, config.redis_prefix) == ("redis://redis:6379/0", "prod:")
    for key in ("ARCHIVE_SEARCHES_PER_MINUTE", "ARCHIVE_EXPORTS_PER_MINUTE"):
        for bad in ("-1", "many", "2.5"):
            with pytest.raises(ConfigError, match=key):
                ArchiveConfig.from_env({**env, key: bad})
