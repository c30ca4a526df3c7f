"""`backfills show`: a backfill's calendar drawn from its per-date view, as a user runs it,
against the stack's API; and a century of dates, made straight in the database."""

import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import col

from persistence import backfills, runs
from persistence.models import Backfill, TransferRun
from statuses import RunStatus
from tests.cli.client_support import assert_api_error, team_run
from tests.cli.client_support import cwd as cwd  # the fixture
from tests.support import Stack, Tenant, new_tenant, wait_for

GLYPHS = {"completed": "█", "failed": "x", "running": ">", "queued": ":", "waiting": "·"}
GLYPHS["cancelled"] = "-"
MONTH_ROW = re.compile(r"^(\d{4}-\d{2})  (.{28,31})", re.MULTILINE)
YEAR_ROW = re.compile(r"^(\d{4})  ((?:. ){12}) (\d+) dates: (.*)$", re.MULTILINE)


def cells(stdout: str) -> Counter[str]:
    """The characters of the month rows' cells (blank: no date there)."""
    return Counter("".join(found for _, found in MONTH_ROW.findall(stdout)).replace(" ", ""))


def legend(stdout: str) -> dict[str, int]:
    line = next(line for line in stdout.splitlines() if " completed " in line and "█" in line)
    return {label: int(n) for label, n in re.findall(r"(\w+) (\d+)", line)}


@pytest.fixture
def failed_backfill(tenant: Tenant) -> int:
    """A FAILED backfill of 2024-05-01..04 whose 2024-05-02 failed."""
    transfer_id = tenant.create_transfer(fail_dates=["2024-05-02"], rows_per_day=2)
    backfill_id: int = tenant.create_backfill(transfer_id, "2024-05-01", "2024-05-04")[
        "transfer_backfill_id"
    ]
    tenant.wait_until_status(backfill_id, "FAILED")
    return backfill_id


def test_show_draws_a_cell_per_date_with_its_status_character(
    tenant: Tenant, cwd: Path, failed_backfill: int
) -> None:
    backfill = tenant.backfill(failed_backfill)

    result = team_run(tenant, cwd, "show", str(failed_backfill))

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert (
        f"Backfill {failed_backfill} of transfer {backfill['transfer_id']}, "
        "2024-05-01 to 2024-05-04: FAILED" in out
    )
    assert "4 dates: 3 completed, 1 failed, 0 running, 0 cancelled" in out
    assert "at most 4 runs at once, no failure budget, oldest first" in out
    [(month, row)] = MONTH_ROW.findall(out)
    assert (month, row.rstrip()) == ("2024-05", "█x██")
    assert cells(out) == Counter({"█": 3, "x": 1})
    assert legend(out) == {
        "completed": 3,
        "failed": 1,
        "running": 0,
        "queued": 0,
        "waiting": 0,
        "cancelled": 0,
    }
    [entry] = backfill["error_report"]
    assert "Failed dates (1 of 1):" in out
    assert f"  2024-05-02  {entry['error']}" in out
    assert "ETA" not in out  # it has ended


def test_show_without_unicode_draws_ascii_characters(
    tenant: Tenant, cwd: Path, failed_backfill: int
) -> None:
    result = team_run(tenant, cwd, "show", str(failed_backfill), PYTHONIOENCODING="ascii")

    assert result.returncode == 0, result.stderr
    [(_, row)] = MONTH_ROW.findall(result.stdout)
    assert row.rstrip() == "#x##"


def test_show_json_prints_every_date(tenant: Tenant, cwd: Path, failed_backfill: int) -> None:
    result = team_run(tenant, cwd, "show", str(failed_backfill), "--json")

    assert result.returncode == 0, result.stderr
    dates = json.loads(result.stdout)
    assert [d["data_date"] for d in dates] == [f"2024-05-0{n}" for n in range(1, 5)]
    assert [d["status"] for d in dates] == ["COMPLETED", "FAILED", "COMPLETED", "COMPLETED"]
    assert "2024-05-02" in dates[1]["message"]


def test_show_of_another_teams_backfill_is_not_found(
    stack: Stack, tenant: Tenant, cwd: Path, failed_backfill: int
) -> None:
    other = new_tenant(stack)
    try:
        result = team_run(other, cwd, "show", str(failed_backfill))
    finally:
        other.http.close()

    assert_api_error(result, "NOT_FOUND")
    assert result.stdout == ""


