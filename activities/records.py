"""Activities that keep the backfill record: planning runs and status changes."""

from collections.abc import Callable

from temporalio import activity

from activities.inputs import BackfillRef, CancelRecordInput, FailRunInput, PlanRunsInput
from observability import worker_metrics as metrics
from persistence import backfills, runs
from persistence.db import Database
from persistence.errors import InvalidStateError


class RecordActivities:
    def __init__(self, db: Database) -> None:
        self.db = db

    @activity.defn(name="plan_runs")
    def plan_runs(self, input: PlanRunsInput) -> int:
        return runs.plan_runs(
            db=self.db, backfill_id=input.backfill_id, first=input.first, last=input.last
        )

    @activity.defn(name="mark_scheduled")
    def mark_scheduled(self, input: BackfillRef) -> None:
        backfills.mark_scheduled(db=self.db, backfill_id=input.backfill_id)

    @activity.defn(name="record_cancel")
    def record_cancel(self, input: CancelRecordInput) -> None:
        """Cancel the record unless it is already final (the API may have done it first)."""
        try:
            backfills.cancel_backfill(
                db=self.db, backfill_id=input.backfill_id, user_id=input.user_id
            )
        except InvalidStateError:
            activity.logger.info("backfill %s was already final", input.backfill_id)

    @activity.defn(name="fail_run")
    def fail_run(self, input: FailRunInput) -> None:
        if runs.fail_run(
            db=self.db,
            backfill_id=input.backfill_id,
            data_date=input.data_date,
            message=input.message,
        ):
            metrics.RUNS_FAILED.inc()

    @activity.defn(name="finish_backfill")
    def finish_backfill(self, input: BackfillRef) -> str:
        return backfills.finish_backfill(db=self.db, backfill_id=input.backfill_id).value

    def all(self) -> list[Callable[..., object]]:
        return [
            self.plan_runs,
            self.mark_scheduled,
            self.record_cancel,
            self.fail_run,
            self.finish_backfill,
        ]
