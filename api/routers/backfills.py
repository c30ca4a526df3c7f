"""Backfills: create, read, list the incomplete ones, cancel."""

import logging
from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import Field
from temporalio.client import Client, WorkflowExecutionStatus

from api.backfill_rules import range_refusal
from api.backfill_views import backfill_views, backfill_views_in_chunks
from api.deps import (
    MAX_ID,
    AsyncDatabase,
    AsyncDbDep,
    BackfillId,
    DbDep,
    IdempotencyKeyHeader,
    ReadAccess,
    SettingsDep,
    TeamId,
    TemporalConnectionDep,
    TemporalDep,
    TransferId,
    WriteAccess,
)
from api.envelope import Envelope, error_responses, ok, ok_streamed
from api.errors import kept_but_not_started, service_unavailable, unprocessable
from api.idempotency import REPLAYED, REPLAYED_HEADER, request_digest
from api.schemas.backfills import (
    BackfillOut,
    CreateBackfillRequest,
    RetryBackfillRequest,
    UpdateBackfillRequest,
)
from api.signal_outbox import send_signals, send_soon
from api.temporal import TemporalConnection
from config import Settings
from persistence import backfills, transfers
from persistence.db import Database
from persistence.models import Backfill, Transfer
from statuses import BackfillStatus
from temporal_client import (
    StartOutcome,
    backfill_workflow_status,
    start_backfill_resolving_doubt,
)

log = logging.getLogger("backfills.api")
router = APIRouter(prefix="/teams/{team_id}", tags=["backfills"])

# OpenAPI links: what a client (or a stateful test) can do next with the created backfill.
_THE_NEW_BACKFILL = {
    "team_id": "$request.path.team_id",
    "backfill_id": "$response.body#/data/transfer_backfill_id",
}
_CREATED_BACKFILL_LINKS = {
    "getBackfill": {"operationId": "getBackfill", "parameters": _THE_NEW_BACKFILL},
    "cancelBackfill": {"operationId": "cancelBackfill", "parameters": _THE_NEW_BACKFILL},
    "listBackfillDates": {"operationId": "listBackfillDates", "parameters": _THE_NEW_BACKFILL},
    "getLatestBackfill": {
        "operationId": "getLatestBackfill",
        "parameters": {
            "team_id": "$request.path.team_id",
            "transfer_id": "$response.body#/data/transfer_id",
        },
    },
}


@router.post(
    "/transfers/{transfer_id}/backfills",
    operation_id="createBackfill",
    summary="Create a backfill",
    description="Re-process every date of the range, one transfer run per date. Answers at "
    "once with the CREATED backfill; processing is asynchronous. With an `Idempotency-Key`, "
    "a retry of the same request within 24 h answers the backfill the first one made.",
    responses={
        200: {"links": _CREATED_BACKFILL_LINKS, "headers": REPLAYED_HEADER},
        **error_responses(400, 401, 403, 404, 422, 429, 503),
    },
)
async def create_backfill(
    team_id: TeamId,
    transfer_id: TransferId,
    body: CreateBackfillRequest,
    caller: WriteAccess,
    database: AsyncDbDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Envelope[BackfillOut]:
    digest = request_digest(transfer_id, body)
    if idempotency_key is not None:
        key = idempotency_key
        earlier = await database.run(
            lambda db: backfills.keyed_backfill(
                db=db, team_id=team_id, idempotency_key=key, request_digest=digest
            )
        )
        if earlier is not None:
            return await _replayed(database, response, earlier)
    _check_range(body, settings)
    transfer = await database.run(
        lambda db: transfers.get_team_transfer(db=db, team_id=team_id, transfer_id=transfer_id)
    )
    created = await database.run(
        lambda db: _insert_backfill(
            db, team_id, transfer_id, caller.user_id, body, idempotency_key, digest
        )
    )
    if created.replayed:
        return await _replayed(database, response, created.backfill)
    backfill = created.backfill
    await _start(backfill, transfer, database, settings, temporal)
    return ok((await database.run(lambda db: _with_reports(db, [backfill])))[0])


async def _start(
    backfill: Backfill,
    transfer: Transfer,
    database: AsyncDatabase,
    settings: Settings,
    temporal: Client,
) -> None:
    """Start a new backfill's workflow, or answer 503: dropping the record when Temporal has
    no workflow for it, keeping it (and saying so) when Temporal did not answer."""
    outcome = await start_backfill_resolving_doubt(temporal, settings, backfill, transfer)
    if outcome == StartOutcome.NOT_STARTED:
        backfill_id = backfill.id
        assert backfill_id is not None
        await database.run(
            lambda db: backfills.discard_unstarted_backfill(db=db, backfill_id=backfill_id)
        )
        raise service_unavailable("Temporal")
    if outcome == StartOutcome.UNKNOWN:
        raise kept_but_not_started(backfill.id, settings.reconcile_created_grace_seconds)


@router.get(
    "/backfills",
    operation_id="listIncompleteBackfills",
    summary="List the team's incomplete backfills",
    description="Backfills in CREATED, SCHEDULED, RUNNING or FAILED, newest first: all of "
    "them, or `limit` of them after the first `offset`. `status` (repeatable) lists those "
    "statuses instead, final ones included; `transfer_id` (repeatable) keeps only those "
    "transfers' backfills.",
    response_model=Envelope[list[BackfillOut]],
    responses=error_responses(400, 401, 403, 429, 503),
)
def list_incomplete_backfills(
    team_id: TeamId,
    _: ReadAccess,
    db: DbDep,
    limit: Annotated[int | None, Query(ge=1, le=10_000, description="At most this many")] = None,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1, description="Skip this many")] = 0,
    status: Annotated[
        list[BackfillStatus] | None,
        Query(description="Only backfills in these statuses (default: the incomplete ones)"),
    ] = None,
    transfer_id: Annotated[
        list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None,
        Query(max_length=100, description="Only backfills of these transfers"),
    ] = None,
) -> StreamingResponse:
    found = backfills.list_team_backfills(
        db=db,
        team_id=team_id,
        statuses=list(dict.fromkeys(status)) if status else None,
        transfer_ids=list(dict.fromkeys(transfer_id)) if transfer_id else None,
        limit=limit,
        offset=offset,
    )
    return ok_streamed(backfill_views_in_chunks(db, found))


