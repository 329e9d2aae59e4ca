"""WhatsApp media in and out, end to end on real services with the fake Graph API: a contact's
file is fetched into the file store after its message reached staff (pending, then ready with
signed URLs), a failed fetch leaves the message with an unavailable attachment that a staff
retry repairs, and a staff file goes out as an upload plus a media message, refused before any
Graph call when WhatsApp would refuse it."""

from __future__ import annotations

import asyncio
import hashlib
import io
import struct
import time
import uuid
from typing import Any

import aiohttp
from PIL import Image

from tests.fakes.graph_api import GraphApiFake, make_media_webhook, make_text_webhook, signed_post
from tests.support import ChatNode, Client, ServerHarness

PN, SECRET, TOKEN = "PN200", "app-secret-media", "EAAG-media-token"
CONTACT = "4917055500011"
PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n" + b"%" * 4000


def png(width: int = 640, height: int = 480) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "teal").save(out, "PNG")
    return out.getvalue()


def ogg_opus(size: int = 20_000) -> bytes:
    """The first Ogg page of an Opus stream (what a WhatsApp voice note starts with), padded."""
    head = b"OpusHead" + bytes([1, 1]) + struct.pack("<HIhB", 312, 48000, 0, 0)
    page = b"OggS" + bytes([0, 2]) + b"\0" * 8 + b"\x01\0\0\0" + b"\0" * 8 + bytes([1, len(head)]) + head
    return page + bytes(i % 251 for i in range(size - len(page)))


async def _setup(harness: ServerHarness, graph: GraphApiFake, **config: Any) -> tuple[ChatNode, Client, int]:
    """A number, a staff member connected and in the conversation of CONTACT (opened by a text
    the assistant answered), the conversation taken over; the room id."""
    graph.access_token = TOKEN
    node = await harness.start_node(wa_graph_url=graph.base_url, **config)
    admin = await harness.user(node, role="admin")
    staff = await harness.user(node, role="staff")
    await admin.call("POST", "/api/v1/admin/wa/accounts", {
        "phone_number_id": PN, "display_phone": "+1 555 000 2222", "access_token": TOKEN,
        "app_secret": SECRET, "verify_token": "verify"}, expect=201)
    await staff.connect()
    await _post(harness, node, make_text_webhook(PN, CONTACT, "Ann", "wamid.OPEN", "hello"))
    conv = await staff.log.wait_for("conversation:updated", timeout=10)
    room_id = int(conv["room_id"])
    await graph.wait_for_sends(1)  # the assistant's answer to the text
    await staff.call("POST", f"/api/v1/wa/conversations/{room_id}/takeover", expect=200)
    assert (await staff.emit("room:join", {"room_id": room_id}))["ok"]
    return node, staff, room_id


async def _post(harness: ServerHarness, node: ChatNode, payload: dict[str, Any]) -> None:
    raw, headers = signed_post(SECRET, payload)
    async with harness.http.post(node.base_url + "/webhooks/whatsapp", data=raw, headers=headers) as r:
        assert r.status == 200, await r.text()


async def _download(client: Client, url: str) -> bytes:
    async with client.http.get(client.base_url + url) as r:  # no token: the signed URL is the permission
        assert r.status == 200, r.status
        return await r.read()


async def _upload(client: Client, data: bytes, name: str) -> str:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name, content_type="application/octet-stream")
    _, body = await client.call("POST", "/api/v1/uploads", data=form, expect=201)
    return str(body["id"])


def _updated(msg_id: int, status: str | None) -> Any:
    def match(m: dict[str, Any]) -> bool:
        return m["id"] == msg_id and bool(m["attachments"]) and m["attachments"][0].get("status") == status

    return match


async def _inbound(harness: ServerHarness, node: ChatNode, staff: Client, wamid: str, **media: Any) -> dict[str, Any]:
    """A contact's media message posted to the webhook; the ``message`` staff receive."""
    await _post(harness, node, make_media_webhook(PN, CONTACT, "Ann", wamid, **media))
    return dict(await staff.log.wait_for("message", lambda m: m["meta"].get("wamid") == wamid, timeout=10))


