"""Files: upload, signed download, attachments on every path a message takes, and the limits
(size, type, names, image bombs, who may attach what, who gets a URL, deletion, orphans), on
both file stores: the local directory and a real S3-compatible server (versitygw)."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import os
import time
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import aiohttp
import asyncpg
import pytest
from PIL import Image

from chatcore.files import FileUrlSigner, read_secret
from tests.services.s3 import S3Service
from tests.support import ChatNode, Client, ServerHarness, make_room

BUCKET = "chat-files"


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Service]:
    service = S3Service().start()
    yield service
    service.cleanup()


def zip_of(size: int) -> bytes:
    """A zip archive (an allowed type) of ``size`` random bytes, stored uncompressed."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        z.writestr("random.bin", os.urandom(size))
    return out.getvalue()


def png(width: int = 640, height: int = 480, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), "red" if mode != "1" else 0).save(out, "PNG")
    return out.getvalue()


async def upload(client: Client, data: Any, name: str = "file.bin", content_type: str = "application/octet-stream",
                 ) -> tuple[int, Any]:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name, content_type=content_type)
    return await client.call("POST", "/api/v1/uploads", data=form)


async def upload_raw_name(client: Client, data: bytes, name: str) -> tuple[int, Any]:
    """An upload whose file name carries any characters (RFC 5987 ``filename*``), as a hostile
    client can send it: aiohttp's own client refuses control characters in headers."""
    boundary = "b" + os.urandom(8).hex()
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename*=UTF-8''{quote(name, safe='')}"
            f"\r\nContent-Type: text/plain\r\n\r\n").encode()
    body = head + data + f"\r\n--{boundary}--\r\n".encode()
    return await client.call("POST", "/api/v1/uploads", data=body,
                             headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})


async def fetch(client: Client, url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, Any]:
    """GET a download URL the way a browser's <img src> would: no access token."""
    async with client.http.get(client.base_url + url, headers=headers or {}) as r:
        return r.status, await r.read(), r.headers


