"""The team-chat features as a person uses them, two people in separate Chromium contexts on a
real server: hostile Markdown stays inert while formatting works, search jumps to an older
message (and never shows a private room one is not in), a mention notifies (desktop
notification, badge, tab title) unless the room is muted, reactions and "Seen" arrive live, a
phone-sized touch screen works end to end, and a rename reaches the other member live.
Screenshots go to ``test-artifacts/screens/team-*.png``."""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Callable
from typing import Any

from playwright.async_api import Browser, Page, expect

from tests.e2e.conftest import screenshot
from tests.e2e.test_browser import login, open_room, say
from tests.support import ChatNode, Client, ServerHarness, make_room

WAIT_MS = 15000  # a bound on anything the UI waits for (fan-out, history pages, notifications)
PHONE = {"width": 390, "height": 844}


async def team(harness: ServerHarness) -> tuple[ChatNode, Client, Client]:
    """A node whose message rate limit lets a test send a corpus quickly, with Alice and Bob."""
    limits = dataclasses.replace(harness.config().limits, messages_per_10s=1000, events_per_10s=1000)
    node = await harness.start_node(limits=limits)
    alice = await harness.user(node, name=f"alice_{uuid.uuid4().hex[:5]}")
    bob = await harness.user(node, name=f"bob_{uuid.uuid4().hex[:5]}")
    return node, alice, bob


def message(page: Page, text: str | re.Pattern[str]) -> Any:
    return page.get_by_test_id("message").filter(has=page.get_by_test_id("message-body").filter(has_text=text))


# The WCAG contrast ratio of an element's text against the first opaque background behind it.
CONTRAST = """el => {
    const rgb = c => c.match(/[\\d.]+/g).map(Number);
    const lum = ([r, g, b]) => [r, g, b].map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
        .reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0);
    let bg = el;
    while (bg && (rgb(getComputedStyle(bg).backgroundColor)[3] ?? 1) === 0) bg = bg.parentElement;
    const [a, b] = [lum(rgb(getComputedStyle(el).color)), lum(rgb(getComputedStyle(bg ?? document.body).backgroundColor))];
    return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}"""


async def contrast(locator: Any) -> float:
    ratio: float = await locator.evaluate(CONTRAST)
    return ratio


# --- 1. hostile Markdown, links and HTML ---------------------------------------------------------

# every payload would set window.__pwned if any of it ran
HOSTILE = [
    "<script>window.__pwned=1</script>",
    '<img src=x onerror="window.__pwned=1">',
    '<iframe src="javascript:window.__pwned=1"></iframe>',
    "<svg onload=window.__pwned=1></svg>",
    '<a href="javascript:window.__pwned=1">html link</a>',
    '<details open ontoggle="window.__pwned=1">x</details>',
    "<style>*{display:none}</style><body onload=window.__pwned=1>",
    "[md link](javascript:window.__pwned=1)",
    "[mixed case](JaVaScRiPt:window.__pwned=1)",
    "[entity](&#106;avascript:window.__pwned=1)",
    "[hex entity](&#x6A;&#x61;vascript&colon;window.__pwned=1)",
    "[percent](%6Aavascript:window.__pwned=1)",
    "[zero width](\u200bjavascript:window.__pwned=1)",
    "[tab](java\tscript:window.__pwned=1)",
    "[newline](java\nscript:window.__pwned=1)",
    "[vb](vbscript:window.__pwned=1)",
    "[data](data:text/html;base64,PHNjcmlwdD53aW5kb3cuX19wd25lZD0xPC9zY3JpcHQ+)",
    "[protocol relative](//evil.example/x)",
    # markdown-it itself lets these through (image data: URLs, other schemes): the app's own check must refuse them
    "[png data](data:image/png;base64,iVBORw0KGgo=)",
    "<data:image/gif;base64,R0lGODlhAQABAAAAACw=>",
    "[file](file:///etc/passwd) [ftp](ftp://example.com/f) ftp://example.com/bare //evil.example/bare",
    "<javascript:window.__pwned=1>",
    "<JAVASCRIPT:window.__pwned=1>",
    "<data:text/html,<script>window.__pwned=1</script>>",
    "![image](javascript:window.__pwned=1)",
    "![tracker](https://example.invalid/pixel.png)",
    '[attr](https://example.com/" onmouseover="window.__pwned=1)',
    "https://example.com/<img src=x onerror=window.__pwned=1>",
    "`<img src=x onerror=window.__pwned=1>`",
    "```html\n<script>window.__pwned=1</script>\n<img src=x onerror=window.__pwned=1>\n```",
    "indented code:\n\n    <iframe src=javascript:window.__pwned=1></iframe>",
    "> <img src=x onerror=window.__pwned=1>\n> - [q](javascript:window.__pwned=1)",
    "\u202e[rtl](javascript:window.__pwned=1)",
]
HUGE_CODE = "```\n" + "".join(f"{i:03} <img src=x onerror=window.__pwned=1> {'y' * 60}\n" for i in range(36)) + "```"
FORMATTED = ("**bold words** and *italic words* and `inline code` and ~~struck words~~\n\n- first item\n- second item\n\n"
             "3. third\n4. fourth\n\n> a quoted line\n\n[the site](https://example.com/a?b=1) https://example.org/x mailto:team@example.com")
