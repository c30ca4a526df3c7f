"""Backfills: creation under the overlap rule, reads, and guarded status changes.

The runs a status change ends (a cancel, an abandoned workflow) are ended through
`persistence.runs`, in the same transaction; runs never reach back into this module.

Every status change is a single guarded UPDATE (`... WHERE status IN (...)`), so two writers
racing (a cancel and the workflow finishing, say) yield one consistent outcome: a final
status is never turned into another one.

Lock order (the one persistence/runs.py states for every writer of a backfill and its runs):
the backfill row first, then its runs. cancel_backfill's guarded UPDATE and
close_abandoned_backfill's `SELECT ... FOR UPDATE` lock the backfill before they end any run,
so neither can deadlock with a run starting or ending on PostgreSQL.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import CursorResult, delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from persistence import runs
from persistence.clock import utcnow
from persistence.db import Database
from persistence.errors import (
    IdempotencyKeyMismatch,
    InvalidStateError,
    NotFoundError,
    OverlapError,
)
from persistence.lookup import get_row
from persistence.models import Backfill, IdempotencyKey, RunOrder, Transfer
from persistence.outbox import OutgoingSignal, forget_signals, queue_signals
from persistence.run_counts import with_pending_counts
from persistence.transfers import team_transfer_row
from statuses import (
    ACTIVE_BACKFILL_STATUSES,
    INCOMPLETE_BACKFILL_STATUSES,
    NOT_STARTED_RUN_STATUSES,
    UNFINISHED_RUN_STATUSES,
    BackfillStatus,
    RunStatus,
)

_NOT_FOUND = "backfill not found"
# A final backfill starts nothing any more: whatever pause it had ends with it.
_NOT_PAUSED = {"paused": False, "paused_time": None, "paused_reason": None}
# How long an `Idempotency-Key` answers for the backfill it made; then it may be used again.
IDEMPOTENCY_KEY_LIFETIME = timedelta(hours=24)


def create_backfill(
    *,
    db: Database,
    team_id: int,
    transfer_id: int,
    user_id: int,
    range_start: date,
    range_end: date,
    max_concurrent_runs: int | None = None,
    max_failed_runs: int | None = None,
    run_order: RunOrder = RunOrder.OLDEST_FIRST,
) -> Backfill:
    """Insert a CREATED backfill unless the range overlaps an incomplete one of the transfer.

    The transfer row is locked first (`BEGIN IMMEDIATE` on SQLite), so concurrent creates on
    one transfer are serialized and at most one of two overlapping requests succeeds.
    `max_concurrent_runs` None leaves the transfer's cap in force (as it is when the runs
    start); `max_failed_runs` None takes the transfer's failure budget now, if it has one.
    """
    with db.write() as session:
        transfer = team_transfer_row(session, team_id=team_id, transfer_id=transfer_id, lock=True)
        return _insert_backfill(
            session,
            transfer,
            user_id=user_id,
            range_start=range_start,
            range_end=range_end,
            max_concurrent_runs=max_concurrent_runs,
            max_failed_runs=max_failed_runs,
            run_order=run_order,
        )


def _insert_backfill(
    session: Session,
    transfer: Transfer,
    *,
    user_id: int,
    range_start: date,
    range_end: date,
    max_concurrent_runs: int | None,
    max_failed_runs: int | None,
    run_order: RunOrder,
) -> Backfill:
    """`create_backfill` once the transfer row is locked: the overlap rule, then the row."""
    assert transfer.id is not None
    _refuse_overlap(session, transfer.id, range_start, range_end)
    backfill = Backfill(
        team_id=transfer.team_id,
        transfer_id=transfer.id,
        range_start_date=range_start,
        range_end_date=range_end,
        created_time=utcnow(),
        created_user_id=user_id,
        transfer_runs_total=(range_end - range_start).days + 1,
        max_concurrent_runs=max_concurrent_runs,
        max_failed_runs=transfer.max_failed_runs if max_failed_runs is None else max_failed_runs,
        run_order=run_order,
    )
    session.add(backfill)
    session.flush()
    return backfill


@dataclass(frozen=True)
class KeyedCreate:
    """What a create with an `Idempotency-Key` did: made `backfill`, or (`replayed`) found
    the one the key's first request made."""

    backfill: Backfill
    replayed: bool


