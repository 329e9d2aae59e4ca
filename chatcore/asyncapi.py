"""The AsyncAPI 3.0 document of the Socket.IO events, generated from ``chatcore/protocol.py``.

One channel per event name (its ``address``; ids replace ``:`` by ``.``, as component keys
allow only ``[A-Za-z0-9._-]``). The application described is chat-server: a client event is a
``receive`` operation whose ``reply`` is its ack (the success shape or the error ack), a server
event is a ``send`` operation. ``typing`` travels both ways and has both. Payload schemas are
the models' JSON Schemas under ``components/schemas``.

Bounds read from configuration are filled in from the limits given (``protocol.CONFIG_LIMIT``),
so the served document states the limits of the server that serves it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .protocol import CLIENT_EVENTS, CONFIG_LIMIT, SERVER_EVENTS, ErrorAck

ASYNCAPI_VERSION = "3.0.0"
SCHEMA_REF = "#/components/schemas/{model}"
ERROR_MESSAGE = "error.ack"

DESCRIPTION = """Socket.IO 5 (Engine.IO 4) on namespace `/`, path `/socket.io/`. Connect with
`auth: {token}` (an access token); a refused connect's `connect_error` carries `{code, message}`.
Each channel is one event name (its address). Every client event takes an ack: its success
shape (`ok: true`) or the error ack (`ok: false`, with a stable `error.code`). The prose
contract, with rate limits and reconnection rules, is docs/PROTOCOL.md."""


def channel_id(event: str) -> str:
    return event.replace(":", ".")


def _resolve_limits(node: Any, limits: dict[str, int]) -> Any:
    if isinstance(node, dict):
        out = {k: _resolve_limits(v, limits) for k, v in node.items() if k != CONFIG_LIMIT}
        for keyword, setting in node.get(CONFIG_LIMIT, {}).items():
            out[keyword] = limits[setting]
        return out
    if isinstance(node, list):
        return [_resolve_limits(v, limits) for v in node]
    return node


def _schemas() -> tuple[dict[type[BaseModel], str], dict[str, Any]]:
    models: list[type[BaseModel]] = [ErrorAck]
    for ce in CLIENT_EVENTS.values():
        models += [ce.payload, ce.ack]
    models += [se.payload for se in SERVER_EVENTS.values()]
    unique = list(dict.fromkeys(models))
    refs, top = models_json_schema([(m, "validation") for m in unique], ref_template=SCHEMA_REF)
    names = {m: refs[(m, "validation")]["$ref"].rsplit("/", 1)[1] for m in unique}
    return names, top.get("$defs", {})


def _message(event: str, title: str, summary: str, schema: str) -> dict[str, Any]:
    return {"name": event, "title": title, "summary": summary, "payload": {"$ref": SCHEMA_REF.format(model=schema)}}


def build_asyncapi(*, max_body_chars: int, history_page_max: int, title: str = "chat-server",
                   version: str = "1") -> dict[str, Any]:
    names, schemas = _schemas()
    schemas = _resolve_limits(schemas, {"max_body_chars": max_body_chars, "history_page_max": history_page_max})
    messages: dict[str, Any] = {
        ERROR_MESSAGE: _message("error", "Error ack", "The ack of a refused client event", names[ErrorAck]),
    }
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for event in [*CLIENT_EVENTS, *(e for e in SERVER_EVENTS if e not in CLIENT_EVENTS)]:
        cid = channel_id(event)
        channel_ref = {"$ref": f"#/channels/{cid}"}
        in_channel: dict[str, Any] = {}

        def ref(key: str, cid: str = cid) -> dict[str, str]:
            return {"$ref": f"#/channels/{cid}/messages/{key}"}

        ce = CLIENT_EVENTS.get(event)
        if ce is not None:
            messages[f"{cid}.request"] = _message(event, f"{event} payload", ce.summary, names[ce.payload])
            messages[f"{cid}.ack"] = _message(event, f"{event} ack", f"Success ack of {event}", names[ce.ack])
            for key in (f"{cid}.request", f"{cid}.ack", ERROR_MESSAGE):
                in_channel[key] = {"$ref": f"#/components/messages/{key}"}
            operations[f"receive.{cid}"] = {
                "action": "receive", "channel": channel_ref, "summary": ce.summary,
                "messages": [ref(f"{cid}.request")],
                "reply": {"channel": channel_ref, "messages": [ref(f"{cid}.ack"), ref(ERROR_MESSAGE)]},
            }
        se = SERVER_EVENTS.get(event)
        if se is not None:
            messages[f"{cid}.event"] = _message(event, f"{event} event", se.summary, names[se.payload])
            in_channel[f"{cid}.event"] = {"$ref": f"#/components/messages/{cid}.event"}
            operations[f"send.{cid}"] = {"action": "send", "channel": channel_ref, "summary": se.summary,
                                         "messages": [ref(f"{cid}.event")]}
        channels[cid] = {"address": event, "messages": in_channel}
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {"title": f"{title} Socket.IO events", "version": version, "description": DESCRIPTION},
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }
