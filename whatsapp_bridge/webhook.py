"""The webhook endpoint's two halves: the verify handshake and payload parsing.

GET  ``?hub.mode=subscribe&hub.verify_token=..&hub.challenge=..`` -> ``verify_handshake``
POST (signature checked first, see ``signature.py``) -> JSON -> ``parse_webhook`` -> ``WebhookBatch``

A payload is ``{"object": "whatsapp_business_account", "entry": [{"changes": [{"field":
"messages", "value": {...}}]}]}``; one POST may carry several entries, changes, messages and
statuses, all collected into one batch. The envelope must have that shape or the whole body is
refused (``WebhookFormatError``); inside it, a single message or status without the fields it
cannot do without (an id) is skipped with a warning, so one odd item never drops its neighbours.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from .describe import describe
from .models import InboundMessage, StatusUpdate, WebhookBatch

log = logging.getLogger(__name__)

OBJECT = "whatsapp_business_account"
MESSAGES_FIELD = "messages"  # other subscribed fields (template or account updates) are not ours


class WebhookFormatError(ValueError):
    """The body is not a WhatsApp Business Account webhook, or its envelope is garbled."""


def verify_handshake(params: Mapping[str, str], verify_token: str) -> str | None:
    """The challenge to echo when Meta's subscription request carries our verify token, else None."""
    if not verify_token or params.get("hub.mode") != "subscribe":
        return None
    given = params.get("hub.verify_token") or ""
    if not hmac.compare_digest(given.encode(), verify_token.encode()):
        return None
    challenge = params.get("hub.challenge")
    return challenge or None


def parse_webhook(payload: Any) -> WebhookBatch:
    """Every inbound message, status and error of one webhook body (already JSON-decoded)."""
    if not isinstance(payload, dict) or payload.get("object") != OBJECT:
        raise WebhookFormatError(f"not a {OBJECT} webhook")
    if not isinstance(payload.get("entry"), list):
        raise WebhookFormatError("entry must be a list")
    batch = WebhookBatch([], [], [])
    for entry in _list(payload.get("entry"), "entry"):
        if not isinstance(entry, dict):
            raise WebhookFormatError("entry[] items must be objects")
        for change in _list(entry.get("changes", []), "entry[].changes"):
            if not isinstance(change, dict):
                raise WebhookFormatError("changes[] items must be objects")
            if change.get("field", MESSAGES_FIELD) != MESSAGES_FIELD:
                continue
            value = change.get("value")
            if not isinstance(value, dict):
                raise WebhookFormatError("changes[].value must be an object")
            _parse_value(value, batch)
    return batch


def _parse_value(value: dict[str, Any], batch: WebhookBatch) -> None:
    number = str(_dict(value.get("metadata")).get("phone_number_id") or "")
    if not number:
        raise WebhookFormatError("changes[].value.metadata.phone_number_id is missing")
    # contacts[] names the senders, by wa_id (their number) and/or user_id (their BSUID)
    names: dict[str, str] = {}
    for contact in _list(value.get("contacts", []), "contacts"):
        name = _dict(_dict(contact).get("profile")).get("name")
        if not isinstance(name, str):
            continue
        for key in ("wa_id", "user_id"):
            if _dict(contact).get(key):
                names[str(_dict(contact)[key])] = name
    for msg in _list(value.get("messages", []), "messages"):
        inbound = _message(number, msg, names)
        if inbound is not None:
            batch.messages.append(inbound)
    for status in _list(value.get("statuses", []), "statuses"):
        update = _status(number, status)
        if update is not None:
            batch.statuses.append(update)
    batch.errors.extend(e for e in _list(value.get("errors", []), "errors") if isinstance(e, dict))


def _message(number: str, msg: Any, names: dict[str, str]) -> InboundMessage | None:
    # the sender is ``from`` (a phone number's digits), ``from_user_id`` (a BSUID), or both
    if not isinstance(msg, dict) or not msg.get("id") or not (msg.get("from") or msg.get("from_user_id")):
        log.warning("webhook message without id or sender skipped")
        return None
    text, meta = describe(msg)
    wa_id = str(msg["from"]) if msg.get("from") else None
    bsuid = str(msg["from_user_id"]) if msg.get("from_user_id") else None
    name = names.get(bsuid or "") or names.get(wa_id or "")
    return InboundMessage(number, wa_id, name, str(msg["id"]), _timestamp(msg.get("timestamp")),
                          str(msg.get("type") or "unknown"), text, meta, bsuid=bsuid)


def _status(number: str, status: Any) -> StatusUpdate | None:
    if not isinstance(status, dict) or not status.get("id") or not status.get("status"):
        log.warning("webhook status without id or status skipped")
        return None
    errors = [e for e in _list(status.get("errors", []), "statuses[].errors") if isinstance(e, dict)]
    first = errors[0] if errors else {}
    details = _dict(first.get("error_data")).get("details")
    title = first.get("title") or first.get("message")
    recipient = status.get("recipient_id")
    return StatusUpdate(number, str(status["id"]), str(status["status"]), _timestamp(status.get("timestamp")),
                        str(recipient) if recipient else None, _int(first.get("code")),
                        str(title) if title else None, str(details) if details else None)


def _timestamp(value: Any) -> datetime:
    """Meta sends Unix seconds as a string; a missing or odd one becomes the time of receipt."""
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return datetime.now(UTC)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise WebhookFormatError(f"{where} must be a list")
    return value
