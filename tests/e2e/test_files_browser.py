"""Files in a real browser: two people in one room, Alice attaches (paste, paperclip), Bob sees
and opens; hostile names stay text; refused types show the server's reason; expired image URLs
are renewed by the app; screenshots of a room with files on a desktop and a phone."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import math
import os
import re
import struct
import time
import uuid
import wave
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

from PIL import Image, ImageDraw
from playwright.async_api import Page, Route, WebSocketRoute, expect

from chatcore.files import FileUrlSigner, read_secret
from tests.e2e.conftest import screenshot
from tests.e2e.test_browser import login, open_room, register
from tests.support import ServerHarness

WAIT_MS = 15000  # a bound on anything the UI waits for (uploads, fan-out, image loads)


def png(width: int, height: int, colour: str = "#2f6fdf") -> bytes:
    """A real PNG with these pixel dimensions (a picture, so screenshots show something)."""
    img = Image.new("RGB", (width, height), "#f4f1ea")
    draw = ImageDraw.Draw(img)
    draw.rectangle((width // 10, height // 10, width * 9 // 10, height * 9 // 10), fill=colour)
    draw.ellipse((width // 3, height // 4, width * 2 // 3, height * 3 // 4), fill="#f2b134")
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def pdf(text: str = "Quarterly plan") -> bytes:
    """A small well-formed one-page PDF (libmagic reads it as application/pdf)."""
    stream = f"BT /F1 24 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
               b" /Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (i, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


async def two_in_a_room(harness: ServerHarness, pages: Callable[..., Any], room: str, **node_config: Any) -> tuple[str, Page, Page]:
    """A node, and Alice and Bob (each in their own browser context) with ``room`` open."""
    node = await harness.start_node(**node_config)
    a, b = await pages(), await pages()
    await register(a, node.base_url, f"alice_{uuid.uuid4().hex[:5]}")
    await a.get_by_test_id("new-room-name").fill(room)
    await a.get_by_test_id("create-room").click()
    await expect(a.get_by_test_id("room-title")).to_have_text(room)
    await register(b, node.base_url, f"bob_{uuid.uuid4().hex[:5]}")
    await open_room(b, room)
    return node.base_url, a, b


async def attach(page: Page, *files: tuple[str, str, bytes]) -> None:
    """Picks files with the paperclip's file input: (name, claimed type, bytes) each."""
    await page.get_by_test_id("file-input").set_input_files(
        [{"name": name, "mimeType": mime, "buffer": data} for name, mime, data in files])


async def send_when_uploaded(page: Page, count: int) -> None:
    chips = page.get_by_test_id("chip")
    await expect(chips).to_have_count(count)
    await expect(chips.and_(page.locator("[data-state=done]"))).to_have_count(count, timeout=WAIT_MS)
    await expect(page.get_by_test_id("send")).to_be_enabled()
    await page.get_by_test_id("send").click()
    await expect(chips).to_have_count(0)


async def wait_loaded(page: Page, selector: str, min_width: int = 1) -> int:
    """Waits (bounded) until the image ``selector`` is loaded; its natural width."""
    handle = await page.wait_for_function(
        "([sel, min]) => { const i = document.querySelector(sel); return i && i.complete && i.naturalWidth >= min ? i.naturalWidth : 0 }",
        arg=[selector, min_width], timeout=WAIT_MS)
    width: int = await handle.json_value()
    return width


def img_of(file_id: str, testid: str = "attachment-image") -> str:
    return f'[data-attachment="{file_id}"] [data-testid={testid}]'


