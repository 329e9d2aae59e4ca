"""The Socket.IO event contract (``chatcore/protocol.py``) against the real server: every ack and
every event real clients receive validates with its model, malformed payloads are ``invalid``
naming the field, the served AsyncAPI document lists exactly the events the server handles and
emits, and docs/PROTOCOL.md's event tables agree with that document."""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import BaseModel

from chatcore.asyncapi import build_asyncapi
from chatcore.protocol import CLIENT_EVENTS, SERVER_EVENTS, ErrorAck
from server.app import SIO
from tests.fakes.graph_api import GraphApiFake, make_status_webhook, make_text_webhook, signed_post
from tests.services.base import REPO_ROOT
from tests.support import Client, ServerHarness, make_room

# --- helpers --------------------------------------------------------------------------------


class Checked:
    """A client whose acks are validated as they arrive and whose every received event (known
    to the test helpers or not) is recorded for validation."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.acks: list[tuple[str, dict[str, Any]]] = []

    async def connect(self) -> None:
        sio = await self.client.connect()

        async def anything_else(event: str, data: Any = None) -> None:
            await self.client.log.add(event, data)

        sio.on("*", anything_else)

    async def emit(self, event: str, payload: Any) -> dict[str, Any]:
        ack = await self.client.emit(event, payload)
        _validate_ack(event, ack)
        self.acks.append((event, ack))
        return ack  # type: ignore[no-any-return]

    def received(self) -> dict[str, list[Any]]:
        return {name: list(items) for name, items in self.client.log.events.items() if items}


def _validate_ack(event: str, ack: Any) -> BaseModel:
    assert isinstance(ack, dict), (event, ack)
    model = CLIENT_EVENTS[event].ack if ack.get("ok") is True else ErrorAck
    return model.model_validate(ack, strict=True)


def _validate_events(received: dict[str, list[Any]]) -> None:
    for name, items in received.items():
        assert name in SERVER_EVENTS, f"the server sent {name!r}, which the contract does not declare"
        for data in items:
            SERVER_EVENTS[name].payload.model_validate(data, strict=True)


def _emitted_in_source() -> set[str]:
    """Every event name server/ emits: ``emit(svc, "name", ...)`` and ``sio.emit("name", ...)``."""
    pattern = re.compile(r"""(?:\bemit\(\s*(?:self\.)?svc,\s*|\bsio\.emit\(\s*)"([^"]+)\"""")
    names: set[str] = set()
    for path in (REPO_ROOT / "server").rglob("*.py"):
        names |= set(pattern.findall(path.read_text()))
    return names


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    """What ``ref`` points at, following ``$ref`` objects on the way."""
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        assert part in node, f"dangling $ref {ref}"
        node = node[part]
        while isinstance(node, dict) and set(node) == {"$ref"}:
            node = _resolve(doc, node["$ref"])
    return node


def _message_schema(doc: dict[str, Any], channel: dict[str, Any], key: str) -> dict[str, Any]:
    message = _resolve(doc, channel["messages"][key]["$ref"])
    return _resolve(doc, message["payload"]["$ref"])  # type: ignore[no-any-return]


# --- every ack and event, from a real server ------------------------------------------------


async def test_every_ack_and_event_real_clients_receive_validates_with_its_model(harness: ServerHarness) -> None:
    limits = dataclasses.replace(harness.config().limits, events_per_10s=10_000, messages_per_10s=10_000)
    node = await harness.start_node(limits=limits)
    a_user, b_user, c_user = await harness.user(node), await harness.user(node), await harness.user(node)
    alice, bob, carol = Checked(a_user), Checked(b_user), Checked(c_user)
    shared = await make_room(a_user, b_user, name="shared")
    public = await make_room(a_user, name="open")
    await alice.connect()
    await carol.connect()
    await bob.connect()
    await a_user.log.wait_for("presence", lambda e: e["user_id"] == b_user.id and e["status"] == "online")

    joined = await bob.emit("room:join", {"room_id": public})
    assert joined["ok"] and joined["room"]["joined"] is True
    await a_user.log.wait_for("member:joined", lambda e: e["user"]["id"] == b_user.id)
    first = (await alice.emit("message:send", {"room_id": public, "body": "hi", "client_id": uuid.uuid4().hex}))["message"]
    reply = await alice.emit("message:send", {"room_id": public, "body": "re", "client_id": "c-2", "reply_to": first["id"]})
    assert reply["message"]["reply_to"] == first["id"]
    await alice.emit("message:edit", {"id": first["id"], "body": "hi, edited"})
    reacted = await bob.emit("message:react", {"id": first["id"], "emoji": "👍🏽", "on": True})
    assert reacted["mine"] == ["👍🏽"] and reacted["message"]["reactions"][0]["user_ids"] == [b_user.id]
    await a_user.log.wait_for("message:updated", lambda m: m["reactions"])
    await alice.emit("message:delete", {"id": reply["message"]["id"]})
    await b_user.log.wait_count("message:updated", 3)
    await bob.emit("typing", {"room_id": public, "typing": True})
    await a_user.log.wait_for("typing")
    page = await bob.emit("history", {"room_id": public, "limit": 1, "before_seq": 2})
    assert [m["seq"] for m in page["messages"]] == [1] and page["has_more"] is False
    await bob.emit("history", {"room_id": public})
    synced = await bob.emit("sync", {"cursors": {str(public): 2, "99999999": 0}, "changed_since": first["created_at"]})
    assert synced["rooms"]["99999999"]["error"]["code"] == "not_found" and synced["rooms"][str(public)]["changed"]
    assert (await bob.emit("read", {"room_id": public, "seq": 2}))["last_read_seq"] == 2
    await a_user.log.wait_for("read:updated", lambda e: e["user_id"] == b_user.id)  # a small room: receipts
    # a mention: the mentioned member gets mention on their user channel
    await alice.emit("message:send", {"room_id": shared, "body": f"@{b_user.user['username']} look",
                                      "client_id": uuid.uuid4().hex})
    await b_user.log.wait_for("mention")
    await bob.emit("auth", {"token": b_user.tokens["access_token"]})
    # room:added to carol (an invite, and a new direct conversation), member:joined to the room
    await a_user.call("POST", f"/api/v1/rooms/{shared}/members", {"user_id": c_user.id}, expect=204)
    await a_user.call("POST", "/api/v1/dms", {"user_id": c_user.id}, expect=201)
    await c_user.log.wait_count("room:added", 2)
    await bob.emit("room:leave", {"room_id": public})
    await a_user.log.wait_for("member:left")
    # a streamed assistant reply
    await alice.emit("message:send", {"room_id": shared, "body": "@assistant how do I create a room?", "client_id": "c-3"})
    await a_user.log.wait_for("message", lambda m: m["author_kind"] == "assistant", timeout=15)
    # room management: room:updated to the room, member:removed to the removed, room:deleted
    await a_user.call("PATCH", f"/api/v1/rooms/{shared}", {"name": "renamed", "topic": "t"}, expect=200)
    await b_user.log.wait_for("room:updated")
    await a_user.call("DELETE", f"/api/v1/rooms/{shared}/members/{c_user.id}", expect=204)
    await c_user.log.wait_for("member:removed")
    scratch = await make_room(a_user, b_user, name="scratch")
    await a_user.call("DELETE", f"/api/v1/rooms/{scratch}", expect=204)
    await b_user.log.wait_for("room:deleted")
    # every error code a client can provoke here comes in the one error ack shape
    for event, payload in (("room:join", {"room_id": 99999999}), ("message:edit", {"id": first["id"], "body": " "}),
                           ("message:send", {"room_id": public, "body": "x" * (limits.max_body_chars + 1),
                                             "client_id": "c-4"}),
                           ("message:delete", {"id": first["id"]}), ("auth", {"token": "nonsense"}),
                           ("history", {"room_id": public, "limit": limits.history_page_max + 1})):
        ack = await bob.emit(event, payload)
        assert ack["ok"] is False, (event, ack)
    # the socket's end: session:ended, then the server's disconnect
    await b_user.call("POST", "/api/v1/auth/logout-all", expect=204)
    await b_user.log.wait_for("session:ended", timeout=10)
    await bob.client.disconnect()
    await a_user.log.wait_for("presence", lambda e: e["user_id"] == b_user.id and e["status"] == "offline")

    assert {event for event, _ in alice.acks + bob.acks} == set(CLIENT_EVENTS)
    received: dict[str, list[Any]] = {}
    for c in (alice, bob, carol):
        for name, items in c.received().items():
            received.setdefault(name, []).extend(items)
    _validate_events(received)
    # test_whatsapp_events_staff_receive_…
    whatsapp_only = {"conversation:updated", "wa:status", "note:added", "conversation:event", "conversation:handover",
                     "conversation:hidden", "queue:updated", "queue:deleted", "contact:updated", "label:updated", "label:deleted",
                     "campaign:progress"}
    whatsapp_only.add("wa:session")  # test_wa_sessions.py validates it with its model
    assert set(received) == set(SERVER_EVENTS) - whatsapp_only


@pytest.fixture
async def graph() -> AsyncIterator[GraphApiFake]:
    fake = await GraphApiFake().start()
    yield fake
    await fake.stop()


async def test_whatsapp_events_staff_receive_validate_with_their_models(harness: ServerHarness, graph: GraphApiFake) -> None:
    pn, secret = "PN900", "contract-secret"
    node = await harness.start_node(wa_graph_url=graph.base_url)
    admin = await harness.user(node, role="admin")
    staff_user = await harness.user(node, role="staff")
    await admin.call("POST", "/api/v1/admin/wa/accounts", {
        "phone_number_id": pn, "display_phone": "+1 555 000 2222", "access_token": "EAAG-token",
        "app_secret": secret, "verify_token": "v"}, expect=201)
    staff = Checked(staff_user)
    await staff.connect()

    async def post(payload: dict[str, Any]) -> None:
        raw, headers = signed_post(secret, payload)
        async with harness.http.post(node.base_url + "/webhooks/whatsapp", data=raw, headers=headers) as r:
            assert r.status == 200, await r.text()

    await post(make_text_webhook(pn, "4917000000101", "Ann", "wamid.C1", "how do I create a room?"))
    sent = await staff_user.log.wait_for("wa:status", lambda e: e["status"] == "sent", timeout=15)
    await post(make_status_webhook(pn, sent["wamid"], "delivered"))
    await staff_user.log.wait_for("wa:status", lambda e: e["status"] == "delivered", timeout=10)
    graph.fail_next(400, 131026)  # undeliverable: a final failure, with its error
    await post(make_text_webhook(pn, "4917000000102", "Bo", "wamid.C2", "how do I create a room?"))
    await staff_user.log.wait_for("wa:status", lambda e: e["status"] == "failed", timeout=15)
    conv = await staff_user.log.wait_for("conversation:updated", lambda c: c["last_message"] is not None)
    assert conv["contact"]["wa_id"].startswith("4917")
    await staff_user.call("POST", f"/api/v1/wa/conversations/{conv['room_id']}/notes", {"body": "VIP"}, expect=201)
    await staff_user.log.wait_for("note:added", timeout=10)
    # the desk: a queue with the staff member in it, a transfer to them, the queue deleted
    _, body = await admin.call("POST", "/api/v1/queues", {"name": "Support", "members": [{"user_id": staff_user.id}]},
                               expect=201)
    queue_id = body["queue"]["id"]
    await staff_user.log.wait_for("queue:updated", timeout=10)
    await admin.call("POST", f"/api/v1/wa/conversations/{conv['room_id']}/transfer",
                     {"queue_id": queue_id, "user_id": staff_user.id, "note": "yours"}, expect=200)
    await staff_user.log.wait_for("conversation:handover", timeout=10)
    await staff_user.log.wait_for("conversation:event", timeout=10)
    # transferred on to a queue they are not in: it leaves their inbox; that queue deleted brings it back
    _, other = await admin.call("POST", "/api/v1/queues", {"name": "Sales"}, expect=201)
    await admin.call("POST", f"/api/v1/wa/conversations/{conv['room_id']}/transfer",
                     {"queue_id": other["queue"]["id"]}, expect=200)
    await staff_user.log.wait_for("conversation:hidden", lambda e: e["room_id"] == conv["room_id"], timeout=10)
    await admin.call("DELETE", f"/api/v1/queues/{other['queue']['id']}", expect=204)
    await admin.call("DELETE", f"/api/v1/queues/{queue_id}", expect=204)
    await staff_user.log.wait_for("queue:deleted", timeout=10)

    _, body = await admin.call("POST", "/api/v1/labels", {"name": "VIP", "color": "#1f883d"}, expect=201)
    label_id = body["label"]["id"]
    await staff_user.call("PUT", f"/api/v1/wa/conversations/{conv['room_id']}/labels/{label_id}", expect=200)
    await staff_user.log.wait_for("conversation:updated", lambda c: c["labels"], timeout=10)
    await staff_user.call("PATCH", f"/api/v1/contacts/{conv['contact']['id']}", {
        "name": "Ann Lee", "email": "ann@example.com", "attributes": {"plan": "pro", "seats": 3, "vip": True}},
        expect=200)
    await staff_user.log.wait_for("contact:updated", timeout=10)
    await admin.call("DELETE", f"/api/v1/labels/{label_id}", expect=204)
    await staff_user.log.wait_for("label:deleted", timeout=10)

    # a campaign's progress reaches supervisors and admins
    boss = Checked(admin)
    await boss.connect()
    graph.set_templates("555", [{"name": "hello", "language": "en", "status": "APPROVED", "category": "UTILITY",
                                 "components": [{"type": "BODY", "text": "Hello {{1}}"}]}])
    _, accounts = await admin.call("GET", "/api/v1/admin/wa/accounts", expect=200)
    account_id = accounts["accounts"][0]["id"]
    await admin.call("POST", f"/api/v1/wa/accounts/{account_id}/templates/sync", {"waba_id": "555"}, expect=200)
    _, created = await admin.call("POST", "/api/v1/campaigns", {"account_id": account_id, "name": "c", "template": "hello",
                                                                "language": "en", "variables": ["name"]}, expect=201)
    cid = created["campaign"]["id"]
    await admin.call("PUT", f"/api/v1/campaigns/{cid}/recipients", data=b"phone,name\n+4917000000103,Cy\n",
                     headers={"Content-Type": "text/csv"}, expect=200)
    await admin.call("POST", f"/api/v1/campaigns/{cid}/start", expect=200)
    await admin.log.wait_for("campaign:progress", lambda e: e["status"] == "completed", timeout=15)

    received = staff.received()
    _validate_events(received)
    assert {"conversation:updated", "wa:status", "note:added", "queue:updated", "conversation:handover",
            "conversation:event", "conversation:hidden", "queue:deleted", "contact:updated", "label:updated", "label:deleted"} <= set(received)
    assert "campaign:progress" not in received  # staff who are not supervisors do not get it
    _validate_events(boss.received())


# --- malformed payloads ---------------------------------------------------------------------

INVALID_WITH_FIELD: list[tuple[str, dict[str, Any], str]] = [
    ("room:join", {}, "room_id"),
    ("room:join", {"room_id": 1, "extra": True}, "extra"),
    ("room:leave", {"room_id": True}, "room_id"),
    ("message:send", {"room_id": 1, "body": "x"}, "client_id"),
    ("message:send", {"room_id": 1, "body": "x", "client_id": "c" * 65}, "client_id"),
    ("message:send", {"room_id": 1, "body": "x", "client_id": "c", "reply_to": 0}, "reply_to"),
    ("message:send", {"room_id": 1, "body": "x", "client_id": "c", "attachment": "a"}, "attachment"),
    ("message:edit", {"id": "1", "body": "x"}, "id"),
    ("message:delete", {"id": 1.0}, "id"),
    ("typing", {"room_id": 1, "typing": 1}, "typing"),
    ("history", {"room_id": 1, "before_seq": 0}, "before_seq"),
    ("history", {"room_id": 1, "limit": "5"}, "limit"),
    ("sync", {"cursors": {"x": 1}}, "cursors"),
    ("sync", {"cursors": {"1": 0}, "changed_since": "2026-01-01T00:00:00"}, "changed_since"),
    ("sync", {"cursors": {"1": 0}, "changed_since": 1767225600}, "changed_since"),
    ("read", {"room_id": 1, "seq": -1}, "seq"),
    ("message:react", {"id": 1, "emoji": "abc", "on": True}, "emoji"),
    ("message:react", {"id": 1, "emoji": "👍", "on": 1}, "on"),
    ("auth", {}, "token"),
    ("auth", {"token": 42}, "token"),
    # beyond PostgreSQL's bigint: refused before any query (it used to be a 500 "internal")
    ("room:join", {"room_id": 2**63}, "room_id"),
    ("message:edit", {"id": 2**64 - 1, "body": "x"}, "id"),
    ("history", {"room_id": 1, "before_seq": 2**63 + 5}, "before_seq"),
    ("sync", {"cursors": {"9999999999999999999": 0}}, "cursors"),
    ("read", {"room_id": 1, "seq": 2**63}, "seq"),
]


async def test_malformed_payloads_are_invalid_naming_the_field(harness: ServerHarness) -> None:
    limits = dataclasses.replace(harness.config().limits, events_per_10s=10_000)
    node = await harness.start_node(limits=limits)
    alice = Checked(await harness.user(node))
    await alice.connect()
    assert {event for event, _, _ in INVALID_WITH_FIELD} == set(CLIENT_EVENTS)
    for event, payload, field in INVALID_WITH_FIELD:
        ack = await alice.emit(event, payload)
        assert ack["ok"] is False and ack["error"]["code"] == "invalid", (event, payload, ack)
        assert ack["error"]["details"] == {"field": field}, (event, payload, ack)
        assert field in ack["error"]["message"], ack
    assert alice.client.sio is not None and alice.client.sio.connected


# --- the published document -----------------------------------------------------------------


async def test_the_served_asyncapi_document_has_exactly_the_events_the_server_handles_and_emits(
        harness: ServerHarness) -> None:
    limits = dataclasses.replace(harness.config().limits, max_body_chars=1234)
    node = await harness.start_node(limits=limits)
    async with harness.http.get(node.base_url + "/api/v1/asyncapi.json") as r:
        assert r.status == 200 and r.content_type == "application/json"
        doc = await r.json()
    assert doc["asyncapi"].startswith("3.") and doc["info"]["title"] and doc["info"]["version"]
    assert doc["channels"] and doc["operations"] and doc["components"]["schemas"]
    for cid, channel in doc["channels"].items():
        assert re.fullmatch(r"[A-Za-z0-9._-]+", cid) and channel["address"] and channel["messages"], cid
        for key, message_ref in channel["messages"].items():
            message = _resolve(doc, message_ref["$ref"])
            assert message["name"] and message["payload"], (cid, key)
            schema = _resolve(doc, message["payload"]["$ref"])
            assert schema["type"] == "object" and "properties" in schema, (cid, key)
    received, sent = set(), set()
    for op in doc["operations"].values():
        channel = _resolve(doc, op["channel"]["$ref"])
        assert op["action"] in ("send", "receive") and op["messages"]
        for m in op["messages"]:
            _resolve(doc, m["$ref"])
        if op["action"] == "receive":
            received.add(channel["address"])
            payloads = {_resolve(doc, _resolve(doc, m["$ref"])["payload"]["$ref"])["title"] for m in op["reply"]["messages"]}
            assert "ErrorAck" in payloads and len(payloads) == 2, op  # the success shape and the error ack
        else:
            sent.add(channel["address"])
    app = node.app
    assert app is not None
    registered = set(app[SIO].handlers["/"]) - {"connect", "disconnect"}
    assert received == registered
    assert sent == _emitted_in_source()
    # configured limits are the served server's own
    send_schema = doc["components"]["schemas"]["MessageSend"]
    assert send_schema["properties"]["body"]["maxLength"] == 1234
    history = doc["components"]["schemas"]["HistoryQuery"]["properties"]["limit"]
    assert (history["minimum"], history["maximum"]) == (1, limits.history_page_max)
    assert "x-config-limit" not in str(doc)


# --- docs/PROTOCOL.md against the document --------------------------------------------------


def _cells(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def _fields(text: str) -> dict[str, bool] | None:
    """``{a, b?, c: {...}}`` -> {"a": True, "b": False, "c": True} (name -> required), or None
    when the cell describes the payload in words."""
    start = text.find("{")
    if start < 0:
        return None
    depth, items, current = 0, [], ""
    for ch in text[start:]:
        if ch in "{(":
            depth += 1
            if depth == 1:
                continue
        elif ch in "})":
            depth -= 1
            if depth == 0:
                break
        if ch == "," and depth == 1:
            items.append(current)
            current = ""
        else:
            current += ch
    items.append(current)
    out: dict[str, bool] = {}
    for item in items:
        m = re.match(r"\s*([A-Za-z_]+)(\?)?", item)
        if m:
            out[m.group(1)] = m.group(2) is None
    return out


def _protocol_tables() -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    """PROTOCOL.md's client tables (event -> (payload, ack)) and server table (event -> payload)."""
    client: dict[str, tuple[str, str]] = {}
    server: dict[str, str] = {}
    header: list[str] = []
    for line in (REPO_ROOT / "docs" / "PROTOCOL.md").read_text().splitlines():
        if not line.startswith("|"):
            header = []
            continue
        cells = _cells(line)
        if not header:
            header = cells
            continue
        if set("".join(cells)) <= set("-: "):
            continue
        names = re.findall(r"`([^`]+)`", cells[0])
        if header == ["event", "payload", "ack"]:
            client.update({n: (cells[1], cells[2]) for n in names})
        elif header == ["event", "payload"]:
            server.update({n: cells[1] for n in names})
    return client, server


