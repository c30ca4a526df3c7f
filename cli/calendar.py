"""`backfills show`: a backfill's calendar in the terminal, from `GET …/backfills/{id}/dates`.

One cell per date, a row per month; a range longer than three years gets a row per year (one
cell per month, showing the most urgent status of its dates) unless `--by month` is asked
for. Each status has its own character as well as its colour, so the calendar reads the
same without colour (NO_COLOR, a pipe, a colour-blind reader).
"""

import io
import json
import sys
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from cli.api_client import (
    Api,
    BackfillArg,
    Team,
    connected,
    eta_of,
    has_ended,
    in_flight,
    limits_of,
    local_time,
    runs_phrase,
)
from statuses import BackfillStatus, RunStatus

PAGE = 10_000  # the most dates one page of …/dates holds
FETCHERS = 4  # pages asked for at once
MONTH_ROWS_UP_TO = 36  # months; a longer range is drawn a year per row (`--by auto`)
MONTHS = "JFMAMJJASOND"


@dataclass(frozen=True)
class Look:
    glyph: str
    ascii: str  # for a terminal whose encoding has no glyph
    style: str
    label: str


LOOKS: dict[str, Look] = {  # the legend's order
    RunStatus.COMPLETED: Look("█", "#", "green", "completed"),
    RunStatus.FAILED: Look("x", "x", "bold red", "failed"),
    RunStatus.RUNNING: Look(">", ">", "bold yellow", "running"),
    RunStatus.QUEUED: Look(":", ":", "cyan", "queued"),
    RunStatus.CREATED: Look("·", ".", "bright_black", "waiting"),
    RunStatus.CANCELLED: Look("-", "-", "magenta", "cancelled"),
}
OTHER = Look("?", "?", "bold white", "other")  # a status this client does not know yet
# What a year row's month cell shows: its most urgent status.
URGENCY = (
    RunStatus.FAILED,
    RunStatus.RUNNING,
    RunStatus.QUEUED,
    RunStatus.CREATED,
    RunStatus.CANCELLED,
    RunStatus.COMPLETED,
)


class By(StrEnum):
    AUTO = "auto"
    MONTH = "month"
    YEAR = "year"


def show(
    backfill_id: BackfillArg,
    team: Team,
    by: Annotated[
        By,
        typer.Option(
            "--by",
            help="A row per month (a cell per date) or per year (a cell per month); auto: "
            f"per month up to {MONTH_ROWS_UP_TO} months.",
        ),
    ] = By.AUTO,
    failures: Annotated[
        int, typer.Option("--failures", min=0, help="How many failed dates to list.")
    ] = 10,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the dates (every page) as JSON.")
    ] = False,
) -> None:
    """Draw a backfill's calendar: a cell per date, by status, with the counts, the pause,
    the drain, the ETA and the failed dates."""
    with connected() as api:
        backfill = api.call("GET", f"/teams/{team}/backfills/{backfill_id}")
        dates = fetch_dates(api, team, backfill_id, backfill["transfer_runs_total"])
    if as_json:
        typer.echo(json.dumps(dates, indent=2))
        return
    console = Console(highlight=False, soft_wrap=True)
    unicode = _fits(console)
    if not unicode and isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="replace")  # a reason or a message may not fit either
    # one print of the whole: a print per line costs more than drawing a century
    console.print(Text("\n").join(render(backfill, dates, by, failures, unicode)))