async def db_rows(harness: ServerHarness, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(harness.database_url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


def stored_keys(harness: ServerHarness) -> list[str]:
    root = Path(harness.env["CHAT_DATA_DIR"]) / "files"
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


def s3_node_files(harness: ServerHarness, s3: S3Service) -> Any:
    return dataclasses.replace(harness.config().files, store="s3", s3_endpoint_url=s3.url, s3_bucket=BUCKET,
                               s3_access_key_id=s3.access_key, s3_secret_access_key=s3.secret_key,
                               s3_region=s3.region)


async def start(harness: ServerHarness, **files: Any) -> ChatNode:
    return await harness.start_node(files=dataclasses.replace(harness.config().files, **files))


async def members(harness: ServerHarness, node: ChatNode, kind: str = "public") -> tuple[Client, Client, int]:
    alice, bob = await harness.user(node), await harness.user(node)
    room_id = await make_room(alice, bob, kind=kind)
    await alice.connect()
    await bob.connect()
    return alice, bob, room_id


async def wait_until(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "not within the deadline"
        await asyncio.sleep(0.1)


# --- upload and download ---------------------------------------------------------------------

@pytest.mark.parametrize("store", ["local", "s3"])
async def test_upload_and_download_round_trip_byte_for_byte_with_ranges_and_safe_headers(
        harness: ServerHarness, s3: S3Service, store: str) -> None:
    files = s3_node_files(harness, s3) if store == "s3" else harness.config().files
    node = await harness.start_node(files=files)
    alice = await harness.user(node)
    data = zip_of(6 * 1024 * 1024 + 123)  # past one S3 multipart part (5 MiB)
    status, body = await upload(alice, data, "report.zip", "application/zip")
    assert status == 201, body
    assert body["mime"] == "application/zip" and body["size"] == len(data) and body["name"] == "report.zip"
    assert body["thumb_url"] is None and body["width"] is None and body["height"] is None
    assert len(body["id"]) >= 22  # 144 random bits
    got_status, got, headers = await fetch(alice, body["url"])
    assert got_status == 200 and got == data
    assert headers["Content-Type"] == "application/zip"
    assert headers["Content-Disposition"].startswith("attachment;")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Security-Policy"].startswith("sandbox")
    part_status, part, part_headers = await fetch(alice, body["url"], {"Range": "bytes=1000-1999"})
    assert part_status == 206 and part == data[1000:2000]
    assert part_headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"
    tail_status, tail, _ = await fetch(alice, body["url"], {"Range": "bytes=-10"})
    assert tail_status == 206 and tail == data[-10:]
    # the bytes are where the store keeps them, under the random id only
    if store == "s3":
        assert s3.objects(BUCKET) == [body["id"]]
    else:
        assert stored_keys(harness) == [body["id"]]


async def test_an_image_gets_its_size_and_a_thumbnail_and_shows_inline(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice = await harness.user(node)
    status, body = await upload(alice, png(1280, 960), "photo.png", "image/png")
    assert status == 201, body
    assert body["mime"] == "image/png" and (body["width"], body["height"]) == (1280, 960)
    thumb_status, thumb, headers = await fetch(alice, body["thumb_url"])
    assert thumb_status == 200 and headers["Content-Type"] == "image/webp"
    assert max(Image.open(io.BytesIO(thumb)).size) <= 320
    _, _, original = await fetch(alice, body["url"])
    assert original["Content-Disposition"].startswith("inline;")


async def test_an_upload_past_max_upload_bytes_is_refused_with_413_and_nothing_is_stored(harness: ServerHarness) -> None:
    node = await start(harness, max_upload_bytes=64 * 1024)
    alice = await harness.user(node)
    data = zip_of(200 * 1024)
    status, body = await upload(alice, data, "big.zip")  # Content-Length says it: refused before reading
    assert status == 413 and body["error"]["code"] == "too_large"

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: refused while streaming
        for i in range(0, len(data), 16 * 1024):
            yield data[i:i + 16 * 1024]

    status, body = await upload(alice, chunked(), "big.zip")
    assert status == 413 and body["error"]["code"] == "too_large"
    assert await db_rows(harness, "SELECT id FROM files") == []
    root = Path(harness.env["CHAT_DATA_DIR"]) / "files"
    assert [p for p in root.rglob("*") if p.is_file()] == []  # not even a partial file


async def test_a_type_outside_the_allow_list_is_refused_with_415_unsupported_type(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice = await harness.user(node)
    page = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
    # claimed harmless, it is HTML all the same
    status, body = await upload(alice, page, "notes.txt", "text/plain")
    assert status == 415 and body["error"]["code"] == "unsupported_type"
    status, body = await upload(alice, os.urandom(4096), "blob.bin")
    assert status == 415 and body["error"]["code"] == "unsupported_type"
    assert await db_rows(harness, "SELECT id FROM files") == [] and stored_keys(harness) == []


async def test_content_decides_the_stored_type_not_the_claimed_one(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice = await harness.user(node)
    status, body = await upload(alice, b"just some words and not a picture\n" * 10, "cat.png", "image/png")
    assert status == 201, body
    assert body["mime"] == "text/plain" and body["thumb_url"] is None and body["width"] is None
    _, _, headers = await fetch(alice, body["url"])
    assert headers["Content-Type"].startswith("text/plain")
    status, body = await upload(alice, png(), "document.pdf", "application/pdf")
    assert status == 201 and body["mime"] == "image/png" and body["width"] == 640


async def test_a_path_traversal_or_control_character_name_is_reduced_to_a_safe_name(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice = await harness.user(node)
    status, body = await upload_raw_name(alice, b"hello\n", "../../../etc/\x00pass\u202ewd\x1b[31m\r\n.txt")
    assert status == 201, body
    assert body["name"] == "passwd[31m.txt"
    status, body = await upload_raw_name(alice, b"hello\n", "..\\..\\windows\\" + "a" * 400 + ".txt")
    assert status == 201 and len(body["name"]) == 200 and body["name"].endswith(".txt") and "\\" not in body["name"]
    status, body = await upload_raw_name(alice, b"hello\n", "..")
    assert status == 201 and body["name"] == "file"
    # the store holds the random ids only, inside its own directory
    assert all(not k.startswith(".") and "/" not in k for k in stored_keys(harness))
    assert not (Path(harness.env["CHAT_DATA_DIR"]).parent / "etc").exists()


async def test_a_decompression_bomb_is_refused_with_a_clear_error_and_the_server_keeps_serving(
        harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice = await harness.user(node)
    bomb = png(10_000, 10_000, mode="1")  # 100 megapixels in a few kilobytes
    assert len(bomb) < 100_000
    status, body = await upload(alice, bomb, "bomb.png", "image/png")
    assert status == 400 and body["error"]["code"] == "invalid" and "decompression bomb" in body["error"]["message"]
    assert await db_rows(harness, "SELECT id FROM files") == [] and stored_keys(harness) == []
    status, _ = await upload(alice, png(), "fine.png", "image/png")
    assert status == 201


# --- attachments --------------------------------------------------------------------------------

async def test_the_record_carries_attachments_in_ack_event_history_rest_sync_and_join(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob, room_id = await members(harness, node)
    _, image = await upload(alice, png(), "a.png", "image/png")
    _, doc = await upload(alice, b"minutes\n", "minutes.txt", "text/plain")
    ack = await alice.emit("message:send", {"room_id": room_id, "body": "", "client_id": "f-1",
                                            "attachments": [image["id"], doc["id"]]})
    assert ack["ok"] is True, ack
    sent = ack["message"]
    assert sent["body"] == ""  # files alone are a message
    assert [a["id"] for a in sent["attachments"]] == [image["id"], doc["id"]]
    first = sent["attachments"][0]
    assert set(first) == {"id", "name", "mime", "size", "url", "thumb_url", "width", "height"}
    assert (first["name"], first["mime"], first["width"], first["height"]) == ("a.png", "image/png", 640, 480)

    def ids(m: dict[str, Any]) -> list[str]:
        return [a["id"] for a in m["attachments"]]

    event = await bob.log.wait_for("message", lambda m: m["id"] == sent["id"])
    page = await bob.emit("history", {"room_id": room_id})
    _, rest = await bob.call("GET", f"/api/v1/rooms/{room_id}/messages", expect=200)
    sync = await bob.emit("sync", {"cursors": {str(room_id): 0}})
    join = await bob.emit("room:join", {"room_id": room_id})
    records = [event, page["messages"][0], rest["messages"][0], sync["rooms"][str(room_id)]["messages"][0],
               join["messages"][0]]
    for record in records:
        assert ids(record) == [image["id"], doc["id"]]
        for a in record["attachments"]:  # every copy's URLs work for the holder
            status, _, _ = await fetch(bob, a["url"])
            assert status == 200
    text = await alice.send(room_id, "no files")
    assert text["attachments"] == []


async def test_only_the_uploader_can_attach_an_upload_and_an_unknown_id_is_invalid(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob, room_id = await members(harness, node)
    _, mine = await upload(alice, b"alice's\n", "a.txt", "text/plain")
    ack = await bob.emit("message:send", {"room_id": room_id, "body": "look", "client_id": "b-1",
                                          "attachments": [mine["id"]]})
    assert ack["ok"] is False and ack["error"]["code"] == "forbidden"
    ack = await bob.emit("message:send", {"room_id": room_id, "body": "look", "client_id": "b-2",
                                          "attachments": ["x" * 24]})
    assert ack["ok"] is False and ack["error"]["code"] == "invalid"
    too_many = [(await upload(alice, b"n\n", f"{i}.txt", "text/plain"))[1]["id"] for i in range(11)]
    ack = await alice.emit("message:send", {"room_id": room_id, "body": "", "client_id": "a-9",
                                            "attachments": too_many})
    assert ack["ok"] is False and ack["error"]["code"] == "too_large"
    assert await db_rows(harness, "SELECT 1 FROM message_attachments") == []


async def test_an_upload_attaches_to_one_message_only_and_a_retry_returns_the_stored_message(
        harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, _bob, room_id = await members(harness, node)
    _, f = await upload(alice, b"once\n", "once.txt", "text/plain")
    payload = {"room_id": room_id, "body": "here", "client_id": "a-1", "attachments": [f["id"]]}
    acks = await asyncio.gather(*(alice.emit("message:send", payload) for _ in range(4)))  # retries, batched
    assert {a["message"]["id"] for a in acks} == {acks[0]["message"]["id"]}
    again = await alice.emit("message:send", {**payload, "client_id": "a-2"})
    assert again["ok"] is False and again["error"]["code"] == "conflict"
    # two different sends racing for one fresh upload: exactly one wins
    _, g = await upload(alice, b"race\n", "race.txt", "text/plain")
    race = await asyncio.gather(*(alice.emit("message:send", {"room_id": room_id, "body": "r", "client_id": f"r-{i}",
                                                             "attachments": [g["id"]]}) for i in range(4)))
    assert sorted(a["ok"] for a in race) == [False, False, False, True]
    assert {a["error"]["code"] for a in race if not a["ok"]} == {"conflict"}
    rows = await db_rows(harness, "SELECT file_id, message_id FROM message_attachments ORDER BY file_id")
    assert len(rows) == 2


async def test_a_user_who_cannot_read_the_room_never_gets_a_url_and_forged_or_expired_links_are_refused(
        harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob, room_id = await members(harness, node, kind="private")
    carol = await harness.user(node)
    await carol.connect()
    _, f = await upload(alice, png(), "secret.png", "image/png")
    sent = (await alice.emit("message:send", {"room_id": room_id, "body": "board only", "client_id": "s-1",
                                              "attachments": [f["id"]]}))["message"]
    await bob.log.wait_for("message", lambda m: m["id"] == sent["id"])
    status, err = await carol.call("GET", f"/api/v1/rooms/{room_id}/messages")
    assert status == 404 and "url" not in str(err)
    page = await carol.emit("history", {"room_id": room_id})
    assert page["ok"] is False
    sync = await carol.emit("sync", {"cursors": {str(room_id): 0}})
    assert sync["rooms"][str(room_id)]["messages"] == []
    join = await carol.emit("room:join", {"room_id": room_id})
    assert join["ok"] is False
    assert carol.log.all("message") == []  # not fanned out to her either

    url = sent["attachments"][0]["url"]
    parts = urlsplit(url)
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    tampered_sig = f"{parts.path}?exp={q['exp']}&sig={q['sig'][:-2]}{'AA' if q['sig'][-2:] != 'AA' else 'BB'}"
    later = f"{parts.path}?exp={int(q['exp']) + 3600}&sig={q['sig']}"
    as_thumb_of_other = f"{parts.path}?v=thumb&exp={q['exp']}&sig={q['sig']}"
    for forged in (tampered_sig, later, as_thumb_of_other, parts.path):
        status, _, _ = await fetch(carol, forged)
        assert status == 403, forged
    secret = read_secret(Path(harness.env["CHAT_DATA_DIR"]) / "keys" / "file-url.secret")
    expired = FileUrlSigner(secret, 60).url(f["id"], "secret.png", now=time.time() - 3600)
    status, _, _ = await fetch(carol, expired)
    assert status == 403
    status, _, _ = await fetch(carol, url)  # the genuine, fresh URL works for whoever holds it
    assert status == 200


async def test_deleting_a_message_revokes_its_attachments_at_once_and_the_sweep_deletes_the_bytes(
        harness: ServerHarness) -> None:
    node = await start(harness, orphan_ttl_s=4.0)  # the sweep runs every 2 s
    alice, bob, room_id = await members(harness, node)
    _, f = await upload(alice, png(), "gone.png", "image/png")
    sent = (await alice.emit("message:send", {"room_id": room_id, "body": "oops", "client_id": "d-1",
                                              "attachments": [f["id"]]}))["message"]
    url, thumb = sent["attachments"][0]["url"], sent["attachments"][0]["thumb_url"]
    assert (await fetch(bob, url))[0] == 200
    deleted = await alice.emit("message:delete", {"id": sent["id"]})
    assert deleted["ok"] is True and deleted["message"]["attachments"] == []
    assert (await fetch(bob, url))[0] in (404, 410)
    assert (await fetch(bob, thumb))[0] in (404, 410)
    page = await bob.emit("history", {"room_id": room_id})
    assert page["messages"][0]["attachments"] == []

    async def bytes_gone() -> bool:
        return stored_keys(harness) == [] and await db_rows(harness, "SELECT id FROM file_trash") == []

    await wait_until(bytes_gone, 10)


async def test_an_upload_never_attached_is_deleted_by_the_sweep_after_the_orphan_ttl(harness: ServerHarness) -> None:
    node = await start(harness, orphan_ttl_s=1.0)
    alice, _, room_id = await members(harness, node)
    _, orphan = await upload(alice, b"forgotten\n", "f.txt", "text/plain")
    _, kept = await upload(alice, b"kept\n", "k.txt", "text/plain")
    await alice.emit("message:send", {"room_id": room_id, "body": "", "client_id": "k-1", "attachments": [kept["id"]]})

    async def orphan_gone() -> bool:
        return [r["id"] for r in await db_rows(harness, "SELECT id FROM files")] == [kept["id"]] \
            and stored_keys(harness) == [kept["id"]]

    await wait_until(orphan_gone, 10)
    assert (await fetch(alice, orphan["url"]))[0] == 404
    ack = await alice.emit("message:send", {"room_id": room_id, "body": "", "client_id": "k-2",
                                            "attachments": [orphan["id"]]})
    assert ack["ok"] is False and ack["error"]["code"] == "invalid"
    assert (await fetch(alice, kept["url"]))[0] == 200


async def test_upload_needs_a_token_and_a_multipart_file_part(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice = await harness.user(node)
    async with alice.http.post(node.base_url + "/api/v1/uploads", data=b"x") as r:
        assert r.status == 401
    status, body = await alice.call("POST", "/api/v1/uploads", json={"file": "x"})
    assert status == 400 and body["error"]["code"] == "invalid"
    form = aiohttp.FormData()
    form.add_field("other", b"x", filename="x.txt", content_type="text/plain")
    status, body = await alice.call("POST", "/api/v1/uploads", data=form)
    assert status == 400 and body["error"]["code"] == "invalid"


async def test_a_malformed_multipart_body_or_a_second_part_is_invalid_and_nothing_is_kept(
        harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice = await harness.user(node)
    headers = {"Authorization": f"Bearer {alice.tokens['access_token']}"}
    # no boundary: aiohttp's reader cannot even start (this was a 500)
    async with alice.http.post(node.base_url + "/api/v1/uploads", data=b"--x\r\n",
                               headers={**headers, "Content-Type": "multipart/form-data"}) as r:
        assert r.status == 400 and (await r.json())["error"]["code"] == "invalid"
    # a part header aiohttp cannot parse (this was a 500 too)
    bad = b"--b\r\nContent-Disposition: form-data; name=\"\x01\x02\"\r\n\r\nx\r\n--b--\r\n"
    async with alice.http.post(node.base_url + "/api/v1/uploads", data=bad,
                               headers={**headers, "Content-Type": "multipart/form-data; boundary=b"}) as r:
        assert r.status == 400 and (await r.json())["error"]["code"] == "invalid"
    # the file and then another part: refused, and the file is not kept
    form = aiohttp.FormData()
    form.add_field("file", b"plain text", filename="a.txt", content_type="text/plain")
    form.add_field("extra", "x")
    status, body = await alice.call("POST", "/api/v1/uploads", data=form)
    assert status == 400 and body["error"]["code"] == "invalid"
    assert stored_keys(harness) == []
