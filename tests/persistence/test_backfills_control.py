"""A backfill's control options as create stores them, and idempotent creates: the same key
answers the backfill it made, from any number of threads at once, on SQLite and PostgreSQL."""

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from persistence import accounts, backfills, outbox, runs, transfers
from persistence.db import Database
from persistence.errors import IdempotencyKeyMismatch, InvalidStateError, OverlapError
from persistence.models import Backfill, IdempotencyKey, Role, RunOrder, Transfer
from statuses import BackfillStatus, RunStatus
from tests.persistence.test_backfills import RACERS, Owner, begin, complete, day, plan, race
from tests.persistence.test_backfills import owner as owner  # the fixture


def make_owner(database_url: str) -> Owner:
    """Another team, owner and transfer, like the `owner` fixture's."""
    db = Database(database_url)
    team_id = accounts.create_team(db=db, name="another")
    user_id = accounts.create_user(
        db=db, email=f"other-{os.urandom(6).hex()}@example.com", team_id=team_id, role=Role.OWNER
    )
    transfer = transfers.create_transfer(
        db=db,
        team_id=team_id,
        user_id=user_id,
        display_name="another team's",
        source={"type": "demo"},
        destination={"type": "sqlite"},
        max_concurrent_runs=4,
    )
    assert transfer.id is not None
    return Owner(db=db, team_id=team_id, user_id=user_id, transfer_id=transfer.id)


def set_transfer_budget(owner: Owner, max_failed_runs: int | None) -> None:
    with owner.db.write() as session:
        session.execute(
            update(Transfer)
            .where(col(Transfer.id) == owner.transfer_id)
            .values(max_failed_runs=max_failed_runs)
        )


def create(owner: Owner, **options: object) -> Backfill:
    return backfills.create_backfill(
        db=owner.db,
        team_id=owner.team_id,
        transfer_id=owner.transfer_id,
        user_id=owner.user_id,
        range_start=day(0),
        range_end=day(9),
        **options,  # type: ignore[arg-type]
    )


def test_create_stores_the_options_it_is_given(owner: Owner) -> None:
    set_transfer_budget(owner, 50)

    backfill = create(
        owner, max_concurrent_runs=7, max_failed_runs=2, run_order=RunOrder.NEWEST_FIRST
    )

    stored = owner.reload(backfill)
    assert stored.max_concurrent_runs == 7
    assert stored.max_failed_runs == 2
    assert stored.run_order == RunOrder.NEWEST_FIRST


def test_without_options_the_budget_is_the_transfers_and_the_cap_stays_the_transfers(
    owner: Owner,
) -> None:
    set_transfer_budget(owner, 5)

    stored = owner.reload(create(owner))

    assert stored.max_failed_runs == 5
    assert stored.max_concurrent_runs is None  # the transfer's, whatever it is when runs start
    assert stored.run_order == RunOrder.OLDEST_FIRST


def test_a_transfer_without_a_budget_gives_none(owner: Owner) -> None:
    assert owner.reload(create(owner)).max_failed_runs is None


# --- idempotent create -------------------------------------------------------------------

KEY = "4f7c9a2e-request-1"


def create_once(
    owner: Owner, key: str = KEY, digest: str = "digest-a", first: int = 0, **options: Any
) -> backfills.KeyedCreate:
    return backfills.create_backfill_once(
        db=owner.db,
        team_id=owner.team_id,
        transfer_id=options.pop("transfer_id", owner.transfer_id),
        user_id=owner.user_id,
        range_start=day(first),
        range_end=day(first + 9),
        idempotency_key=key,
        request_digest=digest,
        **options,
    )


def keys_of(owner: Owner) -> list[IdempotencyKey]:
    with owner.db.read() as session:
        return list(
            session.exec(select(IdempotencyKey).where(IdempotencyKey.team_id == owner.team_id))
        )


def backfill_ids(owner: Owner) -> list[int | None]:
    return [b.id for b in backfills.list_incomplete_backfills(db=owner.db, team_id=owner.team_id)]


