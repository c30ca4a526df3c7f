"""Transfers: the service's own schema of what a backfill moves."""

import json
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from api.deps import (
    AsyncDbDep,
    DbDep,
    ReadAccess,
    SettingsDep,
    TeamId,
    TemporalConnectionDep,
    TransferId,
    WriteAccess,
)
from api.envelope import Envelope, error_responses, ok
from api.errors import unprocessable
from api.schedules import delete_schedule_first, schedule_now, with_next_firings
from api.schemas.transfers import CreateTransferRequest, TransferOut, UpdateTransferRequest
from config import Settings
from connectors.base import DestinationOptions, SourceOptions
from connectors.egress import EgressPolicy, refuse_protected_database
from connectors.registry import InvalidConnectorSpec, parse_destination, parse_source
from persistence import schedules, transfers
from recurring.spec import Schedule

router = APIRouter(prefix="/teams/{team_id}/transfers", tags=["transfers"])
OptionsT = TypeVar("OptionsT")

# OpenAPI links: what a client (or a stateful test) can do next with the created transfer.
_THE_NEW_TRANSFER = {
    "team_id": "$request.path.team_id",
    "transfer_id": "$response.body#/data/transfer_id",
}
_CREATED_TRANSFER_LINKS = {
    operation: {"operationId": operation, "parameters": _THE_NEW_TRANSFER}
    for operation in (
        "getTransfer",
        "updateTransfer",
        "deleteTransfer",
        "createBackfill",
        "listTransferRuns",
    )
}


@router.post(
    "",
    operation_id="createTransfer",
    summary="Create a transfer",
    responses={
        200: {"links": _CREATED_TRANSFER_LINKS},
        **error_responses(400, 401, 403, 422, 429, 503),
    },
)
async def create_transfer(
    team_id: TeamId,
    body: CreateTransferRequest,
    caller: WriteAccess,
    database: AsyncDbDep,
    settings: SettingsDep,
    temporal: TemporalConnectionDep,
) -> Envelope[TransferOut]:
    source, source_problem = _parse(parse_source, body.source)
    destination, destination_problem = _parse(parse_destination, body.destination)
    if source is None or destination is None:
        problems = "; ".join(p for p in (source_problem, destination_problem) if p)
        raise unprocessable(f"the transfer configuration is invalid: {problems}")
    _refuse_service_databases(source, destination, settings)
    schedule = _checked_schedule(body.schedule, settings)
    transfer = await database.run(
        lambda db: transfers.create_transfer(
            db=db,
            team_id=team_id,
            user_id=caller.user_id,
            display_name=body.display_name,
            source=source.model_dump(mode="json", exclude_unset=False),
            destination=destination.model_dump(mode="json"),
            max_concurrent_runs=body.max_concurrent_runs or settings.default_max_concurrent_runs,
            max_failed_runs=body.max_failed_runs,
            schedule=schedule.model_dump(mode="json") if schedule else None,
        )
    )
    return ok(await schedule_now(transfer, database, temporal, settings))


@router.get(
    "",
    operation_id="listTransfers",
    summary="List the team's transfers",
    responses=error_responses(400, 401, 403, 429, 503),
)
def list_transfers(team_id: TeamId, _: ReadAccess, db: DbDep) -> Envelope[list[TransferOut]]:
    return ok([TransferOut.of(t) for t in transfers.list_transfers(db=db, team_id=team_id)])


@router.get(
    "/{transfer_id}",
    operation_id="getTransfer",
    summary="Get one transfer",
    responses=error_responses(400, 401, 403, 404, 429, 503),
)
async def get_transfer(
    team_id: TeamId,
    transfer_id: TransferId,
    _: ReadAccess,
    database: AsyncDbDep,
    temporal: TemporalConnectionDep,
) -> Envelope[TransferOut]:
    transfer = await database.run(
        lambda db: transfers.get_team_transfer(db=db, team_id=team_id, transfer_id=transfer_id)
    )
    return ok(await with_next_firings(transfer, temporal))


