"""The backfill workflow: plan one run per date, run them under a concurrency cap, close.

It orchestrates only: every database or connector call is an activity. Cancellation (the
`cancel` signal, or a cancellation request from the Temporal UI) stops new runs at once,
records the cancel, and waits for the runs in flight, whose outcome still counts. Long
ranges continue as new every `runs_per_workflow_run` runs to keep each history small.

A cancellation request from the Temporal UI never interrupts the bookkeeping: an activity
that writes the record runs to its end whatever arrives meanwhile, so the workflow never
closes with its record half-kept. A FAILED backfill is still incomplete (it can be
cancelled), so its workflow stays open until it is, keeping the `BackfillStatus` search
attribute equal to the record. A record that does not exist ends the workflow at once.
"""

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError

with workflow.unsafe.imports_passed_through():
    from activities.inputs import (
        PERMANENT_RUN_ERROR,
        RECORD_MISSING,
        BackfillRef,
        CancelRecordInput,
        ControlRecordInput,
        FailRunInput,
        PlanRunsInput,
        RetryInput,
        TransferRunInput,
    )
    from activities.records import RecordActivities
    from activities.transfer_run import TransferRunActivities
    from statuses import ACTIVE_BACKFILL_STATUSES, BackfillStatus, RunOrder, RunOutcome
    from workflows import search_attributes
    from workflows.estimate import estimated_end
    from workflows.inputs import (
        BackfillInput,
        BackfillResult,
        CancelRequest,
        LimitsRequest,
        PauseRequest,
        Progress,
        ResumeRequest,
        RetryRequest,
        RunPolicy,
    )

ArgT = TypeVar("ArgT")
ResultT = TypeVar("ResultT")

BACKFILL_WORKFLOW = "Backfill"  # the workflow type
PLAN_BATCH_DAYS = 1000
BACKFILL_FAILED = "BackfillFailed"  # the workflow's failure type when its backfill is FAILED
# workflow.patched ids: histories recorded before each change still replay as they ran
FAILED_BACKFILL_FAILS_WORKFLOW = "failed-backfill-fails-workflow"
BOOKKEEPING_OUTLASTS_CANCELLATION = "bookkeeping-outlasts-cancellation"
FAILED_BACKFILL_WAITS_FOR_CANCEL = "failed-backfill-waits-for-cancel"
MAX_CONCURRENT_RUNS = 500  # the API's bound too: an operator's larger value is ignored
OPERATOR_PAUSE = "paused from Temporal"
HISTORY_SOFT_LIMIT = 6000  # events; Temporal warns at 10,240, and in-flight runs still add some
RECORD_TIMEOUT = timedelta(minutes=2)
RECORD_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=[RECORD_MISSING],
)


