"""Labels: coloured tags on WhatsApp conversations and contacts.

Supervisors and admins create, change and delete labels (a name unique regardless of case, a
colour ``#rrggbb`` stored lowercase); staff put them on and take them off conversations and
contacts. Putting on a label already there, or taking off one that is not, changes nothing:
it answers as the thing is, writes no audit row and sends no event (the routes are PUT and
DELETE, idempotent).

Every change writes one audit row in its transaction (``label.create``, ``.update``,
``.delete``; ``conversation.label``, ``.unlabel``; ``contact.label``, ``.unlabel``), and after the
commit staff sockets get ``label:updated`` / ``label:deleted``, ``conversation:updated`` for a
conversation whose labels changed, ``contact:updated`` for a contact's.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import asyncpg

from chatcore.errors import Conflict, Forbidden, Invalid, NotFound
from chatcore.types import DESK_MANAGER_ROLES

from ..storage import contacts as cdb
from ..storage import labels as db
from ..storage import whatsapp as wdb
from . import audit
from . import contacts as contact_actions
from .conversations import check_visible, conversation_view
from .notify import STAFF_CHANNEL, emit

if TYPE_CHECKING:
    from ..context import Services

NAME_MAX = 40
NAME_PATTERN = r"^[^\x00]*\S[^\x00]*$"
COLOR_PATTERN = r"^#[0-9A-Fa-f]{6}$"
CREATED, UPDATED, DELETED = "label.create", "label.update", "label.delete"

_COLOR = re.compile(COLOR_PATTERN)


def check_name(value: Any) -> Any:
    if isinstance(value, str) and (not value.strip() or len(value.strip()) > NAME_MAX or "\x00" in value):
        raise Invalid(f"a label's name is 1-{NAME_MAX} characters (not only spaces, no NUL)", field="name")
    return value


def check_color(value: Any) -> Any:
    if isinstance(value, str) and not _COLOR.match(value):
        raise Invalid("color must be #rrggbb (six hex digits), e.g. #1f883d", field="color")
    return value


def _may_manage(actor: audit.Actor) -> None:
    if actor.user.role not in DESK_MANAGER_ROLES:
        raise Forbidden("only supervisors and admins manage labels")


async def do_list(svc: Services) -> list[db.Label]:
    return await db.all_labels(svc.pool)


async def do_create(svc: Services, actor: audit.Actor, name: str, color: str) -> db.Label:
    _may_manage(actor)
    check_name(name)
    check_color(color)
    try:
        async with svc.pool.acquire() as conn, conn.transaction():
            label = await db.insert(conn, name.strip(), color.lower())
            await audit.record(conn, actor, CREATED, "label", label.id, {"name": label.name, "color": label.color})
    except asyncpg.UniqueViolationError:
        raise Conflict(f"there is already a label named {name.strip()!r}", field="name") from None
    await emit(svc, "label:updated", label.to_wire(), to=STAFF_CHANNEL)
    return label


async def do_update(svc: Services, actor: audit.Actor, label_id: int, name: str | None, color: str | None) -> db.Label:
    _may_manage(actor)
    check_name(name)
    check_color(color)
    try:
        async with svc.pool.acquire() as conn, conn.transaction():
            before = await db.get(conn, label_id, for_update=True)
            if before is None:
                raise NotFound("label not found")
            new_name = name.strip() if name is not None else before.name
            new_color = color.lower() if color is not None else before.color
            changed = [f for f, v in (("name", new_name), ("color", new_color)) if getattr(before, f) != v]
            if not changed:
                return before
            label = await db.update(conn, label_id, new_name, new_color)
            await audit.record(conn, actor, UPDATED, "label", label_id,
                               {"name": label.name, "color": label.color, "changed": changed})
    except asyncpg.UniqueViolationError:
        raise Conflict(f"there is already a label named {name!r}", field="name") from None
    await emit(svc, "label:updated", label.to_wire(), to=STAFF_CHANNEL)
    return label


async def do_delete(svc: Services, actor: audit.Actor, label_id: int) -> None:
    _may_manage(actor)
    async with svc.pool.acquire() as conn, conn.transaction():
        label = await db.get(conn, label_id, for_update=True)
        if label is None:
            raise NotFound("label not found")
        await db.delete(conn, label_id)
        await audit.record(conn, actor, DELETED, "label", label_id, {"name": label.name, "color": label.color})
    # clients drop the label from every conversation and contact they show
    await emit(svc, "label:deleted", {"id": label_id}, to=STAFF_CHANNEL)


async def _label_for(conn: asyncpg.Connection, label_id: int) -> db.Label:
    label = await db.get(conn, label_id, for_update=True)  # a concurrent delete waits for this change
    if label is None:
        raise NotFound("label not found")
    return label


async def do_label_conversation(svc: Services, actor: audit.Actor, room_id: int, label_id: int,
                                on: bool) -> dict[str, Any]:
    """Put the label on (``on``) or take it off the conversation; its view as it is now."""
    async with svc.pool.acquire() as conn, conn.transaction():
        if await wdb.contact_by_room(conn, room_id, for_update=True) is None:
            raise NotFound("conversation not found")
        await check_visible(conn, actor.user, room_id)  # the desk's rule: not outside the staff's queues
        label = await _label_for(conn, label_id)
        if on:
            changed = await db.put_on_conversation(conn, room_id, label_id, actor.user.id)
        else:
            changed = await db.take_off_conversation(conn, room_id, label_id)
        if changed:
            await audit.record(conn, actor, "conversation.label" if on else "conversation.unlabel", "conversation",
                               room_id, {"label_id": label_id, "label": label.name})
    if changed and svc.whatsapp is not None:
        return await svc.whatsapp.publish(room_id)
    row = await wdb.conversation_row(svc.pool, room_id)
    if row is None:
        raise NotFound("conversation not found")
    return conversation_view(row)


async def do_label_contact(svc: Services, actor: audit.Actor, contact_id: int, label_id: int,
                           on: bool) -> dict[str, Any]:
    async with svc.pool.acquire() as conn, conn.transaction():
        if await cdb.get(conn, contact_id, for_update=True) is None:
            raise NotFound("contact not found")
        label = await _label_for(conn, label_id)
        if on:
            changed = await db.put_on_contact(conn, contact_id, label_id, actor.user.id)
        else:
            changed = await db.take_off_contact(conn, contact_id, label_id)
        if changed:
            await cdb.touch(conn, contact_id)
            await audit.record(conn, actor, "contact.label" if on else "contact.unlabel", "contact", contact_id,
                               {"label_id": label_id, "label": label.name})
    if changed:
        return await contact_actions.publish(svc, contact_id)
    return await contact_actions.do_get(svc, contact_id)
