"""Request and response shapes of the backfill endpoints."""

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema
from typing_extensions import TypedDict

from api.schemas.common import MAX_INT, IsoDate, JsonInteger, UtcTimestamp
from persistence.models import Backfill, RunOrder
from persistence.runs import RunError
from statuses import BackfillStatus


class CreateBackfillRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"range_start": "2024-01-01", "range_end": "2024-01-31"},
                {
                    "range_start": "2024-01-01",
                    "range_end": "2024-12-31",
                    "max_concurrent_runs": 8,
                    "max_failed_runs": 10,
                    "run_order": RunOrder.NEWEST_FIRST,
                },
            ]
        },
    )

    range_start: IsoDate = Field(description="First data_date, inclusive (YYYY-MM-DD).")
    range_end: IsoDate = Field(description="Last data_date, inclusive (YYYY-MM-DD).")
    max_concurrent_runs: int | None = Field(
        default=None,
        ge=1,
        le=500,
        description="Runs of this backfill processed at once; default: the transfer's.",
    )
    max_failed_runs: int | None = Field(
        default=None,
        ge=1,
        le=MAX_INT,
        description="The failure budget: the backfill pauses itself once this many runs have "
        "failed. Default: the transfer's, if it has one; none otherwise.",
    )
    run_order: RunOrder = Field(
        default=RunOrder.OLDEST_FIRST,
        description="OLDEST_FIRST (default) or NEWEST_FIRST: which end of the range runs first.",
    )


def _one_kind_of_change_schema(schema: dict[str, Any]) -> None:
    """What the validator below checks, said in the OpenAPI document too: something to
    change, a cancel alone, and a reason only with a pause."""
    schema["minProperties"] = 1
    schema["allOf"] = [
        {"if": {"required": ["status"]}, "then": {"maxProperties": 1}},
        {
            "if": {"required": ["paused_reason"]},
            "then": {"required": ["paused"], "properties": {"paused": {"const": True}}},
        },
    ]
    schema["examples"] = [
        {"status": BackfillStatus.CANCELLED},
        {"paused": True, "paused_reason": "the source is in maintenance until 14:00"},
        {"paused": False},
        {"max_concurrent_runs": 8, "max_failed_runs": 20},
    ]


class UpdateBackfillRequest(BaseModel):
    """Cancel (`status` alone), or pause, resume and change limits (any of the others)."""

    model_config = ConfigDict(
        strict=True, extra="forbid", json_schema_extra=_one_kind_of_change_schema
    )

    status: Literal["CANCELLED"] | SkipJsonSchema[None] = Field(
        None, description="CANCELLED, the only status accepted: cancel the backfill."
    )
    paused: bool | SkipJsonSchema[None] = Field(
        None, description="true: start no run until resumed (runs in flight finish); false: resume."
    )
    paused_reason: Annotated[str, Field(min_length=1, max_length=500)] | SkipJsonSchema[None] = (
        Field(None, description="Why, shown with the pause.")
    )
    max_concurrent_runs: Annotated[int, Field(ge=1, le=500), JsonInteger] | SkipJsonSchema[None] = (
        Field(None, description="The new cap on runs in flight, from the next start on.")
    )
    max_failed_runs: Annotated[int, Field(ge=1, le=MAX_INT), JsonInteger] | None = Field(
        None, description="The failure budget: pause once this many runs failed; null: none."
    )

    @model_validator(mode="after")
    def _one_kind_of_change(self) -> "UpdateBackfillRequest":
        given = self.model_fields_set
        if not given:
            raise ValueError("nothing to change: give status, paused or a limit")
        if "status" in given and (self.status is None or given != {"status"}):
            raise ValueError('a cancel is {"status": "CANCELLED"} and nothing else')
        if "paused" in given and self.paused is None:
            raise ValueError("paused must be true or false")
        if "max_concurrent_runs" in given and self.max_concurrent_runs is None:
            raise ValueError("max_concurrent_runs must be a number from 1 to 500")
        if self.paused_reason is not None and self.paused is not True:
            raise ValueError("paused_reason goes with paused: true")
        return self

    @property
    def is_cancel(self) -> bool:
        return self.status is not None

    @property
    def removes_failure_budget(self) -> bool:
        return "max_failed_runs" in self.model_fields_set and self.max_failed_runs is None


class RetryBackfillRequest(BaseModel):
    model_config = ConfigDict(
        strict=True, json_schema_extra={"examples": [{}, {"data_dates": ["2024-01-05"]}]}
    )

    data_dates: list[IsoDate] | None = Field(
        None,
        min_length=1,
        max_length=36_600,
        description="Only these dates (each must have failed, or been left undone by a "
        "cancel); absent: all of them.",
    )


