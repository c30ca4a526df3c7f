"""A backfill's dates, one entry each with its current run: a page is one query, so a client
draws the calendar of a century-long backfill in a few pages."""

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import BackfillId, DbDep, ReadAccess, TeamId
from api.envelope import Envelope, error_responses, ok
from api.schemas.backfill_dates import BackfillDateOut
from api.schemas.common import MAX_INT
from persistence import backfills, runs
from statuses import RunStatus

router = APIRouter(prefix="/teams/{team_id}", tags=["backfills"])


@router.get(
    "/backfills/{backfill_id}/dates",
    operation_id="listBackfillDates",
    summary="List a backfill's dates with the current status of each",
    description="One entry per date of the range (a backfill that retries a cancelled one: "
    "per date it retries), by date: its current run's status, run "
    "id, attempts, duration and message, and how many earlier runs a retry superseded. A "
    "date not planned yet has no run id. `status` (repeatable) keeps only those statuses.",
    responses=error_responses(400, 401, 403, 404, 429, 503),
)
def list_backfill_dates(
    team_id: TeamId,
    backfill_id: BackfillId,
    _: ReadAccess,
    db: DbDep,
    status: Annotated[
        list[RunStatus] | None, Query(description="Only dates in these statuses")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
) -> Envelope[list[BackfillDateOut]]:
    backfill = backfills.get_team_backfill(db=db, team_id=team_id, backfill_id=backfill_id)
    found = runs.backfill_dates(
        db=db,
        backfill=backfill,
        statuses=tuple(dict.fromkeys(status)) if status else None,
        limit=limit,
        offset=offset,
    )
    return ok([BackfillDateOut.of(entry) for entry in found])
