"""A WhatsApp conversation's transfer and timeline (staff): the desk's additions to the inbox
routes of ``http_whatsapp.py``. Routes join ``http.routes`` on import (``server/app.py``)."""

from __future__ import annotations

from pydantic import Field

from chatcore.api import Body, Call, Id, IdPath, QueryParams, Reply
from chatcore.protocol import ConversationEventView
from chatcore.schemas import Wire

from ..actions import conversations as actions
from .http import actor_of, routes, svc_of, user_of
from .http_whatsapp import ConversationEnvelope


class TransferBody(Body):
    queue_id: Id | None = Field(default=None, description="the queue to move it to (unknown: 404)")
    user_id: Id | None = Field(default=None, description="the agent to give it to; without it the queue "
                                                         "auto-assigns (an agent outside the queue: 400)")
    note: str = Field(default="", max_length=actions.NOTE_MAX_CHARS, pattern=r"^[^\x00]*$",
                      description="shown to staff in the timeline, never to the contact")


class EventsQuery(QueryParams):
    before_id: Id | None = Field(default=None, description="events older than this event id")
    limit: int = Field(default=100, ge=1, le=actions.EVENTS_PAGE_MAX)


class EventsPage(Wire):
    events: list[ConversationEventView] = Field(description="oldest first")


@routes.post("/api/v1/wa/conversations/{id}/transfer", "Transfer the conversation to another queue, agent or both",
             auth="staff", body=TransferBody, responses={200: ConversationEnvelope},
             description="Needs queue_id, user_id or both. Writes one timeline event (transferred, with the note), "
                         "tells the agent who had it and the one who gets it (conversation:handover). Nothing is "
                         "changed when the queue or agent is refused. Audited.")
async def conversation_transfer(call: Call[TransferBody, None, IdPath]) -> Reply:
    b = call.body
    view = await actions.do_transition(svc_of(call.request), call.path.id, "transfer", actor_of(call),
                                       user_id=b.user_id, queue_id=b.queue_id, note=b.note)
    return Reply({"conversation": view})


@routes.get("/api/v1/wa/conversations/{id}/events", "A conversation's timeline of system events (staff only)",
            auth="staff", query=EventsQuery, responses={200: EventsPage},
            description="opened, reopened, routed, assigned, taken_over, handed_back, transferred, first_response, "
                        "closed: who, when, which queue. Never sent to the contact.")
async def list_conversation_events(call: Call[None, EventsQuery, IdPath]) -> Reply:
    events = await actions.do_list_events(svc_of(call.request), user_of(call), call.path.id, call.query.before_id,
                                          call.query.limit)
    return Reply({"events": events})
