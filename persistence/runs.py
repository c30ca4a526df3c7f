"""Transfer runs: planning, the guarded RUNNING/COMPLETED/FAILED transitions, the backfill's
run counters, and reads (a backfill's error report, its runs in flight).

Each transition updates the run and its backfill's counters in one transaction, and only if
the run was in the expected state: a retried activity can never count a run twice.

Lock order, so that PostgreSQL cannot deadlock by construction: a transaction that writes a
backfill's runs and waits for the backfill row (its status or its counters) locks the
backfill row first, by an UPDATE of it or `SELECT ... FOR UPDATE`, and only then the runs.
plan_runs, begin_run while the backfill is not yet RUNNING (`MARK_BACKFILL_RUNNING` comes
first), and persistence.backfills' cancel_backfill and close_abandoned_backfill all do.
complete_run and fail_run lock their run first, and then take the backfill row only if it is
free, never waiting for it (persistence/run_counts.py). A transaction that locks one run row
and waits for nothing after it (those two, begin_run of a RUNNING backfill,
record_attempt_error) cannot close a cycle either. A partition claim (`claim_partition`, and
the UPDATE of begin_run) takes its (transfer, data_date) advisory lock after the backfill row
and before its run's row; no transaction takes two such locks, and no other writer waits for
one while holding a run row, so no cycle can close through them either. On SQLite,
`BEGIN IMMEDIATE` serializes writers (persistence/db.py).
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, TypedDict

from sqlalchemy import (
    JSON,
    CompoundSelect,
    Connection,
    CursorResult,
    Date,
    DateTime,
    Integer,
    Select,
    Update,
    cast,
    func,
    literal,
    literal_column,
    null,
    type_coerce,
    update,
)
from sqlalchemy import select as sql_select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from persistence import statements
from persistence.calendar import calendar
from persistence.clock import utcnow
from persistence.db import Database
from persistence.errors import NotFoundError
from persistence.lookup import get_row
from persistence.models import Backfill, RunType, TransferRun
from persistence.run_counts import (
    add_pending_counts,
    add_run_counts,
    count_ended_run,
    pending_counts_of_row,
)
from statuses import NOT_STARTED_RUN_STATUSES, BackfillStatus, RunStatus


class RunSortField(StrEnum):
    CREATED_TIME = "created_time"
    ENDED_TIME = "ended_time"
    DATA_DATE = "data_date"


class SortDirection(StrEnum):
    ASC = "ASC"
    DESC = "DESC"


class RunError(TypedDict):
    """One entry of a backfill's error report, as JSON has it."""

    transfer_run_date: str  # YYYY-MM-DD
    error: str


@dataclass(frozen=True)
class StartedRun:
    run_id: int
    transfer_id: int
    attempt: int
    writing: bool = True  # it holds its date's partition; False: another run of it does


def plan_runs(*, db: Database, backfill_id: int, first: date, last: date) -> int:
    """Create the run rows for `first..last` that do not exist yet; returns how many it made.

    Rows planned after the backfill was cancelled are created CANCELLED, so every date of a
    backfill ends with exactly one run record whatever the timing.
    """
    with db.write() as session:
        backfill = get_row(
            session,
            Backfill,
            backfill_id,
            team_id=None,
            missing=f"backfill {backfill_id} not found",
            lock=True,
        )
        if backfill.status == BackfillStatus.CANCELLED:
            return add_missing_runs(
                session, backfill, first, last, RunStatus.CANCELLED, "cancelled"
            )
        return add_missing_runs(session, backfill, first, last, RunStatus.CREATED, "")


