"""Canned replies (staff): list by shortcut prefix, create, change, delete, render for a conversation.

Routes join ``http.routes`` on import (``server/app.py`` imports this module).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from chatcore.api import Body, Call, Id, IdPath, Link, QueryParams, Reply
from chatcore.schemas import Wire

from ..actions import canned_replies as actions
from .http import actor_of, checked, routes, svc_of

Shortcut = Annotated[str, Field(min_length=1, max_length=actions.SHORTCUT_MAX + 1,
                                pattern=rf"^/?[a-z0-9][a-z0-9_-]{{0,{actions.SHORTCUT_MAX - 1}}}$",
                                description="what follows '/' in the composer; a leading '/' is dropped"),
                     checked(actions.check_shortcut)]
CannedBody = Annotated[str, Field(min_length=1, max_length=actions.BODY_MAX_CHARS, pattern=actions.BODY_PATTERN,
                                  description="variables: " + ", ".join("{{" + v + "}}" for v in actions.VARIABLES)
                                              + "; any other is refused (invalid, details.variable)"),
                       checked(actions.check_body)]


class CannedQuery(QueryParams):
    q: str = Field(default="", max_length=actions.SHORTCUT_MAX + 1, pattern=r"^/?[a-z0-9_-]*$",
                   description="a shortcut prefix ('/' optional)")
    limit: int = Field(default=50, ge=1, le=actions.LIST_MAX)


class CannedCreate(Body):
    scope: Literal["shared", "personal"] = Field(default="personal",
                                                 description="shared: supervisors and admins only")
    shortcut: Shortcut
    body: CannedBody


class CannedPatch(Body):
    shortcut: Shortcut | None = None
    body: CannedBody | None = None


class RenderBody(Body):
    conversation_id: Id = Field(description="the WhatsApp conversation's room id")


class CannedReplyView(Wire):
    id: int
    scope: Literal["shared", "personal"]
    shortcut: str
    body: str
    created_at: str
    updated_at: str


class CannedEnvelope(Wire):
    canned_reply: CannedReplyView


class CannedList(Wire):
    canned_replies: list[CannedReplyView] = Field(description="by shortcut; a personal one before a shared one")


class Rendered(Wire):
    text: str


LINKS = {"Update": Link("update_canned_reply", id="$response.body#/canned_reply/id"),
         "Delete": Link("delete_canned_reply", id="$response.body#/canned_reply/id")}


@routes.get("/api/v1/canned-replies", "The shared canned replies and the caller's own, by shortcut prefix",
            auth="staff", query=CannedQuery, responses={200: CannedList})
async def list_canned_replies(call: Call[None, CannedQuery, None]) -> Reply:
    replies = await actions.do_list(svc_of(call.request), actor_of(call), call.query.q, call.query.limit)
    return Reply({"canned_replies": [r.to_wire() for r in replies]})


@routes.post("/api/v1/canned-replies", "Save a canned reply (personal, or shared by supervisors and admins)",
             auth="staff", body=CannedCreate, responses={201: CannedEnvelope}, links={201: LINKS},
             description="A shortcut taken in the scope answers 409. Audited.")
async def create_canned_reply(call: Call[CannedCreate, None, None]) -> Reply:
    b = call.body
    reply = await actions.do_create(svc_of(call.request), actor_of(call), b.scope, b.shortcut, b.body)
    return Reply({"canned_reply": reply.to_wire()}, 201)


@routes.patch("/api/v1/canned-replies/{id}", "Change a canned reply's shortcut or body", auth="staff",
              body=CannedPatch, responses={200: CannedEnvelope},
              description="Shared replies: supervisors and admins. Someone else's personal reply is 404. Audited.")
async def update_canned_reply(call: Call[CannedPatch, None, IdPath]) -> Reply:
    reply = await actions.do_update(svc_of(call.request), actor_of(call), call.path.id, call.body.shortcut,
                                    call.body.body)
    return Reply({"canned_reply": reply.to_wire()})


@routes.delete("/api/v1/canned-replies/{id}", "Delete a canned reply", auth="staff", responses={204: None},
               description="Shared replies: supervisors and admins. Audited.")
async def delete_canned_reply(call: Call[None, None, IdPath]) -> Reply:
    await actions.do_delete(svc_of(call.request), actor_of(call), call.path.id)
    return Reply(None, 204)


@routes.post("/api/v1/canned-replies/{id}/render", "A canned reply's text for a conversation, variables filled in",
             auth="staff", body=RenderBody, responses={200: Rendered})
async def render_canned_reply(call: Call[RenderBody, None, IdPath]) -> Reply:
    text = await actions.do_render(svc_of(call.request), actor_of(call), call.path.id, call.body.conversation_id)
    return Reply({"text": text})
