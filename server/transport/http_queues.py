"""Queues (departments) and the routing rule of each WhatsApp number.

Queues: everyone on the desk reads (supervisors and admins all of them, staff their own);
admins create, change and delete them. Routing rules: admins. Routes join ``http.routes`` on
import (``server/app.py`` imports this module).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from chatcore.api import Body, Call, Id, IdPath, Link, QueryParams, Reply
from chatcore.protocol import QueueView
from chatcore.schemas import Wire

from ..actions import queues as actions
from .http import actor_of, checked, routes, svc_of, user_of

QueueName = Annotated[str, Field(min_length=1, max_length=actions.NAME_MAX, pattern=r"^[^\x00]*\S[^\x00]*$",
                                 description="unique; stored trimmed"), checked(actions.check_name)]
Color = Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$", description="#rrggbb"), checked(actions.check_color)]
Text = Annotated[str, Field(max_length=actions.TEXT_MAX, pattern=r"^[^\x00]*$")]
Description = Annotated[str, Field(max_length=actions.DESCRIPTION_MAX, pattern=r"^[^\x00]*$",
                                   description="words in it also steer the assistant's triage")]


class MemberBody(Body):
    user_id: Id = Field(description="an active staff member (staff, supervisor or admin)")
    capacity: int | None = Field(default=None, ge=1, le=1000,
                                 description="open conversations auto-assigned at most; null: DESK_AGENT_CAPACITY")


Members = Annotated[list[MemberBody], Field(max_length=actions.MEMBERS_MAX,
                                           description="an agent listed twice counts once (the last entry)")]


class QueueCreate(Body):
    name: QueueName
    color: Color = "#3b82f6"
    description: Description = ""
    greeting: Text = Field(default="", description="sent to the contact when a conversation is routed here")
    away_message: Text = Field(default="", description="sent once while a conversation waits with nobody available")
    members: Members = []


class QueuePatch(Body):
    name: QueueName | None = None
    color: Color | None = None
    description: Description | None = None
    greeting: Text | None = None
    away_message: Text | None = None
    members: Members | None = Field(default=None, description="replaces the member list")


class QueuesQuery(QueryParams):
    scope: Literal["mine", "all"] = Field(
        default="mine", description="mine: staff get their own queues; all: every queue, so staff can transfer a "
                                    "conversation to any of them (members listed only for the caller's own queues)")


class QueueEnvelope(Wire):
    queue: QueueView


class QueueList(Wire):
    queues: list[QueueView] = Field(description="by name")


class RoutingBody(Body):
    routing: Literal["none", "menu", "ai", "default"] = Field(
        description="none: no queues; menu: numbered greeting menu; ai: the assistant's triage; "
                    "default: every conversation to default_queue_id")
    default_queue_id: Id | None = Field(default=None, description="the queue of default routing (unset: conversations "
                                                                  "stay in no queue); the fallback of menu and ai")


class Routing(Wire):
    account_id: int
    routing: Literal["none", "menu", "ai", "default"]
    default_queue_id: int | None


LINKS = {"GetQueue": Link("get_queue", id="$response.body#/queue/id"),
         "UpdateQueue": Link("update_queue", id="$response.body#/queue/id"),
         "DeleteQueue": Link("delete_queue", id="$response.body#/queue/id")}


def _members(members: list[MemberBody] | None) -> list[tuple[int, int | None]] | None:
    return None if members is None else [(m.user_id, m.capacity) for m in members]


@routes.get("/api/v1/queues", "Queues: all of them for supervisors and admins, one's own for staff "
            "(scope=all: every queue, as transfer targets)", auth="staff", query=QueuesQuery, responses={200: QueueList})
async def list_queues(call: Call[None, QueuesQuery, None]) -> Reply:
    queues = await actions.do_list(svc_of(call.request), user_of(call), every=call.query.scope == "all")
    return Reply({"queues": [q.to_wire() for q in queues]})


@routes.post("/api/v1/queues", "Create a queue (department)", auth="admin", body=QueueCreate,
             responses={201: QueueEnvelope}, links={201: LINKS},
             description="A name taken answers 409; a member who is not an active staff user 404. Audited.")
async def create_queue(call: Call[QueueCreate, None, None]) -> Reply:
    b = call.body
    values: dict[str, Any] = {"name": b.name, "color": b.color, "description": b.description.strip(),
                              "greeting": b.greeting.strip(), "away_message": b.away_message.strip()}
    queue = await actions.do_create(svc_of(call.request), actor_of(call), values, _members(b.members) or [])
    return Reply({"queue": queue.to_wire()}, 201)


@routes.get("/api/v1/queues/{id}", "One queue (staff: only a queue of theirs)", auth="staff",
            responses={200: QueueEnvelope})
async def get_queue(call: Call[None, None, IdPath]) -> Reply:
    return Reply({"queue": (await actions.do_get(svc_of(call.request), user_of(call), call.path.id)).to_wire()})


@routes.patch("/api/v1/queues/{id}", "Change a queue; members, when given, replace the list", auth="admin",
              body=QueuePatch, responses={200: QueueEnvelope}, description="Audited.")
async def update_queue(call: Call[QueuePatch, None, IdPath]) -> Reply:
    b = call.body
    values = {k: (v.strip() if k != "color" else v) for k in ("name", "color", "description", "greeting", "away_message")
              if (v := getattr(b, k)) is not None}
    queue = await actions.do_update(svc_of(call.request), actor_of(call), call.path.id, values, _members(b.members))
    return Reply({"queue": queue.to_wire()})


@routes.delete("/api/v1/queues/{id}", "Delete a queue; its conversations are left in no queue", auth="admin",
               responses={204: None}, description="Audited.")
async def delete_queue(call: Call[None, None, IdPath]) -> Reply:
    await actions.do_delete(svc_of(call.request), actor_of(call), call.path.id)
    return Reply(None, 204)


@routes.get("/api/v1/admin/wa/accounts/{id}/routing", "A WhatsApp number's routing rule", auth="admin",
            responses={200: Routing})
async def get_routing(call: Call[None, None, IdPath]) -> Reply:
    return Reply(await actions.do_get_routing(svc_of(call.request), call.path.id))


@routes.put("/api/v1/admin/wa/accounts/{id}/routing", "Set a WhatsApp number's routing rule", auth="admin",
            body=RoutingBody, responses={200: Routing},
            description="An unknown number or default queue answers 404. Applies to conversations that are new or "
                        "reopened from then on. Audited.")
async def set_routing(call: Call[RoutingBody, None, IdPath]) -> Reply:
    return Reply(await actions.do_set_routing(svc_of(call.request), actor_of(call), call.path.id,
                                              call.body.routing, call.body.default_queue_id))
