"""The webhook: verify handshake and payload parsing (every entry, every change)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from .models import InboundMessage, StatusUpdate, WebhookBatch


class WebhookFormatError(ValueError):
    pass


def verify_handshake(params: Mapping[str, str], verify_token: str) -> str | None:
    """The challenge to echo when Meta's subscription request carries our verify token."""
    import hmac

    if params.get("hub.mode") != "subscribe" or not verify_token:
        return None
    given = params.get("hub.verify_token") or ""
    if not hmac.compare_digest(given.encode(), verify_token.encode()):
        return None
    return params.get("hub.challenge")


def _ts(value: Any) -> datetime:
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError):
        return datetime.now(UTC)


def _describe(msg: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A readable text for any message type, and the metadata worth keeping."""
    kind = msg.get("type", "unknown")
    raw = msg.get(kind)
    body: dict[str, Any] = raw if isinstance(raw, dict) else {}
    if kind == "text":
        return str(msg.get("text", {}).get("body", "")), {}
    if kind in ("image", "video", "audio", "sticker", "document"):
        meta: dict[str, Any] = {k: body[k] for k in ("id", "mime_type", "sha256", "filename", "caption") if k in body}
        label = body.get("filename") if kind == "document" else body.get("caption")
        return (f"[{kind}] {label}" if label else f"[{kind}]"), meta
    if kind == "location":
        parts = [p for p in (body.get("name"), body.get("address")) if p]
        where = ", ".join(parts)
        coords = f"({body.get('latitude')}, {body.get('longitude')})"
        return f"[location] {where} {coords}".replace("  ", " ").strip(), dict(body)
    if kind == "contacts":
        names = [c.get("name", {}).get("formatted_name", "?") for c in msg.get("contacts", [])]
        return f"[contacts] {', '.join(names)}", {"contacts": msg.get("contacts", [])}
    if kind == "interactive":
        reply = body.get("button_reply") or body.get("list_reply") or {}
        return f"[reply] {reply.get('title', '')}".strip(), {"reply_id": reply.get("id")}
    if kind == "button":
        return f"[button] {body.get('text', '')}".strip(), {"payload": body.get("payload")}
    if kind == "reaction":
        return f"[reaction] {body.get('emoji', '')}".strip(), {"message_id": body.get("message_id")}
    return f"[{kind}]", {"errors": msg.get("errors", [])}


def parse_webhook(payload: Any) -> WebhookBatch:
    if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
        raise WebhookFormatError("not a whatsapp_business_account webhook")
    entries = payload.get("entry")
    if not isinstance(entries, list):
        raise WebhookFormatError("entry must be a list")
    messages: list[InboundMessage] = []
    statuses: list[StatusUpdate] = []
    errors: list[dict[str, Any]] = []
    for entry in entries:
        for change in (entry or {}).get("changes", []) or []:
            value = (change or {}).get("value") or {}
            if not isinstance(value, dict):
                continue
            number = str((value.get("metadata") or {}).get("phone_number_id", ""))
            names = {c.get("wa_id"): (c.get("profile") or {}).get("name") for c in value.get("contacts", []) or []}
            for m in value.get("messages", []) or []:
                if not isinstance(m, dict) or not m.get("id") or not m.get("from"):
                    continue
                text, meta = _describe(m)
                if m.get("context"):
                    meta["context"] = m["context"]
                messages.append(InboundMessage(number, str(m["from"]), names.get(m["from"]), str(m["id"]),
                                               _ts(m.get("timestamp")), str(m.get("type", "unknown")), text, meta))
            for s in value.get("statuses", []) or []:
                if not isinstance(s, dict) or not s.get("id") or not s.get("status"):
                    continue
                err = (s.get("errors") or [{}])[0] or {}
                statuses.append(StatusUpdate(number, str(s["id"]), str(s["status"]), _ts(s.get("timestamp")),
                                             s.get("recipient_id"), err.get("code"), err.get("title")))
            errors.extend(e for e in value.get("errors", []) or [] if isinstance(e, dict))
    return WebhookBatch(messages, statuses, errors)
