"""Labels: managed by supervisors and admins, put on conversations and contacts by staff
(idempotently), one audit row per change, live events to staff only; and the inbox filters by
label, status, AI mode and a search over names, numbers and message text."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from tests.fakes.graph_api import GraphApiFake, make_identity_webhook, signed_post
from tests.support import ChatNode, Client, ServerHarness

PN, SECRET = "PN1810", "app-secret-labels"


async def _fetch(harness: ServerHarness, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(harness.database_url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def _setup(harness: ServerHarness, graph: GraphApiFake) -> tuple[ChatNode, Client, Client]:
    node = await harness.start_node(wa_graph_url=graph.base_url)
    admin = await harness.user(node, role="admin")
    await admin.call("POST", "/api/v1/admin/wa/accounts", {
        "phone_number_id": PN, "display_phone": "+1 555 000 1810", "access_token": "EAAG-token",
        "app_secret": SECRET, "verify_token": "v"}, expect=201)
    staff, sup = await harness.user(node, role="staff"), await harness.user(node, role="supervisor")
    await staff.connect()
    return node, staff, sup


async def _inbound(harness: ServerHarness, node: ChatNode, wamid: str, text: str, wa_id: str, name: str) -> None:
    raw, headers = signed_post(SECRET, make_identity_webhook(PN, wamid, text, wa_id=wa_id, name=name))
    async with harness.http.post(node.base_url + "/webhooks/whatsapp", data=raw, headers=headers) as r:
        assert r.status == 200, await r.text()
    for _ in range(200):
        if await _fetch(harness, "SELECT 1 FROM wa_messages WHERE wamid = $1 AND message_id <> 0", wamid):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{wamid} was not stored")


async def _label_audit(harness: ServerHarness) -> list[str]:
    rows = await _fetch(harness, "SELECT action FROM audit_log WHERE action LIKE 'label.%' OR action LIKE '%.label'"
                                 " OR action LIKE '%.unlabel' ORDER BY id")
    return [r["action"] for r in rows]


async def _room_ids(staff: Client, query: str) -> set[int]:
    _, body = await staff.call("GET", f"/api/v1/wa/conversations{query}", expect=200)
    return {c["room_id"] for c in body["conversations"]}


async def test_labels_are_managed_by_supervisors_with_clear_errors_and_one_audit_row_each(
        harness: ServerHarness, graph: GraphApiFake) -> None:
    node, staff, sup = await _setup(harness, graph)
    user = await harness.user(node)
    await user.connect()
    status, body = await staff.call("POST", "/api/v1/labels", {"name": "VIP", "color": "#ff0000"})
    assert status == 403 and body["error"]["code"] == "forbidden"
    for bad, field in (({"name": "VIP", "color": "red"}, "color"), ({"name": "VIP", "color": "#ff00"}, "color"),
                       ({"name": "   ", "color": "#ff0000"}, "name")):
        status, body = await sup.call("POST", "/api/v1/labels", bad)
        assert status == 400 and body["error"]["code"] == "invalid" and body["error"]["details"]["field"] == field
    _, body = await sup.call("POST", "/api/v1/labels", {"name": " VIP ", "color": "#FF0000"}, expect=201)
    vip = body["label"]
    assert (vip["name"], vip["color"]) == ("VIP", "#ff0000")
    event = await staff.log.wait_for("label:updated", timeout=10)
    assert event["id"] == vip["id"]
    status, body = await sup.call("POST", "/api/v1/labels", {"name": "vip", "color": "#00ff00"})
    assert status == 409 and body["error"]["code"] == "conflict"
    _, body = await sup.call("PATCH", f"/api/v1/labels/{vip['id']}", {"color": "#00aa00"}, expect=200)
    assert body["label"]["color"] == "#00aa00"
    await sup.call("PATCH", f"/api/v1/labels/{vip['id']}", {"color": "#00AA00"}, expect=200)  # no change
    status, _ = await staff.call("PATCH", f"/api/v1/labels/{vip['id']}", {"color": "#000000"})
    assert status == 403
    status, body = await sup.call("PATCH", f"/api/v1/labels/{vip['id'] + 99}", {"color": "#000000"})
    assert status == 404 and body["error"]["code"] == "not_found"
    _, listed = await staff.call("GET", "/api/v1/labels", expect=200)
    assert [(lb["name"], lb["color"]) for lb in listed["labels"]] == [("VIP", "#00aa00")]
    await sup.call("DELETE", f"/api/v1/labels/{vip['id']}", expect=204)
    assert (await staff.log.wait_for("label:deleted", timeout=10)) == {"id": vip["id"]}
    assert await _label_audit(harness) == ["label.create", "label.update", "label.delete"]
    assert not user.log.events["label:updated"] and not user.log.events["label:deleted"]


async def test_staff_label_conversations_and_contacts_idempotently_and_staff_see_it_live(
        harness: ServerHarness, graph: GraphApiFake) -> None:
    node, staff, sup = await _setup(harness, graph)
    user = await harness.user(node)
    await user.connect()
    _, body = await sup.call("POST", "/api/v1/labels", {"name": "Billing", "color": "#0969da"}, expect=201)
    billing = body["label"]
    await _inbound(harness, node, "wamid.L1", "my invoice is wrong", "4917055501810", "Hal")
    [room_id] = await _room_ids(staff, "")
    path = f"/api/v1/wa/conversations/{room_id}/labels/{billing['id']}"
    _, body = await staff.call("PUT", path, expect=200)
    assert [lb["name"] for lb in body["conversation"]["labels"]] == ["Billing"]
    await staff.log.wait_for("conversation:updated", lambda c: c["labels"] and c["room_id"] == room_id, timeout=10)
    await staff.call("PUT", path, expect=200)  # already there: nothing changes
    _, body = await staff.call("GET", f"/api/v1/wa/conversations/{room_id}", expect=200)
    assert [lb["id"] for lb in body["conversation"]["labels"]] == [billing["id"]]
    status, body = await staff.call("PUT", f"/api/v1/wa/conversations/{room_id}/labels/{billing['id'] + 99}")
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body = await staff.call("PUT", f"/api/v1/wa/conversations/{room_id + 999}/labels/{billing['id']}")
    assert status == 404
    status, _ = await user.call("PUT", path)
    assert status == 403

    body_contact = (await staff.call("GET", f"/api/v1/wa/conversations/{room_id}", expect=200))[1]
    contact_id = body_contact["conversation"]["contact"]["id"]
    _, body = await staff.call("PUT", f"/api/v1/contacts/{contact_id}/labels/{billing['id']}", expect=200)
    assert [lb["id"] for lb in body["contact"]["labels"]] == [billing["id"]]
    await staff.log.wait_for("contact:updated", lambda c: c["labels"], timeout=10)
    _, body = await staff.call("GET", f"/api/v1/contacts?label={billing['id']}", expect=200)
    assert [c["id"] for c in body["contacts"]] == [contact_id]
    await staff.call("DELETE", f"/api/v1/contacts/{contact_id}/labels/{billing['id']}", expect=200)

    _, body = await staff.call("DELETE", path, expect=200)
    assert body["conversation"]["labels"] == []
    await staff.call("DELETE", path, expect=200)  # already off
    assert await _label_audit(harness) == ["label.create", "conversation.label", "contact.label", "contact.unlabel",
                                           "conversation.unlabel"]
    assert not user.log.events["conversation:updated"] and not user.log.events["contact:updated"]

    # deleting a label takes it off every conversation
    await staff.call("PUT", path, expect=200)
    await sup.call("DELETE", f"/api/v1/labels/{billing['id']}", expect=204)
    _, body = await staff.call("GET", f"/api/v1/wa/conversations/{room_id}", expect=200)
    assert body["conversation"]["labels"] == []


async def test_the_inbox_filters_by_label_status_ai_and_searches_names_numbers_and_messages(
        harness: ServerHarness, graph: GraphApiFake) -> None:
    node, staff, sup = await _setup(harness, graph)
    _, body = await sup.call("POST", "/api/v1/labels", {"name": "Urgent", "color": "#cf222e"}, expect=201)
    urgent = body["label"]["id"]
    await _inbound(harness, node, "wamid.F1", "the parcel never arrived", "4917055501811", "Ida Stone")
    await _inbound(harness, node, "wamid.F2", "how do I change my password", "4917055501822", "Jo Park")
    rooms = {}
    _, body = await staff.call("GET", "/api/v1/wa/conversations", expect=200)
    for c in body["conversations"]:
        rooms[c["contact"]["name"]] = c["room_id"]
    ida, jo = rooms["Ida Stone"], rooms["Jo Park"]
    await graph.wait_for_sends(2)  # the assistant answered both (and may have handed one over)
    await staff.call("POST", f"/api/v1/wa/conversations/{ida}/handback", expect=200)
    await staff.call("PUT", f"/api/v1/wa/conversations/{ida}/labels/{urgent}", expect=200)
    await staff.call("POST", f"/api/v1/wa/conversations/{jo}/takeover", expect=200)
    await staff.call("POST", f"/api/v1/wa/conversations/{jo}/close", expect=200)

    assert await _room_ids(staff, f"?label={urgent}") == {ida}
    assert await _room_ids(staff, "?status=closed") == {jo}
    assert await _room_ids(staff, "?ai=false") == {jo}
    assert await _room_ids(staff, "?ai=true") == {ida}
    assert await _room_ids(staff, "?assignee=me") == {jo}
    assert await _room_ids(staff, "?q=stone") == {ida}  # name
    assert await _room_ids(staff, "?q=01822") == {jo}  # part of the number
    assert await _room_ids(staff, "?q=parcel") == {ida}  # message text (full-text search)
    assert await _room_ids(staff, "?q=PASSWORD") == {jo}  # words, whatever their case
    assert await _room_ids(staff, f"?q=parcel&label={urgent}&ai=true") == {ida}
    assert await _room_ids(staff, "?q=nothing%20like%20this") == set()
    status, body = await staff.call("GET", f"/api/v1/wa/conversations?label={urgent + 99}")
    assert status == 404 and body["error"]["code"] == "not_found" and body["error"]["details"]["field"] == "label"
    status, body = await staff.call("GET", f"/api/v1/contacts?label={urgent + 99}")
    assert status == 404 and body["error"]["details"]["field"] == "label"
