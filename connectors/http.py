"""The `http` source: a JSON document fetched from a URL templated with the run's `data_date`.

`GET url` (with `{data_date}` replaced by `YYYY-MM-DD`) must answer a JSON body; the records
are the list found at `records_path` (a dotted path; default: the body itself), each a JSON
object. The body is kept in a temporary file (in memory up to 1 MiB, on disk past that) and
parsed as the destination reads the records, so only the record being read is in memory;
a `records_path` that indexes a list (`pages.0.rows`) reads the body whole instead. Values
that are objects or lists are stored as JSON text, so that any SQL destination can hold
them; every other value is kept as it is.

Every connection, each redirect hop's included (at most 5 redirects), is checked by the run's
egress policy (connectors/egress.py) and made to the very address checked; no proxy from the
environment is used.

Failure classes: a refused connection, a host that does not resolve, a timeout, HTTP 429 and
5xx are transient; an address the egress policy refuses, any other HTTP 4xx (and 3xx left
after redirects), a body that is not JSON, not the expected shape or larger than
`max_response_bytes` are permanent. Messages name the HTTP status and the host and
path of the request, never its query string nor a header value.
"""

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from tempfile import SpooledTemporaryFile
from typing import IO, Any, Literal
from urllib.parse import urlsplit

import httpx
import ijson
from pydantic import Field, field_validator

from connectors.base import Extract, QueryDetail, Record, RunContext, SourceOptions
from connectors.budget import SpoolBudget, SpoolFull
from connectors.egress import EgressPolicy, EgressRefused, egress_transport
from connectors.errors import ConnectorError, PermanentError, TransientError
from connectors.secrets import REFERENCE
from statuses import QueryStatus

PLACEHOLDER = "{data_date}"
DEFAULT_MAX_RESPONSE_BYTES = 50 * 1024 * 1024
MAX_RESPONSE_BYTES = 16 * 1024**3
HEARTBEAT_INTERVAL_S = 1.0
MAX_REDIRECTS = 5
SPOOL_BYTES = 1024 * 1024  # a body larger than this waits on disk for its parsing
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_RECORDS_PATH = re.compile(r"^[^.]+(\.[^.]+)*$")


class HttpSourceOptions(SourceOptions):
    type: Literal["http"] = "http"
    url: str = Field(
        min_length=1,
        max_length=4096,
        description="http(s) URL with a `{data_date}` placeholder, replaced by YYYY-MM-DD.",
    )
    records_path: str | None = Field(
        default=None,
        max_length=1024,
        description="Dotted path to the list of records in the JSON body "
        "(a number indexes a list); default: the body is the list.",
    )
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = Field(
        default=30.0, gt=0, le=600, description="Seconds allowed for the whole request."
    )
    max_response_bytes: int = Field(
        default=DEFAULT_MAX_RESPONSE_BYTES,
        ge=1,
        le=MAX_RESPONSE_BYTES,
        description="The largest body taken. One larger than 1 MiB waits in the worker's "
        "temporary directory while it is parsed (never whole in memory), so this bounds the "
        "disk a run may take there; at most 16 GiB.",
    )

    @field_validator("url")
    @classmethod
    def _templated_http_url(cls, value: str) -> str:
        if PLACEHOLDER not in value:
            raise ValueError(f"must contain the placeholder {PLACEHOLDER}")
        # A scheme coming from a `${NAME}` reference is checked once resolved, on the worker.
        if not REFERENCE.match(value) and not value.lower().startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("records_path")
    @classmethod
    def _dotted_path(cls, value: str | None) -> str | None:
        if value is not None and not _RECORDS_PATH.match(value):
            raise ValueError("must be a dotted path such as data.items")
        return value

    @field_validator("headers")
    @classmethod
    def _valid_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, header_value in value.items():
            if not _HEADER_NAME.match(name):
                raise ValueError(f"{name!r} is not a valid header name")
            if any(char in header_value for char in "\r\n\0"):
                # The value may be a resolved secret: never echo it.
                raise ValueError(f"the value of header {name!r} contains a line break or NUL")
        return value

    def build(self) -> "HttpSource":
        return HttpSource(self)