def fetch_dates(api: Api, team: int, backfill_id: int, total: int) -> list[dict[str, Any]]:
    """Every date of the backfill (`total` of them), in pages of PAGE fetched side by side:
    a century's four pages take the time of about two."""
    path = f"/teams/{team}/backfills/{backfill_id}/dates"

    def page(offset: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = api.call(
            "GET", path, params={"limit": PAGE, "offset": offset}
        )
        return found

    offsets = range(0, max(total, 1), PAGE)
    with ThreadPoolExecutor(max_workers=min(FETCHERS, len(offsets))) as pool:
        return [entry for found in pool.map(page, offsets) for entry in found]


def _fits(console: Console) -> bool:
    """Whether the terminal's encoding has the glyphs (else the ASCII ones are used)."""
    try:
        "".join(look.glyph for look in LOOKS.values()).encode(console.encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def render(
    backfill: dict[str, Any],
    dates: list[dict[str, Any]],
    by: By,
    failures: int,
    unicode: bool = True,
) -> Iterator[Text]:
    """The header, the legend, the calendar and the failed dates, line by line."""
    statuses = {entry["data_date"]: entry["status"] for entry in dates}
    first = date.fromisoformat(backfill["range_start_date"])
    last = date.fromisoformat(backfill["range_end_date"])
    months = (last.year - first.year) * 12 + last.month - first.month + 1
    per_year = by == By.YEAR or (by == By.AUTO and months > MONTH_ROWS_UP_TO)

    yield from (Text(line) for line in _header(backfill))
    yield Text()
    yield _legend(Counter(statuses.values()), unicode)
    if per_year:
        yield Text(
            "a row per year, a cell per month showing the most urgent status of its dates "
            "(failed, running, queued, waiting, cancelled, completed)",
            style="italic",
        )
        yield Text("      " + " ".join(MONTHS))
        yield from _year_rows(statuses, first, last, unicode)
    else:
        yield Text(" " * 9 + _day_ticks())
        yield from _month_rows(statuses, first, last, unicode)
    yield from _failed(backfill, dates, failures)


def _header(backfill: dict[str, Any]) -> Iterator[str]:
    status = backfill["status"] + (", paused" if backfill.get("paused") else "")
    yield (
        f"Backfill {backfill['transfer_backfill_id']} of transfer {backfill['transfer_id']}, "
        f"{backfill['range_start_date']} to {backfill['range_end_date']}: {status}"
    )
    yield (
        f"  {backfill['transfer_runs_total']} dates: "
        f"{backfill['transfer_runs_completed']} completed, "
        f"{backfill['transfer_runs_failed']} failed, {in_flight(backfill)} running, "
        f"{backfill.get('transfer_runs_cancelled', 0)} cancelled"
    )
    if backfill.get("paused"):
        since = f" since {local_time(backfill['paused_time'])}" if backfill["paused_time"] else ""
        yield f"  paused{since}: {backfill.get('paused_reason') or 'no reason given'}"
    draining = in_flight(backfill)
    if draining and (backfill.get("paused") or backfill["status"] == BackfillStatus.CANCELLED):
        yield f"  draining: {runs_phrase(draining)} still running, no new run starts"
    if not has_ended(backfill) or backfill.get("estimated_end_time"):
        yield f"  ETA {eta_of(backfill)}"
    retry_of = backfill.get("retry_of_backfill_id")
    yield f"  {limits_of(backfill)}" + (f"; a retry of backfill {retry_of}" if retry_of else "")


def _look(status: str) -> Look:
    return LOOKS.get(status, OTHER)


def _glyph(look: Look, unicode: bool) -> str:
    return look.glyph if unicode else look.ascii


def _legend(counts: Counter[str], unicode: bool) -> Text:
    legend = Text()
    known = [*LOOKS, *sorted(set(counts) - set(LOOKS))]
    for n, status in enumerate(known):
        look = _look(status)
        legend.append("   " if n else "")
        legend.append(_glyph(look, unicode), style=look.style)
        label = look.label if status in LOOKS else f"{look.label} ({status})"
        legend.append(f" {label} {counts.get(status, 0)}")
    return legend


def _day_ticks() -> str:
    ticks = [" "] * 31
    for day in (1, 10, 20, 30):
        for offset, digit in enumerate(str(day)):
            ticks[day - 1 + offset] = digit
    return "".join(ticks)


def _cells(row: Text, cells: list[str | None], unicode: bool, gap: str = "") -> None:
    """Append the cells (a status, or None for no date) to the row, one styled span per run
    of equal cells, so that a century's rows stay cheap to build and to draw."""
    n = 0
    while n < len(cells):
        status = cells[n]
        end = n + 1
        while end < len(cells) and cells[end] == status:
            end += 1
        if status is None:
            row.append((" " + gap) * (end - n))
        else:
            look = _look(status)
            row.append((_glyph(look, unicode) + gap) * (end - n), style=look.style)
        n = end


def _month_rows(statuses: dict[str, str], first: date, last: date, unicode: bool) -> Iterator[Text]:
    month = first.replace(day=1)
    while month <= last:
        following = (month + timedelta(days=31)).replace(day=1)
        days = [month + timedelta(days=n) for n in range((following - month).days)]
        cells = [statuses.get(day.isoformat()) if first <= day <= last else None for day in days]
        row = Text(f"{month:%Y-%m}  ")
        _cells(row, cells, unicode)
        failed = cells.count(RunStatus.FAILED)
        if failed:
            row.append(" " * (31 - len(cells)) + f"  {failed} failed", style="red")
        yield row
        month = following


def _year_rows(statuses: dict[str, str], first: date, last: date, unicode: bool) -> Iterator[Text]:
    for year in range(first.year, last.year + 1):
        cells: list[str | None] = []
        counts: Counter[str] = Counter()
        for month in range(1, 13):
            start = max(first, date(year, month, 1))
            end = min(last, date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1))
            days = (
                statuses.get((start + timedelta(days=n)).isoformat())
                for n in range((end - start).days + 1)
            )
            found = Counter(status for status in days if status is not None)
            counts.update(found)
            cells.append(_most_urgent(found))
        row = Text(f"{year:04d}  ")
        _cells(row, cells, unicode, gap=" ")
        summary = ", ".join(
            f"{counts[status]} {_look(status).label}"
            for status in [*LOOKS, *sorted(set(counts) - set(LOOKS))]
            if counts[status]
        )
        row.append(f" {sum(counts.values())} dates: {summary}")
        yield row


def _most_urgent(found: Counter[str]) -> str | None:
    if not found:
        return None
    for status in URGENCY:
        if found[status]:
            return status
    return next(iter(found))  # only statuses this client does not know


def _failed(backfill: dict[str, Any], dates: list[dict[str, Any]], limit: int) -> Iterator[Text]:
    failed = [entry for entry in dates if entry["status"] == RunStatus.FAILED]
    if not failed or not limit:
        return
    yield Text()
    yield Text(f"Failed dates ({min(limit, len(failed))} of {len(failed)}):", style="bold")
    for entry in failed[:limit]:
        message = " ".join(str(entry.get("message") or "").split()) or "(no message)"
        yield Text(f"  {entry['data_date']}  {message}")
    if len(failed) > limit:
        yield Text(
            f"  ... and {len(failed) - limit} more: --failures {len(failed)} lists them, --json "
            f"prints every date, GET .../backfills/{backfill['transfer_backfill_id']}/dates"
            "?status=FAILED answers them"
        )


def register(app: typer.Typer) -> None:
    app.command("show")(show)
