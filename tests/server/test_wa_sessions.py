"""WhatsApp Web (linked-device) sessions on real PostgreSQL and Redis, with the real neonize
library: its client started with no network (no machine here reaches WhatsApp), and its own
event and protobuf types fed through neonize's own dispatcher (the function Go calls), so what
a phone would send is handled exactly as it would be. Needs the whatsapp-web extra."""

from __future__ import annotations

import asyncio
import ctypes
import signal
import time
from typing import Any

import asyncpg
from neonize.events import EVENT_TO_INT
from neonize.proto.Neonize_pb2 import (
    JID,
    Connected,
    Disconnected,
    LoggedOut,
    MessageInfo,
    MessageSource,
    Receipt,
)
from neonize.proto.Neonize_pb2 import Message as MessageEv
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message as E2EMessage

from chatcore.protocol import ConversationView, WaSessionEvent, WaStatus
from server.actions.wa_sessions import WaSessionService, retry_delay
from server.context import SERVICES
from server.storage import wa_sessions as sdb
from tests.support import ChatNode, Client, ServerHarness
from whatsapp_bridge.linked_device import QR_CODES_MAX

CONTACT = "4917012345678"
FAST = {"wa_session_retry_base_s": 0.1, "wa_session_lease_s": 3.0}


def service(node: ChatNode) -> WaSessionService:
    assert node.app is not None
    svc = node.app[SERVICES].extras["wa_sessions"]
    assert isinstance(svc, WaSessionService)
    return svc


def complete(msg: Any) -> Any:
    """Fill the proto2 required fields left unset with their defaults, as Go's encoder does."""
    for field in msg.DESCRIPTOR.fields:
        if field.message_type is not None and not field.is_repeated:
            if field.is_required or msg.HasField(field.name):
                getattr(msg, field.name).SetInParent()
                complete(getattr(msg, field.name))
        elif field.is_required and not msg.HasField(field.name):
            setattr(msg, field.name, field.default_value)
    return msg


async def feed(node: ChatNode, session_id: int, event: Any) -> None:
    """Hand ``event`` to neonize's dispatcher from another thread, serialized, as Go does."""
    client = service(node).held[session_id].client.neonize_client
    data = complete(event).SerializeToString()
    buf = ctypes.create_string_buffer(data, len(data))
    await asyncio.to_thread(client.event.execute, 0, ctypes.addressof(buf), len(data), EVENT_TO_INT[type(event)])


async def feed_qr(node: ChatNode, session_id: int, code: str) -> None:
    """A QR code as Go hands it over: a C string to neonize's QR callback, from another thread."""
    client = service(node).held[session_id].client.neonize_client
    buf = ctypes.create_string_buffer(code.encode())
    await asyncio.to_thread(client._NewAClient__onQr, 0, ctypes.addressof(buf))


def text_event(message_id: str, body: str, *, sender: str = CONTACT, from_me: bool = False) -> MessageEv:
    source = MessageSource(Chat=JID(User=sender, Server="s.whatsapp.net"),
                           Sender=JID(User=sender, Server="s.whatsapp.net"), IsFromMe=from_me, IsGroup=False)
    info = MessageInfo(MessageSource=source, ID=message_id, Pushname="Ann", Timestamp=int(time.time()), Type="text")
    return MessageEv(Info=info, Message=E2EMessage(conversation=body))


def receipt_event(kind: int, *message_ids: str) -> Receipt:
    source = MessageSource(Chat=JID(User=CONTACT, Server="s.whatsapp.net"),
                           Sender=JID(User=CONTACT, Server="s.whatsapp.net"), IsFromMe=False, IsGroup=False)
    return Receipt(MessageSource=source, MessageIDs=list(message_ids), Timestamp=int(time.time()), Type=kind)


async def running_session(harness: ServerHarness, **config: Any) -> tuple[ChatNode, Client, Client, int]:
    node = await harness.start_node(**{**FAST, **config})
    admin = await harness.user(node, role="admin")
    staff = await harness.user(node, role="staff")
    await admin.connect()
    await staff.connect()
    _, body = await admin.call("POST", "/api/v1/whatsapp/sessions", {"name": "front desk"}, expect=201)
    sid = body["session"]["id"]
    await admin.log.wait_for("wa:session", lambda e: e["session_id"] == sid and e["kind"] == "disconnected", 30)
    return node, admin, staff, sid