def add_missing_runs(
    session: Session,
    backfill: Backfill,
    first: date,
    last: date,
    status: RunStatus,
    message: str,
) -> int:
    """Create, in the caller's transaction, the backfill's runs for `first..last` that do
    not exist yet, in `status` (ended at once unless CREATED), and count them."""
    assert backfill.id is not None
    existing = set(
        session.exec(
            select(col(TransferRun.data_date)).where(
                TransferRun.backfill_id == backfill.id,
                TransferRun.data_date >= first,
                TransferRun.data_date <= last,
            )
        )
    )
    now = utcnow()
    new_dates = [d for d in _dates(first, last) if d not in existing]
    session.add_all(_new_runs(backfill, new_dates, status, now, message))
    add_run_counts(
        session.connection(),
        backfill.id,
        created=len(new_dates),
        cancelled=len(new_dates) if status == RunStatus.CANCELLED else 0,
        failed=len(new_dates) if status == RunStatus.FAILED else 0,
    )
    return len(new_dates)


def _new_runs(
    backfill: Backfill, dates: list[date], status: RunStatus, now: datetime, message: str = ""
) -> list[TransferRun]:
    """Run rows for `dates` of the backfill, in `status` (ended at once unless CREATED)."""
    ended = now if status != RunStatus.CREATED else None
    return [
        TransferRun(
            team_id=backfill.team_id,
            transfer_id=backfill.transfer_id,
            backfill_id=backfill.id,
            type=RunType.BACKFILL,
            data_date=d,
            status=status,
            created_time=now,
            ended_time=ended,
            message=message,
        )
        for d in dates
    ]


def end_unfinished_runs(
    session: Session,
    backfill_id: int,
    *,
    among: tuple[RunStatus, ...],
    status: RunStatus,
    message: str,
    now: datetime,
) -> None:
    """End the backfill's runs that are in one of `among` with `status` (CANCELLED or
    FAILED), and count them on the backfill, in the caller's transaction."""
    ended: CursorResult[tuple[()]] = session.execute(  # type: ignore[assignment]
        update(TransferRun)
        .where(col(TransferRun.backfill_id) == backfill_id, col(TransferRun.status).in_(among))
        .values(status=status, ended_time=now, message=message)
    )
    if status == RunStatus.CANCELLED:
        add_run_counts(session.connection(), backfill_id, cancelled=ended.rowcount)
    else:
        add_run_counts(session.connection(), backfill_id, failed=ended.rowcount)


def begin_run(
    *,
    db: Database,
    backfill_id: int,
    data_date: date,
    queued_time: datetime,
    attempt: int,
    external_id: str,
) -> StartedRun | None:
    """Mark the run RUNNING; None when it must not run (cancelled, or already ended).

    Each attempt records its number on the run (`attempts`) before it writes anything:
    an older attempt still running somewhere then fails `is_current_attempt`, its fence.
    A retried attempt finds its run RUNNING already and goes on. The backfill row is only
    touched (and so locked) while it is not yet RUNNING, before the run: the module's lock
    order.
    """
    parameters = {
        "p_backfill_id": backfill_id,
        "p_data_date": data_date,
        "p_now": utcnow(),
        "p_queued_time": queued_time,
        "p_attempt": attempt,
        "p_external_id": external_id,
    }
    with db.write_connection() as connection:
        connection.execute(statements.MARK_BACKFILL_RUNNING, parameters)
        if connection.dialect.name == "postgresql":
            connection.execute(
                statements.PAIR_LOCK_OF_BACKFILL,
                {"p_backfill_id": backfill_id, "p_day": data_date.toordinal()},
            )
        started = connection.execute(statements.START_RUN, parameters).first()
        if started is None:
            started = connection.execute(statements.RETRY_RUN, parameters).first()
        if started is None:
            return None
        run_id, transfer_id, writing_since = started
        return StartedRun(
            run_id=run_id,
            transfer_id=transfer_id,
            attempt=attempt,
            writing=writing_since is not None,
        )


