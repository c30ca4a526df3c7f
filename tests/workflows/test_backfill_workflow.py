"""The backfill workflow as operators drive it: signals, cancellation, queries, search
attributes, and continue-as-new; against the real worker, Temporal server and database."""

import asyncio
import json
import re
from dataclasses import replace
from datetime import date

from temporalio.api.enums.v1 import EventType
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client, WorkflowExecutionStatus

from config import Settings
from persistence import backfills, transfers
from persistence.db import Database
from statuses import RunStatus
from temporal_client import backfill_input, workflow_id
from tests.support import Tenant, all_runs, wait_for_async
from tests.workflows.histories import record_history
from workflows import search_attributes
from workflows.backfill import BackfillWorkflow
from workflows.inputs import CancelRequest


def run_statuses(tenant: Tenant, transfer_id: int) -> dict[str, str]:
    return {r["data_date"]: r["status"] for r in tenant.runs(transfer_id)}


async def wait_running(tenant: Tenant, transfer_id: int, count: int) -> None:
    async def running() -> bool:
        statuses = await asyncio.to_thread(run_statuses, tenant, transfer_id)
        return list(statuses.values()).count("RUNNING") == count

    await wait_for_async(running)


async def test_cancel_signal_from_temporal_has_the_api_effect(
    tenant: Tenant, temporal_client: Client
) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=2, latency_ms=2500)
    backfill_id = tenant.create_backfill(transfer_id, "2024-05-01", "2024-05-08")[
        "transfer_backfill_id"
    ]
    await wait_running(tenant, transfer_id, 2)

    handle = temporal_client.get_workflow_handle_for(BackfillWorkflow.run, workflow_id(backfill_id))
    await handle.signal(BackfillWorkflow.cancel, CancelRequest(user_id=None))

    cancelled = await asyncio.to_thread(tenant.wait_until_status, backfill_id, "CANCELLED")
    assert cancelled["removed_user_id"] is None
    assert cancelled["removed_time"] is not None
    await handle.result()
    await record_history(temporal_client, handle.id, "cancel-signal")
    final = await asyncio.to_thread(tenant.backfill, backfill_id)
    statuses = list(run_statuses(tenant, transfer_id).values())
    assert statuses.count("COMPLETED") == 2 == final["transfer_runs_completed"]
    assert statuses.count("CANCELLED") == 6
    assert final["status"] == "CANCELLED"


async def test_cancellation_request_from_the_ui_cancels_the_backfill(
    tenant: Tenant, temporal_client: Client
) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=1, latency_ms=2500)
    backfill_id = tenant.create_backfill(transfer_id, "2024-05-01", "2024-05-04")[
        "transfer_backfill_id"
    ]
    await wait_running(tenant, transfer_id, 1)

    handle = temporal_client.get_workflow_handle_for(BackfillWorkflow.run, workflow_id(backfill_id))
    await handle.cancel()

    result = await handle.result()
    await record_history(temporal_client, handle.id, "cancellation-request")
    assert result.status == "CANCELLED"
    final = await asyncio.to_thread(tenant.backfill, backfill_id)
    assert final["status"] == "CANCELLED"
    assert final["transfer_runs_completed"] == 1
    assert sorted(run_statuses(tenant, transfer_id).values()) == [
        "CANCELLED",
        "CANCELLED",
        "CANCELLED",
        "COMPLETED",
    ]


async def test_progress_query_and_search_attributes_follow_the_record(
    tenant: Tenant, temporal_client: Client
) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=2, latency_ms=400)
    backfill_id = tenant.create_backfill(transfer_id, "2024-06-01", "2024-06-06")[
        "transfer_backfill_id"
    ]
    handle = temporal_client.get_workflow_handle_for(BackfillWorkflow.run, workflow_id(backfill_id))

    async def progressing() -> bool:
        progress = await handle.query(BackfillWorkflow.progress)
        return progress.total == 6 and progress.completed >= 1

    await wait_for_async(progressing)
    await handle.result()
    await record_history(temporal_client, handle.id, "completed")
    progress = await handle.query(BackfillWorkflow.progress)
    assert (progress.completed, progress.failed, progress.in_flight) == (6, 0, 0)
    assert progress.status == "COMPLETED"

    query = (
        f"BackfillId = {backfill_id} AND TeamId = {tenant.team_id} AND BackfillStatus = 'COMPLETED'"
    )

    async def listed() -> list[str]:
        return [w.id async for w in temporal_client.list_workflows(query)]

    assert await wait_for_async(listed) == [workflow_id(backfill_id)]
    description = await handle.describe()
    attributes = description.typed_search_attributes
    assert attributes.get(search_attributes.TRANSFER_ID) == transfer_id
    assert attributes.get(search_attributes.BACKFILL_STATUS) == "COMPLETED"
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    assert metadata.current_details == "COMPLETED: 6 completed, 0 failed, 0 running, of 6 runs"
    history = await handle.fetch_history()
    summaries = sorted(
        json.loads(event.user_metadata.summary.data)
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and event.activity_task_scheduled_event_attributes.activity_type.name == "run_transfer"
    )
    assert summaries == [f"data_date 2024-06-0{day}" for day in range(1, 7)]