def create_backfill_once(
    *,
    db: Database,
    team_id: int,
    transfer_id: int,
    user_id: int,
    range_start: date,
    range_end: date,
    idempotency_key: str,
    request_digest: str,
    max_concurrent_runs: int | None = None,
    max_failed_runs: int | None = None,
    run_order: RunOrder = RunOrder.OLDEST_FIRST,
) -> KeyedCreate:
    """`create_backfill` under an idempotency key of the team: the first request with the key
    creates the backfill and records the key in the same transaction (a crash keeps both or
    neither); a later one within IDEMPOTENCY_KEY_LIFETIME with the same `request_digest` gets
    that backfill back, with another digest IdempotencyKeyMismatch. Older keys are purged
    here, so they may be used again.

    Concurrent requests with one key are serialized by the transfer's row lock when they
    name the same transfer; naming different ones (so different requests), the key's unique
    index lets one insert it and the other, refused, looks again and finds it.
    """
    for attempt in (1, 2):
        try:
            with db.write() as session:
                transfer = team_transfer_row(
                    session, team_id=team_id, transfer_id=transfer_id, lock=True
                )
                now = utcnow()
                session.execute(
                    delete(IdempotencyKey).where(
                        col(IdempotencyKey.team_id) == team_id,
                        col(IdempotencyKey.created_time) < now - IDEMPOTENCY_KEY_LIFETIME,
                    )
                )
                earlier = _keyed_backfill(session, team_id, idempotency_key, request_digest, now)
                if earlier is not None:
                    return KeyedCreate(earlier, replayed=True)
                backfill = _insert_backfill(
                    session,
                    transfer,
                    user_id=user_id,
                    range_start=range_start,
                    range_end=range_end,
                    max_concurrent_runs=max_concurrent_runs,
                    max_failed_runs=max_failed_runs,
                    run_order=run_order,
                )
                session.add(
                    IdempotencyKey(
                        team_id=team_id,
                        key=idempotency_key,
                        request_digest=request_digest,
                        backfill_id=backfill.id,
                        created_time=now,
                    )
                )
                session.flush()
                return KeyedCreate(backfill, replayed=False)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def keyed_backfill(
    *, db: Database, team_id: int, idempotency_key: str, request_digest: str
) -> Backfill | None:
    """The backfill the team's live `idempotency_key` made, if it is in use;
    IdempotencyKeyMismatch when it was made by another request than `request_digest`."""
    with db.read() as session:
        return _keyed_backfill(session, team_id, idempotency_key, request_digest, utcnow())


def _keyed_backfill(
    session: Session, team_id: int, key: str, request_digest: str, now: datetime
) -> Backfill | None:
    found = session.exec(
        select(IdempotencyKey).where(
            IdempotencyKey.team_id == team_id,
            IdempotencyKey.key == key,
            col(IdempotencyKey.created_time) >= now - IDEMPOTENCY_KEY_LIFETIME,
        )
    ).first()
    if found is None or found.backfill_id is None:
        return None
    if found.request_digest != request_digest:
        raise IdempotencyKeyMismatch(
            f'the Idempotency-Key "{key}" was already used with a different request (it '
            f"created backfill {found.backfill_id}); a new request needs a new key"
        )
    backfill = session.get(Backfill, found.backfill_id)
    return None if backfill is None else _counted(session, backfill)


def overlapping_backfill(
    *, db: Database, team_id: int, transfer_id: int, range_start: date, range_end: date
) -> int | None:
    """The id of an incomplete backfill of the team's transfer that a backfill of
    `range_start..range_end` would overlap (the check `create_backfill` makes), if any."""
    with db.read() as session:
        team_transfer_row(session, team_id=team_id, transfer_id=transfer_id)
        return _overlapping_backfill(session, transfer_id, range_start, range_end)


