"""Read receipts: when a member's read cursor moves, the room hears ``read:updated``.

Only small rooms have them: direct rooms always, other chat rooms while they have at most
``READ_RECEIPTS_MAX_MEMBERS`` members (in a large room every read would fan out to everyone);
WhatsApp conversations never (their contacts are not members). ``room:join`` hands the
members' cursors to a client opening such a room (``read_cursors``), and events keep them
current.

The event is emitted after the cursor's update committed, to the room's channel (every node,
through the bus), at most once per second per (room, reader) on a node: the first advance in
a second goes out at once, later ones wait for the second's end and go out as one event with
the newest cursor (so the last position is never lost, only delayed). A reader with sockets
on several nodes is throttled on each node separately.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from .notify import emit, room_channel

if TYPE_CHECKING:
    from ..context import Services

log = logging.getLogger(__name__)

RECEIPT_INTERVAL_S = 1.0  # per (room, reader): at most one read:updated a second
_PRUNE_AT = 4096  # remembered (room, reader) pairs before the ones idle past the interval go
_KEY = "read_receipts"


def receipts_enabled(svc: Services, room_kind: str, members: int) -> bool:
    if room_kind == "direct":
        return True
    return room_kind in ("public", "private") and members <= svc.config.read_receipts_max_members


class ReceiptThrottle:
    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self._last: dict[tuple[int, int], float] = {}  # monotonic time of the last event sent
        self._pending: dict[tuple[int, int], int] = {}  # the newest cursor waiting for its turn

    async def advanced(self, room_id: int, user_id: int, seq: int) -> None:
        key = (room_id, user_id)
        if key in self._pending:
            self._pending[key] = max(self._pending[key], seq)
            return
        now = time.monotonic()
        last = self._last.get(key)
        if last is None or now - last >= RECEIPT_INTERVAL_S:
            self._last[key] = now
            self._prune(now)
            await self._send(key, seq)
            return
        self._pending[key] = seq
        try:
            self.svc.supervisor.spawn(f"read-receipt:{room_id}:{user_id}", self._trailing(key, last + RECEIPT_INTERVAL_S - now))
        except RuntimeError:  # shutting down: clients catch up from room:join's cursors
            self._pending.pop(key, None)

    async def _trailing(self, key: tuple[int, int], delay: float) -> None:
        try:
            await asyncio.sleep(delay)
        finally:
            seq = self._pending.pop(key, None)
        if seq is not None:
            self._last[key] = time.monotonic()
            await self._send(key, seq)

    async def _send(self, key: tuple[int, int], seq: int) -> None:
        room_id, user_id = key
        await emit(self.svc, "read:updated", {"room_id": room_id, "user_id": user_id, "last_read_seq": seq},
                   to=room_channel(room_id))

    def _prune(self, now: float) -> None:
        if len(self._last) > _PRUNE_AT:
            self._last = {k: t for k, t in self._last.items() if now - t < RECEIPT_INTERVAL_S or k in self._pending}


def receipts_of(svc: Services) -> ReceiptThrottle:
    found = svc.extras.get(_KEY)
    if not isinstance(found, ReceiptThrottle):
        found = svc.extras[_KEY] = ReceiptThrottle(svc)
    return found
