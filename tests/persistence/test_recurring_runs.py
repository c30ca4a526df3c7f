"""Recurring runs: one per firing of a transfer's schedule, however often its attempt is
retried; they end like backfill runs, and the runs list shows them as `Recurring`."""

from datetime import UTC, date, datetime, timedelta

import pytest

from persistence import recurring_runs, runs
from persistence.errors import NotFoundError
from persistence.models import RunType, TransferRun
from persistence.runs import RunSortField, SortDirection, StartedRun
from statuses import RunStatus
from tests.persistence.test_backfills import Owner
from tests.persistence.test_backfills import owner as owner  # the fixture

FIRING = datetime(2026, 3, 5, 1, 30, tzinfo=UTC)
LOADS = date(2026, 3, 4)


def begin(owner: Owner, attempt: int = 1, firing: datetime = FIRING) -> StartedRun | None:
    return recurring_runs.begin_recurring_run(
        db=owner.db,
        team_id=owner.team_id,
        transfer_id=owner.transfer_id,
        firing_time=firing,
        data_date=LOADS,
        queued_time=firing,
        attempt=attempt,
        external_id=f"transfer-{owner.transfer_id}/{attempt}",
    )


def of_firing(owner: Owner) -> TransferRun:
    return recurring_runs.get_run_of_firing(
        db=owner.db, transfer_id=owner.transfer_id, firing_time=FIRING
    )


def fail(owner: Owner, message: str) -> bool:
    return recurring_runs.fail_recurring_run(
        db=owner.db, transfer_id=owner.transfer_id, firing_time=FIRING, message=message
    )


def test_a_firing_makes_one_running_recurring_run_whatever_its_attempts(owner: Owner) -> None:
    first = begin(owner)
    again = begin(owner, attempt=2)

    assert first is not None and again is not None
    assert again.run_id == first.run_id
    run = of_firing(owner)
    assert (run.id, run.type, run.backfill_id) == (first.run_id, RunType.RECURRING, None)
    assert run.data_date == LOADS
    assert (run.status, run.attempts) == (RunStatus.RUNNING, 2)
    # the older attempt is fenced out, as a backfill run's would be
    assert not runs.is_current_attempt(db=owner.db, run_id=first.run_id, attempt=1)


def test_it_completes_like_any_run_and_then_never_begins_again(owner: Owner) -> None:
    started = begin(owner)
    assert started is not None

    assert runs.complete_run(
        db=owner.db, run_id=started.run_id, attempt=1, total_rows=7, query_details=[]
    )
    assert not runs.complete_run(
        db=owner.db, run_id=started.run_id, attempt=1, total_rows=7, query_details=[]
    )
    run = of_firing(owner)
    assert (run.status, run.total_rows) == (RunStatus.COMPLETED, 7)
    assert begin(owner, attempt=2) is None


def test_a_failed_one_fails_once(owner: Owner) -> None:
    started = begin(owner)
    assert started is not None
    assert fail(owner, "boom")
    assert not fail(owner, "again")
    run = of_firing(owner)
    assert (run.status, run.message) == (RunStatus.FAILED, "boom")


def test_each_firing_has_its_own_run_and_the_runs_list_shows_them(owner: Owner) -> None:
    earlier = begin(owner)
    later = begin(owner, firing=FIRING + timedelta(hours=1))
    assert earlier is not None and later is not None and earlier.run_id != later.run_id

    listed = runs.list_runs(
        db=owner.db,
        team_id=owner.team_id,
        transfer_id=owner.transfer_id,
        start_date=LOADS,
        end_date=LOADS,
        issues_only=False,
        sort_field=RunSortField.CREATED_TIME,
        sort_direction=SortDirection.ASC,
        limit=10,
        offset=0,
    )
    assert [(r.id, r.type) for r in listed] == [
        (earlier.run_id, RunType.RECURRING),
        (later.run_id, RunType.RECURRING),
    ]


def test_a_firing_without_a_run_has_none_to_fail_or_find(owner: Owner) -> None:
    assert not fail(owner, "every attempt failed before it began")
    with pytest.raises(NotFoundError):
        of_firing(owner)


def test_a_firing_no_attempt_made_a_run_of_gets_its_failed_run(owner: Owner) -> None:
    missing = recurring_runs.FiringRecord(team_id=owner.team_id, data_date=LOADS)

    assert recurring_runs.fail_recurring_run(
        db=owner.db,
        transfer_id=owner.transfer_id,
        firing_time=FIRING,
        message="the source never answered",
        if_missing=missing,
    )
    run = of_firing(owner)
    assert (run.type, run.status, run.data_date) == (RunType.RECURRING, RunStatus.FAILED, LOADS)
    assert run.message == "the source never answered"
    assert not recurring_runs.fail_recurring_run(
        db=owner.db,
        transfer_id=owner.transfer_id,
        firing_time=FIRING,
        message="again",
        if_missing=missing,
    )
    assert begin(owner) is None  # and it never runs after
