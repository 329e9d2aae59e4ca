"""A WhatsApp conversation as a ticket: its state machine, who may act on it, assignment to
agents, and its timeline (``conversation_events``).

State per conversation (``wa_contacts``): ``ai_enabled``, ``assignee_id``, ``status``,
``queue_id``.

    AI mode     ai_enabled and no assignee       the assistant answers every contact message
    human mode  not ai_enabled (assignee or not)  the assistant is silent

    takeover (or any staff reply)  -> human, assignee = that staff user; refused (409 conflict)
                                      when another person holds it: the UPDATE is conditional,
                                      so of two agents on two nodes exactly one wins
    assign(user)                   -> human, assignee = user
    transfer(queue?, user?, note)  -> human, in that queue, assignee = user (or auto-assigned)
    handback                       -> AI, no assignee
    AI hand-off decision           -> human, status pending (waiting for a person)
    close / reopen                 -> status closed / open; a contact writing reopens it
    routed to a queue              -> human, waits there until an agent is assigned

Each staff action is one transaction: the state change, its audit row and its timeline event;
after the commit, one ``conversation:updated`` and one ``conversation:event``. Timeline events
are not messages: nothing that reads ``messages`` (the outbox to the contact, the assistant,
history, the archive) can carry one.

Visibility (``storage.queues.VISIBLE_SQL``): supervisors and admins see every conversation;
staff see those of their queues, those assigned to them, and those in no queue. Acting on or
reading any other is ``403 forbidden`` with ``details.reason = "outside_queues"``. Live events
follow the same line: a conversation in a queue is emitted to that queue's channel, the desk
managers' channel and its assignee; one in no queue to every staff socket.

Auto-assignment: a conversation entering a queue goes to the queue's online member (presence
in Redis) with the fewest open conversations, below their capacity, under one desk-wide
PostgreSQL advisory lock so two nodes never fill the same last slot. With nobody available it
waits (oldest first) and the contact gets the queue's away message once; every node sweeps the
waiting lines every ``DESK_ASSIGN_SWEEP_S`` and when an agent comes online or frees a slot.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from chatcore.errors import Conflict, Forbidden, Invalid, NotFound
from chatcore.events import iso
from chatcore.types import DESK_MANAGER_ROLES, STAFF_ROLES
from whatsapp_bridge.cloud_api import within_service_window

from ..storage import queues as qdb
from ..storage import users as udb
from ..storage import whatsapp as db
from . import audit
from .notify import DESK_CHANNEL, STAFF_CHANNEL, emit, leave_channel, room_channel, user_channel

if TYPE_CHECKING:
    from ..context import Services

log = logging.getLogger(__name__)

ACTIONS = ("takeover", "handback", "assign", "transfer", "close", "reopen")
EVENT_KINDS = {"takeover": "taken_over", "handback": "handed_back", "assign": "assigned", "transfer": "transferred",
               "close": "closed", "reopen": "reopened"}
NOTE_MAX_CHARS = 1000
EVENTS_PAGE_MAX = 200
SWEEP_BATCH = 50  # waiting conversations assigned per queue per sweep


def queue_channel(queue_id: int) -> str:
    return f"q:{queue_id}"


def sees_everything(user: udb.User) -> bool:
    return user.role in DESK_MANAGER_ROLES


def conversation_view(row: asyncpg.Record, now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    last = row["last_message"]
    return {
        "room_id": row["room_id"],
        "account_id": row["account_id"],
        "session_id": row["session_id"],
        "channel": row["channel"],
        "business_phone": row["display_phone"],
        "contact": {"id": row["contact_id"], "wa_id": row["wa_id"], "name": row["person_name"] or row["name"],
                    "bsuid": row["bsuid"]},
        "labels": row["labels"],
        "status": row["status"],
        "ai_enabled": row["ai_enabled"],
        "mode": "ai" if row["ai_enabled"] and row["assignee_id"] is None else "human",
        "assignee": None if row["a_id"] is None else {
            "id": row["a_id"], "username": row["a_username"], "display_name": row["a_display_name"]},
        "queue": None if row["queue_id"] is None else {
            "id": row["queue_id"], "name": row["q_name"], "color": row["q_color"]},
        "routing": row["routing_state"],
        "unread": max(0, row["last_seq"] - row["staff_read_seq"]),
        "last_message": last,
        "last_inbound_at": iso(row["last_inbound_at"]),
        # a linked device writes like the phone's own app: no 24-hour window
        "window_open": row["channel"] == "linked_device" or within_service_window(row["last_inbound_at"], now),
        "campaign": None if row["campaign_id"] is None else {"id": row["campaign_id"], "name": row["campaign_name"]},
        "updated_at": iso(row["updated_at"]),
    }


def audience(room_id: int, queue_id: int | None, assignee_id: int | None) -> list[str]:
    """The socket channels that may see a conversation's live events (the visibility rule)."""
    if queue_id is None:
        return [STAFF_CHANNEL, room_channel(room_id)]
    channels = [DESK_CHANNEL, queue_channel(queue_id), room_channel(room_id)]
    if assignee_id is not None:
        channels.append(user_channel(assignee_id))
    return channels


