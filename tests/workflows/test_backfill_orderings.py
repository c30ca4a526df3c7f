"""Every ordering of cancellations, signals, failures and continue-as-new that can leave a
record stuck, on the real `BackfillWorkflow` in the time-skipping test server with same-name
activities (tests/workflows/doubles.py): each ends with the record CANCELLED or its true
final status, the workflow closed or waiting as the record says, and the `BackfillStatus`
search attribute equal to the record."""

import asyncio
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError

from activities.inputs import RECORD_MISSING
from statuses import BackfillStatus, RunStatus
from tests.support import wait_for_async
from tests.workflows.conftest import WorkerFactory
from tests.workflows.doubles import FakeRecord, backfill_input, day, start
from tests.workflows.histories import record_history
from workflows import search_attributes
from workflows.backfill import BackfillWorkflow
from workflows.inputs import CancelRequest

Handle = WorkflowHandle[BackfillWorkflow, Any]


async def reached(record: FakeRecord, gate: str) -> None:
    await asyncio.wait_for(record.gate(gate).reached.wait(), timeout=10)


async def status_attribute(handle: Handle) -> str | None:
    description = await handle.describe()
    return description.typed_search_attributes.get(search_attributes.BACKFILL_STATUS)


async def execution_status(handle: Handle) -> WorkflowExecutionStatus | None:
    return (await handle.describe()).status


async def test_a_ui_cancellation_while_planning_cancels_every_date(
    client: Client, serving: WorkerFactory
) -> None:
    record = FakeRecord()
    record.hold("plan_runs")
    async with serving(record.activities()) as queue:
        handle = await start(client, queue, backfill_input(5))
        await reached(record, "plan_runs")
        await handle.cancel()
        record.release("plan_runs")
        result = await handle.result()

    assert result.status == BackfillStatus.CANCELLED
    assert record.status == BackfillStatus.CANCELLED
    assert record.count(RunStatus.CANCELLED) == 5
    assert not [call for call in record.calls if call.startswith("run ")]
    assert await execution_status(handle) == WorkflowExecutionStatus.COMPLETED
    assert await status_attribute(handle) == BackfillStatus.CANCELLED


async def test_a_ui_cancellation_with_runs_in_flight_lets_them_finish_and_count(
    client: Client, serving: WorkerFactory
) -> None:
    record = FakeRecord()
    record.hold(f"run {day(1)}", f"run {day(2)}")
    async with serving(record.activities()) as queue:
        handle = await start(client, queue, backfill_input(5, cap=2))
        await reached(record, f"run {day(2)}")
        await handle.cancel()
        await wait_for_async(lambda: _recorded(record, BackfillStatus.CANCELLED))
        record.release(f"run {day(1)}", f"run {day(2)}")
        result = await handle.result()

    assert (result.status, result.completed, result.skipped) == ("CANCELLED", 2, 0)
    assert record.count(RunStatus.COMPLETED) == 2
    assert record.count(RunStatus.CANCELLED) == 3
    assert await status_attribute(handle) == BackfillStatus.CANCELLED


async def test_a_ui_cancellation_while_the_record_is_being_closed_keeps_its_final_status(
    client: Client, serving: WorkerFactory
) -> None:
    record = FakeRecord()
    record.hold("finish_backfill")
    async with serving(record.activities()) as queue:
        handle = await start(client, queue, backfill_input(3))
        await reached(record, "finish_backfill")
        await handle.cancel()
        record.release("finish_backfill")
        result = await handle.result()
        await record_history(client, handle.id, "ui-cancellation-while-closing")

    assert (result.status, result.completed) == ("COMPLETED", 3)
    assert record.status == BackfillStatus.COMPLETED
    assert await execution_status(handle) == WorkflowExecutionStatus.COMPLETED
    assert await status_attribute(handle) == BackfillStatus.COMPLETED


async def test_a_ui_cancellation_while_the_cancel_is_being_recorded_records_it_once(
    client: Client, serving: WorkerFactory
) -> None:
    record = FakeRecord()
    record.hold(f"run {day(1)}", "record_cancel")
    async with serving(record.activities()) as queue:
        handle = await start(client, queue, backfill_input(4, cap=1))
        await reached(record, f"run {day(1)}")
        await handle.signal(BackfillWorkflow.cancel, CancelRequest(user_id=7))
        await reached(record, "record_cancel")
        await handle.cancel()
        record.release("record_cancel", f"run {day(1)}")
        result = await handle.result()

    assert (result.status, result.completed) == ("CANCELLED", 1)
    assert record.cancelled_by == [7]
    assert record.calls.count("record_cancel") == 1
    assert await status_attribute(handle) == BackfillStatus.CANCELLED


