"""Steering backfills over the API on the real stack: pause and resume, live limits and the
failure budget by PATCH, and retry (in place for a FAILED backfill, as a new backfill for a
CANCELLED one). The status keeps its six values; the SDK still reads every backfill."""

import sqlite3
import time
from contextlib import closing
from typing import Any

import httpx
import pytest

from connectors.warehouse import team_dir
from persistence import accounts
from persistence.models import Role, Scope
from tests.support import Stack, Tenant, assert_error, new_tenant, wait_for

SLOW = {"latency_ms": 1500}
SIX_STATUSES = {"CREATED", "SCHEDULED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"}


def patch(tenant: Tenant, backfill_id: int, body: dict[str, Any]) -> httpx.Response:
    return tenant.http.patch(f"/teams/{tenant.team_id}/backfills/{backfill_id}", json=body)


def retry(tenant: Tenant, backfill_id: int, body: dict[str, Any] | None = None) -> httpx.Response:
    return tenant.http.post(
        f"/teams/{tenant.team_id}/backfills/{backfill_id}/retry",
        json=body if body is not None else {},
    )


def statuses(tenant: Tenant, transfer_id: int) -> list[str]:
    return [run["status"] for run in tenant.runs(transfer_id)]


def data(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()["data"]
    assert found["status"] in SIX_STATUSES
    return found


@pytest.fixture
def cancel_at_end(tenant: Tenant) -> Any:
    made: list[int] = []
    yield made
    for backfill_id in made:
        patch(tenant, backfill_id, {"status": "CANCELLED"})


def test_a_paused_backfill_drains_starts_nothing_and_resumes_to_completion(
    tenant: Tenant, cancel_at_end: list[int]
) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=2, **SLOW)
    backfill_id = tenant.create_backfill(transfer_id, "2024-04-01", "2024-04-06")[
        "transfer_backfill_id"
    ]
    cancel_at_end.append(backfill_id)
    wait_for(lambda: tenant.backfill(backfill_id)["transfer_runs_running"] == 2)

    paused = data(patch(tenant, backfill_id, {"paused": True, "paused_reason": "maintenance"}))

    assert (paused["status"], paused["paused"], paused["paused_reason"]) == (
        "RUNNING",
        True,
        "maintenance",
    )
    assert paused["paused_time"] is not None
    drained = wait_for(
        lambda: (b := tenant.backfill(backfill_id))["transfer_runs_running"] == 0 and b,
        timeout=30,
    )
    assert drained["transfer_runs_completed"] == 2
    time.sleep(2)  # a run wrongly started now would show below
    assert sorted(statuses(tenant, transfer_id)) == ["COMPLETED"] * 2 + ["CREATED"] * 4
    assert tenant.backfill(backfill_id)["paused"] is True

    resumed = data(patch(tenant, backfill_id, {"paused": False}))
    assert (resumed["paused"], resumed["paused_reason"], resumed["paused_time"]) == (
        False,
        None,
        None,
    )
    done = tenant.wait_until_status(backfill_id, "COMPLETED", timeout=60)
    assert done["transfer_runs_completed"] == 6


def test_a_lower_cap_applies_to_a_running_backfill(
    tenant: Tenant, cancel_at_end: list[int]
) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=3, **SLOW)
    backfill_id = tenant.create_backfill(transfer_id, "2024-04-10", "2024-04-17")[
        "transfer_backfill_id"
    ]
    cancel_at_end.append(backfill_id)
    wait_for(lambda: tenant.backfill(backfill_id)["transfer_runs_running"] == 3)

    changed = data(patch(tenant, backfill_id, {"max_concurrent_runs": 1}))

    assert changed["max_concurrent_runs"] == 1
    wait_for(lambda: tenant.backfill(backfill_id)["transfer_runs_running"] <= 1, timeout=30)
    most = 0
    while tenant.backfill(backfill_id)["status"] != "COMPLETED":
        most = max(most, statuses(tenant, transfer_id).count("RUNNING"))
        time.sleep(0.2)
    assert most == 1


