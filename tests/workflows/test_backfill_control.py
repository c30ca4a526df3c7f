"""Steering a running backfill through its workflow's signals: pause and resume, live limits,
the failure budget, run order and retry in place, in the time-skipping test server with
same-name activities (tests/workflows/doubles.py). The API sends the same signals."""

import asyncio
from dataclasses import replace
from typing import Any

from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client, WorkflowHandle

from statuses import BackfillStatus, RunOrder, RunStatus
from tests.support import wait_for_async
from tests.workflows.conftest import WorkerFactory
from tests.workflows.doubles import FakeRecord, backfill_input, day, start
from tests.workflows.histories import record_history
from workflows import search_attributes
from workflows.backfill import OPERATOR_PAUSE, BackfillWorkflow
from workflows.inputs import (
    CancelRequest,
    LimitsRequest,
    PauseRequest,
    Progress,
    ResumeRequest,
    RetryRequest,
)

Handle = WorkflowHandle[BackfillWorkflow, Any]


async def reached(record: FakeRecord, gate: str) -> None:
    await asyncio.wait_for(record.gate(gate).reached.wait(), timeout=10)


async def progress(handle: Handle) -> Progress:
    return await handle.query(BackfillWorkflow.progress)


async def until(probe: Any) -> None:
    await wait_for_async(probe, within=10, interval=0.05)


async def test_a_paused_backfill_starts_nothing_until_resumed_and_its_runs_in_flight_finish(
    client: Client, serving: WorkerFactory
) -> None:
    record = FakeRecord()
    record.hold(f"run {day(1)}", f"run {day(2)}")
    async with serving(record.activities()) as queue:
        handle = await start(client, queue, backfill_input(4, cap=2))
        await reached(record, f"run {day(2)}")
        await handle.signal(BackfillWorkflow.pause, PauseRequest(reason="source maintenance"))
        await until(lambda: _recorded_pause(record, True))
        record.release(f"run {day(1)}", f"run {day(2)}")
        await until(lambda: _completed(handle, 2))
        await asyncio.sleep(0.3)  # time for a wrongly started run to show
        assert sorted(record.started_order) == [day(1), day(2)]  # started together
        paused = await progress(handle)
        assert (paused.paused, paused.paused_reason) == (True, "source maintenance")
        description = await handle.describe()
        assert description.typed_search_attributes.get(search_attributes.BACKFILL_PAUSED)

        await handle.signal(BackfillWorkflow.resume, ResumeRequest())
        result = await handle.result()
        await record_history(client, handle.id, "paused-and-resumed")

    assert (result.status, result.completed) == ("COMPLETED", 4)
    assert record.controls[-1].paused is False
    description = await handle.describe()
    assert description.typed_search_attributes.get(search_attributes.BACKFILL_PAUSED) is False


async def test_a_paused_backfill_can_still_be_cancelled(
    client: Client, serving: WorkerFactory
) -> None:
    record = FakeRecord()
    record.hold(f"run {day(1)}")
    async with serving(record.activities()) as queue:
        handle = await start(client, queue, backfill_input(3, cap=1))
        await reached(record, f"run {day(1)}")
        await handle.signal(BackfillWorkflow.pause)
        await handle.signal(BackfillWorkflow.cancel, CancelRequest(user_id=3))
        record.release(f"run {day(1)}")
        result = await handle.result()

    assert (result.status, result.completed) == ("CANCELLED", 1)
    assert record.count(RunStatus.CANCELLED) == 2
    assert record.controls[-1].paused_reason == OPERATOR_PAUSE


async def test_a_lower_cap_waits_for_runs_in_flight_and_a_higher_one_starts_more_at_once(
    client: Client, serving: WorkerFactory
) -> None:
    record = FakeRecord()
    gates = [f"run {day(n)}" for n in range(1, 7)]
    record.hold(*gates)
    async with serving(record.activities()) as queue:
        handle = await start(client, queue, backfill_input(6, cap=3))
        await reached(record, gates[2])
        await handle.signal(BackfillWorkflow.set_limits, LimitsRequest(max_concurrent_runs=1))
        await until(lambda: _recorded_cap(record, 1))
        record.release(gates[0], gates[1])
        await until(lambda: _completed(handle, 2))
        await asyncio.sleep(0.3)
        assert len(record.started_order) == 3  # two ended, yet one is still one too many

        record.release(gates[2])
        await reached(record, gates[3])
        assert len(record.started_order) == 4

        await handle.signal(BackfillWorkflow.set_limits, LimitsRequest(max_concurrent_runs=5))
        await reached(record, gates[5])
        assert (await progress(handle)).in_flight == 3  # all that is left, at once
        record.release(*gates)
        result = await handle.result()

    assert (result.status, result.completed) == ("COMPLETED", 6)


