"""A day at the support desk, in real browsers: the issue's "done when" — a small team (an admin,
a supervisor, three agents in two queues) runs a day of WhatsApp support in the web app without
touching the database.

Every staff action is a click or a keystroke in Chromium, one browser context per person. Setup
outside the web app is limited to what the web app has no page for and the outside world: the
accounts are registered through the REST API (and given their roles), the supervisor creates the
label and the shared canned reply through the REST API (docs/DESK.md: no page for them yet), and
the contacts write through signed webhooks, with the fake Graph API as WhatsApp. Assertions are on
what each person sees and on what the fake Graph API received; nothing reads the database.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.e2e.conftest import screenshot
from tests.e2e.test_browser import login, say
from tests.fakes.graph_api import GraphApiFake, make_text_webhook, signed_post
from tests.support import ChatNode, ServerHarness

pytestmark = pytest.mark.heavy

PN, SECRET, DISPLAY = "PN2026", "app-secret-desk-day", "+1 555 0126"
LIVE_MS = 15_000  # routing, assignment and fan-out on a shared two-core machine: bounded, not timed


@pytest.fixture
async def graph() -> AsyncIterator[GraphApiFake]:
    fake = await GraphApiFake().start()
    yield fake
    await fake.stop()


class Contacts:
    """The outside world: contacts writing to the business number through signed webhooks."""

    def __init__(self, harness: ServerHarness, node: ChatNode) -> None:
        self.harness, self.node, self.n = harness, node, 0

    async def write(self, wa_id: str, name: str, text: str) -> None:
        self.n += 1
        raw, headers = signed_post(SECRET, make_text_webhook(PN, wa_id, name, f"wamid.DAY{self.n}", text))
        async with self.harness.http.post(self.node.base_url + "/webhooks/whatsapp", data=raw, headers=headers) as r:
            assert r.status == 200


def bodies_to(graph: GraphApiFake, wa_id: str) -> list[str]:
    return [s.json["text"]["body"] for s in graph.sends() if s.json.get("to") == wa_id and s.json.get("type") == "text"]


async def wait_for_body(graph: GraphApiFake, wa_id: str, needle: str) -> str:
    """The newest text sent to ``wa_id`` that contains ``needle`` (waits, bounded, for it)."""
    for _ in range(20):
        found = [b for b in bodies_to(graph, wa_id) if needle in b]
        if found:
            return found[-1]
        await graph.wait_for_sends(len(graph.sends()) + 1, timeout=LIVE_MS / 1000)
    raise AssertionError(f"nothing with {needle!r} was sent to {wa_id}: {bodies_to(graph, wa_id)}")


def inbox_item(page: Page, name: str) -> Any:
    return page.get_by_test_id("inbox-item").filter(has_text=name)


async def open_inbox(page: Page) -> None:
    await page.get_by_test_id("nav-inbox").click()
    await expect(page.get_by_role("heading", name="WhatsApp inbox")).to_be_visible()


async def create_queue(admin: Page, name: str, members: list[str], greeting: str) -> None:
    await admin.get_by_test_id("queue-name").fill(name)
    await admin.get_by_test_id("queue-greeting").fill(greeting)
    for member in members:
        await admin.locator("label").filter(has_text=member).get_by_test_id("queue-member").check()
    await admin.get_by_test_id("queue-add").click()
    await expect(admin.get_by_test_id("admin-status")).to_have_text("The queue was created.")
    for member in members:
        await expect(admin.get_by_test_id("queues").locator("li").filter(has_text=name)).to_contain_text(member)


async def test_a_small_team_runs_a_day_of_whatsapp_support_in_the_web_app(
        harness: ServerHarness, graph: GraphApiFake, pages: Callable[..., Any]) -> None:
    node = await harness.start_node(wa_graph_url=graph.base_url)
    tag = uuid.uuid4().hex[:4]
    admin_u = await harness.user(node, f"admin_{tag}", role="admin")
    super_u = await harness.user(node, f"sue_{tag}", role="supervisor")
    ana_u, ben_u, cleo_u = [await harness.user(node, f"{n}_{tag}", role="staff") for n in ("ana", "ben", "cleo")]
    ana_n, ben_n, cleo_n = (u.user["username"] for u in (ana_u, ben_u, cleo_u))
    contacts = Contacts(harness, node)
    dora, erik, gus = "4917055502601", "4917055502602", "4917055502603"

    # --- morning: the admin sets the desk up in the admin page ---------------------------------
    admin = await pages(1280, 900)
    await login(admin, node.base_url, admin_u.user["username"])
    await admin.get_by_test_id("nav-admin").click()
    await expect(admin.locator("label").filter(has_text=cleo_n).get_by_test_id("queue-member")).to_have_count(1)
    await create_queue(admin, "Sales", [ana_n, ben_n], "Sales here, happy to help.")
    await create_queue(admin, "Support", [cleo_n], "Support here, tell us more.")
    for field, value in (("phone-number-id", PN), ("display-phone", DISPLAY), ("access-token", "tok"),
                         ("app-secret", SECRET), ("verify-token", "vt")):
        await admin.get_by_test_id(f"wa-account-{field}").fill(value)
    await admin.get_by_test_id("wa-account-add").click()
    number = admin.get_by_test_id("wa-accounts").locator("li").filter(has_text=DISPLAY)
    await expect(number.get_by_test_id("wa-default-queue").locator("option")).to_have_count(3)  # rule and queues loaded
    # an early bird writes before the routing rule is set: no queue, the assistant answers
    await contacts.write(gus, "Gus", "how do I create a room?")
    await graph.wait_for_sends(1)
    await number.get_by_test_id("wa-routing").select_option("menu")
    await expect(admin.get_by_test_id("admin-status")).to_have_text("The routing rule was saved.")

    # what the web app has no page for: the supervisor's label and shared canned reply
    _, label = await super_u.call("POST", "/api/v1/labels", {"name": "VIP", "color": "#d9480f"}, expect=201)
    await super_u.call("POST", "/api/v1/labels", {"name": "refund", "color": "#1f883d"}, expect=201)
    await super_u.call("POST", "/api/v1/canned-replies", {"scope": "shared", "shortcut": "thanks",
                       "body": "Thanks {{contact.name}}, {{agent.name}} from the desk here."}, expect=201)

    # --- the team comes online: Ana (Sales), Cleo (Support), the supervisor ---------------------
    ana, cleo, sue = await pages(1280, 900), await pages(1280, 900), await pages(1280, 900)
    for page, user in ((ana, ana_u), (cleo, cleo_u), (sue, super_u)):
        await login(page, node.base_url, user.user["username"])
        await open_inbox(page)

    # --- Dora writes; the menu; Ana opens the conversation while Dora picks ----------------------
    await contacts.write(dora, "Dora", "Hi, I would like to upgrade my plan")
    menu = await wait_for_body(graph, dora, "1. Sales")
    assert "2. Support" in menu
    await expect(inbox_item(ana, "Dora")).to_have_count(1, timeout=LIVE_MS)
    await inbox_item(ana, "Dora").click()
    await expect(ana.get_by_test_id("conv-queue")).to_have_text("waiting for the menu answer")

    await contacts.write(dora, "Dora", "1")
    assert "Sales here, happy to help." in await wait_for_body(graph, dora, "queue of Sales")
    # routed to Sales and auto-assigned to Ana, the one Sales agent online: her view turns hers,
    # and the assistant's summary appears by itself, labelled as AI-written
    await expect(ana.get_by_test_id("wa-mode")).to_have_text(f"Human: {ana_n}", timeout=LIVE_MS)
    await expect(ana.get_by_test_id("conv-queue")).to_have_text("Sales")
    await expect(ana.get_by_test_id("ai-tag")).to_have_text("AI-written · check before using", timeout=LIVE_MS)
    await expect(ana.get_by_test_id("assist-summary-text")).not_to_be_empty()

    # --- Erik writes and picks Support: Cleo gets it ------------------------------------------
    await contacts.write(erik, "Erik", "My order arrived broken")
    await wait_for_body(graph, erik, "2. Support")
    await contacts.write(erik, "Erik", "2")
    await wait_for_body(graph, erik, "queue of Support")
    await expect(inbox_item(cleo, "Erik")).to_contain_text(cleo_n, timeout=LIVE_MS)
    # each agent sees their own queue's conversations only (live, without a reload)
    await expect(inbox_item(cleo, "Dora")).to_have_count(0, timeout=LIVE_MS)
    await open_inbox(ana)
    await expect(inbox_item(ana, "Dora")).to_contain_text(ana_n)
    await expect(inbox_item(ana, "Erik")).to_have_count(0, timeout=LIVE_MS)
    # Ben comes in late: he sees Sales's conversation, not Support's
    ben = await pages(1280, 900)
    await login(ben, node.base_url, ben_n)
    await open_inbox(ben)
    await expect(inbox_item(ben, "Dora")).to_have_count(1)
    await expect(inbox_item(ben, "Erik")).to_have_count(0)
    # Ben takes over the early bird's conversation from the assistant: the summary appears, AI-labelled
    await inbox_item(ben, "Gus").click()
    await expect(ben.get_by_test_id("wa-mode")).to_have_text("AI answering")
    await ben.get_by_test_id("takeover").click()
    await expect(ben.get_by_test_id("wa-mode")).to_have_text(f"Human: {ben_n}")
    await expect(ben.get_by_test_id("ai-tag")).to_have_text("AI-written · check before using", timeout=LIVE_MS)
    await expect(ben.get_by_test_id("assist-summary-text")).not_to_be_empty(timeout=LIVE_MS)
    await say(ben, "Open the sidebar and press Create, until six tonight.")
    assert await wait_for_body(graph, gus, "until six") == "Open the sidebar and press Create, until six tonight."
    await ben.get_by_test_id("close").click()
    await expect(ben.get_by_test_id("conv-status")).to_have_text("closed")
    # the supervisor sees every conversation
    await expect(inbox_item(sue, "Dora")).to_have_count(1, timeout=LIVE_MS)
    await expect(inbox_item(sue, "Erik")).to_have_count(1, timeout=LIVE_MS)

    # --- Ana works Dora's conversation ---------------------------------------------------------
    await inbox_item(ana, "Dora").click()
    await expect(ana.get_by_test_id("contact-panel")).to_be_visible()
    composer = ana.get_by_test_id("composer-input")
    await ana.get_by_test_id("assist-suggest").click()
    await expect(composer).not_to_have_value("", timeout=LIVE_MS)
    await expect(ana.get_by_test_id("ai-tag")).to_have_text("AI-written · check before using")
    suggested = await composer.input_value()
    edited = f"{suggested} (Ana, Sales)"
    await composer.fill(edited)
    await ana.get_by_test_id("send").click()
    assert await wait_for_body(graph, dora, "(Ana, Sales)") == edited

    private = "Dora is on the annual plan, check the refund rules"
    await ana.get_by_test_id("note-input").fill(private)
    await ana.get_by_test_id("note-add").click()
    await expect(ana.get_by_test_id("note").filter(has_text=private)).to_contain_text("Private note · staff only")

    await ana.get_by_test_id("contact-name").fill("Dora Lind")
    await ana.get_by_test_id("contact-save").click()
    await expect(ana.get_by_test_id("contact-status")).to_have_text("Saved.")
    await expect(ana.get_by_test_id("room-title")).to_have_text("Dora Lind")
    await ana.get_by_test_id("contact-label-add").select_option(str(label["label"]["id"]))
    await expect(ana.get_by_test_id("contact-labels").get_by_test_id("label-chip")).to_have_text("VIP×")
    await ana.get_by_test_id("conv-label-add").select_option(label="refund")
    await expect(ana.locator(".wa-bar").get_by_test_id("label-chip")).to_have_text("refund×")
    await expect(inbox_item(sue, "Dora")).to_contain_text("refund", timeout=LIVE_MS)  # live on the supervisor's list

    await composer.click()
    await composer.press_sequentially("/than")
    await expect(ana.get_by_test_id("canned-option")).to_have_count(1)
    await composer.press("Enter")
    thanks = f"Thanks Dora Lind, {ana_n} from the desk here."
    await expect(composer).to_have_value(thanks)
    await ana.get_by_test_id("send").click()
    assert await wait_for_body(graph, dora, "from the desk here") == thanks
    await screenshot(ana, "desk-day-agent")

    # --- Ana transfers it to Support with a note: Cleo sees it arrive ----------------------------
    await expect(ana.get_by_test_id("transfer-queue").locator("option")).to_have_text(["Transfer to…", "Support"])
    await ana.get_by_test_id("transfer-queue").select_option(label="Support")
    await ana.get_by_test_id("transfer-note").fill("Wants a refund of the upgrade")
    await ana.get_by_test_id("transfer-submit").click()
    await expect(inbox_item(cleo, "Dora Lind")).to_contain_text(cleo_n, timeout=LIVE_MS)
    await expect(inbox_item(ana, "Dora Lind")).to_have_count(0, timeout=LIVE_MS)
    await inbox_item(cleo, "Dora Lind").click()
    await expect(cleo.get_by_test_id("conv-queue")).to_have_text("Support")
    transferred = cleo.get_by_test_id("timeline-event").filter(has_text="transferred")
    await expect(transferred).to_contain_text(f"{ana_n} transferred it to Support")
    await expect(transferred).to_contain_text("Note: Wants a refund of the upgrade")
    await expect(cleo.get_by_test_id("note").filter(has_text=private)).to_have_count(1)
    await expect(cleo.get_by_test_id("contact-labels")).to_contain_text("VIP")
    await expect(cleo.locator(".wa-bar").get_by_test_id("label-chip")).to_have_text("refund×")
    await screenshot(cleo, "desk-day-transferred")

    # nothing staff-only reached WhatsApp: not the note, not the transfer's note, not the summary
    sent = [s.json.get("text", {}).get("body", "") for s in graph.sends()]
    assert not [b for b in sent if private in b or "refund of the upgrade" in b]

    # --- the supervisor: every conversation, the day's figures and the CSV ----------------------
    await expect(inbox_item(sue, "Dora Lind")).to_have_count(1, timeout=LIVE_MS)
    await expect(inbox_item(sue, "Erik")).to_have_count(1)
    await expect(inbox_item(sue, "Gus")).to_have_count(1)
    await sue.get_by_test_id("nav-reports").click()
    await sue.get_by_test_id("report-group").select_option("queue")
    await sue.get_by_test_id("report-run").click()
    table = sue.get_by_test_id("report-table")
    total = table.locator("tr.total td")
    await expect(total.first).to_have_text("3", timeout=LIVE_MS)  # opened today
    await expect(total.nth(2)).to_have_text("1")  # resolved by a person: Ben closed Gus's
    await expect(table.get_by_test_id("report-row").filter(has_text="Support").locator("td").first).to_have_text("2")
    await screenshot(sue, "desk-day-reports")
    async with sue.expect_download(timeout=LIVE_MS) as download_info:
        await sue.get_by_test_id("report-csv").click()
    download = await download_info.value
    csv_path = await download.path()
    assert csv_path is not None
    csv = csv_path.read_text()
    assert csv.splitlines()[0].startswith("room_id,contact_wa_id,contact_name,")
    rows = csv.splitlines()[1:]
    assert len(rows) == 3 and any(gus in r and ",human," in r for r in rows) and any(dora in r and "Dora Lind" in r and "Support" in r and ana_n not in r for r in rows) \
        and any(erik in r and "Support" in r for r in rows), csv

    # --- the admin reads the day in the audit log ------------------------------------------------
    await admin.reload()
    await admin.get_by_test_id("nav-admin").click()
    audit = admin.get_by_test_id("audit-log")
    expected = {"queue.create": admin_u, "wa_account.add": admin_u, "wa_account.routing": admin_u,
                "conversation.takeover": ben_u, "conversation.close": ben_u,
                "note.add": ana_u, "contact.update": ana_u, "contact.label": ana_u, "conversation.label": ana_u,
                "conversation.transfer": ana_u, "report.export": super_u}
    for action, actor in expected.items():
        row = audit.get_by_test_id("audit-row").filter(has_text=action).first
        await expect(row).to_contain_text(actor.user["username"], timeout=LIVE_MS)
    await expect(audit.get_by_test_id("audit-row").filter(has_text="conversation.transfer")).to_contain_text(
        "Wants a refund of the upgrade")
    await screenshot(admin, "desk-day-audit")
