"""The desk's management pages in a real browser: a supervisor creates a label on the Labels page
(a taken name is refused beside the form), a staff member finds a contact by part of their number
on the Contacts page, sees the contact's label and opens the contact, and an admin adds a staff
member to a queue in the admin page and sees them listed as its agent."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from playwright.async_api import expect

from tests.e2e.conftest import screenshot
from tests.e2e.test_browser import login
from tests.fakes.graph_api import GraphApiFake, make_text_webhook, signed_post
from tests.support import ServerHarness

PN, SECRET = "PN1830", "app-secret-desk-pages"
CONTACTS = [("4917055501830", "Dora"), ("4917055501831", "Emil")]


@pytest.fixture
async def graph() -> AsyncIterator[GraphApiFake]:
    fake = await GraphApiFake().start()
    yield fake
    await fake.stop()


async def test_a_supervisor_makes_a_label_staff_find_a_contact_by_number_and_an_admin_adds_a_queue_agent(
        harness: ServerHarness, graph: GraphApiFake, pages: Callable[..., Any]) -> None:
    node = await harness.start_node(wa_graph_url=graph.base_url)
    admin = await harness.user(node, role="admin", name=f"admin_{uuid.uuid4().hex[:5]}")
    supervisor = await harness.user(node, role="supervisor", name=f"sup_{uuid.uuid4().hex[:5]}")
    staff = await harness.user(node, role="staff", name=f"agent_{uuid.uuid4().hex[:5]}")
    await admin.call("POST", "/api/v1/admin/wa/accounts", {"phone_number_id": PN, "display_phone": "+1 555 0183",
                     "access_token": "tok", "app_secret": SECRET, "verify_token": "vt"}, expect=201)
    for i, (wa_id, name) in enumerate(CONTACTS):
        raw, headers = signed_post(SECRET, make_text_webhook(PN, wa_id, name, f"wamid.P{i}", "hello"))
        async with harness.http.post(node.base_url + "/webhooks/whatsapp", data=raw, headers=headers) as r:
            assert r.status == 200
    await graph.wait_for_sends(len(CONTACTS))  # the assistant answered both
    _, created = await admin.call("POST", "/api/v1/queues", {"name": "Billing"}, expect=201)
    queue_id = created["queue"]["id"]

    # the supervisor creates a label; the same name again is refused beside the form
    sup_page = await pages()
    await login(sup_page, node.base_url, supervisor.user["username"])
    await sup_page.get_by_test_id("nav-labels").click()
    await sup_page.get_by_test_id("label-new-name").fill("Refunds")
    await sup_page.get_by_test_id("label-create").click()
    await expect(sup_page.get_by_test_id("label-row").filter(has_text="Refunds")).to_have_count(1)
    await sup_page.get_by_test_id("label-new-name").fill("refunds")
    await sup_page.get_by_test_id("label-create").click()
    await expect(sup_page.get_by_test_id("label-create-error")).to_have_attribute("data-code", "conflict")
    await expect(sup_page.get_by_test_id("label-row")).to_have_count(1)
    await screenshot(sup_page, "desk-labels")
    _, labels = await staff.call("GET", "/api/v1/labels", expect=200)
    assert [x["name"] for x in labels["labels"]] == ["Refunds"]

    # a staff member puts it on Emil, finds Emil by part of the number and opens the contact
    _, found = await staff.call("GET", "/api/v1/contacts?q=01831", expect=200)
    emil = found["contacts"][0]
    await staff.call("PUT", f"/api/v1/contacts/{emil['id']}/labels/{labels['labels'][0]['id']}", expect=200)
    staff_page = await pages()
    await login(staff_page, node.base_url, staff.user["username"])
    await staff_page.get_by_test_id("nav-contacts").click()
    await expect(staff_page.get_by_test_id("contact-row")).to_have_count(2)
    await staff_page.get_by_test_id("contacts-search").fill("01831")
    row = staff_page.get_by_test_id("contact-row")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("Emil")
    await expect(row.get_by_test_id("label-chip")).to_have_text("Refunds")
    await screenshot(staff_page, "desk-contacts")
    await row.get_by_test_id("contact-open").click()
    await expect(staff_page.get_by_test_id("contact-title")).to_have_text("Emil")
    await expect(staff_page.get_by_test_id("contact-phone")).to_have_text("+4917055501831")
    await expect(staff_page.get_by_test_id("contact-conversation")).to_have_count(1)
    await screenshot(staff_page, "desk-contact-page")

    # the admin adds the staff member to the queue
    admin_page = await pages()
    await login(admin_page, node.base_url, admin.user["username"])
    await admin_page.get_by_test_id("nav-admin").click()
    item = admin_page.locator(f"[data-queue='{queue_id}']")
    await item.get_by_test_id("queue-members-toggle").click()
    await item.get_by_test_id("queue-member-pick").select_option(str(staff.id))
    await item.get_by_test_id("queue-member-add").click()
    await expect(item.get_by_test_id("queue-member-row")).to_have_attribute("data-user", str(staff.id))
    await expect(item.get_by_test_id("queue-member-names")).to_have_text(staff.user["display_name"])
    _, queue = await admin.call("GET", f"/api/v1/queues/{queue_id}", expect=200)
    assert [(m["user_id"], m["capacity"]) for m in queue["queue"]["members"]] == [(staff.id, None)]
    # and sets how many open conversations the desk auto-assigns to them there
    capacity = item.get_by_test_id("queue-member-capacity")
    await capacity.fill("7")
    await capacity.press("Enter")
    await expect(capacity).to_have_value("7")
    await screenshot(admin_page, "desk-queue-members")
    for _ in range(50):
        _, queue = await admin.call("GET", f"/api/v1/queues/{queue_id}", expect=200)
        if queue["queue"]["members"][0]["capacity"] is not None:
            break
        await asyncio.sleep(0.1)
    assert [(m["user_id"], m["capacity"]) for m in queue["queue"]["members"]] == [(staff.id, 7)]
    # another admin's change while a capacity is half typed: the field keeps it and the focus,
    # and nothing is saved until it is finished (taking the field away would commit the "1")
    await capacity.fill("1")
    await admin.call("PATCH", f"/api/v1/queues/{queue_id}", {"name": "Billing desk"}, expect=200)
    await expect(item.locator(".queue-badge")).to_have_text("Billing desk")
    await expect(capacity).to_be_focused()
    await expect(capacity).to_have_value("1")
    _, queue = await admin.call("GET", f"/api/v1/queues/{queue_id}", expect=200)
    assert [(m["user_id"], m["capacity"]) for m in queue["queue"]["members"]] == [(staff.id, 7)]
    await capacity.press_sequentially("2")
    await capacity.press("Enter")
    for _ in range(50):
        _, queue = await admin.call("GET", f"/api/v1/queues/{queue_id}", expect=200)
        if queue["queue"]["members"][0]["capacity"] != 7:
            break
        await asyncio.sleep(0.1)
    assert [(m["user_id"], m["capacity"]) for m in queue["queue"]["members"]] == [(staff.id, 12)]
    assert queue["queue"]["name"] == "Billing desk"
    # another admin's changes show on the open page: a member removed, a queue created
    await admin.call("PATCH", f"/api/v1/queues/{queue_id}", {"members": []}, expect=200)
    await expect(item.get_by_test_id("queue-member-names")).to_have_text("no members")
    await expect(item.get_by_test_id("queue-members")).to_have_attribute("open", "")  # still unfolded
    await admin.call("POST", "/api/v1/queues", {"name": "Returns"}, expect=201)
    await expect(admin_page.get_by_test_id("queues").locator(".queue-badge")).to_contain_text(["Returns"])
