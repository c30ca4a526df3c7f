"""Request and response shapes of the transfer endpoints (the service's own schema)."""

from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, model_validator
from pydantic.json_schema import SkipJsonSchema

from api.schemas.common import MAX_INT, UtcTimestamp
from connectors.masking import masked
from persistence.models import Transfer
from persistence.schedules import ScheduleChange
from recurring.spec import MAX_INTERVAL_SECONDS, MAX_OFFSET_DAYS, Schedule

_SCHEDULE = (
    "When the transfer runs by itself, each firing making one `Recurring` run: `cron` (five "
    "fields), `every` (`daily` at `hour`:`minute`, `hourly` at `minute`) or "
    "`interval_seconds`, in `time_zone` (IANA, default UTC). Each run loads the day "
    "`data_date_offset_days` (default 1) before its scheduled time in that zone. Checked "
    "when saved: a spec that is not clear (two kinds at once, an unknown zone, a cron value "
    "out of range) answers 422 saying why."
)


def _nullable_int(lowest: int, highest: int) -> dict[str, Any]:
    return {"anyOf": [{"type": "integer", "minimum": lowest, "maximum": highest}, {"type": "null"}]}


# The shape of a schedule a request may carry. Its rules beyond shape (one kind of spec, a
# known zone, cron values in range) are checked by recurring.spec.Schedule in the route, and
# answer 422: a JSON schema cannot say them.
_SCHEDULE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "cron": {"anyOf": [{"type": "string", "maxLength": 100}, {"type": "null"}]},
        "every": {"anyOf": [{"enum": ["daily", "hourly"]}, {"type": "null"}]},
        "hour": {"type": "integer", "minimum": 0, "maximum": 23},
        "minute": {"type": "integer", "minimum": 0, "maximum": 59},
        "interval_seconds": _nullable_int(1, MAX_INTERVAL_SECONDS),
        "time_zone": {"type": "string", "maxLength": 64},
        "data_date_offset_days": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET_DAYS},
    },
    "description": _SCHEDULE,
    "examples": [{"cron": "0 2 * * *", "time_zone": "Europe/Berlin"}],
}
ScheduleSpec = Annotated[dict[str, Any], WithJsonSchema(_SCHEDULE_SCHEMA)]


class CreateTransferRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "display_name": "Ads daily",
                    "source": {"type": "demo", "rows_per_day": 24},
                    "destination": {"type": "sqlite"},
                    "max_concurrent_runs": 4,
                }
            ]
        }
    )

    display_name: str = Field(min_length=1, max_length=200)
    source: dict[str, Any] = Field(description='`{"type": ..., ...options}`')
    destination: dict[str, Any] = Field(description='`{"type": ..., ...options}`')
    max_concurrent_runs: int | None = Field(
        default=None, ge=1, le=500, description="Runs of one backfill processed at once."
    )
    max_failed_runs: int | None = Field(
        default=None,
        ge=1,
        le=MAX_INT,
        description="The default failure budget of its backfills: a backfill pauses itself "
        "once this many of its runs have failed. Absent: none.",
    )
    schedule: ScheduleSpec | None = Field(default=None, description="null or absent: none.")


def _one_kind_of_change_schema(schema: dict[str, Any]) -> None:
    """What the validator below checks, said in the OpenAPI document too."""
    schema["minProperties"] = 1
    schema["anyOf"] = [{"required": ["schedule"]}, {"required": ["schedule_paused"]}]
    schema["allOf"] = [
        {
            "if": {"required": ["schedule_paused_reason"]},
            "then": {
                "required": ["schedule_paused"],
                "properties": {"schedule_paused": {"const": True}},
            },
        }
    ]
    schema["examples"] = [
        {"schedule": {"cron": "0 2 * * *", "time_zone": "Europe/Berlin"}},
        {"schedule_paused": True, "schedule_paused_reason": "source migration"},
        {"schedule_paused": False},
        {"schedule": None},
    ]


