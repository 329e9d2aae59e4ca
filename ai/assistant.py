"""``Assistant.reply``: one reply job.

1. Dedupe the trigger across nodes (``ai:job:{trigger_id}``, SET NX), then count it against
   its author's hourly quota (a person, or a WhatsApp contact; ``quota.py``): past it, one
   polite notice per window and no provider call.
2. Take the room's lock (``ai:lock:{room}``, SET NX with a short TTL the holder keeps renewing,
   so a dead node frees the room quickly): one job per room at a time, everywhere; a
   process-wide semaphore and a cluster-wide slot cap concurrent jobs. The whole wait is
   bounded (``lock_wait_s``), then the job ends in a "busy" notice.
3. Context: cached summary (refreshed when the tail is long, within the room's hourly quota of
   refreshes; a failed or refused refresh keeps the old one) + the messages after it, built
   into a request by ``prompt.py``: our rules in the system slot, the summary and the messages
   as quoted data.
4. The answer cache, or the provider's stream with bounded retries on rate limits and errors
   (only before the first chunk went out, so nothing is ever said twice).
5. ``sink.delta`` for each chunk, ``sink.final`` with the whole text; any failure ends in
   ``sink.system`` with a short message. Nothing escapes ``reply`` but cancellation.

Agent assist (``staff_summary``, ``suggest_reply``) asks the same provider on the same context
for staff: under the staff member's quota and the room's lock, returning a ``Draft`` that is
stored nowhere and sent to nobody.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import re
import secrets
from collections.abc import AsyncIterator, Awaitable
from typing import Any, Protocol

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter, Histogram
from redis.exceptions import RedisError

from chatcore.events import AssistantDelta, MessageRecord

from .cache import AnswerCache
from .context import Summary, answer_key, to_turn
from .gemini import GeminiProvider
from .offline import OfflineProvider
from .openai_compat import OpenAICompatProvider
from .prompt import reply_request
from .provider import Provider, ProviderError, Request, Turn
from .quota import Quotas, Verdict
from .settings import AISettings
from .summaries import SummaryStore

log = logging.getLogger(__name__)

MENTION = re.compile(r"(?<![\w@])@assistant\b", re.IGNORECASE)
HANDOFF_MARKER = "[HANDOFF]"
JOB_TTL_S = 3600
SUMMARY_CHUNK = 200  # messages folded into the summary per provider call
MAX_RETRY_WAIT_S = 20.0  # a provider asking us to wait longer gets a "busy" notice instead
FAILURE_TEXT = {
    "timeout": "The assistant took too long to answer. Please try again in a moment.",
    "rate_limited": "The assistant is busy right now. Please try again in a minute.",
    "blocked": "The assistant can't answer that message.",
    "empty": "The assistant had no answer this time.",
    "error": "The assistant is unavailable right now. Please try again later.",
    "busy": "The assistant is busy with other requests. Please try again in a moment.",
}
# the quota notice: a system message for people in the web app; for a WhatsApp contact an
# assistant message, since only those are sent to WhatsApp (a system notice would be silence)
QUOTA_TEXT = ("You have reached the assistant's limit of {limit} requests an hour. "
              "Please try again in about {minutes} minutes.")
CONTACT_QUOTA_TEXT = ("The assistant is taking a break from this conversation for about {minutes} "
                      "minutes. A person from the team can still answer you here.")


def mentions_assistant(text: str) -> bool:
    return bool(MENTION.search(text))


class MessageSource(Protocol):
    async def latest(self, room_id: int, limit: int) -> list[MessageRecord]: ...

    async def between(self, room_id: int, after_seq: int, upto_seq: int) -> list[MessageRecord]: ...


class ReplySink(Protocol):
    async def delta(self, event: AssistantDelta) -> None: ...

    async def final(self, room_id: int, reply_id: str, text: str, meta: dict[str, Any]) -> MessageRecord: ...

    async def system(self, room_id: int, text: str, meta: dict[str, Any]) -> MessageRecord: ...


def build_provider(settings: AISettings) -> Provider:
    if settings.provider == "gemini":
        return GeminiProvider(settings)
    if settings.provider == "openai":
        return OpenAICompatProvider(settings)
    return OfflineProvider(settings.knowledge_base)


class Assistant:
    def __init__(self, settings: AISettings, provider: Provider, redis: aioredis.Redis, source: MessageSource,
                 sink: ReplySink, key_prefix: str = "", registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        self.provider = provider
        self.redis = redis
        self.source = source
        self.sink = sink
        self.prefix = key_prefix + "ai:"
        self.summaries = SummaryStore(redis, key_prefix)
        self.answers = AnswerCache(redis, key_prefix, settings.answer_cache_ttl_s)
        self.quotas = Quotas(redis, key_prefix)
        self.slots = asyncio.Semaphore(settings.max_concurrency)
        self.replies = Counter("chat_ai_replies_total", "Assistant reply jobs by outcome",
                               ["provider", "outcome"], registry=registry)
        self.latency = Histogram("chat_ai_reply_seconds", "Assistant reply jobs, lock wait included",
                                 ["provider"], registry=registry,
                                 buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120))
        self.provider_calls = 0  # every stream or summary request that reached the provider

    # --- the job ------------------------------------------------------------------------------

    async def reply(self, room_id: int, trigger: MessageRecord) -> MessageRecord | None:
        try:
            if not await self.redis.set(f"{self.prefix}job:{trigger.id}", "1", nx=True, ex=JOB_TTL_S):
                return None  # another node (or a replayed trigger) already has this one
            # before the lock: a request past its quota must not queue behind the room
            subject, limit = self._quota_subject(room_id, trigger)
            verdict = await self.quotas.take(subject, limit)
            if not verdict.allowed:
                return await self._refuse(room_id, trigger, limit, verdict)
            with self.latency.labels(self.provider.name).time():
                async with contextlib.AsyncExitStack() as held:
                    if not await self._hold(held, room_id):
                        log.warning("assistant: no room lock or slot for room %s within %.0fs",
                                    room_id, self.settings.lock_wait_s)
                        return await self._fail(room_id, "busy", None)
                    return await self._reply(room_id, trigger)
        except asyncio.CancelledError:
            raise
        except (RedisError, OSError) as exc:
            log.warning("assistant: redis unavailable: %s", type(exc).__name__)
            return await self._fail(room_id, "error", None)
        except Exception:
            log.exception("assistant reply in room %s failed", room_id)
            return await self._fail(room_id, "error", None)

    def _quota_subject(self, room_id: int, trigger: MessageRecord) -> tuple[str, int | None]:
        # a WhatsApp contact writes without a user id, and each contact has a room of its own
        if trigger.author_kind == "contact" or trigger.author_id is None:
            return f"contact:{room_id}", self.settings.quota_per_contact_per_hour
        return f"user:{trigger.author_id}", self.settings.quota_per_user_per_hour

    async def _refuse(self, room_id: int, trigger: MessageRecord, limit: int | None,
                      verdict: Verdict) -> MessageRecord | None:
        """Past the quota: no provider call; the first refusal of the window says so politely."""
        self.replies.labels(self.provider.name, "quota").inc()
        if not verdict.notify:
            return None
        minutes = max(1, -(-verdict.retry_in_s // 60))
        meta = {"error": "quota", "provider": self.provider.name, "retry_in_s": verdict.retry_in_s}
        if trigger.author_kind == "contact":
            text = CONTACT_QUOTA_TEXT.format(minutes=minutes)
            return await self.sink.final(room_id, secrets.token_hex(8), text, {
                **meta, "model": self.provider.model, "offline": self.provider.offline,
                "handoff": False, "cached": False})
        return await self.sink.system(room_id, QUOTA_TEXT.format(limit=limit, minutes=minutes), meta)

    async def _reply(self, room_id: int, trigger: MessageRecord) -> MessageRecord | None:
        reply_id = secrets.token_hex(8)
        request = await self.context(room_id, trigger)
        request = dataclasses.replace(request, handoff_possible=trigger.author_kind == "contact")
        key = answer_key(room_id, self.provider.name, self.provider.model, request)
        cached = await self.answers.get(key)
        if cached is not None:
            text, handoff = cached
            await self.sink.delta(AssistantDelta(room_id, reply_id, text))
            return await self._final(room_id, reply_id, text, handoff, cached=True)
        try:
            text, handoff = await self._stream(room_id, reply_id, request)
        except ProviderError as exc:
            return await self._fail(room_id, exc.kind, reply_id)
        if not text.strip():
            return await self._fail(room_id, "empty", reply_id)
        await self.answers.put(key, text, handoff)
        return await self._final(room_id, reply_id, text, handoff, cached=False)

    async def _final(self, room_id: int, reply_id: str, text: str, handoff: bool, cached: bool) -> MessageRecord:
        meta = {"provider": self.provider.name, "model": self.provider.model, "offline": self.provider.offline,
                "handoff": handoff, "cached": cached}
        self.replies.labels(self.provider.name, "ok").inc()
        return await self.sink.final(room_id, reply_id, text, meta)

    async def _fail(self, room_id: int, kind: str, reply_id: str | None) -> MessageRecord | None:
        self.replies.labels(self.provider.name, kind).inc()
        try:
            return await self.sink.system(room_id, FAILURE_TEXT.get(kind, FAILURE_TEXT["error"]),
                                          {"error": kind, "reply_id": reply_id, "provider": self.provider.name})
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("assistant: could not store the failure notice in room %s", room_id)
            return None

    # --- streaming with retries ---------------------------------------------------------------

    async def _stream(self, room_id: int, reply_id: str, request: Request) -> tuple[str, bool]:
        attempt = 0
        while True:
            sent_any = False
            try:
                async with asyncio.timeout(self.settings.timeout_s):
                    self.provider_calls += 1
                    parts: list[str] = []
                    handoff = False
                    async for chunk in _strip_marker(self.provider.stream_reply(request)):
                        if isinstance(chunk, bool):
                            handoff = chunk
                            continue
                        sent_any = True
                        parts.append(chunk)
                        await self.sink.delta(AssistantDelta(room_id, reply_id, chunk))
                    return "".join(parts), handoff
            except TimeoutError:
                raise ProviderError("timeout", "the provider did not answer in time") from None
            except ProviderError as exc:
                if sent_any or not exc.retryable or attempt >= self.settings.max_retries:
                    raise
                if exc.retry_after is not None:  # the provider's hint, plus a little jitter
                    if exc.retry_after > MAX_RETRY_WAIT_S:
                        raise
                    delay = exc.retry_after + 0.25 * random.random()
                else:  # exponential backoff with full jitter, capped
                    delay = random.uniform(0.5, 1.0) * min(8.0, 0.5 * 2**attempt)
                log.info("assistant: %s from %s, retry %d in %.1fs", exc.kind, self.provider.name,
                         attempt + 1, delay)
                await asyncio.sleep(delay)
                attempt += 1

    # --- context ------------------------------------------------------------------------------

    async def context(self, room_id: int, trigger: MessageRecord) -> Request:
        """The request: our rules, then the summary and the messages after it, up to the
        trigger, as data."""
        k, threshold = self.settings.recent_k, self.settings.summary_threshold
        window_start = max(0, trigger.seq - k - threshold)  # the longest tail we ever send
        summary = await self.summaries.get(room_id) or Summary("", 0)
        if summary.upto_seq >= trigger.seq:
            # a late job for an older trigger: the cached summary already tells what came after
            # the question, so leave it out (and leave the cache alone) and use the tail only
            tail = await self.source.between(room_id, window_start, trigger.seq)
            return reply_request(self.settings.system_prompt, "", self._turns(tail))
        fold_upto = trigger.seq - k
        if fold_upto - summary.upto_seq >= threshold:
            try:
                summary = await self._refresh(room_id, summary, fold_upto)
            except (ProviderError, TimeoutError, _RefreshRefused) as exc:
                # the reply can still go ahead on the older summary and the newest messages
                kind = exc.kind if isinstance(exc, ProviderError | _RefreshRefused) else "timeout"
                log.warning("assistant: summary refresh in room %s failed (%s)", room_id, kind)
                summary = await self.summaries.get(room_id) or summary
        # normally summary.upto_seq >= window_start; after a failed refresh the window bounds it
        tail = await self.source.between(room_id, max(summary.upto_seq, window_start), trigger.seq)
        return reply_request(self.settings.system_prompt, summary.text, self._turns(tail))

    def _turns(self, messages: list[MessageRecord]) -> list[Turn]:
        # system notices (joins, our own failure notices) are not conversation
        return [to_turn(m, self.settings.max_input_chars) for m in messages if m.author_kind != "system"]

    async def _refresh(self, room_id: int, summary: Summary, fold_upto: int) -> Summary:
        """Fold messages (summary.upto_seq, fold_upto] into the summary, in chunks; each chunk's
        result is cached at once, so a cold rebuild interrupted halfway resumes where it was."""
        while summary.upto_seq < fold_upto:
            end = min(fold_upto, summary.upto_seq + SUMMARY_CHUNK)
            turns = self._turns(await self.source.between(room_id, summary.upto_seq, end))
            text = summary.text
            if turns:
                # refreshes are the room's cost, not the cost of whoever asked this time
                await self._take_refresh(room_id)
                self.provider_calls += 1
                async with asyncio.timeout(self.settings.timeout_s):
                    text = await self.provider.summarise(summary.text, turns)
            summary = Summary(text, end)
            await self.summaries.put(room_id, summary)
        return summary

    async def _take_refresh(self, room_id: int) -> None:
        try:
            verdict = await self.quotas.take(f"room:{room_id}:summaries",
                                             self.settings.quota_summaries_per_room_per_hour)
        except (RedisError, OSError) as exc:  # fail closed: no count, no provider call
            raise _RefreshRefused("redis unavailable") from exc
        if not verdict.allowed:
            raise _RefreshRefused("quota")

    # --- agent assist: drafts for staff, stored nowhere and sent to nobody ---------------------

    async def staff_summary(self, room_id: int, staff_id: int) -> Draft:
        """The conversation so far in a few lines, for staff taking it over: the room's cached
        summary (brought up to ``recent_k`` messages before the newest, exactly as a reply would
        fold it) plus the newest messages folded on top, uncached, so the assistant's own
        context keeps its shape."""
        async with self._assist_slot(room_id, staff_id):
            latest = await self.source.latest(room_id, 1)
            upto = latest[-1].seq if latest else 0
            summary = await self.summaries.get(room_id) or Summary("", 0)
            fold_upto = upto - self.settings.recent_k
            if fold_upto > summary.upto_seq:
                try:
                    summary = await self._refresh(room_id, summary, fold_upto)
                except _RefreshRefused as exc:
                    raise AssistRefused(exc.kind) from None
            tail = self._turns(await self.source.between(room_id, summary.upto_seq, upto))
            text = summary.text
            if tail:
                self.provider_calls += 1
                text = await self._bounded(self.provider.summarise(summary.text, tail))
            return Draft(text.strip(), upto, self.provider.name, self.provider.model, self.provider.offline)

    async def suggest_reply(self, room_id: int, staff_id: int) -> Draft:
        """A reply to the newest message, for staff to edit before they send it themselves: the
        same request the assistant would answer, without the hand-off offer."""
        async with self._assist_slot(room_id, staff_id):
            latest = await self.source.latest(room_id, 1)
            if not latest:
                return Draft("", 0, self.provider.name, self.provider.model, self.provider.offline)
            request = dataclasses.replace(await self.context(room_id, latest[-1]), handoff_possible=False)
            self.provider_calls += 1

            async def collect() -> str:
                parts = [c async for c in _strip_marker(self.provider.stream_reply(request)) if isinstance(c, str)]
                return "".join(parts)

            text = await self._bounded(collect())
            return Draft(text.strip(), latest[-1].seq, self.provider.name, self.provider.model, self.provider.offline)

    async def _bounded(self, work: Awaitable[str]) -> str:
        try:
            async with asyncio.timeout(self.settings.timeout_s):
                return await work
        except TimeoutError:
            raise ProviderError("timeout", "the provider did not answer in time") from None

    @contextlib.asynccontextmanager
    async def _assist_slot(self, room_id: int, staff_id: int) -> AsyncIterator[None]:
        """The staff member's hourly quota, then the room lock (a summary refresh must not race
        a reply's) and the provider slots, like a reply job."""
        try:
            verdict = await self.quotas.take(f"user:{staff_id}", self.settings.quota_per_user_per_hour)
        except (RedisError, OSError) as exc:
            raise AssistRefused("redis unavailable") from exc
        if not verdict.allowed:
            raise AssistRefused("quota", verdict.retry_in_s)
        async with contextlib.AsyncExitStack() as held:
            if not await self._hold(held, room_id):
                raise AssistRefused("busy")
            yield

    # --- locks ----------------------------------------------------------------------------------

    async def _hold(self, held: contextlib.AsyncExitStack, room_id: int) -> bool:
        """Enter the room lock, this process's slot and a cluster slot on ``held``, all within
        ``lock_wait_s``; False when that wait ran out. The room lock first: jobs queued behind
        one room must not hold the slots other rooms need."""
        wait = asyncio.timeout(self.settings.lock_wait_s)
        try:
            async with wait:
                await held.enter_async_context(self._room_lock(room_id))
                await held.enter_async_context(self.slots)
                await held.enter_async_context(self._global_slot())
        except TimeoutError:
            if not wait.expired():
                raise  # a socket timeout, not our wait: Redis trouble
            return False
        return True

    def _room_lock(self, room_id: int) -> _RedisLock:
        return _RedisLock(self.redis, f"{self.prefix}lock:{room_id}", self.settings.lock_ttl_s)

    def _global_slot(self) -> _RedisSlot:
        return _RedisSlot(self.redis, f"{self.prefix}slots", self.settings.global_concurrency,
                          self.settings.lock_ttl_s)


