"""Channel names and the one helper that emits events.

Emits happen after the transaction commits. A failed fan-out (Redis down) is logged and counted,
never raised into the sender's ack: the message is stored and clients catch up through ``sync``
or gap detection on the next message.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..context import Services

log = logging.getLogger(__name__)

STAFF_CHANNEL = "staff"
DESK_CHANNEL = "desk"  # sockets of supervisors and admins: every conversation, campaign progress
ADMIN_CHANNEL = "admins"  # admins' sockets: linked-device session events (wa:session)
EMIT_TIMEOUT_S = 2.0


def room_channel(room_id: int) -> str:
    return f"r:{room_id}"


def user_channel(user_id: int) -> str:
    return f"u:{user_id}"


async def emit(
    svc: Services, event: str, data: Any, *, to: str | list[str], skip_sid: str | None = None
) -> None:
    try:
        # our manager delivers locally and queues for the bus at once (its publisher bounds each
        # Redis call): nothing to wait for, no timer to set; others go through the server's emit
        now = getattr(svc.sio.manager, "emit_now", None)
        if now is not None and now(event, data, to, skip_sid):
            return
        async with asyncio.timeout(EMIT_TIMEOUT_S):  # not wait_for: no task per emit
            await svc.sio.emit(event, data, to=to, skip_sid=skip_sid)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # fan-out must never fail a committed write
        svc.metrics.fanout_failures.inc()
        log.warning("emit %s to %s failed: %s", event, to, type(exc).__name__)


async def enter_channel(svc: Services, user_id: int, channel: str) -> None:
    """Subscribe every open socket of a user (on any node) to a channel."""
    try:
        for sid in await svc.presence.sids(user_id):
            await svc.sio.enter_room(sid, channel)
    except Exception as exc:
        log.warning("enter %s for user %s failed: %s", channel, user_id, type(exc).__name__)


async def leave_channel(svc: Services, user_id: int, channel: str) -> None:
    try:
        for sid in await svc.presence.sids(user_id):
            await svc.sio.leave_room(sid, channel)
    except Exception as exc:
        log.warning("leave %s for user %s failed: %s", channel, user_id, type(exc).__name__)
