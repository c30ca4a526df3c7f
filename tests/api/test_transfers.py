"""Transfers through the API: create, list, get, delete, and what a bad spec answers."""

import re
from typing import Any

import httpx
import pytest

from tests.support import Tenant, assert_error

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def transfer_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "display_name": "Ads daily",
        "source": {"type": "demo", "rows_per_day": 7},
        "destination": {"type": "sqlite"},
        "max_concurrent_runs": 3,
    }
    body.update(overrides)
    return body


def create(tenant: Tenant, body: Any) -> httpx.Response:
    return tenant.http.post(f"/teams/{tenant.team_id}/transfers", json=body)


def listed(tenant: Tenant) -> list[dict[str, Any]]:
    response = tenant.http.get(f"/teams/{tenant.team_id}/transfers")
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def get(tenant: Tenant, transfer_id: int) -> httpx.Response:
    return tenant.http.get(f"/teams/{tenant.team_id}/transfers/{transfer_id}")


def delete(tenant: Tenant, transfer_id: int) -> httpx.Response:
    return tenant.http.delete(f"/teams/{tenant.team_id}/transfers/{transfer_id}")


def error_text(response: httpx.Response, status: int, code: str) -> str:
    """Asserts the envelope; returns the error's message and description as one text."""
    error = assert_error(response, status, code)
    return f"{error['message']} {error.get('description', '')}"


# --- create, list, get ---------------------------------------------------------------------


def test_creating_a_transfer_answers_with_it(tenant: Tenant) -> None:
    response = create(tenant, transfer_body())

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["meta"]["request_id"] == response.headers["X-Request-Id"]
    transfer = body["data"]
    assert isinstance(transfer["transfer_id"], int)
    assert transfer["team_id"] == tenant.team_id
    assert transfer["display_name"] == "Ads daily"
    assert transfer["source"]["type"] == "demo"
    assert transfer["source"]["rows_per_day"] == 7
    assert transfer["destination"]["type"] == "sqlite"
    assert transfer["max_concurrent_runs"] == 3
    assert TIMESTAMP.match(transfer["created_time"]), transfer["created_time"]
    assert transfer["created_user_id"] == tenant.user_id


def test_every_demo_source_option_is_kept(tenant: Tenant) -> None:
    source = {
        "type": "demo",
        "rows_per_day": 11,
        "latency_ms": 25,
        "fail_dates": ["2024-01-02", "2024-01-05"],
        "flaky_rate": 0.25,
    }
    destination = {"type": "sqlite", "table": "ads_daily"}

    created = create(tenant, transfer_body(source=source, destination=destination))

    assert created.status_code == 200, created.text
    fetched = get(tenant, created.json()["data"]["transfer_id"]).json()["data"]
    assert fetched["source"] == source
    assert fetched["destination"]["type"] == "sqlite"
    assert fetched["destination"]["table"] == "ads_daily"


def test_max_concurrent_runs_is_optional(tenant: Tenant) -> None:
    body = transfer_body()
    del body["max_concurrent_runs"]

    response = create(tenant, body)

    assert response.status_code == 200, response.text
    assert 1 <= response.json()["data"]["max_concurrent_runs"] <= 500


@pytest.mark.parametrize("value", [1, 500])
def test_max_concurrent_runs_accepts_both_ends_of_its_range(tenant: Tenant, value: int) -> None:
    response = create(tenant, transfer_body(max_concurrent_runs=value))

    assert response.status_code == 200, response.text
    assert response.json()["data"]["max_concurrent_runs"] == value


def test_get_answers_with_what_create_answered(tenant: Tenant) -> None:
    created = create(tenant, transfer_body()).json()["data"]

    response = get(tenant, created["transfer_id"])

    assert response.status_code == 200, response.text
    assert response.json()["data"] == created


def test_list_has_every_transfer_of_the_team(tenant: Tenant) -> None:
    assert listed(tenant) == []
    first = create(tenant, transfer_body(display_name="first")).json()["data"]
    second = create(tenant, transfer_body(display_name="second")).json()["data"]

    found = listed(tenant)

    assert sorted(found, key=lambda t: t["transfer_id"]) == [first, second]


def test_a_transfer_that_does_not_exist_is_not_found(tenant: Tenant) -> None:
    assert_error(get(tenant, 2**31 - 1), 404, "NOT_FOUND")
    assert_error(delete(tenant, 2**31 - 1), 404, "NOT_FOUND")


# --- 422: a spec the service cannot use ----------------------------------------------------


