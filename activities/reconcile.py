"""Reconciliation of records and workflows that got out of step.

- A backfill still CREATED after a grace period has no workflow (the API could not start it
  and could not discard the record either): start it; starting is idempotent by workflow id.
- A backfill workflow that closed without closing its record (an operator terminated it, or
  it timed out) leaves the record RUNNING: fail it, saying why in its error_report.
"""

import asyncio
from datetime import timedelta

from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.exceptions import WorkflowAlreadyStartedError

from activities.inputs import ReconcileInput, ReconcileResult
from config import Settings
from persistence import backfills, runs, transfers
from persistence.clock import utcnow
from persistence.db import Database
from workflows import search_attributes
from workflows.client import start_backfill

ABANDONED = {
    WorkflowExecutionStatus.TERMINATED: "the backfill's workflow was terminated by an operator",
    WorkflowExecutionStatus.TIMED_OUT: "the backfill's workflow timed out",
    WorkflowExecutionStatus.FAILED: "the backfill's workflow failed",
}


class ReconcileActivities:
    def __init__(self, db: Database, client: Client, settings: Settings) -> None:
        self.db = db
        self.client = client
        self.settings = settings

    @activity.defn(name="reconcile")
    async def reconcile(self, input: ReconcileInput) -> ReconcileResult:
        return ReconcileResult(
            started=await self._start_stale_created(input),
            failed=await self._fail_abandoned(input),
        )

    async def _start_stale_created(self, input: ReconcileInput) -> int:
        older_than = utcnow() - timedelta(seconds=input.created_grace_seconds)
        stale = await asyncio.to_thread(
            backfills.stale_created_backfills, db=self.db, older_than=older_than
        )
        started = 0
        for backfill in stale:
            transfer = await asyncio.to_thread(
                transfers.get_transfer_for_run, db=self.db, transfer_id=backfill.transfer_id
            )
            try:
                await start_backfill(self.client, self.settings, backfill, transfer)
            except WorkflowAlreadyStartedError:
                continue
            activity.logger.info("started the workflow of backfill %s", backfill.id)
            started += 1
        return started

    async def _fail_abandoned(self, input: ReconcileInput) -> int:
        since = (utcnow() - timedelta(hours=input.closed_within_hours)).isoformat()
        statuses = ", ".join(f"'{s}'" for s in ("CREATED", "SCHEDULED", "RUNNING"))
        query = (
            "WorkflowType = 'Backfill' AND ExecutionStatus IN ('Terminated', 'TimedOut', 'Failed')"
            f" AND BackfillStatus IN ({statuses}) AND CloseTime > '{since}'"
        )
        failed = 0
        async for execution in self.client.list_workflows(query):
            backfill_id = execution.typed_search_attributes.get(search_attributes.BACKFILL_ID)
            reason = ABANDONED.get(execution.status or WorkflowExecutionStatus.FAILED)
            if backfill_id is None or reason is None:
                continue
            if await asyncio.to_thread(
                runs.fail_abandoned_backfill, db=self.db, backfill_id=backfill_id, reason=reason
            ):
                activity.logger.info("backfill %s failed: %s", backfill_id, reason)
                failed += 1
        return failed
