"""The reconciler's repair of a transfer's missing Schedule never undoes a change that lands
while it repairs: a DELETE takes the Schedule away before it removes the transfer, and a
repair reading the transfer in between must not make the Schedule again."""

from collections.abc import Callable

import pytest

from activities.schedule_repair import repair_schedules
from persistence import accounts, schedules, transfers
from persistence.db import Database
from persistence.models import Role, Transfer
from persistence.schedules import ScheduleInTemporal

DAILY = {"cron": "0 2 * * *", "time_zone": "UTC"}


@pytest.fixture
def database_url(quiet_database_url: str) -> str:
    """A database of this module's own: no stack reconciler repairs its transfers."""
    return quiet_database_url


class FakeTemporal:
    """Temporal's side with no Schedule at all; `meanwhile` runs as the repair describes."""

    def __init__(self, meanwhile: Callable[[], None] = lambda: None) -> None:
        self.meanwhile = meanwhile
        self.applied: list[Transfer] = []

    async def sync(self, transfer_id: int) -> None:
        raise AssertionError("nothing is unapplied here")

    async def apply(self, transfer: Transfer) -> None:
        self.applied.append(transfer)

    async def listed(self) -> dict[int, ScheduleInTemporal]:
        return {}

    async def described(self, transfer_id: int) -> ScheduleInTemporal | None:
        self.meanwhile()
        return None


def scheduled_transfer(db: Database) -> Transfer:
    team_id = accounts.create_team(db=db, name="team")
    user_id = accounts.create_user(
        db=db, email=f"repair-{team_id}@example.com", team_id=team_id, role=Role.OWNER
    )
    transfer = transfers.create_transfer(
        db=db,
        team_id=team_id,
        user_id=user_id,
        display_name="scheduled",
        source={"type": "demo"},
        destination={"type": "sqlite"},
        max_concurrent_runs=1,
        schedule=DAILY,
    )
    assert transfer.id is not None
    schedules.mark_schedule_applied(db=db, transfer_id=transfer.id, version=1)
    return transfer


async def test_a_missing_schedule_is_made_again(database_url: str) -> None:
    db = Database(database_url)
    transfer = scheduled_transfer(db)
    temporal = FakeTemporal()

    await repair_schedules(db, temporal)

    assert [t.id for t in temporal.applied if schedules.desired_schedule(t)] == [transfer.id]


async def test_a_transfer_removed_during_the_repair_gets_no_schedule_again(
    database_url: str,
) -> None:
    db = Database(database_url)
    transfer = scheduled_transfer(db)
    assert transfer.id is not None
    transfer_id = transfer.id

    def delete_lands() -> None:  # the DELETE route: Schedule gone, then the transfer
        transfers.remove_transfer(db=db, team_id=transfer.team_id, transfer_id=transfer_id)

    temporal = FakeTemporal(meanwhile=delete_lands)

    await repair_schedules(db, temporal)

    remade = [t for t in temporal.applied if t.id == transfer_id and schedules.desired_schedule(t)]
    assert remade == []
