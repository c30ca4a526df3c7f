"""The public `supermetrics` SDK, unchanged, alongside this service's additions: backfills
with the new fields, an idempotent create through the SDK's own request options, a dry run
and the per-date view. Its calls parse every answer and map every error as before."""

import uuid
from collections.abc import Iterator
from datetime import date, datetime

import pytest
from supermetrics import SupermetricsClient, SupermetricsValidationError, request_options

from tests.support import Stack, Tenant


@pytest.fixture
def sdk(stack: Stack, tenant: Tenant) -> Iterator[SupermetricsClient]:
    client = SupermetricsClient(bearer_token=tenant.token, base_url=stack.api_url)
    yield client
    client.close()


def test_the_sdk_reads_backfills_that_carry_the_new_fields(
    tenant: Tenant, sdk: SupermetricsClient
) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=1, latency_ms=1500, rows_per_day=1)
    response = tenant.http.post(
        f"/teams/{tenant.team_id}/transfers/{transfer_id}/backfills",
        json={
            "range_start": "2024-01-01",
            "range_end": "2024-01-05",
            "max_concurrent_runs": 1,
            "max_failed_runs": 2,
            "run_order": "NEWEST_FIRST",
        },
    )
    assert response.status_code == 200, response.text
    backfill_id = response.json()["data"]["transfer_backfill_id"]

    read = sdk.backfills.get(team_id=tenant.team_id, backfill_id=backfill_id)
    listed = sdk.backfills.list_incomplete(team_id=tenant.team_id)
    latest = sdk.backfills.get_latest(team_id=tenant.team_id, transfer_id=transfer_id)
    cancelled = sdk.backfills.cancel(team_id=tenant.team_id, backfill_id=backfill_id)

    assert read.transfer_backfill_id == backfill_id
    assert read.status in {"CREATED", "SCHEDULED", "RUNNING"}
    assert read.transfer_runs_total == 5
    assert read.additional_properties["run_order"] == "NEWEST_FIRST"
    assert read.additional_properties["max_failed_runs"] == 2
    assert "estimated_end_time" in read.additional_properties
    assert [b.transfer_backfill_id for b in listed] == [backfill_id]
    assert latest.transfer_backfill_id == backfill_id
    assert cancelled.status == "CANCELLED"
    assert cancelled.additional_properties["estimated_end_time"] is None


def test_the_sdk_creates_idempotently_with_its_request_options(
    tenant: Tenant, sdk: SupermetricsClient
) -> None:
    transfer_id = tenant.create_transfer(rows_per_day=1)
    key = str(uuid.uuid4())

    def create(end: date) -> int:
        with request_options(headers={"Idempotency-Key": key}):
            return sdk.backfills.create(
                team_id=tenant.team_id,
                transfer_id=transfer_id,
                range_start=date(2024, 2, 1),
                range_end=end,
            ).transfer_backfill_id

    first = create(date(2024, 2, 3))
    again = create(date(2024, 2, 3))
    with pytest.raises(SupermetricsValidationError) as refused:
        create(date(2024, 2, 4))

    assert again == first
    assert refused.value.status_code == 422
    assert refused.value.error_code == "UNPROCESSABLE_ENTITY"
    assert key in str(refused.value)
    done = tenant.wait_until_status(first, "COMPLETED")
    assert (
        sdk.backfills.get(team_id=tenant.team_id, backfill_id=first).transfer_runs_completed
        == (done["transfer_runs_completed"])
    )


def test_a_dry_run_creates_nothing_the_sdk_would_see_and_the_dates_match_its_runs(
    tenant: Tenant, sdk: SupermetricsClient
) -> None:
    transfer_id = tenant.create_transfer(rows_per_day=2, fail_dates=["2024-03-02"])
    body = {"range_start": "2024-03-01", "range_end": "2024-03-03"}

    dry = tenant.http.post(
        f"/teams/{tenant.team_id}/transfers/{transfer_id}/backfills/dry_run", json=body
    )

    assert dry.status_code == 200, dry.text
    assert sdk.backfills.list_incomplete(team_id=tenant.team_id) == []
    created = sdk.backfills.create(
        team_id=tenant.team_id,
        transfer_id=transfer_id,
        range_start=date(2024, 3, 1),
        range_end=date(2024, 3, 3),
    )
    tenant.wait_until_status(created.transfer_backfill_id, "FAILED")
    dates = tenant.http.get(
        f"/teams/{tenant.team_id}/backfills/{created.transfer_backfill_id}/dates"
    ).json()["data"]
    runs = sdk.transfers.list_runs(
        team_id=tenant.team_id,
        transfer_id=transfer_id,
        start_date=datetime(2024, 3, 1),
        end_date=datetime(2024, 3, 3),
        sort_field="data_date",
        sort_direction="ASC",
    )

    assert [d["transfer_run_id"] for d in dates] == [r.id for r in runs]
    assert [d["status"] for d in dates] == [r.status for r in runs]
    failed = sdk.transfer_runs.get(
        team_id=tenant.team_id, transfer_run_id=dates[1]["transfer_run_id"]
    )
    assert failed.status == "FAILED"
    assert failed.data_date == date(2024, 3, 2)
    report = sdk.backfills.get(team_id=tenant.team_id, backfill_id=created.transfer_backfill_id)
    assert isinstance(report.error_report, list)
    assert [e.transfer_run_date for e in report.error_report] == [date(2024, 3, 2)]


def test_the_sdk_reads_a_backfill_through_pause_resume_retry_and_cancel(
    tenant: Tenant, sdk: SupermetricsClient
) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=2, fail_dates=["2024-02-02"])
    backfill_id = tenant.create_backfill(transfer_id, "2024-02-01", "2024-02-03")[
        "transfer_backfill_id"
    ]
    url = f"/teams/{tenant.team_id}/backfills/{backfill_id}"

    def read() -> object:
        return sdk.backfills.get(team_id=tenant.team_id, backfill_id=backfill_id)

    assert tenant.http.patch(url, json={"paused": True}).status_code == 200
    paused = sdk.backfills.get(team_id=tenant.team_id, backfill_id=backfill_id)
    assert paused.additional_properties["paused"] is True
    assert paused.status in {"CREATED", "SCHEDULED", "RUNNING"}
    assert tenant.http.patch(url, json={"paused": False}).status_code == 200
    failed = tenant.wait_until_status(backfill_id, "FAILED")
    assert sdk.backfills.get(team_id=tenant.team_id, backfill_id=backfill_id).status == "FAILED"

    retried = tenant.http.post(f"{url}/retry", json={})
    assert retried.status_code == 200, retried.text
    assert read() is not None  # parses while it runs again
    tenant.wait_until_status(backfill_id, "FAILED")  # the date fails again: still retriable
    cancelled = sdk.backfills.cancel(team_id=tenant.team_id, backfill_id=backfill_id)

    assert cancelled.status == "CANCELLED"
    assert failed["transfer_runs_failed"] == 1
    assert cancelled.transfer_runs_failed == 1
