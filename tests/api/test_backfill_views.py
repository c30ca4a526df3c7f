"""Building the backfill objects costs one query per kind, however many backfills are listed."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from api.backfill_views import backfill_views, backfill_views_in_chunks
from persistence import backfills
from persistence.models import Backfill
from tests.persistence.test_backfills import Owner, begin, complete, day, fail, plan
from tests.persistence.test_backfills import owner as owner  # the fixture


@pytest.fixture
def database_url(quiet_database_url: str) -> str:
    """A database of this module's own: its backfills run without workflows, which the
    shared stack's reconciler would fail."""
    return quiet_database_url


@contextmanager
def counted_queries(owner: Owner) -> Iterator[list[str]]:
    statements: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            statements.append(statement)

    event.listen(owner.db.engine, "before_cursor_execute", note)
    try:
        yield statements
    finally:
        event.remove(owner.db.engine, "before_cursor_execute", note)


def running_backfill(owner: Owner, first: int, *, failed: bool, own_runs: bool) -> Backfill:
    backfill = owner.create(day(first), day(first + 3))
    plan(owner, backfill)
    if own_runs:
        started = begin(owner, backfill, day(first))
        assert started is not None
        assert complete(owner, started)
    if failed:
        assert fail(owner, backfill, day(first + 1))
    begin(owner, backfill, day(first + 2))
    return owner.reload(backfill)


def test_any_number_of_backfills_costs_five_queries_at_most(owner: Owner) -> None:
    found = [
        running_backfill(owner, 10 * n, failed=n % 2 == 0, own_runs=n % 3 != 0) for n in range(12)
    ]

    with counted_queries(owner) as statements:
        views = backfill_views(owner.db, found)

    assert len(statements) <= 5, statements
    assert [v.transfer_backfill_id for v in views] == [b.id for b in found]
    for view, backfill in zip(views, found, strict=True):
        assert view.transfer_runs_running == 1
        assert len(view.error_report) == backfill.transfer_runs_failed
        assert view.max_concurrent_runs == 4  # the transfer's
        # every one has a completed run of its own or, through the others, its transfer's
        assert view.estimated_end_time is not None


def test_one_backfill_costs_no_more_than_many(owner: Owner) -> None:
    backfill = running_backfill(owner, 0, failed=True, own_runs=False)

    with counted_queries(owner) as statements:
        backfill_views(owner.db, [backfill])

    assert len(statements) <= 5, statements


def test_ended_backfills_cost_no_estimate_query(owner: Owner) -> None:
    backfill = owner.create(day(0), day(1))
    assert backfill.id is not None
    cancelled = backfills.cancel_backfill(
        db=owner.db, backfill_id=backfill.id, user_id=owner.user_id
    )

    with counted_queries(owner) as statements:
        (view,) = backfill_views(owner.db, [cancelled])

    assert len(statements) == 1, statements  # the transfer's cap
    assert view.estimated_end_time is None


def test_a_run_ending_while_a_backfill_is_read_is_counted_running_or_completed_never_neither(
    owner: Owner,
) -> None:
    """Completions race the reads: every answer counts each started run exactly once. (The
    counts and the runs in flight used to be read apart: a run ending between the two reads
    was in neither, which is how a drained backfill once showed 0 completed.)"""
    backfill = owner.create(day(0), day(59))
    plan(owner, backfill)
    started = [begin(owner, backfill, day(n)) for n in range(60)]
    stale = owner.reload(backfill)  # as a route holds it before it builds the answer
    seen: list[tuple[int, int]] = []

    def read_until_done() -> None:
        while not seen or seen[-1][0] < 60:
            [view] = backfill_views(owner.db, [stale])
            seen.append((view.transfer_runs_completed, view.transfer_runs_running))

    reader = threading.Thread(target=read_until_done)
    reader.start()
    for run in started:
        assert run is not None and complete(owner, run)
    reader.join(timeout=60)

    assert len(seen) > 1
    assert {completed + running for completed, running in seen} == {60}


def test_chunks_hold_about_max_errors_entries_and_together_are_the_whole_list(
    owner: Owner,
) -> None:
    found = []
    for n in range(7):  # 3 failed dates each, every other one
        backfill = owner.create(day(10 * n), day(10 * n + 3))
        plan(owner, backfill)
        for offset in range(3 if n % 2 == 0 else 0):
            assert fail(owner, backfill, day(10 * n + offset))
        found.append(owner.reload(backfill))

    chunks = list(backfill_views_in_chunks(owner.db, found, max_errors=5, max_backfills=3))

    sizes = [[len(view.error_report) for view in chunk] for chunk in chunks]
    # a chunk closes before the entry that would pass 5, or at 3 backfills; a backfill
    # larger than the bound still makes a chunk of its own
    assert sizes == [[3, 0], [3, 0], [3, 0], [3]]
    assert [v.model_dump() for chunk in chunks for v in chunk] == [
        v.model_dump() for v in backfill_views(owner.db, found)
    ]
