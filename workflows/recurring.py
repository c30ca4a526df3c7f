"""The recurring-run workflow: one firing of a transfer's Schedule runs its Recurring run.

It orchestrates only: the run is the `run_recurring_transfer` activity (the same attempt as a
backfill run's, on the recurring task queue), and a run that failed after its retries is
recorded FAILED by a bookkeeping activity that no cancellation interrupts. The firing is the
Schedule's scheduled start time, so a firing delivered twice is one run.
"""

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import SearchAttributeKey
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.inputs import FailRecurringRunInput, RecurringRunInput
    from activities.records import RecordActivities
    from activities.transfer_run import TransferRunActivities
    from statuses import RunOutcome
    from workflows.backfill import (
        RECORD_RETRY,
        RECORD_TIMEOUT,
        describe_failure,
        run_retry_policy,
    )
    from workflows.inputs import RecurringInput

RECURRING_RUN_WORKFLOW = "RecurringRun"
SCHEDULED_START_TIME = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")


@workflow.defn(name=RECURRING_RUN_WORKFLOW)
class RecurringRunWorkflow:
    @workflow.run
    async def run(self, input: RecurringInput) -> RunOutcome:
        firing = self._firing_time(input)
        policy = input.run_policy
        try:
            result = await workflow.execute_activity_method(
                TransferRunActivities.run_recurring_transfer,
                RecurringRunInput(
                    team_id=input.team_id,
                    transfer_id=input.transfer_id,
                    firing_time=firing,
                    time_zone=input.time_zone,
                    data_date_offset_days=input.data_date_offset_days,
                ),
                start_to_close_timeout=timedelta(seconds=policy.timeout_seconds),
                heartbeat_timeout=timedelta(seconds=policy.heartbeat_timeout_seconds),
                retry_policy=run_retry_policy(policy),
                summary=f"firing {firing.isoformat()}",
            )
        except ActivityError as err:
            message = describe_failure(err, policy.max_attempts)
            await workflow.execute_activity_method(
                RecordActivities.fail_recurring_run,
                FailRecurringRunInput(
                    input.transfer_id,
                    firing,
                    message,
                    team_id=input.team_id,
                    time_zone=input.time_zone,
                    data_date_offset_days=input.data_date_offset_days,
                ),
                start_to_close_timeout=RECORD_TIMEOUT,
                retry_policy=RECORD_RETRY,
                task_queue=input.records_task_queue,
            )
            return RunOutcome.FAILED
        return result.outcome

    def _firing_time(self, input: RecurringInput) -> datetime:
        scheduled = workflow.info().typed_search_attributes.get(SCHEDULED_START_TIME)
        return input.firing_time or scheduled or workflow.info().start_time
