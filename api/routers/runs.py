"""Transfer runs: list a transfer's runs by data_date, read one in detail."""

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BeforeValidator

from api.deps import DbDep, ReadAccess, TeamId, TransferId, TransferRunId
from api.envelope import Envelope, error_responses, ok
from api.schemas.runs import TransferRunDetailOut, TransferRunItemOut
from persistence import runs, transfers
from persistence.runs import RunSortField, SortDirection

router = APIRouter(prefix="/teams/{team_id}", tags=["transfer runs"])


def _calendar_date(value: object) -> date:
    """An ISO date or date-time (naive or with offset) as the calendar date it names."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise ValueError("expected an ISO date or date-time")
    try:
        return date.fromisoformat(value)
    except ValueError:
        return datetime.fromisoformat(value).date()


DataDate = Annotated[date, BeforeValidator(_calendar_date)]


@router.get(
    "/transfers/{transfer_id}/runs",
    operation_id="listTransferRuns",
    summary="List a transfer's runs whose data_date is in [start_date, end_date]",
    responses=error_responses(400, 401, 403, 404, 429, 503),
)
def list_transfer_runs(
    team_id: TeamId,
    transfer_id: TransferId,
    _: ReadAccess,
    db: DbDep,
    start_date: Annotated[DataDate, Query(description="ISO date or date-time, inclusive")],
    end_date: Annotated[DataDate, Query(description="ISO date or date-time, inclusive")],
    filter_issues_only: Annotated[bool, Query(description="Only failed runs")] = False,
    sort_field: RunSortField = RunSortField.CREATED_TIME,
    sort_direction: SortDirection = SortDirection.DESC,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> Envelope[list[TransferRunItemOut]]:
    transfers.get_team_transfer(db=db, team_id=team_id, transfer_id=transfer_id)
    found = runs.list_runs(
        db=db,
        team_id=team_id,
        transfer_id=transfer_id,
        start_date=start_date,
        end_date=end_date,
        issues_only=filter_issues_only,
        sort_field=sort_field,
        sort_direction=sort_direction,
        limit=limit,
        offset=offset,
    )
    return ok([TransferRunItemOut.of(run) for run in found])


@router.get(
    "/transfer_runs/{transfer_run_id}",
    operation_id="getTransferRun",
    summary="Get one transfer run in detail",
    responses=error_responses(400, 401, 403, 404, 429, 503),
)
def get_transfer_run(
    team_id: TeamId, transfer_run_id: TransferRunId, _: ReadAccess, db: DbDep
) -> Envelope[TransferRunDetailOut]:
    run = runs.get_team_run(db=db, team_id=team_id, run_id=transfer_run_id)
    return ok(TransferRunDetailOut.of(run))
