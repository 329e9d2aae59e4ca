"""Socket sessions: a socket lives only as long as the authorisation it connected (or last
renewed) with.

``SocketSessions`` keeps, per socket of this node, the user, the token's expiry, its token
version and its refresh family (the ``fam`` claim: one login). A socket is ended, with
``session:ended {reason}`` and then a server disconnect, when:

- its access token expires without an ``auth`` renewal (``expired``): ``run_expiry`` pops a
  heap ordered by expiry, so the cost is per renewal, not per socket per tick;
- its user's token version changes (logout-all: ``logged_out``; role change and any other bump:
  ``revoked``) or its refresh family is revoked (logout: ``logged_out``; a rotated refresh
  token presented again: ``revoked``). ``run_revocation_check`` asks PostgreSQL every
  ``REVOCATION_CHECK_S`` what changed since its last look (``users.tv_changed_at``,
  ``revoked_families``; two indexed range scans whatever the number of sockets) and ends the
  matching local sockets. Every node does this for its own sockets from PostgreSQL alone, so it
  holds while Redis is down; the node that commits a revocation also ends its own sockets at
  once (``end_local``).

Ending is local on purpose (``ignore_queue``): each node ends only its own sockets, so no
Redis round trip is needed. The socket cap (``MAX_SOCKETS_PER_USER``) counts the user's sockets
on every node from presence in Redis, plus this node's sockets not registered there yet; with
Redis away it counts this node's only.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import asyncpg
from redis.exceptions import RedisError

from chatcore.errors import RateLimited
from chatcore.tokens import AccessClaims

from ..storage import users as db

if TYPE_CHECKING:
    from ..context import Services

log = logging.getLogger(__name__)

SESSIONS = "sessions"  # the key of this node's ``SocketSessions`` in ``Services.extras``
REASONS = ("expired", "revoked", "logged_out")
# a revocation stamped up to this long before the last look is read again: it may have been
# stamped inside a transaction that committed after that look (statements time out at 5 s)
OVERLAP_S = 10.0
PRUNE_EVERY_S = 600.0
CAP_RETRY_AFTER_S = 5.0


@dataclass(slots=True)
class SocketAuth:
    user_id: int
    token_version: int
    family: str | None
    expires_at: int  # the token's ``exp``, seconds since the epoch


def sessions_of(svc: Services) -> SocketSessions | None:
    found = svc.extras.get(SESSIONS)
    return found if isinstance(found, SocketSessions) else None


class SocketSessions:
    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self._by_sid: dict[str, SocketAuth] = {}
        self._by_user: dict[int, set[str]] = {}
        # (exp, sid); an entry is stale once its socket renewed (another exp) or went away
        self._expiry: list[tuple[int, str]] = []
        self._since: datetime | None = None
        self._pruned_at = 0.0

    def __len__(self) -> int:
        return len(self._by_sid)

    # --- the registry, kept by the Socket.IO transport ----------------------------------------

    def add(self, sid: str, claims: AccessClaims) -> None:
        self._by_sid[sid] = SocketAuth(claims.user_id, claims.token_version, claims.family, claims.expires_at)
        self._by_user.setdefault(claims.user_id, set()).add(sid)
        heapq.heappush(self._expiry, (claims.expires_at, sid))

    def renew(self, sid: str, claims: AccessClaims) -> bool:
        auth = self._by_sid.get(sid)
        if auth is None:
            return False  # being ended: too late to renew
        auth.token_version, auth.family, auth.expires_at = claims.token_version, claims.family, claims.expires_at
        heapq.heappush(self._expiry, (claims.expires_at, sid))
        return True

    def remove(self, sid: str) -> None:
        auth = self._by_sid.pop(sid, None)
        if auth is None:
            return
        sids = self._by_user.get(auth.user_id)
        if sids is not None:
            sids.discard(sid)
            if not sids:
                del self._by_user[auth.user_id]

    def sids_of(self, user_id: int) -> set[str]:
        return set(self._by_user.get(user_id, ()))

    # --- ending sockets ---------------------------------------------------------------------

    async def end(self, sid: str, reason: str) -> None:
        """Tell the socket why, then disconnect it; a socket is ended once."""
        if sid not in self._by_sid:
            return
        self.remove(sid)
        self.svc.metrics.sessions_ended.labels(reason).inc()
        try:
            await self.svc.sio.emit("session:ended", {"reason": reason}, to=sid, ignore_queue=True)
        except Exception as exc:  # the socket may be gone already; it is disconnected below anyway
            log.debug("session:ended to %s not sent: %s", sid, type(exc).__name__)
        await self.svc.sio.disconnect(sid, ignore_queue=True)

    async def end_local(
        self, user_id: int, reason: str, *, keep_version: int | None = None, family: str | None = None
    ) -> int:
        """End this node's sockets of ``user_id``: those of ``family`` when given, else those
        whose token version is not ``keep_version`` (None: all). Returns how many."""
        targets = []
        for sid in self.sids_of(user_id):
            auth = self._by_sid.get(sid)
            if auth is None:
                continue
            if family is not None:
                if auth.family != family:
                    continue
            elif keep_version is not None and auth.token_version == keep_version:
                continue
            targets.append(sid)
        # together: each disconnect also updates presence, which waits out a slow Redis
        await asyncio.gather(*(self.end(sid, reason) for sid in targets))
        return len(targets)

    async def expire_due(self, now: float | None = None) -> int:
        """End the sockets whose token expired without a renewal; returns how many."""
        now = time.time() if now is None else now
        ended = 0
        while self._expiry and self._expiry[0][0] <= now:
            exp, sid = heapq.heappop(self._expiry)
            auth = self._by_sid.get(sid)
            if auth is None or auth.expires_at != exp:
                continue  # gone, or renewed since this entry was pushed
            await self.end(sid, "expired")
            ended += 1
        return ended

    async def check_revocations(self) -> int:
        """One look at PostgreSQL for what was revoked since the last; returns sockets ended."""
        if not self._by_sid:
            self._since = None  # nothing to end; the next look starts from its own overlap
            return 0
        async with asyncio.timeout(self.svc.config.db_timeout_s):
            now, found = await db.revocations_since(self.svc.pool, self._since, OVERLAP_S)
        self._since = now
        ended = 0
        for rev in found:
            if rev.user_id not in self._by_user:
                continue
            if rev.family_id is not None:
                ended += await self.end_local(rev.user_id, rev.reason, family=rev.family_id)
            elif rev.token_version is not None:
                ended += await self.end_local(rev.user_id, rev.reason, keep_version=rev.token_version)
        return ended

    # --- loop bodies, started through the Supervisor ------------------------------------------

    async def run_expiry(self) -> None:
        while True:
            await self.expire_due()
            wait = 1.0
            if self._expiry:
                wait = min(wait, max(0.05, self._expiry[0][0] - time.time()))
            await asyncio.sleep(wait)

    async def run_revocation_check(self) -> None:
        interval = self.svc.config.revocation_check_s
        failing = False
        while True:
            try:
                await self.check_revocations()
                if time.monotonic() - self._pruned_at > PRUNE_EVERY_S:
                    self._pruned_at = time.monotonic()
                    async with asyncio.timeout(self.svc.config.db_timeout_s):
                        # a family's access tokens live access_ttl_s at most; a minute for clock skew
                        await db.prune_revoked_families(self.svc.pool, self.svc.config.access_ttl_s + 60)
                if failing:
                    log.info("revocation check: PostgreSQL answers again")
                failing = False
            except (TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                # once per outage, not once a second; the next look reads what was missed
                if not failing:
                    log.warning("revocation check: PostgreSQL unavailable: %s", type(exc).__name__)
                failing = True
            await asyncio.sleep(interval)

    # --- the socket cap -----------------------------------------------------------------------

    async def check_cap(self, user_id: int) -> None:
        """Refuse one more socket of a user who has ``limits.sockets_per_user`` open already.

        Called just before the socket is registered, with no await in between, so concurrent
        connects on one node cannot pass it together."""
        cap = self.svc.config.limits.sockets_per_user
        everywhere: set[str] = set()
        try:
            async with asyncio.timeout(self.svc.config.redis_timeout_s):
                everywhere = set(await self.svc.presence.sids(user_id))
        except (TimeoutError, RedisError, OSError) as exc:
            log.warning("socket cap counts this node only: presence unavailable: %s", type(exc).__name__)
        if len(everywhere | self.sids_of(user_id)) >= cap:
            raise RateLimited(f"too many open connections (at most {cap} per user)", retry_after=CAP_RETRY_AFTER_S)

