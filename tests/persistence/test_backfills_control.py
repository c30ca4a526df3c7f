"""A backfill's control options as create stores them, and idempotent creates: the same key
answers the backfill it made, from any number of threads at once, on SQLite and PostgreSQL."""

from sqlalchemy import update
from sqlmodel import col

from persistence import backfills
from persistence.models import Backfill, RunOrder, Transfer
from tests.persistence.test_backfills import Owner, day
from tests.persistence.test_backfills import owner as owner  # the fixture


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
