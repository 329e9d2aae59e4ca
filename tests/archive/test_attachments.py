"""Attachments through the archive: the Kafka record and the archived document keep their metadata
(never a URL, which would expire), chat-server signs fresh URLs when it serves archived history,
chat-archive's own API signs with the shared secret, and archive retention deletes the bytes."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from PIL import Image

from tests.archive.conftest import ArchiveEnv, start_archive
from tests.archive.test_api_and_history import _get, _relaying_node, _wait_archived
from tests.support import Client, ServerHarness


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), "blue").save(out, "PNG")
    return out.getvalue()


async def _upload(client: Client, data: bytes, name: str, ctype: str) -> dict[str, Any]:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name, content_type=ctype)
    _, body = await client.call("POST", "/api/v1/uploads", data=form, expect=201)
    return dict(body)


async def _status(client: Client, url: str) -> int:
    async with client.http.get(client.base_url + url) as r:
        await r.read()
        return r.status


async def _archived_row(harness: ServerHarness, message_id: int) -> bool:
    conn = await asyncpg.connect(harness.database_url)
    try:
        return bool(await conn.fetchval("SELECT count(*) FROM archived_messages WHERE id = $1", message_id))
    finally:
        await conn.close()


async def test_archived_messages_keep_their_attachments_with_fresh_urls_and_retention_deletes_the_bytes(
        harness: ServerHarness, archive_env: ArchiveEnv) -> None:
    asked = await harness.start_node()
    secret_file = Path(harness.env["CHAT_DATA_DIR"]) / "keys" / "file-url.secret"  # written by the node
    archive = await start_archive(archive_env.config(chat_server_url=asked.base_url, file_url_secret_file=secret_file))
    try:
        node, alice, room_id = await _relaying_node(harness, archive_env, archive, "with files")
        staff = await harness.user(node, role="staff")
        image = await _upload(alice, _png(), "plan.png", "image/png")
        note = await _upload(alice, b"notes\n", "notes.txt", "text/plain")
        sent = (await alice.emit("message:send", {"room_id": room_id, "body": "see files", "client_id": "z-1",
                                                  "attachments": [image["id"], note["id"]]}))["message"]
        await _wait_archived(alice, room_id, 1, archive_env)

        # the archived document: metadata only
        doc = await archive_env.document(sent["id"])
        assert doc is not None
        assert [a["id"] for a in doc["attachments"]] == [image["id"], note["id"]]
        assert doc["attachments"][0] == {"id": image["id"], "name": "plan.png", "mime": "image/png",
                                         "size": image["size"], "width": 64, "height": 48}

        # chat-server's history, now read from the archive, signs fresh working URLs
        _, page = await alice.call("GET", f"/api/v1/rooms/{room_id}/messages", expect=200)
        [archived] = [m for m in page["messages"] if m["id"] == sent["id"]]
        assert [a["id"] for a in archived["attachments"]] == [image["id"], note["id"]]
        for a in archived["attachments"]:
            assert await _status(alice, a["url"]) == 200
        assert await _status(alice, archived["attachments"][0]["thumb_url"]) == 200

        # chat-archive's own API, with the shared secret: URLs chat-server serves
        status, body = await _get(archive.base_url, f"/archive/v1/rooms/{room_id}/messages", staff.tokens["access_token"])
        assert status == 200
        [staff_view] = [m for m in body["messages"] if m["id"] == sent["id"]]
        for a in staff_view["attachments"]:
            assert await _status(staff, a["url"]) == 200

        # archive retention (ARCHIVE_TTL_DAYS, read by chat-server too) deletes the bytes and
        # chat-server's line of the archived message
        assert await _archived_row(harness, sent["id"])
        await harness.stop_node(node)
        files = dataclasses.replace(harness.config().files, archive_ttl_days=1 / 86400, orphan_ttl_s=1.0)
        node = await harness.start_node(files=files)
        alice.base_url = node.base_url
        root = Path(harness.env["CHAT_DATA_DIR"]) / "files"
        deadline = time.monotonic() + 15
        while any(p.is_file() for p in root.rglob("*")):
            assert time.monotonic() < deadline, "archived files past retention were not deleted"
            await asyncio.sleep(0.2)
        assert await _status(alice, archived["attachments"][0]["url"]) == 404
        while await _archived_row(harness, sent["id"]):
            assert time.monotonic() < deadline + 15, "the archived message's row outlived retention"
            await asyncio.sleep(0.2)
    finally:
        await archive.runner.cleanup()


def test_an_attachment_status_survives_the_kafka_record_and_the_archive_and_only_ready_files_get_urls() -> None:
    from datetime import UTC, datetime

    from archive.storage import to_doc, to_wire
    from chatcore.events import Attachment, MessageRecord
    from chatcore.files import FileUrlSigner
    from chatcore.schemas import MessageRecordWire

    files = (Attachment("a" * 24, "image.jpg", "image/jpeg", 0, status="pending"),
             Attachment("b" * 24, "doc.pdf", "application/pdf", 0, status="unavailable"),
             Attachment("c" * 24, "plan.png", "image/png", 10, 4, 3))
    msg = MessageRecord(1, 2, 3, None, "contact", "Ann", "", datetime.now(UTC), attachments=files)
    record = msg.to_archive()
    assert [a.get("status") for a in record["attachments"]] == ["pending", "unavailable", None]
    served = to_wire(to_doc(record), FileUrlSigner(b"s" * 32, 3600))
    MessageRecordWire.model_validate(served)
    assert [(a.get("status"), a["url"] is None) for a in served["attachments"]] == [
        ("pending", True), ("unavailable", True), (None, False)]
