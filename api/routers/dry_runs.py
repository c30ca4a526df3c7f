"""A backfill's dry run: what a create with this body would do, creating nothing."""

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter

from api.backfill_rules import refusals
from api.deps import DbDep, SettingsDep, TeamId, TransferId, WriteAccess
from api.envelope import Envelope, error_responses, ok
from api.estimates import RECENT_RUNS, estimate_duration
from api.schemas.backfills import CreateBackfillRequest
from api.schemas.dry_runs import (
    DRY_RUN_DATES,
    BackfillDryRunOut,
    DurationEstimateOut,
    RefusalOut,
)
from persistence import runs, transfers
from persistence.models import RunOrder

router = APIRouter(prefix="/teams/{team_id}", tags=["backfills"])


@router.post(
    "/transfers/{transfer_id}/backfills/dry_run",
    operation_id="dryRunBackfill",
    summary="Dry run a backfill: what create would do, creating nothing",
    description="Takes the create body. Answers 200 whether or not create would accept it: "
    "the dates it would run, every reason it would be refused (the 422 create would answer), "
    "and how long it should take, from the transfer's latest completed runs and the cap.",
    responses=error_responses(400, 401, 403, 404, 429, 503),
)
def dry_run_backfill(
    team_id: TeamId,
    transfer_id: TransferId,
    body: CreateBackfillRequest,
    _: WriteAccess,
    db: DbDep,
    settings: SettingsDep,
) -> Envelope[BackfillDryRunOut]:
    transfer = transfers.get_team_transfer(db=db, team_id=team_id, transfer_id=transfer_id)
    refused = refusals(
        db=db,
        team_id=team_id,
        transfer_id=transfer_id,
        range_start=body.range_start,
        range_end=body.range_end,
        max_range_days=settings.max_range_days,
    )
    count = max(0, (body.range_end - body.range_start).days + 1)
    newest_first = body.run_order == RunOrder.NEWEST_FIRST
    step, first = (-1, body.range_end) if newest_first else (1, body.range_start)
    listed = [first + timedelta(days=step * n) for n in range(min(count, DRY_RUN_DATES))]
    cap = body.max_concurrent_runs or transfer.max_concurrent_runs
    durations = runs.recent_durations_by_transfer(
        db=db, transfer_ids=[transfer_id], per_transfer=RECENT_RUNS
    ).get(transfer_id, [])
    estimate = estimate_duration(dates=count, max_concurrent_runs=cap, durations=durations)
    end = None
    if estimate.duration_seconds is not None:
        end = datetime.now(UTC) + timedelta(seconds=estimate.duration_seconds)
    return ok(
        BackfillDryRunOut(
            transfer_id=transfer_id,
            range_start_date=body.range_start,
            range_end_date=body.range_end,
            would_be_refused=bool(refused),
            refusals=[
                RefusalOut(
                    code=r.code,
                    message=r.message,
                    overlapping_backfill_id=r.overlapping_backfill_id,
                )
                for r in refused
            ],
            transfer_runs_total=count,
            first_date=first if count else None,
            last_date=first + timedelta(days=step * (count - 1)) if count else None,
            dates=listed,
            dates_truncated=count > len(listed),
            max_concurrent_runs=cap,
            max_failed_runs=(
                transfer.max_failed_runs if body.max_failed_runs is None else body.max_failed_runs
            ),
            run_order=body.run_order,
            estimate=DurationEstimateOut(
                duration_seconds=estimate.duration_seconds,
                typical_run_seconds=estimate.typical_run_seconds,
                runs_observed=estimate.runs_observed,
                rounds=estimate.rounds,
                explanation=estimate.explanation,
            ),
            estimated_end_time=end,
        )
    )
