"""The backfill endpoints over HTTP against the real stack: create, read, list, latest, cancel."""

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from persistence import backfills, runs
from tests.support import Stack, Tenant, assert_error, new_tenant, wait_for

BACKFILL_FIELDS = {
    "transfer_backfill_id",
    "transfer_id",
    "range_start_date",
    "range_end_date",
    "created_time",
    "created_user_id",
    "removed_time",
    "removed_user_id",
    "start_time",
    "end_time",
    "status",
    "transfer_runs_total",
    "transfer_runs_created",
    "transfer_runs_completed",
    "transfer_runs_failed",
    "transfer_runs_running",
    "transfer_runs_cancelled",
    "error_report",
    "paused",
    "paused_time",
    "paused_reason",
    "max_concurrent_runs",
    "max_failed_runs",
    "run_order",
    "retry_of_backfill_id",
    "estimated_end_time",
}
INCOMPLETE = {"CREATED", "SCHEDULED", "RUNNING", "FAILED"}
UNFINISHED_RUN = {"CREATED", "QUEUED", "RUNNING"}
SLOW = {"latency_ms": 3000, "rows_per_day": 1}


def timestamp(value: str) -> datetime:
    assert value.endswith("Z"), value
    return datetime.fromisoformat(value)


def post_backfill(tenant: Tenant, transfer_id: int, start: str, end: str) -> httpx.Response:
    return tenant.http.post(
        f"/teams/{tenant.team_id}/transfers/{transfer_id}/backfills",
        json={"range_start": start, "range_end": end},
    )


def patch_status(tenant: Tenant, backfill_id: int, status: str = "CANCELLED") -> httpx.Response:
    return tenant.http.patch(
        f"/teams/{tenant.team_id}/backfills/{backfill_id}", json={"status": status}
    )


def latest(tenant: Tenant, transfer_id: int) -> httpx.Response:
    return tenant.http.get(f"/teams/{tenant.team_id}/transfers/{transfer_id}/backfills/latest")


def incomplete_ids(tenant: Tenant) -> list[int]:
    response = tenant.http.get(f"/teams/{tenant.team_id}/backfills")
    assert response.status_code == 200, response.text
    return [b["transfer_backfill_id"] for b in response.json()["data"]]


def runs_between(tenant: Tenant, transfer_id: int, start: str, end: str) -> list[dict[str, Any]]:
    return tenant.runs(transfer_id, start_date=start, end_date=end)


def run_detail(tenant: Tenant, run_id: int) -> dict[str, Any]:
    response = tenant.http.get(f"/teams/{tenant.team_id}/transfer_runs/{run_id}")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def wait_until_drained(
    tenant: Tenant, transfer_id: int, start: str, end: str, total: int, timeout: float = 60.0
) -> list[dict[str, Any]]:
    """Every run of the range exists and none is waiting or running."""

    def drained() -> list[dict[str, Any]] | None:
        runs = runs_between(tenant, transfer_id, start, end)
        done = len(runs) == total and not any(r["status"] in UNFINISHED_RUN for r in runs)
        return runs if done else None

    found: list[dict[str, Any]] = wait_for(drained, timeout=timeout)
    return found


@pytest.fixture
def cancel_later(tenant: Tenant) -> Iterator[list[tuple[Tenant, int]]]:
    """Backfills to cancel when the test ends, so slow ones stop occupying the worker."""
    pending: list[tuple[Tenant, int]] = []
    yield pending
    for owner, backfill_id in pending:
        patch_status(owner, backfill_id)
    for owner in {id(owner): owner for owner, _ in pending if owner is not tenant}.values():
        owner.http.close()


# --- create and read ---------------------------------------------------------------------


def test_create_answers_200_with_a_created_backfill_and_every_field(tenant: Tenant) -> None:
    transfer_id = tenant.create_transfer(rows_per_day=2)

    response = post_backfill(tenant, transfer_id, "2024-01-10", "2024-01-14")

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"meta", "data"}
    assert body["meta"]["request_id"]
    created = body["data"]
    assert set(created) == BACKFILL_FIELDS
    assert isinstance(created["transfer_backfill_id"], int)
    assert created["transfer_id"] == transfer_id
    assert created["range_start_date"] == "2024-01-10"
    assert created["range_end_date"] == "2024-01-14"
    assert timestamp(created["created_time"]) <= datetime.now(UTC)
    assert created["created_user_id"] == tenant.user_id
    assert created["removed_time"] is None
    assert created["removed_user_id"] is None
    assert created["start_time"] is None
    assert created["end_time"] is None
    assert created["status"] == "CREATED"
    assert created["transfer_runs_total"] == 5
    assert created["transfer_runs_created"] == 0
    assert created["transfer_runs_completed"] == 0
    assert created["transfer_runs_failed"] == 0
    assert created["error_report"] == []
    tenant.wait_until_status(created["transfer_backfill_id"], "COMPLETED")