async def test_a_session_with_no_network_reports_disconnected_with_a_reason_and_retries_while_http_answers(
        harness: ServerHarness) -> None:
    node, admin, _, sid = await running_session(harness)
    # the server keeps answering while the library fails and retries, and the retries go on
    started = time.monotonic()
    answered = 0
    while len([e for e in admin.log.all("wa:session") if e["kind"] == "disconnected"]) < 3:
        async with harness.http.get(node.base_url + "/healthz") as r:
            assert r.status == 200
        answered += 1
        assert time.monotonic() - started < 30, "no retries seen within 30 s"
        await asyncio.sleep(0.05)
    assert answered >= 3
    events = [e for e in admin.log.all("wa:session") if e["kind"] == "disconnected"]
    assert all(e["reason"] and "dial" in e["reason"] for e in events) and events[0]["status"] == "disconnected"
    _, body = await admin.call("GET", f"/api/v1/whatsapp/sessions/{sid}", expect=200)
    session = body["session"]
    assert session["status"] in ("disconnected", "connecting") and "dial" in session["last_error"]
    assert node.app is not None and session["node"] == node.app[SERVICES].node_id
    # a down session degrades readiness, never fails it (between its retries it is "connecting"
    # for a moment, which is not down: asked again until a read lands between two retries)
    for _ in range(50):
        async with harness.http.get(node.base_url + "/readyz") as r:
            ready = await r.json()
            assert r.status == 200 and ready["status"] in ("ready", "degraded")
        if ready["status"] == "degraded":
            break
        await asyncio.sleep(0.1)
    assert ready["status"] == "degraded" and ready["wa_sessions"]["down"] == 1
    async with harness.http.get(node.base_url + "/metrics") as r:
        text = await r.text()
    assert 'chat_wa_sessions{state="' in text


async def test_a_contact_text_becomes_a_linked_conversation_once_and_the_reply_waits_for_the_link(
        harness: ServerHarness) -> None:
    node, _, staff, sid = await running_session(harness)
    for _ in range(2):  # the library delivering the same message twice creates nothing twice
        await feed(node, sid, text_event("3EB0AA01", "how do I create a room?"))
    conv = await staff.log.wait_for("conversation:updated", lambda c: c["channel"] == "linked_device", 10)
    assert (conv["contact"]["wa_id"], conv["contact"]["name"]) == (CONTACT, "Ann") and conv["session_id"] == sid
    assert conv["contact"]["id"] is not None  # the person record (contacts) exists for a linked sender too
    assert conv["account_id"] is None and conv["window_open"] is True
    # the assistant answers through the same outbox; the session is not linked, so the reply
    # stays queued (a passing failure) with the reason, and nothing is lost
    status = await staff.log.wait_for("wa:status", lambda e: e["room_id"] == conv["room_id"], 15)
    assert status["status"] == "queued" and status["error"]["state"] == "session_disconnected"
    ConversationView.model_validate(conv)
    WaStatus.model_validate(status)
    _, hist = await staff.call("GET", f"/api/v1/rooms/{conv['room_id']}/messages", expect=200)
    assert [m["author_kind"] for m in hist["messages"]] == ["contact", "assistant"]
    assert hist["messages"][0]["body"] == "how do I create a room?"
    # a message typed on the phone is not a contact writing to us: it opens no conversation of
    # its own (it shows in the contact's, test_wa_phone_sent.py)
    await feed(node, sid, text_event("3EB0AA02", "typed on the phone", from_me=True))
    _, listed = await staff.call("GET", "/api/v1/wa/conversations", expect=200)
    assert [c["channel"] for c in listed["conversations"]] == ["linked_device"]


