"""The public `supermetrics` SDK, unchanged, pointed at the service: calls and error mapping."""

import uuid
from collections.abc import Iterator
from datetime import date, datetime

import pytest
from supermetrics import (
    SupermetricsAuthError,
    SupermetricsClient,
    SupermetricsForbiddenError,
    SupermetricsNotFoundError,
    SupermetricsValidationError,
)

from persistence import accounts
from persistence.models import Role, Scope
from tests.support import Stack, Tenant


@pytest.fixture
def sdk(stack: Stack, tenant: Tenant) -> Iterator[SupermetricsClient]:
    client = SupermetricsClient(bearer_token=tenant.token, base_url=stack.api_url)
    yield client
    client.close()


def test_backfill_lifecycle_through_the_sdk(tenant: Tenant, sdk: SupermetricsClient) -> None:
    transfer_id = tenant.create_transfer(rows_per_day=2)

    created = sdk.backfills.create(
        team_id=tenant.team_id,
        transfer_id=transfer_id,
        range_start=date(2024, 1, 1),
        range_end=date(2024, 1, 3),
    )

    assert created.status == "CREATED"
    assert created.transfer_id == transfer_id
    assert created.range_start_date == date(2024, 1, 1)
    assert created.range_end_date == date(2024, 1, 3)
    assert created.created_user_id == tenant.user_id
    assert isinstance(created.created_time, datetime)
    assert created.created_time.utcoffset() is not None
    assert created.transfer_runs_total == 3
    assert created.removed_time is None
    assert created.removed_user_id is None
    assert created.error_report == []
    backfill_id = created.transfer_backfill_id

    tenant.wait_until_status(backfill_id, "COMPLETED")
    done = sdk.backfills.get(team_id=tenant.team_id, backfill_id=backfill_id)
    assert done.status == "COMPLETED"
    assert done.transfer_runs_completed == 3
    assert done.transfer_runs_failed == 0
    assert isinstance(done.start_time, datetime)
    assert isinstance(done.end_time, datetime)
    latest = sdk.backfills.get_latest(team_id=tenant.team_id, transfer_id=transfer_id)
    assert latest.transfer_backfill_id == backfill_id
    assert sdk.backfills.list_incomplete(team_id=tenant.team_id) == []


def test_list_incomplete_and_cancel_through_the_sdk(
    tenant: Tenant, sdk: SupermetricsClient
) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=1, latency_ms=3000, rows_per_day=1)
    created = sdk.backfills.create(
        team_id=tenant.team_id,
        transfer_id=transfer_id,
        range_start=date(2024, 2, 1),
        range_end=date(2024, 2, 10),
    )
    backfill_id = created.transfer_backfill_id

    incomplete = sdk.backfills.list_incomplete(team_id=tenant.team_id)
    assert [b.transfer_backfill_id for b in incomplete] == [backfill_id]
    assert incomplete[0].status in {"CREATED", "SCHEDULED", "RUNNING"}

    cancelled = sdk.backfills.cancel(team_id=tenant.team_id, backfill_id=backfill_id)

    assert cancelled.transfer_backfill_id == backfill_id
    assert cancelled.status == "CANCELLED"
    assert cancelled.removed_user_id == tenant.user_id
    assert isinstance(cancelled.removed_time, datetime)
    assert cancelled.end_time == cancelled.removed_time
    assert sdk.backfills.list_incomplete(team_id=tenant.team_id) == []
    assert sdk.backfills.get_latest(team_id=tenant.team_id, transfer_id=transfer_id).status == (
        "CANCELLED"
    )
    with pytest.raises(SupermetricsValidationError) as refused:
        sdk.backfills.cancel(team_id=tenant.team_id, backfill_id=backfill_id)
    assert refused.value.status_code == 422
    assert refused.value.error_code == "UNPROCESSABLE_ENTITY"


def test_runs_through_the_sdk(tenant: Tenant, sdk: SupermetricsClient) -> None:
    transfer_id = tenant.create_transfer(rows_per_day=2, fail_dates=["2024-03-02"])
    backfill = tenant.create_backfill(transfer_id, "2024-03-01", "2024-03-04")
    tenant.wait_until_status(backfill["transfer_backfill_id"], "FAILED")

    runs = sdk.transfers.list_runs(
        team_id=tenant.team_id,
        transfer_id=transfer_id,
        start_date=datetime(2024, 3, 1),
        end_date=datetime(2024, 3, 3),
        sort_field="data_date",
        sort_direction="ASC",
    )

    assert [r.data_date for r in runs] == [date(2024, 3, d) for d in (1, 2, 3)]
    assert [r.status for r in runs] == ["COMPLETED", "FAILED", "COMPLETED"]
    assert {r.type_ for r in runs} == {"Backfill"}
    assert runs[0].message == ""
    assert runs[0].total_rows == 2
    assert isinstance(runs[0].ended_time, datetime)
    assert "2024-03-02" in runs[1].message

    issues = sdk.transfers.list_runs(
        team_id=tenant.team_id,
        transfer_id=transfer_id,
        start_date=datetime(2024, 3, 1),
        end_date=datetime(2024, 3, 31),
        filter_issues_only=True,
    )
    assert [(r.data_date, r.status) for r in issues] == [(date(2024, 3, 2), "FAILED")]

    page = sdk.transfers.list_runs(
        team_id=tenant.team_id,
        transfer_id=transfer_id,
        start_date=datetime(2024, 3, 1),
        end_date=datetime(2024, 3, 31),
        sort_field="data_date",
        sort_direction="DESC",
        limit=2,
        offset=1,
    )
    assert [r.data_date for r in page] == [date(2024, 3, 3), date(2024, 3, 2)]

    detail = sdk.transfer_runs.get(team_id=tenant.team_id, transfer_run_id=runs[0].id)

    assert detail.id == runs[0].id
    assert detail.status == "COMPLETED"
    assert detail.data_date == date(2024, 3, 1)
    assert isinstance(detail.external_id, str)
    assert detail.external_id
    assert isinstance(detail.started_time, datetime)
    assert isinstance(detail.queued_time, datetime)
    assert detail.total_rows == 2
    assert detail.query_amount == len(detail.query_details) >= 1
    assert detail.failed_query_amount == 0
    assert sum(q.rows for q in detail.query_details) == 2


