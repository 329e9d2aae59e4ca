"""WhatsApp routes: the Cloud API webhook, the staff inbox, admin accounts, login by code."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

from chatcore.errors import Invalid, NotFound, Unavailable
from chatcore.openapi import S_BOOL, S_INT, S_STR, TOKENS, obj

from ..actions.auth import issue_tokens
from ..actions.whatsapp import STATUSES, WhatsAppService, conversation_view
from ..storage import whatsapp as db
from .http import api, client_ip, current_user, ok, path_id, query_int, read_json, svc_of

WEBHOOK_MAX_BYTES = 1024 * 1024  # Meta batches many changes into one POST


def wa(request: web.Request) -> WhatsAppService:
    service = svc_of(request).whatsapp
    if service is None:
        raise Unavailable("WhatsApp is not enabled")
    return service


async def webhook_verify(request: web.Request) -> web.Response:
    service = wa(request)
    service.admit_webhook(client_ip(request))
    challenge = await service.verify_challenge(dict(request.query))
    return web.Response(text=challenge, content_type="text/plain")


async def webhook_receive(request: web.Request) -> web.Response:
    service = wa(request)
    # counted before the body is read or the signature checked: a flood is refused at the door
    service.admit_webhook(client_ip(request))
    raw = await request.read()
    result = await service.handle_webhook(raw, request.headers.get("X-Hub-Signature-256"))
    return ok({"ok": True, **result})


def _bool_query(request: web.Request, name: str) -> bool | None:
    raw = request.query.get(name)
    if raw in (None, ""):
        return None
    if raw in ("true", "1", "on"):
        return True
    if raw in ("false", "0", "off"):
        return False
    raise Invalid(f"{name} must be true or false", field=name)


@api("GET", "/api/v1/wa/conversations", "WhatsApp conversations for the staff inbox", auth="staff",
     query={"status": {"enum": list(STATUSES)}, "assignee": S_STR, "ai": S_BOOL, "unread": S_BOOL, "limit": S_INT})
async def list_conversations(request: web.Request) -> web.Response:
    user = await current_user(request, "staff")
    status = request.query.get("status") or None
    if status is not None and status not in STATUSES:
        raise Invalid("status must be open, pending or closed", field="status")
    assignee = request.query.get("assignee") or None
    assignee_id = None
    if assignee == "me":
        assignee_id = user.id
    elif assignee not in (None, "none"):
        assignee_id = query_int(request, "assignee")
    limit = min(max(query_int(request, "limit") or 100, 1), 500)
    rows = await db.conversations(svc_of(request).pool, status=status, assignee_id=assignee_id,
                                  unassigned=assignee == "none", ai=_bool_query(request, "ai"),
                                  unread=_bool_query(request, "unread"), limit=limit)
    return ok({"conversations": [conversation_view(r) for r in rows]})


@api("GET", "/api/v1/wa/conversations/{id}", "One WhatsApp conversation", auth="staff")
async def get_conversation(request: web.Request) -> web.Response:
    await current_user(request, "staff")
    row = await db.conversation_row(svc_of(request).pool, path_id(request))
    if row is None:
        raise NotFound("conversation not found")
    return ok({"conversation": conversation_view(row)})


def _transition_route(action: str, summary: str, body: dict[str, Any] | None = None) -> None:
    @api("POST", f"/api/v1/wa/conversations/{{id}}/{action}", summary, auth="staff", body=body)
    async def handler(request: web.Request) -> web.Response:
        user = await current_user(request, "staff")
        data = await read_json(request) if body is not None else {}
        view = await wa(request).transition(path_id(request), action, user, data.get("user_id"))
        return ok({"conversation": view})


_transition_route("takeover", "Take the conversation over from the assistant (AI off, assigned to you)")
_transition_route("handback", "Hand the conversation back to the assistant")
_transition_route("assign", "Assign the conversation to a staff member (AI off)", obj(["user_id"], user_id=S_INT))
_transition_route("close", "Close the conversation")
_transition_route("reopen", "Reopen the conversation")


@api("POST", "/api/v1/wa/conversations/{id}/read", "Mark the conversation read up to seq", auth="staff",
     body=obj(["seq"], seq=S_INT))
async def read_conversation(request: web.Request) -> web.Response:
    await current_user(request, "staff")
    data = await read_json(request)
    return ok({"conversation": await wa(request).mark_read(path_id(request), data.get("seq"))})


ACCOUNT_FIELDS = ("phone_number_id", "display_phone", "access_token", "app_secret", "verify_token")


@api("GET", "/api/v1/admin/wa/accounts", "WhatsApp business numbers (secrets are never returned)", auth="admin")
async def list_accounts(request: web.Request) -> web.Response:
    await current_user(request, "admin")
    return ok({"accounts": [a.public() for a in await db.list_accounts(svc_of(request).pool)]})


@api("POST", "/api/v1/admin/wa/accounts", "Add a WhatsApp business number", auth="admin", status=201,
     body=obj(list(ACCOUNT_FIELDS), name=S_STR, **{f: S_STR for f in ACCOUNT_FIELDS}))
async def create_account(request: web.Request) -> web.Response:
    await current_user(request, "admin")
    data = await read_json(request)
    values = {}
    for f in ACCOUNT_FIELDS:
        v = data.get(f)
        if not isinstance(v, str) or not v.strip() or len(v) > 512:
            raise Invalid(f"{f} is required (a string of at most 512 characters)", field=f)
        values[f] = v.strip()
    name = data.get("name") or ""
    if not isinstance(name, str) or len(name) > 80:
        raise Invalid("name must be at most 80 characters", field="name")
    svc = svc_of(request)
    try:
        account = await db.insert_account(svc.pool, name=name, **values)
    except asyncpg.UniqueViolationError:
        raise Invalid("this phone_number_id is already configured", field="phone_number_id") from None
    if svc.whatsapp is not None:
        svc.whatsapp.forget_accounts()
    return ok({"account": account.public()}, 201)


@api("DELETE", "/api/v1/admin/wa/accounts/{id}", "Remove a WhatsApp business number", auth="admin", status=204)
async def delete_account(request: web.Request) -> web.Response:
    await current_user(request, "admin")
    svc = svc_of(request)
    if not await db.delete_account(svc.pool, path_id(request)):
        raise NotFound("account not found")
    if svc.whatsapp is not None:
        svc.whatsapp.forget_accounts()
    return web.Response(status=204)


@api("POST", "/api/v1/auth/otp/request", "Send a login code by WhatsApp", auth=None, status=202, body=obj(["phone"], phone=S_STR))
async def otp_request(request: web.Request) -> web.Response:
    data = await read_json(request)
    await wa(request).request_code(data.get("phone"), client_ip(request))
    return ok({"sent": True, "expires_in": 300}, 202)


@api("POST", "/api/v1/auth/otp/verify", "Log in with a WhatsApp code", auth=None,
     body=obj(["phone", "code"], phone=S_STR, code=S_STR), response=TOKENS)
async def otp_verify(request: web.Request) -> web.Response:
    data = await read_json(request)
    user = await wa(request).verify_code(data.get("phone"), data.get("code"), client_ip(request))
    tokens = await issue_tokens(svc_of(request), user)
    return ok({"user": user.public(), **tokens})


def add_webhook_routes(app: web.Application) -> None:
    app.router.add_get("/webhooks/whatsapp", webhook_verify)
    app.router.add_post("/webhooks/whatsapp", webhook_receive)
