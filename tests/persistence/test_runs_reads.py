"""Reads of runs for the API: a backfill's dates page by page (one query a page, whatever
the range), and the latest run durations estimates are made from."""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, update
from sqlmodel import col

from persistence import backfills, runs
from persistence.models import Backfill, TransferRun
from persistence.runs import BackfillDate
from statuses import RunStatus
from tests.persistence.test_backfills import Owner, begin, complete, day, fail, plan
from tests.persistence.test_backfills import owner as owner  # the fixture


@pytest.fixture
def database_url(quiet_database_url: str) -> str:
    """A database of this module's own: its backfills run without workflows, which the
    shared stack's reconciler would fail."""
    return quiet_database_url


def page(
    owner: Owner,
    backfill: Backfill,
    *statuses: RunStatus,
    limit: int = 1000,
    offset: int = 0,
) -> list[BackfillDate]:
    return runs.backfill_dates(
        db=owner.db,
        backfill=owner.reload(backfill),
        statuses=statuses or None,
        limit=limit,
        offset=offset,
    )


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


@contextmanager
def captured_reads(owner: Owner) -> Iterator[list[tuple[str, Any]]]:
    """The SELECT statements run meanwhile, each with its parameters."""
    reads: list[tuple[str, Any]] = []

    def note(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            reads.append((statement, parameters))

    event.listen(owner.db.engine, "before_cursor_execute", note)
    try:
        yield reads
    finally:
        event.remove(owner.db.engine, "before_cursor_execute", note)


def work_of(owner: Owner, statement: str, parameters: Any) -> int:
    """How much work the database does for a statement, counted, not timed: SQLite's
    virtual machine instructions (in thousands), PostgreSQL's buffer accesses."""
    raw = owner.db.engine.raw_connection()
    try:
        if owner.db.engine.dialect.name == "sqlite":
            ticks = 0

            def tick() -> int:
                nonlocal ticks
                ticks += 1
                return 0

            driver = raw.driver_connection
            driver.set_progress_handler(tick, 1000)  # type: ignore[union-attr]
            try:
                raw.cursor().execute(statement, parameters).fetchall()
            finally:
                driver.set_progress_handler(None, 0)  # type: ignore[union-attr]
            return ticks
        cursor = raw.cursor()
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, parameters)
        row = cursor.fetchone()
        assert row is not None
        explained = row[0]
        plan = (json.loads(explained) if isinstance(explained, str) else explained)[0]["Plan"]
        return int(plan["Shared Hit Blocks"]) + int(plan["Shared Read Blocks"])
    finally:
        raw.close()


def supersede(owner: Owner, backfill: Backfill, data_date: date) -> None:
    """What a retry of the date does (another operation's): the run it had is kept,
    superseded, and a new current run waits."""
    assert backfill.id is not None
    now = datetime.now(UTC)
    with owner.db.write() as session:
        session.execute(
            update(TransferRun)
            .where(
                col(TransferRun.backfill_id) == backfill.id,
                col(TransferRun.data_date) == data_date,
                col(TransferRun.superseded_time).is_(None),
            )
            .values(superseded_time=now)
        )
        session.add(
            TransferRun(
                team_id=owner.team_id,
                transfer_id=owner.transfer_id,
                backfill_id=backfill.id,
                data_date=data_date,
                created_time=now,
            )
        )


def test_a_backfill_not_planned_yet_shows_every_date_created_without_a_run(
    owner: Owner,
) -> None:
    backfill = owner.create(day(0), day(9))

    dates = page(owner, backfill)

    assert [d.data_date for d in dates] == [day(n) for n in range(10)]
    assert {(d.status, d.run_id, d.attempts, d.message, d.superseded_runs) for d in dates} == {
        (RunStatus.CREATED, None, 0, "", 0)
    }


def test_each_date_shows_its_current_run(owner: Owner) -> None:
    backfill = owner.create(day(0), day(3))
    plan(owner, backfill)
    started = begin(owner, backfill, day(0))
    assert started is not None and complete(owner, started)
    assert fail(owner, backfill, day(1))
    running = begin(owner, backfill, day(2))
    assert running is not None

    dates = page(owner, backfill)

    assert [d.status for d in dates] == [
        RunStatus.COMPLETED,
        RunStatus.FAILED,
        RunStatus.RUNNING,
        RunStatus.CREATED,
    ]
    assert dates[0].run_id == started.run_id
    assert dates[0].attempts == 1
    assert dates[0].started_time is not None and dates[0].ended_time is not None
    assert dates[1].message == "it broke"
    assert dates[2].run_id == running.run_id and dates[2].ended_time is None
    assert dates[3].run_id is not None and dates[3].attempts == 0


