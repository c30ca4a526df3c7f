"""A transfer's schedule as a team writes it: checked strictly (it is tenant input), turned
into the Temporal ScheduleSpec that fires as it says, and the data_date each firing loads."""

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import pytest
from pydantic import ValidationError
from temporalio.client import (
    Client,
    ScheduleActionStartWorkflow,
    ScheduleState,
)
from temporalio.client import (
    Schedule as TemporalSchedule,
)

from recurring.spec import Schedule, data_date_for, temporal_spec


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({}, "exactly one of `cron`, `every` and `interval_seconds`"),
        ({"cron": "0 2 * * *", "every": "daily"}, "exactly one of `cron`, `every`"),
        ({"cron": "0 2 * * *", "interval_seconds": 60}, "exactly one of `cron`, `every`"),
        ({"interval_seconds": 0}, "greater than or equal to 1"),
        ({"interval_seconds": 60, "minute": 5}, "`minute` is for `every: daily`"),
        ({"cron": "0 2 * * *", "hour": 5}, "`hour` is for `every: daily`"),
        ({"cron": "0 2 * * * *"}, "five fields"),
        ({"cron": "@every 1s"}, "five fields"),
        ({"cron": "61 2 * * *"}, "minute '61' is outside 0..59"),
        ({"cron": "0 24 * * *"}, "hour '24' is outside 0..23"),
        ({"cron": "0 2 0 * *"}, "day of month '0' is outside 1..31"),
        ({"cron": "0 2 * foo *"}, "month 'foo' is not a number"),
        ({"cron": "0 2 * * 1;rm"}, "day of week field '1;rm' is not a value"),
        ({"cron": "0 2 * * *", "time_zone": "Mars/Olympus"}, "unknown time zone"),
        ({"cron": "0 2 * * *", "time_zone": "../../etc/passwd"}, "not a time zone name"),
        ({"cron": "0 2 * * *", "time_zone": "/etc/localtime"}, "not a time zone name"),
        ({"every": "hourly", "hour": 3}, "`hour` is for `every: daily`"),
        ({"every": "weekly"}, "'daily' or 'hourly'"),
        ({"every": "daily", "hour": 24}, "less than or equal to 23"),
        ({"every": "daily", "data_date_offset_days": -1}, "greater than or equal to 0"),
        ({"every": "daily", "start": "now"}, "Extra inputs are not permitted"),
    ],
)
def test_a_schedule_that_is_not_clear_is_refused_saying_why(
    fields: dict[str, object], says: str
) -> None:
    with pytest.raises(ValidationError, match=says.replace("(", r"\(").replace("*", r"\*")):
        Schedule.model_validate(fields)


@pytest.mark.parametrize(
    "cron", ["0 2 * * *", "*/15 * * * *", "30 1 1,15 * mon-fri", "0 0 * jan-mar 0", "5 4 * * 7"]
)
def test_cron_expressions_of_known_fields_are_accepted(cron: str) -> None:
    assert Schedule(cron=cron).cron == cron


@pytest.mark.parametrize(
    ("time_zone", "scheduled", "loads"),
    [
        ("UTC", datetime(2024, 3, 5, 2, 0, tzinfo=UTC), date(2024, 3, 4)),
        # 01:00 UTC is still the 4th in Los Angeles: it loads the 3rd
        ("America/Los_Angeles", datetime(2024, 3, 5, 1, 0, tzinfo=UTC), date(2024, 3, 3)),
        # 23:30 UTC is already the 6th in Tokyo: it loads the 5th
        ("Asia/Tokyo", datetime(2024, 3, 5, 23, 30, tzinfo=UTC), date(2024, 3, 5)),
    ],
)
def test_a_firing_loads_the_day_before_its_scheduled_time_in_the_zone(
    time_zone: str, scheduled: datetime, loads: date
) -> None:
    schedule = Schedule(every="daily", time_zone=time_zone)
    assert data_date_for(schedule, scheduled) == loads


def test_the_offset_chooses_another_day() -> None:
    same_day = Schedule(every="hourly", data_date_offset_days=0)
    week_back = Schedule(every="hourly", data_date_offset_days=7)
    at = datetime(2024, 3, 5, 10, tzinfo=UTC)
    assert (data_date_for(same_day, at), data_date_for(week_back, at)) == (
        date(2024, 3, 5),
        date(2024, 2, 27),
    )


@pytest.mark.parametrize(
    ("schedule", "every", "first_utc"),
    [
        # 02:30 in Berlin is 01:30 UTC in winter
        (Schedule(every="daily", hour=2, minute=30, time_zone="Europe/Berlin"), 24, (1, 30)),
        (Schedule(cron="30 2 * * *", time_zone="Europe/Berlin"), 24, (1, 30)),
        (Schedule(every="hourly", minute=15), 1, None),
        (Schedule(interval_seconds=3600), 1, None),
    ],
)
async def test_temporal_fires_the_spec_as_the_schedule_says(
    temporal_client: Client, schedule: Schedule, every: int, first_utc: tuple[int, int] | None
) -> None:
    schedule_id = f"spec-test-{abs(hash((schedule, every)))}"
    handle = await temporal_client.create_schedule(
        schedule_id,
        TemporalSchedule(
            action=ScheduleActionStartWorkflow("Nothing", id=schedule_id, task_queue="nowhere"),
            spec=temporal_spec(schedule),
            state=ScheduleState(paused=True, note="a test of the spec only"),
        ),
    )
    try:
        times = (await handle.describe()).info.next_action_times[:3]
    finally:
        await handle.delete()

    assert len(times) == 3
    gaps = {later - earlier for earlier, later in pairwise(times)}
    assert gaps <= {timedelta(hours=every), timedelta(hours=every - 1), timedelta(hours=every + 1)}
    for moment in times:
        if schedule.interval_seconds is not None:
            continue  # an interval has no time of day
        if first_utc is None:
            assert moment.minute == 15
        elif moment.month in (11, 12, 1, 2):  # winter: Berlin is UTC+1
            assert (moment.hour, moment.minute) == first_utc
