"""Every failure becomes the contract's error envelope, with the right status and code."""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from api.envelope import ERROR_CODES, ErrorBody, ErrorEnvelope, Meta
from api.request_context import current_request_id
from persistence.errors import InvalidStateError, NotFoundError, OverlapError

log = logging.getLogger("backfills.api")
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


class ApiError(Exception):
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


def unauthorized(message: str = "missing or invalid bearer token") -> ApiError:
    return ApiError(401, message, headers={"WWW-Authenticate": "Bearer"})


def forbidden(message: str) -> ApiError:
    return ApiError(403, message)


def too_many_requests(retry_after_seconds: int) -> ApiError:
    return ApiError(
        429,
        f"too many requests for this token; retry in {retry_after_seconds}s",
        headers={"Retry-After": str(retry_after_seconds)},
    )


def unprocessable(message: str, description: str | None = None) -> ApiError:
    return ApiError(422, message, description=description)


def service_unavailable(what: str) -> ApiError:
    return ApiError(503, f"{what} is unreachable; retry later", headers={"Retry-After": "5"})


def error_response(error: ApiError) -> JSONResponse:
    body = ErrorEnvelope(
        meta=Meta(request_id=current_request_id()),
        error=ErrorBody(code=error.code, message=error.message, description=error.description),
    )
    return JSONResponse(
        body.model_dump(exclude_none=True), status_code=error.status, headers=error.headers
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(NotFoundError)
    async def _not_found(_: Request, exc: NotFoundError) -> JSONResponse:
        return error_response(ApiError(404, str(exc)))

    @app.exception_handler(OverlapError)
    async def _overlap(_: Request, exc: OverlapError) -> JSONResponse:
        return error_response(ApiError(422, str(exc), code="CONFLICT_ERROR"))

    @app.exception_handler(InvalidStateError)
    async def _invalid_state(_: Request, exc: InvalidStateError) -> JSONResponse:
        return error_response(ApiError(422, str(exc)))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(
            ApiError(400, "the request is invalid", description=describe_validation(exc))
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        headers = dict(exc.headers) if exc.headers else None
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": allowed_methods(request)}
        return error_response(ApiError(exc.status_code, message, headers=headers))

    @app.exception_handler(DBAPIError)
    async def _database(_: Request, exc: DBAPIError) -> JSONResponse:
        if isinstance(exc, OperationalError) or exc.connection_invalidated:
            log.warning("database unavailable: %s", exc.__class__.__name__)
            return error_response(service_unavailable("the database"))
        log.exception("database error")
        return error_response(ApiError(500, "internal server error"))


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


def describe_validation(exc: RequestValidationError) -> str:
    """`where: what` for each problem, without echoing the input back."""
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()))
        problems.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(problems)
