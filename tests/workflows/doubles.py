"""Same-name test doubles of the activities, for the real workflows in Temporal's
time-skipping test server: an in-memory record of one backfill, and gates that hold any
activity until the test lets it go, so a test puts a signal or a cancellation exactly where
it wants it (while planning, with runs in flight, while the record is being closed...)."""

import asyncio
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError

from activities.inputs import (
    PERMANENT_RUN_ERROR,
    RECORD_MISSING,
    BackfillRef,
    CancelRecordInput,
    ControlRecordInput,
    FailRunInput,
    PlanRunsInput,
    ReconcileInput,
    ReconcileResult,
    RetryInput,
    TransferRunInput,
    TransferRunResult,
)
from statuses import BackfillStatus, RunOutcome, RunStatus
from workflows.backfill import BackfillWorkflow
from workflows.inputs import BackfillInput, RunPolicy

FIRST_DAY = date(2024, 1, 1)


class Gate:
    """Holds an activity at its start until opened; `reached` tells that one is waiting."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()
        self.reached = asyncio.Event()

    async def pass_through(self) -> None:
        self.reached.set()
        await self.opened.wait()

    def open(self) -> None:
        self.opened.set()


@dataclass
class FakeRecord:
    """One backfill's record as the bookkeeping activities keep it, in memory."""

    exists: bool = True
    status: BackfillStatus = BackfillStatus.CREATED
    runs: dict[date, RunStatus] = field(default_factory=dict)
    cancelled_by: list[int | None] = field(default_factory=list)
    failing_dates: set[date] = field(default_factory=set)
    controls: list[ControlRecordInput] = field(default_factory=list)
    started_order: list[date] = field(default_factory=list)
    superseded: list[date] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    gates: dict[str, Gate] = field(default_factory=lambda: defaultdict(Gate))

    def gate(self, name: str) -> Gate:
        """The gate of an activity (`plan_runs`...) or of one date's run (`run 2024-01-02`)."""
        return self.gates[name]

    def hold(self, *names: str) -> None:
        for name in names:
            self.gates[name] = Gate()

    def release(self, *names: str) -> None:
        for name in names:
            self.gates[name].open()

    async def _enter(self, name: str) -> None:
        self.calls.append(name)
        gate = self.gates.get(name)
        if gate is not None:
            await gate.pass_through()
        if not self.exists:
            raise ApplicationError("backfill 1 not found", type=RECORD_MISSING, non_retryable=True)

    @activity.defn(name="plan_runs")
    async def plan_runs(self, input: PlanRunsInput) -> int:
        await self._enter("plan_runs")
        status = RunStatus.CANCELLED if self.status == BackfillStatus.CANCELLED else None
        made = 0
        day = input.first
        while day <= input.last:
            if day not in self.runs:
                self.runs[day] = status or RunStatus.CREATED
                made += 1
            day += timedelta(days=1)
        return made

    @activity.defn(name="mark_scheduled")
    async def mark_scheduled(self, input: BackfillRef) -> None:
        await self._enter("mark_scheduled")
        if self.status == BackfillStatus.CREATED:
            self.status = BackfillStatus.SCHEDULED

    @activity.defn(name="run_transfer")
    async def run_transfer(self, input: TransferRunInput) -> TransferRunResult:
        if self.runs.get(input.data_date) != RunStatus.CREATED:
            return TransferRunResult(outcome=RunOutcome.SKIPPED)
        self.status = BackfillStatus.RUNNING
        self.runs[input.data_date] = RunStatus.RUNNING
        self.started_order.append(input.data_date)
        await self._enter(f"run {input.data_date}")
        if input.data_date in self.failing_dates:
            raise ApplicationError("the source said no", type=PERMANENT_RUN_ERROR)
        self.runs[input.data_date] = RunStatus.COMPLETED
        return TransferRunResult(outcome=RunOutcome.COMPLETED, rows=1)

    @activity.defn(name="fail_run")
    async def fail_run(self, input: FailRunInput) -> None:
        await self._enter("fail_run")
        self.runs[input.data_date] = RunStatus.FAILED

    @activity.defn(name="record_cancel")
    async def record_cancel(self, input: CancelRecordInput) -> None:
        await self._enter("record_cancel")
        if self.status in (BackfillStatus.COMPLETED, BackfillStatus.CANCELLED):
            return
        self.status = BackfillStatus.CANCELLED
        self.cancelled_by.append(input.user_id)
        for day, status in self.runs.items():
            if status == RunStatus.CREATED:
                self.runs[day] = RunStatus.CANCELLED

    @activity.defn(name="finish_backfill")
    async def finish_backfill(self, input: BackfillRef) -> str:
        await self._enter("finish_backfill")
        if self.status in (BackfillStatus.COMPLETED, BackfillStatus.CANCELLED):
            return self.status
        failed = RunStatus.FAILED in self.runs.values()
        self.status = BackfillStatus.FAILED if failed else BackfillStatus.COMPLETED
        return self.status

    @activity.defn(name="record_control")
    async def record_control(self, input: ControlRecordInput) -> None:
        await self._enter("record_control")
        self.controls.append(input)

    @activity.defn(name="prepare_retry")
    async def prepare_retry(self, input: RetryInput) -> list[date]:
        await self._enter("prepare_retry")
        if self.status != BackfillStatus.FAILED:
            return []
        failed = [d for d, s in sorted(self.runs.items()) if s == RunStatus.FAILED]
        dates = [d for d in failed if input.data_dates is None or d in input.data_dates]
        for d in dates:
            self.superseded.append(d)
            self.runs[d] = RunStatus.CREATED
        if dates:
            self.status = BackfillStatus.RUNNING
        return dates

    @activity.defn(name="planned_dates")
    async def planned_dates(self, input: BackfillRef) -> list[date]:
        await self._enter("planned_dates")
        return sorted(d for d, s in self.runs.items() if s == RunStatus.CREATED)

    def activities(self) -> list[Any]:
        return [
            self.planned_dates,
            self.record_control,
            self.prepare_retry,
            self.plan_runs,
            self.mark_scheduled,
            self.run_transfer,
            self.fail_run,
            self.record_cancel,
            self.finish_backfill,
        ]

    def count(self, status: RunStatus) -> int:
        return list(self.runs.values()).count(status)


