"""The console's page and files: `/console/` is its one HTML page, `/console/static/` its
ES modules and stylesheet, all committed as written (no build step, nothing from another host).

Every answer carries a Content-Security-Policy that lets the browser load and connect only to
the service, run no inline script and take no inline style attribute, and be framed by no
other site; the page itself reaches the data only through the `/v1` REST API, with the token
the user signed in with, so it can do nothing that token cannot.
"""

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.types import Scope

STATIC_DIR = Path(__file__).parent / "static"
_PAGE = (Path(__file__).parent / "index.html").read_text()
PAGE_URL = "/console/"
STATIC_URL = "/console/static"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # revalidated on each load (ETag), so a new release is picked up at once
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


def _secured(headers: MutableHeaders) -> None:
    for name, value in _HEADERS.items():
        headers[name] = value


class _ConsoleFiles(StaticFiles):
    """The console's files, each with the console's security headers."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        _secured(response.headers)
        return response


def install_console(app: FastAPI) -> None:
    app.mount(STATIC_URL, _ConsoleFiles(directory=STATIC_DIR), name="console-static")
    app.include_router(router)


@router.get("/console")
async def console_redirect() -> RedirectResponse:
    """To `/console/`, so the page's relative `static/...` references resolve under it."""
    return RedirectResponse("console/", status_code=307)


@router.get(PAGE_URL)
async def console_page() -> HTMLResponse:
    page = HTMLResponse(_PAGE)
    _secured(page.headers)
    return page