async def publish(svc: Services, room_id: int) -> dict[str, Any]:
    row = await db.conversation_row(svc.pool, room_id)
    if row is None:
        raise NotFound("conversation not found")
    view = conversation_view(row)
    await emit(svc, "conversation:updated", view, to=audience(room_id, row["queue_id"], row["assignee_id"]))
    return view


async def check_visible(conn: asyncpg.Connection | asyncpg.Pool, user: udb.User, room_id: int) -> None:
    if not sees_everything(user) and not await qdb.conversation_visible(conn, room_id, user.id):
        raise Forbidden("this conversation is outside your queues", reason="outside_queues")


async def access_conversation(svc: Services, user: udb.User, room_id: int) -> db.Contact:
    """The conversation if ``user`` may see it: ``not_found``, or ``forbidden`` outside their queues."""
    contact = await db.contact_by_room(svc.pool, room_id)
    if contact is None:
        raise NotFound("conversation not found")
    await check_visible(svc.pool, user, room_id)
    return contact


async def do_get(svc: Services, user: udb.User, room_id: int) -> dict[str, Any]:
    await access_conversation(svc, user, room_id)
    row = await db.conversation_row(svc.pool, room_id)
    if row is None:
        raise NotFound("conversation not found")
    return conversation_view(row)


async def do_list(svc: Services, user: udb.User, **filters: Any) -> list[dict[str, Any]]:
    rows = await db.conversations(svc.pool, visible_to=None if sees_everything(user) else user.id, **filters)
    return [conversation_view(r) for r in rows]


async def do_list_events(svc: Services, user: udb.User, room_id: int, before_id: int | None,
                         limit: int) -> list[dict[str, Any]]:
    await access_conversation(svc, user, room_id)
    return await qdb.list_events(svc.pool, room_id, before_id, min(limit, EVENTS_PAGE_MAX))


# --- staff actions -----------------------------------------------------------------------------------

async def _staff_target(conn: asyncpg.Connection, user_id: Any, queue_id: int | None) -> udb.User:
    """An active staff member who may hold a conversation of ``queue_id``: a member of it, or a
    supervisor or admin (they see every queue)."""
    if not isinstance(user_id, int) or isinstance(user_id, bool):
        raise Invalid("user_id must be a staff user's id", field="user_id")
    target = await udb.get_user(conn, user_id)
    if target is None or target.role not in STAFF_ROLES or target.deactivated_at is not None:
        raise Invalid("user_id must be a staff user's id", field="user_id")
    if queue_id is not None and target.role not in DESK_MANAGER_ROLES and not await qdb.is_member(conn, queue_id, target.id):
        raise Invalid("that agent is not a member of the conversation's queue", field="user_id", reason="not_in_queue")
    return target


