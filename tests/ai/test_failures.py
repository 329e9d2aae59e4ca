"""Failure paths with the real SDKs against the local servers: Retry-After, non-retryable errors,
a failed summary refresh, and the OpenAI-compatible provider's rate limits, timeouts and filters."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from ai.gemini import GeminiProvider
from ai.openai_compat import OpenAICompatProvider
from ai.prompt import reply_request
from ai.provider import ProviderError, Turn
from ai.settings import AISettings
from tests.ai.conftest import MemorySource, chat_lines, gemini_settings, make_assistant
from tests.fakes.gemini import GeminiFake, Step
from tests.fakes.openai_compat import OpenAIFake

HELLO = reply_request("system", "", [Turn("user", "alice", "hello")])


async def _first_error(provider: GeminiProvider | OpenAICompatProvider) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        async for _ in provider.stream_reply(HELLO):
            pass
    return info.value


async def test_gemini_429_carries_the_retry_after_hint(gemini: GeminiFake) -> None:
    gemini.script(Step("status", status=429, retry_after=1.5))
    err = await _first_error(GeminiProvider(gemini_settings(gemini)))
    assert err.kind == "rate_limited" and err.retryable and err.retry_after == 1.5


async def test_openai_429_carries_the_retry_after_hint() -> None:
    fake = await OpenAIFake(["hi"]).start()
    try:
        fake.script(Step("status", status=429, retry_after=2))
        settings = AISettings(provider="openai", base_url=fake.base_url, max_retries=0)
        err = await _first_error(OpenAICompatProvider(settings))
        assert err.kind == "rate_limited" and err.retry_after == 2
    finally:
        await fake.stop()


async def test_a_retry_after_beyond_the_cap_gives_the_busy_notice_without_waiting(
        gemini: GeminiFake, redis: aioredis.Redis) -> None:
    source = MemorySource()
    gemini.script(Step("status", status=429, retry_after=3600))
    assistant, sink = make_assistant(gemini_settings(gemini), redis, source)
    reply = await assistant.reply(20, source.add(20, "@assistant hello"))
    assert reply is not None and reply.author_kind == "system"
    assert sink.last_system_meta["error"] == "rate_limited"
    assert len(gemini.calls("streamGenerateContent")) == 1


async def test_a_4xx_other_than_429_is_not_retried(gemini: GeminiFake, redis: aioredis.Redis) -> None:
    source = MemorySource()
    gemini.script(Step("status", status=400))
    assistant, sink = make_assistant(gemini_settings(gemini), redis, source)
    await assistant.reply(21, source.add(21, "@assistant hello"))
    assert sink.finals == [] and sink.last_system_meta["error"] == "error"
    assert len(gemini.calls("streamGenerateContent")) == 1


async def test_a_5xx_is_retried(gemini: GeminiFake, redis: aioredis.Redis) -> None:
    source = MemorySource()
    gemini.script(Step("status", status=503))
    assistant, sink = make_assistant(gemini_settings(gemini), redis, source)
    reply = await assistant.reply(22, source.add(22, "@assistant hello"))
    assert reply is not None and reply.author_kind == "assistant" and sink.systems == []
    assert len(gemini.calls("streamGenerateContent")) == 2


async def test_a_failed_summary_refresh_still_gives_a_reply(gemini: GeminiFake, redis: aioredis.Redis) -> None:
    source = MemorySource()
    for i in range(1, 20):
        source.add(23, f"message number {i}")
    trigger = source.add(23, "@assistant what now?")
    gemini.script(Step("status", status=500))  # the summary request fails
    assistant, sink = make_assistant(gemini_settings(gemini), redis, source)
    reply = await assistant.reply(23, trigger)
    assert reply is not None and reply.author_kind == "assistant" and sink.systems == []
    assert await redis.get(f"{assistant.prefix}summary:23") is None
    # the tail stays bounded (K + threshold - ... messages up to the trigger), ending in the question
    [stream_call] = gemini.calls("streamGenerateContent")
    texts = chat_lines(stream_call)
    assert texts[-1] == "alice: @assistant what now?" and len(texts) <= 3 + 5


async def test_openai_429_then_success_is_retried(redis: aioredis.Redis) -> None:
    fake = await OpenAIFake(["fine", " thanks"]).start()
    try:
        fake.script(Step("status", status=429, retry_after=0))
        settings = AISettings(provider="openai", base_url=fake.base_url, recent_k=3, max_retries=2)
        source = MemorySource()
        assistant, sink = make_assistant(settings, redis, source)
        reply = await assistant.reply(24, source.add(24, "@assistant how are you?"))
        assert reply is not None and reply.body == "fine thanks" and sink.systems == []
        assert len(fake.streamed()) == 2
    finally:
        await fake.stop()


@pytest.mark.parametrize(("step", "kind"), [(Step("delay", delay_s=1.5), "timeout"),
                                            (Step("blocked"), "blocked"), (Step("empty"), "empty")])
async def test_openai_failures_end_in_a_system_message(step: Step, kind: str, redis: aioredis.Redis) -> None:
    fake = await OpenAIFake(["never"]).start()
    try:
        fake.script(step)
        settings = AISettings(provider="openai", base_url=fake.base_url, timeout_s=0.5, max_retries=0)
        source = MemorySource()
        assistant, sink = make_assistant(settings, redis, source)
        reply = await assistant.reply(25, source.add(25, "@assistant hi"))
        assert reply is not None and reply.author_kind == "system" and sink.finals == []
        assert sink.last_system_meta["error"] == kind
    finally:
        await fake.stop()