@router.patch(
    "/{transfer_id}",
    operation_id="updateTransfer",
    summary="Change a transfer's schedule",
    description="Replace the schedule (`schedule`), remove it (`schedule: null`), or pause "
    "and resume it (`schedule_paused`, with `schedule_paused_reason`). The record changes "
    "first; Temporal's Schedule `transfer-<id>` follows at once, or, while Temporal cannot "
    "be reached, as soon as it can (`schedule_state.applied` says which). 422 when pausing "
    "a transfer without a schedule.",
    responses=error_responses(400, 401, 403, 404, 422, 429, 503),
)
async def update_transfer(
    team_id: TeamId,
    transfer_id: TransferId,
    body: UpdateTransferRequest,
    caller: WriteAccess,
    database: AsyncDbDep,
    settings: SettingsDep,
    temporal: TemporalConnectionDep,
) -> Envelope[TransferOut]:
    change = body.change(caller.user_id, _checked_schedule(body.schedule, settings))
    transfer = await database.run(
        lambda db: schedules.change_schedule(
            db=db, team_id=team_id, transfer_id=transfer_id, change=change
        )
    )
    return ok(await schedule_now(transfer, database, temporal, settings))


@router.delete(
    "/{transfer_id}",
    operation_id="deleteTransfer",
    summary="Delete a transfer",
    description="Its backfills and runs stay on record. 422 while it has an incomplete "
    "backfill. Its Temporal Schedule, if any, is deleted first: 503 (and nothing deleted) "
    "while Temporal cannot be reached.",
    responses=error_responses(400, 401, 403, 404, 422, 429, 503),
)
async def delete_transfer(
    team_id: TeamId,
    transfer_id: TransferId,
    _: WriteAccess,
    database: AsyncDbDep,
    settings: SettingsDep,
    temporal: TemporalConnectionDep,
) -> Envelope[TransferOut]:
    transfer = await database.run(
        lambda db: transfers.can_remove_transfer(db=db, team_id=team_id, transfer_id=transfer_id)
    )
    await delete_schedule_first(transfer, temporal)
    removed = await database.run(
        lambda db: transfers.remove_transfer(db=db, team_id=team_id, transfer_id=transfer_id)
    )
    await schedule_now(removed, database, temporal, settings)  # marks the removal applied
    return ok(TransferOut.of(transfer))


def _refuse_service_databases(
    source: SourceOptions, destination: DestinationOptions, settings: Settings
) -> None:
    """422 for a connector URL naming one of the service's own databases (the run checks
    again, once `${NAME}` references are resolved and host names looked up)."""
    protected = EgressPolicy.from_settings(settings).protected_databases
    for side, options in (("source", source), ("destination", destination)):
        if options.database_url is None:
            continue
        try:
            refuse_protected_database(options.database_url, protected)
        except ValueError as exc:
            raise unprocessable(
                f"the transfer configuration is invalid: {side}.url: {exc}"
            ) from None


def _checked_schedule(spec: dict[str, Any] | None, settings: Settings) -> Schedule | None:
    """The request's schedule, checked as tenant input; 422 naming every problem."""
    if spec is None:
        return None
    try:  # strictly as JSON: a `true` is no number, `"daily"` names the enum
        schedule = Schedule.model_validate_json(json.dumps(spec), strict=True)
    except ValidationError as exc:
        problems = "; ".join(_problem(error) for error in exc.errors())
        raise unprocessable(f"the schedule is invalid: {problems}") from None
    shortest = settings.schedule_min_interval_seconds
    if schedule.interval_seconds and schedule.interval_seconds < shortest:
        raise unprocessable(
            f"the schedule is invalid: interval_seconds must be at least {shortest}"
        )
    return schedule


def _problem(error: ErrorDetails) -> str:
    where = ".".join(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def _parse(
    parse: Callable[[dict[str, Any]], OptionsT], spec: dict[str, Any]
) -> tuple[OptionsT | None, str | None]:
    try:
        return parse(spec), None
    except InvalidConnectorSpec as exc:
        return None, str(exc)
