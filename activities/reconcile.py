"""Reconciliation of records and workflows that got out of step.

- A backfill still CREATED after a grace period has no workflow (the API could not start it
  and could not discard the record either): start it; starting is idempotent by workflow id.
- A backfill workflow that closed without closing its record (an operator terminated it, or
  it timed out) leaves the record RUNNING: fail it, saying why in its error_report.

Temporal's client side comes in as a `BackfillWorkflows` (the worker passes
`temporal_client.BackfillWorkflowClient`): activities never import the client, which imports
the workflows, which import the activities.
"""

import asyncio
from collections.abc import AsyncIterator, Collection
from datetime import datetime, timedelta
from typing import Protocol

from temporalio import activity
from temporalio.client import WorkflowExecutionStatus

from activities.inputs import ReconcileInput, ReconcileResult
from persistence import backfills, transfers
from persistence.clock import utcnow
from persistence.db import Database
from persistence.models import Backfill, Transfer

ABANDONED = {
    WorkflowExecutionStatus.TERMINATED: "the backfill's workflow was terminated by an operator",
    WorkflowExecutionStatus.TIMED_OUT: "the backfill's workflow timed out",
    WorkflowExecutionStatus.FAILED: "the backfill's workflow failed",
}


class BackfillWorkflows(Protocol):
    """The backfill workflows as reconciling needs them."""

    async def start(self, backfill: Backfill, transfer: Transfer) -> bool:
        """Start the backfill's workflow; False when it exists already."""
        ...

    def closed(
        self, *, among: Collection[WorkflowExecutionStatus], closed_since: datetime
    ) -> AsyncIterator[tuple[int, WorkflowExecutionStatus]]:
        """Backfill id and status of each workflow that closed in one of `among` after
        `closed_since` without its record having been closed."""
        ...


class ReconcileActivities:
    def __init__(self, db: Database, workflows: BackfillWorkflows) -> None:
        self.db = db
        self.workflows = workflows

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
                transfers.get_transfer_for_worker, db=self.db, transfer_id=backfill.transfer_id
            )
            if not await self.workflows.start(backfill, transfer):
                continue
            activity.logger.info("started the workflow of backfill %s", backfill.id)
            started += 1
        return started

    async def _fail_abandoned(self, input: ReconcileInput) -> int:
        since = utcnow() - timedelta(hours=input.closed_within_hours)
        failed = 0
        async for backfill_id, status in self.workflows.closed(
            among=ABANDONED.keys(), closed_since=since
        ):
            reason = ABANDONED.get(status)
            if reason is None:
                continue
            if await asyncio.to_thread(
                backfills.fail_abandoned_backfill,
                db=self.db,
                backfill_id=backfill_id,
                reason=reason,
            ):
                activity.logger.info("backfill %s failed: %s", backfill_id, reason)
                failed += 1
        return failed
