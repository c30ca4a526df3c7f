"""The estimate arithmetic: rounds of at most the cap, times the median observed duration."""

from datetime import UTC, datetime, timedelta

from api.estimates import estimate_duration, estimated_end_time, rounds, typical_run_seconds

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def test_dates_run_in_rounds_of_at_most_the_cap() -> None:
    assert rounds(0, 4) == 0
    assert rounds(1, 4) == 1
    assert rounds(4, 4) == 1
    assert rounds(5, 4) == 2
    assert rounds(36_500, 500) == 73


def test_the_typical_run_is_the_median_so_one_stuck_run_does_not_skew_it() -> None:
    assert typical_run_seconds([2.0, 2.0, 3.0, 600.0]) == 2.5
    assert typical_run_seconds([]) is None


def test_a_duration_is_rounds_times_the_typical_run_and_says_how() -> None:
    estimate = estimate_duration(dates=31, max_concurrent_runs=4, durations=[3.0, 2.0, 4.0])

    assert estimate.duration_seconds == 8 * 3.0
    assert estimate.typical_run_seconds == 3.0
    assert estimate.runs_observed == 3
    assert estimate.rounds == 8
    assert "8 rounds of at most 4" in estimate.explanation
    assert "3.0 s" in estimate.explanation


def test_without_history_there_is_no_estimate_and_the_reason_says_why() -> None:
    estimate = estimate_duration(dates=31, max_concurrent_runs=4, durations=[])

    assert estimate.duration_seconds is None
    assert estimate.typical_run_seconds is None
    assert estimate.runs_observed == 0
    assert estimate.rounds == 8
    assert "no completed run" in estimate.explanation


def test_an_empty_range_has_no_estimate() -> None:
    estimate = estimate_duration(dates=0, max_concurrent_runs=4, durations=[1.0])

    assert estimate.duration_seconds is None
    assert estimate.explanation == "the range has no dates"


def test_the_end_is_now_plus_the_rounds_left() -> None:
    end = estimated_end_time(remaining=9, max_concurrent_runs=4, durations=[10.0], now=NOW)

    assert end == NOW + timedelta(seconds=30)
    assert estimated_end_time(remaining=0, max_concurrent_runs=4, durations=[1.0], now=NOW) is None
    assert estimated_end_time(remaining=3, max_concurrent_runs=4, durations=[], now=NOW) is None
