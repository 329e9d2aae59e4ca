"""Message templates: synced from the Graph API, listed, and sent into a conversation.

A template is the only message WhatsApp lets a business send outside the 24-hour window.
``do_sync`` reads the account's template list (``GET /{waba-id}/message_templates``, paged,
each page bounded by the client's timeout) and makes ``wa_templates`` exactly that list, with
the parameter count of each component. ``do_send_template`` stores the rendered text as the
staff member's message (meta ``template``) with its audit row and outbox row in one
transaction, then sends it like any reply (the outbox retries passing failures); a wrong
parameter count is refused before anything is stored or sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chatcore.errors import Invalid, NotFound, Unavailable
from whatsapp_bridge.cloud_api import CloudApiClient, CloudApiError
from whatsapp_bridge.templates import param_counts, render

from ..storage import campaigns as cdb
from ..storage import messages as mdb
from ..storage import whatsapp as wdb
from . import audit
from .conversations import access_conversation
from .notify import emit, room_channel

if TYPE_CHECKING:
    from ..context import Services

TEMPLATE_SEND = "template.send"
APPROVED = "APPROVED"


def _parsed(item: dict[str, Any]) -> dict[str, Any] | None:
    name, language = item.get("name"), item.get("language")
    if not isinstance(name, str) or not name or not isinstance(language, str) or not language:
        return None
    components = item.get("components") if isinstance(item.get("components"), list) else []
    return {"name": name, "language": language, "status": str(item.get("status") or "UNKNOWN").upper(),
            "category": str(item.get("category") or ""), "components": components,
            "param_counts": param_counts(components)}


async def do_sync(svc: Services, api: CloudApiClient, actor: audit.Actor, account_id: int,
                  waba_id: str | None) -> list[cdb.Template]:
    account = await wdb.get_account(svc.pool, account_id)
    if account is None:
        raise NotFound("account not found")
    waba = waba_id or await cdb.waba_id(svc.pool, account_id)
    if not waba:
        raise Invalid("waba_id is required the first time: templates belong to the WhatsApp Business Account",
                      field="waba_id")
    try:
        items = await api.list_templates(waba, account.access_token)
    except CloudApiError as exc:
        if exc.retryable:
            raise Unavailable(f"the template list could not be read ({exc.state}: {exc.title})") from None
        # Meta refused the request itself (an unknown WABA id, a token without access to it), or
        # the token cannot even be sent
        raise Invalid(f"the Graph API refused the template list ({exc.state}: {exc.title})", field="waba_id",
                      code=exc.code) from None
    templates = [t for t in (_parsed(i) for i in items) if t is not None]
    async with svc.pool.acquire() as conn, conn.transaction():
        if waba_id:
            await cdb.set_waba_id(conn, account_id, waba_id)
        count = await cdb.replace_templates(conn, account_id, templates)
        await audit.record(conn, actor, "template.sync", "wa_account", account_id, {"templates": count})
    return await cdb.list_templates(svc.pool, account_id)


def check_params(template: cdb.Template | None, params: list[str], field: str = "parameters") -> cdb.Template:
    """The template if it is approved and ``params`` fill it exactly; else ``invalid`` with
    details (``field`` names what holds the parameters in the caller's request)."""
    if template is None:
        raise Invalid("no such template for this number (sync the templates first)", field="name",
                      reason="unknown_template")
    if template.status != APPROVED:
        raise Invalid(f"the template is {template.status}, not APPROVED", field="name", reason="not_approved",
                      status=template.status)
    if len(params) != template.param_total:
        raise Invalid(f"the template takes {template.param_total} parameters, {len(params)} were given",
                      field=field, reason="parameter_count", expected=template.param_total,
                      given=len(params), per_component=template.param_counts)
    return template


async def do_send_template(svc: Services, actor: audit.Actor, room_id: int, name: str, language: str,
                           params: list[str]) -> dict[str, Any]:
    from .whatsapp import WhatsAppService  # the service sends through its outbox

    # not_found, or forbidden outside the sender's queues (the desk's visibility rule)
    contact = await access_conversation(svc, actor.user, room_id)
    if contact.account_id is None:
        raise Invalid("templates go out through a Cloud API number; this conversation is on a linked device",
                      field="name", reason="linked_device")
    template = check_params(await cdb.get_template(svc.pool, contact.account_id, name, language), params)
    user = actor.user
    async with svc.pool.acquire() as conn, conn.transaction():
        msg = await mdb.insert_message(
            conn, room_id, author_id=user.id, author_kind="user", author_name=user.display_name,
            body=render(template.components, params),
            meta={"template": {"name": name, "language": language, "parameters": params,
                               "param_counts": template.param_counts}})
        row_id = await wdb.insert_outbound(conn, msg.id, room_id)
        await audit.record(conn, actor, TEMPLATE_SEND, "conversation", room_id,
                           {"template": name, "language": language, "message_id": msg.id})
    await emit(svc, "message", msg.to_wire(), to=room_channel(room_id))
    if isinstance(svc.whatsapp, WhatsAppService):
        svc.supervisor.spawn(f"wa-template:{msg.id}", svc.whatsapp.attempt_queued(contact, msg, row_id))
    return msg.to_wire()
