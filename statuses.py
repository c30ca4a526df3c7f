"""Every status the service speaks of, and the sets of them its rules name: one module, with
no dependency but `enum`, so that workflow code imports it through the sandbox as freely as
the database models, the API, the activities and the command-line client do.

A member equals its string (`BackfillStatus.RUNNING == "RUNNING"`) and serializes as it, so
stored rows, JSON answers, search attributes and recorded histories read the same.
"""

from enum import StrEnum


class BackfillStatus(StrEnum):
    CREATED = "CREATED"
    SCHEDULED = "SCHEDULED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


# Not final: it may still change, and it blocks a backfill of an overlapping range. A FAILED
# backfill has no run left but can be cancelled.
INCOMPLETE_BACKFILL_STATUSES = (
    BackfillStatus.CREATED,
    BackfillStatus.SCHEDULED,
    BackfillStatus.RUNNING,
    BackfillStatus.FAILED,
)
# Its workflow should be running: runs may still start.
ACTIVE_BACKFILL_STATUSES = (
    BackfillStatus.CREATED,
    BackfillStatus.SCHEDULED,
    BackfillStatus.RUNNING,
)
# Processing has ended: no run of it starts any more (runs in flight may still finish).
ENDED_BACKFILL_STATUSES = (
    BackfillStatus.COMPLETED,
    BackfillStatus.FAILED,
    BackfillStatus.CANCELLED,
)


class RunStatus(StrEnum):
    CREATED = "CREATED"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


NOT_STARTED_RUN_STATUSES = (RunStatus.CREATED, RunStatus.QUEUED)
UNFINISHED_RUN_STATUSES = (*NOT_STARTED_RUN_STATUSES, RunStatus.RUNNING)


class RunOutcome(StrEnum):
    """What one `run_transfer` activity did with its run."""

    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"  # cancelled before it started: it never ran


class RunOrder(StrEnum):
    """The order a backfill starts its dates in."""

    OLDEST_FIRST = "OLDEST_FIRST"
    NEWEST_FIRST = "NEWEST_FIRST"


class QueryStatus(StrEnum):
    """The status of one query of a run (its `query_details`)."""

    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