async def do_transition(svc: Services, room_id: int, action: str, actor: audit.Actor, *, user_id: Any = None,
                        queue_id: int | None = None, note: str = "") -> dict[str, Any]:
    """One staff action on the conversation, with its audit row (``conversation.<action>``, the
    fields before and after) and its timeline event in the same transaction."""
    if action not in ACTIONS:
        raise NotFound("unknown action")
    note = note.strip()
    if len(note) > NOTE_MAX_CHARS or "\x00" in note:
        raise Invalid(f"a note is at most {NOTE_MAX_CHARS} characters", field="note")
    async with svc.pool.acquire() as conn, conn.transaction():
        contact = await db.contact_by_room(conn, room_id, for_update=action != "takeover")
        if contact is None:
            raise NotFound("conversation not found")
        await check_visible(conn, actor.user, room_id)
        fields = await _fields_for(conn, contact, action, actor, user_id, queue_id)
        if action == "takeover":
            # conditional: of two agents taking it at once (any node), exactly one row matches
            taken = await db.claim_contact(conn, contact.id, actor.user.id)
            if taken is None:
                raise Conflict("another agent already holds this conversation", reason="taken")
        else:
            await db.update_contact(conn, contact.id, **fields)
        before = {k: (iso(v) if isinstance(v, datetime) else v) for k in fields for v in [getattr(contact, k)]}
        after = {k: (iso(v) if isinstance(v, datetime) else v) for k, v in fields.items()}
        await audit.record(conn, actor, f"conversation.{action}", "conversation", room_id,
                           {"from": before, "to": after} | ({"note": note} if note else {}))
        event_id = await qdb.insert_event(
            conn, room_id, EVENT_KINDS[action], actor.user.id,
            queue_id=fields.get("queue_id", contact.queue_id),
            from_queue_id=contact.queue_id if action == "transfer" else None,
            from_user_id=contact.assignee_id if action in ("takeover", "assign", "transfer") else None,
            to_user_id=fields.get("assignee_id") if action in ("takeover", "assign", "transfer") else None,
            note=note)
    await after_change(svc, room_id, [event_id], notify=(contact.assignee_id, fields.get("assignee_id")),
                       was=(contact.queue_id, contact.assignee_id))
    if action == "transfer" and fields.get("assignee_id") is None:
        await assign_waiting(svc, [int(fields["queue_id"])])
    elif action in ("handback", "close", "transfer", "assign") and contact.assignee_id is not None:
        await assign_for_agent(svc, contact.assignee_id)  # the previous holder has a free slot
    row = await db.conversation_row(svc.pool, room_id)
    assert row is not None
    return conversation_view(row)


async def _fields_for(conn: asyncpg.Connection, contact: db.Contact, action: str, actor: audit.Actor,
                      user_id: Any, queue_id: int | None) -> dict[str, Any]:
    if action == "takeover":
        return {"ai_enabled": False, "assignee_id": actor.user.id, "status": "open"}
    if action == "handback":
        return {"ai_enabled": True, "assignee_id": None, "status": "open"}
    if action == "assign":
        target = await _staff_target(conn, user_id, contact.queue_id)
        return {"ai_enabled": False, "assignee_id": target.id}
    if action == "transfer":
        return await _transfer_fields(conn, contact, user_id, queue_id)
    if action == "close":
        return {"status": "closed"}
    return {"status": "open"}


async def _transfer_fields(conn: asyncpg.Connection, contact: db.Contact, user_id: Any,
                           queue_id: int | None) -> dict[str, Any]:
    if queue_id is None and user_id is None:
        raise Invalid("a transfer needs a queue_id, a user_id or both", field="queue_id")
    fields: dict[str, Any] = {"ai_enabled": False, "routing_state": "routed"}
    target_queue = contact.queue_id
    if queue_id is not None:
        if await qdb.get_queue(conn, queue_id) is None:
            raise NotFound("queue not found", field="queue_id")
        target_queue = queue_id
        fields |= {"queue_id": queue_id, "away_sent": False, "queued_at": datetime.now(UTC)}
    if user_id is not None:
        fields["assignee_id"] = (await _staff_target(conn, user_id, target_queue)).id
    else:
        fields["assignee_id"] = None  # waits in the new queue, auto-assigned after the commit
    return fields


async def hide_from_lost(svc: Services, room_id: int, before: tuple[int | None, int | None],
                         after: tuple[int | None, int | None]) -> None:
    """Staff who saw the conversation (queue, assignee ``before``) and no longer do (``after``):
    their sockets leave its room channel, so none of its live events reach them any more, and they
    get ``conversation:hidden`` so their inbox drops it (nothing else would tell a staff member
    who is outside the new audience)."""
    if before == after:
        return
    for user_id in await qdb.staff_losing_sight(svc.pool, before, after):
        await leave_channel(svc, user_id, room_channel(room_id))
        await emit(svc, "conversation:hidden", {"room_id": room_id}, to=user_channel(user_id))


async def after_change(svc: Services, room_id: int, event_ids: list[int],
                       notify: tuple[int | None, int | None] = (None, None),
                       was: tuple[int | None, int | None] | None = None) -> None:
    """After a commit: ``conversation:hidden`` to the staff it moved away from (``was``: its queue
    and assignee before), one ``conversation:updated``, the timeline events to the conversation's
    staff audience, and ``conversation:handover`` to the agents who lost or gained it."""
    if was is not None:
        row = await db.conversation_row(svc.pool, room_id)
        if row is not None:
            await hide_from_lost(svc, room_id, was, (row["queue_id"], row["assignee_id"]))
    view = await publish(svc, room_id)
    events = await qdb.events_by_id(svc.pool, event_ids)
    queue = view["queue"]["id"] if view["queue"] else None
    assignee = view["assignee"]["id"] if view["assignee"] else None
    for event in events:
        await emit(svc, "conversation:event", event, to=audience(room_id, queue, assignee))
    before, after = notify
    if before != after:
        for user_id, role in ((before, "from"), (after, "to")):
            if user_id is not None:
                await emit(svc, "conversation:handover", {"role": role, "conversation": view, "event": events[-1]},
                           to=user_channel(user_id))


