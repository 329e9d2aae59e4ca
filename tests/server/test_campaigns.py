"""Campaigns end to end on real PostgreSQL and Redis with the fake Graph API: template sync and
sends into a conversation, CSV checks, the lifecycle, exactly-once sending across two nodes (one
killed mid-run), shared pacing, pause/resume, STOP opt-outs, failures grouped by Meta's code,
delivery statuses and live progress."""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from tests.fakes.graph_api import (
    GraphApiFake,
    make_identity_webhook,
    make_status_webhook,
    make_text_webhook,
    signed_post,
)
from tests.support import ChatNode, Client, ServerHarness

pytestmark = pytest.mark.heavy

PN, SECRET, VERIFY, WABA = "PN700", "app-secret-c", "verify-c", "1029384756"
ORDER_BODY = "Hi {{1}}, your order {{2}} ships today."


def _templates(extra: int = 0) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = [
        {"name": "order_update", "language": "en_US", "status": "APPROVED", "category": "UTILITY", "id": "1",
         "components": [{"type": "HEADER", "format": "TEXT", "text": "Order news"},
                        {"type": "BODY", "text": ORDER_BODY},
                        {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Thanks"}]}]},
        {"name": "welcome_back", "language": "en_US", "status": "APPROVED", "category": "MARKETING", "id": "2",
         "components": [{"type": "HEADER", "format": "TEXT", "text": "Hello {{1}}"},
                        {"type": "BODY", "text": "We miss you, {{1}}. Use {{2}} for 10% off."}]},
        {"name": "old_promo", "language": "en_US", "status": "PAUSED", "category": "MARKETING", "id": "3",
         "components": [{"type": "BODY", "text": "Sale!"}]},
    ]
    items += [{"name": f"filler_{i:03d}", "language": "de", "status": "APPROVED", "category": "UTILITY",
               "id": str(100 + i), "components": [{"type": "BODY", "text": "Hallo"}]} for i in range(extra)]
    return items


async def _setup(harness: ServerHarness, graph: GraphApiFake, node: ChatNode | None = None,
                 **config: Any) -> tuple[ChatNode, Client, int]:
    if node is None:
        node = await harness.start_node(wa_graph_url=graph.base_url, wa_send_interval_s=0.0, **config)
    admin = await harness.user(node, role="admin")
    _, body = await admin.call("POST", "/api/v1/admin/wa/accounts", {
        "phone_number_id": PN, "display_phone": "+1 555 000 7000", "access_token": "EAAG-token",
        "app_secret": SECRET, "verify_token": VERIFY}, expect=201)
    account_id = body["account"]["id"]
    graph.set_templates(WABA, _templates())
    await admin.call("POST", f"/api/v1/wa/accounts/{account_id}/templates/sync", {"waba_id": WABA}, expect=200)
    return node, admin, account_id


async def _campaign(boss: Client, account_id: int, csv_text: str | bytes, **fields: Any) -> int:
    body = {"account_id": account_id, "name": "October orders", "template": "order_update", "language": "en_US",
            "variables": ["first_name", "order"], **fields}
    _, created = await boss.call("POST", "/api/v1/campaigns", body, expect=201)
    cid = int(created["campaign"]["id"])
    data = csv_text.encode() if isinstance(csv_text, str) else csv_text
    await boss.call("PUT", f"/api/v1/campaigns/{cid}/recipients", data=data,
                    headers={"Content-Type": "text/csv"}, expect=200)
    return cid


def _csv(n: int, start: int = 0) -> str:
    return "phone,first_name,order\n" + "".join(f"+4917{start + i:08d},Name{i},A-{i}\n" for i in range(n))


async def _wait_status(boss: Client, cid: int, status: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        _, body = await boss.call("GET", f"/api/v1/campaigns/{cid}", expect=200)
        if body["campaign"]["status"] == status:
            return body  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, f"campaign {cid} still {body['campaign']['status']}: {body['counts']}"
        await asyncio.sleep(0.2)


async def _post(harness: ServerHarness, node: ChatNode, payload: dict[str, Any]) -> None:
    raw, headers = signed_post(SECRET, payload)
    async with harness.http.post(node.base_url + "/webhooks/whatsapp", data=raw, headers=headers) as r:
        assert r.status == 200, await r.text()


def _template_sends(graph: GraphApiFake) -> list[Any]:
    return [r for r in graph.sends() if r.json.get("type") == "template"]


def _assert_monotonic(events: list[dict[str, Any]]) -> None:
    growing = ("sent", "delivered", "read", "failed", "replied", "skipped", "unknown")
    by_campaign: dict[int, list[dict[str, Any]]] = {}
    for e in events:
        by_campaign.setdefault(e["campaign_id"], []).append(e)
    for items in by_campaign.values():
        seqs = [e["seq"] for e in items]
        assert seqs == sorted(seqs), "progress events arrived out of order"
        for before, after in itertools.pairwise(items):
            for k in growing:
                assert after[k] >= before[k], (k, before, after)


# --- templates ------------------------------------------------------------------------------------

async def test_template_sync_pages_through_the_graph_list_and_counts_parameters(
        harness: ServerHarness, graph: GraphApiFake) -> None:
    node, admin, account_id = await _setup(harness, graph)
    graph.set_templates(WABA, _templates(extra=150))
    _, body = await admin.call("POST", f"/api/v1/wa/accounts/{account_id}/templates/sync", {}, expect=200)
    assert len(body["templates"]) == 153
    assert len(graph.template_requests) >= 3  # the first sync, then two pages of 100
    staff = await harness.user(node, role="staff")
    _, listed = await staff.call("GET", f"/api/v1/wa/accounts/{account_id}/templates", expect=200)
    by_name = {t["name"]: t for t in listed["templates"]}
    assert by_name["order_update"]["param_counts"] == {"header": 0, "body": 2}
    assert by_name["welcome_back"]["param_counts"] == {"header": 1, "body": 2}
    assert by_name["old_promo"]["status"] == "PAUSED"
    # a template Meta no longer lists is gone after the next sync
    graph.set_templates(WABA, _templates()[:1])
    _, body = await admin.call("POST", f"/api/v1/wa/accounts/{account_id}/templates/sync", {}, expect=200)
    assert [t["name"] for t in body["templates"]] == ["order_update"]
    await staff.call("POST", f"/api/v1/wa/accounts/{account_id}/templates/sync", {}, expect=403)
    # a WABA Meta does not know: refused, and the good id kept
    status, err = await admin.call("POST", f"/api/v1/wa/accounts/{account_id}/templates/sync", {"waba_id": "999"})
    assert status == 400 and err["error"]["details"]["field"] == "waba_id"
    await admin.call("POST", f"/api/v1/wa/accounts/{account_id}/templates/sync", {}, expect=200)


async def test_a_template_reaches_a_contact_outside_the_window_with_its_parameters_and_is_audited(
        harness: ServerHarness, graph: GraphApiFake) -> None:
    node, _, _ = await _setup(harness, graph)
    staff = await harness.user(node, role="staff")
    await staff.connect()
    old = int(time.time()) - 30 * 3600
    await _post(harness, node, make_text_webhook(PN, "4917099990000", "Ann", "wamid.T1", "hello", ts=old))
    conv = await staff.log.wait_for("conversation:updated", timeout=10)
    room = conv["room_id"]
    await staff.call("POST", f"/api/v1/wa/conversations/{room}/takeover", expect=200)
    before = len(graph.sends())
    status, err = await staff.call("POST", f"/api/v1/wa/conversations/{room}/template",
                                   {"name": "order_update", "language": "en_US", "parameters": ["Ann"]})
    assert status == 400 and err["error"]["details"]["reason"] == "parameter_count"
    assert err["error"]["details"]["expected"] == 2 and err["error"]["details"]["given"] == 1
    status, err = await staff.call("POST", f"/api/v1/wa/conversations/{room}/template",
                                   {"name": "order_update", "language": "en_US", "parameters": ["Ann", "7", "x"]})
    assert status == 400 and err["error"]["details"]["given"] == 3
    status, err = await staff.call("POST", f"/api/v1/wa/conversations/{room}/template",
                                   {"name": "old_promo", "language": "en_US", "parameters": []})
    assert status == 400 and err["error"]["details"]["reason"] == "not_approved"
    _, sent = await staff.call("POST", f"/api/v1/wa/conversations/{room}/template",
                               {"name": "order_update", "language": "en_US", "parameters": ["Ann", "A-7"]}, expect=201)
    assert sent["message"]["body"] == "Order news\n\nHi Ann, your order A-7 ships today."
    sends = await graph.wait_for_sends(before + 1)
    assert len(sends) == before + 1  # the refused ones sent nothing
    tpl = sends[-1].json["template"]
    assert tpl["name"] == "order_update" and tpl["language"] == {"code": "en_US"}
    assert tpl["components"] == [{"type": "body", "parameters": [{"type": "text", "text": "Ann"},
                                                                 {"type": "text", "text": "A-7"}]}]
    await staff.log.wait_for("wa:status", lambda e: e["message_id"] == sent["message"]["id"] and e["status"] == "sent",
                             timeout=10)
    conn = await asyncpg.connect(harness.database_url)
    try:
        rows = await conn.fetch("SELECT actor_id, target_id, meta FROM audit_log WHERE action = 'template.send'")
    finally:
        await conn.close()
    assert [(r["actor_id"], r["target_id"]) for r in rows] == [(staff.id, room)]
    # the contact's reply opens the window again: free text goes out
    await _post(harness, node, make_text_webhook(PN, "4917099990000", "Ann", "wamid.T2", "thanks!"))
    await staff.log.wait_for("conversation:updated", lambda c: c["window_open"], timeout=10)
    assert (await staff.emit("room:join", {"room_id": room}))["ok"]
    await staff.send(room, "You're welcome")
    await graph.wait_for_sends(before + 2)


# --- creating a campaign --------------------------------------------------------------------------

async def test_each_bad_csv_is_refused_with_its_line_numbers_and_nothing_is_stored(
        harness: ServerHarness, graph: GraphApiFake) -> None:
    node, _, account_id = await _setup(harness, graph, campaign_max_recipients=5)
    sup = await harness.user(node, role="supervisor")
    _, created = await sup.call("POST", "/api/v1/campaigns", {
        "account_id": account_id, "name": "x", "template": "order_update", "language": "en_US",
        "variables": ["first_name", "order"]}, expect=201)
    cid = created["campaign"]["id"]

    async def upload(data: bytes) -> tuple[int, Any]:
        return await sup.call("PUT", f"/api/v1/campaigns/{cid}/recipients", data=data,
                              headers={"Content-Type": "text/csv"})

    def problems(body: Any) -> list[tuple[int, str | None]]:
        return [(p["line"], p["column"]) for p in body["error"]["details"]["problems"]]

    status, body = await upload(b"telephone,first_name,order\n+4917000000001,A,1\n")
    assert status == 400 and problems(body) == [(1, "phone")]
    status, body = await upload(b"phone,first_name\n+4917000000001,A\n")
    assert status == 400 and problems(body) == [(1, "order")]
    status, body = await upload("phone,first_name,order\n+4917000000001,Jürgen,1\n".encode("latin-1"))
    assert status == 400 and problems(body) == [(2, None)] and "UTF-8" in body["error"]["details"]["problems"][0]["message"]
    status, body = await upload(b"phone,first_name,order\n+4917000000001,A,1\n0049 170 000-0002,B,2\n"
                                b"4917000000001,C,3\n")
    assert status == 400 and problems(body) == [(4, "phone")]
    assert "first on line 2" in body["error"]["details"]["problems"][0]["message"]
    status, body = await upload(b"phone,first_name,order\n12345,A,1\n+4917000000009,,2\nnot a number,C,3\n")
    assert status == 400 and problems(body) == [(2, "phone"), (3, "first_name"), (4, "phone")]
    status, body = await upload(_csv(6).encode())
    assert status == 413 and body["error"]["code"] == "too_large"
    _, got = await sup.call("GET", f"/api/v1/campaigns/{cid}/recipients", expect=200)
    assert got["recipients"] == []
    # a good file: phones normalised to E.164, the preview rendered
    _, ok = await sup.call("PUT", f"/api/v1/campaigns/{cid}/recipients",
                           data="\ufeffphone,first_name,order\r\n0049 (170) 000-0001,Ann,A-1\r\n".encode(),
                           headers={"Content-Type": "text/csv"}, expect=200)
    assert ok["recipients"] == 1
    assert ok["preview"] == [{"line": 2, "phone": "+491700000001",
                              "text": "Order news\n\nHi Ann, your order A-1 ships today."}]
    assert _template_sends(graph) == []


async def test_mismatched_parameters_a_past_start_and_a_second_start_are_refused(
        harness: ServerHarness, graph: GraphApiFake) -> None:
    node, admin, account_id = await _setup(harness, graph)
    base = {"account_id": account_id, "name": "x", "template": "order_update", "language": "en_US"}
    status, body = await admin.call("POST", "/api/v1/campaigns", {**base, "variables": ["first_name"]})
    assert status == 400 and body["error"]["details"]["reason"] == "parameter_count"
    past = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    status, body = await admin.call("POST", "/api/v1/campaigns",
                                    {**base, "variables": ["first_name", "order"], "start_at": past})
    assert status == 400 and body["error"]["details"]["field"] == "start_at"
    staff = await harness.user(node, role="staff")
    await staff.call("POST", "/api/v1/campaigns", {**base, "variables": ["a", "b"]}, expect=403)
    cid = await _campaign(admin, account_id, _csv(3))
    await admin.call("POST", f"/api/v1/campaigns/{cid}/start", expect=200)
    status, body = await admin.call("POST", f"/api/v1/campaigns/{cid}/start")
    assert status == 409 and body["error"]["code"] == "conflict"
    status, _ = await admin.call("DELETE", f"/api/v1/campaigns/{cid}")
    assert status in (204, 409)  # 409 while running; it may have completed already
    await _wait_status(admin, cid, "completed") if status == 409 else None


# --- sending --------------------------------------------------------------------------------------

async def test_a_campaign_sends_each_recipient_once_records_statuses_and_exports(
        harness: ServerHarness, graph: GraphApiFake) -> None:
    node, admin, account_id = await _setup(harness, graph)
    await admin.connect()
    cid = await _campaign(admin, account_id, _csv(40))
    await admin.call("POST", f"/api/v1/campaigns/{cid}/start", expect=200)
    body = await _wait_status(admin, cid, "completed")
    assert body["counts"]["sent"] == 40
    sends = _template_sends(graph)
    assert sorted(Counter(s.json["to"] for s in sends).values()) == [1] * 40
    first = next(s for s in sends if s.json["to"] == "491700000000")
    assert first.json["template"]["components"][0]["parameters"][0]["text"] == "Name0"
    _, rec = await admin.call("GET", f"/api/v1/campaigns/{cid}/recipients?state=sent&limit=1000", expect=200)
    wamid = next(r["wamid"] for r in rec["recipients"] if r["phone"] == "+491700000000")
    await _post(harness, node, make_status_webhook(PN, wamid, "read", recipient_id="491700000000"))
    await _post(harness, node, make_status_webhook(PN, wamid, "delivered", recipient_id="491700000000"))
    ev = await admin.log.wait_for("campaign:progress", lambda e: e["read"] == 1, timeout=10)
    assert ev["delivered"] == 1 and ev["sent"] == 40
    _, rec = await admin.call("GET", f"/api/v1/campaigns/{cid}/recipients?state=read", expect=200)
    assert [r["wamid"] for r in rec["recipients"]] == [wamid]  # a late delivered did not undo read
    async with harness.http.get(node.base_url + f"/api/v1/campaigns/{cid}/export", headers=admin.auth) as r:
        assert r.status == 200 and r.content_type == "text/csv"
        lines = (await r.text()).splitlines()
    assert lines[0].startswith("line,phone,state") and len(lines) == 41
    _assert_monotonic(admin.log.all("campaign:progress"))


async def test_pause_stops_sending_and_resume_finishes_without_repeating_anyone(
        harness: ServerHarness, graph: GraphApiFake) -> None:
    node = await harness.start_node(wa_graph_url=graph.base_url, wa_send_interval_s=0.05)
    _, admin, account_id = await _setup(harness, graph, node=node)
    cid = await _campaign(admin, account_id, _csv(60))
    await admin.call("POST", f"/api/v1/campaigns/{cid}/start", expect=200)
    await graph.wait_for_sends(5, timeout=15)
    _, paused = await admin.call("POST", f"/api/v1/campaigns/{cid}/pause", expect=200)
    assert paused["campaign"]["status"] == "paused" and paused["campaign"]["pause_reason"] == "by_staff"
    deadline = time.monotonic() + 10
    while (await admin.call("GET", f"/api/v1/campaigns/{cid}", expect=200))[1]["counts"]["sending"]:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    at_pause = len(_template_sends(graph))
    await asyncio.sleep(1.0)  # several pacing intervals: a running sender would have sent more
    assert len(_template_sends(graph)) == at_pause < 60
    status, _ = await admin.call("POST", f"/api/v1/campaigns/{cid}/pause")
    assert status == 409
    await admin.call("POST", f"/api/v1/campaigns/{cid}/resume", expect=200)
    body = await _wait_status(admin, cid, "completed")
    assert body["counts"]["sent"] == 60
    assert sorted(Counter(s.json["to"] for s in _template_sends(graph)).values()) == [1] * 60


async def test_stop_opts_out_for_good_replies_are_counted_and_contacted_today_is_skipped(
        harness: ServerHarness, graph: GraphApiFake) -> None:
    node, admin, account_id = await _setup(harness, graph)
    staff = await harness.user(node, role="staff")
    await staff.connect()
    ann, bo, cy, dee = "+491710000001", "+491710000002", "+491710000003", "+491710000004"
    first = await _campaign(admin, account_id, f"phone,first_name,order\n{ann},Ann,1\n{bo},Bo,2\n{cy},Cy,3\n")
    await admin.call("POST", f"/api/v1/campaigns/{first}/start", expect=200)
    await _wait_status(admin, first, "completed")
    await _post(harness, node, make_text_webhook(PN, ann[1:], "Ann", "wamid.R1", " Stop "))
    await _post(harness, node, make_text_webhook(PN, bo[1:], "Bo", "wamid.R2", "Thanks, when exactly?"))
    conv = await staff.log.wait_for("conversation:updated", lambda c: c["contact"]["wa_id"] == bo[1:], timeout=10)
    assert conv["campaign"] == {"id": first, "name": "October orders"}
    _, stats = await admin.call("GET", f"/api/v1/campaigns/{first}/stats", expect=200)
    assert stats["counts"]["replied"] == 2
    second = await _campaign(admin, account_id, f"phone,first_name,order\n{ann},Ann,4\n{bo},Bo,5\n{dee},Dee,6\n")
    await admin.call("POST", f"/api/v1/campaigns/{second}/start", expect=200)
    body = await _wait_status(admin, second, "completed")
    assert body["counts"]["sent"] == 1 and body["counts"]["skipped"] == 2
    _, rec = await admin.call("GET", f"/api/v1/campaigns/{second}/recipients?state=skipped", expect=200)
    assert {r["phone"]: r["reason"] for r in rec["recipients"]} == {ann: "opted_out", bo: "contacted_today"}
    tos = [s.json["to"] for s in _template_sends(graph)]
    assert sorted(tos) == sorted([ann[1:], bo[1:], cy[1:], dee[1:]])  # each once; Ann and Bo not again


async def test_failures_are_final_grouped_by_meta_code_and_passing_ones_are_retried(
        harness: ServerHarness, graph: GraphApiFake) -> None:
    _, admin, account_id = await _setup(harness, graph)
    phones = [f"+4917200000{i:02d}" for i in range(6)]
    graph.fail_for(phones[0], 400, 131026)
    graph.fail_for(phones[1], 400, 131026)
    graph.fail_for(phones[2], 400, 131047)
    graph.fail_next(429, 130429, retry_after="1")  # one passing failure: whoever is first, again later
    csv_text = "phone,first_name,order\n" + "".join(f"{p},N{i},{i}\n" for i, p in enumerate(phones))
    cid = await _campaign(admin, account_id, csv_text)
    await admin.call("POST", f"/api/v1/campaigns/{cid}/start", expect=200)
    body = await _wait_status(admin, cid, "completed")
    assert body["counts"]["sent"] == 3 and body["counts"]["failed"] == 3
    _, stats = await admin.call("GET", f"/api/v1/campaigns/{cid}/stats", expect=200)
    assert [(f["code"], f["count"]) for f in stats["failures"]] == [(131026, 2), (131047, 1)]
    assert "undeliverable" in stats["failures"][0]["title"].lower()
    calls = Counter(s.json["to"] for s in _template_sends(graph))
    assert sum(calls.values()) == 7  # six recipients, one of them twice: the 429 was retried ...
    _, rec = await admin.call("GET", f"/api/v1/campaigns/{cid}/recipients", expect=200)
    # ... and nobody else was called again: a final failure is final
    assert {r["phone"][1:]: r["attempts"] for r in rec["recipients"]} == dict(calls)


async def test_a_template_meta_paused_pauses_the_campaign_unsent(harness: ServerHarness, graph: GraphApiFake) -> None:
    _, admin, account_id = await _setup(harness, graph)
    graph.fail_for("+491730000000", 400, 132015)
    cid = await _campaign(admin, account_id, "phone,first_name,order\n+491730000000,Ann,1\n")
    await admin.call("POST", f"/api/v1/campaigns/{cid}/start", expect=200)
    body = await _wait_status(admin, cid, "paused")
    assert body["campaign"]["pause_reason"] == "template_paused"
    assert body["counts"]["queued"] == 1 and body["counts"]["failed"] == 0
    assert len(_template_sends(graph)) == 1  # no other lane tried the recipient again meanwhile
    _, listed = await admin.call("GET", f"/api/v1/wa/accounts/{account_id}/templates", expect=200)
    assert {t["name"]: t["status"] for t in listed["templates"]}["order_update"] == "PAUSED"
    status, err = await admin.call("POST", f"/api/v1/campaigns/{cid}/resume")
    assert status == 400 and err["error"]["details"]["reason"] == "not_approved"


async def test_the_messaging_tier_limit_holds_across_nodes(harness: ServerHarness, graph: GraphApiFake) -> None:
    a = await harness.start_node(wa_graph_url=graph.base_url, wa_send_interval_s=0.0, wa_tier_limit_per_day=5)
    await harness.start_node(wa_graph_url=graph.base_url, wa_send_interval_s=0.0, wa_tier_limit_per_day=5)
    _, admin, account_id = await _setup(harness, graph, node=a)
    cid = await _campaign(admin, account_id, _csv(12))
    await admin.call("POST", f"/api/v1/campaigns/{cid}/start", expect=200)
    await graph.wait_for_sends(5, timeout=15)
    await asyncio.sleep(1.5)  # both nodes' lanes keep asking meanwhile
    assert len(_template_sends(graph)) == 5
    _, body = await admin.call("GET", f"/api/v1/campaigns/{cid}", expect=200)
    assert body["campaign"]["status"] == "running" and body["counts"]["queued"] == 7


async def test_pacing_is_never_exceeded_in_total_across_two_nodes(harness: ServerHarness, graph: GraphApiFake) -> None:
    interval, n = 0.05, 40
    # two processes: the fake's arrival times are taken in this process, undisturbed by the nodes
    env = {"WA_GRAPH_URL": graph.base_url, "WA_SEND_INTERVAL_S": str(interval)}
    a = harness.spawn_node(**env)
    harness.spawn_node(**env)
    _, admin, account_id = await _setup(harness, graph, node=a)
    cid = await _campaign(admin, account_id, _csv(n))
    await admin.call("POST", f"/api/v1/campaigns/{cid}/start", expect=200)
    await _wait_status(admin, cid, "completed")
    times = sorted(s.at for s in _template_sends(graph))
    assert len(times) == n
    # one number's slots are handed out one interval apart for both nodes together: n sends
    # span at least (n - 1) intervals (less a little scheduling jitter), and no window holds
    # more than its share, give or take the arrival jitter of a loaded machine (4 sends: 13 of
    # 10 were seen once); two nodes pacing each on their own would send twice as fast (20)
    assert times[-1] - times[0] >= (n - 1) * interval * 0.9
    window = 0.5
    for i, t in enumerate(times):
        assert sum(1 for u in times[i:] if u < t + window) <= window / interval + 4


def _spawn_two(harness: ServerHarness, graph: GraphApiFake) -> tuple[ChatNode, ChatNode]:
    env = {"WA_GRAPH_URL": graph.base_url, "WA_SEND_INTERVAL_S": "0", "WA_TIER_LIMIT_PER_DAY": "1000000"}
    return harness.spawn_node(**env), harness.spawn_node(**env)


async def _recipient_states(harness: ServerHarness, cid: int) -> dict[str, str]:
    conn = await asyncpg.connect(harness.database_url)
    try:
        rows = await conn.fetch("SELECT phone, state FROM campaign_recipients WHERE campaign_id = $1", cid)
    finally:
        await conn.close()
    return {r["phone"][1:]: r["state"] for r in rows}


async def test_ten_thousand_recipients_on_two_nodes_are_each_sent_exactly_once(
        harness: ServerHarness, graph: GraphApiFake) -> None:
    n = 10_000
    a, _ = _spawn_two(harness, graph)
    _, admin, account_id = await _setup(harness, graph, node=a)
    await admin.connect()
    cid = await _campaign(admin, account_id, _csv(n))
    await admin.call("POST", f"/api/v1/campaigns/{cid}/start", expect=200)
    body = await _wait_status(admin, cid, "completed", timeout=300)
    assert body["counts"]["sent"] == n and body["counts"]["unknown"] == 0
    calls = Counter(s.json["to"] for s in _template_sends(graph))
    assert len(calls) == n and set(calls.values()) == {1}
    final = await admin.log.wait_for("campaign:progress", lambda e: e["status"] == "completed", timeout=10)
    assert final["sent"] == n
    events = admin.log.all("campaign:progress")
    assert len(events) > 2
    _assert_monotonic(events)


async def test_a_node_killed_mid_campaign_never_causes_a_second_send(
        harness: ServerHarness, graph: GraphApiFake) -> None:
    n = 1000
    a, b = _spawn_two(harness, graph)
    _, admin, account_id = await _setup(harness, graph, node=a)
    graph.delay_next(0.05, times=n)  # slow answers: each node has sends in flight when b dies
    cid = await _campaign(admin, account_id, _csv(n))
    await admin.call("POST", f"/api/v1/campaigns/{cid}/start", expect=200)
    await graph.wait_for_sends(n // 3, timeout=60)
    assert b.process is not None
    b.process.send_signal(signal.SIGKILL)
    await asyncio.to_thread(b.process.wait, 10)
    body = await _wait_status(admin, cid, "completed", timeout=60)
    calls = Counter(s.json["to"] for s in _template_sends(graph))
    assert set(calls.values()) == {1}  # nobody twice
    states = await _recipient_states(harness, cid)
    assert set(states.values()) <= {"sent", "unknown"}
    assert body["counts"]["sent"] + body["counts"]["unknown"] == n
    # every recipient marked sent reached the fake; the unknown ones are those b had in flight
    assert {p for p, st in states.items() if st == "sent"} <= set(calls)
    assert 0 < body["counts"]["unknown"] <= 8  # at most one in flight per lane of b


# --- recipients from a contact label ----------------------------------------------------------------

async def _contact_id(boss: Client, name: str) -> int:
    _, found = await boss.call("GET", f"/api/v1/contacts?q={name}", expect=200)
    matches = [c for c in found["contacts"] if c["name"] == name]
    assert len(matches) == 1, found
    return int(matches[0]["id"])


async def test_a_label_fills_the_recipients_from_its_contacts_and_reports_those_left_out(
        harness: ServerHarness, graph: GraphApiFake) -> None:
    node, _, account_id = await _setup(harness, graph)
    boss = await harness.user(node, role="supervisor")
    ann, bo, dee, eve, fay = "4917200000001", "4917200000002", "4917200000004", "4917200000005", "4917200000006"
    for i, (wa_id, name, text) in enumerate([(ann, "Ann", "hello"), (bo, "Bo", "STOP"), (dee, "Dee", "hi"),
                                             (eve, "Eve", "hey"), (fay, "Fay", "yo")]):
        await _post(harness, node, make_text_webhook(PN, wa_id, name, f"wamid.L{i}", text))
    await _post(harness, node, make_identity_webhook(PN, "wamid.L9", "hi", bsuid="US.cy-123", name="Cy"))
    ids = {n: await _contact_id(boss, n) for n in ("Ann", "Bo", "Cy", "Dee", "Eve", "Fay")}
    _, vip = await boss.call("POST", "/api/v1/labels", {"name": "Campaign VIP", "color": "#123456"}, expect=201)
    label = vip["label"]["id"]
    for n in ("Ann", "Bo", "Cy", "Dee", "Eve"):
        await boss.call("PUT", f"/api/v1/contacts/{ids[n]}/labels/{label}", expect=200)
    await boss.call("PATCH", f"/api/v1/contacts/{ids['Ann']}", {"attributes": {"order": "A-1"}}, expect=200)
    await boss.call("PATCH", f"/api/v1/contacts/{ids['Bo']}", {"attributes": {"order": "B-2"}}, expect=200)
    await boss.call("PATCH", f"/api/v1/contacts/{ids['Eve']}", {"name": "Eve Lind", "attributes": {"order": 42}},
                    expect=200)

    _, created = await boss.call("POST", "/api/v1/campaigns", {
        "account_id": account_id, "name": "VIP orders", "template": "order_update", "language": "en_US",
        "variables": ["first_name", "order"]}, expect=201)
    cid = created["campaign"]["id"]
    url = f"/api/v1/campaigns/{cid}/recipients/from-label"
    # first_name from the contact's name; order (not named) from the contact attribute "order"
    _, body = await boss.call("PUT", url, {"label_id": label, "variables": {"first_name": "{{contact.name}}"}},
                              expect=200)
    assert body["recipients"] == 2
    assert [(p["phone"], p["text"]) for p in body["preview"]] == [
        ("+" + ann, "Order news\n\nHi Ann, your order A-1 ships today."),
        ("+" + eve, "Order news\n\nHi Eve Lind, your order 42 ships today.")]
    assert body["left_out_count"] == 3
    assert {(x["contact_id"], x["reason"], x["variable"]) for x in body["left_out"]} == {
        (ids["Bo"], "opted_out", None), (ids["Cy"], "no_phone", None), (ids["Dee"], "empty_value", "order")}

    # bad requests change nothing
    status, err = await boss.call("PUT", url, {"label_id": label, "variables": {"nope": "x"}})
    assert status == 400 and err["error"]["details"]["variable"] == "nope"
    status, err = await boss.call("PUT", url, {"label_id": label, "variables": {"order": "{{contact.age}}"}})
    assert status == 400 and err["error"]["details"]["variable"] == "order"
    await boss.call("PUT", url, {"label_id": 987654321}, expect=404)
    _, empty = await boss.call("POST", "/api/v1/labels", {"name": "Campaign nobody", "color": "#654321"}, expect=201)
    status, err = await boss.call("PUT", url, {"label_id": empty["label"]["id"]})
    assert status == 400 and err["error"]["details"]["reason"] == "label"
    await boss.call("PUT", url, {"label_id": label}, expect=400)  # no first_name attribute: everyone left out
    staff = await harness.user(node, role="staff")
    await staff.call("PUT", url, {"label_id": label}, expect=403)
    _, detail = await boss.call("GET", f"/api/v1/campaigns/{cid}", expect=200)
    assert detail["counts"]["total"] == 2

    await boss.call("POST", f"/api/v1/campaigns/{cid}/start", expect=200)
    await _wait_status(boss, cid, "completed")
    sends = {s.json["to"]: s.json["template"]["components"] for s in _template_sends(graph)}
    assert sends == {
        ann: [{"type": "body", "parameters": [{"type": "text", "text": "Ann"}, {"type": "text", "text": "A-1"}]}],
        eve: [{"type": "body", "parameters": [{"type": "text", "text": "Eve Lind"}, {"type": "text", "text": "42"}]}]}
    assert len(_template_sends(graph)) == 2
    await boss.call("PUT", url, {"label_id": label, "variables": {"first_name": "friend"}}, expect=409)
    conn = await asyncpg.connect(harness.database_url)
    try:
        rows = await conn.fetch("SELECT actor_id, meta FROM audit_log WHERE action = 'campaign.recipients'"
                                " AND target_id = $1", cid)
    finally:
        await conn.close()
    metas = [(r["actor_id"], json.loads(r["meta"])) for r in rows]
    assert [(actor, m["label_id"], m["recipients"], m["left_out"]) for actor, m in metas] == [(boss.id, label, 2, 3)]


async def test_a_label_takes_a_recycled_number_once_for_the_older_contact(
        harness: ServerHarness, graph: GraphApiFake) -> None:
    node, _, account_id = await _setup(harness, graph)
    boss = await harness.user(node, role="supervisor")
    number = "4917200000077"
    # Gil had the number; Hal, known by his BSUID, writes from it later: both contacts show it
    await _post(harness, node, make_identity_webhook(PN, "wamid.RN1", "hi", wa_id=number, bsuid="US.gil", name="Gil"))
    await _post(harness, node, make_identity_webhook(PN, "wamid.RN2", "hi", bsuid="US.hal", name="Hal"))
    await _post(harness, node, make_identity_webhook(PN, "wamid.RN3", "hi", wa_id=number, bsuid="US.hal", name="Hal"))
    gil, hal = await _contact_id(boss, "Gil"), await _contact_id(boss, "Hal")
    for cid in (gil, hal):
        _, contact = await boss.call("GET", f"/api/v1/contacts/{cid}", expect=200)
        assert contact["contact"]["phone"] == "+" + number
    _, label = await boss.call("POST", "/api/v1/labels", {"name": "Campaign recycled", "color": "#777777"}, expect=201)
    for cid in (gil, hal):
        await boss.call("PUT", f"/api/v1/contacts/{cid}/labels/{label['label']['id']}", expect=200)
    _, created = await boss.call("POST", "/api/v1/campaigns", {
        "account_id": account_id, "name": "Recycled", "template": "order_update", "language": "en_US",
        "variables": ["name", "order"]}, expect=201)
    _, body = await boss.call("PUT", f"/api/v1/campaigns/{created['campaign']['id']}/recipients/from-label",
                              {"label_id": label["label"]["id"], "variables": {"order": "today"}}, expect=200)
    assert body["recipients"] == 1
    assert [p["text"] for p in body["preview"]] == ["Order news\n\nHi Gil, your order today ships today."]
    assert [(x["contact_id"], x["reason"]) for x in body["left_out"]] == [(hal, "duplicate_phone")]