def claim_partition(*, db: Database, run_id: int, transfer_id: int, data_date: date) -> bool:
    """Whether the RUNNING run now holds its date's partition (it may write): False while
    another RUNNING run of the same transfer and date holds it. A run that could not take it
    when it began asks again until the holder has ended."""
    with db.write_connection() as connection:
        lock_pair(connection, transfer_id=transfer_id, data_date=data_date)
        claimed = connection.execute(
            statements.CLAIM_PARTITION, {"p_run_id": run_id, "p_now": utcnow()}
        ).first()
        return claimed is not None and claimed[0] is not None


def lock_pair(connection: Connection, *, transfer_id: int, data_date: date) -> None:
    """Take the (transfer, data_date) lock a partition claim needs, before the run's row."""
    if connection.dialect.name == "postgresql":
        connection.execute(
            statements.PAIR_LOCK, {"p_transfer_id": transfer_id, "p_day": data_date.toordinal()}
        )


def complete_run(
    *,
    db: Database,
    run_id: int,
    attempt: int,
    total_rows: int,
    query_details: list[dict[str, Any]],
) -> bool:
    """RUNNING -> COMPLETED, counted once; False if the run was not RUNNING or a newer
    attempt than `attempt` has begun it (see `is_current_attempt`)."""
    parameters = {
        "p_run_id": run_id,
        "p_attempt": attempt,
        "p_now": utcnow(),
        "p_total_rows": total_rows,
        "p_query_details": query_details,
    }
    return _end_run(db, statements.COMPLETE_RUN, parameters, completed=1)


def fail_run(*, db: Database, backfill_id: int, data_date: date, message: str) -> bool:
    """Any unfinished state -> FAILED, counted once; False if the run had already ended."""
    parameters = {
        "p_backfill_id": backfill_id,
        "p_data_date": data_date,
        "p_now": utcnow(),
        "p_message": message,
    }
    return _end_run(db, statements.FAIL_RUN, parameters, failed=1)


def record_attempt_error(
    *, db: Database, run_id: int, attempt: int, message: str, query_details: list[dict[str, Any]]
) -> None:
    """Note why an attempt failed, so callers see it while the run is retried and after;
    an attempt that a newer one has replaced notes nothing."""
    with db.write() as session:
        session.execute(
            update(TransferRun)
            .where(
                col(TransferRun.id) == run_id,
                col(TransferRun.status) == RunStatus.RUNNING,
                col(TransferRun.attempts) == attempt,
            )
            .values(message=message, query_details=query_details)
        )


def is_current_attempt(*, db: Database, run_id: int, attempt: int) -> bool:
    """Whether `attempt` may still write for the run: the run is RUNNING and no newer
    attempt has begun it (begin_run records each attempt's number before it writes).

    An attempt Temporal timed out may still be running on some worker; this is the fence
    it checks before committing its load, and complete_run checks it again."""
    with db.read() as session:
        found = session.exec(
            select(col(TransferRun.status), col(TransferRun.attempts)).where(
                TransferRun.id == run_id
            )
        ).first()
    return found is not None and tuple(found) == (RunStatus.RUNNING, attempt)


def with_runs_in_flight(
    *, db: Database, backfill_ids: list[int]
) -> dict[int, tuple[Backfill, int]]:
    """Each backfill as it is now (with the counts left beside its row) with how many of its
    runs are RUNNING, read in one statement (one snapshot): a run that ends moves a status and
    a count in one transaction, so the two read together never show it ended in one and still
    running in the other."""
    if not backfill_ids:
        return {}
    running = (
        sql_select(func.count())
        .where(
            col(TransferRun.backfill_id) == col(Backfill.id),
            col(TransferRun.status) == RunStatus.RUNNING,
        )
        .scalar_subquery()
    )
    pending_completed, pending_failed = pending_counts_of_row()
    with db.read() as session:
        rows = session.exec(
            select(Backfill, running, pending_completed, pending_failed).where(
                col(Backfill.id).in_(backfill_ids)
            )
        ).all()
    found: dict[int, tuple[Backfill, int]] = {}
    for backfill, running_now, completed, failed in rows:
        add_pending_counts(backfill, completed, failed)  # counts left beside the row
        if backfill.id is not None:
            found[backfill.id] = (backfill, running_now)
    return found


