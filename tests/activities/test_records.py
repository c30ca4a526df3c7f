"""The bookkeeping activities on a real database: a backfill without a record fails them
at once with a typed, non-retryable error, since no retry can bring the record back."""

from datetime import date

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.inputs import (
    RECORD_MISSING,
    BackfillRef,
    CancelRecordInput,
    PlanRunsInput,
)
from activities.records import RecordActivities
from persistence.db import Database

NO_SUCH_BACKFILL = 987_654_321


@pytest.mark.parametrize(
    ("activity", "argument"),
    [
        ("plan_runs", PlanRunsInput(NO_SUCH_BACKFILL, date(2024, 1, 1), date(2024, 1, 2))),
        ("record_cancel", CancelRecordInput(NO_SUCH_BACKFILL, user_id=None)),
        ("finish_backfill", BackfillRef(NO_SUCH_BACKFILL)),
    ],
)
async def test_a_missing_record_fails_bookkeeping_at_once_and_for_good(
    database_url: str, activity: str, argument: object
) -> None:
    records = RecordActivities(Database(database_url))

    with pytest.raises(ApplicationError) as failed:
        await ActivityEnvironment().run(getattr(records, activity), argument)

    assert failed.value.type == RECORD_MISSING
    assert failed.value.non_retryable
    assert f"backfill {NO_SUCH_BACKFILL} not found" in failed.value.message
