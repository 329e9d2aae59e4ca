"""The support desk in a real browser: the contact panel beside a WhatsApp conversation (the
name edited there persists) and the ``/`` canned-reply picker in the composer (chosen with the
keyboard, rendered with the contact's name)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.e2e.conftest import screenshot
from tests.e2e.test_browser import login
from tests.fakes.graph_api import GraphApiFake, make_text_webhook, signed_post
from tests.support import ChatNode, Client, ServerHarness

PN, SECRET = "PN1820", "app-secret-desk-e2e"


@pytest.fixture
async def graph() -> AsyncIterator[GraphApiFake]:
    fake = await GraphApiFake().start()
    yield fake
    await fake.stop()


async def _desk(harness: ServerHarness, graph: GraphApiFake, name: str) -> tuple[ChatNode, Client]:
    """A node with one business number and a conversation of ``name``, and a staff member."""
    node = await harness.start_node(wa_graph_url=graph.base_url)
    admin = await harness.user(node, role="admin")
    staff = await harness.user(node, role="staff")
    await admin.call("POST", "/api/v1/admin/wa/accounts", {"phone_number_id": PN, "display_phone": "+1 555 0182",
                     "access_token": "tok", "app_secret": SECRET, "verify_token": "vt"}, expect=201)
    await _contact_writes(harness, node, name, "wamid.D1", "hello there")
    await graph.wait_for_sends(1)  # the assistant answered
    return node, staff


async def _contact_writes(harness: ServerHarness, node: ChatNode, name: str, wamid: str, text: str) -> None:
    """The contact ``name`` sends ``text``: Meta's signed webhook to the node."""
    raw, headers = signed_post(SECRET, make_text_webhook(PN, "4917055501820", name, wamid, text))
    async with harness.http.post(node.base_url + "/webhooks/whatsapp", data=raw, headers=headers) as r:
        assert r.status == 200


async def _open_conversation(page: Page, node: ChatNode, staff: Client, name: str) -> None:
    await login(page, node.base_url, staff.user["username"])
    await page.get_by_test_id("nav-inbox").click()
    await page.get_by_test_id("inbox-item").filter(has_text=name).click()
    await expect(page.get_by_test_id("contact-panel")).to_be_visible()


async def test_the_contact_panel_shows_the_contact_and_an_edited_name_persists(
        harness: ServerHarness, graph: GraphApiFake, pages: Callable[..., Any]) -> None:
    node, staff = await _desk(harness, graph, "dora_wa")
    page = await pages()
    await _open_conversation(page, node, staff, "dora_wa")
    name = page.get_by_test_id("contact-name")
    await expect(name).to_have_value("dora_wa")
    await expect(page.get_by_test_id("contact-phone")).to_have_text("+4917055501820")
    await expect(page.get_by_test_id("contact-conversation")).to_have_count(1)
    await name.fill("Dora Lind")
    await page.get_by_test_id("contact-email").fill("dora@example.com")
    await page.get_by_test_id("contact-save").click()
    await expect(page.get_by_test_id("contact-status")).to_have_text("Saved.")
    # the inbox shows the new name live, and it is still there after a reload
    await page.get_by_test_id("nav-inbox").click()
    await expect(page.get_by_test_id("inbox-item").filter(has_text="Dora Lind")).to_have_count(1)
    await page.reload()
    await page.get_by_test_id("nav-inbox").click()
    await page.get_by_test_id("inbox-item").filter(has_text="Dora Lind").click()
    await expect(page.get_by_test_id("contact-name")).to_have_value("Dora Lind")
    await expect(page.get_by_test_id("contact-email")).to_have_value("dora@example.com")
    await screenshot(page, "desk-contact-panel")


async def test_the_slash_picker_inserts_a_canned_reply_rendered_with_the_contacts_name(
        harness: ServerHarness, graph: GraphApiFake, pages: Callable[..., Any]) -> None:
    node, staff = await _desk(harness, graph, "Emil")
    await staff.call("POST", "/api/v1/canned-replies", {"shortcut": "hello", "body": "Hello {{contact.name}}!"},
                     expect=201)
    await staff.call("POST", "/api/v1/canned-replies", {"shortcut": "help", "body": "How can I help?"}, expect=201)
    page = await pages()
    await _open_conversation(page, node, staff, "Emil")
    composer = page.get_by_test_id("composer-input")
    await composer.click()
    await composer.press_sequentially("/he")
    options = page.get_by_test_id("canned-option")
    await expect(options).to_have_count(2)
    await composer.press("ArrowDown")
    await composer.press("ArrowUp")
    await expect(page.locator("[data-testid=canned-option][aria-selected=true]")).to_have_attribute(
        "data-shortcut", "hello")
    await composer.press("Enter")
    await expect(composer).to_have_value("Hello Emil!")
    await expect(page.get_by_test_id("canned-list")).to_be_hidden()
    assert len(graph.sends()) == 1  # picking sends nothing: only the assistant's earlier answer
    await screenshot(page, "desk-canned-picker")


async def test_a_note_being_typed_keeps_its_focus_while_the_contact_keeps_writing(
        harness: ServerHarness, graph: GraphApiFake, pages: Callable[..., Any]) -> None:
    # every message of the contact updates the conversation, which re-rendered the panels beside
    # it: the note box left the page for an instant and lost the focus (and the next keys)
    node, staff = await _desk(harness, graph, "Frida")
    page = await pages()
    await _open_conversation(page, node, staff, "Frida")
    note = page.get_by_test_id("note-input")
    await note.click()
    await page.keyboard.type("Called back, she wants")
    for i, text in enumerate(["are you there?", "hello??"]):
        await _contact_writes(harness, node, "Frida", f"wamid.F{i}", text)
        await expect(page.get_by_test_id("message-body").filter(has_text=text)).to_have_count(1)
    await expect(page.get_by_test_id("wa-mode")).to_be_visible()
    await expect(note).to_be_focused()
    await page.keyboard.type(" a refund")
    await expect(note).to_have_value("Called back, she wants a refund")