class HttpSource:
    def __init__(self, options: HttpSourceOptions) -> None:
        self.options = options

    def extract(self, data_date: date, context: RunContext) -> Extract:
        url = self.options.url.replace(PLACEHOLDER, data_date.isoformat())
        where = describe(url)
        started = time.monotonic()
        try:
            body = self._fetch(url, where, context)
        except ConnectorError as exc:
            exc.query_details = [_failed_detail(exc, started)]
            raise
        details: list[QueryDetail] = []
        return Extract(records=self._read(body, where, details, started), query_details=details)

    def _read(
        self, body: IO[bytes], where: str, details: list[QueryDetail], started: float
    ) -> Iterator[Record]:
        """The body's records, parsed as the destination reads them; its detail once done."""
        rows = 0
        try:
            with body:
                for record in stream_records(body, self.options.records_path, where):
                    rows += 1
                    yield record
        except ConnectorError as exc:
            exc.query_details = [_failed_detail(exc, started)]
            raise
        details.append(
            QueryDetail(status=QueryStatus.SUCCESS, rows=rows, duration=time.monotonic() - started)
        )

    def _fetch(self, url: str, where: str, context: RunContext) -> IO[bytes]:
        """The body, read on a helper thread while this one heartbeats, within `timeout_s`,
        into a file that stays in memory while small and goes to disk past SPOOL_BYTES.

        httpx's timeouts bound each network operation; the deadline here bounds the whole
        request, so a server trickling bytes cannot hold a run past `timeout_s`.
        """
        request = _Request(
            url=url,
            where=where,
            options=self.options,
            egress=context.egress,
            budget=context.spool_budget,
        )
        thread = threading.Thread(target=request.run, name="http-source", daemon=True)
        deadline = time.monotonic() + self.options.timeout_s
        thread.start()
        while not request.done.wait(min(HEARTBEAT_INTERVAL_S, deadline - time.monotonic())):
            context.heartbeat()
            if time.monotonic() >= deadline:
                request.abandon()
                raise _timed_out(where, self.options.timeout_s)
        context.heartbeat()
        if request.error is not None:
            request.body.close()
            raise request.error
        request.body.seek(0)
        return request.body


@dataclass
class _Request:
    url: str
    where: str
    options: HttpSourceOptions
    egress: EgressPolicy
    budget: SpoolBudget
    body: "_Spool" = field(init=False)  # closed by the run's read of it (HttpSource._read),
    # by _fetch should the request fail, or by `run` once it was abandoned
    error: ConnectorError | None = None
    done: threading.Event = field(default_factory=threading.Event)
    abandoned: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.body = _Spool(self.budget)

    def abandon(self) -> None:
        """Give the request up: its body is closed by `run` when it ends, or here if it
        ended meanwhile (one of the two sees the other's flag, so the body's disk always
        goes back; closing it twice is harmless)."""
        self.abandoned.set()
        if self.done.is_set():
            self.body.close()

    def run(self) -> None:
        try:
            self._get()
        except ConnectorError as exc:
            self.error = exc
        except Exception as exc:  # anything unforeseen is worth a retry
            self.error = TransientError(
                f"http source: request to {self.where} failed ({exc.__class__.__name__})"
            )
        finally:
            self.done.set()
            if self.abandoned.is_set():  # nobody reads it now: its disk goes back at once
                self.body.close()

    def _get(self) -> None:
        """Write the body to `body`; every connection, redirects included, goes through the
        egress policy (no proxy from the environment may carry it elsewhere)."""
        timeout = self.options.timeout_s
        limit = self.options.max_response_bytes
        headers = {"Accept": "application/json", **self.options.headers}
        try:
            with (
                httpx.Client(
                    timeout=httpx.Timeout(timeout),
                    follow_redirects=True,
                    max_redirects=MAX_REDIRECTS,
                    headers=headers,
                    transport=egress_transport(self.egress),
                    trust_env=False,
                ) as client,
                client.stream("GET", self.url) as response,
            ):
                _check_status(response.status_code, self.where)
                length = response.headers.get("content-length", "")
                if length.isdigit() and int(length) > limit:
                    raise _too_large(self.where, limit)
                spool_limit = self.budget.limit
                if length.isdigit() and spool_limit is not None and int(length) > spool_limit:
                    raise _no_spool_room(self.where, self.budget, whole=True)
                size = 0
                for chunk in response.iter_bytes():
                    if self.abandoned.is_set():
                        return  # `run` closes the body
                    size += len(chunk)
                    if size > limit:
                        raise _too_large(self.where, limit)
                    try:
                        self.body.write(chunk)
                    except SpoolFull as full:
                        raise _no_spool_room(self.where, self.budget, whole=full.whole) from None
        except EgressRefused as exc:  # raised by the transport, as it is; names no address
            raise EgressRefused(f"http source: {exc}") from None
        except httpx.TimeoutException:
            raise _timed_out(self.where, timeout) from None
        except httpx.ConnectError as exc:
            # The OS's reason ("Connection refused", a DNS failure), never the URL.
            reason = str(exc).replace(self.url, self.where) or exc.__class__.__name__
            raise TransientError(
                f"http source: could not connect to {self.where}: {reason}"
            ) from None
        except httpx.UnsupportedProtocol:
            raise PermanentError(
                f"http source: {self.where} is not an http:// or https:// URL"
            ) from None
        except httpx.TransportError as exc:
            raise TransientError(
                f"http source: the connection to {self.where} failed ({exc.__class__.__name__})"
            ) from None
        except httpx.HTTPError as exc:  # too many redirects, an undecodable body
            raise PermanentError(
                f"http source: the request to {self.where} failed ({exc.__class__.__name__})"
            ) from None
        except httpx.InvalidURL:
            raise PermanentError(f"http source: invalid URL for {self.where}") from None