def _schema_fields(doc: dict[str, Any], cid: str, key: str) -> dict[str, bool]:
    schema = _message_schema(doc, doc["channels"][cid], key)
    required = set(schema.get("required", []))
    return {name: name in required for name in schema["properties"] if name != "ok"}


def test_protocol_md_event_tables_list_the_documents_events_and_fields() -> None:
    doc = build_asyncapi(max_body_chars=4000, history_page_max=100)
    client, server = _protocol_tables()
    ops = doc["operations"].values()
    received = {_resolve(doc, op["channel"]["$ref"])["address"] for op in ops if op["action"] == "receive"}
    sent = {_resolve(doc, op["channel"]["$ref"])["address"] for op in ops if op["action"] == "send"}
    assert set(client) == received
    assert set(server) == sent
    for event, (payload, ack) in client.items():
        cid = event.replace(":", ".")
        assert _fields(payload) == _schema_fields(doc, cid, f"{cid}.request"), event
        assert _fields(ack) == _schema_fields(doc, cid, f"{cid}.ack"), event
    for event, payload in server.items():
        listed = _fields(payload)
        if listed is not None:  # rows that name a record in words ("the message record") are skipped
            cid = event.replace(":", ".")
            assert listed == _schema_fields(doc, cid, f"{cid}.event"), event
