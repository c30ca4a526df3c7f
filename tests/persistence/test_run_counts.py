"""A backfill's run counts with no hot row: a run that ends never waits for the backfill's
row, and every read (row plus the counts left beside it) is exact, even while runs end by
the dozen, other writers hold the row and readers read at once."""

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import pytest
from sqlalchemy import func
from sqlmodel import Session, col, select

from persistence import backfills, runs
from persistence.lookup import get_row
from persistence.models import Backfill, RunCountDelta, TransferRun
from persistence.run_counts import with_pending_counts
from statuses import RunStatus
from tests.persistence.test_backfills import Owner, begin, complete, day, fail, plan, race
from tests.persistence.test_backfills import owner as owner  # the fixture

DAYS = 40


def planned_and_started(owner: Owner, days: int) -> tuple[Backfill, list[runs.StartedRun]]:
    backfill = owner.create(day(0), day(days - 1))
    plan(owner, backfill)
    started = [begin(owner, backfill, day(n)) for n in range(days)]
    assert all(started)
    return backfill, [s for s in started if s is not None]


def ended_in_snapshot(session: Session, backfill_id: int) -> tuple[int, int, int, int]:
    """(completed, failed) as the backfill says, and as its run rows say, in one read."""
    backfill = get_row(session, Backfill, backfill_id, team_id=None, missing="gone")
    with_pending_counts(session, [backfill])
    by_status = dict(
        session.exec(
            select(col(TransferRun.status), func.count())
            .where(TransferRun.backfill_id == backfill_id)
            .group_by(col(TransferRun.status))
        ).all()
    )
    return (
        backfill.transfer_runs_completed,
        backfill.transfer_runs_failed,
        by_status.get(RunStatus.COMPLETED, 0),
        by_status.get(RunStatus.FAILED, 0),
    )


def deltas_of(session: Session, backfill_id: int) -> int:
    return len(
        session.exec(select(RunCountDelta).where(RunCountDelta.backfill_id == backfill_id)).all()
    )


def complete_while_the_row_is_held(
    owner: Owner, backfill: Backfill, started: list[runs.StartedRun]
) -> int:
    """Complete `started` at once while another transaction holds the backfill's row; the
    counts left beside it meanwhile."""
    assert backfill.id is not None
    with owner.db.write() as holder, ThreadPoolExecutor(max_workers=len(started)) as ending:
        get_row(holder, Backfill, backfill.id, team_id=None, missing="gone", lock=True)
        assert all(ending.map(partial(complete, owner), started, timeout=120))
        with owner.db.read() as reader:
            return deltas_of(reader, backfill.id)


def test_runs_ending_while_another_writer_holds_the_row_neither_wait_nor_miscount(
    owner: Owner,
) -> None:
    if owner.db.is_sqlite:
        pytest.skip("SQLite serializes writers: no run ends while another writer holds a row")
    backfill, started = planned_and_started(owner, DAYS)
    assert backfill.id is not None
    ended = ThreadPoolExecutor(max_workers=8)

    with owner.db.write() as holder:  # a cancel or a pause, say, holding the backfill's row
        get_row(holder, Backfill, backfill.id, team_id=None, missing="gone", lock=True)
        completions = [ended.submit(complete, owner, s) for s in started[:-5]]
        failures = [ended.submit(fail, owner, backfill, day(n)) for n in range(DAYS - 5, DAYS)]
        outcomes = [f.result(timeout=120) for f in completions + failures]  # none waited
        with owner.db.read() as reader:
            during = ended_in_snapshot(reader, backfill.id)
            left_beside = deltas_of(reader, backfill.id)
    ended.shutdown()

    assert all(outcomes)
    assert during == (DAYS - 5, 5, DAYS - 5, 5)
    assert left_beside == DAYS  # each count waited beside the row, none was lost
    assert backfills.finish_backfill(db=owner.db, backfill_id=backfill.id) == "FAILED"


def test_the_next_run_to_find_the_row_free_adds_the_counts_left_beside_it(owner: Owner) -> None:
    if owner.db.is_sqlite:
        pytest.skip("SQLite serializes writers: no run ends while another writer holds a row")
    backfill, started = planned_and_started(owner, 3)
    assert backfill.id is not None
    left_while_held = complete_while_the_row_is_held(owner, backfill, started[:2])

    assert complete(owner, started[2])

    with owner.db.read() as reader:
        row = reader.exec(select(Backfill).where(Backfill.id == backfill.id)).one()
        left_after = deltas_of(reader, backfill.id)
    assert left_while_held == 2
    assert (row.transfer_runs_completed, left_after) == (3, 0)