async def test_receipts_move_the_linked_statuses_forward_only(harness: ServerHarness, database_url: str) -> None:
    node, _, staff, sid = await running_session(harness)
    await feed(node, sid, text_event("3EB0BB01", "hello there, a question"))
    conv = await staff.log.wait_for("conversation:updated", lambda c: c["channel"] == "linked_device", 10)
    room_id = conv["room_id"]
    conn = await asyncpg.connect(database_url)
    try:
        msg_id = await conn.fetchval("SELECT id FROM messages WHERE room_id = $1 ORDER BY seq LIMIT 1", room_id)
        await conn.execute("INSERT INTO wa_messages (message_id, room_id, wamid, direction, status)"
                           " VALUES ($1, $2, $3, 'out', 'sent')", msg_id, room_id, f"ld:{sid}:OUT1")
        await feed(node, sid, receipt_event(4, "OUT1"))  # READ
        read = await staff.log.wait_for("wa:status", lambda e: e.get("wamid") == f"ld:{sid}:OUT1", 10)
        assert read["status"] == "read" and read["message_id"] == msg_id
        await feed(node, sid, receipt_event(1, "OUT1"))  # a late DELIVERED
        await feed(node, sid, receipt_event(2, "OUT1"))  # a SENDER receipt: says nothing
        await asyncio.sleep(0.5)
        assert await conn.fetchval("SELECT status FROM wa_messages WHERE wamid = $1", f"ld:{sid}:OUT1") == "read"
        assert len([e for e in staff.log.all("wa:status") if e.get("wamid") == f"ld:{sid}:OUT1"]) == 1
    finally:
        await conn.close()


async def test_connect_drop_and_phone_logout_are_states_admins_see_and_conversations_stay(
        harness: ServerHarness) -> None:
    node, admin, staff, sid = await running_session(harness)
    await feed(node, sid, text_event("3EB0CC01", "hi, I need some help"))
    conv = await staff.log.wait_for("conversation:updated", lambda c: c["channel"] == "linked_device", 10)
    await feed(node, sid, Connected(status=True))
    await admin.log.wait_for("wa:session", lambda e: e["kind"] == "connected", 10)
    await feed(node, sid, Disconnected(status=True))
    dropped = await admin.log.wait_for("wa:session", lambda e: e["kind"] == "disconnected" and
                                       e["reason"] == "connection lost", 10)
    assert dropped["status"] == "disconnected"
    await feed(node, sid, LoggedOut(OnConnect=False, Reason=2))
    out = await admin.log.wait_for("wa:session", lambda e: e["kind"] == "logged_out", 10)
    assert out["status"] == "logged_out" and out["reason"] == "logged_out"
    for event in admin.log.all("wa:session"):  # every one of them is what the protocol says
        WaSessionEvent.model_validate(event)
    _, body = await admin.call("GET", f"/api/v1/whatsapp/sessions/{sid}", expect=200)
    assert body["session"]["status"] == "logged_out" and body["session"]["last_error"] == "logged_out"
    # the conversation stays; a staff reply fails at once with a clear state
    await staff.call("GET", f"/api/v1/wa/conversations/{conv['room_id']}", expect=200)
    await staff.call("POST", f"/api/v1/wa/conversations/{conv['room_id']}/takeover", expect=200)
    assert (await staff.emit("room:join", {"room_id": conv["room_id"]}))["ok"]
    await staff.send(conv["room_id"], "Hello Ann")
    failed = await staff.log.wait_for("wa:status", lambda e: e["status"] == "failed", 10)
    assert failed["error"]["state"] == "logged_out"
    # no node runs it any more, and the lease is free
    await asyncio.sleep(0.5)
    assert sid not in service(node).held
    async with harness.http.get(node.base_url + "/readyz") as r:
        assert r.status == 200 and (await r.json())["status"] == "degraded"


