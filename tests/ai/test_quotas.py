"""Quotas on the provider budget, on real Redis with the real google-genai SDK against the local
Gemini server: per person, per WhatsApp contact, summary refreshes per room."""

from __future__ import annotations

import redis.asyncio as aioredis

from tests.ai.conftest import MemorySource, gemini_settings, make_assistant
from tests.fakes.gemini import GeminiFake


async def test_a_user_past_the_hourly_quota_gets_one_polite_notice_and_no_provider_call(
        gemini: GeminiFake, redis: aioredis.Redis) -> None:
    source = MemorySource()
    assistant, sink = make_assistant(gemini_settings(gemini, quota_per_user_per_hour=2), redis, source)
    for i in range(2):
        reply = await assistant.reply(70, source.add(70, f"@assistant question {i}", author_id=1))
        assert reply is not None and reply.author_kind == "assistant"
    notice = await assistant.reply(70, source.add(70, "@assistant one more", author_id=1))
    assert notice is not None and notice.author_kind == "system" and "limit of 2 requests an hour" in notice.body
    assert sink.last_system_meta["error"] == "quota" and 0 < sink.last_system_meta["retry_in_s"] <= 3600
    # later requests in the window: no second notice, in this room or another
    assert await assistant.reply(70, source.add(70, "@assistant hello?", author_id=1)) is None
    assert await assistant.reply(71, source.add(71, "@assistant anyone?", author_id=1)) is None
    assert len(sink.systems) == 1 and len(gemini.calls("streamGenerateContent")) == 2
    # another person is not affected
    reply = await assistant.reply(70, source.add(70, "@assistant my turn", author="bob", author_id=2))
    assert reply is not None and reply.author_kind == "assistant"
    assert len(gemini.calls("streamGenerateContent")) == 3
    assert 0 < await redis.ttl(f"{assistant.prefix}quota:user:1") <= 3600  # the window closes by itself


async def test_a_contact_past_its_quota_is_told_once_in_an_assistant_message_and_other_contacts_are_not_affected(
        gemini: GeminiFake, redis: aioredis.Redis) -> None:
    source = MemorySource()
    assistant, sink = make_assistant(gemini_settings(gemini, quota_per_contact_per_hour=2), redis, source)
    for i in range(2):
        await assistant.reply(72, source.add(72, f"hello {i}", author="+4912345", kind="contact", author_id=None))
    notice = await assistant.reply(72, source.add(72, "hello again", author="+4912345", kind="contact", author_id=None))
    # an assistant message, because only those are delivered to WhatsApp
    assert notice is not None and notice.author_kind == "assistant" and notice.meta["error"] == "quota"
    assert "taking a break" in notice.body and notice.meta["handoff"] is False
    assert await assistant.reply(72, source.add(72, "hello?", author="+4912345", kind="contact", author_id=None)) is None
    assert len(gemini.calls("streamGenerateContent")) == 2 and len(sink.finals) == 3
    reply = await assistant.reply(73, source.add(73, "hi", author="+4967890", kind="contact", author_id=None))
    assert reply is not None and "error" not in reply.meta
    assert len(gemini.calls("streamGenerateContent")) == 3


async def test_summary_refreshes_count_against_the_room_not_the_person_who_asked(
        gemini: GeminiFake, redis: aioredis.Redis) -> None:
    """A person with a quota of one still gets the answer that needed a refresh; a room past its
    refresh quota answers from its older summary without calling the provider for a new one."""
    source = MemorySource()
    settings = gemini_settings(gemini, quota_per_user_per_hour=1, quota_summaries_per_room_per_hour=1)
    assistant, sink = make_assistant(settings, redis, source)
    for i in range(10):
        source.add(74, f"message {i}", author_id=5)
    first = await assistant.reply(74, source.add(74, "@assistant sum up", author_id=1))
    assert first is not None and first.author_kind == "assistant"
    assert len(gemini.calls("generateContent")) == 1
    for i in range(10):
        source.add(74, f"more {i}", author_id=5)
    second = await assistant.reply(74, source.add(74, "@assistant and now?", author="bob", author_id=2))
    assert second is not None and second.author_kind == "assistant" and sink.systems == []
    assert len(gemini.calls("generateContent")) == 1  # the room's refresh quota was spent
    assert len(gemini.calls("streamGenerateContent")) == 2
    assert await redis.get(f"{assistant.prefix}quota:user:1") == b"1"
    assert await redis.get(f"{assistant.prefix}quota:user:2") == b"1"