@router.get(
    "/backfills/{backfill_id}",
    operation_id="getBackfill",
    summary="Get one backfill with its live progress",
    responses=error_responses(400, 401, 403, 404, 429, 503),
)
def get_backfill(
    team_id: TeamId, backfill_id: BackfillId, _: ReadAccess, db: DbDep
) -> Envelope[BackfillOut]:
    backfill = backfills.get_team_backfill(db=db, team_id=team_id, backfill_id=backfill_id)
    return ok(_with_reports(db, [backfill])[0])


@router.get(
    "/transfers/{transfer_id}/backfills/latest",
    operation_id="getLatestBackfill",
    summary="Get the transfer's most recently created backfill, in any status",
    responses=error_responses(400, 401, 403, 404, 429, 503),
)
def get_latest_backfill(
    team_id: TeamId, transfer_id: TransferId, _: ReadAccess, db: DbDep
) -> Envelope[BackfillOut]:
    backfill = backfills.latest_backfill(db=db, team_id=team_id, transfer_id=transfer_id)
    return ok(_with_reports(db, [backfill])[0])


@router.patch(
    "/backfills/{backfill_id}",
    operation_id="cancelBackfill",
    summary="Cancel, pause, resume or change a backfill",
    description='`{"status": "CANCELLED"}` cancels: no run starts any more, runs '
    "already running finish and still count; 422 on a COMPLETED or CANCELLED backfill. "
    "Otherwise `paused` (true/false, with an optional `paused_reason`), "
    "`max_concurrent_runs` and `max_failed_runs` (null: no failure budget) change an "
    "incomplete backfill from its next scheduling step on. The status keeps its six values: "
    "a pause shows in `paused`.",
    responses=error_responses(400, 401, 403, 404, 422, 429, 503),
)
async def cancel_backfill(
    team_id: TeamId,
    backfill_id: BackfillId,
    body: UpdateBackfillRequest,
    caller: WriteAccess,
    database: AsyncDbDep,
    temporal: TemporalConnectionDep,
) -> Envelope[BackfillOut]:
    """Answers at the commit: the workflow's signal goes beside the answer (send_soon), and
    the outbox sends it again until Temporal takes it."""
    if not body.is_cancel:
        return await _change_control(team_id, backfill_id, body, caller.user_id, database, temporal)
    cancelled = await database.run(
        lambda db: backfills.cancel_backfill(
            db=db,
            backfill_id=backfill_id,
            user_id=caller.user_id,
            team_id=team_id,
            signal_workflow=True,
        )
    )
    send_soon(database, temporal, backfill_id)
    report = await database.run(lambda db: _with_reports(db, [cancelled]))
    return ok(report[0])


async def _change_control(
    team_id: int,
    backfill_id: int,
    body: UpdateBackfillRequest,
    user_id: int,
    database: AsyncDatabase,
    temporal: TemporalConnection,
) -> Envelope[BackfillOut]:
    """The record and the signals telling the workflow, in one transaction; then the
    signals go beside the answer (those Temporal does not take now, the outbox sends again)."""
    reason = (body.paused_reason or f"paused by user {user_id}") if body.paused else None
    changed = await database.run(
        lambda db: backfills.change_control(
            db=db,
            team_id=team_id,
            backfill_id=backfill_id,
            paused=body.paused,
            paused_reason=reason,
            max_concurrent_runs=body.max_concurrent_runs,
            max_failed_runs=body.max_failed_runs,
            remove_failure_budget=body.removes_failure_budget,
            signal_workflow=True,
        )
    )
    send_soon(database, temporal, backfill_id)
    report = await database.run(lambda db: _with_reports(db, [changed]))
    return ok(report[0])