def overlap_message(backfill_id: int, transfer_id: int) -> str:
    return f"the range overlaps incomplete backfill {backfill_id} of transfer {transfer_id}"


def _overlapping_backfill(
    session: Session, transfer_id: int, range_start: date, range_end: date
) -> int | None:
    return session.exec(
        select(Backfill.id).where(
            Backfill.transfer_id == transfer_id,
            col(Backfill.status).in_(INCOMPLETE_BACKFILL_STATUSES),
            Backfill.range_start_date <= range_end,
            Backfill.range_end_date >= range_start,
        )
    ).first()


def _refuse_overlap(session: Session, transfer_id: int, first: date, last: date) -> None:
    """OverlapError when `first..last` overlaps an incomplete backfill of the transfer (its
    row locked by the caller, so that racing creates are serialized)."""
    overlapping = _overlapping_backfill(session, transfer_id, first, last)
    if overlapping is not None:
        raise OverlapError(overlap_message(overlapping, transfer_id))


def create_retry_backfill(
    *, db: Database, team_id: int, backfill_id: int, user_id: int, data_dates: list[date] | None
) -> Backfill:
    """A new backfill over exactly the dates a CANCELLED one did not complete (all, or
    those of `data_dates`), its runs planned at once and linked to it by
    `retry_of_backfill_id`; the cancelled record stays as it is, final."""
    with db.write() as session:
        old = get_row(session, Backfill, backfill_id, team_id=team_id, missing=_NOT_FOUND)
        if old.status != BackfillStatus.CANCELLED:
            raise InvalidStateError(f"the backfill is {old.status}, not CANCELLED")
        team_transfer_row(session, team_id=team_id, transfer_id=old.transfer_id, lock=True)
        left = runs.dates_not_completed(session, backfill_id)
        dates = left if data_dates is None else sorted(set(data_dates))
        if not left:
            raise InvalidStateError("every date of the backfill completed: nothing to retry")
        done = sorted(set(dates) - set(left))
        if done:
            shown = ", ".join(d.isoformat() for d in done[:5])
            raise InvalidStateError(f"these dates are not dates it left undone: {shown}")
        _refuse_overlap(session, old.transfer_id, dates[0], dates[-1])
        retry = Backfill(
            team_id=team_id,
            transfer_id=old.transfer_id,
            range_start_date=dates[0],
            range_end_date=dates[-1],
            created_time=utcnow(),
            created_user_id=user_id,
            transfer_runs_total=len(dates),
            max_concurrent_runs=old.max_concurrent_runs,
            max_failed_runs=old.max_failed_runs,
            run_order=old.run_order,
            retry_of_backfill_id=backfill_id,
        )
        session.add(retry)
        session.flush()
        runs.plan_dates(session, retry, dates)
        return retry


def discard_unstarted_backfill(*, db: Database, backfill_id: int) -> None:
    """Undo a create whose workflow could not be started (nothing else refers to it yet)."""
    with db.write() as session:
        backfill = session.get(Backfill, backfill_id)
        if backfill is not None and backfill.status == BackfillStatus.CREATED:
            # its idempotency key goes with it: a retry of the request starts afresh
            session.execute(
                delete(IdempotencyKey).where(col(IdempotencyKey.backfill_id) == backfill_id)
            )
            forget_signals(session, backfill_id)
            session.delete(backfill)


def get_team_backfill(*, db: Database, team_id: int, backfill_id: int) -> Backfill:
    """The team's backfill; NotFoundError when it is missing or another team's."""
    with db.read() as session:
        return _counted(
            session, get_row(session, Backfill, backfill_id, team_id=team_id, missing=_NOT_FOUND)
        )


def get_backfill_for_worker(*, db: Database, backfill_id: int) -> Backfill:
    """A backfill by its id alone, whichever team's it is."""
    with db.read() as session:
        return _counted(
            session,
            get_row(session, Backfill, backfill_id, team_id=None, missing=_missing(backfill_id)),
        )