async def test_a_ui_cancellation_after_a_continue_as_new_reaches_the_new_run(
    client: Client, serving: WorkerFactory
) -> None:
    record = FakeRecord()
    record.hold(f"run {day(3)}")
    async with serving(record.activities()) as queue:
        handle = await start(client, queue, backfill_input(6, cap=1, runs_per_workflow_run=2))
        await reached(record, f"run {day(3)}")
        latest = client.get_workflow_handle_for(BackfillWorkflow.run, handle.id)
        assert (await latest.describe()).run_id != handle.first_execution_run_id
        await latest.cancel()
        record.release(f"run {day(3)}")
        result = await handle.result()
        await record_history(client, handle.id, "ui-cancellation-after-continue-as-new")

    assert (result.status, result.completed) == ("CANCELLED", 3)
    assert record.count(RunStatus.COMPLETED) == 3
    assert record.count(RunStatus.CANCELLED) == 3
    assert await status_attribute(latest) == BackfillStatus.CANCELLED


async def test_a_failed_backfill_keeps_its_workflow_open_until_it_is_cancelled(
    client: Client, serving: WorkerFactory
) -> None:
    record = FakeRecord(failing_dates={day(2)})
    async with serving(record.activities()) as queue:
        handle = await start(client, queue, backfill_input(3))
        await wait_for_async(lambda: _attribute_is(handle, BackfillStatus.FAILED))
        assert record.status == BackfillStatus.FAILED
        assert await execution_status(handle) == WorkflowExecutionStatus.RUNNING
        progress = await handle.query(BackfillWorkflow.progress)
        assert (progress.completed, progress.failed) == (2, 1)

        await handle.signal(BackfillWorkflow.cancel, CancelRequest(user_id=5))
        result = await handle.result()
        await record_history(client, handle.id, "failed-backfill-waits-for-cancel")

    assert (result.status, result.completed, result.failed) == ("CANCELLED", 2, 1)
    assert record.status == BackfillStatus.CANCELLED
    assert record.cancelled_by == [5]
    assert await status_attribute(handle) == BackfillStatus.CANCELLED


async def test_a_failed_backfill_cancelled_from_the_ui_is_recorded_cancelled(
    client: Client, serving: WorkerFactory
) -> None:
    record = FakeRecord(failing_dates={day(1)})
    async with serving(record.activities()) as queue:
        handle = await start(client, queue, backfill_input(2))
        await wait_for_async(lambda: _attribute_is(handle, BackfillStatus.FAILED))
        await handle.cancel()
        result = await handle.result()

    assert result.status == BackfillStatus.CANCELLED
    assert record.cancelled_by == [None]
    assert await execution_status(handle) == WorkflowExecutionStatus.COMPLETED
    assert await status_attribute(handle) == BackfillStatus.CANCELLED


@pytest.mark.parametrize("vanishes_at", ["plan_runs", "finish_backfill"])
async def test_a_workflow_whose_record_is_missing_ends_at_once_saying_so(
    client: Client, serving: WorkerFactory, vanishes_at: str
) -> None:
    record = FakeRecord()
    record.hold(vanishes_at)
    async with serving(record.activities()) as queue:
        handle = await start(client, queue, backfill_input(2))
        await reached(record, vanishes_at)
        record.exists = False
        record.release(vanishes_at)
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()

    cause = failed.value.cause
    assert isinstance(cause, ApplicationError)
    assert (cause.type, cause.non_retryable) == (RECORD_MISSING, True)
    assert "not found" in cause.message
    assert record.calls.count(vanishes_at) == 1  # not retried


async def test_the_search_attribute_follows_every_transition(
    client: Client, serving: WorkerFactory
) -> None:
    record = FakeRecord()
    record.hold("mark_scheduled", f"run {day(1)}")
    async with serving(record.activities()) as queue:
        handle = await start(client, queue, backfill_input(2, cap=1))
        await reached(record, "mark_scheduled")
        record.release("mark_scheduled")
        await reached(record, f"run {day(1)}")
        assert await status_attribute(handle) == BackfillStatus.RUNNING
        record.release(f"run {day(1)}")
        await handle.result()

    assert await status_attribute(handle) == record.status == BackfillStatus.COMPLETED


async def _recorded(record: FakeRecord, status: BackfillStatus) -> bool:
    return record.status == status


async def _attribute_is(handle: Handle, status: BackfillStatus) -> bool:
    return await status_attribute(handle) == status