def error_reports(*, db: Database, backfill_ids: list[int]) -> dict[int, list[RunError]]:
    """Failed current runs per backfill, by date (a retried date's earlier failures are
    history, listed with the runs, not errors of today): one query for any number of them.

    The database writes each backfill's report as one JSON array, which Python reads in one
    call: a team's reports may hold tens of thousands of entries, too many to loop over."""
    if not backfill_ids:
        return {}
    failed = (
        sql_select(
            col(TransferRun.backfill_id), col(TransferRun.data_date), col(TransferRun.message)
        )
        .where(
            col(TransferRun.backfill_id).in_(backfill_ids),
            col(TransferRun.status) == RunStatus.FAILED,
            col(TransferRun.superseded_time).is_(None),  # a retried date's current run only
        )
        .order_by(col(TransferRun.backfill_id), col(TransferRun.data_date))
        .subquery()
    )
    query = sql_select(failed.c.backfill_id, _json_array(db, failed)).group_by(failed.c.backfill_id)
    with db.engine.connect() as connection:
        return {backfill_id: report for backfill_id, report in connection.execute(query).all()}


def _json_array(db: Database, failed: Any) -> Any:
    """The failed runs of a group as a JSON array of `RunError`s, ordered by date."""
    if db.is_sqlite:  # SQLite's aggregate keeps the order of the ordered subquery
        entry = func.json_object("transfer_run_date", failed.c.data_date, "error", failed.c.message)
        report = func.json_group_array(entry)
    else:
        entry = func.json_build_object(
            "transfer_run_date", failed.c.data_date, "error", failed.c.message
        )
        report = func.json_agg(aggregate_order_by(entry, failed.c.data_date))
    return type_coerce(report, JSON)


def get_run_for_worker(*, db: Database, backfill_id: int, data_date: date) -> TransferRun:
    """A backfill's current run for `data_date` (not a superseded one of a retried date),
    whichever team's it is; NotFoundError if none."""
    with db.read() as session:
        run = session.exec(
            select(TransferRun).where(
                TransferRun.backfill_id == backfill_id,
                TransferRun.data_date == data_date,
                col(TransferRun.superseded_time).is_(None),
            )
        ).first()
    if run is None:
        raise NotFoundError(f"backfill {backfill_id} has no run for {data_date}")
    return run


def get_team_run(*, db: Database, team_id: int, run_id: int) -> TransferRun:
    """The team's run; NotFoundError when it is missing or another team's."""
    with db.read() as session:
        return get_row(
            session, TransferRun, run_id, team_id=team_id, missing="transfer run not found"
        )


def list_runs(
    *,
    db: Database,
    team_id: int,
    transfer_id: int,
    start_date: date,
    end_date: date,
    issues_only: bool,
    sort_field: RunSortField,
    sort_direction: SortDirection,
    limit: int,
    offset: int,
) -> list[TransferRun]:
    sort_column = col(getattr(TransferRun, sort_field.value))
    order = sort_column.asc() if sort_direction == SortDirection.ASC else sort_column.desc()
    dates = _dates_to_filter(db, sort_field, start_date, end_date)
    query = select(TransferRun).where(
        TransferRun.team_id == team_id,
        TransferRun.transfer_id == transfer_id,
        dates >= start_date,
        dates <= end_date,
    )
    if issues_only:
        query = query.where(TransferRun.status == RunStatus.FAILED)
    query = query.order_by(order, col(TransferRun.id).desc()).offset(offset).limit(limit)
    with db.read() as session:
        return list(session.exec(query))


WIDE_RANGE_DAYS = 2_000


