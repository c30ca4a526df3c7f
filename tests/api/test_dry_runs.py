"""A backfill's dry run: the dates, every refusal create would answer (word for word), and
an estimate from the transfer's runs, with nothing created."""

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from persistence import accounts
from persistence.models import Role, Scope
from tests.api.test_backfills import timestamp
from tests.support import Stack, Tenant, assert_error, new_tenant

DRY_RUN_FIELDS = {
    "transfer_id",
    "range_start_date",
    "range_end_date",
    "would_be_refused",
    "refusals",
    "transfer_runs_total",
    "first_date",
    "last_date",
    "dates",
    "dates_truncated",
    "max_concurrent_runs",
    "max_failed_runs",
    "run_order",
    "estimate",
    "estimated_end_time",
}


def dry_run(tenant: Tenant, transfer_id: int, start: str, end: str, **options: Any) -> Any:
    response = post_dry_run(
        tenant, transfer_id, {"range_start": start, "range_end": end, **options}
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]


def post_dry_run(tenant: Tenant, transfer_id: int, body: Any) -> httpx.Response:
    return tenant.http.post(
        f"/teams/{tenant.team_id}/transfers/{transfer_id}/backfills/dry_run", json=body
    )


def create(tenant: Tenant, transfer_id: int, start: str, end: str) -> httpx.Response:
    return tenant.http.post(
        f"/teams/{tenant.team_id}/transfers/{transfer_id}/backfills",
        json={"range_start": start, "range_end": end},
    )


def assert_nothing_created(tenant: Tenant, transfer_id: int) -> None:
    latest = tenant.http.get(f"/teams/{tenant.team_id}/transfers/{transfer_id}/backfills/latest")
    assert_error(latest, 404, "NOT_FOUND")


@pytest.fixture
def to_cancel(tenant: Tenant) -> Iterator[list[int]]:
    pending: list[int] = []
    yield pending
    for backfill_id in pending:
        tenant.http.patch(
            f"/teams/{tenant.team_id}/backfills/{backfill_id}", json={"status": "CANCELLED"}
        )


def test_a_dry_run_lists_the_dates_and_creates_nothing(tenant: Tenant) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=3)

    found = dry_run(tenant, transfer_id, "2024-01-01", "2024-01-31")

    assert set(found) == DRY_RUN_FIELDS
    assert found["transfer_id"] == transfer_id
    assert found["would_be_refused"] is False
    assert found["refusals"] == []
    assert found["transfer_runs_total"] == 31
    assert found["first_date"] == "2024-01-01"
    assert found["last_date"] == "2024-01-31"
    assert found["dates"] == [(date(2024, 1, 1) + timedelta(days=n)).isoformat() for n in range(31)]
    assert found["dates_truncated"] is False
    assert found["max_concurrent_runs"] == 3
    assert found["max_failed_runs"] is None
    assert found["run_order"] == "OLDEST_FIRST"
    assert_nothing_created(tenant, transfer_id)
    assert tenant.http.get(f"/teams/{tenant.team_id}/backfills").json()["data"] == []


def test_newest_first_lists_the_dates_from_the_end_with_its_own_cap(tenant: Tenant) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=3)

    found = dry_run(
        tenant,
        transfer_id,
        "2024-01-01",
        "2024-01-05",
        run_order="NEWEST_FIRST",
        max_concurrent_runs=5,
        max_failed_runs=2,
    )

    assert found["first_date"] == "2024-01-05"
    assert found["last_date"] == "2024-01-01"
    assert found["dates"] == [f"2024-01-0{d}" for d in (5, 4, 3, 2, 1)]
    assert (found["max_concurrent_runs"], found["max_failed_runs"]) == (5, 2)
    assert found["run_order"] == "NEWEST_FIRST"


def test_a_long_range_lists_the_first_100_dates_and_counts_them_all(tenant: Tenant) -> None:
    transfer_id = tenant.create_transfer()

    found = dry_run(tenant, transfer_id, "2022-01-01", "2023-02-04")  # 400 days

    assert found["would_be_refused"] is False
    assert found["transfer_runs_total"] == 400
    assert len(found["dates"]) == 100
    assert found["dates"][0] == "2022-01-01"
    assert found["dates"][-1] == "2022-04-10"
    assert found["dates_truncated"] is True
    assert (found["first_date"], found["last_date"]) == ("2022-01-01", "2023-02-04")


def tomorrow() -> str:
    return (datetime.now(UTC).date() + timedelta(days=1)).isoformat()


@pytest.mark.parametrize(
    ("start", "end"),
    [
        pytest.param("2024-01-10", "2024-01-09", id="end-before-start"),
        pytest.param("2024-01-01", None, id="end-in-the-future"),
        pytest.param("2020-01-01", "2021-02-04", id="401-days"),
    ],
)
def test_a_range_create_refuses_is_reported_with_creates_code_and_message(
    tenant: Tenant, start: str, end: str | None
) -> None:
    transfer_id = tenant.create_transfer()
    end = end or tomorrow()

    found = dry_run(tenant, transfer_id, start, end)
    refused = assert_error(create(tenant, transfer_id, start, end), 422, "UNPROCESSABLE_ENTITY")

    assert found["would_be_refused"] is True
    assert found["refusals"] == [
        {
            "code": "UNPROCESSABLE_ENTITY",
            "message": refused["message"],
            "overlapping_backfill_id": None,
        }
    ]
    assert_nothing_created(tenant, transfer_id)