def test_not_found_maps_to_the_sdks_not_found_error(
    tenant: Tenant, sdk: SupermetricsClient
) -> None:
    transfer_id = tenant.create_transfer()

    with pytest.raises(SupermetricsNotFoundError) as no_backfill:
        sdk.backfills.get(team_id=tenant.team_id, backfill_id=2_000_000_000)
    with pytest.raises(SupermetricsNotFoundError):
        sdk.backfills.get_latest(team_id=tenant.team_id, transfer_id=transfer_id)
    with pytest.raises(SupermetricsNotFoundError):
        sdk.transfer_runs.get(team_id=tenant.team_id, transfer_run_id=2_000_000_000)
    with pytest.raises(SupermetricsNotFoundError):
        sdk.backfills.create(
            team_id=tenant.team_id,
            transfer_id=2_000_000_000,
            range_start=date(2024, 1, 1),
            range_end=date(2024, 1, 2),
        )
    assert no_backfill.value.status_code == 404


def test_a_bad_token_maps_to_the_sdks_auth_error(stack: Stack, tenant: Tenant) -> None:
    with (
        SupermetricsClient(bearer_token="not-a-real-token", base_url=stack.api_url) as client,
        pytest.raises(SupermetricsAuthError) as refused,
    ):
        client.backfills.list_incomplete(team_id=tenant.team_id)

    assert refused.value.status_code == 401


def test_an_overlap_maps_to_a_validation_error_with_conflict_code(
    tenant: Tenant, sdk: SupermetricsClient
) -> None:
    transfer_id = tenant.create_transfer(fail_dates=["2024-04-01"])
    backfill = tenant.create_backfill(transfer_id, "2024-04-01", "2024-04-02")
    tenant.wait_until_status(backfill["transfer_backfill_id"], "FAILED")

    with pytest.raises(SupermetricsValidationError) as conflict:
        sdk.backfills.create(
            team_id=tenant.team_id,
            transfer_id=transfer_id,
            range_start=date(2024, 4, 2),
            range_end=date(2024, 4, 5),
        )

    assert conflict.value.status_code == 422
    assert conflict.value.error_code == "CONFLICT_ERROR"


def test_a_range_in_the_future_maps_to_a_validation_error(
    tenant: Tenant, sdk: SupermetricsClient
) -> None:
    transfer_id = tenant.create_transfer()

    with pytest.raises(SupermetricsValidationError) as refused:
        sdk.backfills.create(
            team_id=tenant.team_id,
            transfer_id=transfer_id,
            range_start=date(2024, 1, 1),
            range_end=date(9999, 1, 1),
        )

    assert refused.value.status_code == 422
    assert refused.value.error_code == "UNPROCESSABLE_ENTITY"


def test_missing_permission_maps_to_the_sdks_forbidden_error(stack: Stack, tenant: Tenant) -> None:
    transfer_id = tenant.create_transfer()
    viewer_id = accounts.create_user(
        db=stack.db,
        email=f"viewer-{uuid.uuid4().hex}@example.com",
        team_id=tenant.team_id,
        role=Role.VIEWER,
    )
    viewer_token = accounts.create_token(db=stack.db, user_id=viewer_id, scopes=list(Scope))

    with SupermetricsClient(bearer_token=viewer_token, base_url=stack.api_url) as viewer:
        assert viewer.backfills.list_incomplete(team_id=tenant.team_id) == []
        with pytest.raises(SupermetricsForbiddenError) as refused:
            viewer.backfills.create(
                team_id=tenant.team_id,
                transfer_id=transfer_id,
                range_start=date(2024, 1, 1),
                range_end=date(2024, 1, 2),
            )
        with pytest.raises(SupermetricsForbiddenError):
            viewer.backfills.list_incomplete(team_id=tenant.team_id + 1_000_000)

    assert refused.value.status_code == 403
    assert refused.value.error_code == "FORBIDDEN"