@router.post(
    "/backfills/{backfill_id}/retry",
    operation_id="retryBackfill",
    summary="Retry a backfill's failed or undone dates",
    description='The body is `{}` (every date) or `{"data_dates": [...]}`. On a FAILED '
    "backfill: its failed dates run again in place; it is RUNNING again and ends COMPLETED "
    "if they now succeed. The failed runs stay in the runs list. On a CANCELLED backfill: a "
    "new backfill over exactly the dates it did not complete (its `retry_of_backfill_id` "
    "names the cancelled one, which stays as it is). 422 on any other status, or on dates "
    "that did not fail or were not left undone.",
    responses=error_responses(400, 401, 403, 404, 422, 429, 503),
)
async def retry_backfill(
    team_id: TeamId,
    backfill_id: BackfillId,
    caller: WriteAccess,
    database: AsyncDbDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    body: RetryBackfillRequest,
) -> Envelope[BackfillOut]:
    dates = body.data_dates
    backfill = await database.run(
        lambda db: backfills.get_team_backfill(db=db, team_id=team_id, backfill_id=backfill_id)
    )
    if backfill.status == BackfillStatus.CANCELLED:
        retry = await database.run(
            lambda db: backfills.create_retry_backfill(
                db=db,
                team_id=team_id,
                backfill_id=backfill_id,
                user_id=caller.user_id,
                data_dates=dates,
            )
        )
        transfer = await database.run(
            lambda db: transfers.get_transfer_for_worker(db=db, transfer_id=retry.transfer_id)
        )
        await _start(retry, transfer, database, settings, temporal)
        return ok((await database.run(lambda db: _with_reports(db, [retry])))[0])
    if backfill.status != BackfillStatus.FAILED:
        raise unprocessable(
            f"the backfill is {backfill.status}: only a FAILED backfill (its failed dates, in "
            "place) or a CANCELLED one (a new backfill of the dates it left undone) can be "
            "retried"
        )
    await _check_workflow_waits(temporal, backfill_id)
    await database.run(
        lambda db: backfills.retry_failed_dates(
            db=db,
            backfill_id=backfill_id,
            data_dates=dates,
            strict=True,
            team_id=team_id,
            signal_workflow=True,
        )
    )
    await send_signals(database, temporal, backfill_id=backfill_id)
    updated = await database.run(
        lambda db: _with_reports(
            db, [backfills.get_team_backfill(db=db, team_id=team_id, backfill_id=backfill_id)]
        )
    )
    return ok(updated[0])


async def _check_workflow_waits(temporal: Client, backfill_id: int) -> None:
    """A FAILED backfill is retried by its workflow, which waits open for it (workflows
    started before retries existed closed instead)."""
    try:
        status = await backfill_workflow_status(temporal, backfill_id)
    except Exception:
        raise service_unavailable("Temporal") from None
    if status != WorkflowExecutionStatus.RUNNING:
        raise unprocessable(
            "the backfill's workflow has ended (it failed before retries existed, or an "
            "operator ended it), so its dates cannot be retried in place: cancel it, then "
            "retry it to make a new backfill of the dates it left undone"
        )


def _insert_backfill(
    db: Database,
    team_id: int,
    transfer_id: int,
    user_id: int,
    body: CreateBackfillRequest,
    idempotency_key: str | None,
    digest: str,
) -> backfills.KeyedCreate:
    if idempotency_key is None:
        backfill = backfills.create_backfill(
            db=db,
            team_id=team_id,
            transfer_id=transfer_id,
            user_id=user_id,
            range_start=body.range_start,
            range_end=body.range_end,
            max_concurrent_runs=body.max_concurrent_runs,
            max_failed_runs=body.max_failed_runs,
            run_order=body.run_order,
        )
        return backfills.KeyedCreate(backfill, replayed=False)
    return backfills.create_backfill_once(
        db=db,
        team_id=team_id,
        transfer_id=transfer_id,
        user_id=user_id,
        range_start=body.range_start,
        range_end=body.range_end,
        max_concurrent_runs=body.max_concurrent_runs,
        max_failed_runs=body.max_failed_runs,
        run_order=body.run_order,
        idempotency_key=idempotency_key,
        request_digest=digest,
    )


async def _replayed(
    database: AsyncDatabase, response: Response, backfill: Backfill
) -> Envelope[BackfillOut]:
    """The answer to a create whose key made `backfill` earlier: the backfill as it is now."""
    response.headers[REPLAYED] = "true"
    return ok((await database.run(lambda db: _with_reports(db, [backfill])))[0])


def _check_range(body: CreateBackfillRequest, settings: Settings) -> None:
    problem = range_refusal(
        body.range_start, body.range_end, max_range_days=settings.max_range_days
    )
    if problem is not None:
        raise unprocessable(problem)


def _with_reports(db: Database, found: list[Backfill]) -> list[BackfillOut]:
    """The backfills with their error reports, runs in flight, caps and estimated ends."""
    return backfill_views(db, found)