def test_the_failure_budget_pauses_the_backfill_saying_so(
    tenant: Tenant, cancel_at_end: list[int]
) -> None:
    transfer_id = tenant.create_transfer(
        max_concurrent_runs=1, latency_ms=500, fail_dates=["2024-04-20", "2024-04-21"]
    )
    backfill_id = tenant.create_backfill(transfer_id, "2024-04-20", "2024-04-25")[
        "transfer_backfill_id"
    ]
    cancel_at_end.append(backfill_id)
    data(patch(tenant, backfill_id, {"max_failed_runs": 2}))

    paused = wait_for(lambda: (b := tenant.backfill(backfill_id))["paused"] and b, timeout=60)

    assert paused["status"] == "RUNNING"
    assert paused["paused_reason"] == (
        "the failure budget is spent: 2 runs failed (max_failed_runs 2)"
    )
    assert paused["transfer_runs_failed"] == 2
    time.sleep(1.5)
    assert statuses(tenant, transfer_id).count("CREATED") == 4


@pytest.fixture
def flaky_source(stack: Stack, tenant: Tenant) -> tuple[str, Any]:
    """A SQLite source of the team whose row for one date is broken until fixed."""
    directory = team_dir(stack.data_dir, tenant.team_id)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "flaky.db"
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.execute("CREATE TABLE days (day TEXT, payload TEXT)")
        connection.executemany(
            "INSERT INTO days VALUES (?, ?)",
            [("2024-05-01", '{"n": 1}'), ("2024-05-02", "{broken"), ("2024-05-03", '{"n": 3}')],
        )

    def fix() -> None:
        with closing(sqlite3.connect(path)) as connection, connection:
            connection.execute("UPDATE days SET payload = '{\"n\": 2}' WHERE day = '2024-05-02'")

    return "sqlite:///flaky.db", fix


def test_a_failed_backfill_retried_in_place_completes_and_keeps_its_history(
    tenant: Tenant, flaky_source: tuple[str, Any]
) -> None:
    url, fix = flaky_source
    response = tenant.http.post(
        f"/teams/{tenant.team_id}/transfers",
        json={
            "display_name": "flaky",
            "source": {
                "type": "sql",
                "url": url,
                "query": "SELECT day, json_extract(payload, '$.n') AS n FROM days "
                "WHERE day = :data_date",
            },
            "destination": {"type": "sqlite"},
            "max_concurrent_runs": 3,
        },
    )
    transfer_id = response.json()["data"]["transfer_id"]
    backfill_id = tenant.create_backfill(transfer_id, "2024-05-01", "2024-05-03")[
        "transfer_backfill_id"
    ]
    failed = tenant.wait_until_status(backfill_id, "FAILED", timeout=60)
    assert [e["transfer_run_date"] for e in failed["error_report"]] == ["2024-05-02"]

    assert_error(
        retry(tenant, backfill_id, {"data_dates": ["2024-05-01"]}), 422, "UNPROCESSABLE_ENTITY"
    )
    assert tenant.backfill(backfill_id)["status"] == "FAILED"  # nothing changed
    fix()
    retried = data(retry(tenant, backfill_id))

    assert retried["status"] == "RUNNING"
    assert (retried["transfer_runs_failed"], retried["error_report"]) == (0, [])
    done = tenant.wait_until_status(backfill_id, "COMPLETED", timeout=60)
    assert (done["transfer_runs_completed"], done["transfer_runs_failed"]) == (3, 0)
    runs = tenant.runs(transfer_id)
    by_date = sorted((r["data_date"], r["status"]) for r in runs)
    assert by_date == [
        ("2024-05-01", "COMPLETED"),
        ("2024-05-02", "COMPLETED"),
        ("2024-05-02", "FAILED"),
        ("2024-05-03", "COMPLETED"),
    ]
    assert_error(retry(tenant, backfill_id), 422, "UNPROCESSABLE_ENTITY")


