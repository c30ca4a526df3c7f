"""The transfer-run endpoints over HTTP: listing by data_date with filters, sorting and paging,
one run in detail, tenancy, and what the runs leave in the sqlite destination."""

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.support import Stack, Tenant, assert_error, new_tenant, warehouse_of

ITEM_FIELDS = {
    "id",
    "status",
    "type",
    "data_date",
    "created_time",
    "ended_time",
    "total_duration",
    "total_rows",
    "message",
}
DETAIL_FIELDS = ITEM_FIELDS | {
    "queued_time",
    "started_time",
    "external_id",
    "query_details",
    "query_amount",
    "failed_query_amount",
}
QUERY_DETAIL_FIELDS = {"duration", "status", "rows", "error_description"}
ROWS_PER_DAY = 3
DATES = [f"2024-01-0{day}" for day in range(1, 6)]
FAILING_DATE = "2024-01-03"


@dataclass
class History:
    """A transfer with two finished backfills: 01-01..01-03 (01-03 fails), then 01-04..01-05."""

    tenant: Tenant
    transfer_id: int
    first: dict[str, Any]
    second: dict[str, Any]


@pytest.fixture(scope="module")
def history(stack: Stack) -> Iterator[History]:
    tenant = new_tenant(stack)
    transfer_id = tenant.create_transfer(rows_per_day=ROWS_PER_DAY, fail_dates=[FAILING_DATE])
    first = tenant.create_backfill(transfer_id, "2024-01-01", "2024-01-03")
    first = tenant.wait_until_status(first["transfer_backfill_id"], "FAILED")
    second = tenant.create_backfill(transfer_id, "2024-01-04", "2024-01-05")
    second = tenant.wait_until_status(second["transfer_backfill_id"], "COMPLETED")
    yield History(tenant=tenant, transfer_id=transfer_id, first=first, second=second)
    tenant.http.close()


def list_runs(tenant: Tenant, transfer_id: int, **params: Any) -> httpx.Response:
    return tenant.http.get(f"/teams/{tenant.team_id}/transfers/{transfer_id}/runs", params=params)


def listed(history: History, **params: Any) -> list[dict[str, Any]]:
    query = {"start_date": "2024-01-01", "end_date": "2024-01-31", **params}
    response = list_runs(history.tenant, history.transfer_id, **query)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def get_run(tenant: Tenant, run_id: int) -> httpx.Response:
    return tenant.http.get(f"/teams/{tenant.team_id}/transfer_runs/{run_id}")


def timestamp(value: str) -> datetime:
    assert value.endswith("Z"), value
    return datetime.fromisoformat(value)


def run_on(history: History, data_date: str) -> dict[str, Any]:
    (run,) = [r for r in listed(history) if r["data_date"] == data_date]
    return run


# --- the date range ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end"),
    [
        pytest.param("2024-01-02", "2024-01-04", id="date"),
        pytest.param("2024-01-02T00:00:00", "2024-01-04T00:00:00", id="naive-date-time"),
        pytest.param(
            "2024-01-02T00:00:00+00:00", "2024-01-04T00:00:00+00:00", id="date-time-with-offset"
        ),
    ],
)
def test_the_range_is_inclusive_on_data_date_in_every_iso_form(
    history: History, start: str, end: str
) -> None:
    runs = listed(history, start_date=start, end_date=end, sort_field="data_date")

    assert sorted(r["data_date"] for r in runs) == ["2024-01-02", "2024-01-03", "2024-01-04"]


def test_a_range_without_runs_lists_nothing(history: History) -> None:
    assert listed(history, start_date="2023-12-01", end_date="2023-12-31") == []


# --- filters, sorting, paging ------------------------------------------------------------


def test_filter_issues_only_returns_only_failed_runs(history: History) -> None:
    issues = listed(history, filter_issues_only="true")

    assert [(r["data_date"], r["status"]) for r in issues] == [(FAILING_DATE, "FAILED")]
    assert len(listed(history, filter_issues_only="false")) == 5


@pytest.mark.parametrize("direction", ["ASC", "DESC"])
def test_sort_by_data_date(history: History, direction: str) -> None:
    runs = listed(history, sort_field="data_date", sort_direction=direction)

    assert [r["data_date"] for r in runs] == (DATES if direction == "ASC" else DATES[::-1])


@pytest.mark.parametrize("field", ["created_time", "ended_time"])
@pytest.mark.parametrize("direction", ["ASC", "DESC"])
def test_sort_by_a_time(history: History, field: str, direction: str) -> None:
    runs = listed(history, sort_field=field, sort_direction=direction)

    times = [timestamp(r[field]) for r in runs]
    assert times == sorted(times, reverse=direction == "DESC")
    assert sorted(r["data_date"] for r in runs) == DATES
    if field == "created_time":  # the second backfill's runs were created after the first's
        older = {"2024-01-01", "2024-01-02", "2024-01-03"}
        ascending = runs if direction == "ASC" else runs[::-1]
        assert {r["data_date"] for r in ascending[:3]} == older


def test_limit_and_offset_page_through_the_runs(history: History) -> None:
    pages = [
        [
            r["data_date"]
            for r in listed(
                history, sort_field="data_date", sort_direction="ASC", limit=2, offset=offset
            )
        ]
        for offset in (0, 2, 4, 6)
    ]

    assert pages == [DATES[0:2], DATES[2:4], DATES[4:5], []]


