"""The app on a phone-sized touch screen (390x844): DM presence on load, message tools on tap,
the length counter, room settings, the account page, the staff pages' way back, the favicon.
Screenshots go to ``test-artifacts/screens/phone-*.png``."""

from __future__ import annotations

import uuid

from playwright.async_api import Browser, expect

from tests.e2e.conftest import screenshot
from tests.e2e.test_browser import login
from tests.support import ServerHarness, make_room

PHONE = {"width": 390, "height": 844}


async def test_on_a_phone_every_screen_fits_and_has_a_way_back(harness: ServerHarness, browser: Browser) -> None:
    node = await harness.start_node()
    alice = await harness.user(node, name=f"alice_{uuid.uuid4().hex[:5]}", role="admin")
    bob = await harness.user(node, name=f"bob_{uuid.uuid4().hex[:5]}")
    room = await make_room(alice, bob, name="garden club")
    await bob.connect()  # bob is online before alice loads the app
    await bob.send(room, "Who brings the seeds on Saturday?")
    await alice.call("POST", "/api/v1/dms", {"user_id": bob.id}, expect=201)

    ctx = await browser.new_context(viewport=PHONE, has_touch=True, is_mobile=True)
    page = await ctx.new_page()
    try:
        async with page.expect_response(lambda r: r.url.endswith("/favicon.svg")) as favicon:
            await login(page, node.base_url, alice.user["username"])
        assert (await favicon.value).status == 200
        # the DM list knows bob is online without opening the DM
        dm = page.get_by_test_id("room-item").filter(has_text=bob.user["username"])
        await expect(dm.locator("[data-testid=presence-dot].online")).to_have_count(1)
        await screenshot(page, "phone-rooms")

        await page.get_by_test_id("room-item").filter(has_text="garden club").click()
        await expect(page.get_by_test_id("message-body").filter(has_text="seeds")).to_have_count(1)
        composer = page.get_by_test_id("composer-input")
        assert await composer.get_attribute("placeholder") == "Message"
        # tools are hidden on a touch screen until the message is tapped
        tools = page.locator(".msg").filter(has_text="seeds").get_by_test_id("reply")
        await expect(tools).to_be_hidden()
        await page.locator(".msg").filter(has_text="seeds").get_by_test_id("message-body").tap()
        await expect(tools).to_be_visible()
        await screenshot(page, "phone-room-tapped")

        await composer.fill("x" * 10_000)  # a long paste stays whole and is refused clearly
        await expect(page.get_by_test_id("composer-count")).to_contain_text("6,000 characters too long")
        await expect(page.get_by_test_id("send")).to_be_disabled()
        assert len(await composer.input_value()) == 10_000
        await screenshot(page, "phone-too-long")
        await composer.fill("")

        await page.get_by_test_id("room-settings-open").click()
        await expect(page.get_by_test_id("room-settings")).to_be_visible()
        await screenshot(page, "phone-room-settings")
        await page.get_by_test_id("room-settings-topic").fill("seeds and soil")
        await page.get_by_test_id("room-settings-save").click()
        await expect(page.get_by_test_id("room-subtitle")).to_contain_text("seeds and soil")

        await page.goto(node.base_url + "/#/account")
        await expect(page.get_by_test_id("account-display-name")).to_be_visible()
        await screenshot(page, "phone-account")
        await page.get_by_test_id("pane-back").click()
        await expect(page.get_by_test_id("room-list")).to_be_visible()

        await page.goto(node.base_url + "/#/admin")
        await expect(page.get_by_test_id("admin-users")).to_be_visible()
        await screenshot(page, "phone-admin")
        await page.get_by_test_id("pane-back").click()
        await expect(page.get_by_test_id("room-list")).to_be_visible()
    finally:
        await ctx.close()
