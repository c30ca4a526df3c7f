"""What every client command shares: the REST API and its errors, the common options, and
how a backfill reads in one line.

The commands read `BACKFILLS_API_URL` (default `http://127.0.0.1:8000/v1`) and
`BACKFILLS_TOKEN`. An API error prints the envelope's message, code and request id on stderr
and exits 1; nothing here ever shows a traceback.
"""

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Annotated, Any, NoReturn

import httpx
import typer

from config import get_settings
from statuses import ENDED_BACKFILL_STATUSES, RunOrder

TRANSIENT_STATUSES = {429, 502, 503, 504}

Team = Annotated[int, typer.Option("--team", help="The team id.")]
BackfillArg = Annotated[int, typer.Argument(metavar="ID", help="The backfill id.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the data as JSON.")]
Interval = Annotated[
    float, typer.Option("--interval", min=0.1, help="Seconds between progress polls.")
]
REPLAYED_HEADER = "Idempotent-Replayed"


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
        f"{backfill['status']}{', paused' if backfill.get('paused') else ''}, "
        f"{progress_of(backfill)}"
    )


def in_flight(backfill: dict[str, Any]) -> int:
    """Runs in flight; a cancelled or paused backfill's runs drain after the change."""
    found: int = backfill.get("transfer_runs_running", 0)
    return found


def runs_phrase(count: int) -> str:
    return f"{count} run{'' if count == 1 else 's'}"


def limits_of(backfill: dict[str, Any]) -> str:
    """`at most 4 runs at once, failure budget 10 failed runs, oldest first`."""
    budget = backfill.get("max_failed_runs")
    return (
        f"at most {runs_phrase(backfill['max_concurrent_runs'])} at once, "
        + (f"failure budget {budget} failed" if budget else "no failure budget")
        + f", {str(backfill.get('run_order', '')).replace('_', ' ').lower()}"
    )


def local_time(value: str, now: datetime | None = None) -> str:
    """An API timestamp in local time: `14:32:05` today, else `2025-01-03 14:32`."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone()
    today = (now or datetime.now(UTC)).astimezone().date()
    if moment.date() == today:
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%Y-%m-%d %H:%M")


def duration_words(seconds: float) -> str:
    """`45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`: rounded up, as an estimate should be."""
    seconds = max(0, math.ceil(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def when(value: str, now: datetime | None = None) -> str:
    """A future API timestamp as `14:32:05 (in 12 min)`."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    left = (moment - (now or datetime.now(UTC))).total_seconds()
    relative = f"in {duration_words(left)}" if left >= 1 else "any moment now"
    return f"{local_time(value, now)} ({relative})"


def has_ended(backfill: dict[str, Any]) -> bool:
    """Processing has ended: no run starts any more (runs in flight may still finish)."""
    return backfill["status"] in ENDED_BACKFILL_STATUSES


def eta_of(backfill: dict[str, Any]) -> str:
    """What `estimated_end_time` says, or why there is none."""
    if backfill.get("estimated_end_time"):
        return when(backfill["estimated_end_time"])
    if has_ended(backfill):
        return "none, it has ended"
    if backfill.get("paused"):
        return "none while paused"
    return "unknown until the transfer has a completed run"


# The create body's options, shared by `create` and `dry-run`.
Transfer = Annotated[int, typer.Option("--transfer", help="The transfer id.")]
RangeFrom = Annotated[
    str,
    typer.Option("--from", "--start", callback=iso_date, help="First data_date (YYYY-MM-DD)."),
]
RangeTo = Annotated[
    str, typer.Option("--to", "--end", callback=iso_date, help="Last data_date (YYYY-MM-DD).")
]
MaxConcurrentRuns = Annotated[
    int | None,
    typer.Option(
        "--max-concurrent-runs",
        min=1,
        max=500,
        help="Runs processed at once (1..500); default: the transfer's.",
    ),
]
MaxFailedRuns = Annotated[
    int | None,
    typer.Option(
        "--max-failed-runs",
        min=1,
        help="The failure budget: pause the backfill once this many runs have failed; "
        "default: the transfer's, if it has one.",
    ),
]
NewestFirst = Annotated[
    bool,
    typer.Option(
        "--newest-first", help="Run the newest date first (the same as --run-order NEWEST_FIRST)."
    ),
]
RunOrderOption = Annotated[
    RunOrder | None,
    typer.Option("--run-order", help="Which end of the range runs first."),
]


def create_body(
    range_from: str,
    range_to: str,
    max_concurrent_runs: int | None,
    max_failed_runs: int | None,
    newest_first: bool,
    run_order: RunOrder | None,
) -> dict[str, Any]:
    """The create (or dry run) body: the range and only the options given."""
    if newest_first and run_order == RunOrder.OLDEST_FIRST:
        raise typer.BadParameter(
            "--newest-first contradicts --run-order OLDEST_FIRST", param_hint="--newest-first"
        )
    body: dict[str, Any] = {"range_start": range_from, "range_end": range_to}
    if max_concurrent_runs is not None:
        body["max_concurrent_runs"] = max_concurrent_runs
    if max_failed_runs is not None:
        body["max_failed_runs"] = max_failed_runs
    if newest_first:
        body["run_order"] = RunOrder.NEWEST_FIRST
    elif run_order is not None:
        body["run_order"] = run_order
    return body
