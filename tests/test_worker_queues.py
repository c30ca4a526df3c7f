"""The task queues: bookkeeping (planning, status changes, cancels, closing a backfill) and
recurring runs have slots of their own, so backfill runs filling every run slot never delay
them; and a worker process serves the runs queue, the records queue or both
(`backfills worker --queues`)."""

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from sqlmodel import col, select
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import Client, WorkflowHandle

import temporal_schedules
from config import Settings
from persistence import backfills, transfers
from persistence.models import Backfill, TransferRun
from statuses import BackfillStatus, RunStatus
from temporal_client import start_backfill, workflow_id
from tests.support import REPO, Stack, Tenant, spawn, stop, terminate_if_running, wait_for_async
from workflows.backfill import BackfillWorkflow
from workflows.inputs import CancelRequest

LONG_RUN_MS = 120_000  # a run that holds its slot for the whole test
SOON = 15.0  # seconds: bookkeeping that does not wait for a run slot is done long before


@dataclass
class Queues:
    """Workers on a task queue of this test's own (and its records queue), and backfills
    started on it."""

    stack: Stack
    tenant: Tenant
    client: Client
    settings: Settings
    env: dict[str, str]
    workers: list[subprocess.Popen[bytes]]
    handles: list[WorkflowHandle[BackfillWorkflow, Any]]

    def start_worker(self, name: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
        log = self.stack.logs / f"worker-{self.settings.task_queue}-{name}.log"
        worker = spawn(["worker", *args], {**self.env, **env}, log)
        self.workers.append(worker)
        return worker

    async def start_backfill(
        self, transfer_id: int, start: date, end: date
    ) -> tuple[int, WorkflowHandle[BackfillWorkflow, Any]]:
        stack, tenant = self.stack, self.tenant
        transfer = transfers.get_team_transfer(
            db=stack.db, team_id=tenant.team_id, transfer_id=transfer_id
        )
        backfill: Backfill = backfills.create_backfill(
            db=stack.db,
            team_id=tenant.team_id,
            transfer_id=transfer_id,
            user_id=tenant.user_id,
            range_start=start,
            range_end=end,
        )
        assert backfill.id is not None
        await start_backfill(self.client, self.settings, backfill, transfer)
        handle = self.client.get_workflow_handle_for(BackfillWorkflow.run, workflow_id(backfill.id))
        self.handles.append(handle)
        return backfill.id, handle

    def status(self, backfill_id: int) -> str:
        return str(self.tenant.backfill(backfill_id)["status"])

    async def reaches(self, backfill_id: int, status: str, within: float = SOON) -> None:
        async def reached() -> bool:
            return await asyncio.to_thread(self.status, backfill_id) == status

        await wait_for_async(reached, within=within)

    def run_statuses(self, transfer_id: int) -> list[str]:
        return sorted(run["status"] for run in self.tenant.runs(transfer_id))


@pytest.fixture
async def queues(
    stack: Stack, tenant: Tenant, settings: Settings, temporal_client: Client
) -> AsyncIterator[Queues]:
    name = f"backfills-queues-{uuid.uuid4().hex[:8]}"
    env = {
        **stack.env,
        "BACKFILLS_TASK_QUEUE": name,
        # a long run handed back at the end of the test need not be waited for
        "BACKFILLS_WORKER_SHUTDOWN_GRACE_SECONDS": "1",
    }
    found = Queues(
        stack=stack,
        tenant=tenant,
        client=temporal_client,
        settings=settings.model_copy(update={"task_queue": name}),
        env=env,
        workers=[],
        handles=[],
    )
    try:
        yield found
    finally:
        for handle in found.handles:
            await terminate_if_running(handle)
        for worker in found.workers:
            await asyncio.to_thread(stop, worker)


async def test_bookkeeping_is_not_delayed_by_runs_holding_every_run_slot(queues: Queues) -> None:
    queues.start_worker("one-run-slot", BACKFILLS_WORKER_MAX_CONCURRENT_ACTIVITIES="1")
    tenant = queues.tenant
    busy_transfer = tenant.create_transfer(max_concurrent_runs=2, latency_ms=LONG_RUN_MS)
    busy_id, busy = await queues.start_backfill(busy_transfer, date(2024, 7, 1), date(2024, 7, 5))

    async def slot_taken() -> bool:
        statuses = await asyncio.to_thread(queues.run_statuses, busy_transfer)
        return statuses.count(RunStatus.RUNNING) == 1

    await wait_for_async(slot_taken, within=60)
    # The workflow has a second run waiting for the worker's only run slot.

    # A cancel through the API: the workflow records it at once, not after the run ends.
    response = tenant.http.patch(
        f"/teams/{tenant.team_id}/backfills/{busy_id}", json={"status": "CANCELLED"}
    )
    assert response.status_code == 200, response.text

    async def workflow_recorded_the_cancel() -> bool:
        return (await busy.query(BackfillWorkflow.progress)).status == BackfillStatus.CANCELLED

    try:
        await wait_for_async(workflow_recorded_the_cancel, within=SOON)
    except AssertionError:
        raise AssertionError(f"the cancel is not recorded: {await pending(busy)}") from None
    [record_cancel] = [a for a in await started_activities(busy) if a.name == "record_cancel"]
    assert record_cancel.waited < 5.0
    assert queues.run_statuses(busy_transfer) == [RunStatus.CANCELLED] * 4 + [RunStatus.RUNNING]

    # A new backfill is planned and scheduled meanwhile, though the run still holds the slot.
    other_transfer = tenant.create_transfer(max_concurrent_runs=2, latency_ms=LONG_RUN_MS)
    other_id, other = await queues.start_backfill(
        other_transfer, date(2024, 7, 1), date(2024, 7, 3)
    )
    try:
        await queues.reaches(other_id, BackfillStatus.SCHEDULED)
    except AssertionError:
        raise AssertionError(f"the backfill is not scheduled: {await pending(other)}") from None
    assert queues.run_statuses(other_transfer) == [RunStatus.CREATED] * 3

    # An operator's cancel (the workflow's signal) is recorded within seconds too.
    await other.signal(BackfillWorkflow.cancel, CancelRequest(user_id=None))
    await queues.reaches(other_id, BackfillStatus.CANCELLED)
    assert queues.run_statuses(other_transfer) == [RunStatus.CANCELLED] * 3


async def pending(handle: WorkflowHandle[Any, Any]) -> list[str]:
    """The workflow's pending activities, as `name: state`."""
    description = (await handle.describe()).raw_description
    return [
        f"{a.activity_type.name}: {PendingActivityState.Name(a.state)}"
        for a in description.pending_activities
    ]


@dataclass(frozen=True)
class StartedActivity:
    name: str
    waited: float  # seconds from scheduled to started
    worker_pid: int  # the SDK's default worker identity is `pid@host`


async def started_activities(handle: WorkflowHandle[Any, Any]) -> list[StartedActivity]:
    """Each activity attempt of the workflow's history that a worker started."""
    scheduled: dict[int, tuple[str, float]] = {}
    found = []
    async for event in handle.fetch_history_events():
        at = event.event_time.ToMicroseconds() / 1e6
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            scheduled[event.event_id] = (name, at)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started = event.activity_task_started_event_attributes
            name, scheduled_at = scheduled[started.scheduled_event_id]
            pid = int(started.identity.split("@", 1)[0])
            found.append(StartedActivity(name=name, waited=at - scheduled_at, worker_pid=pid))
    return found


async def test_a_runs_worker_and_a_records_worker_complete_a_backfill_together(
    queues: Queues,
) -> None:
    runs_worker = queues.start_worker("runs", "--queues", "runs")
    transfer_id = queues.tenant.create_transfer(max_concurrent_runs=2, rows_per_day=3)
    backfill_id, handle = await queues.start_backfill(
        transfer_id, date(2024, 8, 1), date(2024, 8, 4)
    )

    # Alone, the runs worker runs the workflow, whose first step (planning) waits on the
    # records queue: the backfill stays CREATED and no run exists.
    async def planning_waits() -> bool:
        pending = (await handle.describe()).raw_description.pending_activities
        return any(
            a.activity_type.name == "plan_runs"
            and a.state == PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED
            for a in pending
        )

    await wait_for_async(planning_waits, within=60)
    await asyncio.sleep(2)
    assert await planning_waits()
    assert queues.status(backfill_id) == BackfillStatus.CREATED
    assert queues.tenant.runs(transfer_id) == []

    records_worker = queues.start_worker("records", "--queues", "records")
    result = await asyncio.wait_for(handle.result(), timeout=120)

    assert (result.status, result.completed) == (BackfillStatus.COMPLETED, 4)
    final = queues.tenant.backfill(backfill_id)
    assert (final["status"], final["transfer_runs_completed"]) == (BackfillStatus.COMPLETED, 4)
    assert queues.run_statuses(transfer_id) == [RunStatus.COMPLETED] * 4
    # Each did its own part: the runs worker every transfer run, the records worker the rest.
    started_by: dict[str, set[int]] = {}
    for activity in await started_activities(handle):
        started_by.setdefault(activity.name, set()).add(activity.worker_pid)
    assert started_by == {
        "run_transfer": {runs_worker.pid},
        "plan_runs": {records_worker.pid},
        "mark_scheduled": {records_worker.pid},
        "finish_backfill": {records_worker.pid},
    }


@pytest.mark.parametrize("queues_option", ["bogus", "runs,reports", ","])
def test_an_unknown_queue_is_a_usage_error(queues_option: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "worker", "--queues", queues_option],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 2, done
    assert "--queues" in done.stderr and "is not a queue" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_an_unknown_queue_in_the_environment_is_an_error_too() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "worker"],
        env={**os.environ, "BACKFILLS_WORKER_QUEUES": "runs,reports"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 2, done
    assert "worker_queues" in done.stderr and "'reports'" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


async def test_a_recurring_run_starts_at_once_with_every_run_slot_taken(queues: Queues) -> None:
    queues.start_worker("two-run-slots", BACKFILLS_WORKER_MAX_CONCURRENT_ACTIVITIES="2")
    tenant, stack = queues.tenant, queues.stack
    busy_transfer = tenant.create_transfer(max_concurrent_runs=5, latency_ms=LONG_RUN_MS)
    _, busy = await queues.start_backfill(busy_transfer, date(2024, 7, 1), date(2024, 7, 5))

    async def slots_taken() -> bool:
        statuses = await asyncio.to_thread(queues.run_statuses, busy_transfer)
        return statuses.count(RunStatus.RUNNING) == 2

    await wait_for_async(slots_taken, within=60)
    # Two runs hold both run slots for minutes, three more wait for one. The daily transfer's
    # Schedule fires now.
    daily = transfers.create_transfer(
        db=stack.db,
        team_id=tenant.team_id,
        user_id=tenant.user_id,
        display_name="daily",
        source={"type": "demo", "rows_per_day": 2},
        destination={"type": "sqlite"},
        max_concurrent_runs=1,
        schedule={"cron": "0 3 * * *"},
    )
    assert daily.id is not None
    daily_id = daily.id
    await temporal_schedules.sync(queues.client, queues.settings, stack.db, daily_id)
    schedule = queues.client.get_schedule_handle(temporal_schedules.schedule_id(daily_id))
    try:
        await schedule.trigger()

        async def recurring_completed() -> bool:
            runs = await asyncio.to_thread(tenant.runs, daily_id)
            return [(r["type"], r["status"]) for r in runs] == [("Recurring", "COMPLETED")]

        await wait_for_async(recurring_completed, within=SOON)
        statuses = queues.run_statuses(busy_transfer)
        assert statuses.count(RunStatus.RUNNING) == 2  # still holding both slots
        assert statuses.count(RunStatus.COMPLETED) == 0
    finally:
        await schedule.delete()
    await terminate_if_running(busy)


async def test_firings_while_no_worker_runs_are_buffered_and_run_oldest_first_after(
    queues: Queues,
) -> None:
    tenant, stack = queues.tenant, queues.stack
    scheduled = transfers.create_transfer(
        db=stack.db,
        team_id=tenant.team_id,
        user_id=tenant.user_id,
        display_name="every two seconds",
        source={"type": "demo", "rows_per_day": 1},
        destination={"type": "sqlite"},
        max_concurrent_runs=1,
        schedule={"interval_seconds": 2},
    )
    assert scheduled.id is not None
    transfer_id = scheduled.id
    await temporal_schedules.sync(queues.client, queues.settings, stack.db, transfer_id)
    schedule = queues.client.get_schedule_handle(temporal_schedules.schedule_id(transfer_id))
    try:
        # No worker serves this queue: the first firing's workflow waits, later ones buffer.
        async def three_buffered() -> bool:
            info = (await schedule.describe()).raw_description.info
            return info.buffer_size >= 3

        await wait_for_async(three_buffered, within=30)
        assert tenant.runs(transfer_id) == []

        queues.start_worker("back-again")

        async def caught_up() -> list[dict[str, Any]] | None:
            runs = await asyncio.to_thread(tenant.runs, transfer_id)
            done = [run for run in runs if run["status"] == RunStatus.COMPLETED]
            return runs if len(done) >= 4 else None  # the waiting one and three buffered

        await wait_for_async(caught_up, within=60)
    finally:
        await schedule.delete()
    runs = tenant.runs(transfer_id)
    assert {run["type"] for run in runs} == {"Recurring"}
    with stack.db.read() as session:
        made = session.exec(
            select(TransferRun)
            .where(TransferRun.transfer_id == transfer_id)
            .order_by(col(TransferRun.created_time))
        ).all()
    firings = [run.firing_time for run in made if run.firing_time is not None]
    assert len(set(firings)) == len(firings) == len(made)  # each firing ran once
    assert firings == sorted(firings)  # in the order they fired
    assert [run.data_date for run in made] == [(f - timedelta(days=1)).date() for f in firings]
