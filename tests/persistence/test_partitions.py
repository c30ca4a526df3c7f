"""One writer per (transfer, data_date): a backfill's run and a Recurring run of the same date
never hold its partition at once; the later one waits until the holder has ended."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from persistence import recurring_runs, runs
from persistence.runs import StartedRun
from tests.persistence.test_backfills import Owner, begin, plan
from tests.persistence.test_backfills import owner as owner  # the fixture
from tests.persistence.test_recurring_runs import LOADS

FIRING = datetime(2026, 3, 5, 1, 30, tzinfo=UTC)


def begin_firing(owner: Owner, firing: datetime = FIRING) -> StartedRun:
    started = recurring_runs.begin_recurring_run(
        db=owner.db,
        team_id=owner.team_id,
        transfer_id=owner.transfer_id,
        firing_time=firing,
        data_date=LOADS,
        queued_time=firing,
        attempt=1,
        external_id=f"recurring/{firing.isoformat()}",
    )
    assert started is not None
    return started


def claim(owner: Owner, started: StartedRun) -> bool:
    return runs.claim_partition(
        db=owner.db, run_id=started.run_id, transfer_id=owner.transfer_id, data_date=LOADS
    )


def test_a_recurring_run_waits_for_the_backfill_run_writing_its_date(owner: Owner) -> None:
    backfill = owner.create(LOADS, LOADS)
    plan(owner, backfill)
    writing = begin(owner, backfill, LOADS)
    assert writing is not None and writing.writing

    waiting = begin_firing(owner)
    assert not waiting.writing
    assert not claim(owner, waiting)

    assert runs.complete_run(
        db=owner.db, run_id=writing.run_id, attempt=1, total_rows=1, query_details=[]
    )
    assert claim(owner, waiting)
    assert claim(owner, waiting)  # asking again while it holds it: still its own


def test_a_backfill_run_waits_for_the_recurring_run_and_a_failed_holder_frees_it(
    owner: Owner,
) -> None:
    holder = begin_firing(owner)
    assert holder.writing
    backfill = owner.create(LOADS, LOADS)
    plan(owner, backfill)
    waiting = begin(owner, backfill, LOADS)
    assert waiting is not None and not waiting.writing

    recurring_runs.fail_recurring_run(
        db=owner.db, transfer_id=owner.transfer_id, firing_time=FIRING, message="boom"
    )
    assert claim(owner, waiting)


def test_a_retried_attempt_of_the_holder_still_holds_it(owner: Owner) -> None:
    holder = begin_firing(owner)
    again = recurring_runs.begin_recurring_run(
        db=owner.db,
        team_id=owner.team_id,
        transfer_id=owner.transfer_id,
        firing_time=FIRING,
        data_date=LOADS,
        queued_time=FIRING,
        attempt=2,
        external_id="recurring/again",
    )
    assert again is not None and again.run_id == holder.run_id and again.writing


def test_of_many_runs_of_one_date_claiming_at_once_exactly_one_holds_it(owner: Owner) -> None:
    started = [begin_firing(owner, FIRING + timedelta(hours=hour)) for hour in range(9)]
    assert [run.writing for run in started] == [True] + [False] * 8
    holder, waiting = started[0], started[1:]
    barrier = threading.Barrier(len(waiting))

    def claim_together(run: StartedRun) -> bool:
        barrier.wait()
        return claim(owner, run)

    while waiting:  # each round: the holder ends, the rest claim at once, one wins
        assert runs.complete_run(
            db=owner.db, run_id=holder.run_id, attempt=1, total_rows=1, query_details=[]
        )
        barrier = threading.Barrier(len(waiting))
        with ThreadPoolExecutor(max_workers=len(waiting)) as pool:
            claims = list(pool.map(claim_together, waiting))
        assert claims.count(True) == 1
        holder = waiting.pop(claims.index(True))