class UpdateTransferRequest(BaseModel):
    """A change to a transfer's schedule: `schedule` replaces it (null removes it), and or
    else `schedule_paused` pauses (true, with an optional reason) or resumes (false) it."""

    model_config = ConfigDict(
        strict=True, extra="forbid", json_schema_extra=_one_kind_of_change_schema
    )

    schedule: ScheduleSpec | None = Field(
        default=None, description="The new schedule; null removes it."
    )
    schedule_paused: bool | SkipJsonSchema[None] = Field(
        default=None, description="true pauses, false resumes"
    )
    schedule_paused_reason: (
        Annotated[str, Field(min_length=1, max_length=500)] | SkipJsonSchema[None]
    ) = Field(default=None, description="Why, shown with the pause.")

    @model_validator(mode="after")
    def _something_to_change(self) -> Self:
        if not {"schedule", "schedule_paused"} & self.model_fields_set:
            raise ValueError("give `schedule` (null removes it) or `schedule_paused`")
        if "schedule_paused" in self.model_fields_set and self.schedule_paused is None:
            raise ValueError("`schedule_paused` is true or false")
        if self.schedule_paused_reason is not None and self.schedule_paused is not True:
            raise ValueError("`schedule_paused_reason` goes with `schedule_paused: true`")
        return self

    def change(self, user_id: int, schedule: Schedule | None) -> ScheduleChange:
        """The change, with `schedule` the request's, checked."""
        reason = self.schedule_paused_reason or f"paused by user {user_id}"
        return ScheduleChange(
            replace="schedule" in self.model_fields_set,
            schedule=schedule.model_dump(mode="json") if schedule else None,
            paused=self.schedule_paused,
            paused_reason=reason if self.schedule_paused else None,
        )


class ScheduleStateOut(BaseModel):
    """A scheduled transfer's pause, and whether Temporal's Schedule has caught up."""

    schedule_id: str = Field(description="The Temporal Schedule's id, `transfer-<id>`.")
    paused: bool
    paused_reason: str | None
    paused_time: UtcTimestamp | None
    applied: bool = Field(
        description="Whether the Temporal Schedule has the latest change; false: it is being "
        "applied (the service retries until Temporal takes it)."
    )
    next_firings: list[UtcTimestamp] | None = Field(
        default=None,
        description="The next scheduled times (none while paused); null when not read, as in "
        "a list of transfers, or while Temporal cannot answer.",
    )

    @classmethod
    def of(
        cls, transfer: Transfer, next_firings: list[datetime] | None
    ) -> "ScheduleStateOut | None":
        if transfer.schedule is None:
            return None
        return cls(
            schedule_id=f"transfer-{transfer.id}",
            paused=transfer.schedule_paused,
            paused_reason=transfer.schedule_paused_reason,
            paused_time=transfer.schedule_paused_time,
            applied=transfer.schedule_applied_version >= transfer.schedule_version,
            next_firings=next_firings,
        )


class TransferOut(BaseModel):
    """A transfer as callers see it: passwords in URLs and sensitive option values masked,
    `${NAME}` references shown as they are."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "transfer_id": 7,
                    "team_id": 1,
                    "display_name": "Ads daily",
                    "source": {
                        "type": "demo",
                        "rows_per_day": 24,
                        "latency_ms": 0,
                        "fail_dates": [],
                        "flaky_rate": 0.0,
                    },
                    "destination": {"type": "sqlite", "path": None, "table": None},
                    "max_concurrent_runs": 4,
                    "max_failed_runs": None,
                    "created_time": "2024-02-01T09:00:00.000Z",
                    "created_user_id": 3,
                }
            ]
        }
    )

    transfer_id: int
    team_id: int
    display_name: str
    source: dict[str, Any]
    destination: dict[str, Any]
    max_concurrent_runs: int
    max_failed_runs: int | None
    created_time: UtcTimestamp
    created_user_id: int
    schedule: Schedule | None = Field(default=None, description=_SCHEDULE)
    schedule_state: ScheduleStateOut | None = Field(
        default=None, description="Present with a schedule."
    )

    @classmethod
    def of(cls, transfer: Transfer, *, next_firings: list[datetime] | None = None) -> "TransferOut":
        assert transfer.id is not None
        return cls(
            transfer_id=transfer.id,
            team_id=transfer.team_id,
            display_name=transfer.display_name,
            source=masked(transfer.source),
            destination=masked(transfer.destination),
            max_concurrent_runs=transfer.max_concurrent_runs,
            max_failed_runs=transfer.max_failed_runs,
            created_time=transfer.created_time,
            created_user_id=transfer.created_user_id,
            schedule=Schedule.model_validate(transfer.schedule) if transfer.schedule else None,
            schedule_state=ScheduleStateOut.of(transfer, next_firings),
        )
