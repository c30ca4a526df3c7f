"""A backfill's per-date view over HTTP: one entry per date with its current run, paged and
filtered, agreeing with the runs list."""

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest

from persistence import backfills
from tests.persistence.test_backfills import Owner
from tests.persistence.test_runs_reads import supersede
from tests.support import Stack, Tenant, assert_error, new_tenant

DATE_FIELDS = {
    "data_date",
    "status",
    "transfer_run_id",
    "attempts",
    "started_time",
    "ended_time",
    "total_duration",
    "message",
    "superseded_runs",
}


def get_dates(tenant: Tenant, backfill_id: int, **params: Any) -> httpx.Response:
    return tenant.http.get(f"/teams/{tenant.team_id}/backfills/{backfill_id}/dates", params=params)


def dates_of(tenant: Tenant, backfill_id: int, **params: Any) -> list[dict[str, Any]]:
    response = get_dates(tenant, backfill_id, **params)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["data"]
    return found


@pytest.fixture
def failed_backfill(tenant: Tenant) -> tuple[int, int]:
    """A transfer and its FAILED backfill of 2024-02-01..05, 02 and 04 failed."""
    transfer_id = tenant.create_transfer(fail_dates=["2024-02-02", "2024-02-04"], rows_per_day=2)
    backfill_id = tenant.create_backfill(transfer_id, "2024-02-01", "2024-02-05")[
        "transfer_backfill_id"
    ]
    tenant.wait_until_status(backfill_id, "FAILED")
    return transfer_id, backfill_id


def test_each_date_has_its_current_run_as_the_runs_list_shows_it(
    tenant: Tenant, failed_backfill: tuple[int, int]
) -> None:
    transfer_id, backfill_id = failed_backfill

    found = dates_of(tenant, backfill_id)

    runs = {r["data_date"]: r for r in tenant.runs(transfer_id)}
    assert [d["data_date"] for d in found] == [f"2024-02-0{n}" for n in range(1, 6)]
    for entry in found:
        assert set(entry) == DATE_FIELDS
        run = runs[entry["data_date"]]
        assert entry["transfer_run_id"] == run["id"]
        assert entry["status"] == run["status"]
        assert entry["message"] == run["message"]
        assert entry["total_duration"] == run["total_duration"]
        assert entry["ended_time"] == run["ended_time"]
        assert entry["attempts"] >= 1
        assert entry["superseded_runs"] == 0
    assert [d["status"] for d in found] == [
        "COMPLETED",
        "FAILED",
        "COMPLETED",
        "FAILED",
        "COMPLETED",
    ]
    assert "2024-02-02" in found[1]["message"]


def test_pages_cover_the_range_in_date_order(
    tenant: Tenant, failed_backfill: tuple[int, int]
) -> None:
    _, backfill_id = failed_backfill
    whole = dates_of(tenant, backfill_id)

    pages = [dates_of(tenant, backfill_id, limit=2, offset=offset) for offset in (0, 2, 4, 6)]

    assert [len(p) for p in pages] == [2, 2, 1, 0]
    assert [entry for p in pages for entry in p] == whole


def test_a_status_filter_keeps_only_those_dates(
    tenant: Tenant, failed_backfill: tuple[int, int]
) -> None:
    _, backfill_id = failed_backfill

    failed = dates_of(tenant, backfill_id, status="FAILED")
    both = dates_of(tenant, backfill_id, status=["FAILED", "COMPLETED"], limit=3, offset=1)

    assert [d["data_date"] for d in failed] == ["2024-02-02", "2024-02-04"]
    assert [d["data_date"] for d in both] == ["2024-02-02", "2024-02-03", "2024-02-04"]
    assert dates_of(tenant, backfill_id, status="RUNNING") == []


