"""The outbox of signals to backfill workflows.

A change the API makes to a backfill (cancel, pause, resume, new limits, a retry) is told
to its workflow by a signal. The signal is queued here in the same transaction as the
change, so a change that committed is never left untold: whoever drains the outbox (the
API right after its commit, and its drainer loop until Temporal takes it) sends it and
deletes it. A signal may be sent twice (a crash between the send and the delete, two
drainers); each carries its row id as `sequence`, and the workflow ignores one that is not
newer than the last it applied, so neither a repeat nor a late arrival undoes a later change.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlmodel import Session, col

from persistence.clock import utcnow
from persistence.db import Database
from persistence.models import QueuedSignal

MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class OutgoingSignal:
    """A signal to queue: the workflow's signal name and its input's fields as JSON."""

    name: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class PendingSignal:
    id: int
    backfill_id: int
    name: str
    payload: dict[str, Any]
    attempts: int


def queue_signals(session: Session, backfill_id: int, signals: Sequence[OutgoingSignal]) -> None:
    """Queue `signals` for the backfill's workflow in the caller's transaction, in order."""
    now = utcnow()
    for signal in signals:
        session.add(
            QueuedSignal(
                backfill_id=backfill_id,
                name=signal.name,
                payload=signal.payload,
                created_time=now,
                next_attempt_time=now,
            )
        )
    session.flush()


def due_signals(*, db: Database, limit: int, backfill_id: int | None = None) -> list[PendingSignal]:
    """The signals due to be sent (of one backfill when given), oldest first."""
    query = select(QueuedSignal).where(col(QueuedSignal.next_attempt_time) <= utcnow())
    if backfill_id is not None:
        query = query.where(col(QueuedSignal.backfill_id) == backfill_id)
    with db.read() as session:
        rows = session.execute(query.order_by(col(QueuedSignal.id)).limit(limit)).scalars()
        return [_pending(row) for row in rows]


def pending_signal_count(*, db: Database, backfill_id: int) -> int:
    """How many signals to the backfill's workflow are still queued."""
    with db.read() as session:
        query = select(func.count()).where(col(QueuedSignal.backfill_id) == backfill_id)
        return int(session.execute(query).scalar_one())


def signal_sent(*, db: Database, signal_id: int) -> None:
    """Temporal took it (or the workflow has closed, so there is nobody left to tell)."""
    with db.write() as session:
        session.execute(delete(QueuedSignal).where(col(QueuedSignal.id) == signal_id))


def signal_postponed(*, db: Database, signal_id: int, error: str, retry_in: timedelta) -> None:
    """Sending failed: try again after `retry_in`, keeping what went wrong."""
    with db.write() as session:
        session.execute(
            update(QueuedSignal)
            .where(col(QueuedSignal.id) == signal_id)
            .values(
                attempts=col(QueuedSignal.attempts) + 1,
                next_attempt_time=utcnow() + retry_in,
                last_error=error[:MAX_ERROR_CHARS],
            )
        )


def forget_signals(session: Session, backfill_id: int) -> None:
    """Drop a backfill's queued signals with the backfill (a create undone)."""
    session.execute(delete(QueuedSignal).where(col(QueuedSignal.backfill_id) == backfill_id))


def _pending(row: QueuedSignal) -> PendingSignal:
    assert row.id is not None
    return PendingSignal(row.id, row.backfill_id, row.name, dict(row.payload), row.attempts)
