"""`/docs` (Swagger UI) and `/redoc` (ReDoc), with every file they load served by the API.

FastAPI's own pages load their JavaScript, CSS and favicon from CDNs, so with no internet
(or behind a proxy that blocks them) `/docs` is a blank page. The `fastapi-offline` package
ships Swagger UI's and ReDoc's bundles; they are mounted under `/docs-assets` and the pages
are FastAPI's self-hosted docs recipe pointing at them. The app is built with
`docs_url=None, redoc_url=None` (`api/main.py`) so these are the only two pages.

Both bundles also reach out on their own at run time (ReDoc shows its maker's logo from
its CDN), so the pages carry a Content-Security-Policy that lets the browser load only
from the service: inline scripts and styles (the pages' own set-up, React's styles), data:
images, and ReDoc's search worker, which it starts from a blob: URL.
"""

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs-assets"
_ASSETS_PACKAGE = ("fastapi_offline", "static")
# Swagger UI would otherwise ask validator.swagger.io for a badge about the document.
_SWAGGER_UI_PARAMETERS = {"validatorUrl": None}

_CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "worker-src 'self' blob:",
    )
)

router = APIRouter(include_in_schema=False)


def install_docs(app: FastAPI) -> None:
    app.mount(ASSETS_URL, StaticFiles(packages=[_ASSETS_PACKAGE]), name="docs-assets")
    app.include_router(router)


def _root(request: Request) -> str:
    """The path the API is served under (`root_path`, behind a proxy), as FastAPI's pages do."""
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")


def _asset(request: Request, name: str) -> str:
    return f"{_root(request)}{ASSETS_URL}/{name}"


def _openapi_url(request: Request) -> str:
    return f"{_root(request)}{request.app.openapi_url}"


def _self_only(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = _CONTENT_SECURITY_POLICY
    return page


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    page = get_swagger_ui_html(
        openapi_url=_openapi_url(request),
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=_asset(request, "swagger-ui-bundle.js"),
        swagger_css_url=_asset(request, "swagger-ui.css"),
        swagger_favicon_url=_asset(request, "favicon.png"),
        swagger_ui_parameters=_SWAGGER_UI_PARAMETERS,
    )
    return _self_only(page)


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    page = get_redoc_html(
        openapi_url=_openapi_url(request),
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=_asset(request, "redoc.standalone.js"),
        redoc_favicon_url=_asset(request, "favicon.png"),
        with_google_fonts=False,
    )
    return _self_only(page)