def another_transfer(owner: Owner) -> int:
    transfer = transfers.create_transfer(
        db=owner.db,
        team_id=owner.team_id,
        user_id=owner.user_id,
        display_name="another",
        source={"type": "demo"},
        destination={"type": "sqlite"},
        max_concurrent_runs=4,
    )
    assert transfer.id is not None
    return transfer.id


def test_the_same_key_and_request_answer_the_backfill_the_first_one_made(owner: Owner) -> None:
    first = create_once(owner)
    again = create_once(owner)

    assert first.replayed is False
    assert again.replayed is True
    assert again.backfill.id == first.backfill.id
    assert backfill_ids(owner) == [first.backfill.id]
    (stored,) = keys_of(owner)
    assert (stored.key, stored.backfill_id) == (KEY, first.backfill.id)
    found = backfills.keyed_backfill(
        db=owner.db, team_id=owner.team_id, idempotency_key=KEY, request_digest="digest-a"
    )
    assert found is not None and found.id == first.backfill.id


def test_the_same_key_with_another_request_is_refused_naming_the_key(owner: Owner) -> None:
    first = create_once(owner)

    with pytest.raises(IdempotencyKeyMismatch) as refused:
        create_once(owner, digest="digest-b", first=100)
    with pytest.raises(IdempotencyKeyMismatch):
        backfills.keyed_backfill(
            db=owner.db, team_id=owner.team_id, idempotency_key=KEY, request_digest="digest-b"
        )

    assert f'"{KEY}"' in str(refused.value)
    assert f"backfill {first.backfill.id}" in str(refused.value)
    assert backfill_ids(owner) == [first.backfill.id]


def test_a_key_belongs_to_its_team(owner: Owner, quiet_database_url: str) -> None:
    other = make_owner(quiet_database_url)

    mine = create_once(owner)
    theirs = create_once(other)

    assert theirs.replayed is False
    assert theirs.backfill.id != mine.backfill.id
    assert theirs.backfill.team_id == other.team_id


def test_a_key_older_than_a_day_is_forgotten_and_may_be_used_again(owner: Owner) -> None:
    first = create_once(owner)
    with owner.db.write() as session:
        session.execute(
            update(IdempotencyKey)
            .where(col(IdempotencyKey.team_id) == owner.team_id)
            .values(created_time=datetime.now(UTC) - timedelta(hours=24, seconds=1))
        )
    assert (
        backfills.keyed_backfill(
            db=owner.db, team_id=owner.team_id, idempotency_key=KEY, request_digest="other"
        )
        is None
    )

    again = create_once(owner, digest="digest-b", first=100)

    assert again.replayed is False
    assert again.backfill.id != first.backfill.id
    (stored,) = keys_of(owner)  # the old one was purged
    assert stored.backfill_id == again.backfill.id


def test_a_refused_create_keeps_no_key_so_a_retry_is_judged_afresh(owner: Owner) -> None:
    blocking = owner.create(day(5), day(5))

    with pytest.raises(OverlapError):
        create_once(owner)
    assert keys_of(owner) == []
    assert blocking.id is not None
    backfills.cancel_backfill(db=owner.db, backfill_id=blocking.id, user_id=owner.user_id)

    retried = create_once(owner)

    assert retried.replayed is False
    assert [k.backfill_id for k in keys_of(owner)] == [retried.backfill.id]


def test_a_discarded_backfill_takes_its_key_with_it(owner: Owner) -> None:
    first = create_once(owner)
    assert first.backfill.id is not None

    backfills.discard_unstarted_backfill(db=owner.db, backfill_id=first.backfill.id)

    assert keys_of(owner) == []
    again = create_once(owner)
    assert again.replayed is False
    assert backfill_ids(owner) == [again.backfill.id]


def test_concurrent_requests_with_one_key_create_one_backfill(owner: Owner) -> None:
    results = race([partial(create_once, owner) for _ in range(RACERS)])

    made = [r for r in results if isinstance(r, backfills.KeyedCreate)]
    assert len(made) == RACERS, results
    assert len({r.backfill.id for r in made}) == 1
    assert sum(not r.replayed for r in made) == 1
    assert backfill_ids(owner) == [made[0].backfill.id]
    assert len(keys_of(owner)) == 1