def test_a_cancelled_backfill_retried_makes_a_new_one_of_its_undone_dates(
    tenant: Tenant,
) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=1, **SLOW)
    backfill_id = tenant.create_backfill(transfer_id, "2024-06-01", "2024-06-05")[
        "transfer_backfill_id"
    ]
    wait_for(lambda: tenant.backfill(backfill_id)["transfer_runs_running"] == 1)
    tenant.cancel(backfill_id)
    drained = wait_for(
        lambda: (b := tenant.backfill(backfill_id))["transfer_runs_running"] == 0 and b
    )
    undone = 5 - drained["transfer_runs_completed"]

    again = data(retry(tenant, backfill_id))

    assert again["transfer_backfill_id"] != backfill_id
    assert again["transfer_runs_total"] == undone
    assert again["range_end_date"] == "2024-06-05"
    done = tenant.wait_until_status(again["transfer_backfill_id"], "COMPLETED", timeout=60)
    assert done["transfer_runs_completed"] == undone
    assert tenant.backfill(backfill_id)["status"] == "CANCELLED"  # the old record stays final
    completed = [r["data_date"] for r in tenant.runs(transfer_id) if r["status"] == "COMPLETED"]
    assert sorted(completed) == [f"2024-06-0{d}" for d in range(1, 6)]  # each date once


def test_a_retry_of_a_cancelled_backfill_with_gaps_runs_only_the_dates_left_undone(
    tenant: Tenant,
) -> None:
    transfer_id = tenant.create_transfer(fail_dates=["2024-07-02", "2024-07-04"])
    backfill_id = tenant.create_backfill(transfer_id, "2024-07-01", "2024-07-05")[
        "transfer_backfill_id"
    ]
    tenant.wait_until_status(backfill_id, "FAILED")
    tenant.cancel(backfill_id)

    again = data(retry(tenant, backfill_id))
    retry_id = again["transfer_backfill_id"]
    failed = tenant.wait_until_status(retry_id, "FAILED")  # the source still fails them

    assert (again["range_start_date"], again["range_end_date"]) == ("2024-07-02", "2024-07-04")
    assert (failed["transfer_runs_total"], failed["transfer_runs_failed"]) == (2, 2)
    assert failed["transfer_runs_completed"] == 0
    runs = sorted((r["data_date"], r["status"]) for r in tenant.runs(transfer_id))
    assert runs == [  # 2024-07-03 completed the first time: it does not run again
        ("2024-07-01", "COMPLETED"),
        ("2024-07-02", "FAILED"),
        ("2024-07-02", "FAILED"),
        ("2024-07-03", "COMPLETED"),
        ("2024-07-04", "FAILED"),
        ("2024-07-04", "FAILED"),
        ("2024-07-05", "COMPLETED"),
    ]
    dates = tenant.http.get(f"/teams/{tenant.team_id}/backfills/{retry_id}/dates").json()["data"]
    assert [(d["data_date"], d["status"]) for d in dates] == [
        ("2024-07-02", "FAILED"),
        ("2024-07-04", "FAILED"),
    ]
    tenant.cancel(retry_id)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"status": None},
        {"paused": None},
        {"paused": "yes"},
        {"max_concurrent_runs": 0},
        {"max_concurrent_runs": 501},
        {"max_concurrent_runs": None},
        {"max_failed_runs": 0},
        {"paused_reason": "why"},
        {"status": "CANCELLED", "paused": True},
    ],
)
def test_a_bad_change_is_a_bad_request_and_changes_nothing(
    tenant: Tenant, cancel_at_end: list[int], body: dict[str, Any]
) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=1, **SLOW)
    backfill_id = tenant.create_backfill(transfer_id, "2024-07-01", "2024-07-03")[
        "transfer_backfill_id"
    ]
    cancel_at_end.append(backfill_id)
    before = tenant.backfill(backfill_id)

    assert_error(patch(tenant, backfill_id, body), 400, "BAD_REQUEST")

    after = tenant.backfill(backfill_id)
    for field in ("paused", "max_concurrent_runs", "max_failed_runs", "removed_time"):
        assert after[field] == before[field]