async def test_the_failure_budget_pauses_the_backfill_naming_it(
    client: Client, serving: WorkerFactory
) -> None:
    record = FakeRecord(failing_dates={day(1), day(2)})
    async with serving(record.activities()) as queue:
        input = replace(backfill_input(5, cap=1), max_failed_runs=2)
        handle = await start(client, queue, input)
        await until(lambda: _recorded_pause(record, True))
        await asyncio.sleep(0.3)
        paused = await progress(handle)
        assert (paused.failed, paused.paused) == (2, True)
        assert paused.paused_reason == (
            "the failure budget is spent: 2 runs failed (max_failed_runs 2)"
        )
        assert record.started_order == [day(1), day(2)]

        await handle.signal(BackfillWorkflow.set_limits, LimitsRequest(remove_failure_budget=True))
        await handle.signal(BackfillWorkflow.resume)
        await until(lambda: _attribute(handle, BackfillStatus.FAILED))

    assert record.started_order == [day(n) for n in range(1, 6)]
    assert record.controls[-1].max_failed_runs is None


async def test_newest_first_runs_the_latest_dates_first(
    client: Client, serving: WorkerFactory
) -> None:
    record = FakeRecord()
    async with serving(record.activities()) as queue:
        input = replace(backfill_input(5, cap=1), run_order=RunOrder.NEWEST_FIRST)
        result = await (await start(client, queue, input)).result()

    assert result.completed == 5
    assert record.started_order == [day(n) for n in range(5, 0, -1)]


async def test_newest_first_continues_as_new_without_losing_a_date(
    client: Client, serving: WorkerFactory
) -> None:
    record = FakeRecord()
    async with serving(record.activities()) as queue:
        input = replace(
            backfill_input(7, cap=1, runs_per_workflow_run=3), run_order=RunOrder.NEWEST_FIRST
        )
        result = await (await start(client, queue, input)).result()

    assert result.completed == 7
    assert record.started_order == [day(n) for n in range(7, 0, -1)]


async def test_a_retry_reruns_exactly_the_failed_dates_and_completes_the_backfill(
    client: Client, serving: WorkerFactory
) -> None:
    record = FakeRecord(failing_dates={day(2), day(4)})
    async with serving(record.activities()) as queue:
        handle = await start(client, queue, backfill_input(5, cap=2))
        await until(lambda: _attribute(handle, BackfillStatus.FAILED))
        record.failing_dates.clear()  # the source is fixed

        await handle.signal(BackfillWorkflow.retry, RetryRequest())
        result = await handle.result()
        await record_history(client, handle.id, "failed-then-retried")

    assert (result.status, result.completed, result.failed) == ("COMPLETED", 5, 0)
    assert record.superseded == [day(2), day(4)]
    assert sorted(record.started_order) == sorted([day(n) for n in range(1, 6)] + [day(2), day(4)])
    assert await _attribute(handle, BackfillStatus.COMPLETED)


async def test_a_retry_of_some_dates_that_fail_again_leaves_it_failed_and_retriable(
    client: Client, serving: WorkerFactory
) -> None:
    record = FakeRecord(failing_dates={day(1), day(3)})
    async with serving(record.activities()) as queue:
        handle = await start(client, queue, backfill_input(3, cap=3))
        await until(lambda: _attribute(handle, BackfillStatus.FAILED))

        await handle.signal(BackfillWorkflow.retry, RetryRequest(data_dates=[day(3)]))
        await until(lambda: _retried(handle, 1))
        await until(lambda: _attribute(handle, BackfillStatus.FAILED))
        again = await progress(handle)
        assert (again.completed, again.failed) == (1, 2)
        assert record.superseded == [day(3)]

        record.failing_dates.clear()
        await handle.signal(BackfillWorkflow.retry)
        result = await handle.result()

    assert (result.status, result.completed, result.failed) == ("COMPLETED", 3, 0)


async def test_a_retry_resumes_a_backfill_the_budget_paused(
    client: Client, serving: WorkerFactory
) -> None:
    record = FakeRecord(failing_dates={day(1)})
    async with serving(record.activities()) as queue:
        input = replace(backfill_input(1), max_failed_runs=1)
        handle = await start(client, queue, input)
        await until(lambda: _attribute(handle, BackfillStatus.FAILED))
        assert (await progress(handle)).paused
        record.failing_dates.clear()
        await handle.signal(BackfillWorkflow.retry)
        result = await handle.result()

    assert result.status == BackfillStatus.COMPLETED
    assert record.controls[-1].paused is False


async def _recorded_pause(record: FakeRecord, paused: bool) -> bool:
    return bool(record.controls) and record.controls[-1].paused is paused


