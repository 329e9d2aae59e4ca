"""Labels: list them (staff), create, change and delete them (supervisors and admins), put them on
and take them off WhatsApp conversations (staff).

Routes join ``http.routes`` on import (``server/app.py`` imports this module).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from chatcore.api import Body, Call, Id, IdPath, Link, PathParams, Reply
from chatcore.protocol import ConversationView, LabelView
from chatcore.schemas import Wire

from ..actions import labels as actions
from .http import actor_of, checked, routes, svc_of

Name = Annotated[str, Field(min_length=1, max_length=actions.NAME_MAX, pattern=actions.NAME_PATTERN,
                            description="unique regardless of case; stored trimmed"), checked(actions.check_name)]
Color = Annotated[str, Field(pattern=actions.COLOR_PATTERN, description="#rrggbb; stored lowercase"),
                  checked(actions.check_color)]


class LabelCreate(Body):
    name: Name
    color: Color


class LabelPatch(Body):
    name: Name | None = None
    color: Color | None = None


class ConversationLabelPath(PathParams):
    id: Id = Field(description="the conversation's room id")
    label_id: Id


class LabelEnvelope(Wire):
    label: LabelView


class Labels(Wire):
    labels: list[LabelView] = Field(description="by name")


class ConversationEnvelope(Wire):
    conversation: ConversationView


LINKS = {"Update": Link("update_label", id="$response.body#/label/id"),
         "Delete": Link("delete_label", id="$response.body#/label/id")}


@routes.get("/api/v1/labels", "Every label", auth="staff", responses={200: Labels})
async def list_labels(call: Call[None, None, None]) -> Reply:
    return Reply({"labels": [label.to_wire() for label in await actions.do_list(svc_of(call.request))]})


@routes.post("/api/v1/labels", "Create a label", auth="supervisor", body=LabelCreate, responses={201: LabelEnvelope},
             links={201: LINKS}, description="A name taken answers 409. Audited; staff get label:updated.")
async def create_label(call: Call[LabelCreate, None, None]) -> Reply:
    label = await actions.do_create(svc_of(call.request), actor_of(call), call.body.name, call.body.color)
    return Reply({"label": label.to_wire()}, 201)


@routes.patch("/api/v1/labels/{id}", "Rename or recolour a label", auth="supervisor", body=LabelPatch,
              responses={200: LabelEnvelope}, description="Audited; staff get label:updated.")
async def update_label(call: Call[LabelPatch, None, IdPath]) -> Reply:
    label = await actions.do_update(svc_of(call.request), actor_of(call), call.path.id, call.body.name,
                                    call.body.color)
    return Reply({"label": label.to_wire()})


@routes.delete("/api/v1/labels/{id}", "Delete a label (it comes off every conversation and contact)",
               auth="supervisor", responses={204: None}, description="Audited; staff get label:deleted.")
async def delete_label(call: Call[None, None, IdPath]) -> Reply:
    await actions.do_delete(svc_of(call.request), actor_of(call), call.path.id)
    return Reply(None, 204)


@routes.put("/api/v1/wa/conversations/{id}/labels/{label_id}", "Put a label on a conversation (idempotent)",
            auth="staff", params=ConversationLabelPath, responses={200: ConversationEnvelope},
            description="An unknown label or conversation is 404. Audited when it changes something; staff get "
                        "conversation:updated.")
async def label_conversation(call: Call[None, None, ConversationLabelPath]) -> Reply:
    view = await actions.do_label_conversation(svc_of(call.request), actor_of(call), call.path.id,
                                               call.path.label_id, True)
    return Reply({"conversation": view})


@routes.delete("/api/v1/wa/conversations/{id}/labels/{label_id}", "Take a label off a conversation (idempotent)",
               auth="staff", params=ConversationLabelPath, responses={200: ConversationEnvelope})
async def unlabel_conversation(call: Call[None, None, ConversationLabelPath]) -> Reply:
    view = await actions.do_label_conversation(svc_of(call.request), actor_of(call), call.path.id,
                                               call.path.label_id, False)
    return Reply({"conversation": view})