async def test_a_pasted_image_reaches_the_other_person_as_a_thumbnail_and_opens_full_size(
        harness: ServerHarness, pages: Callable[..., Any]) -> None:
    base, a, b = await two_in_a_room(harness, pages, "photos")
    picture = png(640, 480)
    composer = a.get_by_test_id("composer-input")
    await composer.focus()
    # a real paste event, as a screenshot pasted from the clipboard arrives: a DataTransfer with a File
    taken = await composer.evaluate("""(input, bytes) => {
        const file = new File([new Uint8Array(bytes)], "image.png", { type: "image/png" });
        const data = new DataTransfer();
        data.items.add(file);
        const event = new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true });
        return !input.dispatchEvent(event);
    }""", list(picture))
    assert taken  # the app took the file (the default paste was prevented)
    chip = a.get_by_test_id("chip")
    await expect(chip).to_have_count(1)
    await expect(chip.locator(".chip-name")).to_have_text(re.compile(r"^pasted-[0-9-]+\.png$"))
    await send_when_uploaded(a, 1)

    figure = b.get_by_test_id("message").locator("[data-attachment]")
    await expect(figure).to_have_count(1, timeout=WAIT_MS)
    file_id = await figure.get_attribute("data-attachment")
    assert file_id
    thumb = b.locator(img_of(file_id))
    assert await wait_loaded(b, img_of(file_id)) == 320  # the server's thumbnail, not the original
    assert (await thumb.get_attribute("width"), await thumb.get_attribute("height")) == ("320", "240")  # space reserved from the record
    await wait_loaded(a, img_of(file_id))  # the sender sees it too

    opener = b.locator(f'[data-attachment="{file_id}"]').get_by_test_id("attachment-open")
    await opener.click()
    viewer = b.get_by_test_id("viewer")
    await expect(viewer).to_be_visible()
    await expect(viewer).to_have_attribute("role", "dialog")
    assert await wait_loaded(b, "[data-testid=viewer-image]") == 640  # the full image
    href = await b.get_by_test_id("viewer-download").get_attribute("href")
    assert href
    async with harness.http.get(urljoin(base, href)) as r:
        assert r.status == 200 and await r.read() == picture
    await b.keyboard.press("Escape")
    await expect(viewer).to_have_count(0)
    await expect(opener).to_be_focused()


async def test_a_pdf_from_the_paperclip_is_a_card_whose_link_downloads_the_same_bytes(
        harness: ServerHarness, pages: Callable[..., Any]) -> None:
    base, a, b = await two_in_a_room(harness, pages, "docs")
    document = pdf()
    await attach(a, ("Quarterly plan.pdf", "application/pdf", document))
    await send_when_uploaded(a, 1)

    card = b.get_by_test_id("file-card")
    await expect(card).to_have_count(1, timeout=WAIT_MS)
    await expect(card).to_contain_text("Quarterly plan.pdf")
    await expect(card.locator("small")).to_have_text(f"{len(document)} B")
    await expect(card.locator(".att-icon")).to_have_text("PDF")
    link = card.get_by_test_id("file-download")
    assert await link.get_attribute("download") == "Quarterly plan.pdf"
    href = await link.get_attribute("href")
    assert href and href.startswith("/files/")
    async with harness.http.get(urljoin(base, href)) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "application/pdf"
        assert r.headers["Content-Disposition"].startswith("attachment")
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert await r.read() == document
    async with b.expect_download(timeout=WAIT_MS) as download:
        await link.click()  # as a person does: the browser saves it under its name
    saved = await download.value
    assert saved.suggested_filename == "Quarterly plan.pdf"
    assert open(await saved.path(), "rb").read() == document


async def test_a_text_file_with_markup_opened_in_a_tab_shows_as_text_in_a_sandbox(
        harness: ServerHarness, pages: Callable[..., Any]) -> None:
    base, a, b = await two_in_a_room(harness, pages, "notes")
    notes = b"Meeting notes\nline two\n<img src=x onerror=window.__pwned=1>\n"
    await attach(a, ("notes.txt", "text/plain", notes))
    await send_when_uploaded(a, 1)
    card = b.get_by_test_id("file-card")
    await expect(card).to_have_count(1, timeout=WAIT_MS)
    await expect(card.locator(".att-icon")).to_have_text("TXT")
    href = await card.get_by_test_id("file-download").get_attribute("href")
    assert href
    tab = await b.context.new_page()
    answer = await tab.goto(urljoin(base, href))
    assert answer and answer.status == 200 and answer.headers["content-type"].startswith("text/plain")
    assert await tab.locator("body").inner_text() == notes.decode()  # the markup, as text
    assert await tab.locator("img").count() == 0
    assert await tab.evaluate("self.origin") == "null"  # the sandbox: no access to the app's origin
    assert await tab.evaluate("window.__pwned") is None


