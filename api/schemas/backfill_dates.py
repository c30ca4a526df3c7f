"""Response shape of a backfill's per-date view."""

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import UtcTimestamp
from persistence.runs import BackfillDate
from statuses import RunStatus


class BackfillDateOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "data_date": "2024-01-05",
                    "status": RunStatus.FAILED,
                    "transfer_run_id": 1005,
                    "attempts": 3,
                    "started_time": "2024-02-01T09:30:04.100Z",
                    "ended_time": "2024-02-01T09:30:09.350Z",
                    "total_duration": 5.25,
                    "message": "demo source: 2024-01-05 is listed in fail_dates",
                    "superseded_runs": 0,
                }
            ]
        }
    )

    data_date: date
    status: RunStatus = Field(
        description="The current run's status; a date not planned yet shows the status it "
        "will be planned in (CREATED, or CANCELLED once the backfill is cancelled)."
    )
    transfer_run_id: int | None = Field(
        description="The current run (GET …/transfer_runs/{id}); null: not planned yet."
    )
    attempts: int = Field(description="Attempts of the current run so far (0: not started).")
    started_time: UtcTimestamp | None
    ended_time: UtcTimestamp | None
    total_duration: float | None = Field(description="Seconds from started to ended.")
    message: str = Field(description="What went wrong, or empty.")
    superseded_runs: int = Field(
        description="Earlier runs of the date, replaced by a retry; they stay in the runs list."
    )

    @classmethod
    def of(cls, found: BackfillDate) -> "BackfillDateOut":
        duration = None
        if found.started_time is not None and found.ended_time is not None:
            duration = round((found.ended_time - found.started_time).total_seconds(), 3)
        return cls(
            data_date=found.data_date,
            status=found.status,
            transfer_run_id=found.run_id,
            attempts=found.attempts,
            started_time=found.started_time,
            ended_time=found.ended_time,
            total_duration=duration,
            message=found.message,
            superseded_runs=found.superseded_runs,
        )