@pytest.mark.parametrize(
    ("source", "destination", "named"),
    [
        ({"type": "nope"}, {"type": "sqlite"}, "source.type"),
        ({"rows_per_day": 5}, {"type": "sqlite"}, "source.type"),
        ({"type": 7}, {"type": "sqlite"}, "source.type"),
        ({"type": "demo"}, {"type": "nope"}, "destination.type"),
        ({"type": "demo"}, {}, "destination.type"),
        ({"type": "demo", "rows_per_day": "x"}, {"type": "sqlite"}, "source.rows_per_day"),
        ({"type": "demo", "rows_per_day": -1}, {"type": "sqlite"}, "source.rows_per_day"),
        ({"type": "demo", "latency_ms": "slow"}, {"type": "sqlite"}, "source.latency_ms"),
        ({"type": "demo", "flaky_rate": 2}, {"type": "sqlite"}, "source.flaky_rate"),
        ({"type": "demo", "fail_dates": ["someday"]}, {"type": "sqlite"}, "source.fail_dates"),
        ({"type": "demo", "fail_dates": "2024-01-01"}, {"type": "sqlite"}, "source.fail_dates"),
        ({"type": "demo", "bogus": 1}, {"type": "sqlite"}, "source.bogus"),
        ({"type": "demo"}, {"type": "sqlite", "bogus": 1}, "destination.bogus"),
        ({"type": "demo"}, {"type": "sqlite", "table": "x; DROP"}, "destination.table"),
    ],
    ids=[
        "unknown-source-type",
        "no-source-type",
        "source-type-not-a-string",
        "unknown-destination-type",
        "no-destination-type",
        "rows-per-day-not-an-int",
        "rows-per-day-negative",
        "latency-not-an-int",
        "flaky-rate-above-1",
        "fail-date-not-a-date",
        "fail-dates-not-a-list",
        "unknown-source-option",
        "unknown-destination-option",
        "table-not-an-identifier",
    ],
)
def test_a_spec_the_service_cannot_use_is_unprocessable_and_nothing_is_stored(
    tenant: Tenant, source: dict[str, Any], destination: dict[str, Any], named: str
) -> None:
    response = create(tenant, transfer_body(source=source, destination=destination))

    text = error_text(response, 422, "UNPROCESSABLE_ENTITY")
    assert named in text, text
    assert listed(tenant) == []


def test_an_unprocessable_spec_names_every_bad_option(tenant: Tenant) -> None:
    source = {"type": "demo", "rows_per_day": "x", "bogus": 1}

    text = error_text(create(tenant, transfer_body(source=source)), 422, "UNPROCESSABLE_ENTITY")

    assert "source.rows_per_day" in text, text
    assert "source.bogus" in text, text


# --- 400: a body that cannot be read -------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"max_concurrent_runs": 0},
        {"max_concurrent_runs": 501},
        {"max_concurrent_runs": -1},
        {"max_concurrent_runs": "many"},
        {"max_concurrent_runs": 2.5},
        {"source": "demo"},
        {"destination": ["sqlite"]},
        {"display_name": 12},
    ],
    ids=[
        "concurrency-0",
        "concurrency-501",
        "concurrency-negative",
        "concurrency-word",
        "concurrency-fraction",
        "source-not-an-object",
        "destination-not-an-object",
        "name-not-a-string",
    ],
)
def test_a_transfer_body_of_the_wrong_shape_is_a_bad_request(
    tenant: Tenant, overrides: dict[str, Any]
) -> None:
    response = create(tenant, transfer_body(**overrides))

    assert_error(response, 400, "BAD_REQUEST")
    assert listed(tenant) == []


@pytest.mark.parametrize("missing", ["display_name", "source", "destination"])
def test_a_transfer_body_missing_a_required_field_is_a_bad_request(
    tenant: Tenant, missing: str
) -> None:
    body = transfer_body()
    del body[missing]

    text = error_text(create(tenant, body), 400, "BAD_REQUEST")
    assert missing in text, text
    assert listed(tenant) == []


# --- delete --------------------------------------------------------------------------------


def test_deleting_a_transfer_removes_it_from_list_and_get(tenant: Tenant) -> None:
    kept = tenant.create_transfer()
    deleted = tenant.create_transfer()

    response = delete(tenant, deleted)

    assert response.status_code == 200, response.text
    assert response.json()["data"]["transfer_id"] == deleted
    assert [t["transfer_id"] for t in listed(tenant)] == [kept]
    assert_error(get(tenant, deleted), 404, "NOT_FOUND")
    assert get(tenant, kept).status_code == 200