@dataclasses.dataclass(frozen=True, slots=True)
class Draft:
    """Text the assistant wrote for staff (a summary or a suggested reply); ``upto_seq`` is the
    newest message it read."""

    text: str
    upto_seq: int
    provider: str
    model: str
    offline: bool


class AssistRefused(Exception):
    """An agent-assist request not attempted: ``quota`` (the staff member's hourly quota;
    ``retry_after_s`` until it refills), ``busy`` (no room lock or slot in time), or Redis away."""

    def __init__(self, kind: str, retry_after_s: int = 0) -> None:
        super().__init__(kind)
        self.kind = kind
        self.retry_after_s = retry_after_s


class _RefreshRefused(Exception):
    """A summary refresh the room's quota (or an absent Redis) does not allow."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


async def _strip_marker(chunks: AsyncIterator[str]) -> AsyncIterator[str | bool]:
    """Pass chunks through, but hold the start until we know if it is the hand-off marker;
    yields ``True`` once (before any text) when the reply asks for a person."""
    head = ""
    decided = False
    async for chunk in chunks:
        if decided:
            yield chunk
            continue
        head += chunk
        stripped = head.lstrip()
        if len(stripped) < len(HANDOFF_MARKER) and HANDOFF_MARKER.startswith(stripped):
            continue
        decided = True
        if stripped.startswith(HANDOFF_MARKER):
            yield True
            head = stripped[len(HANDOFF_MARKER):].lstrip()
        if head:
            yield head
    if not decided and head:
        stripped = head.lstrip()
        if stripped.startswith(HANDOFF_MARKER) or HANDOFF_MARKER.startswith(stripped):
            yield True
        else:
            yield head


_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
_RENEW = ("if redis.call('get', KEYS[1]) == ARGV[1] then "
          "return redis.call('expire', KEYS[1], ARGV[2]) end return 0")


class _RedisLock:
    """A lock across nodes: SET NX with a TTL, renewed every third of it while held (a job may
    outlive one TTL through retries; a dead node frees the room within one TTL). Waits by
    polling; released only by its holder (compare-and-delete in one script)."""

    POLL_S = 0.1

    def __init__(self, redis: aioredis.Redis, key: str, ttl_s: int) -> None:
        self.redis = redis
        self.key = key
        self.ttl_s = max(1, ttl_s)
        self.token = secrets.token_hex(8)
        self._renewer: asyncio.Task[None] | None = None

    async def __aenter__(self) -> None:
        try:
            while not await self._acquire():  # noqa: ASYNC110 - cross-process
                await asyncio.sleep(self.POLL_S)
        except asyncio.CancelledError:
            # a bounded wait ran out, perhaps after Redis took our acquire but before we read
            # its answer: give back whatever we may hold rather than block the room for a TTL
            with contextlib.suppress(RedisError, OSError):
                await self._release()
            raise
        self._renewer = asyncio.create_task(self._renew(), name=f"renew {self.key}")

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.ttl_s / 3)
            try:
                if not await self._extend():
                    log.warning("assistant: lost %s (expired while held)", self.key)
                    return
            except (RedisError, OSError) as exc:  # try again next period; the TTL still runs
                log.warning("assistant: could not renew %s: %s", self.key, type(exc).__name__)

    async def __aexit__(self, *exc: object) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            await asyncio.wait([self._renewer])  # never raises: our own cancellation still propagates
        try:
            await self._release()
        except (RedisError, OSError) as exc:
            log.warning("assistant: could not release %s (%s); its TTL frees it", self.key, type(exc).__name__)

    # the three Redis operations; a subclass holds something else than one key

    async def _acquire(self) -> bool:
        return bool(await self.redis.set(self.key, self.token, nx=True, ex=self.ttl_s))

    async def _extend(self) -> bool:
        return bool(await self.redis.eval(_RENEW, 1, self.key, self.token, self.ttl_s))

    async def _release(self) -> None:
        await self.redis.eval(_RELEASE, 1, self.key, self.token)


# a sorted set of holders scored by expiry, on Redis's clock: expired holders (a dead node) are
# dropped before counting
_SLOT_ACQUIRE = """
local t = redis.call('time')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('zremrangebyscore', KEYS[1], '-inf', now)
if redis.call('zcard', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('zadd', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
  redis.call('expire', KEYS[1], math.ceil(tonumber(ARGV[2])) + 1)
  return 1
end
return 0
"""
_SLOT_RENEW = """
if not redis.call('zscore', KEYS[1], ARGV[2]) then return 0 end
local t = redis.call('time')
redis.call('zadd', KEYS[1], 'XX', tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(ARGV[1]), ARGV[2])
redis.call('expire', KEYS[1], math.ceil(tonumber(ARGV[1])) + 1)
return 1
"""


class _RedisSlot(_RedisLock):
    """One of ``limit`` slots across nodes (the global cap on running jobs): a holder is a member
    of a sorted set scored by its expiry, renewed every third of the TTL while held, removed on
    release; a dead node's slot frees itself within one TTL. Waits by polling."""

    def __init__(self, redis: aioredis.Redis, key: str, limit: int, ttl_s: int) -> None:
        super().__init__(redis, key, ttl_s)
        self.limit = limit

    async def _acquire(self) -> bool:
        return bool(await self.redis.eval(_SLOT_ACQUIRE, 1, self.key, self.limit, self.ttl_s, self.token))

    async def _extend(self) -> bool:
        return bool(await self.redis.eval(_SLOT_RENEW, 1, self.key, self.ttl_s, self.token))

    async def _release(self) -> None:
        await self.redis.zrem(self.key, self.token)
