"""The console's files over HTTP from the real API: every one the page loads is served, with the
console's Content-Security-Policy, and none names another host or builds HTML from text."""

import fnmatch
import re
import tomllib
from urllib.parse import urljoin

import httpx
import pytest

from api.console.router import STATIC_DIR
from tests.api.console.conftest import root_url
from tests.api.test_docs import ABSOLUTE_URL, references
from tests.support import REPO, Stack, assert_error

IMPORT = re.compile(r"""(?:import|export)\s[^;]*?from\s+"([^"]+)"|import\s+"([^"]+)\"""")
# APIs that parse a string as HTML or code: none may appear, whatever they would be given
UNSAFE = re.compile(r"\b(innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval|Function)\b")
SVG_NAMESPACE = 'xmlns="http://www.w3.org/2000/svg"'
TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


def console_url(stack: Stack) -> str:
    return root_url(stack) + "/console/"


def test_console_redirects_to_its_page_and_the_page_is_self_only(stack: Stack) -> None:
    redirect = httpx.get(root_url(stack) + "/console")
    assert redirect.status_code == 307
    assert urljoin(str(redirect.url), redirect.headers["location"]) == console_url(stack)

    page = httpx.get(console_url(stack))

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'", "no inline script, no eval"
    assert directives["style-src"] == "'self'", "no inline style"
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert not ABSOLUTE_URL.search(policy)
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "<script>" not in page.text and " style=" not in page.text


def test_every_file_the_page_loads_is_served_with_the_policy(stack: Stack) -> None:
    served = crawl(stack)

    assert {"static/app.js", "static/console.css", "static/calendar.js"} <= {
        url.removeprefix(console_url(stack)) for url in served
    }
    on_disk = {
        str(path.relative_to(STATIC_DIR.parent)) for path in STATIC_DIR.rglob("*") if path.is_file()
    }
    assert {url.removeprefix(console_url(stack)) for url in served} == on_disk, (
        "every committed file is used, and every used file is committed"
    )


def crawl(stack: Stack) -> set[str]:
    """Every URL the page references, and every module those import, fetched and checked."""
    page = httpx.get(console_url(stack))
    loaded = [ref for tag, ref in references(page) if tag in ("script", "link")]
    pending = [urljoin(console_url(stack), ref) for ref in loaded]
    seen: set[str] = set()
    while pending:
        url = pending.pop()
        if url in seen:
            continue
        seen.add(url)
        answer = httpx.get(url)
        suffix = url[url.rindex(".") :]
        assert answer.status_code == 200, url
        assert answer.headers["content-type"].startswith(TYPES[suffix]), (url, answer.headers)
        assert answer.headers["Content-Security-Policy"].startswith("default-src 'self'"), url
        text = answer.text.replace(SVG_NAMESPACE, "")  # a name, never fetched
        assert not ABSOLUTE_URL.search(text), f"{url} names another host"
        if suffix == ".js":
            for found in IMPORT.finditer(answer.text):
                pending.append(urljoin(url, found.group(1) or found.group(2)))
    return seen


@pytest.mark.parametrize("path", sorted(p.name for p in STATIC_DIR.rglob("*.js")))
def test_no_module_parses_text_as_html_or_code(path: str) -> None:
    (source,) = [p.read_text() for p in STATIC_DIR.rglob(path)]
    comments_out = re.sub(r"//[^\n]*|/\*.*?\*/", "", source, flags=re.DOTALL)

    assert UNSAFE.findall(comments_out) == []


def test_a_missing_console_file_is_the_apis_404_envelope(stack: Stack) -> None:
    response = httpx.get(console_url(stack) + "static/nothing-here.js")

    assert_error(response, 404, "NOT_FOUND")


def test_the_console_is_not_in_the_openapi_document(stack: Stack) -> None:
    document = httpx.get(root_url(stack) + "/openapi.json").json()

    assert not [path for path in document["paths"] if path.startswith("/console")]


def test_every_console_file_is_in_the_package_data() -> None:
    """The Docker image installs a wheel: a file missing from `package-data` would be a 404."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = project["tool"]["setuptools"]["package-data"]["api"]
    files = [
        path.relative_to(REPO / "api").as_posix()
        for path in STATIC_DIR.parent.rglob("*")
        if path.is_file() and path.suffix != ".py" and "__pycache__" not in path.parts
    ]

    assert "console/index.html" in files
    assert [f for f in files if not any(fnmatch.fnmatchcase(f, p) for p in patterns)] == []
