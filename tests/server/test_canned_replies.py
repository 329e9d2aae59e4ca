"""Canned replies: shared (supervisors and admins manage them) and personal, found by shortcut,
rendered for a conversation with its variables filled in; an unknown variable is refused when
saved, naming it; each change leaves one audit row."""

from __future__ import annotations

import asyncpg

from tests.fakes.graph_api import GraphApiFake, make_text_webhook, signed_post
from tests.support import ServerHarness

PN, SECRET = "PN500", "app-secret-canned"


async def _audit_actions(harness: ServerHarness) -> list[tuple[str, int]]:
    conn = await asyncpg.connect(harness.database_url)
    try:
        rows = await conn.fetch("SELECT action, target_id FROM audit_log WHERE target_type = 'canned_reply' ORDER BY id")
        return [(r["action"], r["target_id"]) for r in rows]
    finally:
        await conn.close()


async def test_shared_replies_are_managed_by_supervisors_and_personal_ones_by_their_owner(harness: ServerHarness) -> None:
    node = await harness.start_node()
    staff, other = await harness.user(node, role="staff"), await harness.user(node, role="staff")
    sup = await harness.user(node, role="supervisor")
    status, body = await staff.call("POST", "/api/v1/canned-replies", {"scope": "shared", "shortcut": "hi", "body": "Hello"})
    assert status == 403 and body["error"]["code"] == "forbidden"
    _, body = await sup.call("POST", "/api/v1/canned-replies", {"scope": "shared", "shortcut": "/hi",
                                                                 "body": "Hello {{contact.name}}"}, expect=201)
    shared = body["canned_reply"]
    assert shared["scope"] == "shared" and shared["shortcut"] == "hi"
    _, body = await staff.call("POST", "/api/v1/canned-replies", {"shortcut": "hide", "body": "mine"}, expect=201)
    mine = body["canned_reply"]
    assert mine["scope"] == "personal"
    # the same shortcut twice in one scope is a conflict; in the other scope it is fine
    status, body = await sup.call("POST", "/api/v1/canned-replies", {"scope": "shared", "shortcut": "hi", "body": "x"})
    assert status == 409 and body["error"]["code"] == "conflict"
    await staff.call("POST", "/api/v1/canned-replies", {"shortcut": "hi", "body": "my hi"}, expect=201)

    _, listed = await staff.call("GET", "/api/v1/canned-replies?q=/hi", expect=200)
    assert [(r["shortcut"], r["scope"]) for r in listed["canned_replies"]] == [
        ("hi", "personal"), ("hi", "shared"), ("hide", "personal")]
    _, listed = await other.call("GET", "/api/v1/canned-replies", expect=200)
    assert [r["id"] for r in listed["canned_replies"]] == [shared["id"]]  # not the others' personal ones

    # staff cannot change or delete a shared reply; another member's personal one does not exist for them
    status, _ = await staff.call("PATCH", f"/api/v1/canned-replies/{shared['id']}", {"body": "changed"})
    assert status == 403
    status, _ = await staff.call("DELETE", f"/api/v1/canned-replies/{shared['id']}")
    assert status == 403
    status, _ = await other.call("PATCH", f"/api/v1/canned-replies/{mine['id']}", {"body": "theirs"})
    assert status == 404
    status, _ = await sup.call("DELETE", f"/api/v1/canned-replies/{mine['id']}")
    assert status == 404
    _, body = await staff.call("PATCH", f"/api/v1/canned-replies/{mine['id']}", {"body": "mine, changed"}, expect=200)
    assert body["canned_reply"]["body"] == "mine, changed"
    await sup.call("PATCH", f"/api/v1/canned-replies/{shared['id']}", {"shortcut": "hello"}, expect=200)
    await sup.call("DELETE", f"/api/v1/canned-replies/{shared['id']}", expect=204)
    await staff.call("DELETE", f"/api/v1/canned-replies/{mine['id']}", expect=204)

    # every change left exactly one audit row; refused attempts left none
    actions = await _audit_actions(harness)
    assert [a for a, _ in actions] == ["canned_reply.create", "canned_reply.create", "canned_reply.create",
                                       "canned_reply.update", "canned_reply.update", "canned_reply.delete",
                                       "canned_reply.delete"]


async def test_an_unknown_variable_is_refused_at_save_time_naming_it(harness: ServerHarness) -> None:
    node = await harness.start_node()
    staff = await harness.user(node, role="staff")
    for body, variable in (("Hi {{contact.phone}}", "contact.phone"), ("Hi {{ agent.email }}", "agent.email")):
        status, answer = await staff.call("POST", "/api/v1/canned-replies", {"shortcut": "x", "body": body})
        assert status == 400 and answer["error"]["code"] == "invalid", answer
        assert answer["error"]["details"]["variable"] == variable and variable in answer["error"]["message"]
    _, created = await staff.call("POST", "/api/v1/canned-replies", {"shortcut": "x", "body": "ok {{agent.name}}"},
                                  expect=201)
    status, answer = await staff.call("PATCH", f"/api/v1/canned-replies/{created['canned_reply']['id']}",
                                      {"body": "{{contact.nickname}}"})
    assert status == 400 and answer["error"]["details"]["variable"] == "contact.nickname"
    status, _ = await staff.call("POST", "/api/v1/canned-replies", {"shortcut": "Bad Shortcut", "body": "x"})
    assert status == 400
    assert [a for a, _ in await _audit_actions(harness)] == ["canned_reply.create"]


async def test_rendering_fills_in_the_contacts_and_the_agents_names(harness: ServerHarness, graph: GraphApiFake) -> None:
    node = await harness.start_node(wa_graph_url=graph.base_url)
    admin, staff = await harness.user(node, role="admin"), await harness.user(node, role="staff")
    await admin.call("POST", "/api/v1/admin/wa/accounts", {
        "phone_number_id": PN, "display_phone": "+1 555 000 5555", "access_token": "EAAG-token",
        "app_secret": SECRET, "verify_token": "v"}, expect=201)
    await staff.connect()
    raw, headers = signed_post(SECRET, make_text_webhook(PN, "4917055500009", "Ann Lee", "wamid.CR1", "hi"))
    async with harness.http.post(node.base_url + "/webhooks/whatsapp", data=raw, headers=headers) as r:
        assert r.status == 200
    room_id = (await staff.log.wait_for("conversation:updated", timeout=10))["room_id"]
    _, body = await staff.call("POST", "/api/v1/canned-replies", {
        "shortcut": "greet", "body": "Hello {{contact.name}}, {{ agent.name }} here. {not a variable}"}, expect=201)
    reply_id = body["canned_reply"]["id"]
    _, rendered = await staff.call("POST", f"/api/v1/canned-replies/{reply_id}/render",
                                   {"conversation_id": room_id}, expect=200)
    assert rendered["text"] == f"Hello Ann Lee, {staff.user['display_name']} here. {{not a variable}}"
    status, _ = await staff.call("POST", f"/api/v1/canned-replies/{reply_id}/render", {"conversation_id": room_id + 999})
    assert status == 404
    # rendering sends nothing: the only Graph API send is the assistant's answer to "hi"
    assert all("Ann Lee" not in str(s.json) for s in graph.sends())