async def on_staff_reply(svc: Services, contact: db.Contact, author_id: int) -> bool:
    """A staff reply: takes an AI-mode conversation over (conditionally, as ``takeover``) and
    marks the first human response of the conversation's current stay. Returns whether the
    conversation changed."""
    events: list[int] = []
    changed = False
    async with svc.pool.acquire() as conn, conn.transaction():
        if contact.ai_enabled and await db.claim_contact(conn, contact.id, author_id) is not None:
            events.append(await qdb.insert_event(conn, contact.room_id, "taken_over", author_id,
                                                 queue_id=contact.queue_id, to_user_id=author_id,
                                                 meta={"implicit": True}))
            changed = True
        first = await mark_first_response(conn, contact, author_id)
        if first is not None:
            events.append(first)
    if events:
        await after_change(svc, contact.room_id, events)
    return changed


async def mark_first_response(conn: asyncpg.Connection, contact: db.Contact, author_id: int | None,
                              meta: dict[str, Any] | None = None) -> int | None:
    """The ``first_response`` event of the conversation's current stay, when this reply is its
    first human one (in the caller's transaction); None when the stay has one already."""
    since = await qdb.last_event_id(conn, contact.room_id, ["opened", "reopened"])
    if await qdb.has_event(conn, contact.room_id, "first_response", since):
        return None
    return await qdb.insert_event(conn, contact.room_id, "first_response", author_id, queue_id=contact.queue_id,
                                  meta=meta)


# --- auto-assignment ---------------------------------------------------------------------------------

async def _online_members(svc: Services, queue_id: int) -> list[int]:
    members = await qdb.member_ids(svc.pool, queue_id)
    online = await svc.presence.online(members)
    return [uid for uid, on in online.items() if on]


async def assign_waiting(svc: Services, queue_ids: list[int]) -> int:
    """Assign the waiting conversations of ``queue_ids`` to available agents, oldest first;
    returns how many were assigned. Safe on every node at once (``qdb.lock_assignments``).

    The contacts still waiting when no agent is available get the queue's away message, once
    per stay: decided under the same lock, so a conversation an agent takes in the same
    instant is never told that nobody is there."""
    assigned = 0
    for queue_id in queue_ids:
        online = await _online_members(svc, queue_id)
        done: list[tuple[int, int, int]] = []
        away: list[int] = []
        async with svc.pool.acquire() as conn, conn.transaction():
            await qdb.lock_assignments(conn)
            full = False
            for room_id in await qdb.waiting_in_queue(conn, queue_id, SWEEP_BATCH):
                agent = await qdb.pick_agent(conn, queue_id, online, svc.config.desk_agent_capacity) if online else None
                if agent is None:
                    full = True
                    break
                contact = await db.contact_by_room(conn, room_id)
                assert contact is not None
                await db.update_contact(conn, contact.id, assignee_id=agent)
                done.append((room_id, agent, await qdb.insert_event(
                    conn, room_id, "assigned", None, queue_id=queue_id, to_user_id=agent, meta={"auto": True})))
            if full:
                away = await db.claim_away(conn, queue_id)
        for room_id, agent, event_id in done:
            await after_change(svc, room_id, [event_id], notify=(None, agent))
        assigned += len(done)
        await _send_away_messages(svc, queue_id, away)
    return assigned


async def _send_away_messages(svc: Services, queue_id: int, room_ids: list[int]) -> None:
    if not room_ids or svc.whatsapp is None:
        return
    queue = await qdb.get_queue(svc.pool, queue_id)
    if queue is None or not queue.away_message.strip():
        return
    for room_id in room_ids:
        await svc.whatsapp.send_notice(room_id, queue.away_message, {"desk": "away", "queue_id": queue_id})


async def assign_for_agent(svc: Services, user_id: int) -> int:
    """An agent came online or freed a slot: serve the waiting lines of their queues."""
    return await assign_waiting(svc, await qdb.queue_ids_of(svc.pool, user_id))


async def sweep(svc: Services) -> int:
    return await assign_waiting(svc, await qdb.queues_with_waiting(svc.pool))


async def run_sweeper(svc: Services) -> None:
    """The periodic sweep (every node runs one; the advisory lock keeps them apart)."""
    while True:
        await asyncio.sleep(svc.config.desk_assign_sweep_s)
        await sweep(svc)