ALLOWED_TAGS = ["DIV", "P", "BR", "STRONG", "EM", "S", "CODE", "PRE", "BLOCKQUOTE", "UL", "OL", "LI", "A", "SPAN", "I"]
ALLOWED_ATTRS = ["href", "target", "rel", "class", "start", "data-testid"]

# what is in message bodies, read in the page: elements outside the allowed table, attributes
# outside the allowed list, and every link's href, rel and target
AUDIT = """([tags, attrs]) => {
    const bad = [], links = [];
    for (const body of document.querySelectorAll('[data-testid=message-body]')) {
        for (const el of [body, ...body.querySelectorAll('*')]) {
            if (!tags.includes(el.tagName)) bad.push(el.tagName);
            for (const a of el.attributes) if (!attrs.includes(a.name)) bad.push(el.tagName + '@' + a.name);
        }
        for (const a of body.querySelectorAll('a')) links.push([a.protocol, a.getAttribute('href'), a.rel, a.target]);
    }
    return {bad, links, pwned: window.__pwned ?? null};
}"""


async def test_hostile_markdown_runs_nothing_in_the_readers_browser_while_formatting_renders(
        harness: ServerHarness, pages: Callable[..., Any]) -> None:
    node, alice, bob = await team(harness)
    await make_room(alice, bob, name="corpus")
    a, b = await pages(), await pages()
    await login(a, node.base_url, alice.user["username"])
    await open_room(a, "corpus")
    await login(b, node.base_url, bob.user["username"])
    await open_room(b, "corpus")

    for text in [*HOSTILE, HUGE_CODE, FORMATTED]:
        await say(a, text)
    await expect(b.get_by_test_id("message")).to_have_count(len(HOSTILE) + 2, timeout=WAIT_MS)
    await expect(a.get_by_test_id("message")).to_have_count(len(HOSTILE) + 2, timeout=WAIT_MS)
    for body in await b.get_by_test_id("message-body").all():
        await body.hover()  # mouseover handlers, had any been let through
    for refused in await b.locator(".link-refused").all():
        await refused.click()  # a link refused by the app is inert text

    for page in (a, b):
        audit = await page.evaluate(AUDIT, [ALLOWED_TAGS, ALLOWED_ATTRS])
        assert audit["bad"] == [] and audit["pwned"] is None, audit
        assert await page.locator("[data-testid=message-list] :is(script, img, iframe, svg, style, object, embed, form)").count() == 0
        for protocol, href, rel, target in audit["links"]:
            assert protocol in ("http:", "https:", "mailto:"), href
            assert (rel, target) == ("noopener noreferrer", "_blank"), href
    # the markup stays as typed text
    for typed in ("<script>window.__pwned=1</script>", '<img src=x onerror="window.__pwned=1">',
                  "<svg onload=window.__pwned=1></svg>"):
        await expect(message(b, re.compile(f"^{re.escape(typed)}$"))).to_have_count(1)
    # no hostile link became a link: each shows as text (message i is HOSTILE[i])
    items = b.get_by_test_id("message")
    for i, payload in enumerate(HOSTILE):
        if "https://" not in payload:
            assert await items.nth(i).locator("a").count() == 0, payload
    await expect(items.nth(HOSTILE.index("[md link](javascript:window.__pwned=1)"))).to_contain_text("md link")
    # the hostile image is only a link to its URL: nothing is loaded from a message
    tracker = message(b, "tracker").locator("a")
    await expect(tracker).to_have_attribute("href", "https://example.invalid/pixel.png")
    # an attribute cannot be smuggled through a link's URL: it is part of the (encoded) href
    smuggled = await message(b, "attr").locator("a").get_attribute("href")
    assert smuggled and smuggled.startswith("https://example.com/") and '"' not in smuggled
    # HTML inside code is the code's text
    fence = message(b, "<script>window.__pwned=1</script>\n<img").locator("pre.code > code")
    await expect(fence).to_have_text("<script>window.__pwned=1</script>\n<img src=x onerror=window.__pwned=1>")
    await expect(message(b, "indented code").locator("pre.code")).to_have_text("<iframe src=javascript:window.__pwned=1></iframe>")

    # a huge code block scrolls inside its message instead of stretching the page
    huge = message(b, "035 <img").locator("pre.code")
    box = await huge.evaluate("p => ({h: p.clientHeight, sh: p.scrollHeight, w: p.getBoundingClientRect().width,"
                              " list: document.querySelector('[data-testid=message-list]').clientWidth})")
    assert box["sh"] > box["h"] and box["h"] < 600 and box["w"] <= box["list"], box

    fmt = message(b, "bold words").get_by_test_id("message-body")
    await expect(fmt.locator("strong")).to_have_text("bold words")
    await expect(fmt.locator("em")).to_have_text("italic words")
    await expect(fmt.locator("code")).to_have_text("inline code")
    await expect(fmt.locator("s")).to_have_text("struck words")
    await expect(fmt.locator("ul > li")).to_have_text(["first item", "second item"])
    await expect(fmt.locator("ol > li")).to_have_text(["third", "fourth"])
    await expect(fmt.locator("ol")).to_have_attribute("start", "3")
    await expect(fmt.locator("blockquote")).to_have_text("a quoted line")
    await expect(fmt.locator("a", has_text="the site")).to_have_attribute("href", "https://example.com/a?b=1")
    await expect(fmt.locator('a[href="https://example.org/x"]')).to_have_count(1)
    await expect(fmt.locator('a[href="mailto:team@example.com"]')).to_have_count(1)
    await fmt.scroll_into_view_if_needed()
    await b.mouse.move(0, 0)
    await screenshot(b, "team-markdown")
    assert await a.evaluate("window.__pwned ?? null") is None and await b.evaluate("window.__pwned ?? null") is None


