"""Agent assist: staff ask the assistant for a summary of a WhatsApp conversation and for a
suggested reply. Both come back as drafts labelled AI-written, read the conversation but never
the private notes, and are stored nowhere and sent to nobody (no message row, no Graph API
request); they count against the staff member's hourly quota."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from ai.offline import OfflineProvider
from ai.settings import AISettings
from tests.fakes.gemini import GeminiFake, Step
from tests.fakes.graph_api import GraphApiFake, make_text_webhook, signed_post
from tests.support import ChatNode, Client, ServerHarness

PN, SECRET = "PN410", "app-secret-assist"
CONTACT = "4917044400010"


@pytest.fixture
async def gemini() -> AsyncIterator[GeminiFake]:
    fake = await GeminiFake(default_reply="Your parcel ships on Monday.").start()
    yield fake
    await fake.stop()


async def _setup(harness: ServerHarness, graph: GraphApiFake, ai: AISettings) -> tuple[ChatNode, Client]:
    node = await harness.start_node(wa_graph_url=graph.base_url, ai=ai)
    admin = await harness.user(node, role="admin")
    staff = await harness.user(node, role="staff")
    await admin.call("POST", "/api/v1/admin/wa/accounts", {
        "phone_number_id": PN, "display_phone": "+1 555 000 4410", "access_token": "EAAG-token",
        "app_secret": SECRET, "verify_token": "v"}, expect=201)
    await staff.connect()
    return node, staff


async def _inbound(harness: ServerHarness, node: ChatNode, wamid: str, text: str) -> None:
    raw, headers = signed_post(SECRET, make_text_webhook(PN, CONTACT, "Ann", wamid, text))
    async with harness.http.post(node.base_url + "/webhooks/whatsapp", data=raw, headers=headers) as r:
        assert r.status == 200


async def _taken_over(harness: ServerHarness, node: ChatNode, staff: Client, *texts: str) -> int:
    """A conversation with the contact's messages in it, taken over (the assistant off), so that
    nothing but agent assist asks the provider from here on."""
    await _inbound(harness, node, "wamid.A0", "hello")
    room_id: int = (await staff.log.wait_for("conversation:updated", timeout=10))["room_id"]
    await staff.call("POST", f"/api/v1/wa/conversations/{room_id}/takeover", expect=200)
    for i, text in enumerate(texts, 1):
        await _inbound(harness, node, f"wamid.A{i}", text)
    await _wait_messages(harness, room_id, 1 + len(texts))
    return room_id


async def _fetch(harness: ServerHarness, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(harness.database_url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def _wait_messages(harness: ServerHarness, room_id: int, contact_messages: int) -> None:
    async with asyncio.timeout(10):
        while len(await _fetch(harness, "SELECT id FROM messages WHERE room_id = $1 AND author_kind = 'contact'",
                               room_id)) < contact_messages:
            await asyncio.sleep(0.05)


async def test_summary_and_suggestion_are_ai_labelled_drafts_that_read_the_chat_not_the_notes_and_send_nothing(
        harness: ServerHarness, graph: GraphApiFake, gemini: GeminiFake) -> None:
    ai = AISettings(provider="gemini", api_key="test-key", base_url=gemini.base_url, timeout_s=5, max_retries=1)
    node, staff = await _setup(harness, graph, ai)
    room_id = await _taken_over(harness, node, staff, "my order 77141 has not arrived", "when does it ship?")
    await staff.call("POST", f"/api/v1/wa/conversations/{room_id}/notes", {"body": "VIP, code ZEBRA-7"}, expect=201)
    sends_before = len(graph.sends())
    rows_before = await _fetch(harness, "SELECT id FROM messages WHERE room_id = $1", room_id)
    asked_before = len(gemini.requests)

    _, body = await staff.call("POST", f"/api/v1/wa/conversations/{room_id}/assist/summary", expect=200)
    summary = body["draft"]
    assert summary["ai_written"] is True and summary["provider"] == "gemini" and summary["offline"] is False
    assert summary["text"] == "Your parcel ships on Monday."  # what the provider wrote, as it wrote it
    _, body = await staff.call("POST", f"/api/v1/wa/conversations/{room_id}/assist/suggestion", expect=200)
    suggestion = body["draft"]
    assert suggestion["ai_written"] is True and suggestion["text"] == "Your parcel ships on Monday."

    asked = gemini.requests[asked_before:]
    assert [r.method for r in asked] == ["generateContent", "streamGenerateContent"]
    for request in asked:
        sent = json.dumps(request.body)
        assert "77141" in sent and "when does it ship?" in sent  # the conversation is read
        assert "ZEBRA" not in sent  # the private note is not
    assert len(graph.sends()) == sends_before  # nothing went to the contact
    assert await _fetch(harness, "SELECT id FROM messages WHERE room_id = $1", room_id) == rows_before


async def test_offline_drafts_come_from_the_knowledge_base_and_the_extractive_summary(
        harness: ServerHarness, graph: GraphApiFake) -> None:
    node, staff = await _setup(harness, graph, AISettings(provider="offline"))
    question = "how do I change my password?"
    room_id = await _taken_over(harness, node, staff, "I cannot log in since this morning, the page reloads", question)

    _, body = await staff.call("POST", f"/api/v1/wa/conversations/{room_id}/assist/suggestion", expect=200)
    assert body["draft"]["offline"] is True
    assert body["draft"]["text"] == OfflineProvider().answer(question).strip()
    _, body = await staff.call("POST", f"/api/v1/wa/conversations/{room_id}/assist/summary", expect=200)
    assert "cannot log in since this morning" in body["draft"]["text"]
    seqs = await _fetch(harness, "SELECT max(seq) AS s FROM messages WHERE room_id = $1", room_id)
    assert body["draft"]["upto_seq"] == seqs[0]["s"]


async def test_assist_past_the_staff_quota_is_429_and_a_failing_provider_is_503_with_nothing_stored(
        harness: ServerHarness, graph: GraphApiFake, gemini: GeminiFake) -> None:
    ai = AISettings(provider="gemini", api_key="test-key", base_url=gemini.base_url, timeout_s=5, max_retries=0,
                    quota_per_user_per_hour=2)
    node, staff = await _setup(harness, graph, ai)
    room_id = await _taken_over(harness, node, staff, "is anyone there?")
    rows_before = await _fetch(harness, "SELECT id FROM messages WHERE room_id = $1", room_id)

    gemini.script(Step("status", status=500))
    status, body = await staff.call("POST", f"/api/v1/wa/conversations/{room_id}/assist/suggestion")
    assert status == 503 and body["error"]["code"] == "unavailable"
    await staff.call("POST", f"/api/v1/wa/conversations/{room_id}/assist/suggestion", expect=200)
    status, body = await staff.call("POST", f"/api/v1/wa/conversations/{room_id}/assist/summary")
    assert status == 429 and body["error"]["code"] == "rate_limited"
    assert 0 < body["error"]["details"]["retry_after"] <= 3600
    assert await _fetch(harness, "SELECT id FROM messages WHERE room_id = $1", room_id) == rows_before


async def test_assist_is_refused_to_plain_users_and_unknown_conversations(
        harness: ServerHarness, graph: GraphApiFake) -> None:
    node, staff = await _setup(harness, graph, AISettings(provider="offline"))
    user = await harness.user(node)
    room_id = await _taken_over(harness, node, staff)
    for kind in ("summary", "suggestion"):
        status, body = await user.call("POST", f"/api/v1/wa/conversations/{room_id}/assist/{kind}")
        assert status == 403 and body["error"]["code"] == "forbidden"
        status, body = await staff.call("POST", f"/api/v1/wa/conversations/{room_id + 1000}/assist/{kind}")
        assert status == 404 and body["error"]["code"] == "not_found"
