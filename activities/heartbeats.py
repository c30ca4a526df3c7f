"""Heartbeats that do not depend on the work: a ticker thread beats while an activity works.

A sync activity can block anywhere for longer than its heartbeat timeout: a long source
query, a wait for a destination's lock or for SQLite's write lock, a large load, a retry of
the service database. Heartbeating only between steps would let Temporal time such an
attempt out and start a second one beside it. The ticker beats every
min(heartbeat_timeout / 3, MAX_INTERVAL_SECONDS) until the block ends, whatever the work does.

`activity.heartbeat()` is safe from another thread: for a sync activity on a thread pool the
worker hands it to the event loop (`asyncio.run_coroutine_threadsafe`, in
temporalio/worker/_activity.py), and the SDK drops a heartbeat of an attempt already done.
The ticker runs in a copy of the activity's contextvars, where `activity.heartbeat()` finds
the attempt's context.

A ticker beats even if the work hangs for good; such an attempt ends at its start-to-close
timeout instead, and the run's fence (RunContext.still_current) keeps an attempt that a
newer one has replaced from committing.
"""

import contextvars
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from temporalio import activity

MAX_INTERVAL_SECONDS = 2.0
STOP_WAIT_SECONDS = 1.0  # a beat stuck in the SDK must not hold the attempt's result back


def interval(heartbeat_timeout: timedelta | None) -> float:
    """Seconds between beats: three per heartbeat timeout, at most MAX_INTERVAL_SECONDS."""
    if heartbeat_timeout is None or heartbeat_timeout <= timedelta(0):
        return MAX_INTERVAL_SECONDS
    return min(heartbeat_timeout.total_seconds() / 3, MAX_INTERVAL_SECONDS)


@contextmanager
def heartbeating() -> Iterator[None]:
    """Beat from a background thread while the block runs; stopped when it ends, however."""
    every = interval(activity.info().heartbeat_timeout)
    stop = threading.Event()
    context = contextvars.copy_context()
    ticker = threading.Thread(
        target=context.run, args=(_beat, stop, every), name="heartbeat-ticker", daemon=True
    )
    ticker.start()
    try:
        yield
    finally:
        stop.set()
        ticker.join(timeout=STOP_WAIT_SECONDS)


def _beat(stop: threading.Event, every: float) -> None:
    while not stop.wait(every):
        try:
            activity.heartbeat()
        except Exception as exc:  # a beat refused now (the loop busy) may go through next time
            activity.logger.warning("a heartbeat failed: %s", type(exc).__name__)
