"""WhatsApp Web (linked-device) session routes, admins only (``actions/wa_sessions.py``).

Declared in ``http.py``'s table (``chatcore.api``); they join it on import.
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import Field

from chatcore.api import Body, Call, IdPath, Link, Reply
from chatcore.errors import Unavailable
from chatcore.schemas import Wire

from ..actions.wa_sessions import WaSessionService
from ..storage.wa_sessions import STATES
from .http import actor_of, routes, svc_of
from .http_whatsapp import Phone

SESSION_NAME_MAX = 80
assert set(STATES) == {"new", "connecting", "qr", "pairing_code", "connected", "disconnected", "logged_out",
                       "qr_expired"}


def sessions_of(request: web.Request) -> WaSessionService:
    service = svc_of(request).extras.get("wa_sessions")
    if not isinstance(service, WaSessionService):
        raise Unavailable("WhatsApp is not enabled")
    return service


class SessionBody(Body):
    name: str = Field(min_length=1, max_length=SESSION_NAME_MAX, pattern=r"^[^\x00]*\S[^\x00]*$",
                      description="stored trimmed")


class PairingBody(Body):
    phone: Phone


class WaSession(Wire):
    id: int
    name: str
    status: Literal["new", "connecting", "qr", "pairing_code", "connected", "disconnected", "logged_out",
                    "qr_expired"]
    jid: str | None = Field(description="the linked device's JID once paired")
    phone: str | None = Field(description="the linked number (digits) once paired")
    last_error: str | None
    node: str | None = Field(description="the node that runs (or last ran) the session")
    created_at: str | None
    updated_at: str | None


class SessionEnvelope(Wire):
    session: WaSession


class Sessions(Wire):
    sessions: list[WaSession]


class PairingCode(Wire):
    pairing_code: str = Field(description="type it on the phone: WhatsApp, Linked devices, Link with phone number")


SESSION_LINKS = {
    "GetSession": Link("get_wa_session", id="$response.body#/session/id"),
    "PairingCode": Link("wa_session_pairing_code", id="$response.body#/session/id"),
    "Logout": Link("wa_session_logout", id="$response.body#/session/id"),
    "Start": Link("wa_session_start", id="$response.body#/session/id"),
    "DeleteSession": Link("delete_wa_session", id="$response.body#/session/id"),
}


@routes.post("/api/v1/whatsapp/sessions", "Create a WhatsApp Web (linked-device) session", auth="admin",
             body=SessionBody, responses={201: SessionEnvelope}, links={201: SESSION_LINKS},
             description="A node with the whatsapp-web extra starts it within seconds; its QR codes reach admins "
                         "as wa:session events. Not Meta's official API (docs/WHATSAPP.md).")
async def create_wa_session(call: Call[SessionBody, None, None]) -> Reply:
    session = await sessions_of(call.request).create(actor_of(call), call.body.name.strip())
    return Reply({"session": session.public()}, 201)


@routes.get("/api/v1/whatsapp/sessions", "WhatsApp Web sessions with their status", auth="admin",
            responses={200: Sessions})
async def list_wa_sessions(call: Call[None, None, None]) -> Reply:
    from ..storage import wa_sessions as sdb

    return Reply({"sessions": [s.public() for s in await sdb.list_all(svc_of(call.request).pool)]})


@routes.get("/api/v1/whatsapp/sessions/{id}", "One WhatsApp Web session", auth="admin",
            responses={200: SessionEnvelope})
async def get_wa_session(call: Call[None, None, IdPath]) -> Reply:
    return Reply({"session": (await sessions_of(call.request).get(call.path.id)).public()})


@routes.post("/api/v1/whatsapp/sessions/{id}/pairing-code", "Link by pairing code instead of the QR code",
             auth="admin", body=PairingBody, responses={200: PairingCode},
             description="The phone number of the WhatsApp account to link, international. The code also reaches "
                         "admins as wa:session. 409 when it is already linked, runs on another node, or is not connected to "
                         "WhatsApp yet (the message says which).")
async def wa_session_pairing_code(call: Call[PairingBody, None, IdPath]) -> Reply:
    code = await sessions_of(call.request).pairing_code(actor_of(call), call.path.id, call.body.phone)
    return Reply({"pairing_code": code})


@routes.post("/api/v1/whatsapp/sessions/{id}/logout", "Unlink the device and forget its keys", auth="admin",
             responses={200: SessionEnvelope},
             description="Conversations stay; their sends fail (logged_out) until the session is started again.")
async def wa_session_logout(call: Call[None, None, IdPath]) -> Reply:
    session = await sessions_of(call.request).logout(actor_of(call), call.path.id)
    return Reply({"session": session.public()})


@routes.post("/api/v1/whatsapp/sessions/{id}/start", "Start a logged-out or expired session again (a new QR code)",
             auth="admin", responses={200: SessionEnvelope}, description="409 when it is running.")
async def wa_session_start(call: Call[None, None, IdPath]) -> Reply:
    session = await sessions_of(call.request).start(actor_of(call), call.path.id)
    return Reply({"session": session.public()})


@routes.delete("/api/v1/whatsapp/sessions/{id}", "Delete a WhatsApp Web session and its keys", auth="admin",
               responses={204: None}, description="Its conversations stay, without a channel to send on.")
async def delete_wa_session(call: Call[None, None, IdPath]) -> Reply:
    await sessions_of(call.request).delete(actor_of(call), call.path.id)
    return Reply(None, 204)

