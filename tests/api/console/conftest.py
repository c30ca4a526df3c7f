"""The console's browser tests: Debian's Chromium driven by Playwright (never a downloaded
browser), a signed-in page helper, and screenshots under tests-output/console/ (git-ignored)."""

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support import REPO, Stack

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPO / "tests-output" / "console"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium per module: Playwright's sync API allows one instance per process at a
    time, and tests/api/test_docs.py starts its own for its module."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian's package chromium; .ci/run installs it)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield launched
        launched.close()


def root_url(stack: Stack) -> str:
    return stack.api_url.removesuffix("/v1")


@dataclass
class Console:
    """A browser tab on the console, with what it did that a test checks afterwards: every
    URL it requested, and every script error or failed request of the service's."""

    page: Any
    root: str
    requested: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def open(self, hash_path: str = "/") -> None:
        self.page.goto(f"{self.root}/console/#{hash_path}")

    def sign_in(self, token: str) -> None:
        self.open("/signin")
        self.page.get_by_label("API token").fill(token)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.get_by_role("button", name="Sign out").wait_for()

    def go(self, hash_path: str) -> None:
        """Move within the signed-in tab, as a link would (no reload)."""
        self.page.evaluate("path => { location.hash = path; }", hash_path)

    def heading(self) -> str:
        text: str = self.page.locator("h1").first.inner_text()
        return text

    def screenshot(self, name: str, *, full_page: bool = True) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path


def note_console(tab: Console, message: Any) -> None:
    """Script errors the console logs; not the browser's own line for each answer >= 400,
    which the tests of refusals (401, 404, 422) cause on purpose."""
    if message.type == "error" and "Failed to load resource" not in message.text:
        tab.problems.append(f"console: {message.text}")


def note_dialog(tab: Console, dialog: Any) -> None:
    """The console opens no alert, confirm or prompt (its confirmations are <dialog>s): one
    that opens is a script that should not have run, such as a hostile name's."""
    tab.problems.append(f"a dialog opened: {dialog.message}")
    dialog.dismiss()


@pytest.fixture
def console(stack: Stack, browser: Any) -> Iterator[Console]:
    """A fresh browser context (its own session storage and cookies) on the stack's console."""
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    tab = Console(page=page, root=root_url(stack))
    only_here = tab.root

    def guard(route: Any) -> None:
        tab.requested.append(route.request.url)
        if route.request.url.startswith(only_here):
            route.continue_()
        else:
            tab.problems.append(f"request to another host: {route.request.url}")
            route.abort()

    page.route("**/*", guard)
    page.on("pageerror", lambda error: tab.problems.append(f"script error: {error}"))
    page.on("console", lambda message: note_console(tab, message))
    page.on("dialog", lambda dialog: note_dialog(tab, dialog))
    yield tab
    context.close()
