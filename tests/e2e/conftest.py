"""Real browser tests: Playwright driving Debian's Chromium against chat-server on real services.
Screenshots of the main screens go to ``test-artifacts/screens``, and a screenshot of every page
of a failed test to ``test-artifacts/failures``."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.services.base import REPO_ROOT

ARTIFACTS = REPO_ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-default-apps", "--disable-sync", "--no-first-run", "--metrics-recording-only",
                 "--disable-features=Translate,OptimizationHints,MediaRouter"]


# assertions on the page wait up to 10 s: Playwright's 5 s default ran out once on a worker
# sharing the two cores with the rest of the suite (a room's title not drawn yet)
expect.set_options(timeout=10_000)


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("Chromium is missing: scripts/bootstrap.sh test installs Debian's chromium package")


@pytest.fixture(scope="session")
def web_built() -> Path:
    index = REPO_ROOT / "web" / "dist" / "index.html"
    if not index.exists():
        raise RuntimeError("web/dist is missing: scripts/bootstrap.sh builds it")
    return index


@pytest.fixture(scope="session")
async def browser(web_built: Path) -> AsyncIterator[Browser]:
    """One Chromium for the session (a launch costs a second or two); each page gets its own
    context, so tests share no cookies, storage or cache."""
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        yield b
        await b.close()


@pytest.fixture
async def pages(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[Callable[..., Any]]:
    """``await new_page()`` opens a page in its own context (its own storage, like another browser)."""
    opened: list[Page] = []

    async def new_page(width: int = 1100, height: int = 750) -> Page:
        ctx = await browser.new_context(viewport={"width": width, "height": height})
        page = await ctx.new_page()
        opened.append(page)
        return page

    yield new_page
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        out = ARTIFACTS / "failures"
        out.mkdir(parents=True, exist_ok=True)
        for i, p in enumerate(opened):
            try:
                await p.screenshot(path=str(out / f"{request.node.name}-{i}.png"), full_page=True)
            except Exception:
                pass
    for p in opened:
        await p.context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


async def screenshot(page: Page, name: str) -> Path:
    out = ARTIFACTS / "screens"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    await page.screenshot(path=str(path))
    return path
