"""Files in linked-device conversations, on real PostgreSQL, Redis and the file store, with the
real neonize client: a contact's file fed as neonize's own protobuf message through its own
dispatcher, a staff file sent through our channel. Only the neonize client's calls that reach
WhatsApp's servers (connect, stop, who-am-I, download, upload, send, read receipts) are
replaced, on the client instance, by ``FakePhone``: the outside world, as no machine here
reaches WhatsApp. What only a real phone proves is in docs/WHATSAPP.md."""

from __future__ import annotations

import asyncio
import hashlib
import time
from types import SimpleNamespace
from typing import Any

import asyncpg
from neonize.exc import DownloadError
from neonize.proto.Neonize_pb2 import JID, Connected, MessageInfo, MessageSource, SendResponse, UploadResponse
from neonize.proto.Neonize_pb2 import Message as MessageEv
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import DocumentMessage, ImageMessage
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message as E2EMessage

from server.storage import wa_media as wdb
from server.storage import wa_sessions as sdb
from tests.server.test_wa_sessions import CONTACT, feed, running_session, service, text_event
from tests.server.test_whatsapp_media import PDF, _download, _updated, _upload, png
from tests.support import ChatNode, Client, ServerHarness

MIB = 1024 * 1024


class FakePhone:
    """WhatsApp's servers as the neonize client sees them: files to download by direct path,
    and what was uploaded and sent."""

    def __init__(self) -> None:
        self.task: asyncio.Future[None] | None = None
        self.files: dict[str, bytes] = {}
        self.downloads: list[str] = []
        self.failing: dict[str, int] = {}  # direct path -> downloads that fail before one succeeds
        self.uploads: list[tuple[bytes, int]] = []
        self.sent: list[tuple[Any, Any]] = []

    def install(self, client: Any) -> None:
        for name in ("connect", "stop", "get_me", "download_any", "upload", "send_message", "mark_read"):
            setattr(client, name, getattr(self, name))

    async def connect(self) -> asyncio.Future[None]:
        self.task = asyncio.get_running_loop().create_future()
        return self.task

    async def stop(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.set_result(None)

    async def get_me(self) -> Any:
        return SimpleNamespace(JID=JID(User="4915100000001", Server="s.whatsapp.net"))

    async def download_any(self, message: Any) -> bytes:
        part = next(getattr(message, f) for f in ("imageMessage", "documentMessage") if message.HasField(f))
        self.downloads.append(part.directPath)
        if self.failing.get(part.directPath, 0) > 0:
            self.failing[part.directPath] -= 1
            raise DownloadError("failed to download media: HTTP 503")
        return self.files[part.directPath]

    async def upload(self, data: bytes, media_type: Any) -> Any:
        self.uploads.append((data, media_type.value))
        return UploadResponse(url=f"https://mmg.whatsapp.net/up{len(self.uploads)}", DirectPath=f"/up{len(self.uploads)}",
                              MediaKey=b"m" * 32, FileEncSHA256=b"e" * 32, FileSHA256=hashlib.sha256(data).digest(),
                              FileLength=len(data))

    async def send_message(self, to: Any, message: Any) -> Any:
        self.sent.append((to, message))
        return SendResponse(ID=f"SENT{len(self.sent)}")

    async def mark_read(self, *args: Any, **kw: Any) -> None:
        return None


def file_event(message_id: str, message: E2EMessage) -> MessageEv:
    source = MessageSource(Chat=JID(User=CONTACT, Server="s.whatsapp.net"),
                           Sender=JID(User=CONTACT, Server="s.whatsapp.net"), IsFromMe=False, IsGroup=False)
    info = MessageInfo(MessageSource=source, ID=message_id, Pushname="Ann", Timestamp=int(time.time()), Type="media")
    return MessageEv(Info=info, Message=message)


async def linked_conversation(harness: ServerHarness) -> tuple[ChatNode, Client, int, int, FakePhone]:
    """A session linked to the fake phone, a conversation CONTACT opened by a text, taken over
    and joined by a staff member; the node, staff, session id, room id and the phone."""
    node, admin, staff, sid = await running_session(harness)
    phone = FakePhone()
    client = service(node).held[sid].client
    phone.install(client.neonize_client)
    deadline = time.monotonic() + 20
    while not (phone.task is not None and not phone.task.done() and client.running):
        assert time.monotonic() < deadline, "the session did not connect to the fake phone"
        await asyncio.sleep(0.05)
    await feed(node, sid, Connected(status=True))
    await admin.log.wait_for("wa:session", lambda e: e["kind"] == "connected", 10)
    await feed(node, sid, text_event("OPEN1", "hello"))
    conv = await staff.log.wait_for("conversation:updated", lambda c: c["channel"] == "linked_device", 10)
    room_id = int(conv["room_id"])
    await staff.call("POST", f"/api/v1/wa/conversations/{room_id}/takeover", expect=200)
    assert (await staff.emit("room:join", {"room_id": room_id}))["ok"]
    return node, staff, sid, room_id, phone


async def _file_message(node: ChatNode, staff: Client, sid: int, mid: str, message: E2EMessage) -> dict[str, Any]:
    await feed(node, sid, file_event(mid, message))
    wamid = f"ld:{sid}:{mid}"
    return dict(await staff.log.wait_for("message", lambda m: m["meta"].get("wamid") == wamid, timeout=10))


async def _queue_row(database_url: str, file_id: str) -> asyncpg.Record:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchrow("SELECT state, error, session_id, account_id FROM wa_media WHERE file_id = $1",
                                   file_id)
    finally:
        await conn.close()


async def test_a_linked_contacts_image_and_document_are_pending_then_ready_in_the_file_store(
        harness: ServerHarness, database_url: str) -> None:
    node, staff, sid, _, phone = await linked_conversation(harness)
    image = png(320, 200)
    phone.files["/v/img1"] = image
    msg = await _file_message(node, staff, sid, "IMG1", E2EMessage(imageMessage=ImageMessage(
        caption="my receipt", mimetype="image/png", fileLength=len(image), directPath="/v/img1", mediaKey=b"k" * 32)))
    [pending] = msg["attachments"]
    assert msg["body"] == "my receipt" and pending["status"] == "pending" and pending["name"] == "image.png"
    assert "mediaKey" not in str(msg["meta"]) and msg["meta"]["media_id"] == f"ld:{sid}:IMG1"
    updated = await staff.log.wait_for("message:updated", _updated(msg["id"], None), timeout=15)
    [ready] = updated["attachments"]
    assert (ready["mime"], ready["size"], ready["width"], ready["height"]) == ("image/png", len(image), 320, 200)
    assert await _download(staff, ready["url"]) == image
    row = await _queue_row(database_url, ready["id"])
    assert (row["state"], row["session_id"], row["account_id"]) == ("ready", sid, None)

    phone.files["/v/doc1"] = PDF
    doc = await _file_message(node, staff, sid, "DOC1", E2EMessage(documentMessage=DocumentMessage(
        caption="the offer", fileName="offer.pdf", mimetype="application/pdf", fileLength=len(PDF),
        directPath="/v/doc1")))
    done = await staff.log.wait_for("message:updated", _updated(doc["id"], None), timeout=15)
    [att] = done["attachments"]
    assert (done["body"], att["name"], att["mime"], att["size"]) == ("the offer", "offer.pdf", "application/pdf",
                                                                    len(PDF))
    assert await _download(staff, att["url"]) == PDF
    assert phone.downloads == ["/v/img1", "/v/doc1"]


async def test_a_linked_file_past_its_size_limit_or_of_the_wrong_type_is_unavailable_with_the_reason(
        harness: ServerHarness, database_url: str) -> None:
    node, staff, sid, _, phone = await linked_conversation(harness)
    big = await _file_message(node, staff, sid, "BIG1", E2EMessage(imageMessage=ImageMessage(
        mimetype="image/jpeg", fileLength=6 * MIB, directPath="/v/big")))  # images: 5 MiB at most
    await staff.log.wait_for("message:updated", _updated(big["id"], "unavailable"), timeout=15)
    row = await _queue_row(database_url, big["attachments"][0]["id"])
    assert (row["state"], row["error"]) == ("unavailable", "too_large")
    # a size the message understates is caught on the bytes
    phone.files["/v/liar"] = png(64, 64) + b"\0" * (5 * MIB)
    liar = await _file_message(node, staff, sid, "LIAR1", E2EMessage(imageMessage=ImageMessage(
        mimetype="image/png", fileLength=1000, directPath="/v/liar")))
    await staff.log.wait_for("message:updated", _updated(liar["id"], "unavailable"), timeout=15)
    assert (await _queue_row(database_url, liar["attachments"][0]["id"]))["error"] == "too_large"
    # an "image" whose bytes are a PDF
    phone.files["/v/fake"] = PDF
    fake = await _file_message(node, staff, sid, "FAKE1", E2EMessage(imageMessage=ImageMessage(
        mimetype="image/jpeg", fileLength=len(PDF), directPath="/v/fake")))
    await staff.log.wait_for("message:updated", _updated(fake["id"], "unavailable"), timeout=15)
    assert (await _queue_row(database_url, fake["attachments"][0]["id"]))["error"] == "unsupported_type"
    assert phone.downloads == ["/v/liar", "/v/fake"]  # the declared 6 MiB was never downloaded


async def test_a_linked_file_whose_download_fails_once_stays_pending_and_is_fetched_on_the_next_try(
        harness: ServerHarness, database_url: str) -> None:
    node, staff, sid, _, phone = await linked_conversation(harness)
    image = png(50, 50)
    phone.files["/v/flaky"] = image
    phone.failing["/v/flaky"] = 1
    msg = await _file_message(node, staff, sid, "FLAKY1", E2EMessage(imageMessage=ImageMessage(
        mimetype="image/png", fileLength=len(image), directPath="/v/flaky")))
    # the first fetch fails; no unavailable in between: the row waits (LINKED_RETRY_S) and the
    # sweep fetches it again
    updated = await staff.log.wait_for("message:updated", lambda m: m["id"] == msg["id"], timeout=40)
    assert "status" not in updated["attachments"][0] and await _download(staff, updated["attachments"][0]["url"]) == image
    assert phone.downloads == ["/v/flaky", "/v/flaky"]
    assert (await _queue_row(database_url, msg["attachments"][0]["id"]))["state"] == "ready"


async def test_a_staff_file_in_a_linked_conversation_is_uploaded_through_neonize_and_sent_with_its_caption(
        harness: ServerHarness) -> None:
    _, staff, _, room_id, phone = await linked_conversation(harness)
    image = png(100, 80)
    upload_id = await _upload(staff, image, "plan.png")
    ack = await staff.emit("message:send", {"room_id": room_id, "body": "Here is the plan", "client_id": "ld-img",
                                            "attachments": [upload_id]})
    assert ack["ok"], ack
    sent = await staff.log.wait_for("wa:status", lambda e: e["message_id"] == ack["message"]["id"], timeout=15)
    assert sent["status"] == "sent" and sent["error"] is None and sent["wamid"].endswith(":SENT" + str(len(phone.sent)))
    assert phone.uploads[-1] == (image, 0)  # MediaType.MediaImage
    to, message = phone.sent[-1]
    assert to.User == CONTACT and message.HasField("imageMessage")
    assert (message.imageMessage.caption, message.imageMessage.mimetype) == ("Here is the plan", "image/png")
    assert message.imageMessage.fileSHA256 == hashlib.sha256(image).digest()
    assert message.imageMessage.fileLength == len(image) and message.imageMessage.directPath
    # a document keeps its name; a file WhatsApp would refuse is refused before it is stored
    doc_id = await _upload(staff, PDF, "invoice.pdf")
    ack = await staff.emit("message:send", {"room_id": room_id, "body": "", "client_id": "ld-pdf",
                                            "attachments": [doc_id]})
    assert ack["ok"], ack
    await staff.log.wait_for("wa:status", lambda e: e["message_id"] == ack["message"]["id"] and
                             e["status"] == "sent", timeout=15)
    assert phone.uploads[-1] == (PDF, 3)  # MediaType.MediaDocument
    doc = phone.sent[-1][1].documentMessage
    assert (doc.fileName, doc.mimetype, doc.caption) == ("invoice.pdf", "application/pdf", "")
    gif = await _upload(staff, b"GIF89a" + b"\0" * 100, "wave.gif")
    refused = await staff.emit("message:send", {"room_id": room_id, "body": "", "client_id": "ld-gif",
                                                "attachments": [gif]})
    assert not refused["ok"] and refused["error"]["code"] == "unsupported_type"


async def test_a_linked_file_is_claimed_only_by_the_node_holding_its_session_or_by_any_while_none_does(
        database_url: str) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    assert pool is not None
    try:
        held, free = await sdb.insert(pool, "held"), await sdb.insert(pool, "free")
        [claimed] = await sdb.claim(pool, "node-b", 30, [free.id], 10)
        assert claimed.id == held.id
        for file_id, sid in (("f-held", held.id), ("f-free", free.id)):
            await wdb.insert(pool, file_id, 1, 1, None, f"ld:{sid}:X", "image", session_id=sid, payload=b"m")

        async def claims(node: str) -> set[str]:
            rows = await wdb.claim_due(pool, 100, 0.0, node)
            return {r.file_id for r in rows} & {"f-held", "f-free"}

        # node a: only the file of the session nobody holds; node b, the holder: both
        assert await claims("node-a") == {"f-free"}
        assert await claims("node-b") == {"f-held", "f-free"}
    finally:
        await pool.close()
