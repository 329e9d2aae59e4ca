"""Private notes in WhatsApp conversations (staff only): add one, list them.

Routes join ``http.routes`` on import (``server/app.py`` imports this module).
"""

from __future__ import annotations

from pydantic import Field

from chatcore.api import Body, Call, Id, IdPath, Link, QueryParams, Reply
from chatcore.protocol import NoteView
from chatcore.schemas import Wire

from ..actions import notes as actions
from .http import actor_of, routes, svc_of, user_of


class NoteBody(Body):
    body: str = Field(min_length=1, max_length=actions.NOTE_MAX_CHARS, pattern=r"^[^\x00]*\S[^\x00]*$",
                      description="stored trimmed; staff only, never sent to the contact")


class NotesQuery(QueryParams):
    before_id: Id | None = Field(default=None, description="notes older than this note id")
    limit: int = Field(default=100, ge=1, le=actions.NOTES_PAGE_MAX)


class NoteEnvelope(Wire):
    note: NoteView


class NotesPage(Wire):
    notes: list[NoteView] = Field(description="oldest first")


@routes.post("/api/v1/wa/conversations/{id}/notes", "Add a private note to a WhatsApp conversation (staff only)",
             auth="staff", body=NoteBody, responses={201: NoteEnvelope},
             links={201: {"Notes": Link("list_notes", id="$response.body#/note/room_id")}},
             description="A note is seen by staff only (live as note:added) and is never a message: it never "
                         "reaches the contact, the assistant or the archive. Audited.")
async def add_note(call: Call[NoteBody, None, IdPath]) -> Reply:
    note = await actions.do_add_note(svc_of(call.request), actor_of(call), call.path.id, call.body.body)
    return Reply({"note": note.to_wire()}, 201)


@routes.get("/api/v1/wa/conversations/{id}/notes", "A WhatsApp conversation's private notes (staff only)",
            auth="staff", query=NotesQuery, responses={200: NotesPage})
async def list_notes(call: Call[None, NotesQuery, IdPath]) -> Reply:
    notes = await actions.do_list_notes(svc_of(call.request), user_of(call), call.path.id, call.query.before_id,
                                        call.query.limit)
    return Reply({"notes": [n.to_wire() for n in notes]})
