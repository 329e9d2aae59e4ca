"""Contacts: a person found by any identifier WhatsApp sends (number, BSUID, both), across
business numbers and number changes; a name staff set survives later profile names; search,
edits with clear errors and nothing half-applied, one audit row per edit, and the live
``contact:updated`` reaching staff only."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg

from server.storage.db import migrate
from tests.fakes.graph_api import GraphApiFake, make_identity_webhook, signed_post
from tests.support import ChatNode, Client, ServerHarness

PN, PN2, SECRET = "PN1800", "PN1801", "app-secret-contacts"
BSUID = "US.13491208655302741918"
NUMBER, NEW_NUMBER = "4917055501800", "4917055501899"


async def _fetch(harness: ServerHarness, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(harness.database_url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def _setup(harness: ServerHarness, graph: GraphApiFake, *numbers: str) -> tuple[ChatNode, Client]:
    node = await harness.start_node(wa_graph_url=graph.base_url)
    admin = await harness.user(node, role="admin")
    for i, pn in enumerate(numbers or (PN,)):
        await admin.call("POST", "/api/v1/admin/wa/accounts", {
            "phone_number_id": pn, "display_phone": f"+1 555 000 180{i}", "access_token": "EAAG-token",
            "app_secret": SECRET, "verify_token": "v"}, expect=201)
    staff = await harness.user(node, role="staff")
    await staff.connect()
    return node, staff


async def _post(harness: ServerHarness, node: ChatNode, payload: dict[str, Any]) -> None:
    raw, headers = signed_post(SECRET, payload)
    async with harness.http.post(node.base_url + "/webhooks/whatsapp", data=raw, headers=headers) as r:
        assert r.status == 200, await r.text()


async def _conversations(staff: Client, query: str = "") -> list[dict[str, Any]]:
    _, body = await staff.call("GET", f"/api/v1/wa/conversations{query}", expect=200)
    return body["conversations"]  # type: ignore[no-any-return]


async def _wait_messages(harness: ServerHarness, count: int) -> None:
    for _ in range(200):
        rows = await _fetch(harness, "SELECT count(*) AS n FROM wa_messages WHERE direction = 'in'")
        if rows[0]["n"] >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{count} inbound messages were not stored")


async def test_bsuid_only_both_and_number_only_payloads_land_on_one_contact(
        harness: ServerHarness, graph: GraphApiFake) -> None:
    node, staff = await _setup(harness, graph)
    await _post(harness, node, make_identity_webhook(PN, "wamid.I1", "first", bsuid=BSUID, name="Ann"))
    await _post(harness, node, make_identity_webhook(PN, "wamid.I2", "second", wa_id=NUMBER, bsuid=BSUID, name="Ann"))
    await _post(harness, node, make_identity_webhook(PN, "wamid.I3", "third", wa_id=NUMBER, name="Ann"))
    await _wait_messages(harness, 3)

    people = await _fetch(harness, "SELECT id FROM contacts")
    assert len(people) == 1
    [conv] = await _conversations(staff)
    assert conv["contact"]["id"] == people[0]["id"] and conv["contact"]["bsuid"] == BSUID
    assert conv["contact"]["wa_id"] == NUMBER  # replies go to the number once it is known
    _, body = await staff.call("GET", f"/api/v1/contacts/{people[0]['id']}", expect=200)
    contact = body["contact"]
    assert contact["phone"] == "+" + NUMBER and contact["name"] == "Ann"
    assert {(i["kind"], i["value"]) for i in contact["identities"]} == {
        ("bsuid", BSUID), ("wa_id", NUMBER), ("phone", "+" + NUMBER)}


async def test_a_new_number_with_the_same_bsuid_keeps_one_contact_and_one_conversation(
        harness: ServerHarness, graph: GraphApiFake) -> None:
    node, staff = await _setup(harness, graph)
    await _post(harness, node, make_identity_webhook(PN, "wamid.N1", "hi", wa_id=NUMBER, bsuid=BSUID, name="Bo"))
    await _post(harness, node, make_identity_webhook(PN, "wamid.N2", "new phone", wa_id=NEW_NUMBER, bsuid=BSUID,
                                                     name="Bo"))
    await _wait_messages(harness, 2)
    assert len(await _fetch(harness, "SELECT id FROM contacts")) == 1
    [conv] = await _conversations(staff)
    assert conv["contact"]["wa_id"] == NEW_NUMBER  # replies follow the number they write from now
    _, body = await staff.call("GET", f"/api/v1/contacts/{conv['contact']['id']}", expect=200)
    assert body["contact"]["phone"] == "+" + NEW_NUMBER
    # the old number still names them: a message from it alone is theirs too
    await _post(harness, node, make_identity_webhook(PN, "wamid.N3", "old phone", wa_id=NUMBER, name="Bo"))
    await _wait_messages(harness, 3)
    assert len(await _fetch(harness, "SELECT id FROM contacts")) == 1
    assert len(await _conversations(staff)) == 1


async def test_one_person_writing_to_two_business_numbers_is_one_contact_with_two_conversations(
        harness: ServerHarness, graph: GraphApiFake) -> None:
    node, staff = await _setup(harness, graph, PN, PN2)
    await _post(harness, node, make_identity_webhook(PN, "wamid.T1", "to one", wa_id=NUMBER, name="Cy"))
    await _post(harness, node, make_identity_webhook(PN2, "wamid.T2", "to two", wa_id=NUMBER, name="Cy"))
    await _wait_messages(harness, 2)
    [person] = await _fetch(harness, "SELECT id FROM contacts")
    _, body = await staff.call("GET", f"/api/v1/contacts/{person['id']}/conversations", expect=200)
    convs = body["conversations"]
    assert len(convs) == 2 and {c["contact"]["id"] for c in convs} == {person["id"]}
    assert convs[0]["updated_at"] >= convs[1]["updated_at"]
    status, body = await staff.call("GET", f"/api/v1/contacts/{person['id'] + 999}/conversations")
    assert status == 404 and body["error"]["code"] == "not_found"


async def test_a_name_staff_set_survives_a_later_profile_name(harness: ServerHarness, graph: GraphApiFake) -> None:
    node, staff = await _setup(harness, graph)
    await _post(harness, node, make_identity_webhook(PN, "wamid.E1", "hi", wa_id=NUMBER, name="dj_ann99"))
    await _wait_messages(harness, 1)
    [conv] = await _conversations(staff)
    cid = conv["contact"]["id"]
    _, body = await staff.call("PATCH", f"/api/v1/contacts/{cid}", {"name": "  Ann Lee  "}, expect=200)
    assert body["contact"]["name"] == "Ann Lee" and body["contact"]["name_edited"] is True
    await _post(harness, node, make_identity_webhook(PN, "wamid.E2", "again", wa_id=NUMBER, name="ann_new_profile"))
    await _wait_messages(harness, 2)
    _, body = await staff.call("GET", f"/api/v1/contacts/{cid}", expect=200)
    assert body["contact"]["name"] == "Ann Lee"
    [conv] = await _conversations(staff)
    assert conv["contact"]["name"] == "Ann Lee"


async def test_search_finds_contacts_by_name_email_and_number(harness: ServerHarness, graph: GraphApiFake) -> None:
    node, staff = await _setup(harness, graph)
    await _post(harness, node, make_identity_webhook(PN, "wamid.S1", "hi", wa_id=NUMBER, name="Dana Fox"))
    await _post(harness, node, make_identity_webhook(PN, "wamid.S2", "hi", wa_id=NEW_NUMBER, name="Eli Moss"))
    await _wait_messages(harness, 2)
    _, body = await staff.call("GET", "/api/v1/contacts?q=fox", expect=200)
    assert [c["name"] for c in body["contacts"]] == ["Dana Fox"]
    eli = (await staff.call("GET", "/api/v1/contacts?q=Eli", expect=200))[1]["contacts"][0]
    await staff.call("PATCH", f"/api/v1/contacts/{eli['id']}", {"email": "eli@example.org"}, expect=200)
    _, body = await staff.call("GET", "/api/v1/contacts?q=example.org", expect=200)
    assert [c["id"] for c in body["contacts"]] == [eli["id"]]
    _, body = await staff.call("GET", "/api/v1/contacts?q=%2B49%20170%20555%2001899", expect=200)
    assert [c["id"] for c in body["contacts"]] == [eli["id"]]
    _, body = await staff.call("GET", "/api/v1/contacts?q=100%25", expect=200)  # % is a character, not a wildcard
    assert body["contacts"] == []
    _, page = await staff.call("GET", "/api/v1/contacts?limit=1", expect=200)
    assert len(page["contacts"]) == 1 and page["next_cursor"] == page["contacts"][0]["id"]
    _, rest = await staff.call("GET", f"/api/v1/contacts?limit=1&cursor={page['next_cursor']}", expect=200)
    assert rest["next_cursor"] is None and rest["contacts"][0]["id"] < page["contacts"][0]["id"]
    user = await harness.user(node)
    status, _ = await user.call("GET", "/api/v1/contacts")
    assert status == 403


async def test_bad_edits_are_refused_with_clear_codes_and_change_nothing(
        harness: ServerHarness, graph: GraphApiFake) -> None:
    node, staff = await _setup(harness, graph)
    await _post(harness, node, make_identity_webhook(PN, "wamid.B1", "hi", wa_id=NUMBER, name="Fay"))
    await _wait_messages(harness, 1)
    [conv] = await _conversations(staff)
    cid = conv["contact"]["id"]
    cases: list[tuple[dict[str, Any], int, str, str]] = [
        ({"name": "New", "email": "not-an-email"}, 400, "invalid", "email"),
        ({"name": "New", "attributes": {f"k{i}": i for i in range(51)}}, 413, "too_large", "attributes"),
        ({"name": "New", "attributes": {f"k{i}": "x" * 400 for i in range(30)}}, 413, "too_large", "attributes"),
        ({"name": "New", "attributes": {"bad key!": 1}}, 400, "invalid", "attributes"),
        ({"name": "New", "attributes": {"nested": {"a": 1}}}, 400, "invalid", "attributes"),
        ({"name": "   "}, 400, "invalid", "name"),
    ]
    for patch, status_code, code, field in cases:
        status, body = await staff.call("PATCH", f"/api/v1/contacts/{cid}", patch)
        assert (status, body["error"]["code"], body["error"]["details"].get("field")) == (status_code, code, field), (
            patch, body)
    status, body = await staff.call("PATCH", f"/api/v1/contacts/{cid + 999}", {"name": "x"})
    assert status == 404 and body["error"]["code"] == "not_found"
    _, body = await staff.call("GET", f"/api/v1/contacts/{cid}", expect=200)
    assert body["contact"]["name"] == "Fay" and body["contact"]["email"] is None and body["contact"]["attributes"] == {}
    assert await _fetch(harness, "SELECT id FROM audit_log WHERE target_type = 'contact'") == []


async def test_every_edit_leaves_one_audit_row_and_reaches_staff_not_users(
        harness: ServerHarness, graph: GraphApiFake) -> None:
    node, staff = await _setup(harness, graph)
    user = await harness.user(node)
    await user.connect()
    await _post(harness, node, make_identity_webhook(PN, "wamid.A1", "hi", wa_id=NUMBER, name="Gus"))
    await _wait_messages(harness, 1)
    [conv] = await _conversations(staff)
    cid = conv["contact"]["id"]
    _, body = await staff.call("PATCH", f"/api/v1/contacts/{cid}", {
        "email": "gus@example.com", "notes": "prefers mornings", "attributes": {"plan": "pro", "seats": 3}}, expect=200)
    assert body["contact"]["attributes"] == {"plan": "pro", "seats": 3}
    event = await staff.log.wait_for("contact:updated", lambda c: c["email"] == "gus@example.com", timeout=10)
    assert event["id"] == cid and event["notes"] == "prefers mornings"
    # the same values again change nothing: no row, no event
    await staff.call("PATCH", f"/api/v1/contacts/{cid}", {"email": "gus@example.com"}, expect=200)
    _, cleared = await staff.call("PATCH", f"/api/v1/contacts/{cid}", {"email": ""}, expect=200)
    assert cleared["contact"]["email"] is None, cleared
    await staff.log.wait_for("contact:updated", lambda c: c["email"] is None, timeout=10)
    rows = await _fetch(harness, "SELECT action, target_id, meta FROM audit_log WHERE target_type = 'contact' ORDER BY id")
    assert [(r["action"], r["target_id"]) for r in rows] == [("contact.update", cid), ("contact.update", cid)]
    assert sorted(_meta(rows[0])["changed"]) == ["attributes", "email", "notes"]
    assert "contact:updated" not in user.log.events or not user.log.events["contact:updated"]


def _meta(row: asyncpg.Record) -> dict[str, Any]:
    meta = row["meta"]
    return json.loads(meta) if isinstance(meta, str) else dict(meta)


async def test_the_schema_migration_makes_one_contact_per_number_of_existing_conversations(
        harness: ServerHarness, graph: GraphApiFake) -> None:
    node, staff = await _setup(harness, graph, PN, PN2)
    await _post(harness, node, make_identity_webhook(PN, "wamid.M1", "hi", wa_id=NUMBER, name="Kim"))
    await _post(harness, node, make_identity_webhook(PN2, "wamid.M2", "hi", wa_id=NUMBER, name="Kim K"))
    await _post(harness, node, make_identity_webhook(PN, "wamid.M3", "hi", wa_id=NEW_NUMBER, name="Lou"))
    await _wait_messages(harness, 3)
    # the node stops first: an assistant reply still in flight locks contacts and conversations
    # in its own order, and the DROPs below deadlocked with it
    await harness.stop_node(node)
    pool = await asyncpg.create_pool(harness.database_url, min_size=1, max_size=1)
    try:
        # the database as it was before 0018: conversations without contacts
        await pool.execute("DROP TABLE contact_labels, conversation_labels, labels, contact_identities;"
                           " ALTER TABLE wa_contacts DROP COLUMN contact_id, DROP COLUMN bsuid; DROP TABLE contacts;"
                           " DELETE FROM schema_migrations WHERE version = 18")
        assert await migrate(pool) == ["0018_contacts.sql"]
        people = await pool.fetch("SELECT id, name, phone FROM contacts ORDER BY phone")
        # named by the profile name of the conversation active last (the assistant may still touch either)
        assert [p["phone"] for p in people] == ["+" + NUMBER, "+" + NEW_NUMBER]
        assert people[0]["name"] in ("Kim", "Kim K") and people[1]["name"] == "Lou"
        links = await pool.fetch("SELECT wa_id, contact_id FROM wa_contacts ORDER BY id")
        by_number = {p["phone"]: p["id"] for p in people}
        assert [(r["wa_id"], r["contact_id"]) for r in links] == [
            (NUMBER, by_number["+" + NUMBER]), (NUMBER, by_number["+" + NUMBER]), (NEW_NUMBER, by_number["+" + NEW_NUMBER])]
        identities = await pool.fetch("SELECT kind, value FROM contact_identities WHERE contact_id = $1 ORDER BY kind",
                                      by_number["+" + NUMBER])
        assert [(r["kind"], r["value"]) for r in identities] == [("phone", "+" + NUMBER), ("wa_id", NUMBER)]
    finally:
        await pool.close()
    # a new contact after the migration gets an id of its own (the identity sequence moved on)
    node = await harness.start_node(wa_graph_url=graph.base_url)
    staff = await harness.user(node, role="staff")
    await _post(harness, node, make_identity_webhook(PN, "wamid.M4", "hi", wa_id="4917055501877", name="Max"))
    await _wait_messages(harness, 4)
    _, body = await staff.call("GET", "/api/v1/contacts?q=Max", expect=200)
    assert len(body["contacts"]) == 1


async def test_simultaneous_first_messages_of_one_person_make_one_contact(
        harness: ServerHarness, graph: GraphApiFake) -> None:
    node, staff = await _setup(harness, graph)
    payloads = [make_identity_webhook(PN, f"wamid.R{i}", f"hello {i}", wa_id=NUMBER, bsuid=BSUID, name="Ola")
                for i in range(6)]
    await asyncio.gather(*(_post(harness, node, p) for p in payloads))
    await _wait_messages(harness, 6)
    assert len(await _fetch(harness, "SELECT id FROM contacts")) == 1
    assert len(await _conversations(staff)) == 1
