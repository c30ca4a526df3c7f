"""What the run activity retries of its service-database calls: a failure of the moment,
never a programming error (tests/activities/test_transfer_run.py has real outages)."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from temporalio.testing import ActivityEnvironment

from activities.bookkeeping import retried
from persistence.db import Database


def attempt_with_time_left() -> ActivityEnvironment:
    environment = ActivityEnvironment()
    now = datetime.now(UTC)
    environment.info = replace(
        environment.info,
        started_time=now,
        scheduled_time=now,
        start_to_close_timeout=timedelta(minutes=10),
        schedule_to_close_timeout=None,
    )
    return environment


def test_a_programming_error_fails_at_once(database_url: str) -> None:
    db = Database(database_url)
    calls: list[None] = []

    def bad_sql() -> None:
        calls.append(None)
        with db.read() as session:
            session.execute(text("SELECT nothing FROM no_such_table"))

    with pytest.raises(DBAPIError):
        attempt_with_time_left().run(retried, bad_sql)

    assert len(calls) == 1