def test_concurrent_different_requests_with_one_key_let_exactly_one_through(
    owner: Owner,
) -> None:
    """Each names a transfer of its own, so no transfer lock orders them: the key's unique
    index does, and the refused ones find the key on their second look."""
    targets = [another_transfer(owner) for _ in range(8)]

    results = race(
        [partial(create_once, owner, digest=f"digest-{t}", transfer_id=t) for t in targets]
    )

    made = [r for r in results if isinstance(r, backfills.KeyedCreate)]
    refused = [r for r in results if isinstance(r, IdempotencyKeyMismatch)]
    assert len(made) == 1, results
    assert len(refused) == len(targets) - 1, results
    assert backfill_ids(owner) == [made[0].backfill.id]
    assert [k.backfill_id for k in keys_of(owner)] == [made[0].backfill.id]


# --- pause, limits and retry racing a cancel or the end: one consistent outcome -------------


def failed_backfill(owner: Owner) -> Backfill:
    """A FAILED backfill of four dates, two of them failed."""
    backfill = create(owner)
    assert backfill.id is not None
    runs.plan_runs(db=owner.db, backfill_id=backfill.id, first=day(0), last=day(9))
    for n in range(10):
        runs.fail_run(db=owner.db, backfill_id=backfill.id, data_date=day(n), message="boom")
    backfills.finish_backfill(db=owner.db, backfill_id=backfill.id)
    return owner.reload(backfill)


def counts_agree(owner: Owner, backfill: Backfill) -> None:
    record = owner.reload(backfill)
    current = [r for r in owner.runs_of(backfill) if r.superseded_time is None]
    statuses = [r.status for r in current]
    assert record.transfer_runs_failed == statuses.count(RunStatus.FAILED)
    assert record.transfer_runs_cancelled == statuses.count(RunStatus.CANCELLED)
    assert record.transfer_runs_created == len(current)


def test_a_pause_racing_a_cancel_never_leaves_a_paused_final_backfill(owner: Owner) -> None:
    for _ in range(5):
        backfill = create(owner)
        assert backfill.id is not None
        backfill_id = backfill.id
        calls: list[Callable[[], object]] = [
            partial(
                backfills.change_control,
                db=owner.db,
                team_id=owner.team_id,
                backfill_id=backfill_id,
                paused=True,
                paused_reason="racing",
            ),
            partial(
                backfills.cancel_backfill,
                db=owner.db,
                backfill_id=backfill_id,
                user_id=owner.user_id,
            ),
        ]
        outcomes = race(calls)
        record = owner.reload(backfill)
        assert record.status == BackfillStatus.CANCELLED
        assert not isinstance(outcomes[1], Exception)
        assert isinstance(outcomes[0], Backfill | InvalidStateError)
        assert record.paused is False  # a cancel ends any pause


def test_a_retry_racing_a_cancel_gives_one_consistent_outcome(owner: Owner) -> None:
    backfill = failed_backfill(owner)
    assert backfill.id is not None
    backfill_id = backfill.id
    calls: list[Callable[[], object]] = [
        partial(
            backfills.retry_failed_dates,
            db=owner.db,
            backfill_id=backfill_id,
            data_dates=None,
            strict=True,
        ),
        partial(backfills.cancel_backfill, db=owner.db, backfill_id=backfill_id, user_id=None),
    ]
    outcomes = race(calls)

    record = owner.reload(backfill)
    assert record.status == BackfillStatus.CANCELLED
    assert not isinstance(outcomes[1], Exception)
    if isinstance(outcomes[0], Exception):  # the cancel came first: nothing was retried
        assert isinstance(outcomes[0], InvalidStateError)
        assert record.transfer_runs_failed == 10
    else:  # the retry came first: its new runs were cancelled before they started
        assert outcomes[0] == [day(n) for n in range(10)]
        assert record.transfer_runs_failed == 0
        assert record.transfer_runs_cancelled == 10
    counts_agree(owner, backfill)


