"""The outbox of workflow signals: a change the API makes queues its signal in the same
transaction (a refused change queues none), each signal states the whole state of its kind,
and the ids that order them only ever grow, on SQLite and PostgreSQL."""

from datetime import date, timedelta

import pytest

from persistence import backfills, outbox
from persistence.errors import InvalidStateError
from persistence.models import Backfill
from persistence.outbox import PendingSignal
from tests.persistence.test_backfills import Owner
from tests.persistence.test_backfills import owner as owner  # the fixture
from tests.persistence.test_backfills_control import create, failed_backfill


def queued(owner: Owner, backfill: Backfill) -> list[PendingSignal]:
    assert backfill.id is not None
    return outbox.due_signals(db=owner.db, limit=100, backfill_id=backfill.id)


def control(owner: Owner, backfill: Backfill, **change: object) -> Backfill:
    assert backfill.id is not None
    return backfills.change_control(
        db=owner.db,
        team_id=owner.team_id,
        backfill_id=backfill.id,
        signal_workflow=True,
        **change,  # type: ignore[arg-type]
    )


def test_a_cancel_queues_its_signal_and_a_refused_one_queues_none(owner: Owner) -> None:
    backfill = create(owner)
    assert backfill.id is not None
    backfills.cancel_backfill(
        db=owner.db, backfill_id=backfill.id, user_id=owner.user_id, signal_workflow=True
    )
    with pytest.raises(InvalidStateError):
        backfills.cancel_backfill(
            db=owner.db, backfill_id=backfill.id, user_id=owner.user_id, signal_workflow=True
        )
    with pytest.raises(InvalidStateError):
        control(owner, backfill, paused=True)

    [cancel] = queued(owner, backfill)
    assert (cancel.name, cancel.payload) == ("cancel", {"user_id": owner.user_id})


def test_the_workflows_own_changes_queue_nothing(owner: Owner) -> None:
    backfill = create(owner)
    assert backfill.id is not None
    backfills.cancel_backfill(db=owner.db, backfill_id=backfill.id, user_id=None)
    assert queued(owner, backfill) == []


def test_each_control_signal_states_the_whole_state_of_its_kind(owner: Owner) -> None:
    backfill = create(owner, max_failed_runs=5)
    control(owner, backfill, paused=True, paused_reason="source down")
    control(owner, backfill, max_concurrent_runs=3)
    control(owner, backfill, paused=False, max_failed_runs=9)
    control(owner, backfill, remove_failure_budget=True)

    signals = [(s.name, s.payload) for s in queued(owner, backfill)]
    assert signals == [
        ("pause", {"reason": "source down"}),
        (
            "set_limits",
            {"max_concurrent_runs": 3, "max_failed_runs": 5, "remove_failure_budget": False},
        ),
        ("resume", {}),
        (
            "set_limits",
            {"max_concurrent_runs": 3, "max_failed_runs": 9, "remove_failure_budget": False},
        ),
        (
            "set_limits",
            {"max_concurrent_runs": 3, "max_failed_runs": None, "remove_failure_budget": True},
        ),
    ]


def test_a_retry_queues_the_dates_it_put_back(owner: Owner) -> None:
    backfill = failed_backfill(owner)
    assert backfill.id is not None
    first = backfill.range_start_date
    wanted = [first + timedelta(days=3), first]
    retried = backfills.retry_failed_dates(
        db=owner.db, backfill_id=backfill.id, data_dates=wanted, strict=True, signal_workflow=True
    )

    [retry] = queued(owner, backfill)
    assert retry.name == "retry"
    assert [date.fromisoformat(d) for d in retry.payload["data_dates"]] == retried == sorted(wanted)


def test_sequences_only_grow_even_after_every_signal_was_sent(owner: Owner) -> None:
    backfill = create(owner)
    control(owner, backfill, paused=True)
    [first] = queued(owner, backfill)
    outbox.signal_sent(db=owner.db, signal_id=first.id)
    control(owner, backfill, paused=False)

    [second] = queued(owner, backfill)
    assert second.id > first.id  # SQLite would reuse the highest id without AUTOINCREMENT


def test_a_postponed_signal_waits_and_counts_its_attempts(owner: Owner) -> None:
    backfill = create(owner)
    control(owner, backfill, paused=True)
    [signal] = queued(owner, backfill)
    outbox.signal_postponed(
        db=owner.db, signal_id=signal.id, error="Temporal unreachable", retry_in=timedelta(hours=1)
    )
    assert queued(owner, backfill) == []
    assert backfill.id is not None
    assert outbox.pending_signal_count(db=owner.db, backfill_id=backfill.id) == 1

    outbox.signal_postponed(
        db=owner.db, signal_id=signal.id, error="again", retry_in=timedelta(seconds=-1)
    )
    [again] = queued(owner, backfill)
    assert (again.id, again.attempts) == (signal.id, 2)