def _dates_to_filter(
    db: Database, sort_field: RunSortField, start_date: date, end_date: date
) -> Any:
    """The column the date range filters. The newest runs of a wide range are found by
    walking `ix_transfer_runs_transfer_created` in order, and SQLite, which keeps no
    statistics, would rather sort every run of the range it finds through the date index
    (tens of thousands for a century): `+data_date` keeps it off that index. A narrow range
    has few runs, and the date index finds them best."""
    if (
        db.is_sqlite
        and sort_field == RunSortField.CREATED_TIME
        and (end_date - start_date).days > WIDE_RANGE_DAYS
    ):
        return literal_column("+transfer_runs.data_date", type_=Date())
    return col(TransferRun.data_date)


def _end_run(
    db: Database,
    statement: Update,
    parameters: dict[str, Any],
    *,
    completed: int = 0,
    failed: int = 0,
) -> bool:
    """End the run with `statement` (guarded by the run's state) and count it, at once,
    without waiting for its backfill's row (persistence/run_counts.py)."""
    with db.write_connection() as connection:
        ended = connection.execute(statement, parameters).first()
        if ended is None:
            return False
        if ended[0] is not None:  # a Recurring run has no backfill to count it
            count_ended_run(connection, ended[0], completed=completed, failed=failed)
        return True