async def test_qr_codes_reach_admins_live_and_an_unscanned_session_ends_as_qr_expired(harness: ServerHarness) -> None:
    node, admin, _, sid = await running_session(harness)
    for n in range(QR_CODES_MAX + 1):
        await feed_qr(node, sid, f"2@code-{n},noise,identity,adv")
    shown = await admin.log.wait_count("wa:session", 1, 10)
    expired = await admin.log.wait_for("wa:session", lambda e: e["kind"] == "qr_expired", 10)
    assert expired["status"] == "qr_expired" and expired["reason"] == f"not scanned after {QR_CODES_MAX} codes"
    shown = [e for e in admin.log.all("wa:session") if e["kind"] == "qr"]
    assert [e["qr"] for e in shown] == [f"2@code-{n},noise,identity,adv" for n in range(QR_CODES_MAX)]
    assert shown[0]["qr_svg"].startswith("<svg") and shown[0]["status"] == "qr"
    for event in admin.log.all("wa:session"):
        WaSessionEvent.model_validate(event)
    await _wait(lambda: sid not in service(node).held, 10, "the expired session to stop")
    _, body = await admin.call("GET", f"/api/v1/whatsapp/sessions/{sid}", expect=200)
    assert body["session"]["status"] == "qr_expired"
    # an admin starts it again: a node claims it and shows new codes
    await admin.call("POST", f"/api/v1/whatsapp/sessions/{sid}/start", expect=200)
    await _wait(lambda: sid in service(node).held, 15, "the session to run again")


async def test_without_a_cloud_api_number_login_codes_go_out_through_a_linked_session(harness: ServerHarness) -> None:
    # a long retry wait: the session stays as the fed events leave it
    node, admin, _, sid = await running_session(harness, wa_session_retry_base_s=60.0)
    async with harness.http.post(node.base_url + "/api/v1/auth/otp/request", json={"phone": "+4915112345678"}) as r:
        before = await r.json()
    assert r.status == 503 and "not configured" in before["error"]["message"]
    await feed(node, sid, Connected(status=True))
    await admin.log.wait_for("wa:session", lambda e: e["kind"] == "connected", 10)
    # the code goes to the linked session's channel; the library is not really linked here, so
    # the send itself fails, with the linked channel's reason
    async with harness.http.post(node.base_url + "/api/v1/auth/otp/request", json={"phone": "+4915112345678"}) as r:
        after = await r.json()
    assert r.status == 503 and "session_disconnected" in after["error"]["message"]


async def test_session_routes_check_their_input_and_audit(harness: ServerHarness) -> None:
    _, admin, staff, sid = await running_session(harness)
    for bad in ("12", "+0 123", "not a number", "+49 151 1234 5678 9999 99", 4915112345678):
        await admin.call("POST", f"/api/v1/whatsapp/sessions/{sid}/pairing-code", {"phone": bad}, expect=400)
    # a good number while WhatsApp cannot be reached: a clear 409 saying why, no crash
    status, body = await admin.call("POST", f"/api/v1/whatsapp/sessions/{sid}/pairing-code",
                                    {"phone": "+49 151 12345678"})
    assert status == 409 and body["error"]["code"] == "conflict" and "pairing code" in body["error"]["message"]
    await admin.call("POST", "/api/v1/whatsapp/sessions", {"name": "   "}, expect=400)
    await admin.call("POST", "/api/v1/whatsapp/sessions", {}, expect=400)
    await staff.call("POST", "/api/v1/whatsapp/sessions", {"name": "x"}, expect=403)
    await staff.call("GET", "/api/v1/whatsapp/sessions", expect=403)
    await admin.call("GET", "/api/v1/whatsapp/sessions/999999", expect=404)
    await admin.call("POST", f"/api/v1/whatsapp/sessions/{sid}/start", expect=409)
    _, body = await admin.call("POST", f"/api/v1/whatsapp/sessions/{sid}/logout", expect=200)
    assert body["session"]["status"] == "logged_out"
    await admin.call("POST", f"/api/v1/whatsapp/sessions/{sid}/start", expect=200)
    await admin.call("DELETE", f"/api/v1/whatsapp/sessions/{sid}", expect=204)
    await admin.call("DELETE", f"/api/v1/whatsapp/sessions/{sid}", expect=404)
    _, audit = await admin.call("GET", "/api/v1/audit", expect=200)
    actions = {e["action"] for e in audit["entries"]}
    assert {"wa_session.create", "wa_session.logout", "wa_session.start", "wa_session.delete"} <= actions


