"""Desk reports: figures from a seeded set of conversation timelines equal values computed by
hand; the CSV export streams one row per stay, is audited, and bad windows are refused."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from tests.fakes.graph_api import GraphApiFake, make_text_webhook, signed_post
from tests.support import Client, ServerHarness

DAY1 = datetime(2026, 3, 2, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)


def at(day: datetime, hh: int, mm: int) -> datetime:
    return day + timedelta(hours=hh, minutes=mm)


async def _seed(harness: ServerHarness, agent1: int, agent2: int) -> dict[str, int]:
    """Two queues and five stays over two days (times in UTC):

    r1  day 1  09:00 opened, routed A, 09:01 assigned agent1, 09:05 first response, 10:00 closed
    r2  day 1  09:30 opened, routed A, 09:40 closed                       (the assistant alone)
    r3  day 1  11:00 opened, routed B, 11:02 taken over by agent2, 11:10 first response,
               11:20 transferred to agent1, 12:00 closed
    r1  day 2  08:00 reopened, routed B, 08:30 assigned agent2              (still open)
    r4  day 1  23:30 opened (never routed), 23:50 closed                   (the assistant alone)
    """
    conn = await asyncpg.connect(harness.database_url)
    try:
        qa = await conn.fetchval("INSERT INTO queues (name) VALUES ('Sales') RETURNING id")
        qb = await conn.fetchval("INSERT INTO queues (name) VALUES ('Support') RETURNING id")
        acct = await conn.fetchval("INSERT INTO wa_accounts (phone_number_id, display_phone, access_token, app_secret, "
                                   "verify_token) VALUES ('PNR', '+1', 't', 's', 'v') RETURNING id")
        rooms = {}
        for name, wa_id, contact in (("r1", "4911", "Ann"), ("r2", "4922", "=cmd()"), ("r3", "4933", "Cy"),
                                     ("r4", "4944", "Di")):
            rooms[name] = await conn.fetchval(
                "INSERT INTO rooms (slug, name, kind) VALUES ($1, $1, 'whatsapp') RETURNING id", f"wa-{name}")
            await conn.execute("INSERT INTO wa_contacts (account_id, wa_id, name, room_id) VALUES ($1, $2, $3, $4)",
                               acct, wa_id, contact, rooms[name])
        # Cy's contact record carries the name staff gave them; the WhatsApp profile name stays "Cy"
        person = await conn.fetchval("INSERT INTO contacts (name, name_edited) VALUES ('Cy Berg', true) RETURNING id")
        await conn.execute("UPDATE wa_contacts SET contact_id = $1 WHERE room_id = $2", person, rooms["r3"])
        events: list[tuple[str, str, datetime, dict[str, Any]]] = [
            ("r1", "opened", at(DAY1, 9, 0), {}), ("r1", "routed", at(DAY1, 9, 0), {"queue_id": qa}),
            ("r1", "assigned", at(DAY1, 9, 1), {"to_user_id": agent1}),
            ("r1", "first_response", at(DAY1, 9, 5), {"actor_id": agent1}), ("r1", "closed", at(DAY1, 10, 0), {}),
            ("r2", "opened", at(DAY1, 9, 30), {}), ("r2", "routed", at(DAY1, 9, 30), {"queue_id": qa}),
            ("r2", "closed", at(DAY1, 9, 40), {}),
            ("r3", "opened", at(DAY1, 11, 0), {}), ("r3", "routed", at(DAY1, 11, 0), {"queue_id": qb}),
            ("r3", "taken_over", at(DAY1, 11, 2), {"actor_id": agent2}),
            ("r3", "first_response", at(DAY1, 11, 10), {"actor_id": agent2}),
            ("r3", "transferred", at(DAY1, 11, 20), {"actor_id": agent2, "from_user_id": agent2, "to_user_id": agent1}),
            ("r3", "closed", at(DAY1, 12, 0), {"actor_id": agent1}),
            ("r4", "opened", at(DAY1, 23, 30), {}), ("r4", "closed", at(DAY1, 23, 50), {}),
            ("r1", "reopened", at(DAY2, 8, 0), {}), ("r1", "routed", at(DAY2, 8, 0), {"queue_id": qb}),
            ("r1", "assigned", at(DAY2, 8, 30), {"to_user_id": agent2}),
        ]
        for room, kind, when, cols in sorted(events, key=lambda e: e[2]):
            names = ["room_id", "kind", "created_at", *cols]
            await conn.execute(f"INSERT INTO conversation_events ({', '.join(names)}) VALUES "
                               f"({', '.join(f'${i + 1}' for i in range(len(names)))})",
                               rooms[room], kind, when, *cols.values())
        return {"qa": qa, "qb": qb, **rooms}
    finally:
        await conn.close()


async def _report(client: Client, expect: int | None = 200, **params: str) -> tuple[int, Any]:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return await client.call("GET", f"/api/v1/reports/conversations?{query}", expect=expect)


def _fig(opened: int, resolved: int, ai: int, human: int, frt: tuple[float | None, float | None],
         res: tuple[float | None, float | None]) -> dict[str, Any]:
    return {"opened": opened, "resolved": resolved, "resolved_by_ai": ai, "resolved_by_human": human,
            "first_response_s": {"median": frt[0], "p90": frt[1]}, "resolution_s": {"median": res[0], "p90": res[1]}}


async def test_report_figures_from_seeded_timelines_equal_the_hand_computed_values(harness: ServerHarness) -> None:
    node = await harness.start_node()
    sup = await harness.user(node, role="supervisor")
    agent1, agent2 = await harness.user(node, role="staff"), await harness.user(node, role="staff")
    ids = await _seed(harness, agent1.id, agent2.id)

    _, body = await _report(sup, **{"from": "2026-03-02", "to": "2026-03-03"})
    # day 1: r1 (human; frt 300 s; 3600 s), r2 (ai; 600 s), r3 (human; frt 600 s; 3600 s), r4 (ai; 1200 s)
    #   first response: 300, 600 -> median 450, p90 300 + 0.9 * 300 = 570
    #   resolution: 600, 1200, 3600, 3600 -> median 2400, p90 at rank 2.7 -> 3600
    # day 2: r1's second stay, open
    assert body["rows"] == [
        {"day": "2026-03-02", **_fig(4, 4, 2, 2, (450.0, 570.0), (2400.0, 3600.0))},
        {"day": "2026-03-03", **_fig(1, 0, 0, 0, (None, None), (None, None))}]
    assert body["total"] == _fig(5, 4, 2, 2, (450.0, 570.0), (2400.0, 3600.0))

    _, body = await _report(sup, group_by="queue,agent", **{"from": "2026-03-02", "to": "2026-03-02"})
    a1, a2 = {"id": agent1.id, "display_name": agent1.user["display_name"]}, {"id": agent2.id, "display_name": agent2.user["display_name"]}
    sales, support = {"id": ids["qa"], "name": "Sales"}, {"id": ids["qb"], "name": "Support"}
    # r3 ends with agent1 (the transfer), so agent1 holds r1 and r3 though only r1 is in Sales
    rows = {(json.dumps(r["queue"]), json.dumps(r["agent"])): r for r in body["rows"]}
    assert rows == {
        (json.dumps(sales), json.dumps(a1)): {"queue": sales, "agent": a1, **_fig(1, 1, 0, 1, (300.0, 300.0), (3600.0, 3600.0))},
        (json.dumps(sales), "null"): {"queue": sales, "agent": None, **_fig(1, 1, 1, 0, (None, None), (600.0, 600.0))},
        (json.dumps(support), json.dumps(a1)): {"queue": support, "agent": a1, **_fig(1, 1, 0, 1, (600.0, 600.0), (3600.0, 3600.0))},
        ("null", "null"): {"queue": None, "agent": None, **_fig(1, 1, 1, 0, (None, None), (1200.0, 1200.0))},
    }
    assert a2 not in [r["agent"] for r in body["rows"]]  # agent2 held r3 but handed it on

    # days are counted in the asked time zone: in Berlin (UTC+1 in March) r4 starts on day 2
    _, body = await _report(sup, tz="Europe/Berlin", **{"from": "2026-03-02", "to": "2026-03-03"})
    assert [(r["day"], r["opened"]) for r in body["rows"]] == [("2026-03-02", 3), ("2026-03-03", 2)]


async def test_the_csv_export_streams_one_row_per_stay_is_audited_and_defuses_formulas(harness: ServerHarness) -> None:
    node = await harness.start_node()
    sup = await harness.user(node, role="supervisor")
    agent1, agent2 = await harness.user(node, role="staff"), await harness.user(node, role="staff")
    ids = await _seed(harness, agent1.id, agent2.id)
    async with harness.http.get(node.base_url + "/api/v1/reports/conversations/export?from=2026-03-02&to=2026-03-03",
                                headers=sup.auth) as r:
        assert r.status == 200 and r.content_type == "text/csv"
        text = (await r.read()).decode()
    table = list(csv.DictReader(io.StringIO(text)))
    assert [(int(t["room_id"]), t["resolved_by"], t["agent"], t["queue"]) for t in table] == [
        (ids["r1"], "human", agent1.user["display_name"], "Sales"), (ids["r2"], "ai", "", "Sales"),
        (ids["r3"], "human", agent1.user["display_name"], "Support"), (ids["r4"], "ai", "", ""),
        (ids["r1"], "", agent2.user["display_name"], "Support")]
    assert [t["first_response_s"] for t in table] == ["300.0", "", "600.0", "", ""]
    assert table[1]["contact_name"] == "'=cmd()"  # a spreadsheet shows it, never runs it
    assert table[2]["contact_name"] == "Cy Berg"  # the name staff set, as the inbox shows it
    conn = await asyncpg.connect(harness.database_url)
    try:
        rows = await conn.fetch("SELECT actor_id, action, meta::text AS meta FROM audit_log WHERE action = 'report.export'")
    finally:
        await conn.close()
    assert [(r["actor_id"], json.loads(r["meta"])["from"]) for r in rows] == [(sup.id, "2026-03-02")]


async def test_reports_refuse_staff_bad_windows_and_unknown_zones_with_clear_codes(harness: ServerHarness) -> None:
    node = await harness.start_node()
    sup, staff = await harness.user(node, role="supervisor"), await harness.user(node, role="staff")
    status, body = await _report(staff, expect=None, **{"from": "2026-03-02", "to": "2026-03-02"})
    assert status == 403 and body["error"]["code"] == "forbidden"
    for params, field in (({"from": "2026-03-05", "to": "2026-03-02"}, "to"),
                          ({"from": "2024-01-01", "to": "2026-03-02"}, "to"),
                          ({"from": "2026-03-02", "to": "2026-03-02", "tz": "Mars/Olympus"}, "tz")):
        status, body = await _report(sup, expect=None, **params)
        assert status == 400 and body["error"]["code"] == "invalid" and body["error"]["details"]["field"] == field, body
        async with harness.http.get(node.base_url + "/api/v1/reports/conversations/export?"
                                    + "&".join(f"{k}={v}" for k, v in params.items()), headers=sup.auth) as r:
            assert r.status == 400
    conn = await asyncpg.connect(harness.database_url)
    try:
        assert await conn.fetch("SELECT id FROM audit_log WHERE action = 'report.export'") == []
    finally:
        await conn.close()


async def test_a_conversation_worked_through_the_desk_shows_in_the_report_as_the_timeline_says(
        harness: ServerHarness, graph: GraphApiFake) -> None:
    """No seeding: a contact writes, staff take over and reply, then close; the assistant alone
    answers and closes a second one. The figures come from what the state machine recorded."""
    node = await harness.start_node(wa_graph_url=graph.base_url)
    admin, staff = await harness.user(node, role="admin"), await harness.user(node, role="staff")
    sup = await harness.user(node, role="supervisor")
    await admin.call("POST", "/api/v1/admin/wa/accounts", {
        "phone_number_id": "PNREP", "display_phone": "+1 555 000 7777", "access_token": "EAAG-token",
        "app_secret": "secret-rep", "verify_token": "v"}, expect=201)
    await staff.connect()
    rooms = []
    for contact, wamid in (("4917000007001", "wamid.R1"), ("4917000007002", "wamid.R2")):
        raw, headers = signed_post("secret-rep", make_text_webhook("PNREP", contact, "Ann", wamid, "hello"))
        async with harness.http.post(node.base_url + "/webhooks/whatsapp", data=raw, headers=headers) as r:
            assert r.status == 200
        conv = await staff.log.wait_for("conversation:updated", lambda c, w=contact: c["contact"]["wa_id"] == w, timeout=10)
        rooms.append(conv["room_id"])
    await staff.call("POST", f"/api/v1/wa/conversations/{rooms[0]}/takeover", expect=200)
    await staff.send(rooms[0], "Hi Ann, a person here.")
    for room in rooms:
        await staff.call("POST", f"/api/v1/wa/conversations/{room}/close", expect=200)

    today = datetime.now(UTC).date().isoformat()
    _, body = await _report(sup, group_by="agent", **{"from": today, "to": today})
    by_agent = {None if r["agent"] is None else r["agent"]["id"]: r for r in body["rows"]}
    assert set(by_agent) == {staff.id, None}
    human, ai = by_agent[staff.id], by_agent[None]
    assert (human["opened"], human["resolved_by_human"], human["resolved_by_ai"]) == (1, 1, 0)
    assert (ai["opened"], ai["resolved_by_ai"], ai["resolved_by_human"]) == (1, 1, 0)
    assert human["first_response_s"]["median"] is not None and human["first_response_s"]["median"] >= 0
    assert ai["first_response_s"]["median"] is None
    assert human["resolution_s"]["median"] >= human["first_response_s"]["median"]