# --- 2. search -----------------------------------------------------------------------------------

async def test_search_finds_an_older_message_jumps_to_it_and_never_shows_a_private_room(
        harness: ServerHarness, pages: Callable[..., Any]) -> None:
    node, alice, bob = await team(harness)
    carol = await harness.user(node, name=f"carol_{uuid.uuid4().hex[:5]}")
    lobby = await make_room(alice, bob, name="lobby")
    secret = await make_room(alice, carol, name="board", kind="private")
    await alice.connect()
    await bob.connect()
    await alice.send(secret, "the zeppelin budget is confidential")
    target = await alice.send(lobby, "the zeppelin lands at noon on Friday")
    for i in range(60):  # more than one history page (50) after it: the jump must load older pages
        await (alice if i % 2 else bob).send(lobby, f"filler message number {i}")

    b = await pages()
    await login(b, node.base_url, bob.user["username"])
    await b.get_by_test_id("search-input").fill("zeppelin")
    await b.get_by_test_id("search-input").press("Enter")
    hits = b.get_by_test_id("search-hit")
    await expect(hits).to_have_count(1, timeout=WAIT_MS)
    assert await hits.get_attribute("data-room") == str(lobby)  # the private room's message is not among them
    await expect(hits.get_by_test_id("hit-room")).to_have_text("#lobby")
    await expect(hits.get_by_test_id("hit-author")).to_have_text(alice.user["username"])
    await expect(hits.get_by_test_id("hit-snippet").locator("mark")).to_have_text("zeppelin")
    # readable in the dark sidebar: the highlighted word and the result's time
    assert await contrast(hits.get_by_test_id("hit-snippet").locator("mark")) >= 4.5
    assert await contrast(hits.locator("time")) >= 4.5
    await screenshot(b, "team-search")

    await hits.click()
    await expect(b.get_by_test_id("room-title")).to_have_text("lobby")
    found = b.locator(f'[data-testid=message][data-id="{target["id"]}"]')
    await expect(found).to_have_class(re.compile(r"\bflash\b"), timeout=WAIT_MS)
    await expect(found).to_be_in_viewport()
    await expect(found).not_to_have_class(re.compile(r"\bflash\b"), timeout=WAIT_MS)  # the highlight is brief

    # a phrase only the private room has finds nothing for bob
    await b.get_by_test_id("search-input").fill("confidential")
    await b.get_by_test_id("search-input").press("Enter")
    await expect(b.get_by_test_id("search-status")).to_have_text("No messages found.", timeout=WAIT_MS)
    assert await contrast(b.get_by_test_id("search-status")) >= 4.5
    await expect(hits).to_have_count(0)


