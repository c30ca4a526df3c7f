"""The API's Prometheus metrics, served at `/metrics`, and the ids its log lines carry.

- `backfills_http_requests_total{route, method, status}`: every response, errors and 404s
  included;
- `backfills_http_request_duration_seconds{route, method}`: how long each took.

`route` is the path template (`/v1/teams/{team_id}/backfills/{backfill_id}`), never the
raw path, so ids do not multiply the series; a request that reached no route counts as
`unmatched` (an unknown path, or a body declared over the size limit, refused before
routing), and a method outside HTTP's usual ones as `OTHER`.

The middleware runs outermost, around `RequestContextMiddleware`, so it sees the status of
every answer, the 500 that an unhandled error becomes too. While a request is handled its
log lines get `request_id` and the ids its path names (see `observability/logs.py`).

These live in prometheus_client's default registry, which `/metrics` serves (with the
process's own `process_*` and `python_*` figures). The worker's run metrics are imported here
too, through the activities, but live in a registry of their own
(`observability.worker_metrics.WORKER_REGISTRY`): the API never counts a run.
"""

import time
from contextvars import ContextVar
from typing import Any

from prometheus_client import Counter, Histogram, disable_created_metrics
from starlette.types import Receive, Scope, Send

from api.asgi import HttpMiddleware, ResponseStart
from api.request_context import current_request_id
from observability.logs import add_context_provider
from temporal_client import workflow_id

UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_PATH_IDS = ("team_id", "transfer_id", "backfill_id", "transfer_run_id")

disable_created_metrics()  # no `_created` twin of every series

REQUESTS = Counter(
    "backfills_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
REQUEST_DURATION = Histogram(
    "backfills_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
_request_scope: ContextVar[Scope | None] = ContextVar("request_scope", default=None)


class MetricsMiddleware(HttpMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = _request_scope.set(scope)
        started = time.perf_counter()
        response = ResponseStart(send)
        try:
            await self.app(scope, receive, response)
        finally:
            route = route_template(scope)
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            REQUESTS.labels(route, method, str(response.status)).inc()
            REQUEST_DURATION.labels(route, method).observe(time.perf_counter() - started)
            _request_scope.reset(token)


def route_template(scope: Scope) -> str:
    """The matched route's path template with the prefix it was included under (`/v1`)."""
    route = scope.get("route")
    template: str | None = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not template:
        return UNMATCHED
    regex: Any = getattr(route, "path_regex", None)
    path: str = scope.get("path", "")
    if regex is None or regex.match(path):
        return template
    # The route knows its path below the prefix of `include_router` only; find that prefix.
    for index, char in enumerate(path):
        if char == "/" and index and regex.match(path[index:]):
            return path[:index] + template
    return template


def request_log_fields() -> dict[str, object]:
    scope = _request_scope.get()
    if scope is None:
        return {}
    fields: dict[str, object] = {"request_id": current_request_id()}
    path_params = scope.get("path_params") or {}
    for name in _PATH_IDS:
        value = path_params.get(name)
        if isinstance(value, str) and value.isdigit():
            fields[name] = int(value)
    backfill_id = fields.get("backfill_id")
    if isinstance(backfill_id, int):
        fields["workflow_id"] = workflow_id(backfill_id)
    return fields


add_context_provider(request_log_fields)