def test_deleting_a_transfer_twice_is_not_found_the_second_time(tenant: Tenant) -> None:
    transfer_id = tenant.create_transfer()
    assert delete(tenant, transfer_id).status_code == 200

    assert_error(delete(tenant, transfer_id), 404, "NOT_FOUND")


def test_a_transfer_with_a_failed_backfill_cannot_be_deleted_until_it_is_cancelled(
    tenant: Tenant,
) -> None:
    transfer_id = tenant.create_transfer(rows_per_day=2, fail_dates=["2024-01-02"])
    created = tenant.create_backfill(transfer_id, "2024-01-01", "2024-01-03")
    backfill_id = created["transfer_backfill_id"]
    tenant.wait_until_status(backfill_id, "FAILED", timeout=120)

    refused = delete(tenant, transfer_id)

    assert_error(refused, 422, "UNPROCESSABLE_ENTITY")
    assert get(tenant, transfer_id).status_code == 200
    assert [t["transfer_id"] for t in listed(tenant)] == [transfer_id]
    assert tenant.backfill(backfill_id)["status"] == "FAILED"

    cancel = tenant.http.patch(
        f"/teams/{tenant.team_id}/backfills/{backfill_id}", json={"status": "CANCELLED"}
    )
    assert cancel.status_code == 200, cancel.text
    assert delete(tenant, transfer_id).status_code == 200
    assert listed(tenant) == []


def test_a_transfer_with_a_running_backfill_cannot_be_deleted(tenant: Tenant) -> None:
    # One run at a time, each taking 1.5 s: the backfill needs at least 7.5 s to finish.
    transfer_id = tenant.create_transfer(max_concurrent_runs=1, rows_per_day=1, latency_ms=1500)
    created = tenant.create_backfill(transfer_id, "2024-01-01", "2024-01-05")
    backfill_id = created["transfer_backfill_id"]

    refused = delete(tenant, transfer_id)

    assert_error(refused, 422, "UNPROCESSABLE_ENTITY")
    assert get(tenant, transfer_id).status_code == 200
    cancel = tenant.http.patch(
        f"/teams/{tenant.team_id}/backfills/{backfill_id}", json={"status": "CANCELLED"}
    )
    assert cancel.status_code == 200, cancel.text
    assert delete(tenant, transfer_id).status_code == 200


def test_deleting_a_transfer_keeps_its_backfills_and_runs_on_record(tenant: Tenant) -> None:
    transfer_id = tenant.create_transfer(rows_per_day=4)
    created = tenant.create_backfill(transfer_id, "2024-02-01", "2024-02-03")
    backfill_id = created["transfer_backfill_id"]
    done = tenant.wait_until_status(backfill_id, "COMPLETED", timeout=120)
    run_ids = [r["id"] for r in tenant.runs(transfer_id)]
    assert len(run_ids) == 3

    response = delete(tenant, transfer_id)

    assert response.status_code == 200, response.text
    assert listed(tenant) == []
    assert_error(get(tenant, transfer_id), 404, "NOT_FOUND")
    assert tenant.backfill(backfill_id) == done
    for run_id in run_ids:
        run = tenant.http.get(f"/teams/{tenant.team_id}/transfer_runs/{run_id}")
        assert run.status_code == 200, run.text
        assert run.json()["data"]["status"] == "COMPLETED"
    # Paths under the deleted transfer are gone; the records answer by their own ids above.
    base = f"/teams/{tenant.team_id}/transfers/{transfer_id}"
    assert_error(tenant.http.get(f"{base}/backfills/latest"), 404, "NOT_FOUND")
    runs = tenant.http.get(
        f"{base}/runs", params={"start_date": "2024-02-01", "end_date": "2024-02-03"}
    )
    assert_error(runs, 404, "NOT_FOUND")


def test_a_deleted_transfer_cannot_be_backfilled(tenant: Tenant) -> None:
    transfer_id = tenant.create_transfer()
    assert delete(tenant, transfer_id).status_code == 200

    response = tenant.http.post(
        f"/teams/{tenant.team_id}/transfers/{transfer_id}/backfills",
        json={"range_start": "2024-01-01", "range_end": "2024-01-01"},
    )

    assert_error(response, 404, "NOT_FOUND")
    assert tenant.http.get(f"/teams/{tenant.team_id}/backfills").json()["data"] == []
