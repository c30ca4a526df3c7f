"""The workflow's estimate of a backfill's end: the dates left in waves of the live cap,
each as long as the mean completed run; unknown while paused, untimed or done."""

from datetime import UTC, datetime, timedelta

from workflows.estimate import estimated_end
from workflows.inputs import Progress

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def timed(**fields: object) -> Progress:
    progress = Progress(total=10, completed=3, failed=1, runs_timed=3, run_seconds_timed=30.0)
    for name, value in fields.items():
        setattr(progress, name, value)
    return progress


def test_the_dates_left_run_in_waves_of_the_cap_each_as_long_as_the_mean_run() -> None:
    # six dates left, three at a time: two waves of 10 s
    assert estimated_end(timed(), cap=3, now=NOW) == NOW + timedelta(seconds=20)
    # a lower cap: six waves
    assert estimated_end(timed(), cap=1, now=NOW) == NOW + timedelta(seconds=60)
    # a partial wave counts whole: five left at a cap of two, three waves
    assert estimated_end(timed(skipped=1), cap=2, now=NOW) == NOW + timedelta(seconds=30)


def test_unknown_while_paused_before_any_run_is_timed_or_when_nothing_is_left() -> None:
    assert estimated_end(timed(paused=True), cap=3, now=NOW) is None
    assert estimated_end(timed(runs_timed=0, run_seconds_timed=0.0), cap=3, now=NOW) is None
    assert estimated_end(timed(completed=9), cap=3, now=NOW) is None
