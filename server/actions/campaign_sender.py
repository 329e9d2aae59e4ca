"""The campaign sender: every node runs one; together they send each recipient at most once.

Each node runs ``LANES`` sending lanes, a keeper and a progress loop (all supervised):

- A lane takes a due running campaign, reserves a send slot of its number from the shared
  ``Pacer`` (Redis; throughput and the 24-hour tier across all nodes), then claims the next
  queued recipient in PostgreSQL (``FOR UPDATE SKIP LOCKED``) and commits it as ``sending``
  with this process's worker id *before* calling the Graph API; Meta's answer is then recorded
  (``sent`` with its wamid). A recipient is claimed only from ``queued``, and only a passing
  failure that Meta answered (429, 5xx, a rate-limit code: it did not take the message) puts it
  back there, so no recipient is ever sent twice.
- An answer that never came (timeout, a cut connection, a 2xx without a wamid) may or may not
  have reached Meta: the recipient becomes ``unknown`` for review, never sent again.
- The keeper refreshes this worker's heartbeat key in Redis and turns every ``sending`` row of
  a worker whose heartbeat expired (a killed node) into ``unknown`` (a late answer from a
  worker wrongly taken for dead still records its wamid: ``sent``).
- A template paused, disabled or deleted by Meta, or an account problem (token, payment,
  block), pauses the campaign with the reason; the recipient goes back to the queue unsent.
- The progress loop sends ``campaign:progress`` for campaigns marked dirty, counts read fresh
  from PostgreSQL, one node at a time per campaign (``ProgressClock``: a Redis lock held
  through the emit, then kept ``PROGRESS_S`` longer as the pace). ``seq`` orders the events,
  and each cumulative count is stamped atomically with it, never below what an earlier event
  carried: a node that read its snapshot before a faster node's newer one cannot take a count
  back, even when its lock outlived ``LOCK_HOLD_S``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp

from whatsapp_bridge.cloud_api import CloudApiClient, CloudApiError, backoff_delay
from whatsapp_bridge.errors import BAD_RESPONSE, NETWORK, TIMEOUT
from whatsapp_bridge.models import StatusUpdate
from whatsapp_bridge.templates import send_components

from ..realtime.pacing import Pacer
from ..storage import campaigns as db
from .campaigns import DIRTY_KEY, mark_dirty
from .notify import DESK_CHANNEL, emit

if TYPE_CHECKING:
    from ..context import Services

log = logging.getLogger(__name__)

LANES = 8  # concurrent sends per node (each waits for its paced slot)
IDLE_S = 0.5  # a lane with nothing to send looks again after this long
REFRESH_S = 0.5  # running campaigns and their templates are re-read this often
PROGRESS_S = 0.25  # progress of dirty campaigns is sent at most this often per campaign
LOCK_HOLD_S = 10.0  # the longest a node holds a campaign's progress lock (a killed node's lock expires)
RETRY_BASE_S, RETRY_CAP_S = 2.0, 600.0
MAX_ATTEMPTS = 10  # Graph calls of one recipient that Meta refused for a passing reason
# failures that would hit every recipient alike: the campaign pauses
PAUSING_STATES = frozenset({"template_paused", "template_disabled", "template_missing", "template_params",
                            "auth", "permission", "account_locked", "payment", "blocked"})
TEMPLATE_STATES = {"template_paused": "PAUSED", "template_disabled": "DISABLED"}
RATE_CODES = frozenset({130429, 131056, 80007, 4})
# counts in campaign:progress; every one but queued and sending only ever grows
COUNT_FIELDS = ("total", "queued", "sending", "sent", "delivered", "read", "failed", "replied", "skipped", "unknown")
GROWING_FIELDS = tuple(k for k in COUNT_FIELDS if k not in ("queued", "sending"))

# KEYS: the seq counter, the high-water hash. ARGV: field, count, field, count, ...
# Returns the new seq and each count raised to at least the highest one stamped before it.
_STAMP = """
local out = {redis.call('INCR', KEYS[1])}
for i = 1, #ARGV, 2 do
  local v = tonumber(ARGV[i + 1])
  local prev = tonumber(redis.call('HGET', KEYS[2], ARGV[i]) or '0')
  if prev > v then v = prev else redis.call('HSET', KEYS[2], ARGV[i], v) end
  out[#out + 1] = v
end
return out
"""

# KEYS: the lock. ARGV: its holder, the pace in ms. The holder's lock is kept for the pace only.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class ProgressClock:
    """Orders one campaign's progress events across nodes (Redis).

    ``hold`` takes the campaign's lock for at most ``LOCK_HOLD_S``; ``stamp`` gives the event its
    ``seq`` and its growing counts in one atomic step; ``release`` keeps the lock ``PROGRESS_S``
    longer, so the next event (from any node) comes after this one's emit, and no sooner than
    the pace."""

    def __init__(self, redis: Any, prefix: str, holder: str) -> None:
        self.redis = redis
        self.p = prefix
        self.holder = holder
        self._stamp = redis.register_script(_STAMP)
        self._release = redis.register_script(_RELEASE)

    def _lock(self, campaign_id: int) -> str:
        return f"{self.p}campaign:progress-lock:{campaign_id}"

    async def hold(self, campaign_id: int) -> bool:
        return bool(await self.redis.set(self._lock(campaign_id), self.holder, nx=True, px=int(LOCK_HOLD_S * 1000)))

    async def release(self, campaign_id: int) -> None:
        await self._release(keys=[self._lock(campaign_id)], args=[self.holder, int(PROGRESS_S * 1000)])

    async def stamp(self, campaign_id: int, counts: dict[str, int]) -> tuple[int, dict[str, int]]:
        args: list[Any] = []
        for k in GROWING_FIELDS:
            args += [k, int(counts[k])]
        out = await self._stamp(keys=[f"{self.p}campaign:progress-seq:{campaign_id}",
                                      f"{self.p}campaign:progress-high:{campaign_id}"], args=args)
        return int(out[0]), {**counts, **{k: int(v) for k, v in zip(GROWING_FIELDS, out[1:], strict=True)}}


@dataclass(frozen=True, slots=True)
class Running:
    id: int
    account_id: int
    template: str
    language: str
    phone_number_id: str
    access_token: str
    param_counts: dict[str, int]


class CampaignSender:
    def __init__(self, svc: Services, session: aiohttp.ClientSession) -> None:
        self.svc = svc
        # no retries inside a call: each retry is a new claim, paced and recorded like the first
        self.api = CloudApiClient(session, base_url=svc.config.wa_graph_url, api_version=svc.config.wa_api_version,
                                  timeout_s=10, max_retries=0)
        self.pacer = Pacer(svc.redis, svc.config.redis_prefix, svc.config.wa_send_interval_s,
                           svc.config.wa_tier_limit_per_day)
        self.worker = f"{svc.node_id}:{secrets.token_hex(4)}"  # one per process: a restart is a new worker
        self.heartbeat_ttl_s = max(2.0, svc.config.presence_ttl_s)
        self._running: list[Running] = []
        self._exhausted: set[int] = set()  # nothing claimable at the last look (until the next refresh)
        self._next = 0
        self._seq = 0
        self._wake = asyncio.Event()
        self.clock = ProgressClock(svc.redis, svc.config.redis_prefix, self.worker)

    def start(self) -> None:
        sup = self.svc.supervisor
        sup.loop("campaign-keeper", self.run_keeper, backoff_max_s=2)
        sup.loop("campaign-progress", self.run_progress, backoff_max_s=2)
        for i in range(LANES):
            sup.loop(f"campaign-lane-{i}", self.run_lane, backoff_max_s=5)

    def _key(self, name: str) -> str:
        return self.svc.config.redis_prefix + name

    # --- keeper ---------------------------------------------------------------------------------

    async def heartbeat(self) -> None:
        await self.svc.redis.set(self._key(f"campaign:worker:{self.worker}"), "1",
                                 px=int(self.heartbeat_ttl_s * 1000))

    async def recover(self) -> None:
        """``sending`` rows of dead workers become ``unknown``: they may have gone out."""
        for worker in await db.sending_workers(self.svc.pool):
            if worker == self.worker or await self.svc.redis.exists(self._key(f"campaign:worker:{worker}")):
                continue
            for campaign_id in await db.mark_unknown(self.svc.pool, worker):
                log.warning("campaign %s: recipients in flight on lost worker %s marked unknown", campaign_id, worker)
                await mark_dirty(self.svc, campaign_id)

    async def refresh(self) -> None:
        rows = await db.running_campaigns(self.svc.pool)
        running = []
        for r in rows:
            template = await db.get_template(self.svc.pool, r["account_id"], r["template"], r["language"])
            if template is None or template.status != "APPROVED":
                if await db.pause_if_running(self.svc.pool, r["id"], "template_not_approved"):
                    await mark_dirty(self.svc, r["id"])
                continue
            running.append(Running(r["id"], r["account_id"], r["template"], r["language"], r["phone_number_id"],
                                   r["access_token"], dict(template.param_counts)))
        self._running = running
        self._exhausted.clear()

    async def run_keeper(self) -> None:
        await self.heartbeat()
        while True:
            await self.heartbeat()
            await self.recover()
            await self.refresh()
            await asyncio.sleep(min(REFRESH_S, self.heartbeat_ttl_s / 3))

    # --- lanes ----------------------------------------------------------------------------------

    def _pick(self) -> Running | None:
        choices = [c for c in self._running if c.id not in self._exhausted]
        if not choices:
            return None
        self._next += 1
        return choices[self._next % len(choices)]

    async def run_lane(self) -> None:
        while True:
            campaign = self._pick()
            if campaign is None:
                await asyncio.sleep(IDLE_S)
                continue
            await self.send_one(campaign)

    async def send_one(self, c: Running) -> None:
        member = f"{self.worker}:{secrets.token_hex(6)}"
        grant = await self.pacer.acquire(c.phone_number_id, member)
        if not grant.ok:
            # tier full (wait for the oldest send to leave the 24 h window) or the queue of slots
            # is long: ask again later; nothing is claimed meanwhile
            await asyncio.sleep(min(grant.wait_s, 5.0) if grant.tier_full else min(grant.wait_s, 0.5))
            return
        due = time.monotonic() + grant.wait_s
        if grant.wait_s:
            await asyncio.sleep(grant.wait_s)
        async with self.svc.pool.acquire() as conn:
            claimed = await db.claim(conn, c.id, self.worker)
        if claimed is None:
            await self.pacer.release(c.phone_number_id, member)
            self._exhausted.add(c.id)
            if await db.complete_if_done(self.svc.pool, c.id):
                log.info("campaign %s completed", c.id)
            await mark_dirty(self.svc, c.id)
            return
        row, skipped = claimed
        if skipped is not None:
            await self.pacer.release(c.phone_number_id, member)
            await mark_dirty(self.svc, c.id)
            return
        await self._on_time(c, due)
        await self._call(c, row)
        await mark_dirty(self.svc, c.id)

    async def _on_time(self, c: Running, due: float) -> None:
        """Wait for a fresh throughput slot while this send is late for its own: late senders
        sending at once would burst past the interval."""
        tolerance = self.pacer.interval_us / 2_000_000
        while self.pacer.interval_us and time.monotonic() - due > tolerance:
            grant = await self.pacer.acquire(c.phone_number_id, "", tier=False)
            if not grant.ok:
                await asyncio.sleep(min(grant.wait_s, 0.5))
                continue
            due = time.monotonic() + grant.wait_s
            await asyncio.sleep(grant.wait_s)

    async def _call(self, c: Running, row: Any) -> None:
        rid = row["id"]
        components = send_components(c.param_counts, list(row["params"]))
        try:
            result = await self.api.send_template(c.phone_number_id, c.access_token, row["phone"].lstrip("+"),
                                                  c.template, c.language, components)
        except CloudApiError as exc:
            await self._failed(c, rid, row["attempts"] + 1, exc)
            return
        await db.mark_sent(self.svc.pool, rid, self.worker, result.wamid)

    async def _failed(self, c: Running, rid: int, attempts: int, exc: CloudApiError) -> None:
        pool = self.svc.pool
        if exc.state in (TIMEOUT, NETWORK, BAD_RESPONSE):
            await db.mark_failed(pool, rid, self.worker, "unknown", exc.code, exc.title, "no_answer")
            return
        if exc.state in PAUSING_STATES:
            async with pool.acquire() as conn:
                paused = await db.pause_and_requeue(conn, c.id, rid, self.worker, exc.state)
            if paused:
                log.warning("campaign %s paused: %s (%s)", c.id, exc.state, exc.code)
            if exc.state in TEMPLATE_STATES:
                await db.set_template_status(pool, c.account_id, c.template, c.language, TEMPLATE_STATES[exc.state])
            self._running = [r for r in self._running if r.id != c.id]
            return
        passing = exc.retryable or exc.code in RATE_CODES
        if passing and attempts < MAX_ATTEMPTS:
            delay = backoff_delay(attempts - 1, RETRY_BASE_S, RETRY_CAP_S, exc.retry_after_s)
            await db.mark_retry(pool, rid, self.worker, delay, exc.code, exc.title)
            return
        await db.mark_failed(pool, rid, self.worker, "failed", exc.code, exc.title, exc.state)

    # --- webhooks -------------------------------------------------------------------------------

    async def on_status(self, status: StatusUpdate) -> None:
        campaign_id = await db.apply_status(self.svc.pool, status.wamid, status.status, status.error_code,
                                            status.error_title)
        if campaign_id is not None:
            await mark_dirty(self.svc, campaign_id)

    async def on_inbound(self, account_id: int, wa_id: str, text: str) -> None:
        """A contact wrote: a reply to a campaign counts (and the conversation shows the
        campaign); a STOP keyword opts the phone out of this number's campaigns for good."""
        phone = "+" + wa_id.lstrip("+")
        word = text.strip().strip(".!").upper()
        if word and word in self.svc.config.campaign_stop_keywords:
            if await db.opt_out(self.svc.pool, account_id, phone, word):
                log.info("a contact of account %s opted out of campaigns", account_id)
        row = await db.mark_replied(self.svc.pool, account_id, phone)
        if row is not None:
            await db.set_contact_campaign(self.svc.pool, account_id, wa_id, row["campaign_id"])
            await mark_dirty(self.svc, row["campaign_id"])

    # --- progress -------------------------------------------------------------------------------

    async def run_progress(self) -> None:
        while True:
            await asyncio.sleep(PROGRESS_S)
            await self.publish_dirty()

    async def publish_dirty(self) -> None:
        redis = self.svc.redis
        for raw in await redis.smembers(self._key(DIRTY_KEY)):
            campaign_id = int(raw)
            if not await self.clock.hold(campaign_id):
                continue  # another node is sending this campaign's progress, or did just now
            try:
                await redis.srem(self._key(DIRTY_KEY), str(campaign_id))
                event = await self.progress(campaign_id)
                if event is not None:
                    await emit(self.svc, "campaign:progress", event, to=DESK_CHANNEL)
            finally:
                await self.clock.release(campaign_id)

    async def progress(self, campaign_id: int) -> dict[str, Any] | None:
        campaign = await db.get_campaign(self.svc.pool, campaign_id)
        if campaign is None:
            return None
        seq, counts = await self.clock.stamp(campaign_id, await db.counts(self.svc.pool, campaign_id))
        return {"campaign_id": campaign_id, "seq": seq, "status": campaign.status,
                "pause_reason": campaign.pause_reason, **{k: counts[k] for k in COUNT_FIELDS}}