class FlakyReconcile:
    """The `reconcile` activity failing its first `failures` calls, as in an outage."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    @activity.defn(name="reconcile")
    async def reconcile(self, input: ReconcileInput) -> ReconcileResult:
        self.calls += 1
        if self.calls <= self.failures:
            raise ApplicationError("the database is down", non_retryable=True)
        return ReconcileResult(started=0, failed=0)


def backfill_input(days: int, *, cap: int = 2, runs_per_workflow_run: int = 1000) -> BackfillInput:
    return BackfillInput(
        backfill_id=1,
        team_id=1,
        transfer_id=1,
        range_start=FIRST_DAY,
        range_end=FIRST_DAY + timedelta(days=days - 1),
        max_concurrent_runs=cap,
        run_policy=RunPolicy(
            max_attempts=1,
            initial_retry_seconds=1,
            max_retry_seconds=1,
            timeout_seconds=3600,
            heartbeat_timeout_seconds=3600,
        ),
        runs_per_workflow_run=runs_per_workflow_run,
    )


def day(n: int) -> date:
    """The n-th date of the range, from 1."""
    return FIRST_DAY + timedelta(days=n - 1)


async def start(
    client: Client, task_queue: str, input: BackfillInput
) -> WorkflowHandle[BackfillWorkflow, Any]:
    return await client.start_workflow(
        BackfillWorkflow.run,
        input,
        id=f"backfill-{uuid.uuid4().hex[:10]}",
        task_queue=task_queue,
    )
