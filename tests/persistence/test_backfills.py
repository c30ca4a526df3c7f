"""Backfill records under concurrency: the overlap rule and the guarded status transitions.

These call the persistence functions directly against a migrated SQLite or PostgreSQL
database, from many threads at once where the guarantee is about racing writers.
"""

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import httpx
import pytest
from sqlmodel import select

from persistence import accounts, backfills, runs, transfers
from persistence.db import Database
from persistence.errors import InvalidStateError, OverlapError
from persistence.models import Backfill, Role, TransferRun
from persistence.runs import StartedRun
from statuses import BackfillStatus, RunStatus
from tests.support import Tenant, all_runs

T = TypeVar("T")
RACERS = 30


@dataclass
class Owner:
    """A team, its owner and one demo transfer, made straight in the database."""

    db: Database
    team_id: int
    user_id: int
    transfer_id: int

    def create(self, start: date, end: date) -> Backfill:
        return backfills.create_backfill(
            db=self.db,
            team_id=self.team_id,
            transfer_id=self.transfer_id,
            user_id=self.user_id,
            range_start=start,
            range_end=end,
        )

    def reload(self, backfill: Backfill) -> Backfill:
        assert backfill.id is not None
        return backfills.get_backfill_for_worker(db=self.db, backfill_id=backfill.id)

    def runs_of(self, backfill: Backfill) -> list[TransferRun]:
        found = all_runs(self.db, self.team_id, self.transfer_id)
        return [run for run in found if run.backfill_id == backfill.id]


@pytest.fixture
def owner(quiet_database_url: str) -> Owner:
    db = Database(quiet_database_url)
    team_id = accounts.create_team(db=db, name="persistence")
    user_id = accounts.create_user(
        db=db, email=f"owner-{os.urandom(6).hex()}@example.com", team_id=team_id, role=Role.OWNER
    )
    transfer = transfers.create_transfer(
        db=db,
        team_id=team_id,
        user_id=user_id,
        display_name="persistence test transfer",
        source={"type": "demo"},
        destination={"type": "sqlite"},
        max_concurrent_runs=4,
    )
    assert transfer.id is not None
    return Owner(db=db, team_id=team_id, user_id=user_id, transfer_id=transfer.id)