# --- 3. mentions and notifications ---------------------------------------------------------------

# Records every notification the app makes. The context has the permission granted; until the
# page asks for it, `Notification.permission` reads "default" as in a browser that never decided,
# so the app shows "Enable notifications" and the permission comes from that click. Also counts
# requestPermission calls and the oscillators of the notification sound.
RECORD_NOTIFICATIONS = """(() => {
    const Real = window.Notification;
    let asked = false;
    window.__notes = [];
    window.__asked = 0;
    window.__tones = 0;
    function Recorded(title, options) {
        window.__notes.push({ title, body: options && options.body, tag: options && options.tag });
        try { return new Real(title, options); } catch (e) { return { onclick: null, close() {} }; }
    }
    Object.defineProperty(Recorded, 'permission', { get: () => asked ? Real.permission : 'default' });
    Recorded.requestPermission = async () => { window.__asked++; const p = await Real.requestPermission(); asked = true; return p; };
    window.Notification = Recorded;
    const osc = AudioContext.prototype.createOscillator;
    AudioContext.prototype.createOscillator = function () { window.__tones++; return osc.call(this); };
})()"""


async def test_a_mention_notifies_with_the_authors_name_badge_and_title_until_the_room_is_muted(
        harness: ServerHarness, pages: Callable[..., Any]) -> None:
    node, alice, bob = await team(harness)
    plans = await make_room(alice, bob, name="plans")
    await make_room(alice, bob, name="standup")
    await make_room(bob, name="elsewhere")  # bob's own room, to look at something else
    a, b = await pages(), await pages()
    await b.context.grant_permissions(["notifications"], origin=node.base_url)
    await b.add_init_script(RECORD_NOTIFICATIONS)
    await login(b, node.base_url, bob.user["username"])
    await expect(b.get_by_test_id("notify-ask")).to_be_visible()
    assert await b.evaluate("window.__asked") == 0  # never asked on page load
    assert await contrast(b.get_by_test_id("notify-ask").locator("span")) >= 4.5  # the question is readable
    await b.get_by_test_id("notify-enable").click()
    await expect(b.get_by_test_id("notify-ask")).to_be_hidden()
    assert await b.evaluate("[window.__asked, Notification.permission]") == [1, "granted"]
    await open_room(b, "elsewhere")  # bob looks at another room, and has not opened plans in this page

    await login(a, node.base_url, alice.user["username"])
    await open_room(a, "plans")
    composer = a.get_by_test_id("composer-input")
    await composer.press_sequentially("@bo")
    option = a.get_by_test_id("mention-list").get_by_test_id("mention-option")
    await expect(option).to_have_count(1)
    await expect(option).to_have_attribute("data-username", bob.user["username"])
    await option.click()
    await composer.press_sequentially("hello")
    assert await composer.input_value() == f"@{bob.user['username']} hello"
    await a.get_by_test_id("send").click()
    await expect(message(a, "hello").locator(".mention")).to_have_text(f"@{bob.user['username']}")

    await b.wait_for_function("() => window.__notes.length >= 1", timeout=WAIT_MS)
    notes = await b.evaluate("window.__notes")
    assert len(notes) == 1, notes
    assert notes[0]["title"] == f"{alice.user['username']} mentioned you in plans", notes
    assert notes[0]["body"] == f"@{bob.user['username']} hello", notes
    assert await b.evaluate("window.__tones") >= 2  # the two-tone sound
    plans_item = b.locator(f'[data-testid=room-item][data-room="{plans}"]')
    await expect(plans_item.get_by_test_id("mentions")).to_have_text("@1")
    await expect(b).to_have_title("(1) Chat")
    await screenshot(b, "team-mention-badge")

    await plans_item.click()
    await expect(b.get_by_test_id("room-title")).to_have_text("plans")
    await expect(message(b, "hello").locator(".mention.me")).to_have_count(1)  # the reader's own mention, marked
    await expect(message(b, "hello")).to_have_class(re.compile(r"\bmentions-me\b"))
    await expect(plans_item.get_by_test_id("mentions")).to_have_count(0)
    await expect(b).to_have_title("Chat")

    await b.get_by_test_id("notify-setting").select_option("none")
    await expect(plans_item).to_have_class(re.compile(r"\bmuted-room\b"))
    # bob now has standup open, but the tab is in the background (what the app reads of it)
    await open_room(b, "standup")
    await b.evaluate("""() => {
        Object.defineProperty(document, 'visibilityState', { get: () => 'hidden', configurable: true });
        document.dispatchEvent(new Event('visibilitychange'));
    }""")
    await say(a, f"@{bob.user['username']} are you muted?")
    await expect(plans_item.get_by_test_id("unread")).to_have_text("1", timeout=WAIT_MS)  # it arrived, silently
    await open_room(a, "standup")  # a mention after the muted one, in the room open in a hidden tab: it notifies
    await say(a, f"@{bob.user['username']} standup in 5")
    await b.wait_for_function("() => window.__notes.length >= 2", timeout=WAIT_MS)
    notes = await b.evaluate("window.__notes")
    assert [n["title"] for n in notes] == [f"{alice.user['username']} mentioned you in plans",
                                           f"{alice.user['username']} mentioned you in standup"], notes


