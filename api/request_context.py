"""Per-request id: made for each request, sent as `X-Request-Id`, logged with the request.

A pure ASGI middleware, outermost, so that even an unhandled error answers with the error
envelope and the request id (Starlette's own 500 page would carry neither).
"""

import json
import logging
import time
import uuid
from contextvars import ContextVar

from starlette.types import Receive, Scope, Send

from api.asgi import HttpMiddleware, ResponseStart

log = logging.getLogger("backfills.api")
_request_id: ContextVar[str] = ContextVar("request_id", default="-")


def current_request_id() -> str:
    return _request_id.get()


class RequestContextMiddleware(HttpMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = uuid.uuid4().hex
        token = _request_id.set(request_id)
        started = time.perf_counter()
        response = ResponseStart(send, headers=[(b"x-request-id", request_id.encode())])
        try:
            await self.app(scope, receive, response)
        except Exception:
            log.exception("unhandled error")  # the request id is a field of every line
            if not response.started:
                await send_error(response, 500, "INTERNAL_SERVER_ERROR", "internal server error")
        finally:
            log.info(
                "%s %s -> %s in %.1f ms",
                scope["method"],
                scope["path"],
                response.status,
                (time.perf_counter() - started) * 1000,
            )
            _request_id.reset(token)


async def send_error(send: Send, status: int, code: str, message: str) -> None:
    """Answer with the error envelope from a raw ASGI middleware, outside FastAPI's handlers."""
    body = json.dumps(
        {"meta": {"request_id": current_request_id()}, "error": {"code": code, "message": message}}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
