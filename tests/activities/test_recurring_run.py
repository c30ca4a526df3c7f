"""The recurring-run activity: a firing of a transfer's schedule loads the day before its
scheduled time in the schedule's zone into the same warehouse partition a backfill run of
that date would, as one Recurring run however often its attempt is retried."""

import sqlite3
from collections.abc import Callable
from contextlib import closing
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from temporalio.testing import ActivityEnvironment

from activities.inputs import RecurringRunInput, TransferRunResult
from persistence import recurring_runs
from persistence.models import RunType
from statuses import RunOutcome, RunStatus
from tests.activities.test_transfer_run import Run
from tests.activities.test_transfer_run import make_run as make_run  # the fixture

FIRING = datetime(2026, 3, 5, 1, 30, tzinfo=UTC)  # 2026-03-04 17:30 in Los Angeles


def firing(run: Run, time_zone: str = "America/Los_Angeles") -> RecurringRunInput:
    return RecurringRunInput(
        team_id=run.team_id,
        transfer_id=run.transfer_id,
        firing_time=FIRING,
        time_zone=time_zone,
        data_date_offset_days=1,
    )


def attempt(number: int) -> ActivityEnvironment:
    environment = ActivityEnvironment()
    environment.info = replace(
        environment.info,
        activity_type="run_recurring_transfer",
        activity_id="1",
        workflow_id="transfer-1-2026-03-05T01:30:00Z",
        attempt=number,
        current_attempt_scheduled_time=FIRING,
        started_time=datetime.now(UTC),
        start_to_close_timeout=timedelta(minutes=10),
        heartbeat_timeout=timedelta(seconds=30),
        schedule_to_close_timeout=None,
    )
    return environment


def warehouse_dates(run: Run) -> list[str]:
    with closing(sqlite3.connect(run.warehouse)) as connection:
        query = f"SELECT data_date FROM transfer_{run.transfer_id}"
        return sorted(row[0] for row in connection.execute(query))


def test_a_firing_loads_its_day_as_one_recurring_run(make_run: Callable[..., Run]) -> None:
    run = make_run(source={"type": "demo", "rows_per_day": 4})
    result = attempt(1).run(run.activities.run_recurring_transfer, firing(run))

    assert result == TransferRunResult(RunOutcome.COMPLETED, rows=4)
    record = recurring_runs.get_run_of_firing(
        db=run.db, transfer_id=run.transfer_id, firing_time=FIRING
    )
    assert (record.type, record.backfill_id) == (RunType.RECURRING, None)
    assert (record.data_date, record.status, record.total_rows) == (
        date(2026, 3, 3),  # the day before 2026-03-04 in Los Angeles
        RunStatus.COMPLETED,
        4,
    )
    assert warehouse_dates(run) == ["2026-03-03"] * 4


def test_a_retried_firing_reports_what_its_run_recorded_and_loads_nothing_twice(
    make_run: Callable[..., Run],
) -> None:
    run = make_run(source={"type": "demo", "rows_per_day": 4})
    attempt(1).run(run.activities.run_recurring_transfer, firing(run))
    again = attempt(2).run(run.activities.run_recurring_transfer, firing(run))

    assert again == TransferRunResult(RunOutcome.COMPLETED, rows=4)
    assert warehouse_dates(run) == ["2026-03-03"] * 4
