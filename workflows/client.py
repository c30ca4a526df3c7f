"""The client side of the backfill workflow: connecting, starting, signalling.

Used by the API, the worker and the CLI; never imported by workflow code.
"""

from datetime import timedelta

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode

from config import Settings
from observability.tracing import client_interceptors
from persistence.models import Backfill, Transfer
from workflows import search_attributes
from workflows.backfill import BackfillWorkflow
from workflows.inputs import BackfillInput, CancelRequest, RunPolicy

RPC_TIMEOUT = timedelta(seconds=5)  # an API call waits no longer on an unreachable Temporal
_INDEXED_TYPES = {
    "INT": IndexedValueType.INDEXED_VALUE_TYPE_INT,
    "KEYWORD": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
}


async def connect(settings: Settings, *, runtime: Runtime | None = None) -> Client:
    """A client on the settings' namespace: on the default runtime unless one is given (the
    worker's serves its SDK metrics), traced when `BACKFILLS_OTLP_ENDPOINT` is set."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        interceptors=client_interceptors(settings),
        runtime=runtime,
    )


async def ensure_search_attributes(client: Client, namespace: str) -> None:
    """Register the operators' search attributes; a no-op when they exist already."""
    wanted = {
        key.name: _INDEXED_TYPES[key.indexed_value_type.name] for key in search_attributes.ALL
    }
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=wanted)
        )
    except RPCError as err:
        if err.status != RPCStatusCode.ALREADY_EXISTS:
            raise


def workflow_id(backfill_id: int) -> str:
    return f"backfill-{backfill_id}"


def backfill_input(settings: Settings, backfill: Backfill, transfer: Transfer) -> BackfillInput:
    assert backfill.id is not None
    return BackfillInput(
        backfill_id=backfill.id,
        team_id=backfill.team_id,
        transfer_id=backfill.transfer_id,
        range_start=backfill.range_start_date,
        range_end=backfill.range_end_date,
        max_concurrent_runs=transfer.max_concurrent_runs,
        run_policy=RunPolicy(
            max_attempts=settings.run_max_attempts,
            initial_retry_seconds=settings.run_retry_initial_seconds,
            max_retry_seconds=settings.run_retry_max_seconds,
            timeout_seconds=settings.run_timeout_seconds,
            heartbeat_timeout_seconds=settings.run_heartbeat_timeout_seconds,
        ),
        runs_per_workflow_run=settings.runs_per_workflow_run,
    )


async def start_backfill(
    client: Client, settings: Settings, backfill: Backfill, transfer: Transfer
) -> WorkflowHandle[BackfillWorkflow, object]:
    input = backfill_input(settings, backfill, transfer)
    return await client.start_workflow(
        BackfillWorkflow.run,
        input,
        id=workflow_id(input.backfill_id),
        task_queue=settings.task_queue,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(search_attributes.TEAM_ID, input.team_id),
                SearchAttributePair(search_attributes.TRANSFER_ID, input.transfer_id),
                SearchAttributePair(search_attributes.BACKFILL_ID, input.backfill_id),
                SearchAttributePair(search_attributes.BACKFILL_STATUS, "CREATED"),
            ]
        ),
        static_summary=f"Backfill {input.backfill_id}: transfer {input.transfer_id}, "
        f"{input.range_start} to {input.range_end}",
        task_timeout=timedelta(seconds=30),
        rpc_timeout=RPC_TIMEOUT,
    )


async def signal_cancel(client: Client, backfill_id: int, user_id: int | None) -> bool:
    """Tell the workflow to stop; False when it has already closed (nothing left to stop)."""
    handle = client.get_workflow_handle(workflow_id(backfill_id))
    try:
        await handle.signal(
            BackfillWorkflow.cancel, CancelRequest(user_id=user_id), rpc_timeout=RPC_TIMEOUT
        )
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True