def test_get_shows_live_progress_while_running(tenant: Tenant) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=1, latency_ms=1000, rows_per_day=1)
    backfill_id = tenant.create_backfill(transfer_id, "2024-02-01", "2024-02-04")[
        "transfer_backfill_id"
    ]

    def midway() -> dict[str, Any] | None:
        backfill = tenant.backfill(backfill_id)
        running = backfill["status"] == "RUNNING"
        return backfill if running and 0 < backfill["transfer_runs_completed"] < 4 else None

    during = wait_for(midway, timeout=60, interval=0.05)

    assert set(during) == BACKFILL_FIELDS
    assert during["start_time"] is not None
    assert during["end_time"] is None
    assert during["transfer_runs_total"] == 4
    done = tenant.wait_until_status(backfill_id, "COMPLETED")
    assert done["transfer_runs_completed"] == 4
    assert done["transfer_runs_failed"] == 0
    assert done["end_time"] is not None
    assert timestamp(done["start_time"]) <= timestamp(done["end_time"])


def test_failed_dates_end_the_backfill_failed_with_one_error_per_date(tenant: Tenant) -> None:
    transfer_id = tenant.create_transfer(fail_dates=["2024-02-02", "2024-02-04"])

    backfill_id = tenant.create_backfill(transfer_id, "2024-02-01", "2024-02-05")[
        "transfer_backfill_id"
    ]
    failed = tenant.wait_until_status(backfill_id, "FAILED")

    assert failed["transfer_runs_total"] == 5
    assert failed["transfer_runs_created"] == 5
    assert failed["transfer_runs_completed"] == 3
    assert failed["transfer_runs_failed"] == 2
    assert failed["end_time"] is not None
    report = failed["error_report"]
    assert [entry["transfer_run_date"] for entry in report] == ["2024-02-02", "2024-02-04"]
    for entry in report:
        assert set(entry) == {"transfer_run_date", "error"}
        assert entry["transfer_run_date"] in entry["error"]
    statuses = {r["data_date"]: r["status"] for r in tenant.runs(transfer_id)}
    assert statuses == {
        "2024-02-01": "COMPLETED",
        "2024-02-02": "FAILED",
        "2024-02-03": "COMPLETED",
        "2024-02-04": "FAILED",
        "2024-02-05": "COMPLETED",
    }


def test_a_failed_backfill_is_incomplete_blocks_overlaps_and_can_be_cancelled(
    tenant: Tenant,
) -> None:
    transfer_id = tenant.create_transfer(fail_dates=["2024-03-02"])
    backfill_id = tenant.create_backfill(transfer_id, "2024-03-01", "2024-03-03")[
        "transfer_backfill_id"
    ]
    tenant.wait_until_status(backfill_id, "FAILED")

    assert incomplete_ids(tenant) == [backfill_id]
    assert_error(
        post_backfill(tenant, transfer_id, "2024-03-03", "2024-03-05"), 422, "CONFLICT_ERROR"
    )

    response = patch_status(tenant, backfill_id)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["status"] == "CANCELLED"
    assert tenant.backfill(backfill_id)["status"] == "CANCELLED"
    assert incomplete_ids(tenant) == []
    again = post_backfill(tenant, transfer_id, "2024-03-03", "2024-03-05")
    assert again.status_code == 200, again.text
    tenant.wait_until_status(again.json()["data"]["transfer_backfill_id"], "COMPLETED")


# --- list and latest ---------------------------------------------------------------------