class BackfillRunErrorOut(TypedDict):
    """A TypedDict, not a model: a list may carry tens of thousands of them, and pydantic
    validates and writes dicts without making an object of each."""

    __pydantic_config__ = ConfigDict(  # type: ignore[misc]
        json_schema_extra={
            "examples": [
                {
                    "transfer_run_date": "2024-01-05",
                    "error": "demo source: 2024-01-05 is listed in fail_dates",
                }
            ]
        }
    )

    transfer_run_date: date
    error: str


class BackfillOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "transfer_backfill_id": 42,
                    "transfer_id": 7,
                    "range_start_date": "2024-01-01",
                    "range_end_date": "2024-01-31",
                    "created_time": "2024-02-01T09:30:00.000Z",
                    "created_user_id": 3,
                    "removed_time": None,
                    "removed_user_id": None,
                    "start_time": "2024-02-01T09:30:01.250Z",
                    "end_time": None,
                    "status": BackfillStatus.RUNNING,
                    "transfer_runs_total": 31,
                    "transfer_runs_created": 31,
                    "transfer_runs_completed": 12,
                    "transfer_runs_failed": 1,
                    "transfer_runs_running": 4,
                    "transfer_runs_cancelled": 0,
                    "error_report": [
                        {
                            "transfer_run_date": "2024-01-05",
                            "error": "demo source: 2024-01-05 is listed in fail_dates",
                        }
                    ],
                    "paused": False,
                    "paused_time": None,
                    "paused_reason": None,
                    "max_concurrent_runs": 4,
                    "max_failed_runs": 10,
                    "run_order": RunOrder.OLDEST_FIRST,
                    "retry_of_backfill_id": None,
                    "estimated_end_time": "2024-02-01T09:31:05.250Z",
                }
            ]
        }
    )

    transfer_backfill_id: int
    transfer_id: int
    range_start_date: date
    range_end_date: date
    created_time: UtcTimestamp
    created_user_id: int
    removed_time: UtcTimestamp | None
    removed_user_id: int | None
    start_time: UtcTimestamp | None
    end_time: UtcTimestamp | None
    status: BackfillStatus
    transfer_runs_total: int
    transfer_runs_created: int
    transfer_runs_completed: int
    transfer_runs_failed: int
    transfer_runs_running: int = Field(
        description="Runs in flight now; a CANCELLED backfill's drain ends when this is 0."
    )
    transfer_runs_cancelled: int = Field(
        description="Runs cancelled before they started (by a cancel of the backfill)."
    )
    error_report: list[BackfillRunErrorOut]
    paused: bool = Field(description="No new run starts while true; runs in flight finish.")
    paused_time: UtcTimestamp | None = Field(description="When it was paused, if it is.")
    paused_reason: str | None = Field(
        description="Why it is paused: the caller's reason, or the failure budget it reached."
    )
    max_concurrent_runs: int = Field(
        description="Runs processed at once: the backfill's own cap, else the transfer's."
    )
    max_failed_runs: int | None = Field(
        description="The failure budget: it pauses itself once this many runs have failed; "
        "null: no budget."
    )
    run_order: RunOrder = Field(description="Which end of the range runs first.")
    retry_of_backfill_id: int | None = Field(
        description="The cancelled backfill whose unfinished dates this one retries, if any."
    )
    estimated_end_time: UtcTimestamp | None = Field(
        description="When its remaining runs should be done, from the durations of its own "
        "completed runs (the transfer's latest ones until it has some), the dates left and "
        "the cap; null when unknown, paused or ended."
    )

    @classmethod
    def of(
        cls,
        backfill: Backfill,
        errors: list[RunError],
        running: int = 0,
        *,
        transfer_max_concurrent_runs: int,
        estimated_end_time: datetime | None = None,
    ) -> "BackfillOut":
        assert backfill.id is not None
        return cls(
            transfer_backfill_id=backfill.id,
            transfer_id=backfill.transfer_id,
            range_start_date=backfill.range_start_date,
            range_end_date=backfill.range_end_date,
            created_time=backfill.created_time,
            created_user_id=backfill.created_user_id,
            removed_time=backfill.removed_time,
            removed_user_id=backfill.removed_user_id,
            start_time=backfill.start_time,
            end_time=backfill.end_time,
            status=BackfillStatus(backfill.status),
            transfer_runs_total=backfill.transfer_runs_total,
            transfer_runs_created=backfill.transfer_runs_created,
            transfer_runs_completed=backfill.transfer_runs_completed,
            transfer_runs_failed=backfill.transfer_runs_failed,
            transfer_runs_running=running,
            transfer_runs_cancelled=backfill.transfer_runs_cancelled,
            error_report=errors,  # their YYYY-MM-DD strings validate as dates
            paused=backfill.paused,
            paused_time=backfill.paused_time,
            paused_reason=backfill.paused_reason,
            max_concurrent_runs=backfill.max_concurrent_runs or transfer_max_concurrent_runs,
            max_failed_runs=backfill.max_failed_runs,
            run_order=RunOrder(backfill.run_order),
            retry_of_backfill_id=backfill.retry_of_backfill_id,
            estimated_end_time=estimated_end_time,
        )
