"""A transfer's schedule as a team writes it, checked, and as Temporal runs it.

A schedule is a cron expression (five fields) or a simple `daily` / `hourly` spec, in a time
zone, plus which `data_date` a firing processes: by default the day before the firing's
scheduled time in that zone (a run at 02:00 on the 5th loads the 4th). Everything here is
tenant input, so it is checked strictly before it reaches Temporal: a cron of known fields
and values only, an IANA time zone name that exists (never a path), bounded numbers.
"""

import re
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from temporalio.client import (
    ScheduleCalendarSpec,
    ScheduleIntervalSpec,
    ScheduleRange,
    ScheduleSpec,
)

MAX_OFFSET_DAYS = 366
MAX_INTERVAL_SECONDS = 31 * 24 * 3600
_ZONE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+){0,2}$")
_MONTHS = ("", "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_CRON_FIELDS: tuple[
    tuple[str, int, int, tuple[str, ...]], ...
] = (  # name, lowest, highest, names allowed
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _WEEKDAYS),
)
_CRON_ITEM = re.compile(r"^(\*|[0-9a-z]+(-[0-9a-z]+)?)(/[0-9]+)?$")


class Every(StrEnum):
    DAILY = "daily"
    HOURLY = "hourly"


class Schedule(BaseModel):
    """When a transfer runs by itself: `cron`, or `every` (`daily` at `hour`:`minute`,
    `hourly` at `minute`), or every `interval_seconds`, in `time_zone`; each run loads the
    day `data_date_offset_days` before its scheduled time there."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cron: str | None = Field(default=None, max_length=100, examples=["0 2 * * *"])
    every: Every | None = None
    hour: int = Field(default=0, ge=0, le=23, description="`every: daily` only")
    minute: int = Field(default=0, ge=0, le=59)
    interval_seconds: int | None = Field(
        default=None,
        ge=1,
        le=MAX_INTERVAL_SECONDS,
        description="Fire every this many seconds (no shorter than the service allows, "
        "`BACKFILLS_SCHEDULE_MIN_INTERVAL_SECONDS`).",
    )
    time_zone: str = Field(default="UTC", max_length=64, examples=["Europe/Berlin"])
    data_date_offset_days: int = Field(default=1, ge=0, le=MAX_OFFSET_DAYS)

    @field_validator("cron")
    @classmethod
    def _cron_is_five_known_fields(cls, cron: str | None) -> str | None:
        if cron is not None:
            check_cron(cron)
        return cron

    @field_validator("time_zone")
    @classmethod
    def _zone_exists(cls, name: str) -> str:
        zone_of(name)
        return name

    @model_validator(mode="after")
    def _cron_or_every(self) -> Self:
        given = [name for name in ("cron", "every", "interval_seconds") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError("give exactly one of `cron`, `every` and `interval_seconds`")
        if self.every != Every.DAILY and self.hour != 0:
            raise ValueError("`hour` is for `every: daily`")
        if self.every is None and self.minute != 0:
            raise ValueError("`minute` is for `every: daily` or `every: hourly`")
        return self


def check_cron(cron: str) -> None:
    """ValueError naming the field unless `cron` is five fields of known values."""
    fields = cron.lower().split()
    if len(fields) != len(_CRON_FIELDS):
        raise ValueError("a cron expression has five fields: minute hour day month weekday")
    for text, (name, lowest, highest, names) in zip(fields, _CRON_FIELDS, strict=True):
        for item in text.split(","):
            if not _CRON_ITEM.match(item):
                raise ValueError(f"cron {name} field {text!r} is not a value, range or step")
            bounds = item.split("/")[0]
            for value in () if bounds == "*" else bounds.split("-"):
                number = names.index(value) if value in names else _number(value, name)
                if not lowest <= number <= highest:
                    raise ValueError(f"cron {name} {value!r} is outside {lowest}..{highest}")


def _number(value: str, field: str) -> int:
    if not value.isdigit():
        raise ValueError(f"cron {field} {value!r} is not a number")
    return int(value)


def zone_of(name: str) -> ZoneInfo:
    """The IANA time zone `name`; ValueError if it is not one (never read as a path)."""
    if not _ZONE_NAME.match(name):
        raise ValueError(f"{name!r} is not a time zone name such as Europe/Berlin")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def temporal_spec(schedule: Schedule) -> ScheduleSpec:
    """The Temporal ScheduleSpec that fires as `schedule` says, in its time zone."""
    if schedule.cron is not None:
        return ScheduleSpec(cron_expressions=[schedule.cron], time_zone_name=schedule.time_zone)
    if schedule.interval_seconds is not None:
        every = timedelta(seconds=schedule.interval_seconds)
        return ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)])
    hours = (
        [ScheduleRange(0, 23)] if schedule.every == Every.HOURLY else [ScheduleRange(schedule.hour)]
    )
    calendar = ScheduleCalendarSpec(
        second=[ScheduleRange(0)], minute=[ScheduleRange(schedule.minute)], hour=hours
    )
    return ScheduleSpec(calendars=[calendar], time_zone_name=schedule.time_zone)


def data_date_for(schedule: Schedule, scheduled_time: datetime) -> date:
    """The date a firing scheduled at `scheduled_time` (aware) loads."""
    return data_date_of_firing(scheduled_time, schedule.time_zone, schedule.data_date_offset_days)


def data_date_of_firing(scheduled_time: datetime, time_zone: str, offset_days: int) -> date:
    """The day `offset_days` before `scheduled_time` (aware) in `time_zone`."""
    local = scheduled_time.astimezone(zone_of(time_zone))
    return local.date() - timedelta(days=offset_days)
