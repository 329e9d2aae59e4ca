"""Presence fan-out: a user's online/offline change goes to every room they belong to."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from chatcore.events import PresenceEvent, iso

from ..storage import rooms as rdb
from ..storage import users as udb
from .conversations import assign_for_agent
from .notify import emit, room_channel, user_channel

if TYPE_CHECKING:
    from ..context import Services

log = logging.getLogger(__name__)


async def on_presence_change(svc: Services, user_id: int, status: str, at: datetime) -> None:
    if status == "offline":
        await udb.touch_last_seen(svc.pool, user_id, at)
    room_ids = await rdb.room_ids_for_user(svc.pool, user_id)
    # one emit to the union of channels: each socket receives the event once
    channels = [room_channel(r) for r in room_ids] + [user_channel(user_id)]
    event = PresenceEvent(user_id, status, iso(at))
    await emit(svc, "presence", event.to_wire(), to=channels)
    if status == "online":
        await assign_for_agent(svc, user_id)  # conversations waiting in their queues