ETA = r", ends about \d{4}-\d\d-\d\d \d\d:\d\d UTC"  # once a run was timed


async def test_the_current_details_count_the_runs_in_flight_at_every_change(
    tenant: Tenant, temporal_client: Client
) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=2, latency_ms=3000)
    backfill_id = tenant.create_backfill(transfer_id, "2024-06-10", "2024-06-13")[
        "transfer_backfill_id"
    ]
    handle = temporal_client.get_workflow_handle_for(BackfillWorkflow.run, workflow_id(backfill_id))

    async def details() -> str:
        metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
        return metadata.current_details

    async def shows(expected: str) -> bool:
        return await details() == expected

    async def shows_with_eta(expected: str) -> bool:
        return re.fullmatch(re.escape(expected) + ETA, await details()) is not None

    await wait_for_async(lambda: shows("RUNNING: 0 completed, 0 failed, 2 running, of 4 runs"))
    await wait_for_async(
        lambda: shows_with_eta("RUNNING: 2 completed, 0 failed, 2 running, of 4 runs")
    )
    await handle.result()
    assert await details() == "COMPLETED: 4 completed, 0 failed, 0 running, of 4 runs"


async def test_long_ranges_continue_as_new_and_still_run_every_date_once(
    tenant: Tenant, temporal_client: Client, settings: Settings
) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=3)
    db = Database(settings.resolved_database_url)
    transfer = transfers.get_team_transfer(db=db, team_id=tenant.team_id, transfer_id=transfer_id)
    backfill = backfills.create_backfill(
        db=db,
        team_id=tenant.team_id,
        transfer_id=transfer_id,
        user_id=tenant.user_id,
        range_start=date(2024, 7, 1),
        range_end=date(2024, 7, 20),
    )
    assert backfill.id is not None
    input = replace(backfill_input(settings, backfill, transfer), runs_per_workflow_run=7)

    handle = await temporal_client.start_workflow(
        BackfillWorkflow.run, input, id=workflow_id(backfill.id), task_queue=settings.task_queue
    )
    result = await handle.result()
    await record_history(
        temporal_client, handle.id, "continued-as-new-first-run", handle.first_execution_run_id
    )
    await record_history(temporal_client, handle.id, "continued-as-new-last-run")

    assert result.status == "COMPLETED"
    assert result.completed == 20
    first_run = temporal_client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id)
    history = await first_run.fetch_history()
    assert history.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    record = backfills.get_team_backfill(db=db, team_id=tenant.team_id, backfill_id=backfill.id)
    assert (record.status, record.transfer_runs_completed) == ("COMPLETED", 20)
    stored = all_runs(db, tenant.team_id, transfer_id)
    assert len(stored) == 20
    assert {r.status for r in stored} == {RunStatus.COMPLETED}


async def test_a_failed_backfill_waits_open_for_a_cancel_with_the_search_attribute_in_step(
    tenant: Tenant, temporal_client: Client
) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=2, fail_dates=["2024-08-02"])
    backfill_id = tenant.create_backfill(transfer_id, "2024-08-01", "2024-08-03")[
        "transfer_backfill_id"
    ]
    handle = temporal_client.get_workflow_handle_for(BackfillWorkflow.run, workflow_id(backfill_id))

    async def status_attribute() -> str | None:
        description = await handle.describe()
        return description.typed_search_attributes.get(search_attributes.BACKFILL_STATUS)

    async def attribute_is(status: str) -> bool:
        return await status_attribute() == status

    await wait_for_async(lambda: attribute_is("FAILED"))
    record = await asyncio.to_thread(tenant.backfill, backfill_id)
    assert record["status"] == "FAILED"
    assert record["error_report"] == [
        {
            "transfer_run_date": "2024-08-02",
            "error": "demo source: 2024-08-02 is listed in fail_dates",
        }
    ]
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    progress = await handle.query(BackfillWorkflow.progress)
    assert (progress.status, progress.completed, progress.failed) == ("FAILED", 2, 1)

    cancelled = await asyncio.to_thread(tenant.cancel, backfill_id)
    assert cancelled["status"] == "CANCELLED"
    result = await handle.result()
    await record_history(temporal_client, handle.id, "failed-backfill-cancelled-by-the-api")

    assert (result.status, result.completed, result.failed) == ("CANCELLED", 2, 1)
    assert await status_attribute() == "CANCELLED"
    assert (await asyncio.to_thread(tenant.backfill, backfill_id))["status"] == "CANCELLED"