HOSTILE = "<img src=x onerror=window.__pwned=1>.png"


async def test_a_hostile_file_name_is_shown_as_text_and_runs_nothing(harness: ServerHarness, pages: Callable[..., Any]) -> None:
    _, a, b = await two_in_a_room(harness, pages, "names")
    hostile_pdf = HOSTILE.replace(".png", ".pdf")
    await attach(a, (HOSTILE, "image/png", png(80, 60)), (hostile_pdf, "application/pdf", pdf()))
    await expect(a.get_by_test_id("chip").locator(".chip-name")).to_have_text([HOSTILE, hostile_pdf])
    await send_when_uploaded(a, 2)

    for page in (a, b):
        message = page.get_by_test_id("message").filter(has=page.locator("[data-attachment]"))
        await expect(message.locator("[data-attachment]")).to_have_count(2, timeout=WAIT_MS)
        image = message.get_by_test_id("attachment-image")
        await expect(image).to_have_attribute("alt", HOSTILE)
        await expect(message.get_by_test_id("attachment-open")).to_have_attribute("title", HOSTILE)
        await expect(message.get_by_test_id("file-card").locator(".att-name")).to_have_text(hostile_pdf)
        # the only img in the message is the thumbnail; nothing was made from the name
        assert await message.locator("img").count() == 1
        assert await page.locator("[onerror], img[src=x]").count() == 0
    await b.get_by_test_id("attachment-open").click()
    await expect(b.locator(".viewer-title")).to_have_text(HOSTILE)
    assert await b.locator("[data-testid=viewer] img").count() == 1
    await b.get_by_test_id("viewer-close").click()
    await expect(b.get_by_test_id("viewer")).to_have_count(0)
    assert await a.evaluate("window.__pwned") is None and await b.evaluate("window.__pwned") is None


async def test_a_file_of_a_refused_type_keeps_an_error_chip_with_the_servers_reason_and_is_not_sent(
        harness: ServerHarness, pages: Callable[..., Any]) -> None:
    _, a, b = await two_in_a_room(harness, pages, "refusals")
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>window.__pwned=1</script></svg>'
    await attach(a, ("drawing.svg", "image/svg+xml", svg))
    chip = a.get_by_test_id("chip")
    await expect(chip).to_have_attribute("data-state", "error", timeout=WAIT_MS)
    error = chip.get_by_test_id("chip-error")
    await expect(error).to_have_attribute("data-code", "unsupported_type")
    await expect(error).to_have_text("files of type image/svg+xml are not accepted here")
    await expect(chip.get_by_test_id("chip-retry")).to_have_count(0)  # retrying cannot help
    await expect(a.get_by_test_id("send")).to_be_disabled()  # nothing to send

    await a.get_by_test_id("composer-input").fill("only words this time")
    await a.get_by_test_id("send").click()
    sent = b.get_by_test_id("message").filter(has_text="only words this time")
    await expect(sent).to_have_count(1, timeout=WAIT_MS)
    assert await b.locator("[data-attachment]").count() == 0
    assert await a.locator("[data-testid=message-list] [data-attachment]").count() == 0
    await expect(chip).to_have_count(0)  # the send cleared the refused chip
    assert await a.evaluate("window.__pwned") is None


