"""The recurring-run workflow in the time-skipping test server, with same-name activities:
one firing runs its run once, with the firing's time; a run that fails after its retries is
recorded FAILED with why."""

from dataclasses import dataclass, field
from datetime import UTC, datetime

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.inputs import (
    PERMANENT_RUN_ERROR,
    FailRecurringRunInput,
    RecurringRunInput,
    TransferRunResult,
)
from statuses import RunOutcome
from tests.workflows.conftest import WorkerFactory
from tests.workflows.doubles import backfill_input
from tests.workflows.histories import record_history
from workflows.inputs import RecurringInput
from workflows.recurring import RecurringRunWorkflow

FIRING = datetime(2026, 3, 5, 1, 30, tzinfo=UTC)


@dataclass
class FakeRecurringRecord:
    fails: bool = False
    runs: list[RecurringRunInput] = field(default_factory=list)
    failed: list[FailRecurringRunInput] = field(default_factory=list)

    @activity.defn(name="run_recurring_transfer")
    async def run_recurring_transfer(self, input: RecurringRunInput) -> TransferRunResult:
        self.runs.append(input)
        if self.fails:
            raise ApplicationError("the source said no", type=PERMANENT_RUN_ERROR)
        return TransferRunResult(outcome=RunOutcome.COMPLETED, rows=3)

    @activity.defn(name="fail_recurring_run")
    async def fail_recurring_run(self, input: FailRecurringRunInput) -> None:
        self.failed.append(input)


def recurring_input(queue: str, firing_time: datetime | None = FIRING) -> RecurringInput:
    return RecurringInput(
        team_id=1,
        transfer_id=7,
        time_zone="Europe/Berlin",
        data_date_offset_days=1,
        run_policy=backfill_input(1).run_policy,
        records_task_queue=queue,
        firing_time=firing_time,
    )


async def test_a_firing_runs_its_run_once_with_the_firings_time(
    client: Client, serving: WorkerFactory
) -> None:
    record = FakeRecurringRecord()
    async with serving([record.run_recurring_transfer, record.fail_recurring_run]) as queue:
        handle = await client.start_workflow(
            RecurringRunWorkflow.run,
            recurring_input(queue),
            id="transfer-7-firing",
            task_queue=queue,
        )
        outcome = await handle.result()
        await record_history(client, handle.id, "recurring-run-completed")

    assert outcome == RunOutcome.COMPLETED
    assert record.runs == [RecurringRunInput(1, 7, FIRING, "Europe/Berlin", 1)]
    assert record.failed == []


async def test_without_a_schedule_the_start_time_is_the_firing(
    client: Client, serving: WorkerFactory
) -> None:
    record = FakeRecurringRecord()
    async with serving([record.run_recurring_transfer, record.fail_recurring_run]) as queue:
        handle = await client.start_workflow(
            RecurringRunWorkflow.run,
            recurring_input(queue, firing_time=None),
            id="transfer-7-now",
            task_queue=queue,
        )
        await handle.result()
        started = (await handle.describe()).start_time

    [run] = record.runs
    assert abs((run.firing_time - started).total_seconds()) < 1


async def test_a_run_that_fails_is_recorded_failed_saying_why(
    client: Client, serving: WorkerFactory
) -> None:
    record = FakeRecurringRecord(fails=True)
    async with serving([record.run_recurring_transfer, record.fail_recurring_run]) as queue:
        handle = await client.start_workflow(
            RecurringRunWorkflow.run,
            recurring_input(queue),
            id="transfer-7-fails",
            task_queue=queue,
        )
        outcome = await handle.result()
        await record_history(client, handle.id, "recurring-run-failed")

    assert outcome == RunOutcome.FAILED
    assert record.failed == [
        FailRecurringRunInput(
            7,
            FIRING,
            "the source said no",
            team_id=1,
            time_zone="Europe/Berlin",
            data_date_offset_days=1,
        )
    ]
