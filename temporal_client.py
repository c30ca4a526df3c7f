"""The client side of Temporal: connecting, registering the search attributes, turning a
backfill's rows into its workflow's input, starting and signalling the workflows, and
listing the ones that closed.

Used by the API, the worker, the CLI (the dev server's search attributes) and the reconcile
activity, which the worker hands a `BackfillWorkflowClient`. Workflow code never imports it
(tests/test_import_layers.py): it imports the ORM and the settings, and starts workflows.
"""

import logging
from datetime import timedelta
from enum import StrEnum

from pydantic import TypeAdapter
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode

from config import Settings
from observability.tracing import client_interceptors
from persistence.models import Backfill, RunType, Transfer
from persistence.outbox import PendingSignal
from statuses import BackfillStatus
from workflows import search_attributes
from workflows.backfill import BACKFILL_WORKFLOW, BackfillWorkflow
from workflows.inputs import (
    BackfillInput,
    CancelRequest,
    LimitsRequest,
    PauseRequest,
    ResumeRequest,
    RetryRequest,
    RunPolicy,
)
from workflows.reconciler import RECONCILER_ID, ReconcilerInput, ReconcilerWorkflow

log = logging.getLogger("backfills.temporal")
RPC_TIMEOUT = timedelta(seconds=5)  # an API call waits no longer on an unreachable Temporal
# A search attribute's value type as the operator service and the dev server's flag name it.
_INDEXED_TYPES = {
    "INT": (IndexedValueType.INDEXED_VALUE_TYPE_INT, "Int"),
    "KEYWORD": (IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD, "Keyword"),
    "BOOL": (IndexedValueType.INDEXED_VALUE_TYPE_BOOL, "Bool"),
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
        key.name: _INDEXED_TYPES[key.indexed_value_type.name][0] for key in search_attributes.ALL
    }
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=wanted)
        )
    except RPCError as err:
        if err.status != RPCStatusCode.ALREADY_EXISTS:
            raise


def search_attribute_types() -> dict[str, str]:
    """The search attributes by name, with their types as `temporal server start-dev
    --search-attribute Name=Type` takes them."""
    return {
        key.name: _INDEXED_TYPES[key.indexed_value_type.name][1] for key in search_attributes.ALL
    }


def workflow_id(backfill_id: int) -> str:
    return f"backfill-{backfill_id}"


def run_policy(settings: Settings) -> RunPolicy:
    """How every transfer run, of a backfill or recurring, is retried and timed out."""
    return RunPolicy(
        max_attempts=settings.run_max_attempts,
        initial_retry_seconds=settings.run_retry_initial_seconds,
        max_retry_seconds=settings.run_retry_max_seconds,
        timeout_seconds=settings.run_timeout_seconds,
        heartbeat_timeout_seconds=settings.run_heartbeat_timeout_seconds,
    )


def backfill_input(settings: Settings, backfill: Backfill, transfer: Transfer) -> BackfillInput:
    assert backfill.id is not None
    return BackfillInput(
        backfill_id=backfill.id,
        team_id=backfill.team_id,
        transfer_id=backfill.transfer_id,
        range_start=backfill.range_start_date,
        range_end=backfill.range_end_date,
        max_concurrent_runs=backfill.max_concurrent_runs or transfer.max_concurrent_runs,
        run_policy=run_policy(settings),
        runs_per_workflow_run=settings.runs_per_workflow_run,
        run_order=backfill.run_order,
        max_failed_runs=backfill.max_failed_runs,
        paused=backfill.paused,
        paused_reason=backfill.paused_reason,
        records_task_queue=settings.resolved_records_task_queue,
        planned_at_create=backfill.retry_of_backfill_id is not None,  # exactly its dates
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
        # a backfill has one workflow, ever: a start retried after an ambiguous answer, or
        # by the reconciler, never runs a second one (nor revives one an operator ended)
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(search_attributes.TEAM_ID, input.team_id),
                SearchAttributePair(search_attributes.TRANSFER_ID, input.transfer_id),
                SearchAttributePair(search_attributes.BACKFILL_ID, input.backfill_id),
                SearchAttributePair(search_attributes.BACKFILL_STATUS, BackfillStatus.CREATED),
                SearchAttributePair(search_attributes.BACKFILL_PAUSED, backfill.paused),
                SearchAttributePair(search_attributes.RUN_TYPE, RunType.BACKFILL),
            ]
        ),
        static_summary=f"Backfill {input.backfill_id}: transfer {input.transfer_id}, "
        f"{input.range_start} to {input.range_end}",
        task_timeout=timedelta(seconds=30),
        rpc_timeout=RPC_TIMEOUT,
    )


