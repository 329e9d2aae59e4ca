"""Private notes in WhatsApp conversations: staff see them live; they never reach the contact
(the Graph API), the assistant's prompt (Gemini), the messages table (history, sync, search and
the archive relay read only from it); each one leaves one audit row."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from ai.settings import AISettings
from tests.fakes.gemini import GeminiFake
from tests.fakes.graph_api import GraphApiFake, make_text_webhook, signed_post
from tests.support import ChatNode, Client, ServerHarness

PN, SECRET = "PN400", "app-secret-notes"
CONTACT = "4917044400001"
NOTE = "internal: refund approved, code ZEBRA-4417"


@pytest.fixture
async def gemini() -> AsyncIterator[GeminiFake]:
    fake = await GeminiFake().start()
    yield fake
    await fake.stop()


async def _setup(harness: ServerHarness, graph: GraphApiFake, gemini: GeminiFake) -> tuple[ChatNode, Client, Client]:
    ai = AISettings(provider="gemini", api_key="test-key", base_url=gemini.base_url, timeout_s=5, max_retries=1)
    node = await harness.start_node(wa_graph_url=graph.base_url, ai=ai)
    admin = await harness.user(node, role="admin")
    staff = await harness.user(node, role="staff")
    await admin.call("POST", "/api/v1/admin/wa/accounts", {
        "phone_number_id": PN, "display_phone": "+1 555 000 4444", "access_token": "EAAG-token",
        "app_secret": SECRET, "verify_token": "v"}, expect=201)
    await staff.connect()
    return node, admin, staff


async def _inbound(harness: ServerHarness, node: ChatNode, wamid: str, text: str) -> None:
    raw, headers = signed_post(SECRET, make_text_webhook(PN, CONTACT, "Ann", wamid, text))
    async with harness.http.post(node.base_url + "/webhooks/whatsapp", data=raw, headers=headers) as r:
        assert r.status == 200


async def _fetch(harness: ServerHarness, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(harness.database_url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def test_a_note_reaches_staff_live_and_never_the_contact_the_assistant_or_the_messages(
        harness: ServerHarness, graph: GraphApiFake, gemini: GeminiFake) -> None:
    node, _, staff = await _setup(harness, graph, gemini)
    other = await harness.user(node, role="supervisor")
    await other.connect()
    await _inbound(harness, node, "wamid.N1", "hello, is my refund coming?")
    conv = await staff.log.wait_for("conversation:updated", timeout=10)
    room_id = conv["room_id"]
    await graph.wait_for_sends(1, timeout=30)  # the assistant answered (AI mode); the SDK starts slowly

    _, body = await staff.call("POST", f"/api/v1/wa/conversations/{room_id}/notes", {"body": f"  {NOTE} "}, expect=201)
    note = body["note"]
    assert note["body"] == NOTE and note["room_id"] == room_id and note["author"]["id"] == staff.id
    live = await other.log.wait_for("note:added", timeout=10)
    assert live == note

    # the contact writes again: the assistant answers from the conversation, which has no note in it
    await _inbound(harness, node, "wamid.N2", "and what is the code?")
    await graph.wait_for_sends(2, timeout=30)
    assert len(gemini.requests) >= 2
    for request in gemini.requests:
        assert "ZEBRA" not in json.dumps(request.body)
    for sent in graph.requests:
        assert "ZEBRA" not in json.dumps(sent.json)

    _, hist = await staff.call("GET", f"/api/v1/rooms/{room_id}/messages", expect=200)
    assert all("ZEBRA" not in m["body"] for m in hist["messages"])
    assert await _fetch(harness, "SELECT id FROM messages WHERE body LIKE '%ZEBRA%'") == []
    _, listed = await staff.call("GET", f"/api/v1/wa/conversations/{room_id}/notes", expect=200)
    assert listed["notes"] == [note]
    # no Graph API request at all came from the note: the two sends are the two assistant replies
    assert len(graph.sends()) == 2


async def test_each_note_leaves_one_audit_row_with_its_author_and_address(
        harness: ServerHarness, graph: GraphApiFake, gemini: GeminiFake) -> None:
    node, _, staff = await _setup(harness, graph, gemini)
    await _inbound(harness, node, "wamid.N3", "hi")
    room_id = (await staff.log.wait_for("conversation:updated", timeout=10))["room_id"]
    ids = []
    for text in ("first", "second"):
        _, body = await staff.call("POST", f"/api/v1/wa/conversations/{room_id}/notes", {"body": text}, expect=201)
        ids.append(body["note"]["id"])
    rows = await _fetch(harness, "SELECT actor_id, target_type, target_id, meta FROM audit_log "
                                 "WHERE action = 'note.add' ORDER BY id")
    metas = [json.loads(r["meta"]) for r in rows]  # a plain connection: jsonb arrives as text
    assert [(r["actor_id"], r["target_type"], r["target_id"], m["note_id"]) for r, m in zip(rows, metas, strict=True)] == [
        (staff.id, "conversation", room_id, ids[0]), (staff.id, "conversation", room_id, ids[1])]
    assert [m["ip"] for m in metas] == ["127.0.0.1", "127.0.0.1"]


async def test_notes_are_refused_to_users_unknown_conversations_and_empty_bodies(
        harness: ServerHarness, graph: GraphApiFake, gemini: GeminiFake) -> None:
    node, _, staff = await _setup(harness, graph, gemini)
    user = await harness.user(node)
    await _inbound(harness, node, "wamid.N4", "hi")
    room_id = (await staff.log.wait_for("conversation:updated", timeout=10))["room_id"]
    status, body = await user.call("POST", f"/api/v1/wa/conversations/{room_id}/notes", {"body": "x"})
    assert status == 403 and body["error"]["code"] == "forbidden"
    status, _ = await user.call("GET", f"/api/v1/wa/conversations/{room_id}/notes")
    assert status == 403
    status, body = await staff.call("POST", f"/api/v1/wa/conversations/{room_id + 1000}/notes", {"body": "x"})
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body = await staff.call("POST", f"/api/v1/wa/conversations/{room_id}/notes", {"body": "   "})
    assert status == 400 and body["error"]["code"] == "invalid"
    assert await _fetch(harness, "SELECT id FROM notes") == []
    assert await _fetch(harness, "SELECT id FROM audit_log WHERE action = 'note.add'") == []