def test_list_returns_only_the_teams_incomplete_backfills_newest_first(
    stack: Stack, tenant: Tenant, cancel_later: list[tuple[Tenant, int]]
) -> None:
    fast = tenant.create_transfer(rows_per_day=1)
    slow = tenant.create_transfer(max_concurrent_runs=1, **SLOW)
    failing = tenant.create_transfer(fail_dates=["2024-01-01"])
    other = new_tenant(stack)
    other_transfer = other.create_transfer(max_concurrent_runs=1, **SLOW)
    other_id = other.create_backfill(other_transfer, "2024-01-01", "2024-01-10")[
        "transfer_backfill_id"
    ]
    cancel_later.append((other, other_id))

    completed = tenant.create_backfill(fast, "2024-01-01", "2024-01-02")
    tenant.wait_until_status(completed["transfer_backfill_id"], "COMPLETED")
    failed = tenant.create_backfill(failing, "2024-01-01", "2024-01-02")
    tenant.wait_until_status(failed["transfer_backfill_id"], "FAILED")
    running = tenant.create_backfill(slow, "2024-01-01", "2024-01-10")
    cancel_later.append((tenant, running["transfer_backfill_id"]))
    cancelled = tenant.create_backfill(slow, "2024-03-01", "2024-03-10")
    assert patch_status(tenant, cancelled["transfer_backfill_id"]).status_code == 200
    newest = tenant.create_backfill(slow, "2024-05-01", "2024-05-10")
    cancel_later.append((tenant, newest["transfer_backfill_id"]))

    response = tenant.http.get(f"/teams/{tenant.team_id}/backfills")

    assert response.status_code == 200, response.text
    listed = response.json()["data"]
    assert [b["transfer_backfill_id"] for b in listed] == [
        newest["transfer_backfill_id"],
        running["transfer_backfill_id"],
        failed["transfer_backfill_id"],
    ]
    assert {b["transfer_id"] for b in listed} == {slow, failing}
    for backfill in listed:
        assert set(backfill) == BACKFILL_FIELDS
        assert backfill["status"] in INCOMPLETE
    created = [timestamp(b["created_time"]) for b in listed]
    assert created == sorted(created, reverse=True)
    assert other_id not in incomplete_ids(tenant)
    assert incomplete_ids(other) == [other_id]


def failed_backfills(stack: Stack, tenant: Tenant, count: int) -> list[int]:
    """`count` FAILED backfills of one transfer, the n-th (from 0) with n % 4 failed dates
    (a FAILED backfill is incomplete, and no reconciler or worker touches it)."""
    transfer_id = tenant.create_transfer()
    made = []
    for n in range(count):
        first = date(2000, 1, 1) + timedelta(days=10 * n)
        backfill = tenant_backfill(stack, tenant, transfer_id, first, first + timedelta(days=3))
        runs.plan_runs(
            db=stack.db, backfill_id=backfill, first=first, last=first + timedelta(days=3)
        )
        for offset in range(max(1, n % 4)):
            runs.fail_run(
                db=stack.db,
                backfill_id=backfill,
                data_date=first + timedelta(days=offset),
                message=f'boom {n}/{offset} \u00e9"quoted"',
            )
        backfills.finish_backfill(db=stack.db, backfill_id=backfill)
        made.append(backfill)
    return made


def tenant_backfill(stack: Stack, tenant: Tenant, transfer_id: int, first: date, last: date) -> int:
    backfill = backfills.create_backfill(
        db=stack.db,
        team_id=tenant.team_id,
        transfer_id=transfer_id,
        user_id=tenant.user_id,
        range_start=first,
        range_end=last,
    )
    assert backfill.id is not None
    return backfill.id


def test_the_list_pages_with_limit_and_offset_and_is_whole_without_them(
    stack: Stack, tenant: Tenant
) -> None:
    made = failed_backfills(stack, tenant, 105)  # more than one chunk of the streamed answer
    path = f"/teams/{tenant.team_id}/backfills"

    whole = tenant.http.get(path)
    pages = [tenant.http.get(path, params={"limit": 40, "offset": o}) for o in (0, 40, 80, 120)]

    assert whole.status_code == 200, whole.text
    assert whole.headers["content-type"] == "application/json"
    assert whole.json()["meta"]["request_id"] == whole.headers["X-Request-Id"]
    listed = whole.json()["data"]
    assert [b["transfer_backfill_id"] for b in listed] == made[::-1], "newest first"
    assert [len(page.json()["data"]) for page in pages] == [40, 40, 25, 0]
    assert [b for page in pages for b in page.json()["data"]] == listed
    for backfill in listed[:8]:
        one = tenant.http.get(f"{path}/{backfill['transfer_backfill_id']}").json()["data"]
        assert backfill == one
        assert set(backfill) == BACKFILL_FIELDS
    assert listed[-4]["error_report"][2] == {
        "transfer_run_date": "2000-02-02",  # the 4th backfill: 30 days in, its 3rd date
        "error": 'boom 3/2 \u00e9"quoted"',
    }


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 10001}, {"limit": "x"}, {"offset": -1}, {"limit": 1.5}]
)
def test_a_bad_limit_or_offset_is_400(tenant: Tenant, params: dict[str, int | float | str]) -> None:
    response = tenant.http.get(f"/teams/{tenant.team_id}/backfills", params=params)

    assert_error(response, 400, "BAD_REQUEST")