def test_changes_and_retries_need_write_access_and_the_team(
    stack: Stack, tenant: Tenant, cancel_at_end: list[int]
) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=1, **SLOW)
    backfill_id = tenant.create_backfill(transfer_id, "2024-07-10", "2024-07-12")[
        "transfer_backfill_id"
    ]
    cancel_at_end.append(backfill_id)
    stranger = new_tenant(stack)
    assert_error(patch(stranger, backfill_id, {"paused": True}), 404, "NOT_FOUND")
    assert_error(retry(stranger, backfill_id), 404, "NOT_FOUND")
    assert_error(retry(tenant, backfill_id), 422, "UNPROCESSABLE_ENTITY")  # it is not FAILED
    assert tenant.backfill(backfill_id)["paused"] is False
    stranger.http.close()


def test_a_final_backfill_cannot_be_paused(tenant: Tenant) -> None:
    transfer_id = tenant.create_transfer()
    backfill_id = tenant.create_backfill(transfer_id, "2024-07-20", "2024-07-20")[
        "transfer_backfill_id"
    ]
    tenant.wait_until_status(backfill_id, "COMPLETED")

    assert_error(patch(tenant, backfill_id, {"paused": True}), 422, "UNPROCESSABLE_ENTITY")
    assert tenant.backfill(backfill_id)["paused"] is False


def test_a_transfers_failure_budget_is_its_backfills_default(
    tenant: Tenant, cancel_at_end: list[int]
) -> None:
    response = tenant.http.post(
        f"/teams/{tenant.team_id}/transfers",
        json={
            "display_name": "budgeted",
            "source": {"type": "demo", "latency_ms": 300, "fail_dates": ["2024-08-01"]},
            "destination": {"type": "sqlite"},
            "max_concurrent_runs": 1,
            "max_failed_runs": 1,
        },
    )
    transfer = data_of(response)
    assert transfer["max_failed_runs"] == 1
    backfill_id = tenant.create_backfill(transfer["transfer_id"], "2024-08-01", "2024-08-04")[
        "transfer_backfill_id"
    ]
    cancel_at_end.append(backfill_id)

    paused = wait_for(lambda: (b := tenant.backfill(backfill_id))["paused"] and b, timeout=60)

    assert paused["max_failed_runs"] == 1
    assert "max_failed_runs 1" in paused["paused_reason"]


def data_of(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()["data"]
    return found


@pytest.mark.parametrize(
    ("role", "scopes"),
    [
        pytest.param(Role.VIEWER, tuple(Scope), id="viewer"),
        pytest.param(Role.OWNER, (Scope.READ,), id="read-scope-only"),
    ],
)
def test_a_change_or_retry_needs_the_write_scope_and_the_edit_permission(
    stack: Stack, tenant: Tenant, role: Role, scopes: tuple[Scope, ...], cancel_at_end: list[int]
) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=1, **SLOW)
    backfill_id = tenant.create_backfill(transfer_id, "2024-08-10", "2024-08-12")[
        "transfer_backfill_id"
    ]
    cancel_at_end.append(backfill_id)
    user_id = tenant.user_id
    if role != Role.OWNER:
        user_id = accounts.create_user(
            db=stack.db,
            email=f"{role}-{backfill_id}-{tenant.team_id}@example.com",
            team_id=tenant.team_id,
            role=role,
        )
    token = accounts.create_token(db=stack.db, user_id=user_id, scopes=list(scopes))
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{stack.api_url}/teams/{tenant.team_id}/backfills/{backfill_id}"

    for body in ({"paused": True}, {"max_concurrent_runs": 3}):
        assert_error(httpx.patch(url, json=body, headers=headers), 403, "FORBIDDEN")
    assert_error(httpx.post(f"{url}/retry", json={}, headers=headers), 403, "FORBIDDEN")
    after = tenant.backfill(backfill_id)
    assert (after["paused"], after["max_concurrent_runs"]) == (False, 1)