def expire_urls_of(file_names: dict[str, tuple[str, ...]], signer: FileUrlSigner) -> Callable[[WebSocketRoute], None]:
    """A WebSocket route that hands the page the ``message`` events of these files with URLs
    signed two hours ago (properly signed, expired), as a page left open that long holds them.
    ``file_names`` maps a file name to the fields to expire (``url``, ``thumb_url``); history and
    every other frame pass unchanged."""
    past = time.time() - 2 * 3600

    def rewrite(frame: str | bytes) -> str | bytes:
        if not isinstance(frame, str) or not frame.startswith('42["message",'):
            return frame
        event, record = json.loads(frame[2:])
        for att in record.get("attachments") or []:
            for field in file_names.get(att["name"], ()):
                variant = "thumb" if field == "thumb_url" else "o"
                att[field] = signer.url(att["id"], att["name"], variant, now=past)
        return "42" + json.dumps([event, record])

    def route(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()
        server.on_message(lambda frame: ws.send(rewrite(frame)))

    return route


async def test_expired_image_urls_are_fetched_again_and_the_images_load(harness: ServerHarness, pages: Callable[..., Any]) -> None:
    node = await harness.start_node()
    config = harness.config()  # the node's secret: generated into its data directory at start
    signer = FileUrlSigner(read_secret(config.data_dir / "keys" / "file-url.secret"), config.files.url_ttl_s)
    a, b = await pages(), await pages()
    await b.route_web_socket(re.compile(r"/socket\.io/"),
                             expire_urls_of({"both.png": ("url", "thumb_url"), "full.png": ("url",)}, signer))
    await register(a, node.base_url, f"alice_{uuid.uuid4().hex[:5]}")
    await a.get_by_test_id("new-room-name").fill("old tab")
    await a.get_by_test_id("create-room").click()
    await register(b, node.base_url, f"bob_{uuid.uuid4().hex[:5]}")
    await open_room(b, "old tab")
    files: list[tuple[str, int]] = []
    b.on("response", lambda r: files.append((urlsplit(r.url).path.split("/")[-1] + "?" + ",".join(
        parse_qs(urlsplit(r.url).query).get("v", ["o"])), r.status)) if "/files/" in r.url else None)

    # the thumbnail's URL expired: the image fails once, the app fetches the message again
    await attach(a, ("both.png", "image/png", png(400, 300)))
    await send_when_uploaded(a, 1)
    figure = b.locator("[data-attachment]")
    await expect(figure).to_have_count(1, timeout=WAIT_MS)
    both = await figure.get_attribute("data-attachment")
    assert both
    assert await wait_loaded(b, img_of(both)) == 320
    src = await b.locator(img_of(both)).get_attribute("src")
    assert src and int(parse_qs(urlsplit(src).query)["exp"][0]) > time.time()  # a fresh URL replaced the expired one
    assert files[:2] == [("both.png?thumb", 403), ("both.png?thumb", 200)]

    # the thumbnail is fresh but the full image's URL expired: the viewer fetches it again once
    await attach(a, ("full.png", "image/png", png(500, 250, "#3a9d5d")))
    await send_when_uploaded(a, 1)
    await expect(b.locator("[data-attachment]")).to_have_count(2, timeout=WAIT_MS)
    full = await b.locator("[data-attachment]").nth(1).get_attribute("data-attachment")
    assert full and full != both
    await wait_loaded(b, img_of(full))
    await b.locator(f'[data-attachment="{full}"]').get_by_test_id("attachment-open").click()
    assert await wait_loaded(b, "[data-testid=viewer-image]") == 500
    await expect(b.locator(".viewer-status")).to_have_text("")
    assert [s for name, s in files if name == "full.png?o"] == [403, 200]


async def test_a_room_with_an_image_a_pdf_and_the_viewer_on_a_desktop_and_a_phone(
        harness: ServerHarness, pages: Callable[..., Any]) -> None:
    base, a, b = await two_in_a_room(harness, pages, "trip")
    await a.get_by_test_id("composer-input").fill("Photos and the itinerary from the trip")
    await attach(a, ("harbour.png", "image/png", png(1200, 800)), ("Itinerary with a rather long file name.pdf",
                                                                   "application/pdf", pdf("Itinerary")))
    await send_when_uploaded(a, 2)
    await attach(b, ("sunset.png", "image/png", png(600, 900, "#c0504d")))
    await send_when_uploaded(b, 1)
    await expect(a.locator("[data-attachment]")).to_have_count(3, timeout=WAIT_MS)
    await expect(b.locator("[data-attachment]")).to_have_count(3, timeout=WAIT_MS)
    for i in range(2):
        await a.wait_for_function(f"() => {{ const i = document.querySelectorAll('[data-testid=attachment-image]')[{i}];"
                                  " return i && i.complete && i.naturalWidth > 0 }", timeout=WAIT_MS)
    await screenshot(a, "files-desktop")
    await a.get_by_test_id("attachment-open").first.click()
    await wait_loaded(a, "[data-testid=viewer-image]")
    await screenshot(a, "files-desktop-viewer")

    phone = await pages(390, 844)
    bob = await b.get_by_test_id("me").text_content()
    assert bob
    await login(phone, base, bob)
    await open_room(phone, "trip")
    for i in range(2):
        await phone.wait_for_function(f"() => {{ const i = document.querySelectorAll('[data-testid=attachment-image]')[{i}];"
                                      " return i && i.complete && i.naturalWidth > 0 }", timeout=WAIT_MS)
    await screenshot(phone, "files-phone")
    card = phone.get_by_test_id("file-card")
    box, viewport = await card.bounding_box(), phone.viewport_size
    assert box and viewport and box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"]  # the card fits the screen
    await phone.get_by_test_id("attachment-open").first.click()
    await wait_loaded(phone, "[data-testid=viewer-image]")
    image = await phone.get_by_test_id("viewer-image").bounding_box()
    assert image and image["width"] <= viewport["width"]  # the full image is scaled to the screen
    await screenshot(phone, "files-phone-viewer")


def noise_png(width: int, height: int) -> bytes:
    """A PNG that does not compress (random pixels): about 3 bytes a pixel."""
    out = io.BytesIO()
    Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(out, "PNG")
    return out.getvalue()


def wav(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """A mono 16-bit PCM WAV of a 440 Hz tone."""
    frames = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate))) for i in range(int(seconds * rate)))
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return out.getvalue()