async def _recorded_cap(record: FakeRecord, cap: int) -> bool:
    return bool(record.controls) and record.controls[-1].max_concurrent_runs == cap


async def _completed(handle: Handle, count: int) -> bool:
    return (await progress(handle)).completed == count


async def _retried(handle: Handle, count: int) -> bool:
    return (await progress(handle)).retries == count


async def _attribute(handle: Handle, status: BackfillStatus) -> bool:
    description = await handle.describe()
    return description.typed_search_attributes.get(search_attributes.BACKFILL_STATUS) == status


async def test_a_backfill_of_chosen_dates_runs_exactly_those(
    client: Client, serving: WorkerFactory
) -> None:
    record = FakeRecord(runs={day(2): RunStatus.CREATED, day(5): RunStatus.CREATED})
    async with serving(record.activities()) as queue:
        input = replace(backfill_input(5, cap=1), planned_at_create=True)
        handle = await start(client, queue, input)
        result = await handle.result()
        assert (await progress(handle)).total == 2
        await record_history(client, handle.id, "planned-at-create")

    assert (result.status, result.completed) == ("COMPLETED", 2)
    assert record.started_order == [day(2), day(5)]
    assert "plan_runs" not in record.calls


# --- signals from the API's outbox: repeated or late, they never undo a newer change ------------


async def test_a_repeated_or_late_api_pause_never_undoes_a_newer_resume(
    client: Client, serving: WorkerFactory
) -> None:
    record = FakeRecord()
    record.hold(f"run {day(1)}")
    async with serving(record.activities()) as queue:
        handle = await start(client, queue, backfill_input(3, cap=1))
        await reached(record, f"run {day(1)}")
        await handle.signal(BackfillWorkflow.pause, PauseRequest(reason="first", sequence=5))
        await handle.signal(BackfillWorkflow.resume, ResumeRequest(sequence=7))
        # sent again by a second drainer, and one older still that was postponed
        await handle.signal(BackfillWorkflow.pause, PauseRequest(reason="first", sequence=5))
        await handle.signal(BackfillWorkflow.pause, PauseRequest(reason="older", sequence=3))
        # limits are another kind: their sequence does not hide a pause
        await handle.signal(
            BackfillWorkflow.set_limits, LimitsRequest(max_concurrent_runs=2, sequence=9)
        )
        record.release(f"run {day(1)}")
        result = await handle.result()
        await record_history(client, handle.id, "outbox-signals-repeated")

    assert (result.status, result.completed) == ("COMPLETED", 3)
    assert record.controls[-1].paused is False
    assert record.controls[-1].max_concurrent_runs == 2


async def test_an_api_retry_sent_twice_retries_once(client: Client, serving: WorkerFactory) -> None:
    record = FakeRecord(failing_dates={day(2)})
    async with serving(record.activities()) as queue:
        handle = await start(client, queue, backfill_input(3, cap=3))
        await until(lambda: _attribute(handle, BackfillStatus.FAILED))

        await handle.signal(BackfillWorkflow.retry, RetryRequest(data_dates=[day(2)], sequence=4))
        await until(lambda: _retried(handle, 1))
        await until(lambda: _attribute(handle, BackfillStatus.FAILED))  # failed again
        await handle.signal(BackfillWorkflow.retry, RetryRequest(data_dates=[day(2)], sequence=4))
        await asyncio.sleep(0.5)  # time for a wrong second retry to start
        again = await progress(handle)
        await handle.signal(BackfillWorkflow.cancel, CancelRequest(user_id=1))
        await handle.result()

    assert (again.retries, again.failed) == (1, 1)
    assert record.superseded == [day(2)]


async def test_progress_and_current_details_show_an_eta_while_it_runs_and_none_when_paused(
    client: Client, serving: WorkerFactory
) -> None:
    record = FakeRecord()
    record.hold(f"run {day(3)}")
    async with serving(record.activities()) as queue:
        handle = await start(client, queue, backfill_input(4, cap=1))
        await reached(record, f"run {day(3)}")
        running = await progress(handle)
        metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
        await handle.signal(BackfillWorkflow.pause, PauseRequest(reason="look"))
        paused = await progress(handle)
        await handle.signal(BackfillWorkflow.resume, ResumeRequest())
        record.release(f"run {day(3)}")
        result = await handle.result()
        done = await progress(handle)

    assert running.completed == 2 and running.estimated_end_time is not None
    eta = running.estimated_end_time
    assert metadata.current_details.endswith(f", ends about {eta:%Y-%m-%d %H:%M} UTC")
    assert paused.estimated_end_time is None
    assert result.status == BackfillStatus.COMPLETED and done.estimated_end_time is None