def test_an_overlap_is_reported_naming_the_backfill_as_create_would(
    tenant: Tenant, to_cancel: list[int]
) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=1, latency_ms=3000, rows_per_day=1)
    active = tenant.create_backfill(transfer_id, "2024-05-01", "2024-05-10")
    to_cancel.append(active["transfer_backfill_id"])

    found = dry_run(tenant, transfer_id, "2024-05-10", "2024-05-20")
    refused = assert_error(
        create(tenant, transfer_id, "2024-05-10", "2024-05-20"), 422, "CONFLICT_ERROR"
    )

    assert found["would_be_refused"] is True
    assert found["refusals"] == [
        {
            "code": "CONFLICT_ERROR",
            "message": refused["message"],
            "overlapping_backfill_id": active["transfer_backfill_id"],
        }
    ]
    adjacent = dry_run(tenant, transfer_id, "2024-05-11", "2024-05-20")
    assert adjacent["would_be_refused"] is False


def test_every_refusal_is_listed_in_the_order_create_checks_them(
    tenant: Tenant, to_cancel: list[int]
) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=1, latency_ms=3000, rows_per_day=1)
    active = tenant.create_backfill(transfer_id, "2023-01-01", "2023-01-10")
    to_cancel.append(active["transfer_backfill_id"])

    found = dry_run(tenant, transfer_id, "2022-06-01", "2023-12-31")
    refused = assert_error(
        create(tenant, transfer_id, "2022-06-01", "2023-12-31"), 422, "UNPROCESSABLE_ENTITY"
    )

    assert [r["code"] for r in found["refusals"]] == ["UNPROCESSABLE_ENTITY", "CONFLICT_ERROR"]
    assert found["refusals"][0]["message"] == refused["message"]
    assert found["refusals"][1]["overlapping_backfill_id"] == active["transfer_backfill_id"]


def test_without_history_there_is_no_estimate_and_it_says_why(tenant: Tenant) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=4)

    found = dry_run(tenant, transfer_id, "2024-01-01", "2024-01-31")

    assert found["estimate"]["duration_seconds"] is None
    assert found["estimate"]["typical_run_seconds"] is None
    assert found["estimate"]["runs_observed"] == 0
    assert found["estimate"]["rounds"] == 8
    assert "no completed run" in found["estimate"]["explanation"]
    assert found["estimated_end_time"] is None


def test_the_estimate_is_the_rounds_at_the_cap_times_the_median_run(tenant: Tenant) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=2, latency_ms=300, rows_per_day=1)
    done = tenant.create_backfill(transfer_id, "2024-02-01", "2024-02-04")
    tenant.wait_until_status(done["transfer_backfill_id"], "COMPLETED")

    found = dry_run(tenant, transfer_id, "2024-03-01", "2024-03-10")
    asked = datetime.now(UTC)
    wider = dry_run(tenant, transfer_id, "2024-03-01", "2024-03-10", max_concurrent_runs=5)

    estimate = found["estimate"]
    assert estimate["runs_observed"] == 4
    assert 0.3 <= estimate["typical_run_seconds"] < 3
    assert estimate["rounds"] == 5
    assert estimate["duration_seconds"] == pytest.approx(5 * estimate["typical_run_seconds"])
    assert "4 completed runs" in estimate["explanation"]
    end = timestamp(found["estimated_end_time"])
    assert (
        asked - timedelta(seconds=1)
        < end - timedelta(seconds=estimate["duration_seconds"])
        <= asked
    )
    assert wider["estimate"]["rounds"] == 2
    assert wider["estimate"]["duration_seconds"] == pytest.approx(
        2 * estimate["typical_run_seconds"]
    )


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"range_start": "2024-01-01"}, id="no-range-end"),
        pytest.param({"range_start": "2024-01-01", "range_end": "01/02/2024"}, id="not-iso"),
        pytest.param(
            {"range_start": "2024-01-01", "range_end": "2024-01-02", "run_order": "RANDOM"},
            id="unknown-order",
        ),
        pytest.param(
            {"range_start": "2024-01-01", "range_end": "2024-01-02", "max_concurrent_runs": 0},
            id="cap-0",
        ),
        pytest.param([1, 2], id="not-an-object"),
    ],
)
def test_a_body_create_could_not_read_is_400(tenant: Tenant, body: Any) -> None:
    transfer_id = tenant.create_transfer()

    assert_error(post_dry_run(tenant, transfer_id, body), 400, "BAD_REQUEST")
    assert_nothing_created(tenant, transfer_id)


def test_another_teams_transfer_is_not_found(stack: Stack, tenant: Tenant) -> None:
    other = new_tenant(stack)
    try:
        foreign = other.create_transfer()
        response = post_dry_run(
            tenant, foreign, {"range_start": "2024-01-01", "range_end": "2024-01-02"}
        )
    finally:
        other.http.close()

    assert_error(response, 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("role", "scopes"),
    [
        pytest.param(Role.VIEWER, tuple(Scope), id="viewer"),
        pytest.param(Role.OWNER, (Scope.READ,), id="read-scope-only"),
    ],
)
def test_a_dry_run_needs_the_write_scope_and_the_edit_permission(
    stack: Stack, tenant: Tenant, role: Role, scopes: tuple[Scope, ...]
) -> None:
    transfer_id = tenant.create_transfer()
    user_id = tenant.user_id
    if role != Role.OWNER:
        user_id = accounts.create_user(
            db=stack.db,
            email=f"{role}-{transfer_id}-{tenant.team_id}@example.com",
            team_id=tenant.team_id,
            role=role,
        )
    token = accounts.create_token(db=stack.db, user_id=user_id, scopes=list(scopes))

    response = httpx.post(
        f"{stack.api_url}/teams/{tenant.team_id}/transfers/{transfer_id}/backfills/dry_run",
        json={"range_start": "2024-01-01", "range_end": "2024-01-02"},
        headers={"Authorization": f"Bearer {token}"},
    )

    assert_error(response, 403, "FORBIDDEN")
