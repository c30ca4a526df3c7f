"""Prebuilt Core statements for the per-run hot path (a run starting, a run ending).

Built once with bind parameters (named `p_*`: a bind may not share a column's name in an
UPDATE) and run on a bare Connection: no ORM unit of work and no
expression building per call, so a transition costs one compiled-cache hit per statement.
"""

from typing import Any

from sqlalchemy import Table, bindparam, case, delete, exists, func, insert, select, update

from persistence.models import Backfill, RunCountDelta, TransferRun
from statuses import NOT_STARTED_RUN_STATUSES, UNFINISHED_RUN_STATUSES, BackfillStatus, RunStatus

runs_table: Table = TransferRun.__table__  # type: ignore[attr-defined]
backfills_table: Table = Backfill.__table__  # type: ignore[attr-defined]
deltas_table: Table = RunCountDelta.__table__  # type: ignore[attr-defined]
_runs, _backfills, _deltas = runs_table.c, backfills_table.c, deltas_table.c

# A run that ends takes its backfill's row only if it is free (persistence/run_counts.py).
# SQLite renders no FOR UPDATE: BEGIN IMMEDIATE has serialized the writers already.
TRY_LOCK_BACKFILL = (
    select(_backfills.id)
    .where(_backfills.id == bindparam("p_backfill_id"))
    .with_for_update(skip_locked=True)
)
ADD_COUNT_DELTA = insert(deltas_table).values(
    backfill_id=bindparam("p_backfill_id"),
    completed=bindparam("p_completed"),
    failed=bindparam("p_failed"),
)
TAKE_COUNT_DELTAS = (
    delete(deltas_table)
    .where(_deltas.backfill_id == bindparam("p_backfill_id"))
    .returning(_deltas.completed, _deltas.failed)
)

MARK_BACKFILL_RUNNING = (
    update(backfills_table)
    .where(
        _backfills.id == bindparam("p_backfill_id"),
        _backfills.status.in_((BackfillStatus.CREATED, BackfillStatus.SCHEDULED)),
    )
    .values(status=BackfillStatus.RUNNING, start_time=bindparam("p_now"))
)

# One writer per (transfer, data_date): a RUNNING run takes its date's partition
# (`writing_since`) unless another RUNNING run of the same transfer and date holds it (a
# backfill's run and a Recurring one). It is taken in the UPDATE that marks the run RUNNING,
# never by a second UPDATE of the row: on PostgreSQL, updating a row this transaction already
# updated runs its foreign-key checks (FOR KEY SHARE on the backfill row), which would wait
# behind a cancel holding that row while the cancel waits for this run: a deadlock. The
# caller first takes PAIR_LOCK (PostgreSQL), so two runs of one date cannot both see it free;
# SQLite's writers are serialized already.
_other = runs_table.alias("other_run")
_PARTITION_HELD = exists().where(
    _other.c.transfer_id == _runs.transfer_id,
    _other.c.data_date == _runs.data_date,
    _other.c.id != _runs.id,
    _other.c.status == RunStatus.RUNNING,
    _other.c.writing_since.is_not(None),
)
_CLAIMED = case(
    (_PARTITION_HELD, _runs.writing_since),
    else_=func.coalesce(_runs.writing_since, bindparam("p_now")),
)
PAIR_LOCK = select(func.pg_advisory_xact_lock(bindparam("p_transfer_id"), bindparam("p_day")))
PAIR_LOCK_OF_BACKFILL = select(
    func.pg_advisory_xact_lock(
        select(_backfills.transfer_id)
        .where(_backfills.id == bindparam("p_backfill_id"))
        .scalar_subquery(),
        bindparam("p_day"),
    )
)
CLAIM_PARTITION = (
    update(runs_table)
    .where(_runs.id == bindparam("p_run_id"), _runs.status == RunStatus.RUNNING)
    .values(writing_since=_CLAIMED)
    .returning(_runs.writing_since)
)

START_RUN = (
    update(runs_table)
    .where(
        _runs.backfill_id == bindparam("p_backfill_id"),
        _runs.data_date == bindparam("p_data_date"),
        _runs.status.in_(NOT_STARTED_RUN_STATUSES),
    )
    .values(
        status=RunStatus.RUNNING,
        queued_time=bindparam("p_queued_time"),
        started_time=bindparam("p_now"),
        attempts=bindparam("p_attempt"),
        external_id=bindparam("p_external_id"),
        writing_since=_CLAIMED,
    )
    .returning(_runs.id, _runs.transfer_id, _runs.writing_since)
)

RETRY_RUN = (
    update(runs_table)
    .where(
        _runs.backfill_id == bindparam("p_backfill_id"),
        _runs.data_date == bindparam("p_data_date"),
        _runs.status == RunStatus.RUNNING,
    )
    .values(
        attempts=bindparam("p_attempt"),
        external_id=bindparam("p_external_id"),
        writing_since=_CLAIMED,
    )
    .returning(_runs.id, _runs.transfer_id, _runs.writing_since)
)

COMPLETE_RUN = (
    update(runs_table)
    .where(
        _runs.id == bindparam("p_run_id"),
        _runs.status == RunStatus.RUNNING,
        _runs.attempts == bindparam("p_attempt"),
    )
    .values(
        status=RunStatus.COMPLETED,
        ended_time=bindparam("p_now"),
        total_rows=bindparam("p_total_rows"),
        query_details=bindparam("p_query_details", type_=_runs.query_details.type),
        message="",
    )
    .returning(_runs.backfill_id)
)

FAIL_RUN = (
    update(runs_table)
    .where(
        _runs.backfill_id == bindparam("p_backfill_id"),
        _runs.data_date == bindparam("p_data_date"),
        _runs.status.in_(UNFINISHED_RUN_STATUSES),
    )
    .values(status=RunStatus.FAILED, ended_time=bindparam("p_now"), message=bindparam("p_message"))
    .returning(_runs.backfill_id)
)

ADD_RUN_COUNTS = (
    update(backfills_table)
    .where(_backfills.id == bindparam("p_backfill_id"))
    .values(
        transfer_runs_created=_backfills.transfer_runs_created + bindparam("p_created"),
        transfer_runs_completed=_backfills.transfer_runs_completed + bindparam("p_completed"),
        transfer_runs_failed=_backfills.transfer_runs_failed + bindparam("p_failed"),
        transfer_runs_cancelled=_backfills.transfer_runs_cancelled + bindparam("p_cancelled"),
    )
)


def count_parameters(
    backfill_id: int, *, created: int = 0, completed: int = 0, failed: int = 0, cancelled: int = 0
) -> dict[str, Any]:
    return {
        "p_backfill_id": backfill_id,
        "p_created": created,
        "p_completed": completed,
        "p_failed": failed,
        "p_cancelled": cancelled,
    }
