"""Request and response shapes of the transfer endpoints (the service's own schema)."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import MAX_INT, UtcTimestamp
from connectors.masking import masked
from persistence.models import Transfer


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

    @classmethod
    def of(cls, transfer: Transfer) -> "TransferOut":
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
        )