def test_pages_follow_the_dates(owner: Owner) -> None:
    backfill = owner.create(day(0), day(9))
    plan(owner, backfill)

    pages = [page(owner, backfill, limit=4, offset=offset) for offset in (0, 4, 8, 12)]

    assert [[d.data_date for d in p] for p in pages] == [
        [day(0), day(1), day(2), day(3)],
        [day(4), day(5), day(6), day(7)],
        [day(8), day(9)],
        [],
    ]


def test_a_filter_keeps_the_dates_in_those_statuses_planned_or_not(owner: Owner) -> None:
    backfill = owner.create(day(0), day(9))
    assert backfill.id is not None
    runs.plan_runs(db=owner.db, backfill_id=backfill.id, first=day(0), last=day(4))
    assert fail(owner, backfill, day(1))
    assert fail(owner, backfill, day(3))

    failed = page(owner, backfill, RunStatus.FAILED)
    waiting = page(owner, backfill, RunStatus.CREATED)
    either = page(owner, backfill, RunStatus.FAILED, RunStatus.CREATED, limit=3, offset=2)

    assert [d.data_date for d in failed] == [day(1), day(3)]
    assert [d.data_date for d in waiting] == [day(n) for n in (0, 2, 4, 5, 6, 7, 8, 9)]
    assert [d.run_id is None for d in waiting] == [False] * 3 + [True] * 5
    assert [d.data_date for d in either] == [day(2), day(3), day(4)]
    assert page(owner, backfill, RunStatus.COMPLETED) == []


def test_a_cancelled_backfills_unplanned_dates_show_cancelled(owner: Owner) -> None:
    backfill = owner.create(day(0), day(2))
    assert backfill.id is not None
    backfills.cancel_backfill(db=owner.db, backfill_id=backfill.id, user_id=owner.user_id)

    dates = page(owner, backfill)

    assert {(d.status, d.run_id) for d in dates} == {(RunStatus.CANCELLED, None)}


def test_only_the_current_run_counts_and_the_earlier_ones_are_counted(owner: Owner) -> None:
    backfill = owner.create(day(0), day(2))
    plan(owner, backfill)
    assert fail(owner, backfill, day(1))
    failed_run = page(owner, backfill)[1].run_id
    supersede(owner, backfill, day(1))
    assert fail(owner, backfill, day(1))
    supersede(owner, backfill, day(1))

    dates = page(owner, backfill)

    assert [d.status for d in dates] == [RunStatus.CREATED] * 3
    assert dates[1].run_id not in (None, failed_run)
    assert [d.superseded_runs for d in dates] == [0, 2, 0]
    assert page(owner, backfill, RunStatus.FAILED) == []


def test_a_page_is_one_query(owner: Owner) -> None:
    backfill = owner.reload(owner.create(day(0), day(99)))
    plan(owner, backfill)
    supersede(owner, backfill, day(5))

    with counted_queries(owner) as plain:
        runs.backfill_dates(db=owner.db, backfill=backfill, statuses=None, limit=50, offset=25)
    with counted_queries(owner) as filtered:
        runs.backfill_dates(
            db=owner.db, backfill=backfill, statuses=(RunStatus.CREATED,), limit=50, offset=25
        )

    assert len(plain) == 1, plain
    assert len(filtered) == 1, filtered


WORK_BOUND = {"sqlite": 30_000, "postgresql": 400_000}