def race(calls: Sequence[Callable[[], T]]) -> list[T | Exception]:
    """Run every call on its own thread, released together; each result or raised error."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T | Exception:
        barrier.wait(timeout=60)
        try:
            return call()
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def day(n: int) -> date:
    return date(2024, 1, 1) + timedelta(days=n)


def begin(owner: Owner, backfill: Backfill, data_date: date) -> StartedRun | None:
    assert backfill.id is not None
    return runs.begin_run(
        db=owner.db,
        backfill_id=backfill.id,
        data_date=data_date,
        queued_time=datetime.now(UTC),
        attempt=1,
        external_id=f"test/{data_date}",
    )


def plan(owner: Owner, backfill: Backfill) -> int:
    assert backfill.id is not None
    return runs.plan_runs(
        db=owner.db,
        backfill_id=backfill.id,
        first=backfill.range_start_date,
        last=backfill.range_end_date,
    )


def complete(owner: Owner, started: StartedRun) -> bool:
    return runs.complete_run(
        db=owner.db,
        run_id=started.run_id,
        attempt=started.attempt,
        total_rows=3,
        query_details=[],
    )


def fail(owner: Owner, backfill: Backfill, data_date: date) -> bool:
    assert backfill.id is not None
    return runs.fail_run(
        db=owner.db, backfill_id=backfill.id, data_date=data_date, message="it broke"
    )


def cancel(owner: Owner, backfill: Backfill) -> Backfill:
    assert backfill.id is not None
    return backfills.cancel_backfill(db=owner.db, backfill_id=backfill.id, user_id=owner.user_id)


def finish(owner: Owner, backfill: Backfill) -> BackfillStatus:
    assert backfill.id is not None
    return backfills.finish_backfill(db=owner.db, backfill_id=backfill.id)


def snapshot(backfill: Backfill) -> dict[str, Any]:
    return backfill.model_dump()


def completed_backfill(owner: Owner, days: int = 2) -> Backfill:
    backfill = owner.create(day(0), day(days - 1))
    plan(owner, backfill)
    for n in range(days):
        started = begin(owner, backfill, day(n))
        assert started is not None
        assert complete(owner, started)
    assert finish(owner, backfill) == BackfillStatus.COMPLETED
    return owner.reload(backfill)


def failed_backfill(owner: Owner) -> Backfill:
    backfill = owner.create(day(0), day(1))
    plan(owner, backfill)
    started = begin(owner, backfill, day(0))
    assert started is not None
    assert complete(owner, started)
    assert fail(owner, backfill, day(1))
    assert finish(owner, backfill) == BackfillStatus.FAILED
    return owner.reload(backfill)


# --- the overlap rule under concurrency -------------------------------------------------


def test_concurrent_overlapping_creates_let_exactly_one_through(owner: Owner) -> None:
    # Every range shares day 40..60 with every other one.
    calls = [partial(owner.create, day(n), day(60 + n)) for n in range(RACERS)]

    results = race(calls)

    created = [r for r in results if isinstance(r, Backfill)]
    refused = [r for r in results if isinstance(r, OverlapError)]
    assert len(created) == 1, results
    assert len(refused) == RACERS - 1, results
    active = backfills.list_incomplete_backfills(db=owner.db, team_id=owner.team_id)
    assert [b.id for b in active] == [created[0].id]


def test_concurrent_disjoint_creates_all_succeed(owner: Owner) -> None:
    calls = [partial(owner.create, day(2 * n), day(2 * n + 1)) for n in range(RACERS)]

    results = race(calls)

    assert all(isinstance(r, Backfill) for r in results), results
    ids = {r.id for r in results if isinstance(r, Backfill)}
    assert len(ids) == RACERS
    active = backfills.list_incomplete_backfills(db=owner.db, team_id=owner.team_id)
    assert {b.id for b in active} == ids


def test_a_range_touching_an_active_one_on_a_single_day_overlaps(owner: Owner) -> None:
    owner.create(day(0), day(9))

    with pytest.raises(OverlapError):
        owner.create(day(9), day(20))
    owner.create(day(10), day(20))


def test_a_failed_backfill_still_blocks_overlaps_until_cancelled(owner: Owner) -> None:
    backfill = failed_backfill(owner)

    with pytest.raises(OverlapError):
        owner.create(day(0), day(0))
    cancel(owner, backfill)
    owner.create(day(0), day(0))


def test_a_completed_backfill_does_not_block_a_new_one(owner: Owner) -> None:
    completed_backfill(owner)

    again = owner.create(day(0), day(1))

    assert again.status == BackfillStatus.CREATED


# --- guarded transitions -------------------------------------------------------------------


def test_cancel_on_a_completed_backfill_is_refused_and_changes_nothing(owner: Owner) -> None:
    backfill = completed_backfill(owner)
    before = snapshot(backfill)

    with pytest.raises(InvalidStateError):
        cancel(owner, backfill)

    after = owner.reload(backfill)
    assert after.status == BackfillStatus.COMPLETED
    assert snapshot(after) == before
    assert all(run.status == RunStatus.COMPLETED for run in owner.runs_of(backfill))


def test_cancel_on_a_cancelled_backfill_is_refused_and_changes_nothing(owner: Owner) -> None:
    backfill = owner.create(day(0), day(2))
    plan(owner, backfill)
    cancelled = cancel(owner, backfill)
    before = snapshot(cancelled)

    with pytest.raises(InvalidStateError):
        cancel(owner, backfill)

    after = owner.reload(backfill)
    assert snapshot(after) == before
    assert after.transfer_runs_cancelled == 3


def test_cancel_sets_the_cancel_fields(owner: Owner) -> None:
    backfill = owner.create(day(0), day(2))

    cancelled = cancel(owner, backfill)

    assert cancelled.status == BackfillStatus.CANCELLED
    assert cancelled.removed_user_id == owner.user_id
    assert cancelled.removed_time is not None
    assert cancelled.end_time == cancelled.removed_time
    assert snapshot(owner.reload(backfill)) == snapshot(cancelled)


def test_finish_after_a_cancel_keeps_it_cancelled(owner: Owner) -> None:
    backfill = owner.create(day(0), day(1))
    plan(owner, backfill)
    started = begin(owner, backfill, day(0))
    assert started is not None
    cancelled = cancel(owner, backfill)
    assert complete(owner, started)

    assert finish(owner, backfill) == BackfillStatus.CANCELLED

    after = owner.reload(backfill)
    assert after.status == BackfillStatus.CANCELLED
    assert after.end_time == cancelled.end_time
    assert after.transfer_runs_completed == 1
    assert after.transfer_runs_cancelled == 1


def test_cancel_after_finishing_failed_is_allowed(owner: Owner) -> None:
    backfill = failed_backfill(owner)
    assert backfill.status == BackfillStatus.FAILED

    cancelled = cancel(owner, backfill)

    assert cancelled.status == BackfillStatus.CANCELLED
    assert cancelled.removed_user_id == owner.user_id
    assert cancelled.transfer_runs_completed == 1
    assert cancelled.transfer_runs_failed == 1
    assert cancelled.transfer_runs_cancelled == 0
    assert owner.reload(backfill).status == BackfillStatus.CANCELLED


def test_cancel_marks_unstarted_runs_cancelled_and_counts_them(owner: Owner) -> None:
    backfill = owner.create(day(0), day(4))
    assert plan(owner, backfill) == 5
    started = begin(owner, backfill, day(0))
    assert started is not None

    cancelled = cancel(owner, backfill)

    assert cancelled.transfer_runs_cancelled == 4
    statuses = {run.data_date: run.status for run in owner.runs_of(backfill)}
    assert statuses == {
        day(0): RunStatus.RUNNING,
        **{day(n): RunStatus.CANCELLED for n in range(1, 5)},
    }
    for run in owner.runs_of(backfill):
        if run.status == RunStatus.CANCELLED:
            assert run.ended_time is not None


def test_begin_run_refuses_a_cancelled_run(owner: Owner) -> None:
    backfill = owner.create(day(0), day(1))
    plan(owner, backfill)
    cancel(owner, backfill)

    assert begin(owner, backfill, day(0)) is None

    assert {run.status for run in owner.runs_of(backfill)} == {RunStatus.CANCELLED}
    assert owner.reload(backfill).start_time is None


def test_begin_run_moves_the_backfill_to_running(owner: Owner) -> None:
    backfill = owner.create(day(0), day(1))
    plan(owner, backfill)

    started = begin(owner, backfill, day(0))

    assert started is not None
    after = owner.reload(backfill)
    assert after.status == BackfillStatus.RUNNING
    assert after.start_time is not None


def test_complete_run_counts_once_when_called_twice(owner: Owner) -> None:
    backfill = owner.create(day(0), day(1))
    plan(owner, backfill)
    started = begin(owner, backfill, day(0))
    assert started is not None

    assert complete(owner, started) is True
    assert complete(owner, started) is False

    after = owner.reload(backfill)
    assert after.transfer_runs_completed == 1
    assert after.transfer_runs_failed == 0


def test_a_newer_attempt_fences_the_older_one_out(owner: Owner) -> None:
    backfill = owner.create(day(0), day(0))
    plan(owner, backfill)
    older = begin(owner, backfill, day(0))
    assert older is not None
    assert backfill.id is not None
    newer = runs.begin_run(
        db=owner.db,
        backfill_id=backfill.id,
        data_date=day(0),
        queued_time=datetime.now(UTC),
        attempt=2,
        external_id="test/retry",
    )
    assert newer is not None and newer.run_id == older.run_id

    assert not runs.is_current_attempt(db=owner.db, run_id=older.run_id, attempt=1)
    assert runs.is_current_attempt(db=owner.db, run_id=newer.run_id, attempt=2)
    assert complete(owner, older) is False
    assert complete(owner, newer) is True
    assert not runs.is_current_attempt(db=owner.db, run_id=newer.run_id, attempt=2)  # ended
    after = owner.reload(backfill)
    assert after.transfer_runs_completed == 1
    [run] = owner.runs_of(backfill)
    assert (run.status, run.attempts) == (RunStatus.COMPLETED, 2)


def test_the_worker_reads_the_current_run_of_a_date_not_a_superseded_one(owner: Owner) -> None:
    backfill = owner.create(day(0), day(0))
    plan(owner, backfill)
    assert fail(owner, backfill, day(0))
    assert backfill.id is not None
    with owner.db.write() as session:  # as a retry of the date does: the failed run stays
        [failed] = session.exec(select(TransferRun).where(TransferRun.backfill_id == backfill.id))
        failed.superseded_time = datetime.now(UTC)
        session.add(failed)
        session.flush()
        session.add(
            TransferRun(
                team_id=owner.team_id,
                transfer_id=owner.transfer_id,
                backfill_id=backfill.id,
                data_date=day(0),
                created_time=datetime.now(UTC),
            )
        )

    current = runs.get_run_for_worker(db=owner.db, backfill_id=backfill.id, data_date=day(0))

    assert (current.status, current.superseded_time) == (RunStatus.CREATED, None)


def test_fail_run_counts_once_when_called_twice(owner: Owner) -> None:
    backfill = owner.create(day(0), day(1))
    plan(owner, backfill)

    assert fail(owner, backfill, day(0)) is True
    assert fail(owner, backfill, day(0)) is False

    after = owner.reload(backfill)
    assert after.transfer_runs_failed == 1
    assert after.transfer_runs_completed == 0


def test_a_completed_run_cannot_also_fail(owner: Owner) -> None:
    backfill = owner.create(day(0), day(0))
    plan(owner, backfill)
    started = begin(owner, backfill, day(0))
    assert started is not None
    assert complete(owner, started)

    assert fail(owner, backfill, day(0)) is False

    after = owner.reload(backfill)
    assert (after.transfer_runs_completed, after.transfer_runs_failed) == (1, 0)
    assert [run.status for run in owner.runs_of(backfill)] == [RunStatus.COMPLETED]


def test_plan_runs_is_idempotent(owner: Owner) -> None:
    backfill = owner.create(day(0), day(6))

    assert plan(owner, backfill) == 7
    assert plan(owner, backfill) == 0

    assert owner.reload(backfill).transfer_runs_created == 7
    planned = owner.runs_of(backfill)
    assert [run.data_date for run in planned] == [day(n) for n in range(7)]
    assert {run.status for run in planned} == {RunStatus.CREATED}


def test_plan_runs_after_a_cancel_plans_cancelled_rows(owner: Owner) -> None:
    backfill = owner.create(day(0), day(3))
    cancel(owner, backfill)

    assert plan(owner, backfill) == 4

    after = owner.reload(backfill)
    assert after.status == BackfillStatus.CANCELLED
    assert after.transfer_runs_created == 4
    assert after.transfer_runs_cancelled == 4
    planned = owner.runs_of(backfill)
    assert len(planned) == 4
    assert {run.status for run in planned} == {RunStatus.CANCELLED}
    assert all(run.ended_time is not None for run in planned)


# --- begin_run racing a cancel -----------------------------------------------------------------


def test_runs_beginning_while_the_backfill_is_cancelled_end_consistent(owner: Owner) -> None:
    dates = [day(n) for n in range(40)]
    backfill = owner.create(dates[0], dates[-1])
    plan(owner, backfill)
    starters = 8
    per_thread = [dates[i::starters] for i in range(starters)]

    def start_all(mine: list[date]) -> dict[date, StartedRun | None]:
        return {d: begin(owner, backfill, d) for d in mine}

    calls: list[Callable[[], object]] = [partial(start_all, mine) for mine in per_thread]
    calls.append(lambda: cancel(owner, backfill))

    results = race(calls)

    assert not [r for r in results if isinstance(r, Exception)], results
    began: dict[date, StartedRun | None] = {}
    for result in results[:starters]:
        assert isinstance(result, dict)
        began.update(result)
    after = owner.reload(backfill)
    all_runs = owner.runs_of(backfill)
    by_date = {run.data_date: run for run in all_runs}
    assert after.status == BackfillStatus.CANCELLED
    assert sorted(by_date) == dates
    for data_date, started in began.items():
        run = by_date[data_date]
        if started is None:
            assert run.status == RunStatus.CANCELLED, data_date
        else:
            assert run.status == RunStatus.RUNNING, data_date
            assert run.id == started.run_id
    assert {run.status for run in all_runs} <= {RunStatus.RUNNING, RunStatus.CANCELLED}
    cancelled = sum(run.status == RunStatus.CANCELLED for run in all_runs)
    assert after.transfer_runs_created == len(dates)
    assert after.transfer_runs_cancelled == cancelled
    assert after.transfer_runs_completed == 0
    assert after.transfer_runs_failed == 0


# --- over HTTP -----------------------------------------------------------------------------


def test_concurrent_overlapping_posts_create_one_backfill(tenant: Tenant) -> None:
    # Every range holds 2024-05-01, a date that always fails: the winner ends FAILED, which
    # still blocks overlaps, so a request arriving late is refused whatever the timing.
    transfer_id = tenant.create_transfer(rows_per_day=1, fail_dates=["2024-05-01"])
    barrier = threading.Barrier(RACERS)

    def post(n: int) -> httpx.Response:
        barrier.wait(timeout=60)
        return tenant.http.post(
            f"/teams/{tenant.team_id}/transfers/{transfer_id}/backfills",
            json={"range_start": "2024-05-01", "range_end": f"2024-05-{n % 3 + 1:02d}"},
        )

    with ThreadPoolExecutor(max_workers=RACERS) as pool:
        responses = list(pool.map(post, range(RACERS)))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [422] * (RACERS - 1), [r.text for r in responses]
    for response in responses:
        body = response.json()
        assert body["meta"]["request_id"]
        if response.status_code == 422:
            assert body["error"]["code"] == "CONFLICT_ERROR"
            assert body["error"]["message"]
    winner = next(r for r in responses if r.status_code == 200).json()["data"]
    assert winner["status"] == "CREATED"
    backfill_id = winner["transfer_backfill_id"]
    incomplete = tenant.http.get(f"/teams/{tenant.team_id}/backfills").json()["data"]
    assert [b["transfer_backfill_id"] for b in incomplete] == [backfill_id]
    tenant.wait_until_status(backfill_id, "FAILED", timeout=120)
    cancelled = tenant.http.patch(
        f"/teams/{tenant.team_id}/backfills/{backfill_id}", json={"status": "CANCELLED"}
    )
    assert cancelled.status_code == 200, cancelled.text


def test_runs_completing_while_the_backfill_is_cancelled_all_count(owner: Owner) -> None:
    dates = [day(n) for n in range(20)]
    backfill = owner.create(dates[0], dates[-1])
    plan(owner, backfill)
    started = [begin(owner, backfill, d) for d in dates]
    calls: list[Callable[[], object]] = [
        partial(complete, owner, s) for s in started if s is not None
    ]
    calls += [partial(fail, owner, backfill, d) for d in dates[:5]]  # each races its complete
    calls.append(partial(cancel, owner, backfill))

    results = race(calls)

    assert not [r for r in results if isinstance(r, Exception)], results
    after = owner.reload(backfill)
    assert after.status == BackfillStatus.CANCELLED
    all_runs = owner.runs_of(backfill)
    completed = sum(run.status == RunStatus.COMPLETED for run in all_runs)
    failed = sum(run.status == RunStatus.FAILED for run in all_runs)
    assert completed + failed == len(dates)
    assert (after.transfer_runs_completed, after.transfer_runs_failed) == (completed, failed)
    assert after.transfer_runs_cancelled == 0


@pytest.mark.parametrize("attempt", range(5))
def test_cancel_racing_finish_ends_in_one_consistent_outcome(owner: Owner, attempt: int) -> None:
    backfill = owner.create(day(0), day(2))
    plan(owner, backfill)
    for n in range(3):
        started = begin(owner, backfill, day(n))
        assert started is not None
        assert complete(owner, started)

    calls: list[Callable[[], object]] = [
        partial(cancel, owner, backfill),
        partial(finish, owner, backfill),
    ]

    cancelled, finished = race(calls)

    after = owner.reload(backfill)
    assert after.transfer_runs_completed == 3
    assert after.transfer_runs_cancelled == 0
    assert after.end_time is not None
    if after.status == BackfillStatus.CANCELLED:
        assert isinstance(cancelled, Backfill)
        assert finished == BackfillStatus.CANCELLED
        assert after.removed_user_id == owner.user_id
        assert after.removed_time == after.end_time
    else:
        assert after.status == BackfillStatus.COMPLETED
        assert isinstance(cancelled, InvalidStateError)
        assert finished == BackfillStatus.COMPLETED
        assert after.removed_time is None
        assert after.removed_user_id is None


# --- one lock order: no deadlock on PostgreSQL --------------------------------------------------

LOCK_ORDER_BACKFILLS = 20
LOCK_ORDER_DAYS = 8


def racing_writers(owner: Owner, backfill: Backfill, n: int) -> list[Callable[[], object]]:
    """Every writer of a backfill and its runs, each one transaction (begin then complete is
    two): fail_run on runs not started (ending them takes their lock first) races the cancel
    and the first begin_run, which lock the backfill first; every few backfills the
    reconciler fails it too."""
    days = [backfill.range_start_date + timedelta(days=i) for i in range(LOCK_ORDER_DAYS)]

    def begin_and_complete(data_date: date) -> bool:
        started = begin(owner, backfill, data_date)
        return started is not None and complete(owner, started)

    def close_abandoned() -> bool:
        assert backfill.id is not None
        return backfills.close_abandoned_backfill(
            db=owner.db, backfill_id=backfill.id, status=BackfillStatus.FAILED, reason="gone"
        )

    writers: list[Callable[[], object]] = [partial(cancel, owner, backfill)]
    writers.append(partial(plan, owner, backfill))
    writers += [partial(fail, owner, backfill, d) for d in days[::2]]
    writers += [partial(begin_and_complete, d) for d in days]
    if n % 4 == 0:
        writers.append(close_abandoned)
    return writers


def test_racing_writers_of_backfills_and_runs_never_deadlock(owner: Owner) -> None:
    """Cancels, begins, completions, failures, plans and the reconciler, on the same
    backfills at once from many threads: they all take the backfill row's lock before any
    run's, so PostgreSQL never finds a deadlock, and every counter matches the run rows."""
    created = []
    for n in range(LOCK_ORDER_BACKFILLS):
        backfill = owner.create(day(n * 10), day(n * 10 + LOCK_ORDER_DAYS - 1))
        plan(owner, backfill)
        assert backfill.id is not None
        backfills.mark_scheduled(db=owner.db, backfill_id=backfill.id)
        created.append(backfill)
    writers = [w for n, b in enumerate(created) for w in racing_writers(owner, b, n)]

    def run(writer: Callable[[], object]) -> object:
        try:
            return writer()
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(max_workers=24) as pool:
        results = list(pool.map(run, writers))

    assert [r for r in results if isinstance(r, Exception)] == []
    for backfill in created:
        after = owner.reload(backfill)
        statuses = [run.status for run in owner.runs_of(backfill)]
        assert len(statuses) == LOCK_ORDER_DAYS
        assert counters_of(after) == {
            "created": LOCK_ORDER_DAYS,
            "completed": statuses.count(RunStatus.COMPLETED),
            "failed": statuses.count(RunStatus.FAILED),
            "cancelled": statuses.count(RunStatus.CANCELLED),
        }, statuses


def counters_of(backfill: Backfill) -> dict[str, int]:
    return {
        "created": backfill.transfer_runs_created,
        "completed": backfill.transfer_runs_completed,
        "failed": backfill.transfer_runs_failed,
        "cancelled": backfill.transfer_runs_cancelled,
    }
