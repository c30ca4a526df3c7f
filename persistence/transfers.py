"""Transfers: what a backfill moves, from where to where."""

from typing import Any

from sqlmodel import Session, col, select

from persistence.clock import utcnow
from persistence.db import Database
from persistence.errors import InvalidStateError, NotFoundError
from persistence.lookup import get_row
from persistence.models import Backfill, Transfer
from statuses import INCOMPLETE_BACKFILL_STATUSES

_NOT_FOUND = "transfer not found"


def create_transfer(
    *,
    db: Database,
    team_id: int,
    user_id: int,
    display_name: str,
    source: dict[str, Any],
    destination: dict[str, Any],
    max_concurrent_runs: int,
    max_failed_runs: int | None = None,
    schedule: dict[str, Any] | None = None,
) -> Transfer:
    with db.write() as session:
        transfer = Transfer(
            schedule=schedule,
            schedule_version=0 if schedule is None else 1,
            team_id=team_id,
            display_name=display_name,
            source=source,
            destination=destination,
            max_concurrent_runs=max_concurrent_runs,
            max_failed_runs=max_failed_runs,
            created_time=utcnow(),
            created_user_id=user_id,
        )
        session.add(transfer)
        session.flush()
        return transfer


def get_team_transfer(*, db: Database, team_id: int, transfer_id: int) -> Transfer:
    """The team's transfer; NotFoundError when it is missing, removed or another team's.

    A removed transfer's backfills and runs stay readable by their own ids."""
    with db.read() as session:
        return team_transfer_row(session, team_id=team_id, transfer_id=transfer_id)


def get_transfer_for_worker(*, db: Database, transfer_id: int) -> Transfer:
    """A transfer as a run needs it, removed or not (its backfill may still be finishing)."""
    with db.read() as session:
        return get_row(
            session,
            Transfer,
            transfer_id,
            team_id=None,
            missing=f"transfer {transfer_id} not found",
        )


def team_transfer_row(
    session: Session, *, team_id: int, transfer_id: int, lock: bool = False
) -> Transfer:
    """`get_team_transfer` in the caller's transaction, the row locked with `lock`."""
    transfer = get_row(
        session, Transfer, transfer_id, team_id=team_id, missing=_NOT_FOUND, lock=lock
    )
    if transfer.removed_time is not None:
        raise NotFoundError(_NOT_FOUND)
    return transfer


def list_transfers(*, db: Database, team_id: int) -> list[Transfer]:
    with db.read() as session:
        query = (
            select(Transfer)
            .where(Transfer.team_id == team_id, col(Transfer.removed_time).is_(None))
            .order_by(col(Transfer.id))
        )
        return list(session.exec(query))


def list_all_transfers(*, db: Database) -> list[Transfer]:
    """Every transfer of every team, removed ones too, by id: for operator tools."""
    with db.read() as session:
        return list(session.exec(select(Transfer).order_by(col(Transfer.id))))


def remove_transfer(*, db: Database, team_id: int, transfer_id: int) -> Transfer:
    """Remove a transfer from view; its backfills and runs stay on record.

    Refused while the transfer has an incomplete backfill: cancel that first.
    """
    with db.write() as session:
        transfer = team_transfer_row(session, team_id=team_id, transfer_id=transfer_id, lock=True)
        _refuse_while_incomplete(session, transfer_id)
        transfer.removed_time = utcnow()
        if transfer.schedule is not None:
            transfer.schedule_version += 1  # its Schedule is to go too
        session.flush()
        return transfer


def can_remove_transfer(*, db: Database, team_id: int, transfer_id: int) -> Transfer:
    """The transfer, if `remove_transfer` would remove it now; its errors otherwise."""
    with db.read() as session:
        transfer = team_transfer_row(session, team_id=team_id, transfer_id=transfer_id)
        _refuse_while_incomplete(session, transfer_id)
        return transfer


def _refuse_while_incomplete(session: Session, transfer_id: int) -> None:
    active = session.exec(
        select(Backfill.id).where(
            Backfill.transfer_id == transfer_id,
            col(Backfill.status).in_(INCOMPLETE_BACKFILL_STATUSES),
        )
    ).first()
    if active is not None:
        raise InvalidStateError(
            f"transfer has an incomplete backfill ({active}); cancel it before deleting"
        )


def concurrency_caps(*, db: Database, transfer_ids: list[int]) -> dict[int, int]:
    """Each transfer's `max_concurrent_runs`, removed or not: one query for any number."""
    if not transfer_ids:
        return {}
    with db.read() as session:
        rows = session.exec(
            select(col(Transfer.id), col(Transfer.max_concurrent_runs)).where(
                col(Transfer.id).in_(transfer_ids)
            )
        )
        return {transfer_id: cap for transfer_id, cap in rows if transfer_id is not None}
