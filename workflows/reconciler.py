"""A singleton workflow that runs the reconcile activity on an interval, forever.

Every worker asks for it at start-up; the fixed workflow id keeps it to one. It never dies
of a failed round: an outage of the database or of Temporal, however long, only fails
rounds, and the next round after they are back repairs what they left.
"""

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.inputs import ReconcileInput
    from activities.reconcile import ReconcileActivities

RECONCILER_ID = "backfills-reconciler"


@dataclass(frozen=True)
class ReconcilerInput:
    """The settings' numbers (`temporal_client.reconciler_input`); no default restates them."""

    interval_seconds: float
    created_grace_seconds: float
    rounds_per_run: int = 500  # rounds before it continues as new
    records_task_queue: str | None = None  # None (inputs from before it existed): the workflow's


@workflow.defn(name="Reconciler")
class ReconcilerWorkflow:
    @workflow.run
    async def run(self, input: ReconcilerInput) -> None:
        for _ in range(input.rounds_per_run):
            try:
                await workflow.execute_activity_method(
                    ReconcileActivities.reconcile,
                    ReconcileInput(created_grace_seconds=input.created_grace_seconds),
                    start_to_close_timeout=timedelta(minutes=5),
                    heartbeat_timeout=timedelta(minutes=1),
                    retry_policy=RetryPolicy(maximum_attempts=3),
                    task_queue=input.records_task_queue,
                )
            except ActivityError as err:
                workflow.logger.warning("a reconcile round failed, next in a while: %s", err)
            await workflow.sleep(timedelta(seconds=input.interval_seconds))
        workflow.continue_as_new(input)