class StartOutcome(StrEnum):
    STARTED = "STARTED"  # the workflow exists (this call or an earlier one created it)
    NOT_STARTED = "NOT_STARTED"  # Temporal answered, and it has no such workflow
    UNKNOWN = "UNKNOWN"  # Temporal did not answer: it may or may not have created it


async def start_backfill_resolving_doubt(
    client: Client, settings: Settings, backfill: Backfill, transfer: Transfer
) -> StartOutcome:
    """Start the backfill's workflow, and when the start fails, find out whether it was
    created anyway (a timeout after the server acted) by describing it, then retry once:
    a start is idempotent by workflow id, so no retry ever makes a second workflow."""
    assert backfill.id is not None
    for _ in range(2):
        try:
            await start_backfill(client, settings, backfill, transfer)
            return StartOutcome.STARTED
        except WorkflowAlreadyStartedError:
            return StartOutcome.STARTED
        except Exception as exc:
            log.warning("starting the workflow of backfill %s failed: %s", backfill.id, exc)
        try:
            if await backfill_workflow_status(client, backfill.id) is not None:
                return StartOutcome.STARTED
        except Exception as exc:
            log.warning("Temporal did not answer about backfill %s: %s", backfill.id, exc)
            return StartOutcome.UNKNOWN
    return StartOutcome.NOT_STARTED


async def signal_backfill(client: Client, backfill_id: int, signal: str, arg: object) -> bool:
    """Send one of the backfill workflow's signals (`cancel`, `pause`, `resume`,
    `set_limits`, `retry`); False when the workflow has already closed."""
    handle = client.get_workflow_handle(workflow_id(backfill_id))
    try:
        await handle.signal(signal, arg, rpc_timeout=RPC_TIMEOUT)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


# The outbox's signals as the workflow's inputs; each adapter built once, not per send.
SIGNAL_INPUTS: dict[str, TypeAdapter[object]] = {
    name: TypeAdapter(request)
    for name, request in (
        ("cancel", CancelRequest),
        ("pause", PauseRequest),
        ("resume", ResumeRequest),
        ("set_limits", LimitsRequest),
        ("retry", RetryRequest),
    )
}


async def send_queued_signal(client: Client, signal: PendingSignal) -> bool:
    """Send a signal from the outbox, its row id as its sequence; False: workflow closed."""
    arg = SIGNAL_INPUTS[signal.name].validate_python({**signal.payload, "sequence": signal.id})
    return await signal_backfill(client, signal.backfill_id, signal.name, arg)


async def open_backfill_ids(client: Client) -> set[int]:
    """The backfill ids of the open backfill workflows, as visibility lists them (it may lag
    a moment behind a start; `backfill_workflow_status` is the truth for one id)."""
    query = f"WorkflowType = '{BACKFILL_WORKFLOW}' AND ExecutionStatus = 'Running'"
    found: set[int] = set()
    async for execution in client.list_workflows(query, rpc_timeout=RPC_TIMEOUT):
        backfill_id = execution.typed_search_attributes.get(search_attributes.BACKFILL_ID)
        if backfill_id is not None:
            found.add(backfill_id)
    return found


async def backfill_workflow_status(
    client: Client, backfill_id: int
) -> WorkflowExecutionStatus | None:
    """The status of the backfill's latest workflow run; None when Temporal has none."""
    handle = client.get_workflow_handle(workflow_id(backfill_id))
    try:
        description = await handle.describe(rpc_timeout=RPC_TIMEOUT)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return description.status


def reconciler_input(settings: Settings) -> ReconcilerInput:
    return ReconcilerInput(
        interval_seconds=settings.reconcile_interval_seconds,
        created_grace_seconds=settings.reconcile_created_grace_seconds,
        records_task_queue=settings.resolved_records_task_queue,
    )


async def ensure_reconciler(client: Client, settings: Settings) -> None:
    """Start the reconciler workflow unless it runs already (every worker asks)."""
    await client.start_workflow(
        ReconcilerWorkflow.run,
        reconciler_input(settings),
        id=RECONCILER_ID,
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


class BackfillWorkflowClient:
    """The backfill workflows as the reconcile activity drives them (its `BackfillWorkflows`):
    the worker makes one and passes it in, so that activities never import this module."""

    def __init__(self, client: Client, settings: Settings) -> None:
        self.client = client
        self.settings = settings

    async def start(self, backfill: Backfill, transfer: Transfer) -> bool:
        """Start the backfill's workflow; False when one exists already, open or closed."""
        try:
            await start_backfill(self.client, self.settings, backfill, transfer)
        except WorkflowAlreadyStartedError:
            return False
        return True

    async def open_backfill_ids(self) -> set[int]:
        return await open_backfill_ids(self.client)

    async def status(self, backfill_id: int) -> WorkflowExecutionStatus | None:
        return await backfill_workflow_status(self.client, backfill_id)
