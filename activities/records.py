"""Activities that keep the backfill record: planning runs and status changes.

A backfill without a record (deleted by hand, or a workflow started for a create the API
undid) fails them with `RECORD_MISSING`, non-retryable: no retry can bring it back, and the
workflow ends at once saying so.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import date
from typing import Protocol, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.inputs import (
    RECORD_MISSING,
    BackfillRef,
    CancelRecordInput,
    ControlRecordInput,
    FailRecurringRunInput,
    FailRunInput,
    PlanRunsInput,
    RetryInput,
)
from observability import worker_metrics as metrics
from persistence import backfills, recurring_runs, runs
from persistence.db import Database
from persistence.errors import InvalidStateError, NotFoundError
from recurring.spec import data_date_of_firing

InputT = TypeVar("InputT", bound="_HasBackfill")
R = TypeVar("R")


class _HasBackfill(Protocol):
    @property
    def backfill_id(self) -> int: ...


def _missing_record_is_final(
    method: Callable[[RecordActivities, InputT], R],
) -> Callable[[RecordActivities, InputT], R]:
    @functools.wraps(method)
    def wrapper(self: RecordActivities, input: InputT) -> R:
        try:
            return method(self, input)
        except NotFoundError:
            raise ApplicationError(
                f"backfill {input.backfill_id} not found: it has no record, so its workflow "
                "has nothing to do",
                type=RECORD_MISSING,
                non_retryable=True,
            ) from None

    return wrapper


class RecordActivities:
    def __init__(self, db: Database) -> None:
        self.db = db

    @activity.defn(name="plan_runs")
    @_missing_record_is_final
    def plan_runs(self, input: PlanRunsInput) -> int:
        return runs.plan_runs(
            db=self.db, backfill_id=input.backfill_id, first=input.first, last=input.last
        )

    @activity.defn(name="mark_scheduled")
    @_missing_record_is_final
    def mark_scheduled(self, input: BackfillRef) -> None:
        backfills.mark_scheduled(db=self.db, backfill_id=input.backfill_id)

    @activity.defn(name="record_cancel")
    @_missing_record_is_final
    def record_cancel(self, input: CancelRecordInput) -> None:
        """Cancel the record unless it is already final (the API may have done it first)."""
        try:
            backfills.cancel_backfill(
                db=self.db, backfill_id=input.backfill_id, user_id=input.user_id
            )
        except InvalidStateError:
            activity.logger.info("backfill %s was already final", input.backfill_id)

    @activity.defn(name="fail_run")
    @_missing_record_is_final
    def fail_run(self, input: FailRunInput) -> None:
        if runs.fail_run(
            db=self.db,
            backfill_id=input.backfill_id,
            data_date=input.data_date,
            message=input.message,
        ):
            metrics.RUNS_FAILED.inc()

    @activity.defn(name="fail_recurring_run")
    def fail_recurring_run(self, input: FailRecurringRunInput) -> None:
        """A firing whose run failed after its retries: FAILED, with why. A firing whose
        every attempt failed before it made its run gets a FAILED run too, so that every
        firing leaves its record (not from older workflows, whose input cannot say its date)."""
        missing = None
        if input.team_id is not None and input.time_zone is not None:
            missing = recurring_runs.FiringRecord(
                team_id=input.team_id,
                data_date=data_date_of_firing(
                    input.firing_time, input.time_zone, input.data_date_offset_days or 0
                ),
            )
        if recurring_runs.fail_recurring_run(
            db=self.db,
            transfer_id=input.transfer_id,
            firing_time=input.firing_time,
            message=input.message,
            if_missing=missing,
        ):
            metrics.RUNS_FAILED.inc()

    @activity.defn(name="finish_backfill")
    @_missing_record_is_final
    def finish_backfill(self, input: BackfillRef) -> str:
        return backfills.finish_backfill(db=self.db, backfill_id=input.backfill_id).value

    @activity.defn(name="record_control")
    @_missing_record_is_final
    def record_control(self, input: ControlRecordInput) -> None:
        """Write a pause, resume or change of limits the workflow took (from the API, which
        wrote it already, or from an operator's signal)."""
        backfills.record_control(
            db=self.db,
            backfill_id=input.backfill_id,
            paused=input.paused,
            paused_reason=input.paused_reason,
            max_concurrent_runs=input.max_concurrent_runs,
            max_failed_runs=input.max_failed_runs,
        )

    @activity.defn(name="prepare_retry")
    @_missing_record_is_final
    def prepare_retry(self, input: RetryInput) -> list[date]:
        """The dates a retry runs again; the record goes back to RUNNING (unless the API
        did that already, in which case its dates waiting to run are returned)."""
        return backfills.retry_failed_dates(
            db=self.db, backfill_id=input.backfill_id, data_dates=input.data_dates, strict=False
        )

    @activity.defn(name="planned_dates")
    @_missing_record_is_final
    def planned_dates(self, input: BackfillRef) -> list[date]:
        """The dates of a backfill planned at its creation (chosen dates), in order."""
        return runs.waiting_dates(db=self.db, backfill_id=input.backfill_id)

    def all(self) -> list[Callable[..., object]]:
        return [
            self.plan_runs,
            self.mark_scheduled,
            self.record_cancel,
            self.fail_run,
            self.finish_backfill,
            self.record_control,
            self.prepare_retry,
            self.planned_dates,
            self.fail_recurring_run,
        ]