async def test_a_contacts_image_reaches_staff_at_once_then_becomes_ready_with_urls_serving_the_same_bytes(
        harness: ServerHarness, graph: GraphApiFake) -> None:
    node, staff, room_id = await _setup(harness, graph)
    image = png(640, 480)
    graph.serve_media("IMG-1", image, "image/png")
    msg = await _inbound(harness, node, staff, "wamid.IMG1", kind="image", media_id="IMG-1", mime_type="image/png",
                         caption="my bike")
    assert msg["body"] == "my bike" and msg["author_kind"] == "contact"
    [pending] = msg["attachments"]
    assert pending["status"] == "pending" and pending["url"] is None and pending["mime"] == "image/png"
    updated = await staff.log.wait_for("message:updated", _updated(msg["id"], None), timeout=15)
    [ready] = updated["attachments"]
    assert ready["id"] == pending["id"] and "status" not in ready
    assert (ready["mime"], ready["size"], ready["width"], ready["height"]) == ("image/png", len(image), 640, 480)
    assert await _download(staff, ready["url"]) == image
    thumb = Image.open(io.BytesIO(await _download(staff, ready["thumb_url"])))
    assert thumb.format == "WEBP" and max(thumb.size) <= 320
    # both Graph calls carried the number's token; the download went to the URL Meta gave
    assert [(r.on, r.headers.get("Authorization")) for r in graph.media_requests] == [
        ("info", f"Bearer {TOKEN}"), ("download", f"Bearer {TOKEN}")]
    # every later copy of the record (history) is the ready one
    _, hist = await staff.call("GET", f"/api/v1/rooms/{room_id}/messages", expect=200)
    assert hist["messages"][-1]["attachments"][0]["size"] == len(image)


async def test_a_voice_note_in_ogg_opus_is_fetched_and_served_as_audio(harness: ServerHarness, graph: GraphApiFake) -> None:
    node, staff, _ = await _setup(harness, graph)
    voice = ogg_opus()
    graph.serve_media("VOICE-1", voice, "audio/ogg; codecs=opus")
    await _post(harness, node, make_media_webhook(PN, CONTACT, "Ann", "wamid.V1", "audio", media_id="VOICE-1",
                                                  mime_type="audio/ogg; codecs=opus"))
    msg = await staff.log.wait_for("message", lambda m: m["meta"].get("wamid") == "wamid.V1", timeout=10)
    assert msg["body"] == "" and msg["attachments"][0]["status"] == "pending"
    updated = await staff.log.wait_for("message:updated", _updated(msg["id"], None), timeout=15)
    [ready] = updated["attachments"]
    assert ready["mime"] == "audio/ogg" and ready["size"] == len(voice) and ready["thumb_url"] is None
    assert ready["name"].endswith(".ogg")
    assert await _download(staff, ready["url"]) == voice


async def test_a_media_fetch_that_404s_leaves_the_message_with_an_unavailable_file_that_a_retry_repairs(
        harness: ServerHarness, graph: GraphApiFake) -> None:
    node, staff, room_id = await _setup(harness, graph)
    doc = PDF
    # Meta does not know the media id (yet): GET /{media-id} answers 404
    msg = await _inbound(harness, node, staff, "wamid.D1", kind="document", media_id="DOC-1",
                         mime_type="application/pdf", filename="invoice.pdf", caption="march")
    failed = await staff.log.wait_for("message:updated", _updated(msg["id"], "unavailable"), timeout=15)
    assert failed["body"] == "march" and failed["attachments"][0]["url"] is None
    assert failed["attachments"][0]["name"] == "invoice.pdf"
    _, hist = await staff.call("GET", f"/api/v1/rooms/{room_id}/messages", expect=200)
    assert hist["messages"][-1]["id"] == msg["id"] and hist["messages"][-1]["attachments"][0]["status"] == "unavailable"
    # Meta has it now: a staff retry fetches it again
    graph.serve_media("DOC-1", doc, "application/pdf")
    att_id = msg["attachments"][0]["id"]
    _, body = await staff.call("POST", f"/api/v1/wa/conversations/{room_id}/media/{att_id}/retry", expect=200)
    assert body["message"]["attachments"][0]["status"] == "pending"
    ready = await staff.log.wait_for("message:updated", _updated(msg["id"], None), timeout=15)
    assert ready["attachments"][0]["mime"] == "application/pdf"
    assert await _download(staff, ready["attachments"][0]["url"]) == doc
    # a retry of a ready file changes nothing; an unknown attachment or another room is 404
    _, again = await staff.call("POST", f"/api/v1/wa/conversations/{room_id}/media/{att_id}/retry", expect=200)
    assert "status" not in again["message"]["attachments"][0]
    await staff.call("POST", f"/api/v1/wa/conversations/{room_id}/media/nope-{uuid.uuid4().hex[:8]}/retry", expect=404)
    await staff.call("POST", f"/api/v1/wa/conversations/{room_id + 1000}/media/{att_id}/retry", expect=404)


