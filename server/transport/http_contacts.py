"""Contacts (staff): search them, read and edit one, list its conversations, label it.

Routes join ``http.routes`` on import (``server/app.py`` imports this module).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from chatcore.api import Body, Call, Id, IdPath, Link, PathParams, QueryParams, Reply
from chatcore.protocol import ContactView, ConversationView
from chatcore.schemas import Wire

from ..actions import contacts as actions
from ..actions import labels as label_actions
from ..actions.conversations import conversation_view
from .http import NO_NUL, actor_of, checked, routes, svc_of

AttributeKey = Annotated[str, Field(pattern=actions.ATTRIBUTE_KEY_PATTERN)]
AttributeValue = Annotated[str, Field(max_length=actions.ATTRIBUTE_VALUE_MAX, pattern=NO_NUL)] | int | float | bool | None


class ContactsQuery(QueryParams):
    q: str = Field(default="", max_length=200, pattern=NO_NUL, description="part of a name, email or number")
    label: Id | None = Field(default=None, description="only contacts with this label (an unknown one is 404)")
    cursor: Id | None = Field(default=None, description="the previous page's next_cursor")
    limit: int = Field(default=50, ge=1, le=actions.PAGE_MAX)


class ContactPatch(Body):
    name: Annotated[str, Field(min_length=1, max_length=actions.NAME_MAX, pattern=r"^[^\x00]*\S[^\x00]*$",
                               description="stored trimmed; from now on kept over WhatsApp profile names"),
                    checked(actions.check_name)] | None = None
    email: Annotated[str, Field(max_length=actions.EMAIL_MAX, pattern=r"^$|" + actions.EMAIL_PATTERN,
                                description="'' removes it"), checked(actions.check_email)] | None = None
    notes: str | None = Field(default=None, max_length=actions.NOTES_MAX, pattern=NO_NUL)
    attributes: Annotated[dict[AttributeKey, AttributeValue],
                          Field(max_length=actions.ATTRIBUTES_MAX_KEYS,
                                description=f"replaces the whole object; at most {actions.ATTRIBUTES_MAX_BYTES} "
                                            "bytes as JSON (too_large past it)",
                                json_schema_extra={"additionalProperties": False,
                                                   "propertyNames": {"pattern": actions.ATTRIBUTE_KEY_PATTERN}}),
                          checked(actions.check_attributes)] | None = None


class ContactsQueryPage(QueryParams):
    limit: int = Field(default=50, ge=1, le=actions.PAGE_MAX)


class ContactLabelPath(PathParams):
    id: Id = Field(description="the contact's id")
    label_id: Id


class ContactEnvelope(Wire):
    contact: ContactView


class ContactsPage(Wire):
    contacts: list[ContactView] = Field(description="newest first")
    next_cursor: int | None


class ContactConversations(Wire):
    conversations: list[ConversationView] = Field(description="on every business number, most recently active first")


LINKS = {"Update": Link("update_contact", id="$response.body#/contact/id"),
         "Conversations": Link("contact_conversations", id="$response.body#/contact/id")}


@routes.get("/api/v1/contacts", "Search contacts by name, email or number", auth="staff", query=ContactsQuery,
            responses={200: ContactsPage})
async def list_contacts(call: Call[None, ContactsQuery, None]) -> Reply:
    q = call.query
    contacts, cursor = await actions.do_list(svc_of(call.request), q.q, q.label, q.cursor, q.limit)
    return Reply({"contacts": contacts, "next_cursor": cursor})


@routes.get("/api/v1/contacts/{id}", "One contact", auth="staff", responses={200: ContactEnvelope},
            links={200: LINKS})
async def get_contact(call: Call[None, None, IdPath]) -> Reply:
    return Reply({"contact": await actions.do_get(svc_of(call.request), call.path.id)})


@routes.patch("/api/v1/contacts/{id}", "Edit a contact's name, email, notes or attributes", auth="staff",
              body=ContactPatch, responses={200: ContactEnvelope},
              description="Only the fields given change. Audited (contact.update); staff get contact:updated.")
async def update_contact(call: Call[ContactPatch, None, IdPath]) -> Reply:
    fields = {f: getattr(call.body, f) for f in call.body.model_fields_set if getattr(call.body, f) is not None}
    contact = await actions.do_update(svc_of(call.request), actor_of(call), call.path.id, fields)
    return Reply({"contact": contact})


@routes.get("/api/v1/contacts/{id}/conversations", "A contact's WhatsApp conversations, newest first",
            auth="staff", query=ContactsQueryPage, responses={200: ContactConversations})
async def contact_conversations(call: Call[None, ContactsQueryPage, IdPath]) -> Reply:
    rows = await actions.do_conversations(svc_of(call.request), call.path.id, call.query.limit)
    return Reply({"conversations": [conversation_view(r) for r in rows]})


@routes.put("/api/v1/contacts/{id}/labels/{label_id}", "Put a label on a contact (idempotent)", auth="staff",
            params=ContactLabelPath, responses={200: ContactEnvelope},
            description="An unknown label or contact is 404. Audited when it changes something.")
async def label_contact(call: Call[None, None, ContactLabelPath]) -> Reply:
    contact = await label_actions.do_label_contact(svc_of(call.request), actor_of(call), call.path.id,
                                                   call.path.label_id, True)
    return Reply({"contact": contact})


@routes.delete("/api/v1/contacts/{id}/labels/{label_id}", "Take a label off a contact (idempotent)",
               auth="staff", params=ContactLabelPath, responses={200: ContactEnvelope})
async def unlabel_contact(call: Call[None, None, ContactLabelPath]) -> Reply:
    contact = await label_actions.do_label_contact(svc_of(call.request), actor_of(call), call.path.id,
                                                   call.path.label_id, False)
    return Reply({"contact": contact})
