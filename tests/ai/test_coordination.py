"""Coordination across nodes on real Redis (the room lock, late jobs) and the offline provider's
extractive summaries."""

from __future__ import annotations

import asyncio
import json
import secrets

import redis.asyncio as aioredis

from ai.assistant import _RedisLock, _RedisSlot
from ai.context import to_turn
from ai.offline import SUMMARY_MAX_CHARS, OfflineProvider
from ai.prompt import read_data_block, reply_request
from ai.provider import Turn
from tests.ai.conftest import MemorySource, chat_lines, chat_summary, gemini_settings, make_assistant
from tests.fakes.gemini import GeminiFake, Step


async def test_one_job_per_room_at_a_time_across_nodes(gemini: GeminiFake, redis: aioredis.Redis) -> None:
    source = MemorySource()
    settings = gemini_settings(gemini)
    prefix = f"t{secrets.token_hex(4)}:"
    (one, sink1), (two, sink2) = make_assistant(settings, redis, source, prefix), make_assistant(settings, redis, source, prefix)
    gemini.script(Step("delay", delay_s=0.3), Step("delay", delay_s=0.3))
    first, second = source.add(30, "@assistant first?"), source.add(30, "@assistant second?")
    await asyncio.gather(one.reply(30, first), two.reply(30, second))
    assert gemini.max_in_flight == 1  # the second job waited for the room
    assert len(sink1.finals) + len(sink2.finals) == 2


async def test_different_rooms_run_in_parallel(gemini: GeminiFake, redis: aioredis.Redis) -> None:
    source = MemorySource()
    assistant, sink = make_assistant(gemini_settings(gemini), redis, source)
    gemini.script(Step("delay", delay_s=0.5), Step("delay", delay_s=0.5))
    await asyncio.gather(assistant.reply(31, source.add(31, "@assistant a")),
                         assistant.reply(32, source.add(32, "@assistant b")))
    assert gemini.max_in_flight == 2 and len(sink.finals) == 2


async def test_the_global_cap_bounds_jobs_across_nodes(gemini: GeminiFake, redis: aioredis.Redis) -> None:
    """Two nodes, three rooms, a global cap of two: never more than two provider calls at once,
    though each node alone would run all of them."""
    source = MemorySource()
    settings = gemini_settings(gemini, global_concurrency=2, max_concurrency=4)
    prefix = f"t{secrets.token_hex(4)}:"
    (one, sink1), (two, sink2) = make_assistant(settings, redis, source, prefix), make_assistant(settings, redis, source, prefix)
    gemini.script(*[Step("delay", delay_s=0.4) for _ in range(3)])
    await asyncio.gather(one.reply(41, source.add(41, "@assistant a")), two.reply(42, source.add(42, "@assistant b")),
                         one.reply(43, source.add(43, "@assistant c")))
    assert gemini.max_in_flight == 2 and len(sink1.finals) + len(sink2.finals) == 3
    assert await redis.zcard(f"{prefix}ai:slots") == 0  # every slot given back


async def test_a_dead_holders_slot_frees_itself_and_a_live_one_is_renewed(redis: aioredis.Redis) -> None:
    key = f"t{secrets.token_hex(4)}:ai:slots"
    dead = _RedisSlot(redis, key, limit=1, ttl_s=1)
    await dead.__aenter__()
    assert dead._renewer is not None
    dead._renewer.cancel()  # the node died: nobody renews or releases
    async with asyncio.timeout(5):
        async with _RedisSlot(redis, key, limit=1, ttl_s=1) as _:  # gets it once the TTL ran out
            assert await redis.zcard(key) == 1
    live = _RedisSlot(redis, key, limit=1, ttl_s=1)
    async with live:
        await asyncio.sleep(1.6)  # longer than the TTL: only renewal keeps it
        assert await redis.zscore(key, live.token) is not None
    assert await redis.zcard(key) == 0