async def drop(page: Page, files: list[tuple[str, str, bytes]]) -> None:
    """Drags files onto the open room and drops them, as a file manager does (real DragEvents
    carrying a DataTransfer with File objects)."""
    await page.locator("section.chat").evaluate("""(target, files) => {
        const data = new DataTransfer();
        for (const [name, type, bytes] of files) data.items.add(new File([new Uint8Array(bytes)], name, { type }));
        for (const type of ["dragenter", "dragover", "drop"])
            target.dispatchEvent(new DragEvent(type, { dataTransfer: data, bubbles: true, cancelable: true }));
    }""", [[name, mime, list(data)] for name, mime, data in files])


async def test_dropped_files_upload_one_too_large_keeps_its_reason_and_a_message_takes_at_most_ten(
        harness: ServerHarness, pages: Callable[..., Any]) -> None:
    limit = 64 * 1024
    _, a, b = await two_in_a_room(harness, pages, "drops",
                                  files=dataclasses.replace(harness.config().files, max_upload_bytes=limit))
    big = noise_png(200, 200)
    assert len(big) > limit
    await drop(a, [("small.png", "image/png", png(120, 90)), ("big.png", "image/png", big)])
    chips = a.get_by_test_id("chip")
    await expect(chips).to_have_count(2)
    await expect(chips.nth(0)).to_have_attribute("data-state", "done", timeout=WAIT_MS)
    await expect(chips.nth(1)).to_have_attribute("data-state", "error", timeout=WAIT_MS)
    await expect(chips.nth(1).get_by_test_id("chip-error")).to_have_attribute("data-code", "too_large")
    await expect(chips.nth(1).get_by_test_id("chip-error")).to_have_text(f"the file is larger than {limit} bytes")
    await screenshot(a, "files-chips-done-and-refused")
    await a.get_by_test_id("send").click()
    message = b.get_by_test_id("message").filter(has=b.locator("[data-attachment]"))
    await expect(message).to_have_count(1, timeout=WAIT_MS)
    await expect(message.locator("[data-attachment]")).to_have_count(1)
    await expect(message.get_by_test_id("attachment-image")).to_have_attribute("alt", "small.png")
    await expect(chips).to_have_count(0)

    # eleven files picked at once: ten chips and a note; the ten go in one message
    await attach(a, *[(f"note-{i:02}.txt", "text/plain", f"note {i}\n".encode()) for i in range(11)])
    await expect(a.get_by_test_id("upload-limit")).to_have_text("A message can carry at most 10 files; 1 file was not added.")
    await send_when_uploaded(a, 10)
    await expect(a.get_by_test_id("upload-limit")).to_have_text("")
    await expect(message).to_have_count(2, timeout=WAIT_MS)
    cards = message.nth(1).get_by_test_id("file-card")
    await expect(cards).to_have_count(10)
    await expect(cards.locator(".att-name")).to_have_text([f"note-{i:02}.txt" for i in range(10)])
    await expect(cards.first.locator(".att-icon")).to_have_text("TXT")


