"""Reconciliation of records and workflows that got out of step.

The database is the list to check, so no backfill is ever forgotten, however long ago its
workflow went wrong: every backfill whose record says it should have a workflow running
(CREATED past a grace period, SCHEDULED, RUNNING) and that is not among the open backfill
workflows is described by its workflow id, and then:

- no workflow at all: a CREATED backfill is started (the API kept the record but could not
  start it); a SCHEDULED or RUNNING one lost its workflow (deleted, say) and is failed;
- a workflow that closed without closing the record is repaired by how it closed: cancelled
  → the record is CANCELLED; terminated, timed out, failed, completed or continued as new
  with no successor → FAILED, saying why in the error_report.

A closed workflow is never started again (an operator who terminated a backfill meant it).

Temporal's client side comes in as a `BackfillWorkflows` (the worker passes
`temporal_client.BackfillWorkflowClient`): activities never import the client, which imports
the workflows, which import the activities.
"""

import asyncio
from dataclasses import replace
from datetime import timedelta
from typing import Protocol

from temporalio import activity
from temporalio.client import WorkflowExecutionStatus

from activities.inputs import ReconcileInput, ReconcileResult
from activities.schedule_repair import TransferSchedules, repair_schedules
from persistence import backfills, transfers
from persistence.clock import utcnow
from persistence.db import Database
from persistence.models import Backfill, Transfer
from statuses import BackfillStatus

CLOSED_WITHOUT_RECORD = {
    WorkflowExecutionStatus.TERMINATED: "the backfill's workflow was terminated by an operator",
    WorkflowExecutionStatus.TIMED_OUT: "the backfill's workflow timed out",
    WorkflowExecutionStatus.FAILED: "the backfill's workflow failed",
    WorkflowExecutionStatus.COMPLETED: "the backfill's workflow ended without closing it",
    WorkflowExecutionStatus.CONTINUED_AS_NEW: (
        "the backfill's workflow continued as new, but its next run does not exist"
    ),
    WorkflowExecutionStatus.CANCELED: "cancelled: its workflow was cancelled from Temporal",
}
WORKFLOW_GONE = "the backfill's workflow no longer exists in Temporal"


class BackfillWorkflows(Protocol):
    """The backfill workflows as reconciling needs them."""

    async def start(self, backfill: Backfill, transfer: Transfer) -> bool:
        """Start the backfill's workflow; False when one exists already, open or closed."""
        ...

    async def open_backfill_ids(self) -> set[int]:
        """The backfill ids of every open backfill workflow (a hint: visibility lags)."""
        ...

    async def status(self, backfill_id: int) -> WorkflowExecutionStatus | None:
        """The status of the backfill's latest workflow run; None when there is none."""
        ...


class ReconcileActivities:
    def __init__(
        self,
        db: Database,
        workflows: BackfillWorkflows,
        schedules: TransferSchedules | None = None,
    ) -> None:
        self.db = db
        self.workflows = workflows
        self.schedules = schedules

    @activity.defn(name="reconcile")
    async def reconcile(self, input: ReconcileInput) -> ReconcileResult:
        """Repair the backfills, then the transfers' Schedules (activities/schedule_repair.py)."""
        result = await self._reconcile_backfills(input)
        if self.schedules is None:
            return result
        repaired = await repair_schedules(self.db, self.schedules)
        return replace(result, schedules_repaired=repaired)

    async def _reconcile_backfills(self, input: ReconcileInput) -> ReconcileResult:
        created_before = utcnow() - timedelta(seconds=input.created_grace_seconds)
        suspects = await asyncio.to_thread(
            backfills.backfills_expecting_a_workflow, db=self.db, created_before=created_before
        )
        if not suspects:
            return ReconcileResult(started=0, failed=0)
        open_ids = await self.workflows.open_backfill_ids()
        started = failed = 0
        for backfill_id, status in suspects:
            if backfill_id in open_ids:
                continue
            activity.heartbeat(backfill_id)
            outcome = await self._check(backfill_id, BackfillStatus(status))
            started += outcome == "started"
            failed += outcome == "closed"
        return ReconcileResult(started=started, failed=failed)

    async def _check(self, backfill_id: int, status: BackfillStatus) -> str:
        """Describe the backfill's workflow (the truth, unlike visibility) and repair."""
        workflow_status = await self.workflows.status(backfill_id)
        if workflow_status == WorkflowExecutionStatus.RUNNING:
            return "running"
        if workflow_status is None and status == BackfillStatus.CREATED:
            return "started" if await self._start(backfill_id) else "running"
        reason = (
            WORKFLOW_GONE if workflow_status is None else CLOSED_WITHOUT_RECORD.get(workflow_status)
        )
        if reason is None:  # a status Temporal may add one day: leave the record alone
            return "unchanged"
        final = (
            BackfillStatus.CANCELLED
            if workflow_status == WorkflowExecutionStatus.CANCELED
            else BackfillStatus.FAILED
        )
        closed = await asyncio.to_thread(
            backfills.close_abandoned_backfill,
            db=self.db,
            backfill_id=backfill_id,
            status=final,
            reason=reason,
        )
        if closed:
            activity.logger.info("backfill %s ended %s: %s", backfill_id, final, reason)
        return "closed" if closed else "unchanged"

    async def _start(self, backfill_id: int) -> bool:
        backfill = await asyncio.to_thread(
            backfills.get_backfill_for_worker, db=self.db, backfill_id=backfill_id
        )
        transfer = await asyncio.to_thread(
            transfers.get_transfer_for_worker, db=self.db, transfer_id=backfill.transfer_id
        )
        if not await self.workflows.start(backfill, transfer):
            return False
        activity.logger.info("started the workflow of backfill %s", backfill_id)
        return True