@workflow.defn(name=BACKFILL_WORKFLOW)
class BackfillWorkflow:
    def __init__(self) -> None:
        self._progress = Progress()
        self._cancel: CancelRequest | None = None
        self._cancel_recorded = False
        self._retry: RetryRequest | None = None
        self._control_changed = False  # a pause, resume or limit the record does not hold
        self._control_recording = False
        self._recorder: asyncio.Task[None] | None = None
        self._runs: set[asyncio.Task[None]] = set()
        self._bookkeeping_outlasts_cancellation = False
        self._failed_waits_for_cancel = False
        self._input_cap = 1

    @workflow.signal(name="cancel")
    def cancel(self, request: CancelRequest | None = None) -> None:
        """Stop starting runs; an operator may send it with no input at all."""
        if self._cancel is None:
            self._cancel = request or CancelRequest()
            self._progress.cancel_requested = True

    @workflow.signal(name="pause")
    def pause(self, request: PauseRequest | None = None) -> None:
        """Start no run until `resume`; the runs in flight finish and count."""
        request = request or PauseRequest()
        if self._is_news("pause", request.sequence):
            self._pause(request.reason or OPERATOR_PAUSE)

    @workflow.signal(name="resume")
    def resume(self, request: ResumeRequest | None = None) -> None:
        request = request or ResumeRequest()
        if self._is_news("pause", request.sequence) and self._progress.paused:
            self._progress.paused = False
            self._progress.paused_reason = None
            self._control_changed = True
            self._upsert_paused()

    @workflow.signal(name="set_limits")
    def set_limits(self, request: LimitsRequest) -> None:
        """New limits apply at the next scheduling step; values out of bounds are ignored."""
        if not self._is_news("set_limits", request.sequence):
            return
        cap = request.max_concurrent_runs
        if cap is not None and 1 <= cap <= MAX_CONCURRENT_RUNS:
            self._progress.max_concurrent_runs = cap
        budget = request.max_failed_runs
        if request.remove_failure_budget:
            self._progress.max_failed_runs = None
        elif budget is not None and budget >= 1:
            self._progress.max_failed_runs = budget
            self._check_failure_budget()
        self._control_changed = True
        self._describe_progress()

    @workflow.signal(name="retry")
    def retry(self, request: RetryRequest | None = None) -> None:
        """Re-run a FAILED backfill's failed dates (all, or those given)."""
        request = request or RetryRequest()
        if self._is_news("retry", request.sequence):
            self._retry = request

    def _is_news(self, kind: str, sequence: int | None) -> bool:
        """False for an API signal not newer than the last of its kind applied: a repeat or a
        late arrival from the outbox (persistence/outbox.py), whose change a newer one of the
        same kind already holds. An operator's signal (no sequence) is always news."""
        if sequence is None:
            return True
        if sequence <= self._progress.applied_signals.get(kind, 0):
            return False
        self._progress.applied_signals[kind] = sequence
        return True

    @workflow.query(name="progress")
    def progress(self) -> Progress:
        return self._progress

    @workflow.run
    async def run(self, input: BackfillInput) -> BackfillResult:
        self._records_queue = input.records_task_queue
        self._bookkeeping_outlasts_cancellation = workflow.patched(
            BOOKKEEPING_OUTLASTS_CANCELLATION
        )
        self._failed_waits_for_cancel = workflow.patched(FAILED_BACKFILL_WAITS_FOR_CANCEL)
        self._begin(input)
        self._recorder = asyncio.create_task(self._keep_control_recorded(input))
        try:
            if input.carried is None:
                await self._plan(input)
                await self._record(RecordActivities.mark_scheduled, BackfillRef(input.backfill_id))
                self._set_status(BackfillStatus.SCHEDULED)
            await self._dispatch(input)
        except asyncio.CancelledError:
            self.cancel(CancelRequest(user_id=None))
        if self._cancel is not None:
            return await self._close_cancelled(input)
        if self._has_pending():
            await self._continue_as_new(input)
        return await self._finish(input)

    def _begin(self, input: BackfillInput) -> None:
        self._input_cap = input.max_concurrent_runs
        if input.carried is not None:
            self._progress = input.carried
            return
        progress = self._progress
        progress.total = (input.range_end - input.range_start).days + 1
        newest_first = input.run_order == RunOrder.NEWEST_FIRST
        progress.next_date = input.range_end if newest_first else input.range_start
        progress.max_failed_runs = input.max_failed_runs
        progress.paused = input.paused
        progress.paused_reason = input.paused_reason

    async def _continue_as_new(self, input: BackfillInput) -> None:
        await self._controls_recorded()
        workflow.continue_as_new(replace(input, carried=self._progress))

    async def _plan(self, input: BackfillInput) -> None:
        """Plan the range; a backfill of chosen dates (a retry of a cancelled one) was
        planned when it was created: it runs exactly the dates it holds."""
        if not input.planned_at_create:
            await self._plan_runs(input)
            return
        dates = await self._record(RecordActivities.planned_dates, BackfillRef(input.backfill_id))
        progress = self._progress
        progress.requeued = dates[::-1] if input.run_order == RunOrder.NEWEST_FIRST else dates
        progress.total = progress.planned = len(dates)
        progress.next_date = None

    async def _plan_runs(self, input: BackfillInput) -> None:
        """Create the run rows in batches; safe to repeat, rows that exist are kept."""
        self._progress.planned = 0
        first = input.range_start
        while first <= input.range_end:
            last = min(first + timedelta(days=PLAN_BATCH_DAYS - 1), input.range_end)
            await self._record(
                RecordActivities.plan_runs, PlanRunsInput(input.backfill_id, first, last)
            )
            self._progress.planned += (last - first).days + 1
            first = last + timedelta(days=1)

    async def _dispatch(self, input: BackfillInput) -> None:
        """Start runs until none is pending, a cancel, or this run's budget; never more in
        flight than the live cap, and none while paused."""
        started = 0
        try:
            while self._has_pending() and self._cancel is None:
                if started >= input.runs_per_workflow_run or self._history_is_long():
                    break
                await workflow.wait_condition(
                    lambda: self._may_start(input) or self._cancel is not None
                )
                if self._cancel is not None:
                    break
                self._start_run(input, self._take_next(input))
                started += 1
        except asyncio.CancelledError:
            self.cancel(CancelRequest(user_id=None))
        await self._drain(input)

    def _may_start(self, input: BackfillInput) -> bool:
        cap = self._progress.max_concurrent_runs or input.max_concurrent_runs
        return not self._progress.paused and self._progress.in_flight < cap

    def _has_pending(self) -> bool:
        return bool(self._progress.requeued) or self._progress.next_date is not None

    def _take_next(self, input: BackfillInput) -> date:
        """The next date to run: a retried one first, then the range in the run order."""
        progress = self._progress
        if progress.requeued:
            return progress.requeued.pop(0)
        taken = progress.next_date
        assert taken is not None
        if input.run_order == RunOrder.NEWEST_FIRST:
            earlier = taken - timedelta(days=1)
            progress.next_date = earlier if earlier >= input.range_start else None
        else:
            later = taken + timedelta(days=1)
            progress.next_date = later if later <= input.range_end else None
        return taken

    async def _drain(self, input: BackfillInput) -> None:
        """Wait for the runs in flight; record a cancel as soon as one is asked for."""
        while True:
            try:
                if self._cancel is not None and not self._cancel_recorded:
                    await self._record_cancel(input)
                await workflow.wait_condition(
                    lambda: (
                        self._progress.in_flight == 0
                        or (self._cancel is not None and not self._cancel_recorded)
                    )
                )
                if self._progress.in_flight == 0 and (
                    self._cancel is None or self._cancel_recorded
                ):
                    return
            except asyncio.CancelledError:
                self.cancel(CancelRequest(user_id=None))

    def _start_run(self, input: BackfillInput, data_date: date) -> None:
        self._progress.in_flight += 1
        if self._progress.status == BackfillStatus.SCHEDULED:
            self._set_status(BackfillStatus.RUNNING)
        else:
            self._describe_progress()
        task = asyncio.create_task(self._run_one(input, data_date))
        self._runs.add(task)
        task.add_done_callback(self._runs.discard)

    async def _run_one(self, input: BackfillInput, data_date: date) -> None:
        policy = input.run_policy
        started = workflow.now()
        try:
            result = await workflow.execute_activity_method(
                TransferRunActivities.run_transfer,
                TransferRunInput(input.backfill_id, input.transfer_id, data_date, input.team_id),
                start_to_close_timeout=timedelta(seconds=policy.timeout_seconds),
                heartbeat_timeout=timedelta(seconds=policy.heartbeat_timeout_seconds),
                retry_policy=run_retry_policy(policy),
                summary=f"data_date {data_date.isoformat()}",
            )
            outcome = result.outcome
        except ActivityError as err:
            await self._record(
                RecordActivities.fail_run,
                FailRunInput(
                    input.backfill_id, data_date, describe_failure(err, policy.max_attempts)
                ),
            )
            outcome = RunOutcome.FAILED
        finally:
            self._progress.in_flight -= 1
        if outcome == RunOutcome.COMPLETED:
            self._progress.runs_timed += 1
            self._progress.run_seconds_timed += (workflow.now() - started).total_seconds()
        self._count(outcome)

    def _count(self, outcome: RunOutcome) -> None:
        if outcome == RunOutcome.COMPLETED:
            self._progress.completed += 1
        elif outcome == RunOutcome.FAILED:
            self._progress.failed += 1
            self._check_failure_budget()
        else:
            self._progress.skipped += 1
        self._describe_progress()

    async def _record_cancel(self, input: BackfillInput) -> None:
        assert self._cancel is not None
        await self._record(
            RecordActivities.record_cancel,
            CancelRecordInput(input.backfill_id, self._cancel.user_id),
        )
        self._cancel_recorded = True
        self._set_status(BackfillStatus.CANCELLED)

    async def _close_cancelled(self, input: BackfillInput) -> BackfillResult:
        """Dates not yet planned when the cancel came get CANCELLED runs, then it is done."""
        await self._drain(input)
        if self._progress.planned < self._progress.total:
            await self._plan_runs(input)
        return await self._closed()

    async def _finish(self, input: BackfillInput) -> BackfillResult:
        """Close the record. A FAILED backfill keeps its workflow open until it is retried
        (its failed dates run again, and it closes anew) or cancelled; histories recorded
        before that change fail the workflow instead, or complete."""
        while True:
            status = await self._record(
                RecordActivities.finish_backfill, BackfillRef(input.backfill_id)
            )
            self._set_status(status)
            if status != BackfillStatus.FAILED or not self._failed_waits_for_cancel:
                break
            if not await self._wait_for_retry_or_cancel(input):
                return await self._closed()
            await self._dispatch(input)
            if self._cancel is not None:
                return await self._close_cancelled(input)
            if self._has_pending():
                await self._continue_as_new(input)
        result = await self._closed()
        if status == BackfillStatus.FAILED and workflow.patched(FAILED_BACKFILL_FAILS_WORKFLOW):
            raise ApplicationError(
                f"{result.failed} of {self._progress.total} runs failed; the backfill's "
                "error_report lists them",
                result,
                type=BACKFILL_FAILED,
                non_retryable=True,
            )
        return result

    async def _wait_for_retry_or_cancel(self, input: BackfillInput) -> bool:
        """A FAILED backfill may still be retried or cancelled (by the API, which signals,
        or from the Temporal UI). True when a retry put dates back to run; False once a
        cancel is recorded."""
        while True:
            try:
                await workflow.wait_condition(
                    lambda: self._cancel is not None or self._retry is not None
                )
            except asyncio.CancelledError:
                self.cancel(CancelRequest(user_id=None))
            if self._cancel is not None:
                await self._record_cancel(input)
                return False
            request, self._retry = self._retry, None
            assert request is not None
            dates = await self._record(
                RecordActivities.prepare_retry, RetryInput(input.backfill_id, request.data_dates)
            )
            if dates:
                self.resume()  # the record was resumed with the retry
                self._progress.requeued.extend(dates)
                self._progress.failed = max(0, self._progress.failed - len(dates))
                self._progress.retries += 1
                self._set_status(BackfillStatus.RUNNING)
                return True

    async def _closed(self) -> BackfillResult:
        await self._controls_recorded()
        return self._result()

    def _pause(self, reason: str) -> None:
        if not self._progress.paused:
            self._progress.paused = True
            self._progress.paused_reason = reason
            self._control_changed = True
            self._upsert_paused()

    def _check_failure_budget(self) -> None:
        """Pause once the failed runs reach the budget: fix the source, then resume."""
        budget = self._progress.max_failed_runs
        if budget is not None and self._progress.failed >= budget:
            self._pause(
                f"the failure budget is spent: {self._progress.failed} runs failed "
                f"(max_failed_runs {budget})"
            )

    async def _keep_control_recorded(self, input: BackfillInput) -> None:
        """Write pauses, resumes and limits to the record in the order they came (the API
        has usually written them already; then this is a no-op)."""
        while True:
            await workflow.wait_condition(lambda: self._control_changed)
            self._control_changed = False
            self._control_recording = True
            progress = self._progress
            await self._record(
                RecordActivities.record_control,
                ControlRecordInput(
                    input.backfill_id,
                    paused=progress.paused,
                    paused_reason=progress.paused_reason,
                    max_concurrent_runs=progress.max_concurrent_runs,
                    max_failed_runs=progress.max_failed_runs,
                ),
            )
            self._control_recording = False

    async def _controls_recorded(self) -> None:
        await workflow.wait_condition(
            lambda: not self._control_changed and not self._control_recording
        )

    def _upsert_paused(self) -> None:
        workflow.upsert_search_attributes(
            [search_attributes.BACKFILL_PAUSED.value_set(self._progress.paused)]
        )
        self._describe_progress()

    async def _record(self, activity: Callable[[Any, ArgT], ResultT], arg: ArgT) -> ResultT:
        """Run a bookkeeping activity to its end: a cancellation request meanwhile is taken
        as a cancel (the caller stops starting runs), never as a reason to drop the write."""
        handle = workflow.start_activity_method(
            activity,
            arg,
            start_to_close_timeout=RECORD_TIMEOUT,
            retry_policy=RECORD_RETRY,
            task_queue=self._records_queue,
        )
        while True:
            try:
                if not self._bookkeeping_outlasts_cancellation:
                    return await handle
                return await asyncio.shield(handle)
            except asyncio.CancelledError:
                if not self._bookkeeping_outlasts_cancellation:
                    raise
                self.cancel(CancelRequest(user_id=None))
            except ActivityError as err:
                missing = _record_missing(err)
                if missing is None:
                    raise
                raise missing from None

    def _set_status(self, status: str) -> None:
        if status == self._progress.status:
            return
        self._progress.status = status
        workflow.upsert_search_attributes([search_attributes.BACKFILL_STATUS.value_set(status)])
        self._describe_progress()

    def _describe_progress(self) -> None:
        """The words the Temporal UI shows as the workflow's current details (no command)."""
        progress = self._progress
        active = progress.status in ACTIVE_BACKFILL_STATUSES
        cap = progress.max_concurrent_runs or self._input_cap
        progress.estimated_end_time = (
            estimated_end(progress, cap, workflow.now()) if active else None
        )
        paused = f", paused ({progress.paused_reason})" if progress.paused else ""
        eta = progress.estimated_end_time
        ends = f", ends about {eta:%Y-%m-%d %H:%M} UTC" if eta is not None else ""
        workflow.set_current_details(
            f"{progress.status}{paused}: {progress.completed} completed, {progress.failed} "
            f"failed, {progress.in_flight} running, of {progress.total} runs{ends}"
        )

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return info.get_current_history_length() > HISTORY_SOFT_LIMIT or (
            info.is_continue_as_new_suggested()
        )

    def _result(self) -> BackfillResult:
        return BackfillResult(
            status=self._progress.status,
            completed=self._progress.completed,
            failed=self._progress.failed,
            skipped=self._progress.skipped,
        )


def run_retry_policy(policy: RunPolicy) -> RetryPolicy:
    """How a transfer run's attempts are retried, a backfill's or a recurring one."""
    return RetryPolicy(
        initial_interval=timedelta(seconds=policy.initial_retry_seconds),
        maximum_interval=timedelta(seconds=policy.max_retry_seconds),
        maximum_attempts=policy.max_attempts,
        non_retryable_error_types=[PERMANENT_RUN_ERROR],
    )


def _record_missing(err: ActivityError) -> ApplicationError | None:
    """The workflow's own failure when its backfill has no record: nothing to do, ever."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type == RECORD_MISSING:
        return ApplicationError(cause.message, type=RECORD_MISSING, non_retryable=True)
    return None


def describe_failure(err: ActivityError, max_attempts: int) -> str:
    """What a user should read about a run that failed after its retries."""
    cause = err.cause
    if isinstance(cause, ApplicationError):
        if cause.non_retryable or cause.type == PERMANENT_RUN_ERROR:
            return cause.message
        return f"{cause.message} (gave up after {max_attempts} attempts)"
    if isinstance(cause, TimeoutError):
        return f"the run timed out ({cause.type.name if cause.type else 'timeout'})"
    return str(cause or err)