def test_the_default_limit_is_100(tenant: Tenant) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=10, rows_per_day=1)
    backfill = tenant.create_backfill(transfer_id, "2023-01-01", "2023-04-11")  # 101 days
    tenant.wait_until_status(backfill["transfer_backfill_id"], "COMPLETED", timeout=240)

    default = list_runs(tenant, transfer_id, start_date="2023-01-01", end_date="2023-12-31")

    assert default.status_code == 200, default.text
    assert len(default.json()["data"]) == 100
    assert len(tenant.runs(transfer_id)) == 101


# --- run items and details ---------------------------------------------------------------


def test_run_items_carry_the_contract_fields(history: History) -> None:
    runs = listed(history)

    assert len(runs) == 5
    for run in runs:
        assert set(run) == ITEM_FIELDS
        assert isinstance(run["id"], int)
        assert run["type"] == "Backfill"
        assert timestamp(run["created_time"]) <= timestamp(run["ended_time"])
        assert isinstance(run["total_duration"], int | float)
        assert run["total_duration"] >= 0
    completed = [r for r in runs if r["data_date"] != FAILING_DATE]
    assert {r["status"] for r in completed} == {"COMPLETED"}
    assert {r["message"] for r in completed} == {""}
    assert {r["total_rows"] for r in completed} == {ROWS_PER_DAY}


def test_a_failed_run_says_why_like_the_backfills_error_report(history: History) -> None:
    failed = run_on(history, FAILING_DATE)

    assert failed["status"] == "FAILED"
    assert FAILING_DATE in failed["message"]
    assert history.first["error_report"] == [
        {"transfer_run_date": FAILING_DATE, "error": failed["message"]}
    ]


def test_run_detail_adds_timing_identity_and_query_details(history: History) -> None:
    item = run_on(history, "2024-01-02")

    response = get_run(history.tenant, item["id"])

    assert response.status_code == 200, response.text
    detail = response.json()["data"]
    assert set(detail) == DETAIL_FIELDS
    assert {key: detail[key] for key in ITEM_FIELDS} == item
    assert detail["queued_time"] is not None
    started = timestamp(detail["started_time"])
    assert timestamp(detail["created_time"]) <= started <= timestamp(detail["ended_time"])
    assert isinstance(detail["external_id"], str)
    assert detail["external_id"]
    assert detail["query_details"]
    for query in detail["query_details"]:
        assert set(query) == QUERY_DETAIL_FIELDS
    assert sum(q["rows"] for q in detail["query_details"]) == detail["total_rows"] == ROWS_PER_DAY
    assert detail["query_amount"] == len(detail["query_details"])
    assert detail["failed_query_amount"] == 0


def test_failed_run_detail_keeps_its_message(history: History) -> None:
    item = run_on(history, FAILING_DATE)

    detail = get_run(history.tenant, item["id"]).json()["data"]

    assert set(detail) == DETAIL_FIELDS
    assert detail["status"] == "FAILED"
    assert detail["message"] == item["message"]
    assert isinstance(detail["external_id"], str)
    assert [(q["status"], q["rows"], q["error_description"]) for q in detail["query_details"]] == [
        ("FAILED", 0, item["message"])
    ]
    assert (detail["query_amount"], detail["failed_query_amount"]) == (1, 1)


# --- tenancy -----------------------------------------------------------------------------


def assert_not_found(response: httpx.Response) -> None:
    assert_error(response, 404, "NOT_FOUND")


def test_another_teams_run_is_not_found(stack: Stack, history: History) -> None:
    stranger = new_tenant(stack)
    try:
        run_id = run_on(history, "2024-01-01")["id"]

        assert_not_found(get_run(stranger, run_id))
        assert_not_found(
            list_runs(stranger, history.transfer_id, start_date="2024-01-01", end_date="2024-01-31")
        )
    finally:
        stranger.http.close()


def test_a_run_id_that_does_not_exist_is_not_found(history: History) -> None:
    assert_not_found(get_run(history.tenant, 2_000_000_000))


def test_runs_of_another_transfer_of_the_team_are_not_mixed_in(tenant: Tenant) -> None:
    first = tenant.create_transfer(rows_per_day=1)
    second = tenant.create_transfer(rows_per_day=1)
    for transfer_id in (first, second):
        backfill = tenant.create_backfill(transfer_id, "2024-02-01", "2024-02-03")
        tenant.wait_until_status(backfill["transfer_backfill_id"], "COMPLETED")

    first_runs = tenant.runs(first)
    second_runs = tenant.runs(second)

    assert len(first_runs) == len(second_runs) == 3
    assert not {r["id"] for r in first_runs} & {r["id"] for r in second_runs}


# --- the destination ---------------------------------------------------------------------


def test_backfilling_the_same_dates_twice_leaves_one_copy_of_each_date(
    stack: Stack, tenant: Tenant
) -> None:
    rows_per_day = 4
    transfer_id = tenant.create_transfer(rows_per_day=rows_per_day)
    for _ in range(2):
        backfill = tenant.create_backfill(transfer_id, "2024-06-01", "2024-06-03")
        tenant.wait_until_status(backfill["transfer_backfill_id"], "COMPLETED")

    with closing(sqlite3.connect(warehouse_of(stack, transfer_id))) as warehouse:
        counts = dict(
            warehouse.execute(
                f"SELECT data_date, COUNT(*) FROM transfer_{transfer_id} "
                "GROUP BY data_date ORDER BY data_date"
            ).fetchall()
        )

    assert counts == {d: rows_per_day for d in ("2024-06-01", "2024-06-02", "2024-06-03")}
    assert len(tenant.runs(transfer_id, sort_field="data_date")) == 6