class _Spool(SpooledTemporaryFile[bytes]):
    """A body's temporary file (in memory up to SPOOL_BYTES, on disk past that), whose bytes
    count against the worker's spool budget until it is closed."""

    def __init__(self, budget: SpoolBudget) -> None:
        super().__init__(SPOOL_BYTES)
        self._budget = budget
        self._taken = 0
        self._closing = threading.Lock()  # the run and its request's thread may both close it

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._budget.take(len(data), holding=self._taken)
        self._taken += len(data)
        return super().write(data)

    def close(self) -> None:
        with self._closing:
            taken, self._taken = self._taken, 0
            try:
                super().close()
            finally:
                self._budget.give_back(taken)

    def __exit__(self, *_: object) -> None:  # the base's closes its file, not through close()
        self.close()


def _no_spool_room(where: str, budget: SpoolBudget, *, whole: bool) -> ConnectorError:
    mib = (budget.limit or 0) // (1024 * 1024)
    if whole:
        return PermanentError(
            f"http source: the response from {where} is larger than the worker's temporary "
            f"disk budget for responses ({mib} MiB)"
        )
    return TransientError(
        f"http source: the worker's temporary disk budget for responses ({mib} MiB) is in use "
        "by other runs; the run is retried"
    )


def describe(url: str) -> str:
    """`host[:port]/path` of a URL: no scheme, credentials, query string or fragment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        if parts.port is not None:
            host = f"{host}:{parts.port}"
    except ValueError:
        return "an invalid URL"
    return f"{host}{parts.path or '/'}"


def _check_status(status: int, where: str) -> None:
    if 200 <= status < 300:
        return
    message = f"http source: HTTP {status} from {where}"
    if status == 429 or status >= 500:
        raise TransientError(message)
    raise PermanentError(message)


def _timed_out(where: str, timeout_s: float) -> TransientError:
    return TransientError(f"http source: no complete answer from {where} within {timeout_s:g}s")


def _too_large(where: str, limit: int) -> PermanentError:
    return PermanentError(
        f"http source: the response from {where} is larger than max_response_bytes ({limit} bytes)"
    )


def _failed_detail(error: ConnectorError, started: float) -> QueryDetail:
    return QueryDetail(
        status=QueryStatus.FAILED,
        rows=0,
        duration=time.monotonic() - started,
        error_description=str(error),
    )


_KIND_OF_EVENT = {
    "start_array": "a list",
    "start_map": "an object",
    "string": "a string",
    "number": "a number",
    "boolean": "a boolean",
    "null": "null",
}


def stream_records(body: IO[bytes], records_path: str | None, where: str) -> Iterator[Record]:
    """The records of the JSON body at `records_path`, one at a time as the body is parsed:
    only the record being read is in memory. A path with a list index (or a key named
    `item`, which the streaming parser gives array elements) reads the body whole instead."""
    parts = records_path.split(".") if records_path else []
    if any(part.isdigit() or part == "item" for part in parts):
        yield from _records(_parse_json(body.read(), where), records_path, where)
        return
    target = ".".join(parts)
    element = f"{target}.item" if target else "item"
    at = f" at records_path {records_path!r}" if records_path else ""
    deepest, kind, index = 0, None, 0
    builder: ijson.ObjectBuilder | None = None
    try:
        for prefix, event, value in ijson.parse(body, use_float=True):
            if builder is not None:  # inside a record: build it until its own end
                builder.event(event, value)
                if prefix == element and event == "end_map":
                    yield {key: _cell(cell) for key, cell in builder.value.items()}
                    builder, index = None, index + 1
            elif kind == "a list" and prefix == element:
                if event != "start_map":
                    raise PermanentError(
                        f"http source: record {index}{at} in the response from {where} is "
                        f"{_KIND_OF_EVENT.get(event, event)}, not an object"
                    )
                builder = ijson.ObjectBuilder()
                builder.event(event, value)
            elif kind is None and prefix == target and event in _KIND_OF_EVENT:
                kind = _KIND_OF_EVENT[event]
                if kind != "a list":
                    raise PermanentError(
                        f"http source: expected a list of records{at} in the response from "
                        f"{where}, got {kind}"
                    )
            elif kind is None:
                deepest = max(deepest, _matching_parts(prefix, parts))
    except ijson.JSONError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise PermanentError(
            f"http source: the response from {where} is not valid JSON"
            + (f" ({reason[:200]})" if reason else "")
        ) from None
    if kind is None:
        walked = ".".join(parts[: deepest + 1])
        raise PermanentError(
            f"http source: the response from {where} has nothing at records_path {walked!r}"
        )


def _matching_parts(prefix: str, parts: list[str]) -> int:
    """How many leading parts of the records path the event's prefix has walked."""
    walked = prefix.split(".") if prefix else []
    matched = 0
    for have, want in zip(walked, parts, strict=False):
        if have != want:
            break
        matched += 1
    return matched


