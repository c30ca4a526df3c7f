"""Response shapes of the transfer-run endpoints."""

from datetime import date

from pydantic import BaseModel, ConfigDict
from pydantic.config import JsonDict

from api.schemas.common import UtcTimestamp
from persistence.models import RunType, TransferRun
from statuses import QueryStatus, RunStatus

_QUERY_DETAIL_EXAMPLE: JsonDict = {
    "duration": 1.204,
    "status": QueryStatus.SUCCESS,
    "rows": 24,
    "error_description": None,
}
_RUN_ITEM_EXAMPLE: JsonDict = {
    "id": 1001,
    "status": RunStatus.COMPLETED,
    "type": "Backfill",
    "data_date": "2024-01-01",
    "created_time": "2024-02-01T09:30:00.500Z",
    "ended_time": "2024-02-01T09:30:02.700Z",
    "total_duration": 1.25,
    "total_rows": 24,
    "message": "",
}


class QueryDetailOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_QUERY_DETAIL_EXAMPLE]})

    duration: float | None
    status: str
    rows: int
    error_description: str | None


class TransferRunItemOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_RUN_ITEM_EXAMPLE]})

    id: int
    status: str
    type: RunType
    data_date: date
    created_time: UtcTimestamp
    ended_time: UtcTimestamp | None
    total_duration: float | None
    total_rows: int
    message: str

    @classmethod
    def of(cls, run: TransferRun) -> "TransferRunItemOut":
        return cls(**_item_fields(run))


class TransferRunDetailOut(TransferRunItemOut):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_RUN_ITEM_EXAMPLE,
                    "queued_time": "2024-02-01T09:30:01.100Z",
                    "started_time": "2024-02-01T09:30:01.450Z",
                    "external_id": "backfill-42/17",
                    "query_details": [_QUERY_DETAIL_EXAMPLE],
                    "query_amount": 1,
                    "failed_query_amount": 0,
                }
            ]
        }
    )

    queued_time: UtcTimestamp | None
    started_time: UtcTimestamp | None
    external_id: str
    query_details: list[QueryDetailOut]
    query_amount: int
    failed_query_amount: int

    @classmethod
    def of(cls, run: TransferRun) -> "TransferRunDetailOut":
        details = [
            QueryDetailOut(
                duration=d.get("duration"),
                status=str(d.get("status", "")),
                rows=int(d.get("rows", 0)),
                error_description=d.get("error_description"),
            )
            for d in run.query_details
        ]
        return cls(
            **_item_fields(run),
            queued_time=run.queued_time,
            started_time=run.started_time,
            external_id=run.external_id,
            query_details=details,
            query_amount=len(details),
            failed_query_amount=sum(1 for d in details if d.status != QueryStatus.SUCCESS),
        )


def _item_fields(run: TransferRun) -> dict[str, object]:
    assert run.id is not None
    duration = None
    if run.started_time is not None and run.ended_time is not None:
        duration = round((run.ended_time - run.started_time).total_seconds(), 3)
    return {
        "id": run.id,
        "status": run.status,
        "type": RunType(run.type),
        "data_date": run.data_date,
        "created_time": run.created_time,
        "ended_time": run.ended_time,
        "total_duration": duration,
        "total_rows": run.total_rows,
        "message": run.message,
    }
