"""S8 (docs/RELIABILITY.md): hostile text in every name a user or a WhatsApp contact controls
(display names, room names and topics, WhatsApp contact names, label names) is shown as text in
Chromium and runs nothing: each payload would set ``window.__xss`` and open an ``alert`` if any of
it ran, and neither happens while the staff member's browser lists, opens and hovers over all of
them (rooms, the inbox, the Contacts page and each contact, the Labels page)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from playwright.async_api import Dialog, Page, expect

from tests.e2e.test_browser import login
from tests.fakes.graph_api import GraphApiFake, make_text_webhook, signed_post
from tests.support import ServerHarness, make_room

pytestmark = pytest.mark.heavy

# short enough for every field (display names: 64 characters)
CORPUS = [
    "<script>window.__xss=1;alert(1)</script>",
    '<img src=x onerror="window.__xss=1;alert(1)">',
    "<svg onload=window.__xss=1;alert(1)>",
    '"><b onmouseover=window.__xss=1;alert(1)>hover</b>',
    "'><iframe src=javascript:window.__xss=1;alert(1)>",
    "[click](javascript:window.__xss=1;alert(1))",
    "javascript:window.__xss=1;alert(1)",
    "<a href=javascript:window.__xss=1;alert(1)>link</a>",
]

# what of the page could run script: any on* attribute, a javascript: link or frame, a script
# element other than the app's own bundle
AUDIT = """() => {
    const bad = [];
    for (const el of document.querySelectorAll('*')) {
        for (const a of el.attributes) {
            if (a.name.startsWith('on')) bad.push(el.tagName + '@' + a.name);
            if (['href', 'src', 'action', 'formaction'].includes(a.name) && /^\\s*javascript:/i.test(a.value)) bad.push(el.tagName + '@' + a.name);
        }
        if (el.tagName === 'SCRIPT' && !el.src) bad.push('inline SCRIPT');
        if (['IFRAME', 'OBJECT', 'EMBED'].includes(el.tagName)) bad.push(el.tagName);
    }
    return {bad, xss: window.__xss ?? null};
}"""


async def hover_everything(page: Page, selector: str) -> None:
    for el in await page.locator(selector).all():
        if await el.is_visible():
            await el.hover()


async def test_hostile_display_names_room_names_topics_and_contact_names_show_as_text_and_run_nothing(
        harness: ServerHarness, pages: Callable[..., Any]) -> None:
    graph = await GraphApiFake().start()
    try:
        limits = dataclasses.replace(harness.config().limits, messages_per_10s=1000, events_per_10s=1000)
        node = await harness.start_node(wa_graph_url=graph.base_url, limits=limits)
        admin = await harness.user(node, role="admin")
        staff = await harness.user(node, role="staff", name=f"staff_{uuid.uuid4().hex[:5]}")
        for i, payload in enumerate(CORPUS):
            mallory = await harness.user(node)
            await mallory.call("PATCH", "/api/v1/users/me", {"display_name": payload}, expect=200)
            room_id = await make_room(mallory, staff, name=payload)
            await mallory.call("PATCH", f"/api/v1/rooms/{room_id}", {"topic": payload}, expect=200)
            await mallory.connect()
            await mallory.send(room_id, f"hello {i}")
            await mallory.disconnect()
        await admin.call("POST", "/api/v1/admin/wa/accounts", {"phone_number_id": "PN8", "display_phone": "+1 555 0108",
                         "access_token": "tok", "app_secret": "sec", "verify_token": "vt"}, expect=201)
        for i, payload in enumerate(CORPUS):
            raw, headers = signed_post("sec", make_text_webhook("PN8", f"49170555{i:04d}", payload, f"wamid.X{i}", f"hi {i}"))
            async with harness.http.post(node.base_url + "/webhooks/whatsapp", data=raw, headers=headers) as r:
                assert r.status == 200
        # a label per payload (names are 40 characters at most), put on the contact of that payload
        _, found = await staff.call("GET", "/api/v1/contacts?limit=100", expect=200)
        contact_of = {c["name"]: c["id"] for c in found["contacts"]}
        for payload in CORPUS:
            _, made = await admin.call("POST", "/api/v1/labels", {"name": payload[:40], "color": "#cf222e"}, expect=201)
            await staff.call("PUT", f"/api/v1/contacts/{contact_of[payload]}/labels/{made['label']['id']}", expect=200)

        page = await pages()
        dialogs: list[str] = []

        async def on_dialog(dialog: Dialog) -> None:
            dialogs.append(dialog.message)
            await dialog.dismiss()

        page.on("dialog", on_dialog)
        await login(page, node.base_url, staff.user["username"])
        for i, payload in enumerate(CORPUS):
            # the room list, the title, the topic and the author's name: the payload as typed
            item = page.get_by_test_id("room-item").filter(has=page.get_by_text(payload, exact=True))
            await expect(item).to_have_count(1)
            await item.click()
            await expect(page.get_by_test_id("room-title")).to_have_text(payload)
            msg = page.get_by_test_id("message").filter(has_text=f"hello {i}")
            await expect(msg).to_contain_text(payload)
            await hover_everything(page, "[data-testid=message], [data-testid=room-title], [data-testid=room-item]")
        for payload in CORPUS:
            await page.get_by_test_id("nav-inbox").click()
            conv = page.get_by_test_id("inbox-item").filter(has=page.get_by_text(payload, exact=True))
            await expect(conv).to_have_count(1)
            await conv.click()
            await expect(page.get_by_test_id("room-title")).to_contain_text(payload)
            await hover_everything(page, "[data-testid=inbox-item], [data-testid=message]")
        audit = await page.evaluate(AUDIT)
        assert audit == {"bad": [], "xss": None}, audit
        for payload in CORPUS:
            await page.get_by_test_id("nav-contacts").click()
            row = page.get_by_test_id("contact-row").filter(has=page.get_by_text(payload, exact=True))
            await expect(row).to_have_count(1)
            await expect(row.get_by_test_id("label-chip")).to_have_text(payload[:40])
            await hover_everything(page, "[data-testid=contact-row]")
            await row.get_by_test_id("contact-open").click()
            await expect(page.get_by_test_id("contact-title")).to_have_text(payload)
            await expect(page.get_by_test_id("contact-name")).to_have_value(payload)
            audit = await page.evaluate(AUDIT)
            assert audit == {"bad": [], "xss": None}, audit
        await page.get_by_test_id("nav-labels").click()
        for payload in CORPUS:
            await expect(page.get_by_test_id("label-row").filter(has=page.get_by_text(payload[:40], exact=True))).to_have_count(1)
        await hover_everything(page, "[data-testid=label-row]")
        audit = await page.evaluate(AUDIT)
        assert audit == {"bad": [], "xss": None}, audit
        assert dialogs == []
    finally:
        await graph.stop()
