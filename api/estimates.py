"""How long a backfill should take, from how long the transfer's runs have taken: the dry
run's estimate and a backfill's live `estimated_end_time`. Arithmetic only; the durations
come from `persistence.runs.recent_durations_by_backfill` / `..._by_transfer`.

A backfill runs its dates in rounds of at most `max_concurrent_runs` at once, so N dates
take about `ceil(N / cap)` times a typical run: the median of the latest completed runs
(the median, so that one stuck or retried run does not skew it).
"""

import math
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta

RECENT_RUNS = 50  # completed runs an estimate looks at: the latest, by when they ended


@dataclass(frozen=True)
class DurationEstimate:
    duration_seconds: float | None
    typical_run_seconds: float | None
    runs_observed: int
    rounds: int
    explanation: str


def rounds(dates: int, max_concurrent_runs: int) -> int:
    """How many rounds of at most `max_concurrent_runs` runs the dates take."""
    return math.ceil(dates / max_concurrent_runs) if dates > 0 else 0


def typical_run_seconds(durations: list[float]) -> float | None:
    return round(statistics.median(durations), 3) if durations else None


def estimate_duration(
    *, dates: int, max_concurrent_runs: int, durations: list[float]
) -> DurationEstimate:
    """How long `dates` runs take at `max_concurrent_runs` at once, given the durations of
    the transfer's latest completed runs; None, with the reason, when that cannot be said."""
    needed = rounds(dates, max_concurrent_runs)
    typical = typical_run_seconds(durations)
    if needed == 0:
        return DurationEstimate(None, typical, len(durations), 0, "the range has no dates")
    if typical is None:
        return DurationEstimate(
            None,
            None,
            0,
            needed,
            "no estimate: the transfer has no completed run yet to learn its durations from",
        )
    return DurationEstimate(
        round(needed * typical, 3),
        typical,
        len(durations),
        needed,
        f"{needed} rounds of at most {max_concurrent_runs} runs at once, times the median "
        f"duration of the transfer's latest {len(durations)} completed runs ({typical} s)",
    )


def estimated_end_time(
    *, remaining: int, max_concurrent_runs: int, durations: list[float], now: datetime
) -> datetime | None:
    """When `remaining` dates should be done, from now; None when no duration is known or
    nothing remains."""
    typical = typical_run_seconds(durations)
    if typical is None or remaining <= 0:
        return None
    return now + timedelta(seconds=rounds(remaining, max_concurrent_runs) * typical)
