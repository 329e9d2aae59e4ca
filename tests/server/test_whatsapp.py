"""WhatsApp conversations end to end: webhook -> staff live -> AI reply via the Graph API ->
takeover -> staff reply -> hand back; idempotent replays, monotonic statuses, the 24-hour
window, and login by WhatsApp code."""

from __future__ import annotations

import itertools
import re
import time
from typing import Any

import asyncpg

from tests.fakes.graph_api import GraphApiFake, make_status_webhook, make_text_webhook, signed_post
from tests.support import ChatNode, Client, ServerHarness

PN, SECRET, VERIFY = "PN100", "app-secret-xyz", "verify-me"
CONTACT = "4917012345678"


async def _setup(harness: ServerHarness, graph: GraphApiFake, **config: Any) -> tuple[ChatNode, Client, Client]:
    node = await harness.start_node(wa_graph_url=graph.base_url, **config)
    admin = await harness.user(node, role="admin")
    staff = await harness.user(node, role="staff")
    await admin.call("POST", "/api/v1/admin/wa/accounts", {
        "phone_number_id": PN, "display_phone": "+1 555 000 1111", "access_token": "EAAG-token",
        "app_secret": SECRET, "verify_token": VERIFY}, expect=201)
    await staff.connect()
    return node, admin, staff


async def _post(harness: ServerHarness, node: ChatNode, payload: dict[str, Any], secret: str = SECRET) -> tuple[int, Any]:
    raw, headers = signed_post(secret, payload)
    async with harness.http.post(node.base_url + "/webhooks/whatsapp", data=raw, headers=headers) as r:
        return r.status, await r.json()


async def test_contact_message_reaches_staff_and_gets_exactly_one_ai_reply(harness: ServerHarness, graph: GraphApiFake) -> None:
    node, _, staff = await _setup(harness, graph)
    wh = make_text_webhook(PN, CONTACT, "Ann", "wamid.IN1", "how do I create a room?")
    for _ in range(3):  # Meta retries: the same webhook three times
        status, _ = await _post(harness, node, wh)
        assert status == 200
    conv = await staff.log.wait_for("conversation:updated", timeout=10)
    assert conv["contact"] == {"id": conv["contact"]["id"], "wa_id": CONTACT, "name": "Ann", "bsuid": None}
    assert conv["mode"] == "ai" and conv["labels"] == []
    [send] = await graph.wait_for_sends(1)
    assert send.json["to"] == CONTACT and send.json["text"]["body"]
    _, body = await staff.call("GET", f"/api/v1/rooms/{conv['room_id']}/messages", expect=200)
    kinds = [m["author_kind"] for m in body["messages"]]
    assert kinds == ["contact", "assistant"]  # one inbound, one reply: replays created nothing
    status = await staff.log.wait_for("wa:status", lambda e: e["status"] == "sent", timeout=10)
    assert status["room_id"] == conv["room_id"]


async def test_takeover_silences_the_ai_and_staff_replies_go_out(harness: ServerHarness, graph: GraphApiFake) -> None:
    node, _, staff = await _setup(harness, graph)
    await _post(harness, node, make_text_webhook(PN, CONTACT, "Ann", "wamid.A1", "how do I create a room?"))
    conv = await staff.log.wait_for("conversation:updated", timeout=10)
    room_id = conv["room_id"]
    await graph.wait_for_sends(1)
    _, body = await staff.call("POST", f"/api/v1/wa/conversations/{room_id}/takeover", expect=200)
    assert body["conversation"]["mode"] == "human" and body["conversation"]["assignee"]["id"] == staff.id
    await _post(harness, node, make_text_webhook(PN, CONTACT, "Ann", "wamid.A2", "are you a bot?"))
    assert (await staff.emit("room:join", {"room_id": room_id}))["ok"]
    reply = await staff.send(room_id, "Hi Ann, a person here.")
    sends = await graph.wait_for_sends(2)
    assert sends[1].json["text"]["body"] == "Hi Ann, a person here."
    _, hist = await staff.call("GET", f"/api/v1/rooms/{room_id}/messages", expect=200)
    assert [m["author_kind"] for m in hist["messages"]] == ["contact", "assistant", "contact", "user"]
    assert hist["messages"][-1]["id"] == reply["id"]
    # hand back: the assistant answers the next message again
    _, body = await staff.call("POST", f"/api/v1/wa/conversations/{room_id}/handback", expect=200)
    assert body["conversation"]["mode"] == "ai"
    await _post(harness, node, make_text_webhook(PN, CONTACT, "Ann", "wamid.A3", "how do I edit a message?"))
    await graph.wait_for_sends(3)


