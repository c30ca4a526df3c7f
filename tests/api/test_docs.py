"""`/docs` and `/redoc` work with no internet: every file they load comes from the service."""

import re
import shutil
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from tests.support import Stack

PAGES = ["/docs", "/redoc"]
CHROMIUM = Path("/usr/bin/chromium")  # Debian's; a test never downloads a browser
ASSET_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}
ABSOLUTE_URL = re.compile(r"(?:https?:)?//[\w.-]+(?::\d+)?", re.IGNORECASE)


class References(HTMLParser):
    """Every `src` and `href` in a page, of any tag (script, link, img, ...)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [(tag, value) for name, value in attrs if name in ("src", "href") and value]


def root_url(stack: Stack) -> str:
    return stack.api_url.removesuffix("/v1")


def references(page: httpx.Response) -> list[tuple[str, str]]:
    parser = References()
    parser.feed(page.text)
    return parser.found


def on_the_service(stack: Stack, url: str) -> bool:
    service = urlsplit(root_url(stack))
    return (urlsplit(url).scheme, urlsplit(url).netloc) == (service.scheme, service.netloc)


@pytest.mark.parametrize("path", PAGES)
def test_a_docs_page_loads_nothing_from_another_host(stack: Stack, path: str) -> None:
    page = httpx.get(root_url(stack) + path)

    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    found = references(page)
    assert any(tag == "script" for tag, _ in found), found
    for _, reference in found:
        assert not reference.startswith("//"), reference
        assert on_the_service(stack, urljoin(str(page.url), reference)), reference
    assert ABSOLUTE_URL.findall(page.text) == [], "the page names no other host anywhere"
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert not ABSOLUTE_URL.search(policy), "the browser may load from no other host"


@pytest.mark.parametrize("path", PAGES)
def test_every_file_a_docs_page_references_is_served(stack: Stack, path: str) -> None:
    page = httpx.get(root_url(stack) + path)

    for _, reference in references(page):
        asset = httpx.get(urljoin(str(page.url), reference))
        expected = ASSET_TYPES[Path(urlsplit(reference).path).suffix]
        assert asset.status_code == 200, (reference, asset.status_code)
        assert expected in asset.headers["content-type"], (reference, asset.headers)
        assert len(asset.content) > (1_000 if expected == "image/png" else 50_000), reference


def asset_text(stack: Stack, page: str, suffix: str) -> str:
    """The text of the one file of a page whose name ends with `suffix`."""
    (reference,) = [
        ref for _, ref in references(httpx.get(root_url(stack) + page)) if ref.endswith(suffix)
    ]
    return httpx.get(urljoin(root_url(stack), reference)).text


def test_the_docs_pages_load_swagger_ui_and_redoc(stack: Stack) -> None:
    assert "SwaggerUIBundle" in asset_text(stack, "/docs", ".js")
    assert ".swagger-ui" in asset_text(stack, "/docs", ".css")
    assert "Redoc" in asset_text(stack, "/redoc", ".js")


# --- in a real browser, with every other host blocked -------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian's package chromium)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield launched
        launched.close()


def operation_summary(stack: Stack, operation_id: str) -> str:
    document = httpx.get(root_url(stack) + "/openapi.json").json()
    for methods in document["paths"].values():
        for operation in methods.values():
            if operation.get("operationId") == operation_id:
                summary: str = operation["summary"]
                return summary
    raise AssertionError(f"no operation {operation_id}")


@pytest.mark.parametrize("path", PAGES)
def test_a_docs_page_renders_the_operations_offline(stack: Stack, browser: Any, path: str) -> None:
    summary = operation_summary(stack, "createBackfill")
    blocked: list[str] = []
    failed: list[str] = []
    errors: list[str] = []

    def only_the_service(route: Any) -> None:
        if on_the_service(stack, route.request.url):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    def note_failure(request: Any) -> None:
        """A request of the service's that failed (the page's policy refuses others')."""
        if on_the_service(stack, request.url):
            failed.append(f"{request.url}: {request.failure}")

    page = browser.new_page()
    page.route("**/*", only_the_service)
    page.on("requestfailed", note_failure)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(root_url(stack) + path)

    page.get_by_text(summary, exact=True).filter(visible=True).first.wait_for(timeout=30_000)
    assert blocked == [], "the browser sent nothing to another host"
    assert failed == [], "everything the page asked of the service loaded"
    assert errors == []
    page.close()
