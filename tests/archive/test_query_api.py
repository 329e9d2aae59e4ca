"""The staff query API on a seeded archive: paging order and cursors, time ranges, text search,
history pages, export, retention; the history client; configuration errors."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from pymongo import AsyncMongoClient

from archive import api as archive_api
from archive.api import STATUS
from archive.app import CONFIG
from archive.config import ArchiveConfig, ConfigError
from chatcore.errors import Unavailable
from chatcore.events import iso
from chatcore.tokens import TokenIssuer
from server.relay.archive_client import ArchiveHistoryClient, service_token
from tests.archive.conftest import ArchiveEnv, ChatSide, RunningArchive, start_archive
from tests.services.base import free_port
from tests.services.ferretdb import FerretService
from tests.support import make_room

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ROOM, OTHER_ROOM, BIG_ROOM = 1, 2, 3
ALICE, BOB = 10, 11


def _doc(mid: int, room: int, seq: int, author: int, body: str, at: datetime) -> dict[str, Any]:
    return {"_id": mid, "room_id": room, "seq": seq, "author_id": author, "author_kind": "user",
            "author_name": f"u{author}", "body": body, "client_id": None, "reply_to": None, "meta": {},
            "created_at": at, "edited_at": None, "deleted_at": None}


def _corpus() -> list[dict[str, Any]]:
    docs = []
    for seq in range(1, 26):  # ROOM: 25 messages a minute apart, authors alternating
        body = {4: "the Needle is here", 9: "another needle", 14: "a.b literally", 15: "axb only",
                20: "NEEDLE shouting"}.get(seq, f"hay {seq}")
        docs.append(_doc(100 + seq, ROOM, seq, ALICE if seq % 2 else BOB, body, T0 + timedelta(minutes=seq)))
    for seq in range(1, 6):  # OTHER_ROOM: Alice at the same instants as some ROOM messages (ties on time)
        docs.append(_doc(200 + seq, OTHER_ROOM, seq, ALICE, f"needle elsewhere {seq}", T0 + timedelta(minutes=2 * seq + 1)))
    return docs


async def _seed(env: ArchiveEnv, docs: list[dict[str, Any]]) -> None:
    client: AsyncMongoClient = AsyncMongoClient(env.ferret.url, serverSelectionTimeoutMS=5000)
    try:
        await client[env.db]["messages"].insert_many(docs)
    finally:
        await client.close()


@pytest.fixture
def issuer(key_dir: Path) -> TokenIssuer:
    return TokenIssuer((key_dir / "jwt.pem").read_bytes())


@pytest.fixture
async def seeded(archive_env: ArchiveEnv, chat: ChatSide) -> AsyncIterator[RunningArchive]:
    # the archived rooms exist in chat-server as public rooms (readable by every user); the
    # per-test database starts with no rooms, so they are 1, 2 and 3
    rooms = [await make_room(chat.staff, name=f"room {i}") for i in range(3)]
    assert rooms == [ROOM, OTHER_ROOM, BIG_ROOM]
    running = await start_archive(archive_env.config(chat_server_url=chat.url))
    await _seed(archive_env, _corpus())
    yield running
    await running.runner.cleanup()


async def _call(method: str, url: str, token: str | None, **params: Any) -> tuple[int, str, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as s, \
            s.request(method, url, params=params, headers=headers) as r:
        return r.status, r.content_type, await r.read()


async def _pages(base: str, path: str, token: str, **params: Any) -> list[list[dict[str, Any]]]:
    """Every page of a cursor-paged list."""
    pages, cursor = [], None
    for _ in range(100):
        status, _, body = await _call("GET", base + path, token, **params, **({"cursor": cursor} if cursor else {}))
        assert status == 200, body
        page = orjson.loads(body)
        pages.append(page["messages"])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
    raise AssertionError("paging did not end")


def _ids(pages: list[list[dict[str, Any]]]) -> list[int]:
    return [m["id"] for p in pages for m in p]


async def test_room_messages_page_by_seq_with_a_stable_cursor_and_time_range(seeded: RunningArchive,
                                                                             chat: ChatSide) -> None:
    token = chat.staff.tokens["access_token"]
    pages = await _pages(seeded.base_url, f"/archive/v1/rooms/{ROOM}/messages", token, limit=7)
    assert [len(p) for p in pages] == [7, 7, 7, 4]
    assert [m["seq"] for p in pages for m in p] == list(range(1, 26))
    first = pages[0][0]
    assert first == {"id": 101, "room_id": ROOM, "seq": 1, "author_id": ALICE, "author_kind": "user",
                     "author_name": f"u{ALICE}", "body": "hay 1", "client_id": None, "reply_to": None,
                     "created_at": iso(T0 + timedelta(minutes=1)), "edited_at": None, "deleted_at": None, "meta": {},
                     "attachments": [], "reactions": []}
    ranged = await _pages(seeded.base_url, f"/archive/v1/rooms/{ROOM}/messages", token, limit=4,
                          **{"from": iso(T0 + timedelta(minutes=10)), "to": iso(T0 + timedelta(minutes=20))})
    assert [m["seq"] for p in ranged for m in p] == list(range(10, 20))  # from inclusive, to exclusive


async def test_user_messages_page_by_time_then_id_across_rooms(seeded: RunningArchive, chat: ChatSide) -> None:
    token = chat.admin.tokens["access_token"]
    expected = sorted((d for d in _corpus() if d["author_id"] == ALICE), key=lambda d: (d["created_at"], d["_id"]))
    pages = await _pages(seeded.base_url, f"/archive/v1/users/{ALICE}/messages", token, limit=3)
    assert _ids(pages) == [d["_id"] for d in expected]  # ties on time ordered by id, none lost at page edges
    assert len(set(_ids(pages))) == len(expected) == 18
    ranged = await _pages(seeded.base_url, f"/archive/v1/users/{ALICE}/messages", token, limit=2,
                          **{"from": iso(T0 + timedelta(minutes=5)), "to": iso(T0 + timedelta(minutes=8))})
    assert _ids(ranged) == [105, 202, 107, 203]


async def test_search_is_case_insensitive_literal_text_bounded_by_room_user_and_time(seeded: RunningArchive,
                                                                                   chat: ChatSide) -> None:
    token = chat.staff.tokens["access_token"]
    base, path = seeded.base_url, "/archive/v1/search"
    assert _ids(await _pages(base, path, token, q="needle", room_id=ROOM, limit=1)) == [104, 109, 120]
    assert _ids(await _pages(base, path, token, q="a.b", room_id=ROOM)) == [114]  # '.' is not a wildcard
    assert _ids(await _pages(base, path, token, q="NEEDLE", user_id=ALICE, limit=2)) == [201, 202, 203, 109, 204, 205]
    assert _ids(await _pages(base, path, token, q="needle", user_id=ALICE,
                             **{"from": iso(T0 + timedelta(minutes=6)), "to": iso(T0 + timedelta(minutes=10))})) == [203, 109, 204]
    status, _, body = await _call("GET", base + path, token, q="needle")  # neither: the caller's own messages
    assert status == 200 and orjson.loads(body)["messages"] == []


async def test_room_history_returns_the_page_before_a_seq_in_ascending_order(seeded: RunningArchive,
                                                                            issuer: TokenIssuer) -> None:
    token = service_token(issuer)
    url = f"{seeded.base_url}/archive/v1/rooms/{ROOM}/history"
    _, _, body = await _call("GET", url, token, before_seq=11, limit=5)
    page = orjson.loads(body)
    assert [m["seq"] for m in page["messages"]] == [6, 7, 8, 9, 10] and page["has_more"] is True
    _, _, body = await _call("GET", url, token, before_seq=3, limit=5)
    page = orjson.loads(body)
    assert [m["seq"] for m in page["messages"]] == [1, 2] and page["has_more"] is False


async def test_history_client_reads_archived_pages_and_maps_failures_to_unavailable(
        seeded: RunningArchive, issuer: TokenIssuer) -> None:
    async with aiohttp.ClientSession() as session:
        client = ArchiveHistoryClient(session, seeded.base_url, lambda: service_token(issuer))
        records, more = await client.history(ROOM, before_seq=26, limit=10)
        assert [r.seq for r in records] == list(range(16, 26)) and more is True
        assert records[0].created_at == T0 + timedelta(minutes=16)
        refused = ArchiveHistoryClient(session, seeded.base_url, lambda: issuer.issue(5, "user", 0))
        with pytest.raises(Unavailable):
            await refused.history(ROOM, before_seq=26, limit=10)
        down = ArchiveHistoryClient(session, f"http://127.0.0.1:{free_port()}", lambda: "x", timeout_s=2)
        with pytest.raises(Unavailable):
            await down.history(ROOM, before_seq=26, limit=10)


async def test_export_streams_a_whole_room_as_json_lines(archive_env: ArchiveEnv, seeded: RunningArchive,
                                                         chat: ChatSide) -> None:
    # more than one export page (500), to cross the internal paging
    await _seed(archive_env, [_doc(10_000 + s, BIG_ROOM, s, BOB, f"line {s}", T0 + timedelta(seconds=s))
                              for s in range(1, 1203)])
    status, ctype, body = await _call("GET", f"{seeded.base_url}/archive/v1/rooms/{BIG_ROOM}/export",
                                      chat.staff.tokens["access_token"])
    assert status == 200 and ctype == "application/x-ndjson"
    lines = [orjson.loads(line) for line in body.splitlines()]
    assert [m["seq"] for m in lines] == list(range(1, 1203))
    assert lines[-1]["body"] == "line 1202" and body.endswith(b"\n")


async def test_an_export_cut_by_its_time_bound_resumes_with_after_seq_and_misses_nothing(
        archive_env: ArchiveEnv, seeded: RunningArchive, chat: ChatSide, monkeypatch: pytest.MonkeyPatch) -> None:
    await _seed(archive_env, [_doc(10_000 + s, BIG_ROOM, s, BOB, f"line {s}", T0 + timedelta(seconds=s))
                              for s in range(1, 1203)])
    url, token = f"{seeded.base_url}/archive/v1/rooms/{BIG_ROOM}/export", chat.staff.tokens["access_token"]
    monkeypatch.setattr(archive_api, "EXPORT_PAGE", 100)
    monkeypatch.setattr(archive_api, "EXPORT_MAX_S", 0.0)  # past its bound after the first page
    got = b""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as s:
        with pytest.raises(aiohttp.ClientPayloadError):  # no last chunk: the client knows it is cut
            async with s.get(url, headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status == 200
                async for chunk in r.content.iter_any():
                    got += chunk
    first = [orjson.loads(line) for line in got.split(b"\n")[:-1]]  # whole lines only
    assert 0 < len(first) < 1202
    monkeypatch.setattr(archive_api, "EXPORT_MAX_S", 600.0)
    status, _, body = await _call("GET", url, token, after_seq=first[-1]["seq"])
    assert status == 200
    rest = [orjson.loads(line) for line in body.splitlines()]
    assert [m["seq"] for m in first + rest] == list(range(1, 1203))
    status, _, body = await _call("GET", url, token, after_seq=-1)
    assert status == 400 and orjson.loads(body)["error"]["code"] == "invalid"


async def test_an_export_to_a_reader_that_stops_reading_is_cut(
        archive_env: ArchiveEnv, seeded: RunningArchive, chat: ChatSide, monkeypatch: pytest.MonkeyPatch) -> None:
    # ~3 MB, far more than fits between the server and a reader with a small window once the
    # kernel may not grow the buffers (an accepted socket takes its SO_SNDBUF from the listener)
    await _seed(archive_env, [_doc(20_000 + s, BIG_ROOM, s, BOB, f"{s} " + "x" * 1000, T0 + timedelta(seconds=s))
                              for s in range(1, 3001)])
    for site in seeded.runner.sites:
        for listener in site._server.sockets:  # type: ignore[attr-defined]
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    monkeypatch.setattr(archive_api, "EXPORT_STALL_S", 0.5)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", int(seeded.base_url.rsplit(":", 1)[1])))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(f"GET /archive/v1/rooms/{BIG_ROOM}/export HTTP/1.1\r\nHost: archive\r\nConnection: close\r\n"
                 f"Authorization: Bearer {chat.staff.tokens['access_token']}\r\n\r\n".encode())
    await writer.drain()
    await asyncio.sleep(3)  # reads nothing: the server's writes wait, then it gives up
    data = await asyncio.wait_for(reader.read(), timeout=20)  # to the end: the server closed
    writer.close()
    assert data.startswith(b"HTTP/1.1 200")
    assert not data.endswith(b"0\r\n\r\n")  # no last chunk
    assert data.count(b'"seq"') < 3000


async def test_retention_run_is_admin_only_and_deletes_only_expired_messages(archive_env: ArchiveEnv,
                                                                             chat: ChatSide) -> None:
    running = await start_archive(archive_env.config(ttl_days=30.0, retention_interval_s=3600.0,
                                                     chat_server_url=chat.url))
    try:
        for _ in range(100):  # the periodic pass ran once at start; from here on only the API deletes
            if running.app[STATUS]["retention_runs"] >= 1:
                break
            await asyncio.sleep(0.1)
        assert running.app[STATUS]["retention_runs"] >= 1
        now = datetime.now(UTC)
        await _seed(archive_env, [_doc(i, ROOM, i, ALICE, "old", now - timedelta(days=31 + i)) for i in range(1, 8)]
                    + [_doc(i, ROOM, i, ALICE, "young", now - timedelta(days=29)) for i in range(8, 11)])
        url = f"{running.base_url}/archive/v1/retention/run"
        status, _, body = await _call("POST", url, chat.staff.tokens["access_token"])
        assert status == 403 and orjson.loads(body)["error"]["code"] == "forbidden"
        status, _, body = await _call("POST", url, chat.admin.tokens["access_token"])
        assert status == 200 and orjson.loads(body) == {"deleted": 7}
        assert await archive_env.count() == (3, 3)
        _, _, metrics = await _call("GET", f"{running.base_url}/metrics", None)
        assert b"archive_retention_deleted_total 7.0" in metrics
    finally:
        await running.runner.cleanup()


async def test_retention_deletes_expired_messages_periodically_by_itself(archive_env: ArchiveEnv) -> None:
    now = datetime.now(UTC)
    await _seed(archive_env, [_doc(i, ROOM, i, ALICE, "old", now - timedelta(days=3)) for i in range(1, 6)]
                + [_doc(i, ROOM, i, ALICE, "young", now - timedelta(hours=1)) for i in range(6, 9)])
    running = await start_archive(archive_env.config(ttl_days=2.0, retention_interval_s=0.2))
    try:
        assert running.app[CONFIG].ttl_days == 2.0
        for _ in range(100):
            if (await archive_env.count())[0] == 3:
                break
            await asyncio.sleep(0.1)
        assert await archive_env.count() == (3, 3)
    finally:
        await running.runner.cleanup()


def test_configuration_errors_name_the_variable(tmp_path: Path) -> None:
    good = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092", "MONGO_URL": "mongodb://127.0.0.1:27017/",
            "JWT_PUBLIC_KEY_FILE": str(tmp_path / "k.pem"), "CHAT_SERVER_URL": "http://chat-server:8080/"}
    config = ArchiveConfig.from_env(good)
    assert (config.mongo_db, config.port, config.ttl_days, config.group_id) == ("chat_archive", 8090, None, "chat-archive")
    assert ArchiveConfig.from_env({**good, "ARCHIVE_TTL_DAYS": "90"}).ttl_days == 90
    assert (config.chat_server_url, config.chat_server_timeout_s) == ("http://chat-server:8080", 5.0)
    for key in ("KAFKA_BOOTSTRAP_SERVERS", "MONGO_URL", "JWT_PUBLIC_KEY_FILE", "CHAT_SERVER_URL"):
        with pytest.raises(ConfigError, match=key):
            ArchiveConfig.from_env({k: v for k, v in good.items() if k != key})
    for key, bad in (("ARCHIVE_TTL_DAYS", "forever"), ("ARCHIVE_PORT", "http"), ("ARCHIVE_TTL_DAYS", "-1"),
                     ("CHAT_SERVER_TIMEOUT_S", "0")):
        with pytest.raises(ConfigError, match=key):
            ArchiveConfig.from_env({**good, key: bad})


async def test_metrics_need_the_token_when_one_is_set(archive_env: ArchiveEnv) -> None:
    running = await start_archive(archive_env.config(metrics_token="scrape-secret"))
    try:
        status, _, body = await _call("GET", f"{running.base_url}/metrics", None)
        assert status == 401 and orjson.loads(body)["error"]["code"] == "unauthorized"
        status, _, _ = await _call("GET", f"{running.base_url}/metrics", "wrong")
        assert status == 401
        status, _, body = await _call("GET", f"{running.base_url}/metrics", "scrape-secret")
        assert status == 200 and b"archive_" in body
    finally:
        await running.runner.cleanup()


async def test_docs_page_is_swagger_ui_served_from_here_on_a_described_api(archive_app: RunningArchive) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(archive_app.base_url + "/archive/docs") as r:
            page = await r.text()
            assert r.status == 200 and r.content_type == "text/html" and "/archive/v1/openapi.json" in page
            assert "swagger-ui-bundle.js" in page and "https://" not in page
            assert "script-src 'self'" in r.headers["Content-Security-Policy"]
        async with s.get(archive_app.base_url + "/archive/docs/assets/swagger-ui-bundle.js") as r:
            assert r.status == 200 and "javascript" in r.content_type
        async with s.get(archive_app.base_url + "/archive/v1/openapi.json") as r:
            spec = await r.json()
    search = spec["paths"]["/archive/v1/search"]["get"]["parameters"]
    [q] = [p for p in search if p["name"] == "q"]
    assert q["in"] == "query" and q["required"] and q["schema"]["type"] == "string"
    assert (q["schema"]["minLength"], q["schema"]["maxLength"]) == (1, 200)
    room = spec["paths"]["/archive/v1/rooms/{room_id}/messages"]["get"]["parameters"]
    assert {k: room[0][k] for k in ("name", "in", "required")} == {"name": "room_id", "in": "path", "required": True}
    assert room[0]["schema"] == {"type": "integer", "minimum": 1, "maximum": 2**63 - 1,
                                 "description": "a positive 64-bit id"} or room[0]["schema"]["type"] == "integer"
    assert {p["name"] for p in room} == {"room_id", "from", "to", "cursor", "limit"}


async def test_a_store_that_does_not_answer_is_unavailable_not_a_server_error(
        archive_env: ArchiveEnv, chat: ChatSide, tmp_path: Path) -> None:
    # chat-archive on a FerretDB of its own, killed under it: each query waits out the MongoDB
    # timeout and answers 503 unavailable (retryable), as a scan too long for the timeout does
    store = FerretService(tmp_path / "store").start()
    room = await make_room(chat.staff, name="archived")
    running = await start_archive(archive_env.config(mongo_url=store.url, chat_server_url=chat.url, timeout_s=2.0))
    try:
        token = chat.staff.tokens["access_token"]
        status, _, body = await _call("GET", f"{running.base_url}/archive/v1/rooms/{room}/messages", token)
        assert status == 200, body
        store.kill()
        for path, params in [(f"/archive/v1/rooms/{room}/messages", {}), (f"/archive/v1/rooms/{room}/export", {}),
                             ("/archive/v1/search", {"q": "x", "room_id": room})]:
            status, _, body = await _call("GET", running.base_url + path, token, **params)
            assert status == 503 and orjson.loads(body)["error"]["code"] == "unavailable", (path, status, body)
    finally:
        await running.runner.cleanup()
        store.cleanup()