# --- 4. reactions and read receipts --------------------------------------------------------------

async def test_a_reaction_and_its_removal_and_seen_reach_the_author_live(
        harness: ServerHarness, pages: Callable[..., Any]) -> None:
    node, alice, bob = await team(harness)
    await make_room(alice, bob, name="crew")
    await alice.call("POST", "/api/v1/dms", {"user_id": bob.id}, expect=201)
    a, b = await pages(), await pages()
    await login(a, node.base_url, alice.user["username"])
    await open_room(a, "crew")
    await say(a, "ship it today?")
    await login(b, node.base_url, bob.user["username"])
    await open_room(b, "crew")

    mine = message(a, "ship it today?")
    theirs = message(b, "ship it today?")
    await expect(mine.get_by_test_id("seen-by")).to_have_text(f"Seen by {bob.user['username']}", timeout=WAIT_MS)
    await theirs.hover()
    await theirs.get_by_test_id("react").click()
    await theirs.get_by_test_id("reaction-picker").get_by_test_id("pick").and_(b.locator('[data-emoji="👍"]')).click()
    await expect(theirs.get_by_test_id("reaction")).to_have_attribute("aria-pressed", "true")
    chip = mine.locator('[data-testid=reaction][data-emoji="👍"]')
    await expect(chip.locator(".count")).to_have_text("1", timeout=WAIT_MS)
    await expect(chip).to_have_attribute("aria-pressed", "false")  # alice did not react
    assert bob.user["username"] in (await chip.get_attribute("title") or "")
    await screenshot(a, "team-reaction")
    await theirs.get_by_test_id("reaction").click()  # bob takes it back
    await expect(theirs.get_by_test_id("reaction")).to_have_count(0)
    await expect(chip).to_have_count(0, timeout=WAIT_MS)

    # a DM: bob reads alice's last message, alice sees "Seen"
    await open_room(a, bob.user["username"])
    await say(a, "are you around?")
    await expect(message(a, "are you around?").get_by_test_id("seen-by")).to_have_count(0)
    await open_room(b, alice.user["username"])
    await expect(message(b, "are you around?")).to_have_count(1)
    await expect(message(a, "are you around?").get_by_test_id("seen-by")).to_have_text("Seen", timeout=WAIT_MS)