async def test_the_session_store_lives_in_postgresql_and_a_restarted_node_resumes_it(
        harness: ServerHarness, database_url: str) -> None:
    node, _, _, sid = await running_session(harness)
    schema = sdb.store_schema(sid)
    conn = await asyncpg.connect(database_url)
    try:
        # whatsmeow made its tables in the session's schema of our database
        tables = {r["table_name"] for r in await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", schema)}
        assert {"whatsmeow_device", "whatsmeow_identity_keys", "whatsmeow_sessions"} <= tables
        await conn.execute(f"INSERT INTO {schema}.whatsmeow_lid_map (lid, pn) VALUES ('1', 'kept')")
        await harness.stop_node(node)
        node2 = await harness.start_node(**FAST)
        await _wait(lambda: sid in service(node2).held, 15, "the new node to run the session")
        assert await conn.fetchval(f"SELECT pn FROM {schema}.whatsmeow_lid_map") == "kept"
        admin = await harness.user(node2, role="admin")
        await admin.call("DELETE", f"/api/v1/whatsapp/sessions/{sid}", expect=204)
        assert await conn.fetchval("SELECT to_regnamespace($1)", schema) is None  # the keys are gone
    finally:
        await conn.close()


async def test_two_lease_holders_one_wins_and_the_stale_token_writes_nothing(database_url: str) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    assert pool is not None
    try:
        session = await sdb.insert(pool, "race")
        a, b = await asyncio.gather(sdb.claim(pool, "node-a", 0.5, [], 10), sdb.claim(pool, "node-b", 0.5, [], 10))
        assert len(a) + len(b) == 1  # exactly one node runs it
        first = (a or b)[0]
        loser = "node-b" if a else "node-a"
        assert await sdb.claim(pool, loser, 0.5, [], 10) == []  # held: nobody else gets it
        await asyncio.sleep(0.7)  # the holder paused past its lease
        [taken] = await sdb.claim(pool, loser, 30, [], 10)
        assert taken.lease_token == first.lease_token + 1 and taken.lease_node == loser
        # the old holder's renewal and state writes are fenced off
        assert await sdb.renew(pool, session.id, first.lease_node or "", first.lease_token, 30) is None
        assert await sdb.set_state(pool, session.id, first.lease_token, "connected") is None
        assert (await sdb.set_state(pool, session.id, taken.lease_token, "qr")) is not None
        assert (await sdb.get(pool, session.id)).status == "qr"  # type: ignore[union-attr]
    finally:
        await pool.close()


async def test_a_killed_nodes_session_is_taken_over_by_another_node(harness: ServerHarness) -> None:
    a = harness.spawn_node(WA_SESSION_LEASE_S="2", WA_SESSION_RETRY_BASE_S="0.1")
    admin = await harness.user(a, role="admin")
    _, body = await admin.call("POST", "/api/v1/whatsapp/sessions", {"name": "takeover"}, expect=201)
    sid = body["session"]["id"]

    async def holder() -> tuple[str | None, str | None]:
        _, b = await admin.call("GET", f"/api/v1/whatsapp/sessions/{sid}", expect=200)
        return b["session"]["node"], b["session"]["last_error"]

    await _wait_async(lambda: holder(), lambda h: h[0] is not None and h[1] is not None, 30, "node a to run it")
    first_node = (await holder())[0]
    b_node = await harness.start_node(wa_session_lease_s=2.0, wa_session_retry_base_s=0.1)
    assert a.process is not None
    a.process.send_signal(signal.SIGKILL)  # no shutdown hook releases the lease: only its expiry
    a.process.wait(10)
    await _wait(lambda: sid in service(b_node).held, 20, "node b to take the session over")
    admin_b = await harness.user(b_node, role="admin")
    _, body = await admin_b.call("GET", f"/api/v1/whatsapp/sessions/{sid}", expect=200)
    assert body["session"]["node"] == b_node.app[SERVICES].node_id != first_node  # type: ignore[index]


def test_reconnect_backoff_doubles_up_to_its_cap_with_jitter() -> None:
    assert [retry_delay(n, 2.0, rand=0.0) for n in range(4)] == [1.0, 2.0, 4.0, 8.0]
    assert retry_delay(20, 2.0, rand=1.0) == 300.0 and retry_delay(20, 2.0, rand=0.0) == 150.0


async def _wait(cond: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def _wait_async(get: Any, cond: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond(await get()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)
