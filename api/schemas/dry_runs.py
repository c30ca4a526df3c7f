"""Response shape of a backfill's dry run."""

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import UtcTimestamp
from persistence.models import RunOrder

DRY_RUN_DATES = 100  # the dates a dry run lists, at most; the count, first and last are exact


class RefusalOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "code": "CONFLICT_ERROR",
                    "message": "the range overlaps incomplete backfill 41 of transfer 7",
                    "overlapping_backfill_id": 41,
                }
            ]
        }
    )

    code: str = Field(description="The error code create would answer with (422).")
    message: str = Field(description="Its message, word for word.")
    overlapping_backfill_id: int | None = Field(
        description="For CONFLICT_ERROR: the incomplete backfill the range overlaps."
    )


class DurationEstimateOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "duration_seconds": 24.0,
                    "typical_run_seconds": 3.0,
                    "runs_observed": 50,
                    "rounds": 8,
                    "explanation": "8 rounds of at most 4 runs at once, times the median "
                    "duration of the transfer's latest 50 completed runs (3.0 s)",
                }
            ]
        }
    )

    duration_seconds: float | None = Field(
        description="rounds times typical_run_seconds; null when it cannot be estimated."
    )
    typical_run_seconds: float | None = Field(
        description="The median duration of the transfer's latest completed runs."
    )
    runs_observed: int = Field(description="How many completed runs the median is taken over.")
    rounds: int = Field(description="ceil(dates / max_concurrent_runs).")
    explanation: str = Field(description="How it was computed, or why there is no estimate.")


class BackfillDryRunOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "transfer_id": 7,
                    "range_start_date": "2024-01-01",
                    "range_end_date": "2024-01-31",
                    "would_be_refused": False,
                    "refusals": [],
                    "transfer_runs_total": 31,
                    "first_date": "2024-01-01",
                    "last_date": "2024-01-31",
                    "dates": ["2024-01-01", "2024-01-02", "2024-01-03"],
                    "dates_truncated": False,
                    "max_concurrent_runs": 4,
                    "max_failed_runs": None,
                    "run_order": RunOrder.OLDEST_FIRST,
                    "estimate": {
                        "duration_seconds": 24.0,
                        "typical_run_seconds": 3.0,
                        "runs_observed": 50,
                        "rounds": 8,
                        "explanation": "8 rounds of at most 4 runs at once, times the median "
                        "duration of the transfer's latest 50 completed runs (3.0 s)",
                    },
                    "estimated_end_time": "2024-02-01T09:30:24.000Z",
                }
            ]
        }
    )

    transfer_id: int
    range_start_date: date
    range_end_date: date
    would_be_refused: bool = Field(description="Whether create would answer 422 now.")
    refusals: list[RefusalOut] = Field(
        description="Every reason it would be refused, in the order create checks them "
        "(create answers the first); [] when it would be accepted."
    )
    transfer_runs_total: int = Field(description="The dates it would run (0 if none).")
    first_date: date | None = Field(description="The first date to run, in run_order.")
    last_date: date | None = Field(description="The last date to run, in run_order.")
    dates: list[date] = Field(
        description=f"The dates in the order they would start, the first {DRY_RUN_DATES} at most."
    )
    dates_truncated: bool = Field(description=f"Whether there are more than {DRY_RUN_DATES}.")
    max_concurrent_runs: int = Field(description="The cap it would have (yours or the transfer's).")
    max_failed_runs: int | None = Field(description="The failure budget it would have, if any.")
    run_order: RunOrder
    estimate: DurationEstimateOut
    estimated_end_time: UtcTimestamp | None = Field(
        description="Now plus the estimated duration, if there is one."
    )