async def test_statuses_are_monotonic_whatever_the_order(harness: ServerHarness, graph: GraphApiFake) -> None:
    node, _, staff = await _setup(harness, graph)
    await _post(harness, node, make_text_webhook(PN, CONTACT, "Ann", "wamid.S1", "hello, how do I create a room"))
    await graph.wait_for_sends(1)
    sent = await staff.log.wait_for("wa:status", lambda e: e["status"] == "sent", timeout=10)
    wamid_out = sent["wamid"]
    for st in ("read", "delivered", "read", "sent"):
        await _post(harness, node, make_status_webhook(PN, wamid_out, st))
    # a later event from another contact: everything before it has reached the staff socket
    await _post(harness, node, make_text_webhook(PN, "4917000000001", "Bo", "wamid.S2", "hi"))
    await staff.log.wait_for("conversation:updated", lambda c: c["contact"]["wa_id"] == "4917000000001", timeout=10)
    events = [e["status"] for e in staff.log.all("wa:status") if e.get("wamid") == wamid_out]
    assert events == ["sent", "read"]  # delivered and sent after read are ignored; read twice is once


async def test_bad_signatures_and_handshake(harness: ServerHarness, graph: GraphApiFake) -> None:
    node, _, staff = await _setup(harness, graph)
    wh = make_text_webhook(PN, CONTACT, "Ann", "wamid.B1", "hi")
    status, body = await _post(harness, node, wh, secret="wrong")
    assert status == 401 and body["error"]["code"] == "unauthorized"
    raw, headers = signed_post(SECRET, wh)
    async with harness.http.post(node.base_url + "/webhooks/whatsapp", data=raw[:-2] + b" }", headers=headers) as r:
        assert r.status == 401
    async with harness.http.post(node.base_url + "/webhooks/whatsapp", data=raw, headers={"Content-Type": "application/json"}) as r:
        assert r.status == 401
    q = {"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "12345"}
    async with harness.http.get(node.base_url + "/webhooks/whatsapp", params=q) as r:
        assert r.status == 200 and await r.text() == "12345"
    async with harness.http.get(node.base_url + "/webhooks/whatsapp", params={**q, "hub.verify_token": "x"}) as r:
        assert r.status == 403
    _, convs = await staff.call("GET", "/api/v1/wa/conversations", expect=200)
    assert convs["conversations"] == []


async def test_staff_cannot_write_outside_the_24_hour_window(harness: ServerHarness, graph: GraphApiFake) -> None:
    node, _, staff = await _setup(harness, graph)
    old = int(time.time()) - 25 * 3600
    await _post(harness, node, make_text_webhook(PN, CONTACT, "Ann", "wamid.W1", "old message", ts=old))
    conv = await staff.log.wait_for("conversation:updated", timeout=10)
    assert conv["window_open"] is False
    await staff.call("POST", f"/api/v1/wa/conversations/{conv['room_id']}/takeover", expect=200)
    ack = await staff.emit("message:send", {"room_id": conv["room_id"], "body": "hello?", "client_id": "w-1"})
    assert ack["ok"] is False and ack["error"]["details"]["reason"] == "outside_window"


async def test_roles_guard_the_inbox_and_accounts(harness: ServerHarness, graph: GraphApiFake) -> None:
    node, admin, _ = await _setup(harness, graph)
    user = await harness.user(node)
    status, body = await user.call("GET", "/api/v1/wa/conversations")
    assert status == 403 and body["error"]["code"] == "forbidden"
    status, _ = await user.call("GET", "/api/v1/admin/wa/accounts")
    assert status == 403
    _, accounts = await admin.call("GET", "/api/v1/admin/wa/accounts", expect=200)
    assert "access_token" not in accounts["accounts"][0] and "app_secret" not in accounts["accounts"][0]


async def test_login_by_whatsapp_code(harness: ServerHarness, graph: GraphApiFake) -> None:
    node, _, _ = await _setup(harness, graph)
    phone = "+4917099988877"
    async with harness.http.post(node.base_url + "/api/v1/auth/otp/request", json={"phone": phone}) as r:
        assert r.status == 202
    [send] = await graph.wait_for_sends(1)
    assert send.json["type"] == "template" and send.json["to"] == phone.lstrip("+")
    code = send.json["template"]["components"][0]["parameters"][0]["text"]
    assert re.fullmatch(r"\d{6}", code)
    wrong = "000000" if code != "000000" else "111111"
    async with harness.http.post(node.base_url + "/api/v1/auth/otp/verify", json={"phone": phone, "code": wrong}) as r:
        assert r.status == 401
    async with harness.http.post(node.base_url + "/api/v1/auth/otp/verify", json={"phone": phone, "code": code}) as r:
        body = await r.json()
        assert r.status == 200 and body["access_token"]
    async with harness.http.get(node.base_url + "/api/v1/users/me",
                                headers={"Authorization": f"Bearer {body['access_token']}"}) as r:
        assert r.status == 200
    # a code works once
    async with harness.http.post(node.base_url + "/api/v1/auth/otp/verify", json={"phone": phone, "code": code}) as r:
        assert r.status == 401


async def test_code_attempts_are_limited(harness: ServerHarness, graph: GraphApiFake) -> None:
    node, _, _ = await _setup(harness, graph)
    phone = "+4917011122233"
    async with harness.http.post(node.base_url + "/api/v1/auth/otp/request", json={"phone": phone}) as r:
        assert r.status == 202
    [send] = await graph.wait_for_sends(1)
    code = send.json["template"]["components"][0]["parameters"][0]["text"]
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        async with harness.http.post(node.base_url + "/api/v1/auth/otp/verify", json={"phone": phone, "code": wrong}) as r:
            assert r.status == 401
    async with harness.http.post(node.base_url + "/api/v1/auth/otp/verify", json={"phone": phone, "code": code}) as r:
        assert r.status == 401  # burned after too many attempts
    for _ in range(2):
        async with harness.http.post(node.base_url + "/api/v1/auth/otp/request", json={"phone": phone}) as r:
            assert r.status == 202
    async with harness.http.post(node.base_url + "/api/v1/auth/otp/request", json={"phone": phone}) as r:
        body = await r.json()
        assert r.status == 429 and body["error"]["code"] == "rate_limited"


async def test_ai_hands_off_when_it_cannot_help(harness: ServerHarness, graph: GraphApiFake) -> None:
    node, _, staff = await _setup(harness, graph)
    await _post(harness, node, make_text_webhook(PN, CONTACT, "Ann", "wamid.H1", "zxqv blorf quantum refund"))
    [send] = await graph.wait_for_sends(1)
    assert "person" in send.json["text"]["body"] and "[HANDOFF]" not in send.json["text"]["body"]
    conv = await staff.log.wait_for("conversation:updated", lambda c: c["status"] == "pending", timeout=10)
    assert conv["mode"] == "human" and conv["ai_enabled"] is False
    await _post(harness, node, make_text_webhook(PN, CONTACT, "Ann", "wamid.H2", "how do I create a room?"))
    await staff.log.wait_for("conversation:updated", lambda c: (c["last_message"] or {}).get("seq") == 3, timeout=10)
    _, hist = await staff.call("GET", f"/api/v1/rooms/{conv['room_id']}/messages", expect=200)
    assert [m["author_kind"] for m in hist["messages"]] == ["contact", "assistant", "contact"]
    assert len(graph.sends()) == 1


async def test_a_reply_the_graph_api_refused_for_a_while_is_sent_later_from_the_outbox(
        harness: ServerHarness, graph: GraphApiFake) -> None:
    """Meta answers 503 longer than the client's own retries last: the reply stays queued (staff
    see why) and the outbox sends it once Meta is back; nothing is sent twice."""
    node, _, staff = await _setup(harness, graph, wa_retry_base_s=0.3)
    graph.fail_next(503, times=12)  # more than one attempt's worth of client retries
    await _post(harness, node, make_text_webhook(PN, CONTACT, "Ann", "wamid.OUT1", "how do I create a room?"))
    queued = await staff.log.wait_for("wa:status", lambda e: e["status"] == "queued", timeout=30)
    assert queued["error"]["state"] and queued["retry_in_s"] > 0
    sent = await staff.log.wait_for("wa:status", lambda e: e["status"] == "sent", timeout=60)
    assert sent["message_id"] == queued["message_id"]
    sends = graph.sends()
    assert len(sends) == 13 and sends[-1].json["to"] == CONTACT  # 12 refused, then one accepted: sent once
    rows = await harness_rows(harness, queued["message_id"])
    assert [(r["status"], r["attempts"] >= 1) for r in rows] == [("sent", True)]


async def test_a_reply_meta_refuses_for_good_is_not_retried(harness: ServerHarness, graph: GraphApiFake) -> None:
    node, _, staff = await _setup(harness, graph)
    graph.fail_next(400, 131026)  # undeliverable: retrying cannot help
    await _post(harness, node, make_text_webhook(PN, CONTACT, "Ann", "wamid.OUT2", "how do I create a room?"))
    failed = await staff.log.wait_for("wa:status", lambda e: e["status"] == "failed", timeout=30)
    assert failed["error"]["code"] == 131026
    assert not [e for e in staff.log.all("wa:status") if e["status"] == "queued"]
    assert [r["status"] for r in await harness_rows(harness, failed["message_id"])] == ["failed"]


async def harness_rows(harness: ServerHarness, message_id: int) -> list[Any]:
    conn = await asyncpg.connect(harness.database_url)
    try:
        return list(await conn.fetch("SELECT status, attempts FROM wa_messages WHERE message_id = $1 AND direction = 'out'",
                                     message_id))
    finally:
        await conn.close()


async def test_sends_of_one_number_are_paced_as_configured(harness: ServerHarness, graph: GraphApiFake) -> None:
    node, _, staff = await _setup(harness, graph, wa_send_interval_s=0.25)
    await _post(harness, node, make_text_webhook(PN, CONTACT, "Ann", "wamid.P1", "hello"))
    conv = await staff.log.wait_for("conversation:updated", timeout=10)
    await graph.wait_for_sends(1)
    room_id = conv["room_id"]
    assert (await staff.emit("room:join", {"room_id": room_id}))["ok"]
    for i in range(3):  # three staff replies at once
        await staff.send(room_id, f"part {i}")
    sends = await graph.wait_for_sends(4)
    # spaced by the number's interval, not all at once. The pacer spaces the starts of the sends;
    # what the fake sees is their arrival, which a busy event loop (the node, the fake and the
    # test share one) can delay, so one gap may shrink after a late one: the span of the three
    # holds (unpaced, they arrive within milliseconds)
    arrivals = [s.at for s in sends[1:]]
    assert arrivals[-1] - arrivals[0] >= 2 * 0.25 * 0.8, [b - a for a, b in itertools.pairwise(arrivals)]
