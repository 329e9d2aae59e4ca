"""Per-caller limits on chat-archive's costly queries: text search and export.

Both read far more than they return (a search checks a ``$regex`` on every message of its room,
author or time range; an export reads a whole room), so a caller starting them back to back
could keep the store busy for everyone. Each (kind, user id) has a token bucket holding
``per_minute`` requests: a request takes one, the bucket refills at ``per_minute / 60`` a second,
so a caller may spend a minute's allowance at once and then goes at the steady rate. An empty
bucket answers ``RateLimited`` (429 ``rate_limited``) with the seconds until one request is
allowed again. The count is checked after the token's signature, before chat-server is asked
about access or the store is read, so a refused request costs neither.

The buckets live in this process's memory: each chat-archive process counts its own requests
(behind several, a caller gets each one's allowance), and a restart forgets them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from chatcore.errors import RateLimited

FULL_AFTER_S = 60.0  # an empty bucket is full again after a minute (the rate is per minute)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float  # when ``tokens`` was counted (monotonic seconds)


class QueryLimiter:
    """``per_minute``: requests a minute for each kind (``search``, ``export``); 0 or absent: unlimited."""

    def __init__(self, per_minute: Mapping[str, int], clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = dict(per_minute)
        self._clock = clock
        self._buckets: dict[tuple[str, int], _Bucket] = {}
        self._swept = clock()

    def take(self, kind: str, user_id: int) -> None:
        """Count one ``kind`` request of ``user_id``; raise ``RateLimited`` when none is left."""
        capacity = self.per_minute.get(kind, 0)
        if capacity <= 0:
            return
        now = self._clock()
        self._sweep(now)
        refill_per_s = capacity / FULL_AFTER_S
        bucket = self._buckets.get((kind, user_id))
        if bucket is None:
            bucket = self._buckets[(kind, user_id)] = _Bucket(float(capacity), now)
        else:
            bucket.tokens = min(float(capacity), bucket.tokens + (now - bucket.at) * refill_per_s)
            bucket.at = now
        if bucket.tokens < 1.0:
            raise RateLimited(f"too many archive {kind} requests ({capacity} a minute)",
                              retry_after=(1.0 - bucket.tokens) / refill_per_s)
        bucket.tokens -= 1.0

    def _sweep(self, now: float) -> None:
        # a bucket untouched for a minute is full, as a missing one: dropping it changes no
        # answer and keeps memory to the callers of the last minute
        if now - self._swept < FULL_AFTER_S:
            return
        self._swept = now
        for key in [k for k, b in self._buckets.items() if now - b.at >= FULL_AFTER_S]:
            del self._buckets[key]
