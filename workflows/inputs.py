"""The backfill workflow's input, messages and result: one dataclass each.

The input's numbers are the settings' (`temporal_client.backfill_input` fills them in): none
has a default here, so none can drift from the one in config.py.
"""

from dataclasses import dataclass, field
from datetime import date, datetime

from statuses import BackfillStatus, RunOrder


@dataclass(frozen=True)
class RunPolicy:
    """How one transfer run is retried and timed out."""

    max_attempts: int
    initial_retry_seconds: float
    max_retry_seconds: float
    timeout_seconds: float
    heartbeat_timeout_seconds: float


@dataclass
class Progress:
    """Counts as this workflow has seen them; the database record is the source of truth."""

    total: int = 0
    planned: int = 0
    completed: int = 0
    failed: int = 0
    skipped: int = 0
    in_flight: int = 0
    next_date: date | None = None
    status: str = BackfillStatus.CREATED
    cancel_requested: bool = False
    paused: bool = False
    paused_reason: str | None = None
    max_concurrent_runs: int | None = None  # set live; None: the input's
    max_failed_runs: int | None = None  # the failure budget; None: none
    requeued: list[date] = field(default_factory=list)  # dates to run before `next_date`
    retries: int = 0
    # per kind of API signal (pause, limits, retry): the sequence of the last one applied
    applied_signals: dict[str, int] = field(default_factory=dict)
    runs_timed: int = 0  # completed runs this workflow timed, and their seconds
    run_seconds_timed: float = 0.0
    estimated_end_time: datetime | None = None  # workflow/estimate.py; None: unknown


@dataclass(frozen=True)
class CancelRequest:
    """The `cancel` signal: `user_id` is the API caller, or None for an operator."""

    user_id: int | None = None
    sequence: int | None = None  # the API's (persistence/outbox.py); None: an operator's


@dataclass(frozen=True)
class PauseRequest:
    """The `pause` signal: no run starts until `resume`; the runs in flight finish."""

    reason: str | None = None
    sequence: int | None = None  # the API's (persistence/outbox.py); None: an operator's


@dataclass(frozen=True)
class ResumeRequest:
    """The `resume` signal: it undoes a pause, whoever paused."""

    sequence: int | None = None  # the API's (persistence/outbox.py); None: an operator's


@dataclass(frozen=True)
class LimitsRequest:
    """The `set_limits` signal: each field given replaces the live value."""

    max_concurrent_runs: int | None = None
    max_failed_runs: int | None = None
    remove_failure_budget: bool = False
    sequence: int | None = None  # the API's (persistence/outbox.py); None: an operator's


@dataclass(frozen=True)
class RetryRequest:
    """The `retry` signal to a FAILED backfill: re-run its failed dates (all, or these)."""

    data_dates: list[date] | None = None
    sequence: int | None = None  # the API's (persistence/outbox.py); None: an operator's


@dataclass(frozen=True)
class BackfillInput:
    backfill_id: int
    team_id: int
    transfer_id: int
    range_start: date
    range_end: date
    max_concurrent_runs: int
    run_policy: RunPolicy
    runs_per_workflow_run: int
    carried: Progress | None = None  # set when continued as new
    # The record's control fields when it started (defaults: inputs from before they existed).
    run_order: str = RunOrder.OLDEST_FIRST
    max_failed_runs: int | None = None
    paused: bool = False
    paused_reason: str | None = None
    planned_at_create: bool = False  # its runs exist already: chosen dates, not the range
    # The bookkeeping activities' queue; None (inputs from before it existed): the workflow's.
    records_task_queue: str | None = None


@dataclass(frozen=True)
class BackfillResult:
    status: str
    completed: int
    failed: int
    skipped: int


@dataclass(frozen=True)
class RecurringInput:
    """A transfer's Schedule starts one RecurringRun per firing with this input: the run
    loads the day `data_date_offset_days` before the firing's scheduled time in
    `time_zone`. `firing_time` is for a start without a Schedule (a test, a manual run);
    otherwise the Schedule's own `TemporalScheduledStartTime` is the firing."""

    team_id: int
    transfer_id: int
    time_zone: str
    data_date_offset_days: int
    run_policy: RunPolicy
    records_task_queue: str
    firing_time: datetime | None = None
