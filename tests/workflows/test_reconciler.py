"""The reconciler workflow never dies: rounds that fail (the database or Temporal away, for
as long as it takes) are followed by more rounds, in the time-skipping test server."""

import uuid

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from tests.support import terminate_if_running
from tests.workflows.conftest import WorkerFactory
from tests.workflows.doubles import FlakyReconcile
from tests.workflows.histories import record_history
from workflows.reconciler import ReconcilerInput, ReconcilerWorkflow


async def test_the_reconciler_outlives_failed_rounds_and_resumes_by_itself(
    client: Client, serving: WorkerFactory, time_skipping: WorkflowEnvironment
) -> None:
    reconcile = FlakyReconcile(failures=4)
    async with serving([reconcile.reconcile]) as queue:
        handle = await client.start_workflow(
            ReconcilerWorkflow.run,
            ReconcilerInput(interval_seconds=30, created_grace_seconds=60, rounds_per_run=3),
            id=f"reconciler-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
        )
        try:
            for _ in range(12):
                if reconcile.calls > reconcile.failures + 2:
                    break
                await time_skipping.sleep(60)
            description = await handle.describe()
            await record_history(client, handle.id, "reconciler-after-failed-rounds")
        finally:
            await terminate_if_running(handle)

    assert reconcile.calls > reconcile.failures + 2  # rounds went on after the outage
    assert description.status == WorkflowExecutionStatus.RUNNING
    assert description.run_id != handle.first_execution_run_id  # and it continued as new