async def test_an_edit_being_typed_survives_the_message_being_seen_and_reacted_to(
        harness: ServerHarness, pages: Callable[..., Any]) -> None:
    # a read or a reaction re-renders the message: the box the author types in must stay, with
    # what was typed, the caret and the focus (it was rebuilt from the stored text before)
    node, alice, bob = await team(harness)
    await make_room(alice, bob, name="drafts")
    a, b = await pages(), await pages()
    await login(a, node.base_url, alice.user["username"])
    await open_room(a, "drafts")
    await say(a, "ship it today")
    mine = message(a, "ship it today")
    await mine.hover()
    await mine.get_by_test_id("edit").click()
    box = a.get_by_test_id("edit-input")
    await expect(box).to_be_focused()
    await a.keyboard.type(", or tomorrow")
    editing = a.get_by_test_id("message").filter(has=box)

    await login(b, node.base_url, bob.user["username"])
    await open_room(b, "drafts")
    theirs = message(b, "ship it today")
    await expect(editing.get_by_test_id("seen-by")).to_have_text(f"Seen by {bob.user['username']}", timeout=WAIT_MS)
    await theirs.hover()
    await theirs.get_by_test_id("react").click()
    await theirs.get_by_test_id("reaction-picker").get_by_test_id("pick").and_(b.locator('[data-emoji="👍"]')).click()
    await expect(editing.get_by_test_id("reaction")).to_have_count(1, timeout=WAIT_MS)

    await a.keyboard.type("?")  # still in the box, the caret where it was
    await expect(box).to_have_value("ship it today, or tomorrow?")
    await box.press("Enter")
    await expect(message(b, "ship it today, or tomorrow?")).to_have_count(1, timeout=WAIT_MS)

# --- 5. a phone-sized touch screen ---------------------------------------------------------------