def _parse_json(body: bytes, where: str) -> Any:
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        reason = f" ({exc.msg} at line {exc.lineno} column {exc.colno})"
    except ValueError:  # not UTF-8/16/32 text
        reason = ""
    raise PermanentError(f"http source: the response from {where} is not valid JSON{reason}")


def _records(document: Any, records_path: str | None, where: str) -> list[Record]:
    found = document
    walked: list[str] = []
    for key in records_path.split(".") if records_path else []:
        walked.append(key)
        if isinstance(found, dict) and key in found:
            found = found[key]
        elif isinstance(found, list) and key.isdigit() and int(key) < len(found):
            found = found[int(key)]
        else:
            raise PermanentError(
                f"http source: the response from {where} has nothing at "
                f"records_path {'.'.join(walked)!r}"
            )
    at = f" at records_path {records_path!r}" if records_path else ""
    if not isinstance(found, list):
        raise PermanentError(
            f"http source: expected a list of records{at} in the response from {where}, "
            f"got {_json_type(found)}"
        )
    records = []
    for index, item in enumerate(found):
        if not isinstance(item, dict):
            raise PermanentError(
                f"http source: record {index}{at} in the response from {where} is "
                f"{_json_type(item)}, not an object"
            )
        records.append({key: _cell(value) for key, value in item.items()})
    return records


def _cell(value: Any) -> Any:
    """Nested objects and lists become JSON text: one column, readable by any SQL database."""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return value


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"
