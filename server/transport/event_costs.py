"""What each client event costs from the per-connection event budget.

The budget (``limits.events_per_10s`` tokens, refilled evenly over 10 s) used to charge every
event one token, so a ``sync`` over 200 rooms (about three queries a room: some 600) cost what a
``typing`` (one query) costs. Events are now charged roughly by the database work they start,
in units of one cheap event:

    event                          cost   why
    typing, read, message:send,    1      one or two queries (sends also have their own limit)
      message:edit, message:delete
    room:leave                     2      access check, delete, fan-out
    message:react                  2      access check, a locked transaction of ~5 queries,
                                          and a whole record fanned out to the room
    history                        3      a page of messages, maybe an archive call
    room:join                      4      membership, members, presence, latest page
    sync                           2 + ceil(rooms / 4), at most 30
                                          ~3 queries per room in ``cursors``

No cost exceeds the budget (a client with a small budget can still send any event once it is
full), and a refused event costs nothing: its ack is ``rate_limited`` with ``retry_after``.
The cost is read from the payload before it is validated; a malformed ``sync`` is charged by
the size of what it sent (a non-object counts as one room), so garbage is never cheaper.
"""

from __future__ import annotations

import math
from typing import Any

EVENT_COSTS: dict[str, float] = {
    "typing": 1.0,
    "read": 1.0,
    "message:send": 1.0,
    "message:edit": 1.0,
    "message:delete": 1.0,
    "room:leave": 2.0,
    "message:react": 2.0,
    "history": 3.0,
    "room:join": 4.0,
}
DEFAULT_COST = 1.0
SYNC_BASE_COST = 2.0
SYNC_ROOMS_PER_TOKEN = 4
SYNC_MAX_COST = 30.0  # reached at 112 rooms; a sync holds at most 200 (SYNC_MAX_ROOMS)


def sync_cost(data: Any) -> float:
    cursors = data.get("cursors") if isinstance(data, dict) else None
    rooms = len(cursors) if isinstance(cursors, dict) else 1
    return min(SYNC_MAX_COST, SYNC_BASE_COST + math.ceil(max(rooms, 1) / SYNC_ROOMS_PER_TOKEN))


def event_cost(event: str, data: Any, budget: float) -> float:
    """Tokens ``event`` with payload ``data`` takes; never more than ``budget``."""
    cost = sync_cost(data) if event == "sync" else EVENT_COSTS.get(event, DEFAULT_COST)
    return min(cost, budget)
