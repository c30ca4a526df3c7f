"""A century-long backfill made straight in the database, its 36,500 runs set to a known mix
of statuses, for the calendar's scale test (no worker ever runs it)."""

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import update
from sqlmodel import col

from persistence import accounts, backfills, runs, transfers
from persistence.db import Database
from persistence.models import Backfill, Role, Scope, TransferRun
from statuses import BackfillStatus, RunStatus

DAYS = 36_500
LAST = date(2025, 12, 31)
FIRST = LAST - timedelta(days=DAYS - 1)  # 1926-01-11


@dataclass(frozen=True)
class Century:
    team_id: int
    backfill_id: int
    token: str
    counts: dict[str, int]  # run status -> dates in it


def _slice(years_from: int, years_to: int) -> tuple[date, date]:
    """The dates from FIRST + years_from*365 days up to (not including) years_to*365."""
    return FIRST + timedelta(days=365 * years_from), FIRST + timedelta(days=365 * years_to - 1)


# the first 80 "years" done, then failed, running, queued, cancelled; the last 8 waiting
PLAN: list[tuple[RunStatus, int, int]] = [
    (RunStatus.COMPLETED, 0, 80),
    (RunStatus.FAILED, 80, 84),
    (RunStatus.RUNNING, 84, 85),
    (RunStatus.QUEUED, 85, 86),
    (RunStatus.CANCELLED, 86, 92),
]


def seed_century(db: Database) -> Century:
    team_id = accounts.create_team(db=db, name="century")
    email = f"century-{os.urandom(6).hex()}@example.com"
    user_id = accounts.create_user(db=db, email=email, team_id=team_id, role=Role.OWNER)
    token = accounts.create_token(db=db, user_id=user_id, scopes=[Scope.READ])
    transfer = transfers.create_transfer(
        db=db,
        team_id=team_id,
        user_id=user_id,
        display_name="a hundred years of ads",
        source={"type": "demo"},
        destination={"type": "sqlite"},
        max_concurrent_runs=8,
    )
    assert transfer.id is not None
    backfill = backfills.create_backfill(
        db=db,
        team_id=team_id,
        transfer_id=transfer.id,
        user_id=user_id,
        range_start=FIRST,
        range_end=LAST,
    )
    assert backfill.id is not None
    runs.plan_runs(db=db, backfill_id=backfill.id, first=FIRST, last=LAST)
    counts = _set_statuses(db, backfill.id)
    _set_counters(db, backfill.id, counts)
    return Century(team_id=team_id, backfill_id=backfill.id, token=token, counts=counts)


def _set_statuses(db: Database, backfill_id: int) -> dict[str, int]:
    now = datetime.now(UTC)
    counts = {str(status): 0 for status in RunStatus}
    counts[RunStatus.CREATED] = DAYS
    with db.write() as session:
        for status, start, end in PLAN:
            first, last = _slice(start, end)
            ended = status in (RunStatus.COMPLETED, RunStatus.FAILED)
            session.execute(
                update(TransferRun)
                .where(
                    col(TransferRun.backfill_id) == backfill_id,
                    col(TransferRun.data_date).between(first, last),
                )
                .values(
                    status=status,
                    attempts=3 if status == RunStatus.FAILED else 1,
                    started_time=now - timedelta(seconds=5),
                    ended_time=now if ended else None,
                    total_rows=24 if status == RunStatus.COMPLETED else 0,
                    message="demo source: this date is listed in fail_dates"
                    if status == RunStatus.FAILED
                    else "",
                )
            )
            counts[status] = (last - first).days + 1
            counts[RunStatus.CREATED] -= counts[status]
    return counts


def _set_counters(db: Database, backfill_id: int, counts: dict[str, int]) -> None:
    """The backfill's record as a worker would have left it: RUNNING, with these counts."""
    with db.write() as session:
        session.execute(
            update(Backfill)
            .where(col(Backfill.id) == backfill_id)
            .values(
                status=BackfillStatus.RUNNING,
                start_time=datetime.now(UTC) - timedelta(hours=1),
                transfer_runs_created=DAYS,
                transfer_runs_completed=counts[RunStatus.COMPLETED],
                transfer_runs_failed=counts[RunStatus.FAILED],
                transfer_runs_cancelled=counts[RunStatus.CANCELLED],
            )
        )
