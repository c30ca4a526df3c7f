"""The workflow's own estimate of when a backfill ends, from the runs it has timed.

Pure arithmetic on what the workflow saw (workflow time), so it is deterministic: the
dates left, run in waves of the live cap, each wave as long as the mean completed run.
"""

import math
from datetime import datetime, timedelta

from workflows.inputs import Progress


def estimated_end(progress: Progress, cap: int, now: datetime) -> datetime | None:
    """None while nothing is timed yet, while paused, or when nothing is left to run."""
    left = progress.total - progress.completed - progress.failed - progress.skipped
    if progress.paused or progress.runs_timed == 0 or left <= 0:
        return None
    mean = progress.run_seconds_timed / progress.runs_timed
    return now + timedelta(seconds=math.ceil(left / max(cap, 1)) * mean)