def test_latest_returns_the_most_recently_created_backfill_in_any_status(
    tenant: Tenant,
) -> None:
    transfer_id = tenant.create_transfer(rows_per_day=1)
    first = tenant.create_backfill(transfer_id, "2024-04-01", "2024-04-02")
    second = tenant.create_backfill(transfer_id, "2024-04-03", "2024-04-04")

    response = latest(tenant, transfer_id)

    assert response.status_code == 200, response.text
    assert set(response.json()["data"]) == BACKFILL_FIELDS
    assert response.json()["data"]["transfer_backfill_id"] == second["transfer_backfill_id"]
    tenant.wait_until_status(first["transfer_backfill_id"], "COMPLETED")
    tenant.wait_until_status(second["transfer_backfill_id"], "COMPLETED")
    after = latest(tenant, transfer_id).json()["data"]
    assert after["transfer_backfill_id"] == second["transfer_backfill_id"]
    assert after["status"] == "COMPLETED"


def test_latest_is_404_when_the_transfer_has_no_backfill(tenant: Tenant) -> None:
    transfer_id = tenant.create_transfer()

    assert_error(latest(tenant, transfer_id), 404, "NOT_FOUND")


# --- range validation and overlaps -------------------------------------------------------


def tomorrow_utc() -> str:
    return (datetime.now(UTC).date() + timedelta(days=1)).isoformat()


@pytest.mark.parametrize(
    ("start", "end"),
    [
        pytest.param("2024-01-10", "2024-01-09", id="end-before-start"),
        pytest.param("2024-01-01", None, id="end-in-the-future"),
        pytest.param(
            "2020-01-01", (date(2020, 1, 1) + timedelta(days=400)).isoformat(), id="401-days"
        ),
    ],
)
def test_an_invalid_range_is_refused_with_422_and_creates_nothing(
    tenant: Tenant, start: str, end: str | None
) -> None:
    transfer_id = tenant.create_transfer()

    response = post_backfill(tenant, transfer_id, start, end or tomorrow_utc())

    assert_error(response, 422, "UNPROCESSABLE_ENTITY")
    assert_error(latest(tenant, transfer_id), 404, "NOT_FOUND")
    assert incomplete_ids(tenant) == []


def test_an_overlap_with_an_incomplete_backfill_of_the_transfer_is_a_conflict(
    tenant: Tenant, cancel_later: list[tuple[Tenant, int]]
) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=1, **SLOW)
    other_transfer = tenant.create_transfer(max_concurrent_runs=1, **SLOW)
    active = tenant.create_backfill(transfer_id, "2024-05-01", "2024-05-10")
    cancel_later.append((tenant, active["transfer_backfill_id"]))

    for start, end in [
        ("2024-05-01", "2024-05-10"),
        ("2024-04-20", "2024-05-01"),
        ("2024-05-10", "2024-05-20"),
        ("2024-05-04", "2024-05-05"),
        ("2024-04-01", "2024-06-01"),
    ]:
        assert_error(post_backfill(tenant, transfer_id, start, end), 422, "CONFLICT_ERROR")

    same_range_elsewhere = post_backfill(tenant, other_transfer, "2024-05-01", "2024-05-10")
    assert same_range_elsewhere.status_code == 200, same_range_elsewhere.text
    cancel_later.append((tenant, same_range_elsewhere.json()["data"]["transfer_backfill_id"]))
    for start, end in [("2024-04-21", "2024-04-30"), ("2024-05-11", "2024-05-20")]:
        adjacent = post_backfill(tenant, transfer_id, start, end)
        assert adjacent.status_code == 200, adjacent.text
        cancel_later.append((tenant, adjacent.json()["data"]["transfer_backfill_id"]))
    assert latest(tenant, transfer_id).json()["data"]["range_start_date"] == "2024-05-11"


# --- cancel ------------------------------------------------------------------------------