async def test_a_media_download_that_times_out_is_unavailable_and_a_retry_after_recovery_makes_it_ready(
        harness: ServerHarness, graph: GraphApiFake) -> None:
    node, staff, room_id = await _setup(harness, graph, wa_media_timeout_s=0.5)
    image = png(320, 200)
    graph.serve_media("IMG-T", image, "image/png")
    graph.fail_media_next(200, on="download", delay_s=5.0, times=3)  # every attempt of the fetch is too slow
    msg = await _inbound(harness, node, staff, "wamid.T1", kind="image", media_id="IMG-T", mime_type="image/png")
    await staff.log.wait_for("message:updated", _updated(msg["id"], "unavailable"), timeout=30)
    assert len([r for r in graph.media_requests if r.on == "download"]) == 3
    att_id = msg["attachments"][0]["id"]
    await staff.call("POST", f"/api/v1/wa/conversations/{room_id}/media/{att_id}/retry", expect=200)
    ready = await staff.log.wait_for("message:updated", _updated(msg["id"], None), timeout=15)
    assert await _download(staff, ready["attachments"][0]["url"]) == image


async def test_a_media_file_past_whatsapps_size_for_its_kind_is_unavailable_without_a_download(
        harness: ServerHarness, graph: GraphApiFake) -> None:
    node, staff, _ = await _setup(harness, graph)
    graph.serve_media("IMG-BIG", png(64, 64) + b"\0" * (5 * 1024 * 1024), "image/jpeg")  # images: 5 MiB at most
    msg = await _inbound(harness, node, staff, "wamid.BIG", kind="image", media_id="IMG-BIG")
    await staff.log.wait_for("message:updated", _updated(msg["id"], "unavailable"), timeout=15)
    assert [r.on for r in graph.media_requests] == ["info"]


async def test_a_staff_reply_with_a_pdf_uploads_the_same_bytes_and_sends_a_document_with_its_name_and_caption(
        harness: ServerHarness, graph: GraphApiFake) -> None:
    _, staff, room_id = await _setup(harness, graph)
    upload_id = await _upload(staff, PDF, "invoice.pdf")
    ack = await staff.emit("message:send", {"room_id": room_id, "body": "Your invoice", "client_id": "pdf-1",
                                            "attachments": [upload_id]})
    assert ack["ok"], ack
    sent = await staff.log.wait_for("wa:status", lambda e: e["message_id"] == ack["message"]["id"], timeout=15)
    assert sent["status"] == "sent" and sent["error"] is None
    [up] = graph.uploads
    assert up.data == PDF and hashlib.sha256(up.data).digest() == hashlib.sha256(PDF).digest()
    assert up.fields == {"messaging_product": "whatsapp", "type": "application/pdf"}
    assert up.filename == "invoice.pdf" and up.phone_number_id == PN
    assert up.headers["Authorization"] == f"Bearer {TOKEN}"
    [doc] = [r for r in graph.sends() if r.json["type"] == "document"]
    assert doc.json["to"] == CONTACT
    assert doc.json["document"] == {"id": up.media_id, "filename": "invoice.pdf", "caption": "Your invoice"}
    assert sent["wamid"]


async def test_an_audio_reply_goes_without_a_caption_and_its_text_goes_first_as_a_text(
        harness: ServerHarness, graph: GraphApiFake) -> None:
    _, staff, room_id = await _setup(harness, graph)
    upload_id = await _upload(staff, ogg_opus(), "note.ogg")
    ack = await staff.emit("message:send", {"room_id": room_id, "body": "listen", "client_id": "ogg-1",
                                            "attachments": [upload_id]})
    assert ack["ok"], ack
    await staff.log.wait_for("wa:status", lambda e: e["message_id"] == ack["message"]["id"], timeout=15)
    text, audio = graph.sends()[-2:]
    assert text.json["text"]["body"] == "listen"
    assert audio.json["audio"] == {"id": graph.uploads[0].media_id}


