"""Transfers: the service's own schema of what a backfill moves."""

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter

from api.deps import DbDep, ReadAccess, SettingsDep, TeamId, TransferId, WriteAccess
from api.envelope import Envelope, error_responses, ok
from api.errors import unprocessable
from api.schemas.transfers import CreateTransferRequest, TransferOut
from config import Settings
from connectors.base import DestinationOptions, SourceOptions
from connectors.egress import EgressPolicy, refuse_protected_database
from connectors.registry import InvalidConnectorSpec, parse_destination, parse_source
from persistence import transfers

router = APIRouter(prefix="/teams/{team_id}/transfers", tags=["transfers"])
OptionsT = TypeVar("OptionsT")

# OpenAPI links: what a client (or a stateful test) can do next with the created transfer.
_THE_NEW_TRANSFER = {
    "team_id": "$request.path.team_id",
    "transfer_id": "$response.body#/data/transfer_id",
}
_CREATED_TRANSFER_LINKS = {
    operation: {"operationId": operation, "parameters": _THE_NEW_TRANSFER}
    for operation in ("getTransfer", "deleteTransfer", "createBackfill", "listTransferRuns")
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
def create_transfer(
    team_id: TeamId,
    body: CreateTransferRequest,
    caller: WriteAccess,
    db: DbDep,
    settings: SettingsDep,
) -> Envelope[TransferOut]:
    source, source_problem = _parse(parse_source, body.source)
    destination, destination_problem = _parse(parse_destination, body.destination)
    if source is None or destination is None:
        problems = "; ".join(p for p in (source_problem, destination_problem) if p)
        raise unprocessable(f"the transfer configuration is invalid: {problems}")
    _refuse_service_databases(source, destination, settings)
    transfer = transfers.create_transfer(
        db=db,
        team_id=team_id,
        user_id=caller.user_id,
        display_name=body.display_name,
        source=source.model_dump(mode="json", exclude_unset=False),
        destination=destination.model_dump(mode="json"),
        max_concurrent_runs=body.max_concurrent_runs or settings.default_max_concurrent_runs,
        max_failed_runs=body.max_failed_runs,
    )
    return ok(TransferOut.of(transfer))


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
def get_transfer(
    team_id: TeamId, transfer_id: TransferId, _: ReadAccess, db: DbDep
) -> Envelope[TransferOut]:
    return ok(
        TransferOut.of(transfers.get_team_transfer(db=db, team_id=team_id, transfer_id=transfer_id))
    )


@router.delete(
    "/{transfer_id}",
    operation_id="deleteTransfer",
    summary="Delete a transfer",
    description="Its backfills and runs stay on record. 422 while it has an incomplete backfill.",
    responses=error_responses(400, 401, 403, 404, 422, 429, 503),
)
def delete_transfer(
    team_id: TeamId, transfer_id: TransferId, _: WriteAccess, db: DbDep
) -> Envelope[TransferOut]:
    transfer = transfers.get_team_transfer(db=db, team_id=team_id, transfer_id=transfer_id)
    transfers.remove_transfer(db=db, team_id=team_id, transfer_id=transfer_id)
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


def _parse(
    parse: Callable[[dict[str, Any]], OptionsT], spec: dict[str, Any]
) -> tuple[OptionsT | None, str | None]:
    try:
        return parse(spec), None
    except InvalidConnectorSpec as exc:
        return None, str(exc)
