"""Two browsers chat; a cut connection catches up once; XSS shows as text; staff take over WhatsApp."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from playwright.async_api import Page, expect

from tests.e2e.conftest import screenshot
from tests.fakes.graph_api import GraphApiFake, make_text_webhook, signed_post
from tests.support import PASSWORD, ServerHarness


async def register(page: Page, base: str, name: str) -> None:
    await page.goto(base + "/")
    await page.get_by_test_id("login-username").fill(name)
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("register-submit").click()
    await expect(page.get_by_test_id("me")).to_have_text(name)


async def login(page: Page, base: str, name: str) -> None:
    await page.goto(base + "/")
    await page.get_by_test_id("login-username").fill(name)
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("me")).to_have_text(name)


async def create_room(page: Page, name: str) -> None:
    await page.get_by_test_id("new-room-name").fill(name)
    await page.get_by_test_id("create-room").click()
    await expect(page.get_by_test_id("room-title")).to_have_text(name)


async def open_room(page: Page, name: str) -> None:
    item = page.get_by_test_id("room-item").filter(has_text=name)
    await item.click()
    await expect(page.get_by_test_id("room-title")).to_have_text(name)
    # a public room is joined by opening it: done once the join's answer is in (what others
    # say or type from then on reaches this page)
    await expect(item).not_to_have_attribute("aria-label", re.compile("not joined"))


async def two_in_a_room(harness: ServerHarness, pages: Callable[..., Any], room: str) -> tuple[Page, Page]:
    """Alice creates ``room`` and Bob joins it, each in their own browser."""
    node = await harness.start_node()
    a, b = await pages(), await pages()
    await register(a, node.base_url, f"alice_{uuid.uuid4().hex[:5]}")
    await create_room(a, room)
    await register(b, node.base_url, f"bob_{uuid.uuid4().hex[:5]}")
    await open_room(b, room)
    return a, b


async def say(page: Page, text: str) -> None:
    await page.get_by_test_id("composer-input").fill(text)
    await page.get_by_test_id("send").click()


def bodies(page: Page, text: str) -> Any:
    return page.get_by_test_id("message-body").filter(has_text=text)


async def test_two_browsers_chat_and_see_typing_and_presence(harness: ServerHarness, pages: Callable[..., Any]) -> None:
    node = await harness.start_node()
    a, b = await pages(), await pages()
    alice, bob = f"alice_{uuid.uuid4().hex[:5]}", f"bob_{uuid.uuid4().hex[:5]}"
    await register(a, node.base_url, alice)
    await create_room(a, "lobby")
    await register(b, node.base_url, bob)
    await open_room(b, "lobby")
    await a.get_by_test_id("composer-input").press_sequentially("hel")
    await expect(b.get_by_test_id("typing-indicator")).to_contain_text(f"{alice} is typing")
    await say(a, "hello from alice")
    await expect(bodies(b, "hello from alice")).to_have_count(1)
    await say(b, "hi alice")
    await expect(bodies(a, "hi alice")).to_have_count(1)
    await expect(b.locator("[data-testid=presence-dot].online")).not_to_have_count(0)
    await screenshot(a, "chat-alice")
    await screenshot(b, "chat-bob")


async def test_a_click_on_a_room_lands_while_a_message_arriving_in_it_updates_its_item(
        harness: ServerHarness, pages: Callable[..., Any]) -> None:
    # pressed on the room, released after its unread count changed: an item replaced between
    # the two would lose the click (a busy room could hardly be opened)
    a, b = await two_in_a_room(harness, pages, "busy")
    await create_room(b, "elsewhere")
    await say(a, "one")
    item = b.get_by_test_id("room-item").filter(has_text="busy")
    await expect(item.get_by_test_id("unread")).to_have_text("1")
    box = await item.bounding_box()
    assert box is not None
    await b.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    await b.mouse.down()
    await say(a, "two")
    await expect(item.get_by_test_id("unread")).to_have_text("2")
    await b.mouse.up()
    await expect(b.get_by_test_id("room-title")).to_have_text("busy")
    await expect(bodies(b, "two")).to_have_count(1)


async def test_message_sent_while_the_receiver_is_offline_arrives_once(harness: ServerHarness, pages: Callable[..., Any]) -> None:
    a, b = await two_in_a_room(harness, pages, "resilience")
    await say(a, "before the cut")
    await expect(bodies(b, "before the cut")).to_have_count(1)
    await b.context.set_offline(True)
    await expect(b.get_by_test_id("connection-banner")).to_be_visible(timeout=30000)
    await say(a, "while you were away")
    await b.context.set_offline(False)
    await expect(b.get_by_test_id("connection-banner")).to_be_hidden(timeout=30000)
    await expect(bodies(b, "while you were away")).to_have_count(1, timeout=15000)
    await say(a, "after the reconnect")
    await expect(bodies(b, "after the reconnect")).to_have_count(1)
    await expect(bodies(b, "while you were away")).to_have_count(1)


XSS = ["<script>window.__xss = 1</script>", '<img src=x onerror="window.__xss = 1">',
       '<a href="javascript:window.__xss=1">click</a>', "[click](javascript:window.__xss=1)"]


async def test_xss_corpus_renders_as_literal_text(harness: ServerHarness, pages: Callable[..., Any]) -> None:
    a, b = await two_in_a_room(harness, pages, "xss")
    for payload in XSS:
        await say(a, payload)
        await expect(b.get_by_test_id("message-body").filter(has_text=payload)).to_have_count(1)
    texts = await b.get_by_test_id("message-body").all_text_contents()
    assert texts[-len(XSS):] == XSS
    assert await b.locator("[data-testid=message-list] img, [data-testid=message-list] script").count() == 0
    for link in await b.locator("[data-testid=message-list] a").all():
        await link.click()
    assert await b.evaluate("window.__xss") is None and await a.evaluate("window.__xss") is None


async def test_staff_takes_over_a_whatsapp_conversation_and_replies(harness: ServerHarness, pages: Callable[..., Any]) -> None:
    graph = await GraphApiFake().start()
    try:
        node = await harness.start_node(wa_graph_url=graph.base_url)
        admin = await harness.user(node, role="admin")
        staff = await harness.user(node, role="staff")
        await admin.call("POST", "/api/v1/admin/wa/accounts", {"phone_number_id": "PN9", "display_phone": "+1 555 0100",
                         "access_token": "tok", "app_secret": "sec", "verify_token": "vt"}, expect=201)
        raw, headers = signed_post("sec", make_text_webhook("PN9", "4917055555555", "Dora", "wamid.E1", "how do I create a room?"))
        async with harness.http.post(node.base_url + "/webhooks/whatsapp", data=raw, headers=headers) as r:
            assert r.status == 200
        await graph.wait_for_sends(1)  # the assistant answered
        page = await pages()
        await login(page, node.base_url, staff.user["username"])
        await page.get_by_test_id("nav-inbox").click()
        await page.get_by_test_id("inbox-item").filter(has_text="Dora").click()
        await expect(page.get_by_test_id("wa-mode")).to_have_text("AI answering")
        await screenshot(page, "staff-inbox-conversation")
        await page.get_by_test_id("takeover").click()
        await expect(page.get_by_test_id("wa-mode")).to_contain_text("Human")
        await say(page, "Hello Dora, a person here.")
        sends = await graph.wait_for_sends(2)
        assert sends[-1].json["text"]["body"] == "Hello Dora, a person here."
        await expect(page.get_by_test_id("wa-status")).not_to_have_count(0)
        await screenshot(page, "staff-takeover")
    finally:
        await graph.stop()


async def test_api_docs_page_renders_from_this_origin_under_its_policy(harness: ServerHarness,
                                                                       pages: Callable[..., Any]) -> None:
    node = await harness.start_node()
    page = await pages()
    requested: list[str] = []
    refused: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    await page.goto(node.base_url + "/api/docs")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("chat-server")
    await expect(page.locator(".opblock-summary-path").filter(has_text="/api/v1/rooms").first).to_be_visible()
    assert requested and all(u.startswith(node.base_url) for u in requested), requested  # nothing from a CDN
    assert refused == []  # Swagger UI runs under the page's 'self'-only policy
    await screenshot(page, "api-docs")