def test_counts_read_in_one_snapshot_match_the_runs_under_every_race(owner: Owner) -> None:
    """Completions, failures, pauses (which hold the row) and readers, all at once: every
    read's counts equal the run rows of the same snapshot, and the end result is exact."""
    backfill, started = planned_and_started(owner, DAYS)
    backfill_id = backfill.id
    assert backfill_id is not None
    mismatches: list[tuple[int, int, int, int]] = []
    done = threading.Event()

    def read_until_done() -> int:
        reads = 0
        while not done.is_set() or reads == 0:
            with owner.db.read() as session:
                seen = ended_in_snapshot(session, backfill_id)
            if seen[:2] != seen[2:]:
                mismatches.append(seen)
            reads += 1
        return reads

    def toggle_pause(paused: bool) -> Backfill:
        return backfills.change_control(
            db=owner.db, team_id=owner.team_id, backfill_id=backfill_id, paused=paused
        )

    readers = ThreadPoolExecutor(max_workers=3)
    reading = [readers.submit(read_until_done) for _ in range(3)]
    writers: list[Callable[[], object]] = [partial(complete, owner, s) for s in started[5:]]
    writers += [partial(fail, owner, backfill, day(n)) for n in range(5)]
    writers += [partial(toggle_pause, n % 2 == 0) for n in range(10)]
    results = race(writers)
    done.set()
    reads = sum(r.result(timeout=120) for r in reading)
    readers.shutdown()

    assert [r for r in results if isinstance(r, Exception)] == []
    assert mismatches == [], f"{len(mismatches)} of {reads} reads disagreed"
    with owner.db.read() as session:
        assert ended_in_snapshot(session, backfill_id) == (DAYS - 5, 5, DAYS - 5, 5)
    final = backfills.get_team_backfill(db=owner.db, team_id=owner.team_id, backfill_id=backfill_id)
    assert (final.transfer_runs_completed, final.transfer_runs_failed) == (DAYS - 5, 5)


def every_reader(owner: Owner, backfill: Backfill) -> dict[str, Backfill]:
    """The backfill as each public read of backfills returns it."""
    assert backfill.id is not None
    team, one = owner.team_id, backfill.id
    return {
        "get_team_backfill": backfills.get_team_backfill(
            db=owner.db, team_id=team, backfill_id=one
        ),
        "get_backfill_for_worker": backfills.get_backfill_for_worker(db=owner.db, backfill_id=one),
        "latest_backfill": backfills.latest_backfill(
            db=owner.db, team_id=team, transfer_id=backfill.transfer_id
        ),
        "list_incomplete_backfills": next(
            b for b in backfills.list_incomplete_backfills(db=owner.db, team_id=team) if b.id == one
        ),
        "list_team_backfills": backfills.list_team_backfills(
            db=owner.db, team_id=team, statuses=["RUNNING"], transfer_ids=[backfill.transfer_id]
        )[0],
        "with_runs_in_flight": runs.with_runs_in_flight(db=owner.db, backfill_ids=[one])[one][0],
        "change_control": backfills.change_control(
            db=owner.db, team_id=team, backfill_id=one, max_concurrent_runs=3
        ),
    }


def test_every_read_of_a_backfill_adds_the_counts_left_beside_its_row(owner: Owner) -> None:
    """Counts left beside the row stay there until the next run finds the row free: each
    read must add them (the API's GET once missed them through `with_runs_in_flight`)."""
    if owner.db.is_sqlite:
        pytest.skip("SQLite serializes writers: no run ends while another writer holds a row")
    backfill, started = planned_and_started(owner, 4)
    assert backfill.id is not None
    complete_while_the_row_is_held(owner, backfill, started[:3])

    with owner.db.read() as reader:
        assert deltas_of(reader, backfill.id) == 3  # the state the readers must see through
    seen = {name: b.transfer_runs_completed for name, b in every_reader(owner, backfill).items()}
    assert seen == dict.fromkeys(seen, 3)