def test_show_of_a_paused_backfill_shows_the_pause_the_drain_and_the_run_in_flight(
    tenant: Tenant, cwd: Path
) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=1, latency_ms=10_000)
    backfill_id = tenant.create_backfill(transfer_id, "2023-01-25", "2023-02-05")[
        "transfer_backfill_id"
    ]
    try:
        wait_for(lambda: tenant.backfill(backfill_id)["transfer_runs_running"] == 1, timeout=60)
        paused = tenant.http.patch(
            f"/teams/{tenant.team_id}/backfills/{backfill_id}",
            json={"paused": True, "paused_reason": "the source is in maintenance"},
        )
        assert paused.status_code == 200, paused.text

        result = team_run(tenant, cwd, "show", str(backfill_id))
    finally:
        tenant.cancel(backfill_id)

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"Backfill {backfill_id} of transfer {transfer_id}" in out
    assert ": RUNNING, paused" in out
    assert re.search(r"paused since \d\d:\d\d:\d\d: the source is in maintenance", out), out
    assert "draining: 1 run still running, no new run starts" in out
    assert "ETA none while paused" in out
    months = [month for month, _ in MONTH_ROW.findall(out)]
    assert months == ["2023-01", "2023-02"]
    assert cells(out) == Counter({">": 1, "·": 11})
    assert (legend(out)["running"], legend(out)["waiting"]) == (1, 11)


FIRST = date(1925, 1, 1)
DAYS = 36_500
FAILED = {date(1930, 6, 15): "a", date(1987, 10, 19): "b", date(2010, 3, 2): "c"}


@pytest.fixture
def century(tenant: Tenant) -> Iterator[int]:
    """A CANCELLED backfill of 36,500 dates (1925-01-01 to 2024-12-06), made straight in the
    database: the dates before 2000 completed, three failed, the rest cancelled. Cancelled
    first: an active one without a workflow would be repaired by the stack's reconciler."""
    db = tenant.stack.db
    transfer_id = tenant.create_transfer()
    made = backfills.create_backfill(
        db=db,
        team_id=tenant.team_id,
        transfer_id=transfer_id,
        user_id=tenant.user_id,
        range_start=FIRST,
        range_end=FIRST + timedelta(days=DAYS - 1),
    )
    assert made.id is not None
    for n in range(0, DAYS, 1000):
        last = FIRST + timedelta(days=min(n + 999, DAYS - 1))
        runs.plan_runs(db=db, backfill_id=made.id, first=FIRST + timedelta(n), last=last)
    # cancelled before any run shows as started: no reconciler ever sees it active
    backfills.cancel_backfill(db=db, backfill_id=made.id, user_id=tenant.user_id)
    now = datetime.now(UTC)
    ours = col(TransferRun.backfill_id) == made.id
    with db.write() as session:
        session.execute(
            update(TransferRun)
            .where(ours, col(TransferRun.data_date) < date(2000, 1, 1))
            .values(status=RunStatus.COMPLETED, attempts=1, started_time=now, ended_time=now)
        )
        for failed, name in FAILED.items():
            session.execute(
                update(TransferRun)
                .where(ours, col(TransferRun.data_date) == failed)
                .values(status=RunStatus.FAILED, attempts=3, message=f"it broke ({name})")
            )
        session.execute(
            update(Backfill)
            .where(col(Backfill.id) == made.id)
            .values(
                start_time=now,
                transfer_runs_completed=COMPLETED,
                transfer_runs_failed=len(FAILED),
                transfer_runs_cancelled=CANCELLED,
            )
        )
    yield made.id


COMPLETED = (date(2000, 1, 1) - FIRST).days - 2  # two of the failed dates are before 2000
CANCELLED = DAYS - COMPLETED - len(FAILED)


def test_show_of_a_century_draws_a_row_per_year_or_per_month(
    tenant: Tenant, cwd: Path, century: int
) -> None:
    started = time.monotonic()
    by_year = team_run(tenant, cwd, "show", str(century))
    took = time.monotonic() - started
    started = time.monotonic()
    by_month = team_run(tenant, cwd, "show", str(century), "--by", "month")
    took_by_month = time.monotonic() - started
    print(f"show of 36,500 dates: {took:.2f}s by year, {took_by_month:.2f}s by month")

    assert by_year.returncode == 0, by_year.stderr
    header = f"{DAYS} dates: {COMPLETED} completed, 3 failed, 0 running, {CANCELLED} cancelled"
    assert header in by_year.stdout
    expected = {"completed": COMPLETED, "failed": 3, "cancelled": CANCELLED}
    assert legend(by_year.stdout) == {"running": 0, "queued": 0, "waiting": 0, **expected}
    years = YEAR_ROW.findall(by_year.stdout)
    assert [int(year) for year, *_ in years] == list(range(1925, 2025))
    assert sum(int(count) for *_, count, _ in years) == DAYS
    by_year_of = {int(year): (row.split(), summary) for year, row, _, summary in years}
    assert by_year_of[1930] == (["█"] * 5 + ["x"] + ["█"] * 6, "364 completed, 1 failed")
    assert by_year_of[2010][0][2] == "x"  # March: cancelled dates but one failed
    assert by_year_of[2024] == (["-"] * 12, "341 cancelled")
    assert "Failed dates (3 of 3):" in by_year.stdout
    for failed, name in FAILED.items():
        assert f"  {failed}  it broke ({name})" in by_year.stdout

    assert by_month.returncode == 0, by_month.stderr
    assert len(MONTH_ROW.findall(by_month.stdout)) == 1200
    assert cells(by_month.stdout) == Counter({"█": COMPLETED, "x": 3, "-": CANCELLED})
