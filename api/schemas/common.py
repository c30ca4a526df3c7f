from datetime import UTC, date, datetime
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

MAX_INT = 2**31 - 1  # the database's integers (ids, counts, limits) are 32-bit


def _utc_z(value: datetime) -> str:
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


UtcTimestamp = Annotated[
    datetime, PlainSerializer(_utc_z, return_type=str, when_used="json-unless-none")
]


def _iso_date(value: object) -> object:
    """Only a `YYYY-MM-DD` string is a date here: not a number, not a date-time."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or len(value) != 10:
        raise ValueError("expected a date as YYYY-MM-DD")
    return date.fromisoformat(value)


IsoDate = Annotated[date, BeforeValidator(_iso_date)]


def json_integer(value: object) -> object:
    """A JSON Schema integer: 384 or 384.0, never `true` (a strict model's ints)."""
    if isinstance(value, bool):
        raise ValueError("expected an integer")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


JsonInteger = BeforeValidator(json_integer)  # after the int's Field(...), so its bounds show
