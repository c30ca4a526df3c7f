"""The run activity's own calls to the service database, retried through its blips.

When the service's database fails for a moment (a restart, a failover, a dropped connection,
SQLite's write lock held past the busy timeout), the run did not fail: its bookkeeping did.
Failing the attempt would cost one of the run's max_attempts and, on the last one, make
"internal error (run ...)" the run's message. So `retried` repeats such a call with
exponential backoff (FIRST_DELAY_SECONDS doubling up to MAX_DELAY_SECONDS) for as long as
the attempt has time left before its start-to-close timeout (less MARGIN_SECONDS, to fail
cleanly); the heartbeat ticker (activities/heartbeats.py) beats meanwhile.

Only failures of the connection or of the moment are retried: SQLAlchemy's OperationalError
and InterfaceError from PostgreSQL, any error that invalidated its connection, a pool
checkout timeout, and SQLite's "database is locked". A programming error (bad SQL, a missing
table, a constraint) fails at once: repeating it cannot help.

Every call retried here is one guarded transaction, safe to repeat after a commit whose
answer was lost: begin_run finds its run RUNNING and goes on, complete_run answers False and
the activity reads the record.
"""

import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import ParamSpec, TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from temporalio import activity

FIRST_DELAY_SECONDS = 0.1
MAX_DELAY_SECONDS = 5.0
MARGIN_SECONDS = 5.0
WITHOUT_DEADLINE = timedelta(minutes=10)  # an activity with no timeout at all (tests)
SQLITE_MOMENTARY = ("database is locked", "database table is locked")

P = ParamSpec("P")
T = TypeVar("T")


def retried(call: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """`call(*args, **kwargs)`, repeated while it fails momentarily and time is left."""
    deadline = _deadline()
    delay = FIRST_DELAY_SECONDS
    while True:
        try:
            return call(*args, **kwargs)
        except Exception as exc:
            left = (deadline - datetime.now(UTC)).total_seconds()
            if not is_momentary(exc) or left < delay + MARGIN_SECONDS:
                raise
            activity.logger.warning(
                "the service database failed (%s in %s); retrying in %.1f s",
                type(exc).__name__,
                getattr(call, "__name__", "a call"),
                delay,
            )
        time.sleep(delay)
        delay = min(delay * 2, MAX_DELAY_SECONDS)


def is_momentary(exc: BaseException) -> bool:
    """Whether `exc` is the service database failing for now, not the statement."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, PoolTimeoutError):
        return True
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    if isinstance(exc.orig, sqlite3.Error):  # SQLite says OperationalError for bad SQL too
        return any(text in str(exc.orig).lower() for text in SQLITE_MOMENTARY)
    return True


def _deadline() -> datetime:
    """When this attempt times out: the earlier of its start-to-close and its
    schedule-to-close deadlines."""
    info = activity.info()
    deadlines = []
    if info.start_to_close_timeout:
        deadlines.append(info.started_time + info.start_to_close_timeout)
    if info.schedule_to_close_timeout:
        deadlines.append(info.scheduled_time + info.schedule_to_close_timeout)
    return min(deadlines, default=datetime.now(UTC) + WITHOUT_DEADLINE)