async def test_a_file_still_uploading_stays_for_the_next_message_and_a_cancelled_one_goes_nowhere(
        harness: ServerHarness, pages: Callable[..., Any]) -> None:
    _, a, b = await two_in_a_room(harness, pages, "slow")
    held: dict[str, asyncio.Event] = {"slow.txt": asyncio.Event(), "cancelled.txt": asyncio.Event()}
    reached: list[str] = []

    async def hold(route: Route) -> None:
        body = route.request.post_data_buffer or b""
        for name, release in held.items():
            if f'filename="{name}"'.encode() in body:
                reached.append(name)
                await asyncio.wait_for(release.wait(), WAIT_MS / 1000)
                break
        try:
            await route.continue_()
        except Exception:  # the page aborted the request meanwhile
            pass

    await a.route("**/api/v1/uploads", hold)
    await attach(a, ("quick.txt", "text/plain", b"quick\n"), ("slow.txt", "text/plain", b"slow\n"),
                 ("cancelled.txt", "text/plain", b"never\n"))
    chips = a.get_by_test_id("chip")
    await expect(chips.filter(has_text="quick.txt")).to_have_attribute("data-state", "done", timeout=WAIT_MS)
    await expect(chips.filter(has_text="slow.txt")).to_have_attribute("data-state", "uploading")
    await expect(chips.filter(has_text="slow.txt").get_by_test_id("chip-progress")).to_be_visible()
    await screenshot(a, "files-chips-uploading")
    await chips.filter(has_text="cancelled.txt").get_by_test_id("chip-cancel").click()
    await expect(chips).to_have_count(2)
    await a.get_by_test_id("composer-input").fill("first part")
    await a.get_by_test_id("send").click()
    first = b.get_by_test_id("message").filter(has_text="first part")
    await expect(first).to_have_count(1, timeout=WAIT_MS)
    await expect(first.get_by_test_id("file-card")).to_have_count(1)
    await expect(first.get_by_test_id("file-card")).to_contain_text("quick.txt")
    await expect(chips).to_have_count(1)  # the slow one stays, still uploading
    await expect(chips).to_have_attribute("data-state", "uploading")
    await expect(a.get_by_test_id("send")).to_be_disabled()

    held["slow.txt"].set()
    held["cancelled.txt"].set()
    await send_when_uploaded(a, 1)
    await expect(b.get_by_test_id("file-card")).to_have_count(2, timeout=WAIT_MS)
    await expect(b.get_by_test_id("file-card").nth(1)).to_contain_text("slow.txt")
    await expect(b.get_by_test_id("file-card").filter(has_text="cancelled.txt")).to_have_count(0)
    assert sorted(reached) == ["cancelled.txt", "slow.txt"]