async def test_on_a_touch_phone_rooms_search_mentions_and_reactions_work_and_fit(
        harness: ServerHarness, browser: Browser) -> None:
    node, alice, bob = await team(harness)
    room = await make_room(alice, bob, name="field team")
    await alice.connect()
    await alice.send(room, "**Route** for today:\n- north gate\n- river path\n\nsee https://example.com/map")
    await alice.send(room, f"@{bob.user['username']} can you bring the rope?")

    ctx = await browser.new_context(viewport=PHONE, has_touch=True, is_mobile=True)
    page = await ctx.new_page()
    try:
        await login(page, node.base_url, bob.user["username"])
        rooms = page.get_by_test_id("room-list")
        await expect(rooms).to_be_visible()
        item = page.get_by_test_id("room-item").filter(has_text="field team")
        await expect(item.get_by_test_id("mentions")).to_have_text("@1", timeout=WAIT_MS)
        await screenshot(page, "team-phone-rooms")

        await item.tap()
        await expect(page.get_by_test_id("room-title")).to_have_text("field team")
        await expect(rooms).to_be_hidden()  # the list and the room take turns
        composer = page.get_by_test_id("composer-input")
        await expect(composer).to_have_attribute("placeholder", "Message")
        # the placeholder fits in the input (measured with the input's own font)
        fits = await composer.evaluate("""t => {
            const s = getComputedStyle(t), c = document.createElement('canvas').getContext('2d');
            c.font = s.font;
            const room = t.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight);
            return { text: c.measureText(t.placeholder).width, room };
        }""")
        assert fits["text"] < fits["room"], fits
        assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scroll

        rope = message(page, "bring the rope")
        react = rope.get_by_test_id("react")
        await expect(react).to_be_hidden()
        await rope.get_by_test_id("message-body").tap()
        await expect(react).to_be_visible()
        await expect(rope.get_by_test_id("reply")).to_be_visible()
        await screenshot(page, "team-phone-tapped")
        await react.tap()
        await expect(rope.get_by_test_id("reaction-picker")).to_be_visible()
        picker_box = await rope.get_by_test_id("reaction-picker").bounding_box()
        assert picker_box and picker_box["x"] >= 0 and picker_box["x"] + picker_box["width"] <= PHONE["width"], picker_box
        await screenshot(page, "team-phone-picker")
        await rope.get_by_test_id("pick").first.tap()
        await expect(rope.get_by_test_id("reaction")).to_have_attribute("aria-pressed", "true")
        await say(page, "on my way with the rope")
        await expect(message(page, "on my way")).to_have_count(1)
        await screenshot(page, "team-phone-room")

        await page.get_by_test_id("back").tap()
        await expect(rooms).to_be_visible()
        await page.get_by_test_id("search-input").fill("rope")
        await page.get_by_test_id("search-input").press("Enter")
        await expect(page.get_by_test_id("search-hit")).to_have_count(2, timeout=WAIT_MS)
        await screenshot(page, "team-phone-search")
        await page.get_by_test_id("search-hit").last.tap()
        await expect(page.get_by_test_id("room-title")).to_have_text("field team")
        await expect(rooms).to_be_hidden()
    finally:
        await ctx.close()


# --- 6. room management --------------------------------------------------------------------------

async def test_a_rename_in_settings_reaches_the_other_member_live_with_a_notice(
        harness: ServerHarness, pages: Callable[..., Any]) -> None:
    node, alice, bob = await team(harness)
    room = await make_room(alice, bob, name="garden")
    a, b = await pages(), await pages()
    await login(a, node.base_url, alice.user["username"])
    await open_room(a, "garden")
    await login(b, node.base_url, bob.user["username"])
    await open_room(b, "garden")
    await expect(b.get_by_test_id("room-settings-open")).to_have_count(0)  # a member does not manage

    await a.get_by_test_id("room-settings-open").click()
    await a.get_by_test_id("room-settings-name").fill("garden club")
    await a.get_by_test_id("room-settings-save").click()
    await expect(b.get_by_test_id("room-title")).to_have_text("garden club", timeout=WAIT_MS)
    await expect(b.locator(f'[data-testid=room-item][data-room="{room}"]')).to_contain_text("garden club")
    notice = b.locator(".msg.system").filter(has_text=f"{alice.user['username']} renamed the room to garden club")
    await expect(notice).to_have_count(1, timeout=WAIT_MS)
    await screenshot(b, "team-renamed")