def test_cancel_stops_new_runs_lets_running_ones_finish_and_keeps_the_record(
    tenant: Tenant,
) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=2, latency_ms=4000, rows_per_day=1)
    start, end = "2024-06-01", "2024-06-10"
    backfill_id = tenant.create_backfill(transfer_id, start, end)["transfer_backfill_id"]

    def two_running() -> list[dict[str, Any]] | None:
        runs = runs_between(tenant, transfer_id, start, end)
        running = [r for r in runs if r["status"] == "RUNNING"]
        return running if len(running) == 2 else None

    wait_for(two_running, timeout=60, interval=0.05)

    response = patch_status(tenant, backfill_id)
    patched_at = datetime.now(UTC)

    assert response.status_code == 200, response.text
    answered = response.json()["data"]
    assert set(answered) == BACKFILL_FIELDS
    assert answered["status"] == "CANCELLED"
    assert answered["removed_user_id"] == tenant.user_id
    assert answered["removed_time"] is not None
    assert answered["end_time"] == answered["removed_time"]
    assert timestamp(answered["removed_time"]) <= patched_at
    in_flight = {
        r["id"] for r in runs_between(tenant, transfer_id, start, end) if r["status"] == "RUNNING"
    }
    assert len(in_flight) == 2

    runs = wait_until_drained(tenant, transfer_id, start, end, total=10)

    assert {r["id"] for r in runs if r["status"] == "COMPLETED"} == in_flight
    assert sorted(r["status"] for r in runs if r["id"] not in in_flight) == ["CANCELLED"] * 8
    for run in runs:
        detail = run_detail(tenant, run["id"])
        if run["id"] in in_flight:
            assert timestamp(detail["started_time"]) <= patched_at
        else:
            assert detail["started_time"] is None
    final = tenant.backfill(backfill_id)
    assert final["status"] == "CANCELLED"
    assert final["transfer_runs_completed"] == 2
    assert final["transfer_runs_failed"] == 0
    assert final["transfer_runs_created"] == 10
    assert final["removed_user_id"] == tenant.user_id
    assert final["removed_time"] == answered["removed_time"]
    assert final["end_time"] == answered["end_time"]
    assert latest(tenant, transfer_id).json()["data"] == final
    assert backfill_id not in incomplete_ids(tenant)

    again = patch_status(tenant, backfill_id)

    assert_error(again, 422, "UNPROCESSABLE_ENTITY")
    assert tenant.backfill(backfill_id) == final


def test_cancel_of_a_completed_backfill_is_422_and_changes_nothing(tenant: Tenant) -> None:
    transfer_id = tenant.create_transfer(rows_per_day=1)
    backfill_id = tenant.create_backfill(transfer_id, "2024-07-01", "2024-07-02")[
        "transfer_backfill_id"
    ]
    done = tenant.wait_until_status(backfill_id, "COMPLETED")

    response = patch_status(tenant, backfill_id)

    assert_error(response, 422, "UNPROCESSABLE_ENTITY")
    assert tenant.backfill(backfill_id) == done
    assert done["removed_time"] is None
    assert done["removed_user_id"] is None


def test_patch_with_another_status_than_cancelled_is_400(
    tenant: Tenant, cancel_later: list[tuple[Tenant, int]]
) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=1, **SLOW)
    backfill_id = tenant.create_backfill(transfer_id, "2024-07-01", "2024-07-10")[
        "transfer_backfill_id"
    ]
    cancel_later.append((tenant, backfill_id))

    response = patch_status(tenant, backfill_id, "COMPLETED")

    assert_error(response, 400, "BAD_REQUEST")
    backfill = tenant.backfill(backfill_id)
    assert backfill["status"] in INCOMPLETE
    assert backfill["removed_time"] is None
    assert backfill["removed_user_id"] is None


def test_cancel_racing_the_last_run_finishing_gives_one_consistent_outcome(
    tenant: Tenant,
) -> None:
    transfer_id = tenant.create_transfer(latency_ms=300, rows_per_day=1)

    for attempt, delay in enumerate([0.0, 0.2, 0.35, 0.5, 0.9]):
        start = date(2024, 8, 1) + timedelta(days=2 * attempt)
        end = start + timedelta(days=1)
        backfill_id = tenant.create_backfill(transfer_id, start.isoformat(), end.isoformat())[
            "transfer_backfill_id"
        ]
        time.sleep(delay)  # varies where the cancel lands; not an assertion

        response = patch_status(tenant, backfill_id)

        assert response.status_code in (200, 422), response.text
        if response.status_code == 200:
            assert response.json()["data"]["status"] == "CANCELLED"
        else:
            assert_error(response, 422, "UNPROCESSABLE_ENTITY")
        runs = wait_until_drained(tenant, transfer_id, start.isoformat(), end.isoformat(), 2)
        final = tenant.backfill(backfill_id)
        expected = "CANCELLED" if response.status_code == 200 else "COMPLETED"
        assert final["status"] == expected, (attempt, final)
        statuses = [r["status"] for r in runs]
        assert final["transfer_runs_completed"] == statuses.count("COMPLETED")
        assert final["transfer_runs_failed"] == statuses.count("FAILED")
        assert (
            final["transfer_runs_completed"]
            + final["transfer_runs_failed"]
            + statuses.count("CANCELLED")
            == final["transfer_runs_total"]
            == 2
        )
        if expected == "COMPLETED":
            assert statuses == ["COMPLETED", "COMPLETED"]
            assert final["removed_time"] is None
        else:
            assert final["removed_user_id"] == tenant.user_id
