"""Every failure becomes the contract's error envelope, with the right status and code."""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from api.envelope import ERROR_CODES, ErrorBody, ErrorEnvelope, Meta
from api.request_context import current_request_id
from persistence.errors import (
    IdempotencyKeyMismatch,
    InvalidStateError,
    NotFoundError,
    OverlapError,
)

log = logging.getLogger("backfills.api")
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
_JSON_CONTENT_TYPE = "Content-Type: application/json"
_DATE_EXPECTED = "expected a date as YYYY-MM-DD"


class ApiErrorResponse(Exception):
    """Raised on the server side, by a route or a dependency: answered as the error envelope
    with this status, code and message (the command-line client's counterpart, an error the
    API answered with, is `cli.client.ErrorFromApi`)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        description: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or ERROR_CODES.get(status, "ERROR")
        self.message = message
        self.description = description
        self.headers = headers


def unauthorized(message: str = "missing or invalid bearer token") -> ApiErrorResponse:
    return ApiErrorResponse(401, message, headers={"WWW-Authenticate": "Bearer"})


def forbidden(message: str) -> ApiErrorResponse:
    return ApiErrorResponse(403, message)


def too_many_requests(retry_after_seconds: int) -> ApiErrorResponse:
    return ApiErrorResponse(
        429,
        f"too many requests for this token; retry in {retry_after_seconds}s",
        headers={"Retry-After": str(retry_after_seconds)},
    )


def unprocessable(message: str, description: str | None = None) -> ApiErrorResponse:
    return ApiErrorResponse(422, message, description=description)


def service_unavailable(what: str) -> ApiErrorResponse:
    return ApiErrorResponse(
        503, f"{what} is unreachable; retry later", headers={"Retry-After": "5"}
    )


def kept_but_not_started(backfill_id: int | None, grace_seconds: float) -> ApiErrorResponse:
    """Temporal did not answer a start, so it may have created the workflow: the record is
    kept (a workflow never runs without one) and the reconciler starts it if it did not."""
    return ApiErrorResponse(
        503,
        f"Temporal did not answer; backfill {backfill_id} is kept as CREATED and starts by "
        f"itself within about {grace_seconds:.0f} s of Temporal answering again (cancel it "
        "if it should not run)",
        headers={"Retry-After": "5"},
    )


def error_response(error: ApiErrorResponse) -> JSONResponse:
    body = ErrorEnvelope(
        meta=Meta(request_id=current_request_id()),
        error=ErrorBody(code=error.code, message=error.message, description=error.description),
    )
    return JSONResponse(
        body.model_dump(exclude_none=True), status_code=error.status, headers=error.headers
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiErrorResponse)
    async def _api_error(_: Request, exc: ApiErrorResponse) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(NotFoundError)
    async def _not_found(_: Request, exc: NotFoundError) -> JSONResponse:
        return error_response(ApiErrorResponse(404, str(exc)))

    @app.exception_handler(OverlapError)
    async def _overlap(_: Request, exc: OverlapError) -> JSONResponse:
        return error_response(ApiErrorResponse(422, str(exc), code="CONFLICT_ERROR"))

    @app.exception_handler(InvalidStateError)
    async def _invalid_state(_: Request, exc: InvalidStateError) -> JSONResponse:
        return error_response(ApiErrorResponse(422, str(exc)))

    @app.exception_handler(IdempotencyKeyMismatch)
    async def _key_reused(_: Request, exc: IdempotencyKeyMismatch) -> JSONResponse:
        return error_response(ApiErrorResponse(422, str(exc)))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(bad_request(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 405:
            return error_response(method_not_allowed(request, exc))
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        headers = dict(exc.headers) if exc.headers else None
        return error_response(ApiErrorResponse(exc.status_code, message, headers=headers))

    @app.exception_handler(DBAPIError)
    async def _database(_: Request, exc: DBAPIError) -> JSONResponse:
        if isinstance(exc, OperationalError) or exc.connection_invalidated:
            log.warning("database unavailable: %s", exc.__class__.__name__)
            return error_response(service_unavailable("the database"))
        log.exception("database error")
        return error_response(ApiErrorResponse(500, "internal server error"))


def method_not_allowed(request: Request, exc: StarletteHTTPException) -> ApiErrorResponse:
    """405 naming the methods the path supports, in the message and in `Allow`: those of
    every route of the path, else (a mounted app's own 405, as the docs' files answer) the
    ones the exception names.

    Its code, `METHOD_NOT_ALLOWED`, is not among the contract's; the OpenAPI document's
    description lists it (see `api/openapi.py`)."""
    headers = dict(exc.headers or {})
    allow = allowed_methods(request) or headers.get("Allow", "")
    headers["Allow"] = allow
    message = f"method {request.method} is not allowed on this path; it allows {allow}"
    return ApiErrorResponse(405, message, headers=headers)


def allowed_methods(request: Request) -> str:
    """Every method the path supports, across all its routes (Starlette names only the first)."""
    routes = request.app.router.routes
    return ", ".join(
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    )


def bad_request(exc: RequestValidationError) -> ApiErrorResponse:
    """400 for a request that cannot be read. A body that is not JSON at all is the one
    problem named in the message (its fields' errors would only be noise); any other problem
    is listed in the description."""
    errors = list(exc.errors())
    unreadable = unreadable_body(exc.body, errors)
    if unreadable is None:
        return ApiErrorResponse(
            400, "the request is invalid", description=describe_validation(errors)
        )
    others = [error for error in errors if not _about_the_body(error)]
    return ApiErrorResponse(400, unreadable, description=describe_validation(others) or None)


def unreadable_body(body: object, errors: list[Any]) -> str | None:
    """Why the request has no JSON body to validate, if so.

    FastAPI parses the body as JSON only under a JSON `Content-Type`; under any other (or
    none) it validates the raw bytes, which fails as "not a valid dictionary"."""
    for error in errors:
        if error.get("type") == "json_invalid":
            return f"the body is not valid JSON (at character {error['loc'][-1]})"
    whole_body = [error for error in errors if tuple(error.get("loc", ())) == ("body",)]
    if whole_body and isinstance(body, bytes):
        return f"the body must be JSON ({_JSON_CONTENT_TYPE})"
    if any(error.get("type") == "missing" for error in whole_body):
        return f"the request needs a JSON body ({_JSON_CONTENT_TYPE})"
    return None


def _about_the_body(error: Any) -> bool:
    return tuple(error.get("loc", ()))[:1] == ("body",)


def describe_validation(errors: list[Any]) -> str:
    """`where: what` for each problem, each once and in order (FastAPI reports a path
    parameter once per dependency that declares it), without echoing the input back."""
    problems = (f"{_where(error)}: {_what(error)}" for error in errors)
    return "; ".join(dict.fromkeys(problems))


def _where(error: Any) -> str:
    return ".".join(str(part) for part in error.get("loc", ()))


def _what(error: Any) -> str:
    """pydantic's message, except for a date in another format than ours.

    The request dates are parsed by `date.fromisoformat` (`api/schemas/common.py`,
    `api/routers/runs.py`), whose error for, say, `01/02/2024` echoes the input and does not
    name the format expected."""
    cause = str(error.get("ctx", {}).get("error", ""))
    if error.get("type") == "value_error" and cause.startswith("Invalid isoformat string"):
        return f"Value error, {_DATE_EXPECTED}"
    return str(error.get("msg", "invalid"))