async def test_a_voice_note_plays_in_place_through_range_requests(harness: ServerHarness, pages: Callable[..., Any]) -> None:
    _, a, b = await two_in_a_room(harness, pages, "voice")
    ranges: list[tuple[int, str | None]] = []
    b.on("response", lambda r: ranges.append((r.status, r.request.headers.get("range"))) if "/files/" in r.url else None)
    await attach(a, ("voice note.wav", "audio/wav", wav(1.0)))
    await send_when_uploaded(a, 1)
    player = b.get_by_test_id("attachment-audio")
    await expect(player).to_have_count(1, timeout=WAIT_MS)
    await expect(player).to_have_attribute("aria-label", "voice note.wav")
    await expect(player.locator("xpath=..").get_by_test_id("attachment-download")).to_have_attribute("download", "voice note.wav")
    assert ranges == []  # nothing loads until played
    await player.evaluate("audio => { audio.muted = true; return audio.play() }")
    await b.wait_for_function("() => { const a = document.querySelector('[data-testid=attachment-audio]');"
                              " return a && a.currentTime > 0 && Math.abs(a.duration - 1) < 0.05 }", timeout=WAIT_MS)
    await player.evaluate("audio => new Promise((done) => { audio.addEventListener('seeked', done, { once: true }); audio.currentTime = 0.5 })")
    assert any(status == 206 and rng for status, rng in ranges), ranges
    assert all(status in (200, 206) for status, _ in ranges), ranges


async def test_files_come_back_with_history_after_a_reload_and_go_when_the_message_is_deleted(
        harness: ServerHarness, pages: Callable[..., Any]) -> None:
    base, a, b = await two_in_a_room(harness, pages, "history")
    await attach(a, ("map.png", "image/png", png(300, 200)), ("route.pdf", "application/pdf", pdf("Route")))
    await send_when_uploaded(a, 2)
    await expect(b.locator("[data-attachment]")).to_have_count(2, timeout=WAIT_MS)
    image_id = await b.locator("[data-attachment]").first.get_attribute("data-attachment")
    assert image_id

    await b.reload()
    await open_room(b, "history")
    assert await wait_loaded(b, img_of(image_id)) == 300  # smaller than the thumbnail box: the thumbnail is the image's size
    href = await b.get_by_test_id("file-download").get_attribute("href")
    assert href
    async with harness.http.get(urljoin(base, href)) as r:
        assert r.status == 200

    message = a.get_by_test_id("message").filter(has=a.locator("[data-attachment]"))
    await message.hover()
    await message.get_by_test_id("delete").click()
    await message.get_by_test_id("delete-confirm").click()
    await expect(b.locator("[data-attachment]")).to_have_count(0, timeout=WAIT_MS)
    await expect(a.locator("[data-attachment]")).to_have_count(0)
    async with harness.http.get(urljoin(base, href)) as r:
        assert r.status == 404


def heic() -> bytes:
    """The start of an HEIC photo (what iPhones take): libmagic reads it as image/heic, which the
    server accepts; Pillow cannot decode it (no thumbnail) and Chromium cannot display it."""
    def box(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", 8 + len(payload)) + kind + payload
    return box(b"ftyp", b"heic\0\0\0\0mif1heic") + box(b"meta", bytes(64)) + box(b"mdat", os.urandom(2000))


async def test_a_phone_photo_the_browser_cannot_display_is_a_file_card_with_download_not_a_broken_image(
        harness: ServerHarness, pages: Callable[..., Any]) -> None:
    base, a, b = await two_in_a_room(harness, pages, "iphone")
    photo = heic()
    await attach(a, ("IMG_0042.HEIC", "image/heic", photo))
    await send_when_uploaded(a, 1)
    card = b.get_by_test_id("file-card")
    await expect(card).to_have_count(1, timeout=WAIT_MS)
    await expect(card.locator(".att-name")).to_have_text("IMG_0042.HEIC")
    await expect(card.locator(".att-icon")).to_have_text("HEIC")
    assert await b.get_by_test_id("attachment-image").count() == 0
    href = await card.get_by_test_id("file-download").get_attribute("href")
    assert href
    async with harness.http.get(urljoin(base, href)) as r:
        assert r.status == 200 and r.headers["Content-Type"] == "image/heic" and await r.read() == photo
