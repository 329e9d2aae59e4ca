"""Readable text for every inbound message type, and the metadata worth keeping.

Staff and the assistant read a conversation as text, so each WhatsApp message type becomes one
line: the body of a text message as is, a placeholder for anything else (``[image] caption``,
``[location] name, address (lat, lon)``, ``[document] file.pdf``, ``[button] Yes``). Ids and
mime types go to ``meta`` so media can be fetched later. Dispatch is by table; a type Meta adds
later falls back to ``[type]`` and keeps its ``errors``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Described = tuple[str, dict[str, Any]]
MEDIA_KEYS = ("id", "mime_type", "sha256", "filename", "caption", "voice", "animated")


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _text(s: Any) -> str:
    return s.strip() if isinstance(s, str) else ""


def _label(tag: str, *parts: str) -> str:
    rest = " ".join(p for p in parts if p)
    return f"[{tag}] {rest}" if rest else f"[{tag}]"


def _media_meta(body: dict[str, Any]) -> dict[str, Any]:
    # "media_id", not "id": the meta lands next to the chat message's own id downstream
    return {("media_id" if k == "id" else k): body[k] for k in MEDIA_KEYS if k in body}


def _text_message(msg: dict[str, Any]) -> Described:
    body = _obj(msg.get("text")).get("body")
    return (body if isinstance(body, str) else ""), {}


def _media(kind: str) -> Callable[[dict[str, Any]], Described]:
    def describe(msg: dict[str, Any]) -> Described:
        body = _obj(msg.get(kind))
        return _label(kind, _text(body.get("caption"))), _media_meta(body)

    return describe


def _document(msg: dict[str, Any]) -> Described:
    body = _obj(msg.get("document"))
    name, caption = _text(body.get("filename")), _text(body.get("caption"))
    return _label("document", f"{name}: {caption}" if name and caption else name or caption), _media_meta(body)


def _location(msg: dict[str, Any]) -> Described:
    body = _obj(msg.get("location"))
    where = ", ".join(p for p in (_text(body.get("name")), _text(body.get("address"))) if p)
    lat, lon = body.get("latitude"), body.get("longitude")
    coords = f"({lat}, {lon})" if lat is not None and lon is not None else ""
    meta: dict[str, Any] = {k: body[k] for k in ("latitude", "longitude", "name", "address", "url") if k in body}
    return _label("location", where, coords), meta


def _contacts(msg: dict[str, Any]) -> Described:
    cards = _dicts(msg.get("contacts"))
    names = [_text(_obj(c.get("name")).get("formatted_name")) or "?" for c in cards]
    return _label("contacts", ", ".join(names)), {"contacts": cards}


def _interactive(msg: dict[str, Any]) -> Described:
    body = _obj(msg.get("interactive"))
    kind = body.get("type")
    if kind == "nfm_reply":  # a WhatsApp Flow was submitted
        form = _obj(body.get("nfm_reply"))
        return _label("form", _text(form.get("body")) or _text(form.get("name"))), {
            "reply_type": kind, "response_json": form.get("response_json")}
    reply = _obj(body.get("button_reply")) or _obj(body.get("list_reply"))
    meta = {"reply_type": kind, "reply_id": reply.get("id")}
    if reply.get("description"):
        meta["reply_description"] = reply["description"]
    return _label("reply", _text(reply.get("title"))), meta


def _button(msg: dict[str, Any]) -> Described:
    # a quick-reply button of a template the business sent
    body = _obj(msg.get("button"))
    return _label("button", _text(body.get("text"))), {"payload": body.get("payload")}


def _reaction(msg: dict[str, Any]) -> Described:
    body = _obj(msg.get("reaction"))
    emoji = _text(body.get("emoji"))
    # an empty emoji means the contact took their reaction back
    return (_label("reaction", emoji) if emoji else "[reaction removed]"), {"reacted_to": body.get("message_id")}


def _order(msg: dict[str, Any]) -> Described:
    body = _obj(msg.get("order"))
    items = _dicts(body.get("product_items"))
    count = sum(_quantity(i.get("quantity")) for i in items)
    text = _text(body.get("text"))
    summary = f"{count} item{'s' if count != 1 else ''}"
    return _label("order", f"{summary}: {text}" if text else summary), {
        "catalog_id": body.get("catalog_id"), "product_items": items}


def _quantity(value: Any) -> int:
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return 1  # a missing or odd quantity still is one line of the order


def _system(msg: dict[str, Any]) -> Described:
    body = _obj(msg.get("system"))
    meta: dict[str, Any] = {k: body[k] for k in ("type", "wa_id", "new_wa_id", "identity") if k in body}
    return _label("system", _text(body.get("body"))), meta


def _request_welcome(msg: dict[str, Any]) -> Described:
    return "[opened the chat]", {}


DESCRIBERS: dict[str, Callable[[dict[str, Any]], Described]] = {
    "text": _text_message,
    "image": _media("image"),
    "video": _media("video"),
    "audio": _media("audio"),
    "sticker": _media("sticker"),
    "document": _document,
    "location": _location,
    "contacts": _contacts,
    "interactive": _interactive,
    "button": _button,
    "reaction": _reaction,
    "order": _order,
    "system": _system,
    "request_welcome": _request_welcome,
}


def describe(msg: dict[str, Any]) -> Described:
    """``(text, meta)`` for one entry of ``value.messages[]``."""
    kind = str(msg.get("type") or "unknown")
    describer = DESCRIBERS.get(kind)
    if describer is None:  # "unsupported", or a type newer than this code
        text, meta = f"[{kind}]", {"errors": _dicts(msg.get("errors"))}
    else:
        text, meta = describer(msg)
    if isinstance(msg.get("context"), dict):
        meta["context"] = msg["context"]  # a reply to (or forward of) an earlier message
    if isinstance(msg.get("referral"), dict):
        meta["referral"] = msg["referral"]  # arrived through a click-to-WhatsApp ad
    return text, meta
