"""Inputs and results of the activities: one dataclass each, shared with the workflow."""

from dataclasses import dataclass
from datetime import date, datetime

from statuses import RunOutcome


@dataclass(frozen=True)
class BackfillRef:
    backfill_id: int


@dataclass(frozen=True)
class PlanRunsInput:
    backfill_id: int
    first: date
    last: date


@dataclass(frozen=True)
class CancelRecordInput:
    backfill_id: int
    user_id: int | None


@dataclass(frozen=True)
class ControlRecordInput:
    """A pause, resume or change of limits, written to the record as the workflow has it."""

    backfill_id: int
    paused: bool
    paused_reason: str | None
    max_concurrent_runs: int | None
    max_failed_runs: int | None


@dataclass(frozen=True)
class RetryInput:
    backfill_id: int
    data_dates: list[date] | None = None  # None: every failed date


@dataclass(frozen=True)
class FailRunInput:
    backfill_id: int
    data_date: date
    message: str


@dataclass(frozen=True)
class TransferRunInput:
    backfill_id: int
    transfer_id: int
    data_date: date
    team_id: int | None = None  # for log lines; None in histories recorded before it existed


@dataclass(frozen=True)
class RecurringRunInput:
    """One firing of a transfer's schedule: the run loads the day `data_date_offset_days`
    before `firing_time` in `time_zone` (recurring/spec.py)."""

    team_id: int
    transfer_id: int
    firing_time: datetime
    time_zone: str
    data_date_offset_days: int


@dataclass(frozen=True)
class RecurringRunRef:
    transfer_id: int
    firing_time: datetime


@dataclass(frozen=True)
class FailRecurringRunInput:
    transfer_id: int
    firing_time: datetime
    message: str
    # to record a firing no attempt ever made a run of (None in older workflows' inputs)
    team_id: int | None = None
    time_zone: str | None = None
    data_date_offset_days: int | None = None


@dataclass(frozen=True)
class TransferRunResult:
    outcome: RunOutcome
    rows: int = 0


PERMANENT_RUN_ERROR = "PermanentRunError"
TRANSIENT_RUN_ERROR = "TransientRunError"
INTERNAL_RUN_ERROR = "InternalRunError"  # the service failed, not the connector: retried
RECORD_MISSING = "BackfillRecordMissing"  # a bookkeeping activity found no backfill: final
# A newer attempt of the run has begun (Temporal gave up on this one): it commits nothing.
SUPERSEDED_ATTEMPT_ERROR = "SupersededAttemptError"


@dataclass(frozen=True)
class ReconcileInput:
    created_grace_seconds: float
    closed_within_hours: float = 24.0  # unused: kept so recorded inputs still decode


@dataclass(frozen=True)
class ReconcileResult:
    started: int
    failed: int
    schedules_repaired: int = 0
