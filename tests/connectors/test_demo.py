"""The `demo` source: deterministic rows per date, configured failures."""

from datetime import date
from pathlib import Path

import pytest

from connectors.base import Extract, RunContext
from connectors.demo import DemoSourceOptions
from connectors.errors import PermanentError, TransientError
from connectors.registry import InvalidConnectorSpec, parse_source

DAY = date(2024, 3, 1)


def context(tmp_path: Path, beats: list[None] | None = None) -> RunContext:
    return RunContext(
        team_dir=tmp_path,
        transfer_id=1,
        heartbeat=(lambda: beats.append(None)) if beats is not None else (lambda: None),
    )


def extract(tmp_path: Path, data_date: date = DAY, **options: object) -> Extract:
    source = parse_source({"type": "demo", **options}).build()
    return source.extract(data_date, context(tmp_path))


def test_rows_are_the_same_for_the_same_date(tmp_path: Path) -> None:
    first = extract(tmp_path, rows_per_day=50)
    second = extract(tmp_path, rows_per_day=50)

    assert first.records == second.records


def test_rows_differ_between_dates(tmp_path: Path) -> None:
    one = extract(tmp_path, date(2024, 3, 1), rows_per_day=20)
    other = extract(tmp_path, date(2024, 3, 2), rows_per_day=20)

    assert one.records != other.records


@pytest.mark.parametrize("rows_per_day", [0, 1, 24, 1000])
def test_row_count_is_rows_per_day(tmp_path: Path, rows_per_day: int) -> None:
    result = extract(tmp_path, rows_per_day=rows_per_day)

    assert len(list(result.records)) == rows_per_day
    assert [detail.rows for detail in result.query_details] == [rows_per_day]
    assert [detail.status for detail in result.query_details] == ["SUCCESS"]


def test_the_default_is_24_rows(tmp_path: Path) -> None:
    assert len(list(extract(tmp_path).records)) == 24


def test_rows_look_like_advertising_data(tmp_path: Path) -> None:
    records = extract(tmp_path, rows_per_day=30).records

    assert [r["row_number"] for r in records] == list(range(30))
    for record in records:
        assert set(record) == {"row_number", "campaign", "impressions", "clicks", "cost"}
        assert isinstance(record["campaign"], str) and record["campaign"]
        assert 0 <= record["clicks"] <= record["impressions"]
        assert record["cost"] >= 0


def test_a_fail_date_fails_permanently_naming_the_date(tmp_path: Path) -> None:
    with pytest.raises(PermanentError) as raised:
        extract(tmp_path, date(2024, 3, 2), fail_dates=["2024-03-02"])

    assert "2024-03-02" in str(raised.value)
    assert not raised.value.retryable


def test_dates_not_listed_in_fail_dates_succeed(tmp_path: Path) -> None:
    result = extract(tmp_path, date(2024, 3, 3), rows_per_day=5, fail_dates=["2024-03-02"])

    assert len(list(result.records)) == 5


def test_flaky_rate_one_always_fails_transiently(tmp_path: Path) -> None:
    for _ in range(20):
        with pytest.raises(TransientError) as raised:
            extract(tmp_path, flaky_rate=1)
        assert raised.value.retryable
        assert str(raised.value)


def test_flaky_rate_zero_never_fails(tmp_path: Path) -> None:
    for _ in range(20):
        assert len(list(extract(tmp_path, rows_per_day=2, flaky_rate=0).records)) == 2


def test_latency_heartbeats_while_waiting(tmp_path: Path) -> None:
    beats: list[None] = []
    source = DemoSourceOptions(rows_per_day=3, latency_ms=20).build()

    result = source.extract(DAY, context(tmp_path, beats))

    assert len(list(result.records)) == 3
    assert beats


@pytest.mark.parametrize(
    "options",
    [
        {"rows_per_day": -1},
        {"flaky_rate": 1.5},
        {"latency_ms": -5},
        {"fail_dates": ["not a date"]},
        {"unknown_option": 1},
    ],
)
def test_bad_options_are_rejected(options: dict[str, object]) -> None:
    with pytest.raises(InvalidConnectorSpec) as raised:
        parse_source({"type": "demo", **options})

    assert str(raised.value).startswith("source.")
