"""Backfills: creation under the overlap rule, reads, and guarded status changes.

Every status change is a single guarded UPDATE (`... WHERE status IN (...)`), so two writers
racing (a cancel and the workflow finishing, say) yield one consistent outcome: a final
status is never turned into another one.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import CursorResult, update
from sqlmodel import Session, col, select

from persistence import statements
from persistence.clock import utcnow
from persistence.db import Database
from persistence.errors import InvalidStateError, NotFoundError, OverlapError
from persistence.models import (
    INCOMPLETE_BACKFILL_STATUSES,
    NOT_STARTED_RUN_STATUSES,
    Backfill,
    BackfillStatus,
    RunStatus,
    Transfer,
    TransferRun,
)


@dataclass(frozen=True)
class RunError:
    transfer_run_date: date
    error: str


def create_backfill(
    *,
    db: Database,
    team_id: int,
    transfer_id: int,
    user_id: int,
    range_start: date,
    range_end: date,
) -> Backfill:
    """Insert a CREATED backfill unless the range overlaps an incomplete one of the transfer.

    The transfer row is locked first (`BEGIN IMMEDIATE` on SQLite), so concurrent creates on
    one transfer are serialized and at most one of two overlapping requests succeeds.
    """
    with db.write() as session:
        transfer = session.get(Transfer, transfer_id, with_for_update=True)
        if transfer is None or transfer.team_id != team_id or transfer.removed_time is not None:
            raise NotFoundError("transfer not found")
        overlapping = session.exec(
            select(Backfill.id).where(
                Backfill.transfer_id == transfer_id,
                col(Backfill.status).in_(INCOMPLETE_BACKFILL_STATUSES),
                Backfill.range_start_date <= range_end,
                Backfill.range_end_date >= range_start,
            )
        ).first()
        if overlapping is not None:
            raise OverlapError(
                f"the range overlaps incomplete backfill {overlapping} of transfer {transfer_id}"
            )
        backfill = Backfill(
            team_id=team_id,
            transfer_id=transfer_id,
            range_start_date=range_start,
            range_end_date=range_end,
            created_time=utcnow(),
            created_user_id=user_id,
            transfer_runs_total=(range_end - range_start).days + 1,
        )
        session.add(backfill)
        session.flush()
        return backfill


def discard_unstarted_backfill(*, db: Database, backfill_id: int) -> None:
    """Undo a create whose workflow could not be started (nothing else refers to it yet)."""
    with db.write() as session:
        backfill = session.get(Backfill, backfill_id)
        if backfill is not None and backfill.status == BackfillStatus.CREATED:
            session.delete(backfill)


def get_backfill(*, db: Database, team_id: int, backfill_id: int) -> Backfill:
    with db.read() as session:
        backfill = session.get(Backfill, backfill_id)
    if backfill is None or backfill.team_id != team_id:
        raise NotFoundError("backfill not found")
    return backfill


def get_backfill_by_id(*, db: Database, backfill_id: int) -> Backfill:
    with db.read() as session:
        backfill = session.get(Backfill, backfill_id)
    if backfill is None:
        raise NotFoundError(f"backfill {backfill_id} not found")
    return backfill


def latest_backfill(*, db: Database, team_id: int, transfer_id: int) -> Backfill:
    with db.read() as session:
        transfer = session.get(Transfer, transfer_id)
        if transfer is None or transfer.team_id != team_id or transfer.removed_time is not None:
            raise NotFoundError("transfer not found")
        backfill = session.exec(
            select(Backfill)
            .where(Backfill.transfer_id == transfer_id)
            .order_by(col(Backfill.created_time).desc(), col(Backfill.id).desc())
        ).first()
    if backfill is None:
        raise NotFoundError("the transfer has no backfill")
    return backfill


def list_incomplete_backfills(*, db: Database, team_id: int) -> list[Backfill]:
    with db.read() as session:
        query = (
            select(Backfill)
            .where(
                Backfill.team_id == team_id,
                col(Backfill.status).in_(INCOMPLETE_BACKFILL_STATUSES),
            )
            .order_by(col(Backfill.created_time).desc(), col(Backfill.id).desc())
        )
        return list(session.exec(query))


def error_reports(*, db: Database, backfill_ids: list[int]) -> dict[int, list[RunError]]:
    """Failed runs per backfill, by date: one indexed query for any number of backfills."""
    reports: dict[int, list[RunError]] = defaultdict(list)
    if not backfill_ids:
        return reports
    with db.read() as session:
        rows = session.exec(
            select(
                col(TransferRun.backfill_id), col(TransferRun.data_date), col(TransferRun.message)
            )
            .where(
                col(TransferRun.backfill_id).in_(backfill_ids),
                TransferRun.status == RunStatus.FAILED,
            )
            .order_by(col(TransferRun.data_date))
        )
        for backfill_id, data_date, message in rows:
            assert backfill_id is not None
            reports[backfill_id].append(RunError(transfer_run_date=data_date, error=message))
    return reports


def cancel_backfill(
    *, db: Database, backfill_id: int, user_id: int | None, team_id: int | None = None
) -> Backfill:
    """Cancel an incomplete backfill and every run of it not yet started, in one transaction.

    Raises NotFoundError when it does not exist (in `team_id`, when given), and
    InvalidStateError when it is already COMPLETED or CANCELLED.
    """
    now = utcnow()
    with db.write() as session:
        backfill = session.get(Backfill, backfill_id)
        if backfill is None or team_id not in (None, backfill.team_id):
            raise NotFoundError("backfill not found")
        cancelled = _guarded_update(
            session,
            backfill_id,
            INCOMPLETE_BACKFILL_STATUSES,
            status=BackfillStatus.CANCELLED,
            removed_time=now,
            removed_user_id=user_id,
            end_time=now,
        )
        if not cancelled:
            session.refresh(backfill)
            raise InvalidStateError(f"the backfill is already {backfill.status}")
        end_unfinished_runs(
            session,
            backfill_id,
            among=NOT_STARTED_RUN_STATUSES,
            status=RunStatus.CANCELLED,
            message="cancelled",
            now=now,
        )
        backfill = session.get(Backfill, backfill_id, populate_existing=True)
        assert backfill is not None
        return backfill


def mark_scheduled(*, db: Database, backfill_id: int) -> None:
    with db.write() as session:
        _guarded_update(
            session, backfill_id, (BackfillStatus.CREATED,), status=BackfillStatus.SCHEDULED
        )


def finish_backfill(*, db: Database, backfill_id: int) -> BackfillStatus:
    """Close a backfill whose runs have all ended: COMPLETED, or FAILED if any run failed.

    A backfill cancelled meanwhile stays CANCELLED; the status it ends in is returned.
    """
    with db.write() as session:
        backfill = session.get(Backfill, backfill_id, with_for_update=True)
        if backfill is None:
            raise NotFoundError(f"backfill {backfill_id} not found")
        if backfill.status not in INCOMPLETE_BACKFILL_STATUSES:
            return BackfillStatus(backfill.status)
        failed = backfill.transfer_runs_failed > 0
        final = BackfillStatus.FAILED if failed else BackfillStatus.COMPLETED
        _guarded_update(
            session,
            backfill_id,
            INCOMPLETE_BACKFILL_STATUSES,
            status=final,
            end_time=utcnow(),
        )
        return final


def _guarded_update(
    session: Session, backfill_id: int, allowed: tuple[BackfillStatus, ...], **values: object
) -> bool:
    """Apply `values` only if the backfill's status is one of `allowed`; True if it was."""
    result: CursorResult[tuple[()]] = session.execute(  # type: ignore[assignment]
        update(Backfill)
        .where(col(Backfill.id) == backfill_id, col(Backfill.status).in_(allowed))
        .values(**values)
    )
    return result.rowcount == 1


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
        add_run_counts(session, backfill_id, cancelled=ended.rowcount)
    else:
        add_run_counts(session, backfill_id, failed=ended.rowcount)


def add_run_counts(
    session: Session,
    backfill_id: int,
    *,
    created: int = 0,
    completed: int = 0,
    failed: int = 0,
    cancelled: int = 0,
) -> None:
    if created or completed or failed or cancelled:
        session.connection().execute(
            statements.ADD_RUN_COUNTS,
            statements.count_parameters(
                backfill_id,
                created=created,
                completed=completed,
                failed=failed,
                cancelled=cancelled,
            ),
        )


def stale_created_backfills(
    *, db: Database, older_than: datetime, limit: int = 100
) -> list[Backfill]:
    """CREATED backfills older than `older_than`: their workflow may never have started."""
    with db.read() as session:
        query = (
            select(Backfill)
            .where(Backfill.status == BackfillStatus.CREATED, Backfill.created_time < older_than)
            .order_by(col(Backfill.id))
            .limit(limit)
        )
        return list(session.exec(query))
