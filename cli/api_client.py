"""What every client command shares: the REST API and its errors, the common options, and
how a backfill reads in one line.

The commands read `BACKFILLS_API_URL` (default `http://127.0.0.1:8000/v1`) and
`BACKFILLS_TOKEN`. An API error prints the envelope's message, code and request id on stderr
and exits 1; nothing here ever shows a traceback.
"""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Annotated, Any, NoReturn

import httpx
import typer

from config import get_settings

TRANSIENT_STATUSES = {429, 502, 503, 504}

Team = Annotated[int, typer.Option("--team", help="The team id.")]
BackfillArg = Annotated[int, typer.Argument(metavar="ID", help="The backfill id.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the data as JSON.")]
Interval = Annotated[
    float, typer.Option("--interval", min=0.1, help="Seconds between progress polls.")
]


class ClientError(Exception):
    """A failure worth one clear line on stderr."""


class ErrorFromApi(ClientError):
    """The client side: the API answered with its error envelope (which the server raises as
    `api.errors.ApiErrorResponse`)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Api:
    """The REST API, answering the `data` of each success envelope."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        return self.answer(method, path, body, params=params, headers=headers)[0]

    def answer(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[Any, httpx.Headers]:
        """The `data` and the response's headers."""
        try:
            response = self.http.request(method, path, json=body, params=params, headers=headers)
        except httpx.ConnectError:
            raise ClientError(
                f"cannot connect to the backfill API at {self.url} (connection refused?); "
                "is it running, and is BACKFILLS_API_URL right?"
            ) from None
        except httpx.TimeoutException:
            raise ClientError(f"the backfill API at {self.url} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise ClientError(f"cannot reach the backfill API at {self.url}: {exc}") from None
        return data_of(response), response.headers


def data_of(response: httpx.Response) -> Any:
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if response.is_success and isinstance(payload, dict) and "data" in payload:
        return payload["data"]
    request_id = response.headers.get("X-Request-Id", "unknown")
    error: dict[str, Any] = {}
    if isinstance(payload, dict):
        request_id = (payload.get("meta") or {}).get("request_id") or request_id
        error = payload.get("error") or {}
    message = error.get("message") or f"unexpected answer (HTTP {response.status_code})"
    code = error.get("code") or f"HTTP_{response.status_code}"
    line = f"{message} ({code}, HTTP {response.status_code}, request id {request_id})"
    if error.get("description"):
        line += f"\n{error['description']}"
    raise ErrorFromApi(response.status_code, line)


@contextmanager
def connected() -> Iterator[Api]:
    """The configured API; any ClientError inside becomes one line on stderr and exit 1."""
    settings = get_settings()
    try:
        if not settings.token:
            raise ClientError("set BACKFILLS_TOKEN to an API token (backfills admin create-token)")
        api = Api(settings.api_url, settings.token)
        with api.http:
            yield api
    except ClientError as error:
        fail(str(error))


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def iso_date(value: str) -> str:
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date as YYYY-MM-DD") from None


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2))


def progress_of(backfill: dict[str, Any]) -> str:
    return (
        f"{backfill['transfer_runs_completed']} completed, "
        f"{backfill['transfer_runs_failed']} failed of {backfill['transfer_runs_total']}"
    )


def describe(backfill: dict[str, Any]) -> str:
    return (
        f"backfill {backfill['transfer_backfill_id']} of transfer {backfill['transfer_id']}, "
        f"{backfill['range_start_date']} to {backfill['range_end_date']}: "
        f"{backfill['status']}, {progress_of(backfill)}"
    )
