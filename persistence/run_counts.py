"""A backfill's run counts: exact, and no hot row.

The counts live on the backfill's row (`transfer_runs_*`). Planning, cancelling and
retrying change many runs at once while they hold that row anyway, so they add to it
directly (`add_run_counts`). A run that ends (`count_ended_run`: thousands a minute in a
large backfill) must not queue behind every other ending run on that one row: it takes the
row only if nobody holds it (`FOR UPDATE SKIP LOCKED`) and adds its count there, with the
counts other runs left meanwhile; when the row is busy, it leaves its count as a
`RunCountDelta` row and goes on.

So each count is on the row or in one delta, never both: a delta is deleted in the
transaction that adds it to the row. A reader adds the deltas to what the row says
(`with_pending_counts`) in one snapshot: the read session's (REPEATABLE READ on
PostgreSQL, persistence/db.py), or under the row's lock, which no fold can pass. SQLite
serializes writers anyway (`BEGIN IMMEDIATE`): there the row is always free, and there are
never deltas.
"""

from collections.abc import Sequence

from sqlalchemy import Connection, ScalarSelect, func
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from persistence import statements
from persistence.models import Backfill, RunCountDelta


def add_run_counts(
    connection: Connection,
    backfill_id: int,
    *,
    created: int = 0,
    completed: int = 0,
    failed: int = 0,
    cancelled: int = 0,
) -> None:
    """Add to the backfill's row counts, in the caller's transaction (which holds the row,
    or is about to by this UPDATE)."""
    if created or completed or failed or cancelled:
        connection.execute(
            statements.ADD_RUN_COUNTS,
            statements.count_parameters(
                backfill_id,
                created=created,
                completed=completed,
                failed=failed,
                cancelled=cancelled,
            ),
        )


def count_ended_run(
    connection: Connection, backfill_id: int, *, completed: int = 0, failed: int = 0
) -> None:
    """Count a run that just ended, in its transaction, without waiting for the backfill's
    row: on it when it is free (with the deltas waiting there), else as a delta."""
    backfill = {"p_backfill_id": backfill_id}
    if connection.execute(statements.TRY_LOCK_BACKFILL, backfill).first() is None:
        connection.execute(
            statements.ADD_COUNT_DELTA,
            {**backfill, "p_completed": completed, "p_failed": failed},
        )
        return
    if connection.dialect.name != "sqlite":
        for delta_completed, delta_failed in connection.execute(
            statements.TAKE_COUNT_DELTAS, backfill
        ):
            completed += delta_completed
            failed += delta_failed
    add_run_counts(connection, backfill_id, completed=completed, failed=failed)


def pending_counts_of_row() -> tuple[ScalarSelect[int], ScalarSelect[int]]:
    """(completed, failed) left beside the backfill row of the enclosing query: columns to
    read with the row in one statement, for `add_pending_counts`."""
    of_row = col(RunCountDelta.backfill_id) == col(Backfill.id)
    return (
        select(func.coalesce(func.sum(RunCountDelta.completed), 0)).where(of_row).scalar_subquery(),
        select(func.coalesce(func.sum(RunCountDelta.failed), 0)).where(of_row).scalar_subquery(),
    )


def add_pending_counts(backfill: Backfill, completed: int, failed: int) -> None:
    """Add counts read beside the row to the backfill (in memory: nothing is written)."""
    # committed values: the session must not think the row changed and write it back
    completed_now = backfill.transfer_runs_completed + completed
    set_committed_value(backfill, "transfer_runs_completed", completed_now)
    set_committed_value(backfill, "transfer_runs_failed", backfill.transfer_runs_failed + failed)


def with_pending_counts(session: Session, backfills: Sequence[Backfill]) -> None:
    """Add the deltas not yet on their rows to these backfills' counts (in memory: nothing
    is written). Call it once per read, in the session that read the rows."""
    by_id = {backfill.id: backfill for backfill in backfills if backfill.id is not None}
    if not by_id or session.get_bind().dialect.name == "sqlite":
        return
    pending = session.exec(
        select(
            col(RunCountDelta.backfill_id),
            func.sum(RunCountDelta.completed),
            func.sum(RunCountDelta.failed),
        )
        .where(col(RunCountDelta.backfill_id).in_(list(by_id)))
        .group_by(col(RunCountDelta.backfill_id))
    )
    for backfill_id, completed, failed in pending:
        add_pending_counts(by_id[backfill_id], completed, failed)
