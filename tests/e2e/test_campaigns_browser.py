"""The campaigns page in Chromium (docs/CAMPAIGNS.md, "Web app"): an admin creates a campaign for
a synced approved template, uploads a CSV through the file input, reads the preview, starts it
and watches the progress bar reach 100 % with the counts; the fake Graph API shows every
recipient got exactly one template send with its parameters. A CSV with a bad phone on line 3
shows the line-numbered problem and nothing is sent. A supervisor takes the recipients from a
contact label instead and sees who was left out.

Setup outside the page is what the page does not cover: the number is registered and the
templates synced through the REST API, contacts write through signed webhooks, and the label is
made and put on them through the REST API. Pacing is off (``wa_send_interval_s=0``) so the run is
short; the test waits with bounds, never on timings.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.e2e.conftest import screenshot
from tests.e2e.test_browser import login
from tests.fakes.graph_api import GraphApiFake, make_text_webhook, signed_post
from tests.support import ChatNode, Client, ServerHarness

PN, SECRET, WABA = "PN2027", "app-secret-campaign-web", "55501234"
LIVE_MS = 30_000  # the sender, the progress loop and the socket on a shared two-core machine: bounded
ROWS = 30
TEMPLATES = [
    {"name": "order_update", "language": "en_US", "status": "APPROVED", "category": "UTILITY", "id": "1",
     "components": [{"type": "BODY", "text": "Hi {{1}}, your order ships today."}]},
    {"name": "old_promo", "language": "en_US", "status": "PAUSED", "category": "MARKETING", "id": "2",
     "components": [{"type": "BODY", "text": "Sale!"}]},
]


@pytest.fixture
async def graph() -> AsyncIterator[GraphApiFake]:
    fake = await GraphApiFake().start()
    yield fake
    await fake.stop()


async def _setup(harness: ServerHarness, graph: GraphApiFake) -> tuple[ChatNode, Client, int]:
    node = await harness.start_node(wa_graph_url=graph.base_url, wa_send_interval_s=0.0)
    admin = await harness.user(node, f"camp_{uuid.uuid4().hex[:4]}", role="admin")
    _, body = await admin.call("POST", "/api/v1/admin/wa/accounts", {
        "phone_number_id": PN, "display_phone": "+1 555 0127", "access_token": "tok",
        "app_secret": SECRET, "verify_token": "vt"}, expect=201)
    account_id = int(body["account"]["id"])
    graph.set_templates(WABA, TEMPLATES)
    await admin.call("POST", f"/api/v1/wa/accounts/{account_id}/templates/sync", {"waba_id": WABA}, expect=200)
    return node, admin, account_id


async def _open_campaigns(page: Page, node: ChatNode, username: str) -> None:
    await login(page, node.base_url, username)
    await page.get_by_test_id("nav-campaigns").click()
    await expect(page.get_by_role("heading", name="Campaigns")).to_be_visible()
    # the admin's number is preselected and its approved templates listed (the paused one is not)
    await expect(page.get_by_test_id("campaign-template").locator("option")).to_have_count(1)
    await expect(page.get_by_test_id("campaign-template-hint")).to_have_text(" takes 1 parameter(s)")


async def _create(page: Page, name: str) -> None:
    await page.get_by_test_id("campaign-name").fill(name)
    await page.get_by_test_id("campaign-variables").fill("first_name")
    await page.get_by_test_id("campaign-submit").click()
    await expect(page.get_by_test_id("campaign-detail").locator("h3")).to_have_text(f"{name} (order_update, en_US)")


def _phones(n: int) -> list[str]:
    return [f"+4917066{i:06d}" for i in range(n)]


async def test_an_admin_runs_a_csv_campaign_in_the_browser_and_each_recipient_gets_one_send(
        harness: ServerHarness, graph: GraphApiFake, pages: Callable[..., Any], tmp_path: Path) -> None:
    node, admin_u, _ = await _setup(harness, graph)
    page = await pages(1280, 900)
    await _open_campaigns(page, node, admin_u.user["username"])
    await _create(page, "Orders shipped")

    phones = _phones(ROWS)
    csv = tmp_path / "recipients.csv"
    csv.write_text("phone,first_name\n" + "".join(f"{p},Name{i}\n" for i, p in enumerate(phones)), encoding="utf-8")
    await page.get_by_test_id("campaign-csv").set_input_files(str(csv))
    await expect(page.get_by_test_id("campaigns-status")).to_have_text(f"{ROWS} recipients")
    preview = page.get_by_test_id("campaign-preview").locator("li")
    await expect(preview).to_have_count(5)
    await expect(preview.first).to_have_text(f"{phones[0]} Hi Name0, your order ships today.")
    await expect(preview.nth(4)).to_have_text(f"{phones[4]} Hi Name4, your order ships today.")
    await expect(page.get_by_test_id("campaign-percent")).to_have_text(" 0 %")
    await screenshot(page, "campaign-preview")

    await page.get_by_test_id("campaign-start").click()
    await expect(page.get_by_test_id("campaign-percent")).to_have_text(" 100 %", timeout=LIVE_MS)
    await expect(page.get_by_test_id("campaign-bar")).to_have_attribute("value", "100")
    await expect(page.get_by_test_id("campaign-counts")).to_contain_text(f"queued 0 · sent {ROWS} · ", timeout=LIVE_MS)
    await expect(page.get_by_test_id("campaign-counts")).to_contain_text("failed 0 · replied 0 · skipped 0 · unknown 0")
    # the status follows: completed, and only Delete is offered
    await expect(page.get_by_test_id("campaign-detail").get_by_test_id("campaign-delete")).to_be_visible(timeout=LIVE_MS)
    await expect(page.get_by_test_id("campaign-start")).to_have_count(0)
    await expect(page.get_by_test_id("campaign-open").filter(has_text="Orders shipped")).to_have_text(
        "Orders shipped — completed", timeout=LIVE_MS)
    await screenshot(page, "campaign-completed")

    sends = [r.json for r in graph.sends() if r.json.get("type") == "template"]
    # Meta's `to` is the number without its +: one send each, nobody twice, nobody else
    assert Counter(s["to"] for s in sends) == Counter(p.lstrip("+") for p in phones)
    by_phone = {s["to"]: s for s in sends}
    for i, p in enumerate(phones):
        s = by_phone[p.lstrip("+")]
        assert s["template"]["name"] == "order_update" and s["template"]["language"]["code"] == "en_US"
        assert s["template"]["components"] == [{"type": "body", "parameters": [{"type": "text", "text": f"Name{i}"}]}]


async def test_a_csv_with_a_bad_phone_shows_its_line_in_the_browser_and_nothing_is_sent(
        harness: ServerHarness, graph: GraphApiFake, pages: Callable[..., Any], tmp_path: Path) -> None:
    node, admin_u, _ = await _setup(harness, graph)
    page = await pages(1280, 900)
    await _open_campaigns(page, node, admin_u.user["username"])
    await _create(page, "Bad file")

    csv = tmp_path / "bad.csv"
    csv.write_text("phone,first_name\n+4917066000001,Ann\nnot-a-phone,Bob\n+4917066000003,Cy\n", encoding="utf-8")
    await page.get_by_test_id("campaign-csv").set_input_files(str(csv))
    problems = page.get_by_test_id("campaign-problems").locator("li")
    await expect(problems).to_have_count(1)
    await expect(problems.first).to_contain_text("line 3 (phone)")
    await expect(page.get_by_test_id("campaign-preview").locator("li")).to_have_count(0)
    await screenshot(page, "campaign-bad-csv")

    # nothing was kept: starting is refused (no recipients) and the fake got no template send
    await page.get_by_test_id("campaign-start").click()
    await expect(page.get_by_test_id("campaigns-status")).to_contain_text("no recipients to send to")
    await expect(page.get_by_test_id("campaign-percent")).to_have_text(" 0 %")
    _, listed = await admin_u.call("GET", "/api/v1/campaigns?limit=50", expect=200)
    bad = next(c for c in listed["campaigns"] if c["name"] == "Bad file")
    _, body = await admin_u.call("GET", f"/api/v1/campaigns/{bad['id']}", expect=200)
    assert body["campaign"]["status"] == "draft" and body["counts"]["total"] == 0
    assert [r for r in graph.sends() if r.json.get("type") == "template"] == []


async def test_a_supervisor_takes_the_recipients_from_a_contact_label_on_the_page(
        harness: ServerHarness, graph: GraphApiFake, pages: Callable[..., Any]) -> None:
    node, _, account_id = await _setup(harness, graph)
    boss = await harness.user(node, f"sup_{uuid.uuid4().hex[:4]}", role="supervisor")
    ann, bo = "4917066100001", "4917066100002"
    for i, (wa_id, name, text) in enumerate([(ann, "Ann", "hello"), (bo, "Bo", "STOP")]):
        raw, headers = signed_post(SECRET, make_text_webhook(PN, wa_id, name, f"wamid.CL{i}", text))
        async with harness.http.post(node.base_url + "/webhooks/whatsapp", data=raw, headers=headers) as r:
            assert r.status == 200
    _, label = await boss.call("POST", "/api/v1/labels", {"name": "Newsletter", "color": "#1f883d"}, expect=201)
    _, found = await boss.call("GET", "/api/v1/contacts?limit=50", expect=200)
    for c in found["contacts"]:
        await boss.call("PUT", f"/api/v1/contacts/{c['id']}/labels/{label['label']['id']}", expect=200)
    await boss.call("POST", "/api/v1/campaigns", {
        "account_id": account_id, "name": "Newsletter", "template": "order_update", "language": "en_US",
        "variables": ["name"]}, expect=201)

    page = await pages(1280, 900)
    await login(page, node.base_url, boss.user["username"])
    await page.get_by_test_id("nav-campaigns").click()
    await page.get_by_test_id("campaign-open").filter(has_text="Newsletter").click()
    await expect(page.get_by_test_id("campaign-label-variable")).to_have_value("{{contact.name}}")
    await page.get_by_test_id("campaign-label").select_option(label="Newsletter")
    await page.get_by_test_id("campaign-label-use").click()
    await expect(page.get_by_test_id("campaigns-status")).to_have_text("1 recipients, 1 left out")
    await expect(page.get_by_test_id("campaign-preview").locator("li")).to_have_text(
        [f"+{ann} Hi Ann, your order ships today."])
    await expect(page.get_by_test_id("campaign-problems").locator("li")).to_have_text([f"Bo (+{bo}): opted out (STOP)"])
    await page.get_by_test_id("campaign-start").click()
    await expect(page.get_by_test_id("campaign-percent")).to_have_text(" 100 %", timeout=LIVE_MS)
    sends = [r.json for r in graph.sends() if r.json.get("type") == "template"]
    assert [(s["to"], s["template"]["components"]) for s in sends] == [
        (ann, [{"type": "body", "parameters": [{"type": "text", "text": "Ann"}]}])]