def _dates(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _current_dates(
    session: Session, backfill_id: int, condition: ColumnElement[bool]
) -> list[date]:
    """The dates of the backfill whose current run meets `condition`, in order."""
    query = (
        select(col(TransferRun.data_date))
        .where(
            TransferRun.backfill_id == backfill_id,
            condition,
            col(TransferRun.superseded_time).is_(None),
        )
        .order_by(col(TransferRun.data_date))
    )
    return list(session.exec(query))


def dates_not_completed(session: Session, backfill_id: int) -> list[date]:
    """The dates whose current run did not complete, in order."""
    return _current_dates(session, backfill_id, col(TransferRun.status) != RunStatus.COMPLETED)


def plan_dates(session: Session, backfill: Backfill, dates: list[date]) -> None:
    """Create, in the caller's transaction, a waiting run for each of `dates` (a backfill
    made of chosen dates, planned when it is created), and count them."""
    assert backfill.id is not None
    now = utcnow()
    session.add_all(_new_runs(backfill, dates, RunStatus.CREATED, now))
    session.flush()
    add_run_counts(session.connection(), backfill.id, created=len(dates))


def failed_dates(session: Session, backfill_id: int) -> list[date]:
    """The dates whose current run FAILED, in order."""
    return _current_dates(session, backfill_id, col(TransferRun.status) == RunStatus.FAILED)


def waiting_dates(*, db: Database, backfill_id: int) -> list[date]:
    """The dates of the backfill whose current run has not started, in order; NotFoundError
    when the backfill does not exist."""
    with db.read() as session:
        get_row(
            session,
            Backfill,
            backfill_id,
            team_id=None,
            missing=f"backfill {backfill_id} not found",
        )
        return dates_waiting_to_run(session, backfill_id)


def dates_waiting_to_run(session: Session, backfill_id: int) -> list[date]:
    """The dates whose current run has not started, in order."""
    return _current_dates(
        session, backfill_id, col(TransferRun.status).in_(NOT_STARTED_RUN_STATUSES)
    )


def supersede_and_replan(
    session: Session, backfill: Backfill, dates: list[date], *, now: datetime
) -> None:
    """In the caller's transaction (the backfill row locked first): the failed current runs
    of `dates` become superseded (kept, for the history) and each date gets a new run
    waiting to start; the backfill's failed count drops by as many."""
    assert backfill.id is not None
    session.execute(
        update(TransferRun)
        .where(
            col(TransferRun.backfill_id) == backfill.id,
            col(TransferRun.data_date).in_(dates),
            col(TransferRun.status) == RunStatus.FAILED,
            col(TransferRun.superseded_time).is_(None),
        )
        .values(superseded_time=now)
    )
    session.add_all(_new_runs(backfill, dates, RunStatus.CREATED, now))
    session.flush()
    add_run_counts(session.connection(), backfill.id, failed=-len(dates))


def recent_durations_by_backfill(
    *, db: Database, backfill_ids: list[int], per_backfill: int
) -> dict[int, list[float]]:
    """How long (seconds, started to ended) each backfill's latest completed runs took, at
    most `per_backfill` of each, the latest ended first: one query for any number."""
    return _recent_durations(db, col(TransferRun.backfill_id), backfill_ids, per_backfill)


def recent_durations_by_transfer(
    *, db: Database, transfer_ids: list[int], per_transfer: int
) -> dict[int, list[float]]:
    """`recent_durations_by_backfill` for transfers: their latest completed runs, of any
    backfill or type."""
    return _recent_durations(db, col(TransferRun.transfer_id), transfer_ids, per_transfer)


def _recent_durations(
    db: Database, group: Any, ids: list[int], per_group: int
) -> dict[int, list[float]]:
    found: dict[int, list[float]] = defaultdict(list)
    if not ids:
        return found
    ended = col(TransferRun.ended_time)
    ranked = (
        select(
            group.label("group_id"),
            col(TransferRun.started_time).label("started_time"),
            ended.label("ended_time"),
            func.row_number()
            .over(partition_by=group, order_by=(ended.desc(), col(TransferRun.id).desc()))
            .label("position"),
        )
        .where(
            group.in_(ids),
            TransferRun.status == RunStatus.COMPLETED,
            col(TransferRun.started_time).is_not(None),
            ended.is_not(None),
        )
        .subquery()
    )
    query = (
        select(ranked.c.group_id, ranked.c.started_time, ranked.c.ended_time)
        .where(ranked.c.position <= per_group)
        .order_by(ranked.c.group_id, ranked.c.position)
    )
    with db.read() as session:
        for group_id, started, ended_at in session.execute(query):
            found[group_id].append(max(0.0, (ended_at - started).total_seconds()))
    return found


_Rows = Select[*tuple[Any, ...]]


@dataclass(frozen=True)
class BackfillDate:
    """One date of a backfill as its current run says (`run_id` None: not planned yet)."""

    data_date: date
    status: RunStatus
    run_id: int | None
    attempts: int
    started_time: datetime | None
    ended_time: datetime | None
    message: str
    superseded_runs: int


def backfill_dates(
    *,
    db: Database,
    backfill: Backfill,
    statuses: tuple[RunStatus, ...] | None,
    limit: int,
    offset: int,
) -> list[BackfillDate]:
    """A page of the backfill's dates, by date: each with its current run (the superseded
    ones only counted) or, not planned yet, the status the backfill plans it in (CANCELLED
    for a cancelled backfill, CREATED otherwise); only those in `statuses` when given.

    One query per page, each driven by an index so that no plan can turn quadratic (a
    join of a generated calendar to the runs can, on PostgreSQL, before the runs of a new
    backfill have statistics): without a filter, the current runs of the page's dates (the
    missing ones are the dates not planned yet); with one, the current runs in those
    statuses, and only while some dates are not planned yet and the filter takes their
    status, those dates too, from a calendar of the range probing the runs date by date.
    A backfill of chosen dates (a retry of a cancelled one) lists exactly its runs.
    """
    assert backfill.id is not None
    if backfill.retry_of_backfill_id is not None:  # chosen dates, every one planned at create
        return _paged(_current_runs(backfill, statuses=statuses), db, limit, offset)
    unplanned = (
        RunStatus.CANCELLED if backfill.status == BackfillStatus.CANCELLED else RunStatus.CREATED
    )
    total = (backfill.range_end_date - backfill.range_start_date).days + 1
    if statuses is None:
        first, last = offset, min(offset + limit, total) - 1
        if last < first:
            return []
        window = (
            backfill.range_start_date + timedelta(days=first),
            backfill.range_start_date + timedelta(days=last),
        )
        with db.read() as session:
            rows = session.execute(_current_runs(backfill, window=window)).all()
        found = {row[0]: _backfill_date(row) for row in rows}
        return [
            found.get(day) or _not_planned(day, unplanned) for day in _dates(window[0], window[1])
        ]
    query: _Rows | CompoundSelect[*tuple[Any, ...]] = _current_runs(backfill, statuses=statuses)
    if unplanned in statuses and backfill.transfer_runs_created < total:
        query = _current_runs(backfill, statuses=statuses).union_all(
            _unplanned_dates(backfill, unplanned, total)
        )
    return _paged(query, db, limit, offset)


def _paged(
    query: "_Rows | CompoundSelect[*tuple[Any, ...]]", db: Database, limit: int, offset: int
) -> list[BackfillDate]:
    ordered = query.subquery()
    with db.read() as session:
        rows = session.execute(
            sql_select(ordered).order_by(ordered.c.data_date).offset(offset).limit(limit)
        ).all()
    return [_backfill_date(row) for row in rows]


def _current_runs(
    backfill: Backfill,
    *,
    window: tuple[date, date] | None = None,
    statuses: tuple[RunStatus, ...] | None = None,
) -> _Rows:
    """The backfill's current runs (in `window`, in `statuses`), each with how many earlier
    runs its date has: a subquery per row on the index of superseded runs."""
    run = aliased(TransferRun)
    earlier = aliased(TransferRun)
    superseded = (
        sql_select(func.count())
        .where(
            col(earlier.backfill_id) == backfill.id,
            col(earlier.data_date) == col(run.data_date),
            col(earlier.superseded_time).is_not(None),
        )
        .scalar_subquery()
    )
    query = sql_select(
        col(run.data_date).label("data_date"),
        col(run.status).label("status"),
        col(run.id).label("run_id"),
        col(run.attempts).label("attempts"),
        col(run.started_time).label("started_time"),
        col(run.ended_time).label("ended_time"),
        col(run.message).label("message"),
        superseded.label("superseded_runs"),
    ).where(col(run.backfill_id) == backfill.id, col(run.superseded_time).is_(None))
    if window is not None:
        query = query.where(col(run.data_date) >= window[0], col(run.data_date) <= window[1])
    if statuses is not None:
        query = query.where(col(run.status).in_(statuses))
    return query


def _unplanned_dates(backfill: Backfill, status: RunStatus, total: int) -> _Rows:
    """The range's dates without a current run, shaped like `_current_runs`' rows."""
    days = calendar(backfill.range_start_date, 0, total - 1)
    planned = (
        sql_select(func.count())
        .where(
            col(TransferRun.backfill_id) == backfill.id,
            col(TransferRun.data_date) == days.c.data_date,
            col(TransferRun.superseded_time).is_(None),
        )
        .scalar_subquery()
    )
    nothing = null()
    return sql_select(
        days.c.data_date,
        literal(status).label("status"),
        cast(nothing, Integer).label("run_id"),
        literal(0).label("attempts"),
        cast(nothing, DateTime(timezone=True)).label("started_time"),
        cast(nothing, DateTime(timezone=True)).label("ended_time"),
        literal("").label("message"),
        literal(0).label("superseded_runs"),
    ).where(planned == 0)


def _backfill_date(row: Any) -> BackfillDate:
    data_date, status, run_id, attempts, started, ended, message, superseded = row
    return BackfillDate(
        data_date=data_date,
        status=RunStatus(status),
        run_id=run_id,
        attempts=attempts or 0,
        started_time=started,
        ended_time=ended,
        message=message or "",
        superseded_runs=superseded or 0,
    )


def _not_planned(data_date: date, status: RunStatus) -> BackfillDate:
    return BackfillDate(data_date, status, None, 0, None, None, "", 0)