async def test_files_whatsapp_refuses_are_refused_before_any_graph_call(harness: ServerHarness,
                                                                        graph: GraphApiFake) -> None:
    _, staff, room_id = await _setup(harness, graph)
    before = len(graph.requests)
    gif = _gif()
    cases = [
        (await _upload(staff, gif, "wave.gif"), "unsupported_type"),  # an image type WhatsApp does not take
        # a PNG past WhatsApp's 5 MB for images (ours is 25 MiB)
        (await _upload(staff, png(32, 32) + b"\0" * 6_000_000, "huge.png"), "too_large"),
        # Ogg audio with the Vorbis codec: WhatsApp takes Opus only
        (await _upload(staff, ogg_opus().replace(b"OpusHead", b"\x01vorbis\0"), "old.ogg"), "unsupported_type"),
    ]
    for i, (upload_id, code) in enumerate(cases):
        ack = await staff.emit("message:send", {"room_id": room_id, "body": "look", "client_id": f"no-{i}",
                                                "attachments": [upload_id]})
        assert ack["ok"] is False and ack["error"]["code"] == code, ack
        assert ack["error"]["details"]["field"] == "attachments"
    assert len(graph.requests) == before and graph.uploads == []
    _, hist = await staff.call("GET", f"/api/v1/rooms/{room_id}/messages", expect=200)
    assert all(not m["attachments"] for m in hist["messages"])  # nothing was stored


async def test_a_file_outside_the_24_hour_window_is_refused_like_text(harness: ServerHarness,
                                                                       graph: GraphApiFake) -> None:
    graph.access_token = TOKEN
    node = await harness.start_node(wa_graph_url=graph.base_url)
    admin = await harness.user(node, role="admin")
    staff = await harness.user(node, role="staff")
    await admin.call("POST", "/api/v1/admin/wa/accounts", {
        "phone_number_id": PN, "display_phone": "+1 555 000 2222", "access_token": TOKEN,
        "app_secret": SECRET, "verify_token": "verify"}, expect=201)
    await staff.connect()
    await _post(harness, node, make_text_webhook(PN, CONTACT, "Ann", "wamid.OLD", "old", ts=int(time.time()) - 25 * 3600))
    conv = await staff.log.wait_for("conversation:updated", timeout=10)
    assert conv["window_open"] is False
    upload_id = await _upload(staff, PDF, "invoice.pdf")
    ack = await staff.emit("message:send", {"room_id": conv["room_id"], "body": "", "client_id": "late-1",
                                            "attachments": [upload_id]})
    assert ack["ok"] is False and ack["error"]["details"]["reason"] == "outside_window"
    assert graph.uploads == []


def _gif() -> bytes:
    out = io.BytesIO()
    Image.new("P", (8, 8)).save(out, "GIF")
    return out.getvalue()


async def test_in_ai_mode_a_photo_without_caption_gets_an_answer_and_its_file(harness: ServerHarness,
                                                                              graph: GraphApiFake) -> None:
    graph.access_token = TOKEN
    node = await harness.start_node(wa_graph_url=graph.base_url)
    admin = await harness.user(node, role="admin")
    staff = await harness.user(node, role="staff")
    await admin.call("POST", "/api/v1/admin/wa/accounts", {
        "phone_number_id": PN, "display_phone": "+1 555 000 2222", "access_token": TOKEN,
        "app_secret": SECRET, "verify_token": "verify"}, expect=201)
    image = png(100, 80)
    graph.serve_media("IMG-AI", image, "image/png")
    await _post(harness, node, make_media_webhook(PN, CONTACT, "Ann", "wamid.AI1", "image", media_id="IMG-AI",
                                                  mime_type="image/png"))
    [reply] = await graph.wait_for_sends(1)  # the assistant answered the photo
    assert reply.json["type"] == "text" and reply.json["to"] == CONTACT

    async def ready() -> bool:
        rows = await staff.call("GET", "/api/v1/wa/conversations", expect=200)
        room_id = rows[1]["conversations"][0]["room_id"]
        _, hist = await staff.call("GET", f"/api/v1/rooms/{room_id}/messages", expect=200)
        att = hist["messages"][0]["attachments"][0]
        return "status" not in att and await _download(staff, att["url"]) == image

    deadline = time.monotonic() + 15
    while not await ready():
        assert time.monotonic() < deadline, "the photo did not become ready"
        await asyncio.sleep(0.1)
