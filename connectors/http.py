"""The `http` source: a JSON document fetched from a URL templated with the run's `data_date`.

`GET url` (with `{data_date}` replaced by `YYYY-MM-DD`) must answer a JSON body; the records
are the list found at `records_path` (a dotted path; default: the body itself), each a JSON
object. Values that are objects or lists are stored as JSON text, so that any SQL destination
can hold them; every other value is kept as it is.

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
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import Field, field_validator

from connectors.base import Extract, QueryDetail, Record, RunContext, SourceOptions
from connectors.egress import EgressPolicy, EgressRefused, egress_transport
from connectors.errors import ConnectorError, PermanentError, TransientError
from connectors.secrets import REFERENCE
from statuses import QueryStatus

PLACEHOLDER = "{data_date}"
DEFAULT_MAX_RESPONSE_BYTES = 50 * 1024 * 1024
HEARTBEAT_INTERVAL_S = 1.0
MAX_REDIRECTS = 5
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
    max_response_bytes: int = Field(default=DEFAULT_MAX_RESPONSE_BYTES, ge=1, le=1024**3)

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
            records = _records(_parse_json(body, where), self.options.records_path, where)
        except ConnectorError as exc:
            exc.query_details = [
                QueryDetail(
                    status=QueryStatus.FAILED,
                    rows=0,
                    duration=time.monotonic() - started,
                    error_description=str(exc),
                )
            ]
            raise
        detail = QueryDetail(
            status=QueryStatus.SUCCESS, rows=len(records), duration=time.monotonic() - started
        )
        return Extract(records=records, query_details=[detail])

    def _fetch(self, url: str, where: str, context: RunContext) -> bytes:
        """The body, read on a helper thread while this one heartbeats, within `timeout_s`.

        httpx's timeouts bound each network operation; the deadline here bounds the whole
        request, so a server trickling bytes cannot hold a run past `timeout_s`.
        """
        request = _Request(url=url, where=where, options=self.options, egress=context.egress)
        thread = threading.Thread(target=request.run, name="http-source", daemon=True)
        deadline = time.monotonic() + self.options.timeout_s
        thread.start()
        while not request.done.wait(min(HEARTBEAT_INTERVAL_S, deadline - time.monotonic())):
            context.heartbeat()
            if time.monotonic() >= deadline:
                request.abandoned.set()
                raise _timed_out(where, self.options.timeout_s)
        context.heartbeat()
        if request.error is not None:
            raise request.error
        return request.body


@dataclass
class _Request:
    url: str
    where: str
    options: HttpSourceOptions
    egress: EgressPolicy
    body: bytes = b""
    error: ConnectorError | None = None
    done: threading.Event = field(default_factory=threading.Event)
    abandoned: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        try:
            self.body = self._get()
        except ConnectorError as exc:
            self.error = exc
        except Exception as exc:  # anything unforeseen is worth a retry
            self.error = TransientError(
                f"http source: request to {self.where} failed ({exc.__class__.__name__})"
            )
        finally:
            self.done.set()

    def _get(self) -> bytes:
        """The body; every connection, redirects included, goes through the egress policy
        (no proxy from the environment may carry it elsewhere)."""
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
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    if self.abandoned.is_set():
                        return b""
                    size += len(chunk)
                    if size > limit:
                        raise _too_large(self.where, limit)
                    chunks.append(chunk)
                return b"".join(chunks)
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
