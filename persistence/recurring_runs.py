"""Recurring runs: one per firing of a transfer's schedule (issue 13), beside backfill runs.

A Recurring run has no backfill. Its firing's scheduled time identifies it, so however often
a firing's attempt is retried, or a firing is delivered again, it is one run. It completes
through `runs.complete_run`, like a backfill run; there is no backfill counter to move.
"""

from dataclasses import dataclass, replace
from datetime import date, datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select, update

from persistence import runs
from persistence.clock import utcnow
from persistence.db import Database
from persistence.errors import NotFoundError
from persistence.models import RunType, TransferRun
from persistence.runs import StartedRun
from statuses import NOT_STARTED_RUN_STATUSES, UNFINISHED_RUN_STATUSES, RunStatus


def begin_recurring_run(
    *,
    db: Database,
    team_id: int,
    transfer_id: int,
    firing_time: datetime,
    data_date: date,
    queued_time: datetime,
    attempt: int,
    external_id: str,
) -> StartedRun | None:
    """The firing's run, made by its first attempt, marked RUNNING with `attempt` (so an
    older attempt still running fails its fence); None once it has ended."""
    for _ in range(2):  # a racing first attempt made it meanwhile: found the second time
        try:
            with db.write() as session:
                runs.lock_pair(session.connection(), transfer_id=transfer_id, data_date=data_date)
                run = _run_of_firing(session, transfer_id, firing_time)
                if run is None:
                    run = TransferRun(
                        team_id=team_id,
                        transfer_id=transfer_id,
                        type=RunType.RECURRING,
                        data_date=data_date,
                        firing_time=firing_time,
                        created_time=utcnow(),
                    )
                    session.add(run)
                    session.flush()
                started = _started(run, queued_time, attempt, external_id)
                if started is None:
                    return None
                if run.writing_since is None and not _partition_held(session, run):
                    run.writing_since = utcnow()
                return replace(started, writing=run.writing_since is not None)
        except IntegrityError:
            continue
    raise RuntimeError(f"the run of transfer {transfer_id}'s firing at {firing_time} is missing")


def _partition_held(session: Session, run: TransferRun) -> bool:
    """Whether another RUNNING run of the run's transfer and date holds its partition (the
    caller holds the date's lock, `runs.lock_pair`)."""
    holder = session.exec(
        select(TransferRun.id).where(
            TransferRun.transfer_id == run.transfer_id,
            TransferRun.data_date == run.data_date,
            TransferRun.id != run.id,
            TransferRun.status == RunStatus.RUNNING,
            col(TransferRun.writing_since).is_not(None),
        )
    ).first()
    return holder is not None


def _run_of_firing(
    session: Session, transfer_id: int, firing_time: datetime, *, lock: bool = True
) -> TransferRun | None:
    query = select(TransferRun).where(
        TransferRun.transfer_id == transfer_id, TransferRun.firing_time == firing_time
    )
    return session.exec(query.with_for_update() if lock else query).first()


def _started(
    run: TransferRun, queued_time: datetime, attempt: int, external_id: str
) -> StartedRun | None:
    if run.status in NOT_STARTED_RUN_STATUSES:
        run.status = RunStatus.RUNNING
        run.queued_time = queued_time
        run.started_time = utcnow()
    elif run.status != RunStatus.RUNNING:
        return None
    run.attempts = attempt
    run.external_id = external_id
    assert run.id is not None
    return StartedRun(run_id=run.id, transfer_id=run.transfer_id, attempt=attempt)


@dataclass(frozen=True)
class FiringRecord:
    """What a firing's run is made of when no attempt made it."""

    team_id: int
    data_date: date


def fail_recurring_run(
    *,
    db: Database,
    transfer_id: int,
    firing_time: datetime,
    message: str,
    if_missing: FiringRecord | None = None,
) -> bool:
    """The firing's run, in any unfinished state -> FAILED; False if it had ended already.
    A firing whose every attempt failed before it made its run gets its run, FAILED, when
    `if_missing` says what it is (False without it: there is nothing to fail)."""
    now = utcnow()
    with db.write() as session:
        failed = session.exec(
            update(TransferRun)
            .where(
                col(TransferRun.transfer_id) == transfer_id,
                col(TransferRun.firing_time) == firing_time,
                col(TransferRun.status).in_(UNFINISHED_RUN_STATUSES),
            )
            .values(status=RunStatus.FAILED, ended_time=now, message=message)
        )
        if failed.rowcount or if_missing is None:
            return bool(failed.rowcount)
        if _run_of_firing(session, transfer_id, firing_time, lock=False) is not None:
            return False  # it had ended
        session.add(
            TransferRun(
                team_id=if_missing.team_id,
                transfer_id=transfer_id,
                type=RunType.RECURRING,
                data_date=if_missing.data_date,
                firing_time=firing_time,
                status=RunStatus.FAILED,
                created_time=now,
                ended_time=now,
                message=message,
            )
        )
        return True


def get_run_of_firing(*, db: Database, transfer_id: int, firing_time: datetime) -> TransferRun:
    """The Recurring run of the transfer's firing at `firing_time`; NotFoundError if none."""
    with db.read() as session:
        run = _run_of_firing(session, transfer_id, firing_time, lock=False)
    if run is None:
        raise NotFoundError(f"transfer {transfer_id} has no run of its firing at {firing_time}")
    return run