def test_racing_retries_retry_each_date_once(owner: Owner) -> None:
    backfill = failed_backfill(owner)
    assert backfill.id is not None
    backfill_id = backfill.id
    outcomes = race(
        [
            partial(
                backfills.retry_failed_dates,
                db=owner.db,
                backfill_id=backfill_id,
                data_dates=None,
                strict=True,
            )
            for _ in range(RACERS)
        ]
    )

    retried = [o for o in outcomes if not isinstance(o, Exception)]
    assert len(retried) == 1
    assert all(isinstance(o, InvalidStateError) for o in outcomes if isinstance(o, Exception))
    record = owner.reload(backfill)
    assert (record.status, record.retries) == (BackfillStatus.RUNNING, 1)
    assert len(owner.runs_of(backfill)) == 20  # ten superseded, ten new
    counts_agree(owner, backfill)


def test_a_pause_of_a_finished_backfill_is_refused_and_changes_nothing(owner: Owner) -> None:
    backfill = create(owner)
    assert backfill.id is not None
    backfills.cancel_backfill(db=owner.db, backfill_id=backfill.id, user_id=None)

    with pytest.raises(InvalidStateError):
        backfills.change_control(
            db=owner.db, team_id=owner.team_id, backfill_id=backfill.id, max_concurrent_runs=3
        )
    assert owner.reload(backfill).max_concurrent_runs is None


def all_runs_completed(owner: Owner) -> Backfill:
    """A backfill whose every run completed, its workflow about to close it."""
    backfill = create(owner)
    plan(owner, backfill)
    for n in range(10):
        started = begin(owner, backfill, day(n))
        assert started is not None and complete(owner, started)
    return owner.reload(backfill)


@pytest.mark.parametrize(
    "change",
    [
        {"paused": True, "paused_reason": "racing the end"},
        {"max_concurrent_runs": 7},
        {"max_failed_runs": 2},
    ],
    ids=["pause", "cap", "budget"],
)
def test_a_change_racing_the_backfills_end_gives_one_consistent_outcome(
    owner: Owner, change: dict[str, Any]
) -> None:
    for _ in range(5):
        backfill = all_runs_completed(owner)
        assert backfill.id is not None
        calls: list[Callable[[], object]] = [
            partial(
                backfills.change_control,
                db=owner.db,
                team_id=owner.team_id,
                backfill_id=backfill.id,
                signal_workflow=True,
                **change,
            ),
            partial(backfills.finish_backfill, db=owner.db, backfill_id=backfill.id),
        ]
        changed, finished = race(calls)
        record = owner.reload(backfill)
        queued = outbox.due_signals(db=owner.db, limit=10, backfill_id=backfill.id)

        assert finished == BackfillStatus.COMPLETED == record.status
        assert record.paused is False  # a completed backfill is never left paused
        if isinstance(changed, InvalidStateError):  # the end came first: nothing changed
            assert queued == []
            assert (record.max_concurrent_runs, record.max_failed_runs) == (None, None)
        else:  # the change came first and holds, told to a workflow that is closing anyway
            assert isinstance(changed, Backfill)
            assert len(queued) == 1
            if "max_concurrent_runs" in change:
                assert record.max_concurrent_runs == 7


def test_the_error_report_lists_a_date_that_failed_again_once_and_one_that_succeeded_not(
    owner: Owner,
) -> None:
    backfill = failed_backfill(owner)
    assert backfill.id is not None
    backfills.retry_failed_dates(
        db=owner.db, backfill_id=backfill.id, data_dates=[day(1), day(2)], strict=True
    )
    runs.fail_run(db=owner.db, backfill_id=backfill.id, data_date=day(1), message="boom again")
    started = begin(owner, backfill, day(2))
    assert started is not None and complete(owner, started)

    report = runs.error_reports(db=owner.db, backfill_ids=[backfill.id])[backfill.id]
    by_date = [(error["transfer_run_date"], error["error"]) for error in report]
    assert by_date == [(str(day(0)), "boom"), (str(day(1)), "boom again")] + [
        (str(day(n)), "boom") for n in range(3, 10)
    ]