async def test_the_room_lock_is_renewed_while_held_and_released_by_its_holder(redis: aioredis.Redis) -> None:
    key = f"t{secrets.token_hex(4)}:ai:lock:1"
    lock = _RedisLock(redis, key, ttl_s=1)
    async with lock:
        await asyncio.sleep(1.6)  # longer than the TTL: only renewal keeps the key
        assert await redis.get(key) == lock.token.encode()
        other = _RedisLock(redis, key, ttl_s=1)
        await other.__aexit__(None, None, None)  # not the holder: must not release it
        assert await redis.get(key) == lock.token.encode()
    assert await redis.get(key) is None


async def test_a_reply_that_cannot_get_its_room_within_the_lock_wait_ends_in_a_busy_notice(
        gemini: GeminiFake, redis: aioredis.Redis) -> None:
    source = MemorySource()
    assistant, sink = make_assistant(gemini_settings(gemini, lock_wait_s=0.5), redis, source)
    key = f"{assistant.prefix}lock:35"
    async with _RedisLock(redis, key, ttl_s=30) as _:
        holder = (await redis.get(key)).decode()
        async with asyncio.timeout(5):
            notice = await assistant.reply(35, source.add(35, "@assistant hello"))
        assert notice is not None and notice.author_kind == "system" and sink.last_system_meta["error"] == "busy"
        assert gemini.requests == [] and sink.finals == []
        assert (await redis.get(key)).decode() == holder  # the other holder keeps its lock
    reply = await assistant.reply(35, source.add(35, "@assistant again"))
    assert reply is not None and reply.author_kind == "assistant"


async def test_a_reply_that_gets_no_global_slot_within_the_lock_wait_gives_its_room_back(
        gemini: GeminiFake, redis: aioredis.Redis) -> None:
    source = MemorySource()
    assistant, sink = make_assistant(gemini_settings(gemini, lock_wait_s=0.5, global_concurrency=1), redis, source)
    slots = f"{assistant.prefix}slots"
    async with _RedisSlot(redis, slots, limit=1, ttl_s=30) as _:  # another node's job holds the only slot
        async with asyncio.timeout(5):
            notice = await assistant.reply(36, source.add(36, "@assistant hello"))
        assert notice is not None and sink.last_system_meta["error"] == "busy" and gemini.requests == []
        assert await redis.get(f"{assistant.prefix}lock:36") is None
        assert await redis.zcard(slots) == 1


async def test_a_late_job_ignores_a_summary_that_covers_its_future(gemini: GeminiFake, redis: aioredis.Redis) -> None:
    source = MemorySource()
    assistant, sink = make_assistant(gemini_settings(gemini), redis, source)
    trigger = source.add(33, "@assistant early question")
    for i in range(10):
        source.add(33, f"later message {i}")
    key = f"{assistant.prefix}summary:33"
    newer = json.dumps({"text": "FUTURE SUMMARY", "upto_seq": 8})
    await redis.set(key, newer)
    await assistant.reply(33, trigger)
    [call] = gemini.calls("streamGenerateContent")
    assert "FUTURE SUMMARY" not in call.system_text() and chat_summary(call) is None
    assert chat_lines(call) == ["alice: @assistant early question"]
    assert (await redis.get(key)).decode() == newer and len(sink.finals) == 1


async def test_offline_summary_is_extractive_and_bounded() -> None:
    provider = OfflineProvider()
    msgs = [Turn("user", "bob", "ok"),
            Turn("user", "ann", "The database migration moves to Friday. Everyone fine?"),
            Turn("user", "bob", "The migration needs a database backup first."),
            Turn("user", "cy", "lol")]
    summary = await provider.summarise("", msgs)
    assert summary == "ann: The database migration moves to Friday. bob: The migration needs a database backup first."
    long = [Turn("user", "ann", f"Point {i} about the release schedule and the database.") for i in range(200)]
    summary = await provider.summarise("x " * 2000, long)
    assert len(summary) <= SUMMARY_MAX_CHARS
    assert summary.startswith("x x") and summary.endswith("ann: Point 199 about the release schedule and the database.")


def test_system_notices_become_system_notes_not_user_turns() -> None:
    source = MemorySource()
    msg = source.add(34, "Staff took over this conversation", author="system", kind="system")
    turn = to_turn(msg, 4000)
    assert turn.role == "system-note"
    [record] = read_data_block(reply_request("rules", "", [turn]).data)
    assert record == {"from": "system", "role": "note", "text": "Staff took over this conversation"}