def latest_backfill(*, db: Database, team_id: int, transfer_id: int) -> Backfill:
    with db.read() as session:
        team_transfer_row(session, team_id=team_id, transfer_id=transfer_id)
        backfill = session.exec(
            select(Backfill)
            .where(Backfill.transfer_id == transfer_id)
            .order_by(col(Backfill.created_time).desc(), col(Backfill.id).desc())
        ).first()
        if backfill is None:
            raise NotFoundError("the transfer has no backfill")
        return _counted(session, backfill)


def list_incomplete_backfills(
    *, db: Database, team_id: int, limit: int | None = None, offset: int = 0
) -> list[Backfill]:
    """The team's incomplete backfills, newest first (all, or `limit` after `offset`)."""
    return list_team_backfills(db=db, team_id=team_id, limit=limit, offset=offset)


def list_team_backfills(
    *,
    db: Database,
    team_id: int,
    statuses: Sequence[str] | None = None,
    transfer_ids: Sequence[int] | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[Backfill]:
    """The team's backfills in `statuses` (default: the incomplete ones), of `transfer_ids`
    if given (default: every transfer), newest first (all, or `limit` after `offset`)."""
    with db.read() as session:
        query = select(Backfill).where(
            Backfill.team_id == team_id,
            col(Backfill.status).in_(statuses or INCOMPLETE_BACKFILL_STATUSES),
        )
        if transfer_ids:
            query = query.where(col(Backfill.transfer_id).in_(transfer_ids))
        query = (
            query.order_by(col(Backfill.created_time).desc(), col(Backfill.id).desc())
            .offset(offset)
            .limit(limit)
        )
        found = list(session.exec(query))
        with_pending_counts(session, found)
        return found


def cancel_backfill(
    *,
    db: Database,
    backfill_id: int,
    user_id: int | None,
    team_id: int | None = None,
    signal_workflow: bool = False,
) -> Backfill:
    """Cancel an incomplete backfill and every run of it not yet started, in one transaction
    (with `signal_workflow`, the one that queues the `cancel` signal for its workflow).

    Raises NotFoundError when it does not exist (in `team_id`, when given), and
    InvalidStateError when it is already COMPLETED or CANCELLED.
    """
    now = utcnow()
    with db.write() as session:
        backfill = get_row(session, Backfill, backfill_id, team_id=team_id, missing=_NOT_FOUND)
        cancelled = _guarded_update(
            session,
            backfill_id,
            INCOMPLETE_BACKFILL_STATUSES,
            status=BackfillStatus.CANCELLED,
            removed_time=now,
            removed_user_id=user_id,
            end_time=now,
            **_NOT_PAUSED,
        )
        if not cancelled:
            session.refresh(backfill)
            raise InvalidStateError(f"the backfill is already {backfill.status}")
        runs.end_unfinished_runs(
            session,
            backfill_id,
            among=NOT_STARTED_RUN_STATUSES,
            status=RunStatus.CANCELLED,
            message="cancelled",
            now=now,
        )
        if signal_workflow:
            queue_signals(session, backfill_id, [OutgoingSignal("cancel", {"user_id": user_id})])
        ended = session.get(Backfill, backfill_id, populate_existing=True)
        assert ended is not None
        return _counted(session, ended)


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
        backfill = get_row(
            session, Backfill, backfill_id, team_id=None, missing=_missing(backfill_id), lock=True
        )
        if backfill.status not in INCOMPLETE_BACKFILL_STATUSES:
            return BackfillStatus(backfill.status)
        failed = _counted(session, backfill).transfer_runs_failed > 0
        final = BackfillStatus.FAILED if failed else BackfillStatus.COMPLETED
        _guarded_update(
            session,
            backfill_id,
            INCOMPLETE_BACKFILL_STATUSES,
            status=final,
            end_time=utcnow(),
            **(_NOT_PAUSED if final == BackfillStatus.COMPLETED else {}),
        )
        return final


def change_control(
    *,
    db: Database,
    team_id: int,
    backfill_id: int,
    paused: bool | None = None,
    paused_reason: str | None = None,
    max_concurrent_runs: int | None = None,
    max_failed_runs: int | None = None,
    remove_failure_budget: bool = False,
    signal_workflow: bool = False,
) -> Backfill:
    """Pause or resume an incomplete backfill, or change its live limits (what is None stays
    as it is); with `signal_workflow`, queue the signals telling its workflow. Each signal
    states the whole state of its kind (paused or not; both limits), so the newest one
    holds every earlier change. InvalidStateError on a COMPLETED or CANCELLED one."""
    with db.write() as session:
        backfill = get_row(
            session, Backfill, backfill_id, team_id=team_id, missing=_NOT_FOUND, lock=True
        )
        if backfill.status not in INCOMPLETE_BACKFILL_STATUSES:
            raise InvalidStateError(
                f"the backfill is already {backfill.status}; only an incomplete one can be "
                "paused, resumed or changed"
            )
        if paused is not None:
            _set_paused(backfill, paused, paused_reason)
        if max_concurrent_runs is not None:
            backfill.max_concurrent_runs = max_concurrent_runs
        if remove_failure_budget:
            backfill.max_failed_runs = None
        elif max_failed_runs is not None:
            backfill.max_failed_runs = max_failed_runs
        session.flush()
        if signal_workflow:
            limits = max_concurrent_runs is not None or max_failed_runs is not None
            signals = _control_signals(backfill, paused, limits or remove_failure_budget)
            queue_signals(session, backfill_id, signals)
        return _counted(session, backfill)


def _control_signals(backfill: Backfill, paused: bool | None, limits: bool) -> list[OutgoingSignal]:
    signals = []
    if paused is not None:
        signals.append(
            OutgoingSignal("pause", {"reason": backfill.paused_reason})
            if paused
            else OutgoingSignal("resume", {})
        )
    if limits:
        budget = backfill.max_failed_runs
        payload = {
            "max_concurrent_runs": backfill.max_concurrent_runs,
            "max_failed_runs": budget,
            "remove_failure_budget": budget is None,
        }
        signals.append(OutgoingSignal("set_limits", payload))
    return signals


def record_control(
    *,
    db: Database,
    backfill_id: int,
    paused: bool,
    paused_reason: str | None,
    max_concurrent_runs: int | None,
    max_failed_runs: int | None,
) -> None:
    """Make the record hold the control state its workflow has (None cap: the one it had)."""
    with db.write() as session:
        backfill = get_row(
            session, Backfill, backfill_id, team_id=None, missing=_missing(backfill_id), lock=True
        )
        if backfill.status not in INCOMPLETE_BACKFILL_STATUSES:
            return
        _set_paused(backfill, paused, paused_reason)
        if max_concurrent_runs is not None:
            backfill.max_concurrent_runs = max_concurrent_runs
        backfill.max_failed_runs = max_failed_runs


def _set_paused(backfill: Backfill, paused: bool, reason: str | None) -> None:
    if paused and not backfill.paused:
        backfill.paused_time = utcnow()
    if not paused:
        backfill.paused_time = None
        reason = None
    backfill.paused = paused
    backfill.paused_reason = reason


def retry_failed_dates(
    *,
    db: Database,
    backfill_id: int,
    data_dates: list[date] | None,
    strict: bool,
    team_id: int | None = None,
    signal_workflow: bool = False,
) -> list[date]:
    """Put a FAILED backfill's failed dates (all, or `data_dates`) back to run: each gets a
    new run, the failed one stays (superseded), the counts and the error report describe
    the new state, and the backfill is RUNNING again (and no longer paused). Returns the
    dates. When the backfill is already RUNNING again (the API retried first), its dates
    still waiting to run. `strict` (the API): InvalidStateError saying why instead of [].
    `signal_workflow`: queue the `retry` signal telling the workflow which dates.
    """
    with db.write() as session:
        backfill = get_row(
            session, Backfill, backfill_id, team_id=team_id, missing=_NOT_FOUND, lock=True
        )
        if backfill.status != BackfillStatus.FAILED:
            if strict:
                raise InvalidStateError(
                    f"the backfill is {backfill.status}: only a FAILED backfill's dates can be "
                    "retried in place"
                )
            if backfill.status in ACTIVE_BACKFILL_STATUSES:
                return runs.dates_waiting_to_run(session, backfill_id)
            return []
        failed = runs.failed_dates(session, backfill_id)
        wanted = failed if data_dates is None else sorted(set(data_dates))
        if strict:
            _check_retry_dates(wanted, failed)
        dates = [d for d in wanted if d in set(failed)]
        if not dates:
            return []
        runs.supersede_and_replan(session, backfill, dates, now=utcnow())
        backfill.status = BackfillStatus.RUNNING
        backfill.end_time = None
        backfill.retries += 1
        _set_paused(backfill, False, None)
        if signal_workflow:
            payload = {"data_dates": [day.isoformat() for day in dates]}
            queue_signals(session, backfill_id, [OutgoingSignal("retry", payload)])
        return dates


def _check_retry_dates(wanted: list[date], failed: list[date]) -> None:
    if not failed:
        raise InvalidStateError("the backfill has no failed date to retry")
    not_failed = sorted(set(wanted) - set(failed))
    if not_failed:
        shown = ", ".join(d.isoformat() for d in not_failed[:5])
        raise InvalidStateError(f"these dates did not fail, so there is nothing to retry: {shown}")


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


def backfills_expecting_a_workflow(
    *, db: Database, created_before: datetime
) -> list[tuple[int, BackfillStatus]]:
    """Id and status of every backfill that should have a workflow running: SCHEDULED or
    RUNNING, or CREATED before `created_before` (younger ones may be starting right now)."""
    with db.read() as session:
        query = (
            select(col(Backfill.id), col(Backfill.status))
            .where(
                col(Backfill.status).in_((BackfillStatus.SCHEDULED, BackfillStatus.RUNNING))
                | (
                    (col(Backfill.status) == BackfillStatus.CREATED)
                    & (col(Backfill.created_time) < created_before)
                )
            )
            .order_by(col(Backfill.id))
        )
        return [(found, BackfillStatus(status)) for found, status in session.exec(query) if found]


def close_abandoned_backfill(
    *, db: Database, backfill_id: int, status: BackfillStatus, reason: str
) -> bool:
    """Close a backfill whose workflow ended without closing it, in `status` (FAILED, or
    CANCELLED when its workflow was cancelled): every run not yet ended, planned or not,
    ends in that status with `reason`, so the runs and the error_report say what happened.
    False when the record was no longer active (the workflow closed it after all)."""
    now = utcnow()
    run_status = RunStatus.CANCELLED if status == BackfillStatus.CANCELLED else RunStatus.FAILED
    with db.write() as session:
        backfill = session.get(Backfill, backfill_id, with_for_update=True)
        if backfill is None or backfill.status not in ACTIVE_BACKFILL_STATUSES:
            return False
        runs.end_unfinished_runs(
            session,
            backfill_id,
            among=UNFINISHED_RUN_STATUSES,
            status=run_status,
            message=reason,
            now=now,
        )
        runs.add_missing_runs(
            session,
            backfill,
            backfill.range_start_date,
            backfill.range_end_date,
            run_status,
            reason,
        )
        backfill.status = status
        backfill.end_time = now
        if status == BackfillStatus.CANCELLED:
            backfill.removed_time = now
        return True


def _counted(session: Session, backfill: Backfill) -> Backfill:
    """The backfill with the run counts not yet on its row (persistence/run_counts.py)."""
    with_pending_counts(session, [backfill])
    return backfill


def _missing(backfill_id: int) -> str:
    return f"backfill {backfill_id} not found"
