"""The backfill object's control and live fields: the create options it stores, the
effective cap, the runs cancelled, and `estimated_end_time` from observed durations."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import col

from persistence.models import Backfill
from tests.api.test_backfills import BACKFILL_FIELDS, timestamp
from tests.support import Tenant, assert_error, wait_for


def post(tenant: Tenant, transfer_id: int, **body: Any) -> httpx.Response:
    return tenant.http.post(
        f"/teams/{tenant.team_id}/transfers/{transfer_id}/backfills",
        json={"range_start": "2024-01-01", "range_end": "2024-01-03", **body},
    )


def listed(tenant: Tenant) -> dict[int, dict[str, Any]]:
    response = tenant.http.get(f"/teams/{tenant.team_id}/backfills")
    assert response.status_code == 200, response.text
    return {b["transfer_backfill_id"]: b for b in response.json()["data"]}


@pytest.fixture
def to_cancel(tenant: Tenant) -> Iterator[list[int]]:
    pending: list[int] = []
    yield pending
    for backfill_id in pending:
        tenant.http.patch(
            f"/teams/{tenant.team_id}/backfills/{backfill_id}", json={"status": "CANCELLED"}
        )


def test_a_backfill_created_with_options_stores_and_shows_them(
    tenant: Tenant, to_cancel: list[int]
) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=4, latency_ms=2000, rows_per_day=1)

    response = post(
        tenant, transfer_id, max_concurrent_runs=2, max_failed_runs=3, run_order="NEWEST_FIRST"
    )

    assert response.status_code == 200, response.text
    created = response.json()["data"]
    to_cancel.append(created["transfer_backfill_id"])
    assert set(created) == BACKFILL_FIELDS
    assert created["max_concurrent_runs"] == 2
    assert created["max_failed_runs"] == 3
    assert created["run_order"] == "NEWEST_FIRST"
    read = tenant.backfill(created["transfer_backfill_id"])
    assert (read["max_concurrent_runs"], read["max_failed_runs"], read["run_order"]) == (
        2,
        3,
        "NEWEST_FIRST",
    )
    assert listed(tenant)[created["transfer_backfill_id"]]["max_concurrent_runs"] == 2


def test_without_options_a_backfill_has_the_transfers_cap_oldest_first_and_no_budget(
    tenant: Tenant,
) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=3, rows_per_day=1)

    response = post(tenant, transfer_id)

    assert response.status_code == 200, response.text
    created = response.json()["data"]
    assert created["max_concurrent_runs"] == 3
    assert created["max_failed_runs"] is None
    assert created["run_order"] == "OLDEST_FIRST"
    assert created["paused"] is False
    assert created["paused_time"] is None
    assert created["paused_reason"] is None
    assert created["retry_of_backfill_id"] is None
    assert created["transfer_runs_cancelled"] == 0
    assert created["estimated_end_time"] is None  # a new transfer: no run to learn from
    done = tenant.wait_until_status(created["transfer_backfill_id"], "COMPLETED")
    assert done["estimated_end_time"] is None


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"max_concurrent_runs": 0}, id="cap-0"),
        pytest.param({"max_concurrent_runs": 501}, id="cap-501"),
        pytest.param({"max_concurrent_runs": "many"}, id="cap-not-a-number"),
        pytest.param({"max_failed_runs": 0}, id="budget-0"),
        pytest.param({"max_failed_runs": 2**31}, id="budget-too-large"),
        pytest.param({"run_order": "SIDEWAYS"}, id="unknown-order"),
        pytest.param({"run_order": None}, id="order-null"),
    ],
)
def test_a_bad_option_is_400_naming_it_and_creates_nothing(
    tenant: Tenant, options: dict[str, Any]
) -> None:
    transfer_id = tenant.create_transfer()

    error = assert_error(post(tenant, transfer_id, **options), 400, "BAD_REQUEST")

    assert next(iter(options)) in error["description"]
    latest = tenant.http.get(f"/teams/{tenant.team_id}/transfers/{transfer_id}/backfills/latest")
    assert_error(latest, 404, "NOT_FOUND")


def test_the_estimated_end_follows_the_runs_and_is_null_once_ended(tenant: Tenant) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=1, latency_ms=700, rows_per_day=1)
    backfill_id = tenant.create_backfill(transfer_id, "2024-02-01", "2024-02-06")[
        "transfer_backfill_id"
    ]

    def midway() -> dict[str, Any] | None:
        found = tenant.backfill(backfill_id)
        return found if 1 <= found["transfer_runs_completed"] <= 4 else None

    during = wait_for(midway, timeout=60, interval=0.05)
    asked = datetime.now(UTC)

    assert during["status"] == "RUNNING"
    end = timestamp(during["estimated_end_time"])
    left = 6 - during["transfer_runs_completed"]
    # one run at a time, each about 0.7 s: the end is `left` runs from now, give or take
    assert asked < end < asked + timedelta(seconds=left * 5)
    assert listed(tenant)[backfill_id]["estimated_end_time"] is not None
    done = tenant.wait_until_status(backfill_id, "COMPLETED")
    assert done["estimated_end_time"] is None


def test_a_backfill_with_no_run_of_its_own_yet_is_estimated_from_the_transfers_runs(
    tenant: Tenant, to_cancel: list[int]
) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=2, latency_ms=300, rows_per_day=1)
    first = tenant.create_backfill(transfer_id, "2024-03-01", "2024-03-04")
    tenant.wait_until_status(first["transfer_backfill_id"], "COMPLETED")

    created = post(tenant, transfer_id, range_start="2024-04-01", range_end="2024-04-30")
    answered = datetime.now(UTC)

    assert created.status_code == 200, created.text
    backfill = created.json()["data"]
    to_cancel.append(backfill["transfer_backfill_id"])
    end = timestamp(backfill["estimated_end_time"])
    # 30 dates, 2 at a time: 15 rounds of a run that took about 0.3 s
    assert answered + timedelta(seconds=15 * 0.2) < end < answered + timedelta(seconds=15 * 3)


def test_a_cancel_counts_the_runs_it_cancelled_and_ends_the_estimate(tenant: Tenant) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=1, latency_ms=1500, rows_per_day=1)
    backfill_id = tenant.create_backfill(transfer_id, "2024-05-01", "2024-05-08")[
        "transfer_backfill_id"
    ]
    wait_for(lambda: tenant.backfill(backfill_id)["transfer_runs_running"] == 1, timeout=60)

    cancelled = tenant.cancel(backfill_id)

    assert cancelled["estimated_end_time"] is None
    assert cancelled["transfer_runs_running"] == 1  # the drain: it finishes
    drained = wait_for(
        lambda: (b := tenant.backfill(backfill_id))["transfer_runs_running"] == 0 and b,
        timeout=60,
    )
    assert drained["transfer_runs_completed"] == 1
    assert drained["transfer_runs_cancelled"] == 7
    runs = tenant.runs(transfer_id)
    assert sum(r["status"] == "CANCELLED" for r in runs) == drained["transfer_runs_cancelled"]


def test_a_paused_backfill_has_no_estimated_end(tenant: Tenant, to_cancel: list[int]) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=1, latency_ms=300, rows_per_day=1)
    first = tenant.create_backfill(transfer_id, "2024-06-01", "2024-06-02")
    tenant.wait_until_status(first["transfer_backfill_id"], "COMPLETED")
    second = tenant.create_backfill(transfer_id, "2024-07-01", "2024-07-31")
    backfill_id = second["transfer_backfill_id"]
    to_cancel.append(backfill_id)
    assert second["estimated_end_time"] is not None
    paused_at = datetime.now(UTC)
    # The pause itself is another operation's; here only what the object shows of it.
    with tenant.stack.db.write() as session:
        session.execute(
            update(Backfill)
            .where(col(Backfill.id) == backfill_id)
            .values(paused=True, paused_time=paused_at, paused_reason="by a test")
        )

    paused = tenant.backfill(backfill_id)

    assert paused["paused"] is True
    assert paused["paused_reason"] == "by a test"
    assert abs(timestamp(paused["paused_time"]) - paused_at) < timedelta(milliseconds=1)
    assert paused["estimated_end_time"] is None
