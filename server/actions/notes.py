"""Private notes: what staff write to each other inside a WhatsApp conversation.

A note is not a message. It lives in its own table (``notes``), so nothing that reads messages
can pick it up: not the outbox that sends to the contact, not the assistant's context (read
from ``messages``), not history, sync or search, not the archive relay. Staff see notes live
through ``note:added``, sent to the same audience as ``conversation:updated`` (the staff who
see the conversation: ``actions/conversations.py``); staff outside its queues can neither read
nor add notes (``403 forbidden``, ``outside_queues``).

Order of an add: check the body -> lock the conversation row -> insert the note and its audit
row (one transaction) -> commit -> emit ``note:added``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatcore.errors import Invalid, NotFound

from ..storage import notes as db
from ..storage import whatsapp as wdb
from . import audit
from .conversations import access_conversation, audience, check_visible
from .notify import emit

if TYPE_CHECKING:
    from ..context import Services
    from ..storage import users as udb

NOTE_MAX_CHARS = 4000
NOTES_PAGE_MAX = 200
ADDED = "note.add"


def check_note_body(body: str) -> str:
    text = body.strip()
    if not text:
        raise Invalid("a note needs some text", field="body")
    if len(text) > NOTE_MAX_CHARS or "\x00" in text:
        raise Invalid(f"a note is at most {NOTE_MAX_CHARS} characters, without NUL", field="body")
    return text


async def do_add_note(svc: Services, actor: audit.Actor, room_id: int, body: str) -> db.Note:
    text = check_note_body(body)
    async with svc.pool.acquire() as conn, conn.transaction():
        contact = await wdb.contact_by_room(conn, room_id)
        if contact is None:
            raise NotFound("conversation not found")
        await check_visible(conn, actor.user, room_id)
        note = await db.insert_note(conn, room_id, actor.user.id, text)
        await audit.record(conn, actor, ADDED, "conversation", room_id, {"note_id": note.id})
    await emit(svc, "note:added", note.to_wire(), to=audience(room_id, contact.queue_id, contact.assignee_id))
    return note


async def do_list_notes(svc: Services, user: udb.User, room_id: int, before_id: int | None,
                        limit: int) -> list[db.Note]:
    await access_conversation(svc, user, room_id)
    return await db.list_notes(svc.pool, room_id, before_id, min(limit, NOTES_PAGE_MAX))