def test_a_century_is_paged_quickly_planned_half_planned_or_not(owner: Owner) -> None:
    first = date(1925, 1, 1)
    backfill = backfills.create_backfill(
        db=owner.db,
        team_id=owner.team_id,
        transfer_id=owner.transfer_id,
        user_id=owner.user_id,
        range_start=first,
        range_end=first + timedelta(days=36_499),
    )
    assert backfill.id is not None
    heaviest = 0

    def timed(*statuses: RunStatus, limit: int = 1000, offset: int = 0) -> list[BackfillDate]:
        nonlocal heaviest
        with captured_reads(owner) as reads:
            found = page(owner, backfill, *statuses, limit=limit, offset=offset)
        heaviest = max(heaviest, *(work_of(owner, *read) for read in reads))
        return found

    def plan_days(start: int, end: int) -> None:
        for n in range(start, end, 1000):
            last = first + timedelta(days=min(n + 999, end - 1))
            assert backfill.id is not None
            runs.plan_runs(
                db=owner.db, backfill_id=backfill.id, first=first + timedelta(n), last=last
            )

    unplanned_end = timed(limit=1000, offset=36_000)
    unplanned = timed(RunStatus.CREATED, limit=1000, offset=35_900)
    plan_days(0, 18_000)  # as the workflow plans: in batches, from the start
    half = timed(RunStatus.CREATED, limit=1000, offset=17_500)
    plan_days(18_000, 36_500)
    assert fail(owner, backfill, first + timedelta(days=36_498))
    failed = timed(RunStatus.FAILED)
    planned_end = timed(limit=1000, offset=36_000)

    assert len(unplanned_end) == 500
    assert unplanned_end[-1].data_date == first + timedelta(days=36_499)
    assert len(unplanned) == 600
    assert unplanned[0].data_date == first + timedelta(days=35_900)
    assert [d.run_id is None for d in half] == [False] * 500 + [True] * 500
    assert [d.data_date for d in half] == [first + timedelta(days=17_500 + n) for n in range(1000)]
    assert [d.data_date for d in failed] == [first + timedelta(days=36_498)]
    assert all(d.run_id is not None for d in planned_end)
    # Linear in the range at worst: for the heaviest page (a filter that takes the dates not
    # planned yet) SQLite runs about 2.7 million instructions, PostgreSQL touches about
    # 130,000 buffers, three per date; a plan quadratic in the range (every run of the
    # backfill probed for each date) costs hundreds of times more.
    assert heaviest < WORK_BOUND[owner.db.engine.dialect.name], heaviest


def test_recent_durations_are_the_latest_completed_runs_of_each(owner: Owner) -> None:
    one = owner.create(day(0), day(5))
    other = owner.create(day(10), day(11))
    for backfill, dates in ((one, range(0, 5)), (other, range(10, 11))):
        plan(owner, backfill)
        for n in dates:
            started = begin(owner, backfill, day(n))
            assert started is not None and complete(owner, started)
    assert fail(owner, one, day(5))
    assert one.id is not None and other.id is not None

    by_backfill = runs.recent_durations_by_backfill(
        db=owner.db, backfill_ids=[one.id, other.id], per_backfill=3
    )
    by_transfer = runs.recent_durations_by_transfer(
        db=owner.db, transfer_ids=[owner.transfer_id], per_transfer=10
    )

    assert [len(by_backfill[one.id]), len(by_backfill[other.id])] == [3, 1]
    assert len(by_transfer[owner.transfer_id]) == 6  # completed only; the failed one is not
    assert all(0 <= seconds < 5 for seconds in by_transfer[owner.transfer_id])
    assert runs.recent_durations_by_backfill(db=owner.db, backfill_ids=[], per_backfill=3) == {}


def test_the_newest_runs_of_a_century_are_found_without_sorting_them_all(
    owner: Owner, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = date(1925, 1, 1)
    backfill = owner.create(first, first + timedelta(days=36_499))
    assert backfill.id is not None
    for n in range(0, 36_500, 1000):
        last = first + timedelta(days=min(n + 999, 36_499))
        runs.plan_runs(db=owner.db, backfill_id=backfill.id, first=first + timedelta(n), last=last)

    def newest_page() -> tuple[list[int], int]:
        with captured_reads(owner) as reads:
            found = runs.list_runs(
                db=owner.db,
                team_id=owner.team_id,
                transfer_id=owner.transfer_id,
                start_date=date(1900, 1, 1),
                end_date=date(2100, 1, 1),
                issues_only=False,
                sort_field=runs.RunSortField.CREATED_TIME,
                sort_direction=runs.SortDirection.DESC,
                limit=100,
                offset=0,
            )
        return [run.id or 0 for run in found], max(work_of(owner, *read) for read in reads)

    ids, work = newest_page()
    monkeypatch.setattr(runs, "WIDE_RANGE_DAYS", 10**6)  # as before: the date index, sorted
    sorted_ids, sorted_work = newest_page()

    assert ids == sorted_ids and len(ids) == 100
    assert ids == sorted(ids, reverse=True), "newest first (planned in order)"
    if owner.db.engine.dialect.name == "sqlite":
        assert work * 20 < sorted_work, (work, sorted_work)
    else:  # PostgreSQL's planner walks the index itself: a few pages, not 36,500 rows
        assert work < 2_000, work
