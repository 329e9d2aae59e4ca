"""Queues (departments) and the routing of new WhatsApp conversations into them.

Admins create, change and delete queues (name, colour, description, greeting, away message,
member agents with an optional capacity each); every change writes its audit row in the same
transaction. Supervisors and admins read every queue, staff read the queues they belong to.

Routing rule per WhatsApp number (``wa_accounts.routing``), applied to the first message of a
new or reopened conversation:

    none     nothing routed: the conversation is in no queue, every staff member sees it, the
             assistant answers as before queues existed
    menu     the contact gets the greeting menu ("1. Sales", "2. Support", ...); their answer
             routes it; an invalid answer repeats the menu once, a second one routes to the
             default queue (or leaves it in no queue when the number has none)
    ai       triage: the queue is picked from the contact's first message: with a model, the
             model picks a queue by name (the message passed as quoted data); with the offline
             provider, or when the model fails or names no queue, deterministically: the queue
             whose name and description share the most words with the message; else the
             default queue, else the first queue by name. The contact is told which queue
    default  the number's default queue (none set: the conversation is left in no queue)

A routed conversation is in human mode (the assistant is silent) and is auto-assigned
(``actions/conversations.py``). Messages to the contact (menu, "you are with Sales", away
message) are stored in the room as system messages and leave through the outbox like any reply.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from chatcore.errors import Conflict, Invalid, NotFound
from chatcore.events import MessageRecord
from chatcore.types import STAFF_ROLES

from ..storage import queues as db
from ..storage import whatsapp as wdb
from . import audit, conversations
from .notify import emit, enter_channel, leave_channel, user_channel

if TYPE_CHECKING:
    from ..context import Services
    from ..storage import users as udb

ROUTINGS = ("none", "menu", "ai", "default")
NAME_MAX, TEXT_MAX, DESCRIPTION_MAX = 60, 1000, 500
MEMBERS_MAX = 500
COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
CREATED, UPDATED, DELETED, ROUTING_SET = "queue.create", "queue.update", "queue.delete", "wa_account.routing"
MENU_HEADER = "Hello! Please choose a department by replying with its number:"
INVALID_ANSWER = "Sorry, that is not one of the options."
ROUTED_TO = "You are now in the queue of {name}. An agent will be with you shortly."
_WORD = re.compile(r"[^\W\d_]{3,}", re.UNICODE)


def check_color(value: Any) -> str:
    if not isinstance(value, str) or not COLOR_RE.match(value):
        raise Invalid("color must be #rrggbb", field="color")
    return value.lower()


def check_name(value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid(f"a queue name is 1-{NAME_MAX} characters", field="name")
    name = value.strip()
    if not name or len(name) > NAME_MAX or "\x00" in name:
        raise Invalid(f"a queue name is 1-{NAME_MAX} characters", field="name")
    return name


def _members(members: list[tuple[int, int | None]] | None) -> list[tuple[int, int | None]] | None:
    """The member list with each agent once (a repeated agent: the last entry counts)."""
    if members is None:
        return None
    if len(members) > MEMBERS_MAX:
        raise Invalid(f"a queue has at most {MEMBERS_MAX} members", field="members")
    return list(dict(members).items())


async def _check_staff(conn: asyncpg.Connection, members: list[tuple[int, int | None]]) -> None:
    ids = [uid for uid, _ in members]
    found = await db.staff_ids(conn, ids, sorted(STAFF_ROLES))
    missing = [uid for uid in ids if uid not in found]
    if missing:
        raise NotFound("every member must be an active staff user", field="members", user_ids=missing)


async def do_create(svc: Services, actor: audit.Actor, values: dict[str, str],
                    members: list[tuple[int, int | None]]) -> db.Queue:
    values = dict(values, name=check_name(values["name"]))
    if "color" in values:
        values["color"] = check_color(values["color"])
    members = _members(members) or []
    try:
        async with svc.pool.acquire() as conn, conn.transaction():
            await _check_staff(conn, members)
            queue_id = await db.insert_queue(conn, **values)
            await db.set_members(conn, queue_id, members)
            await audit.record(conn, actor, CREATED, "queue", queue_id,
                               {"name": values["name"], "members": [uid for uid, _ in members]})
            queue = await db.get_queue(conn, queue_id)
    except asyncpg.UniqueViolationError:
        raise Conflict("a queue with this name exists", field="name") from None
    assert queue is not None
    await _after_change(svc, queue, added=[uid for uid, _ in members])
    return queue


async def do_update(svc: Services, actor: audit.Actor, queue_id: int, values: dict[str, str],
                    members: list[tuple[int, int | None]] | None) -> db.Queue:
    if "name" in values:
        values["name"] = check_name(values["name"])
    if "color" in values:
        values["color"] = check_color(values["color"])
    members = _members(members)
    try:
        async with svc.pool.acquire() as conn, conn.transaction():
            before = await db.get_queue(conn, queue_id, for_update=True)
            if before is None:
                raise NotFound("queue not found")
            meta: dict[str, Any] = {"changed": sorted(values)}
            await db.update_queue(conn, queue_id, **values)  # updated_at moves even for members only
            if members is not None:
                await _check_staff(conn, members)
                await db.set_members(conn, queue_id, members)
                meta["members"] = {"from": [m.user_id for m in before.members], "to": [uid for uid, _ in members]}
            await audit.record(conn, actor, UPDATED, "queue", queue_id, meta)
            queue = await db.get_queue(conn, queue_id)
    except asyncpg.UniqueViolationError:
        raise Conflict("a queue with this name exists", field="name") from None
    assert queue is not None
    old = {m.user_id for m in before.members}
    new = {m.user_id for m in queue.members}
    await _after_change(svc, queue, added=sorted(new - old), removed=sorted(old - new))
    if members is not None:
        await conversations.assign_waiting(svc, [queue_id])  # new members or capacities may take some
    return queue


async def do_delete(svc: Services, actor: audit.Actor, queue_id: int) -> None:
    """Delete a queue: its conversations fall back to no queue (seen by every staff member)."""
    async with svc.pool.acquire() as conn, conn.transaction():
        queue = await db.get_queue(conn, queue_id, for_update=True)
        if queue is None:
            raise NotFound("queue not found")
        await db.delete_queue(conn, queue_id)
        await audit.record(conn, actor, DELETED, "queue", queue_id, {"name": queue.name})
    channel = conversations.queue_channel(queue_id)
    await emit(svc, "queue:deleted", {"id": queue_id}, to=[conversations.DESK_CHANNEL, channel])
    for m in queue.members:
        await leave_channel(svc, m.user_id, channel)


async def _after_change(svc: Services, queue: db.Queue, added: list[int] | None = None,
                        removed: list[int] | None = None) -> None:
    """Members' sockets (every node) join or leave the queue's channel; the queue goes to the desk
    managers and its members (``queue:updated``); a removed member is told too."""
    channel = conversations.queue_channel(queue.id)
    for uid in added or []:
        await enter_channel(svc, uid, channel)
    await emit(svc, "queue:updated", queue.to_wire(),
               to=[conversations.DESK_CHANNEL, channel] + [user_channel(uid) for uid in removed or []])
    for uid in removed or []:
        await leave_channel(svc, uid, channel)


async def do_list(svc: Services, user: udb.User, *, every: bool = False) -> list[db.Queue]:
    """The caller's queues (supervisors and admins: all). ``every``: all queues for anyone on the
    desk, as transfer targets; a staff member sees the members of their own queues only (who works
    in another department is the managers' business)."""
    if conversations.sees_everything(user):
        return await db.list_queues(svc.pool)
    if not every:
        return await db.list_queues(svc.pool, user.id)
    return [q if any(m.user_id == user.id for m in q.members) else replace(q, members=())
            for q in await db.list_queues(svc.pool)]


async def do_get(svc: Services, user: udb.User, queue_id: int) -> db.Queue:
    queue = await db.get_queue(svc.pool, queue_id)
    if queue is None or not (conversations.sees_everything(user) or any(m.user_id == user.id for m in queue.members)):
        raise NotFound("queue not found")
    return queue


# --- routing rules -----------------------------------------------------------------------------------

async def do_set_routing(svc: Services, actor: audit.Actor, account_id: int, routing: str,
                         default_queue_id: int | None) -> dict[str, Any]:
    if routing not in ROUTINGS:
        raise Invalid(f"routing must be one of {', '.join(ROUTINGS)}", field="routing")
    async with svc.pool.acquire() as conn, conn.transaction():
        before = await db.get_routing(conn, account_id)
        if before is None:
            raise NotFound("account not found")
        if default_queue_id is not None and await db.get_queue(conn, default_queue_id) is None:
            raise NotFound("queue not found", field="default_queue_id")
        await db.set_routing(conn, account_id, routing, default_queue_id)
        await audit.record(conn, actor, ROUTING_SET, "wa_account", account_id,
                           {"from": {"routing": before[0], "default_queue_id": before[1]},
                            "to": {"routing": routing, "default_queue_id": default_queue_id}})
    return {"account_id": account_id, "routing": routing, "default_queue_id": default_queue_id}


async def do_get_routing(svc: Services, account_id: int) -> dict[str, Any]:
    found = await db.get_routing(svc.pool, account_id)
    if found is None:
        raise NotFound("account not found")
    return {"account_id": account_id, "routing": found[0], "default_queue_id": found[1]}


# --- routing of inbound messages ---------------------------------------------------------------------

def menu_text(queues: list[db.Queue], invalid: bool = False) -> str:
    lines = [INVALID_ANSWER] if invalid else []
    lines.append(MENU_HEADER)
    lines += [f"{i}. {q.name}" for i, q in enumerate(queues, start=1)]
    return "\n".join(lines)


def triage(text: str, queues: list[db.Queue]) -> db.Queue | None:
    """The queue whose name or description shares the most words (3+ letters, any case) with
    ``text``; ties: the first by name. ``None`` when no word matches."""
    words = {w.casefold() for w in _WORD.findall(text)}
    best, score = None, 0
    for q in queues:
        keys = {w.casefold() for w in _WORD.findall(f"{q.name} {q.description}")}
        hits = sum(1 for k in keys if any(w.startswith(k) or k.startswith(w) for w in words))
        if hits > score:
            best, score = q, hits
    return best


async def route_inbound(svc: Services, contact: wdb.Contact, msg: MessageRecord, fresh: bool) -> bool:
    """Apply the number's routing rule to an inbound message of a conversation; ``fresh``: the
    first message of a new or reopened conversation. Returns whether routing took the message
    (the assistant must not answer it). A linked-device session has no routing rule yet."""
    if contact.account_id is None:
        return False
    rule = await db.get_routing(svc.pool, contact.account_id)
    if rule is None or (rule[0] == "none" and contact.routing_state == "routed"):
        return False
    routing, default_id = rule
    queues = await db.list_queues(svc.pool)
    default = next((q for q in queues if q.id == default_id), None)
    if fresh and routing == "menu" and queues:
        await _set_state(svc, contact, "menu")
        await _tell(svc, contact, menu_text(queues), "menu")
        return True
    if fresh and routing == "default":
        await _route(svc, contact, default, "default", announce=False)
        return True
    if fresh and routing == "ai":
        name = await svc.assistant.pick([q.name for q in queues], msg.body) if svc.assistant else None
        by_model = next((q for q in queues if q.name == name), None)
        picked = by_model or triage(msg.body, queues) or default or (queues[0] if queues else None)
        await _route(svc, contact, picked, "ai", announce=True, how="model" if by_model else "keywords")
        return True
    if contact.routing_state in ("menu", "menu_again"):
        answer = msg.body.strip()
        if answer.isdigit() and 1 <= int(answer) <= len(queues):
            await _route(svc, contact, queues[int(answer) - 1], "menu", announce=True)
        elif contact.routing_state == "menu" and queues:
            await _set_state(svc, contact, "menu_again")
            await _tell(svc, contact, menu_text(queues, invalid=True), "menu")
        else:
            await _route(svc, contact, default, "menu", announce=True)
        return True
    return False


async def _set_state(svc: Services, contact: wdb.Contact, state: str) -> None:
    async with svc.pool.acquire() as conn, conn.transaction():
        await wdb.update_contact(conn, contact.id, routing_state=state, ai_enabled=False, queue_id=None,
                                 assignee_id=None)
    await conversations.publish(svc, contact.room_id)


async def _route(svc: Services, contact: wdb.Contact, queue: db.Queue | None, via: str, *, announce: bool,
                 how: str | None = None) -> None:
    """Put the conversation in ``queue`` (or in none), write the ``routed`` event, then tell the
    contact (``announce``: which queue; then the queue's greeting, if it has one) and assign it."""
    fields: dict[str, Any] = {"routing_state": "routed", "queue_id": None if queue is None else queue.id,
                              "assignee_id": None, "away_sent": False, "queued_at": datetime.now(UTC)}
    if queue is not None:
        fields["ai_enabled"] = False
    async with svc.pool.acquire() as conn, conn.transaction():
        locked = await wdb.contact_by_room(conn, contact.room_id, for_update=True)
        await wdb.update_contact(conn, contact.id, **fields)
        event_id = await db.insert_event(conn, contact.room_id, "routed", None,
                                         queue_id=None if queue is None else queue.id,
                                         meta={"via": via} | ({"triage": how} if how else {}))
    was = (locked.queue_id, locked.assignee_id) if locked is not None else None
    await conversations.after_change(svc, contact.room_id, [event_id], was=was)
    if queue is not None:
        text = "\n".join(t for t in (ROUTED_TO.format(name=queue.name) if announce else "", queue.greeting.strip()) if t)
        if text:
            await _tell(svc, contact, text, "routed")
    if queue is not None:
        await conversations.assign_waiting(svc, [queue.id])


async def _tell(svc: Services, contact: wdb.Contact, text: str, kind: str) -> None:
    if svc.whatsapp is not None:
        await svc.whatsapp.send_notice(contact.room_id, text, {"desk": kind})
