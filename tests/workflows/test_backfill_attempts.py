"""A run's attempts as the backfill workflow sees them, on the time-skipping test server: an
attempt that hangs is timed out by Temporal and retried, and a retried attempt that finds its
run committed by the attempt before (whose worker died after the commit) counts it completed,
in the record, the `progress` query, the result and the search attribute alike."""

import asyncio
import dataclasses
from datetime import date

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.inputs import TRANSIENT_RUN_ERROR, TransferRunInput, TransferRunResult
from statuses import BackfillStatus, RunOutcome, RunStatus
from tests.workflows.conftest import WorkerFactory
from tests.workflows.doubles import FakeRecord, backfill_input, day, start
from workflows import search_attributes
from workflows.backfill import BackfillWorkflow
from workflows.inputs import BackfillInput


def _retried(input: BackfillInput, *, timeout_seconds: int = 3600) -> BackfillInput:
    policy = dataclasses.replace(input.run_policy, max_attempts=3, timeout_seconds=timeout_seconds)
    return dataclasses.replace(input, run_policy=policy)


class HangsOnce(FakeRecord):
    """The first attempt of the first date never returns (a source that stopped answering,
    the ticker still heartbeating); later attempts work."""

    attempts: dict[date, list[int]]

    @activity.defn(name="run_transfer")
    async def run_transfer(self, input: TransferRunInput) -> TransferRunResult:
        attempt = activity.info().attempt
        self.attempts.setdefault(input.data_date, []).append(attempt)
        if input.data_date == day(1) and attempt == 1:
            self.runs[input.data_date] = RunStatus.RUNNING
            await asyncio.Event().wait()  # hangs until the worker cancels it at shutdown
        self.runs[input.data_date] = RunStatus.COMPLETED
        return TransferRunResult(outcome=RunOutcome.COMPLETED, rows=1)


class DiesAfterCommit(FakeRecord):
    """The first attempt of the first date commits its run, then its worker dies (the attempt
    fails without a result); the retry finds the run COMPLETED and reports what the record
    holds, as the real activity does (`_recorded_outcome`)."""

    @activity.defn(name="run_transfer")
    async def run_transfer(self, input: TransferRunInput) -> TransferRunResult:
        if self.runs.get(input.data_date) == RunStatus.COMPLETED:
            return TransferRunResult(outcome=RunOutcome.COMPLETED, rows=1)
        self.runs[input.data_date] = RunStatus.COMPLETED
        if input.data_date == day(1) and activity.info().attempt == 1:
            raise ApplicationError("the worker was lost", type=TRANSIENT_RUN_ERROR)
        return TransferRunResult(outcome=RunOutcome.COMPLETED, rows=1)


async def test_a_hung_attempt_is_timed_out_and_its_retry_completes_the_date(
    client: Client, serving: WorkerFactory
) -> None:
    record = HangsOnce()
    record.attempts = {}
    # a 1 s timeout: the test server skips no time while an activity runs
    async with serving(record.activities()) as queue:
        handle = await start(client, queue, _retried(backfill_input(2), timeout_seconds=1))
        result = await handle.result()

    assert record.attempts[day(1)] == [1, 2]
    assert record.attempts[day(2)] == [1]
    assert (result.status, result.completed, result.failed) == (BackfillStatus.COMPLETED, 2, 0)
    assert record.count(RunStatus.COMPLETED) == 2


async def test_a_run_committed_before_its_worker_died_counts_completed_everywhere(
    client: Client, serving: WorkerFactory
) -> None:
    record = DiesAfterCommit()
    async with serving(record.activities()) as queue:
        handle = await start(client, queue, _retried(backfill_input(3)))
        result = await handle.result()
        progress = await handle.query(BackfillWorkflow.progress)
        attribute = (await handle.describe()).typed_search_attributes.get(
            search_attributes.BACKFILL_STATUS
        )

    assert (result.completed, result.skipped, result.failed) == (3, 0, 0)
    assert (progress.completed, progress.skipped, progress.failed) == (3, 0, 0)
    assert record.count(RunStatus.COMPLETED) == 3
    assert result.status == progress.status == attribute == record.status
    assert record.status == BackfillStatus.COMPLETED