def test_a_retried_date_shows_its_new_run_and_counts_the_earlier_one(
    tenant: Tenant, failed_backfill: tuple[int, int]
) -> None:
    transfer_id, backfill_id = failed_backfill
    before = dates_of(tenant, backfill_id)
    stored = backfills.get_backfill_for_worker(db=tenant.stack.db, backfill_id=backfill_id)
    # what a retry of the date does (another operation's): the failed run stays, superseded
    supersede(owner_of(tenant, transfer_id), stored, date(2024, 2, 2))

    after = dates_of(tenant, backfill_id)

    assert after[1]["status"] == "CREATED"
    assert after[1]["transfer_run_id"] not in (None, before[1]["transfer_run_id"])
    assert after[1]["superseded_runs"] == 1
    assert after[1]["attempts"] == 0
    assert [after[n] for n in (0, 2, 3, 4)] == [before[n] for n in (0, 2, 3, 4)]
    history = [r for r in tenant.runs(transfer_id) if r["data_date"] == "2024-02-02"]
    assert {r["id"] for r in history} == {
        before[1]["transfer_run_id"],
        after[1]["transfer_run_id"],
    }


def owner_of(tenant: Tenant, transfer_id: int) -> Owner:
    return Owner(tenant.stack.db, tenant.team_id, tenant.user_id, transfer_id)


@pytest.fixture
def unstarted(tenant: Tenant) -> Iterator[int]:
    """A CREATED backfill whose workflow has not started (as one kept after a silent
    start is): none of its dates is planned."""
    transfer_id = tenant.create_transfer()
    backfill = backfills.create_backfill(
        db=tenant.stack.db,
        team_id=tenant.team_id,
        transfer_id=transfer_id,
        user_id=tenant.user_id,
        range_start=date(2023, 1, 1),
        range_end=date(2023, 12, 31),
    )
    assert backfill.id is not None
    yield backfill.id
    tenant.cancel(backfill.id)


def test_dates_not_planned_yet_show_created_without_a_run(tenant: Tenant, unstarted: int) -> None:
    found = dates_of(tenant, unstarted, limit=400)

    assert len(found) == 365
    assert found[0]["data_date"] == "2023-01-01"
    assert found[-1]["data_date"] == "2023-12-31"
    assert {
        (d["status"], d["transfer_run_id"], d["attempts"], d["total_duration"]) for d in found
    } == {("CREATED", None, 0, None)}
    assert len(dates_of(tenant, unstarted, status="CREATED", offset=360)) == 5


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"limit": 0}, id="limit-0"),
        pytest.param({"limit": 10_001}, id="limit-10001"),
        pytest.param({"offset": -1}, id="offset-negative"),
        pytest.param({"limit": "all"}, id="limit-not-a-number"),
        pytest.param({"status": "DONE"}, id="unknown-status"),
    ],
)
def test_bad_paging_or_filter_is_400(
    tenant: Tenant, failed_backfill: tuple[int, int], params: dict[str, Any]
) -> None:
    _, backfill_id = failed_backfill
    before = tenant.backfill(backfill_id)

    error = assert_error(get_dates(tenant, backfill_id, **params), 400, "BAD_REQUEST")

    assert next(iter(params)) in error["description"]
    assert tenant.backfill(backfill_id) == before


def test_another_teams_backfill_is_not_found(
    stack: Stack, tenant: Tenant, failed_backfill: tuple[int, int]
) -> None:
    _, backfill_id = failed_backfill
    other = new_tenant(stack)
    try:
        foreign = get_dates(other, backfill_id)
        missing = get_dates(other, 2**31 - 1)
    finally:
        other.http.close()

    assert_error(foreign, 404, "NOT_FOUND")
    assert foreign.json()["error"] == missing.json()["error"]


def test_it_is_timestamped_like_the_rest(tenant: Tenant, failed_backfill: tuple[int, int]) -> None:
    _, backfill_id = failed_backfill

    entry = dates_of(tenant, backfill_id, limit=1)[0]

    assert entry["started_time"].endswith("Z")
    started = datetime.fromisoformat(entry["started_time"])
    assert started <= datetime.now(UTC)
