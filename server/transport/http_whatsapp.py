"""WhatsApp routes: the Cloud API webhook, the staff inbox, admin accounts, login by code.

Declared in the same table as ``http.py`` (``chatcore.api``). The webhook routes read their raw
body themselves: the signature is checked over its bytes before anything is parsed.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BeforeValidator, Field

from chatcore.api import Body, Call, Cursor, Id, IdPath, Link, PathParams, QueryParams, RawBody, Reply
from chatcore.errors import Unavailable
from chatcore.protocol import ConversationView
from chatcore.schemas import MessageRecordWire, Session, Wire

from ..actions import account, contacts
from ..actions import conversations as conv_actions
from ..actions.auth import issue_tokens
from ..actions.whatsapp import (
    OTP_TTL_S,
    STATUSES,
    WhatsAppService,
    check_phone,
    do_add_account,
    do_remove_account,
)
from ..storage import whatsapp as db
from .http import NO_NUL, actor_of, client_ip, routes, svc_of, user_of

WEBHOOK_MAX_BYTES = 1024 * 1024  # Meta batches many changes into one POST
ACCOUNT_FIELD_MAX, ACCOUNT_NAME_MAX = 512, 80
assert set(STATUSES) == {"open", "pending", "closed"}


def wa(request: web.Request) -> WhatsAppService:
    service = svc_of(request).whatsapp
    if not isinstance(service, WhatsAppService):
        raise Unavailable("WhatsApp is not enabled")
    return service


# --- models ----------------------------------------------------------------------------------------

# check_phone's rule on the raw input: spaces, '-', '(' and ')' anywhere, then +?[1-9] and 6-14 digits
_SEP = r"[\s\-()]*"
Phone = Annotated[str, Field(pattern=rf"^{_SEP}(?:\+{_SEP})?[1-9](?:{_SEP}\d){{6,14}}{_SEP}$",
                             description="an international number like +4915112345678"),
                  BeforeValidator(check_phone)]
AccountField = Annotated[str, Field(min_length=1, max_length=ACCOUNT_FIELD_MAX, pattern=r"^[^\x00]*\S[^\x00]*$",
                                    description="stored trimmed")]


class ConversationsQuery(QueryParams):
    status: Literal["open", "pending", "closed"] | None = None
    assignee: Literal["me", "none"] | Id | None = Field(default=None, description="me, none (unassigned) or a user id")
    ai: bool | None = None
    unread: bool | None = None
    queue_id: Id | None = Field(default=None, description="only conversations in this queue")
    limit: int = Field(default=100, ge=1, le=500)
    label: Id | None = Field(default=None, description="only conversations with this label (an unknown one is 404)")
    q: str = Field(default="", max_length=200, pattern=NO_NUL,
                   description="the contact's name, email or number, or words of the messages (full-text search)")


class AssignBody(Body):
    user_id: Id = Field(description="a staff member's id")


class ReadBody(Body):
    seq: Cursor


class AccountBody(Body):
    phone_number_id: AccountField
    display_phone: AccountField
    access_token: AccountField
    app_secret: AccountField
    verify_token: AccountField
    name: str = Field(default="", max_length=ACCOUNT_NAME_MAX, pattern=NO_NUL)


class OtpRequestBody(Body):
    phone: Phone


class OtpVerifyBody(Body):
    phone: Phone
    code: str = Field(min_length=6, max_length=6, pattern=r"^[0-9]{6}$")


class VerifyQuery(QueryParams):
    mode: str = Field(alias="hub.mode", pattern=NO_NUL)
    verify_token: str = Field(alias="hub.verify_token", pattern=NO_NUL)
    challenge: str = Field(alias="hub.challenge", pattern=NO_NUL)


class MediaPath(PathParams):
    id: Id = Field(description="the conversation's room id")
    attachment_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
                               description="the attachment's id in the message record")


class MessageEnvelope(Wire):
    message: MessageRecordWire


class ConversationEnvelope(Wire):
    conversation: ConversationView


class Conversations(Wire):
    conversations: list[ConversationView]


class Account(Wire):
    id: int
    phone_number_id: str
    display_phone: str
    name: str
    created_at: str | None


class AccountEnvelope(Wire):
    account: Account


class Accounts(Wire):
    accounts: list[Account]


class CodeSent(Wire):
    sent: Literal[True]
    expires_in: int = Field(description="seconds")


class WebhookResult(Wire):
    ok: Literal[True]
    messages: int
    statuses: int


# --- webhook -----------------------------------------------------------------------------------------

@routes.get("/webhooks/whatsapp", "Meta's subscription handshake: echoes hub.challenge for a known verify token",
            auth=None, query=VerifyQuery, responses={200: "text/plain"}, tags=("webhooks",))
async def webhook_verify(call: Call[None, VerifyQuery, None]) -> web.StreamResponse:
    service = wa(call.request)
    service.admit_webhook(client_ip(call.request))
    challenge = await service.verify_challenge(dict(call.request.query))
    return web.Response(text=challenge, content_type="text/plain")


@routes.post("/webhooks/whatsapp", "Meta's webhook: messages and statuses, signed with the app secret",
             auth=None, raw_body=RawBody("application/json", {"type": "object"}), responses={200: WebhookResult},
             description="X-Hub-Signature-256 (HMAC-SHA256 of the raw body with an account's app secret) is checked "
                         "before the body is parsed; unsigned or badly signed posts answer 401.", tags=("webhooks",))
async def webhook_receive(call: Call[None, None, None]) -> Reply:
    request = call.request
    service = wa(request)
    # counted before the body is read or the signature checked: a flood is refused at the door
    service.admit_webhook(client_ip(request))
    raw = await request.read()
    result = await service.handle_webhook(raw, request.headers.get("X-Hub-Signature-256"))
    return Reply({"ok": True, **result})


# --- staff inbox -------------------------------------------------------------------------------------

CONVERSATION_LINKS = {
    "GetConversation": Link("get_conversation", id="$response.body#/conversation/room_id"),
    "Read": Link("read_conversation", id="$response.body#/conversation/room_id"),
    "Takeover": Link("conversation_takeover", id="$response.body#/conversation/room_id"),
    "Close": Link("conversation_close", id="$response.body#/conversation/room_id"),
    "Reopen": Link("conversation_reopen", id="$response.body#/conversation/room_id"),
    "Events": Link("list_conversation_events", id="$response.body#/conversation/room_id"),
}


@routes.get("/api/v1/wa/conversations", "WhatsApp conversations for the staff inbox", auth="staff",
            query=ConversationsQuery, responses={200: Conversations},
            description="Staff get the conversations of their queues, those assigned to them and those in no queue; "
                        "supervisors and admins get all.")
async def list_conversations(call: Call[None, ConversationsQuery, None]) -> Reply:
    q = call.query
    assignee_id = user_of(call).id if q.assignee == "me" else q.assignee if isinstance(q.assignee, int) else None
    filters = await contacts.inbox_filters(svc_of(call.request), q.label, q.q)
    views = await conv_actions.do_list(svc_of(call.request), user_of(call), status=q.status, assignee_id=assignee_id,
                                       unassigned=q.assignee == "none", ai=q.ai, unread=q.unread, limit=q.limit,
                                       queue_id=q.queue_id, **filters)
    return Reply({"conversations": views})


@routes.get("/api/v1/wa/conversations/{id}", "One WhatsApp conversation (id: its room id)", auth="staff",
            responses={200: ConversationEnvelope},
            description="A conversation outside the caller's queues answers 403 (details.reason outside_queues).")
async def get_conversation(call: Call[None, None, IdPath]) -> Reply:
    return Reply({"conversation": await conv_actions.do_get(svc_of(call.request), user_of(call), call.path.id)})


def _transition_route(action: str, summary: str, with_user: bool = False) -> None:
    async def handler(call: Call[Any, None, IdPath]) -> Reply:
        target = call.body.user_id if with_user else None
        view = await conv_actions.do_transition(svc_of(call.request), call.path.id, action, actor_of(call),
                                                user_id=target)
        return Reply({"conversation": view})

    handler.__name__ = f"conversation_{action}"
    description = ("A conversation another person holds answers 409 conflict (details.reason taken): of two agents "
                   "taking it at once, one wins. " if action == "takeover" else "")
    routes.post(f"/api/v1/wa/conversations/{{id}}/{action}", summary, auth="staff",
                body=AssignBody if with_user else None, responses={200: ConversationEnvelope},
                description=description + "Outside the caller's queues: 403. Audited; one timeline event.")(handler)


_transition_route("takeover", "Take the conversation over from the assistant (AI off, assigned to you)")
_transition_route("handback", "Hand the conversation back to the assistant")
_transition_route("assign", "Assign the conversation to a staff member (AI off)", with_user=True)
_transition_route("close", "Close the conversation")
_transition_route("reopen", "Reopen the conversation")


@routes.post("/api/v1/wa/conversations/{id}/read", "Mark the conversation read up to seq", auth="staff",
             body=ReadBody, responses={200: ConversationEnvelope})
async def read_conversation(call: Call[ReadBody, None, IdPath]) -> Reply:
    await conv_actions.access_conversation(svc_of(call.request), user_of(call), call.path.id)
    return Reply({"conversation": await wa(call.request).mark_read(call.path.id, call.body.seq)})


@routes.post("/api/v1/wa/conversations/{id}/media/{attachment_id}/retry",
             "Fetch a contact's file again after it could not be fetched", auth="staff", params=MediaPath,
             responses={200: MessageEnvelope},
             description="For an attachment whose status is unavailable: it becomes pending, is fetched from the "
                         "Graph API again, and the message reaches the room as message:updated (ready, or "
                         "unavailable again). A file that is ready or pending is left as it is. Answers the "
                         "message as it is now.")
async def retry_media(call: Call[None, None, MediaPath]) -> Reply:
    await conv_actions.access_conversation(svc_of(call.request), user_of(call), call.path.id)
    msg = await wa(call.request).media.retry(call.path.id, call.path.attachment_id)
    return Reply({"message": msg.to_wire()})


# --- accounts ----------------------------------------------------------------------------------------

@routes.get("/api/v1/admin/wa/accounts", "WhatsApp business numbers (secrets are never returned)", auth="admin",
            responses={200: Accounts})
async def list_accounts(call: Call[None, None, None]) -> Reply:
    return Reply({"accounts": [a.public() for a in await db.list_accounts(svc_of(call.request).pool)]})


@routes.post("/api/v1/admin/wa/accounts", "Add a WhatsApp business number", auth="admin", body=AccountBody,
             responses={201: AccountEnvelope},
             links={201: {"DeleteAccount": Link("delete_account", id="$response.body#/account/id"),
                          "Accounts": Link("list_accounts")}},
             description="A phone_number_id already configured answers 409.")
async def create_account(call: Call[AccountBody, None, None]) -> Reply:
    b = call.body
    values = {f: getattr(b, f).strip() for f in ("phone_number_id", "display_phone", "access_token", "app_secret",
                                                 "verify_token")}
    account = await do_add_account(svc_of(call.request), actor_of(call), b.name, **values)
    return Reply({"account": account.public()}, 201)


@routes.delete("/api/v1/admin/wa/accounts/{id}", "Remove a WhatsApp business number", auth="admin",
               responses={204: None})
async def delete_account(call: Call[None, None, IdPath]) -> Reply:
    await do_remove_account(svc_of(call.request), actor_of(call), call.path.id)
    return Reply(None, 204)


# --- login by code -----------------------------------------------------------------------------------

@routes.post("/api/v1/auth/otp/request", "Send a login code by WhatsApp", auth=None, body=OtpRequestBody,
             responses={202: CodeSent})
async def otp_request(call: Call[OtpRequestBody, None, None]) -> Reply:
    await wa(call.request).request_code(call.body.phone, client_ip(call.request))
    return Reply({"sent": True, "expires_in": OTP_TTL_S}, 202)


@routes.post("/api/v1/auth/otp/verify", "Log in with a WhatsApp code", auth=None, body=OtpVerifyBody,
             responses={200: Session}, links={200: {"Me": Link("me")}})
async def otp_verify(call: Call[OtpVerifyBody, None, None]) -> Reply:
    user = await wa(call.request).verify_code(call.body.phone, call.body.code, client_ip(call.request))
    tokens = await issue_tokens(svc_of(call.request), user)
    return Reply({"user": account.public_user(svc_of(call.request), user), **tokens})
