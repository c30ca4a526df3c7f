"""`Idempotency-Key` on create, over HTTP: a retry answers the backfill the first request
made, from any API process; another body under the key is 422; racing requests make one."""

import dataclasses
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from persistence import accounts
from persistence.models import Role, Scope
from tests.api.test_ambiguous_start import api_of_its_own
from tests.support import Stack, Tenant, assert_error, bearer, new_tenant
from tests.temporal_proxy import silenceable_proxy

BODY = {"range_start": "2024-01-01", "range_end": "2024-01-03"}


def post(
    tenant: Tenant, transfer_id: int, key: str | None, body: Any = None, **headers: str
) -> httpx.Response:
    sent = {**headers, **({"Idempotency-Key": key} if key is not None else {})}
    return tenant.http.post(
        f"/teams/{tenant.team_id}/transfers/{transfer_id}/backfills",
        json=BODY if body is None else body,
        headers=sent,
    )


def backfills_of(tenant: Tenant, transfer_id: int) -> list[int]:
    """Every backfill of the transfer, as the runs list and latest show them."""
    latest = tenant.http.get(f"/teams/{tenant.team_id}/transfers/{transfer_id}/backfills/latest")
    if latest.status_code == 404:
        return []
    listed = tenant.http.get(f"/teams/{tenant.team_id}/backfills").json()["data"]
    ids = {b["transfer_backfill_id"] for b in listed if b["transfer_id"] == transfer_id}
    return sorted(ids | {latest.json()["data"]["transfer_backfill_id"]})


def new_key() -> str:
    return str(uuid.uuid4())


def test_a_retry_with_the_key_answers_the_same_backfill(tenant: Tenant) -> None:
    transfer_id = tenant.create_transfer(rows_per_day=1)
    key = new_key()

    first = post(tenant, transfer_id, key)
    again = post(tenant, transfer_id, key)
    # the same request, its defaults stated and its fields in another order
    stated = post(
        tenant,
        transfer_id,
        key,
        {"run_order": "OLDEST_FIRST", "range_end": "2024-01-03", "range_start": "2024-01-01"},
    )

    assert first.status_code == 200, first.text
    assert "Idempotent-Replayed" not in first.headers
    backfill_id = first.json()["data"]["transfer_backfill_id"]
    for replay in (again, stated):
        assert replay.status_code == 200, replay.text
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert replay.json()["data"]["transfer_backfill_id"] == backfill_id
    assert backfills_of(tenant, transfer_id) == [backfill_id]
    done = tenant.wait_until_status(backfill_id, "COMPLETED")
    later = post(tenant, transfer_id, key)
    assert later.json()["data"] == done  # the backfill as it is now


def test_the_key_with_another_body_is_422_naming_it_and_creates_nothing(
    tenant: Tenant,
) -> None:
    transfer_id = tenant.create_transfer(rows_per_day=1)
    other_transfer = tenant.create_transfer(rows_per_day=1)
    key = new_key()
    backfill_id = post(tenant, transfer_id, key).json()["data"]["transfer_backfill_id"]

    other_range = post(tenant, transfer_id, key, {**BODY, "range_end": "2024-01-04"})
    other_option = post(tenant, transfer_id, key, {**BODY, "max_concurrent_runs": 1})
    other_path = post(tenant, other_transfer, key)

    for refused in (other_range, other_option, other_path):
        error = assert_error(refused, 422, "UNPROCESSABLE_ENTITY")
        assert key in error["message"]
        assert f"backfill {backfill_id}" in error["message"]
    assert backfills_of(tenant, transfer_id) == [backfill_id]
    assert backfills_of(tenant, other_transfer) == []


def test_without_a_key_every_create_is_its_own(tenant: Tenant) -> None:
    transfer_id = tenant.create_transfer(rows_per_day=1)
    first = post(
        tenant, transfer_id, None, {"range_start": "2024-01-01", "range_end": "2024-01-01"}
    )
    second = post(
        tenant, transfer_id, None, {"range_start": "2024-01-02", "range_end": "2024-01-02"}
    )

    assert first.status_code == second.status_code == 200
    assert (
        first.json()["data"]["transfer_backfill_id"]
        != second.json()["data"]["transfer_backfill_id"]
    )


@contextmanager
def on_the_shared_api(stack: Stack, tenant: Tenant) -> Iterator[Tenant]:
    """The same caller, through the shared stack's API process."""
    http = httpx.Client(base_url=stack.api_url, headers=bearer(tenant.token), timeout=30)
    try:
        yield dataclasses.replace(tenant, stack=stack, http=http)
    finally:
        http.close()


def test_a_key_answers_from_another_api_process(stack: Stack, tmp_path: Path) -> None:
    with api_of_its_own(stack, tmp_path) as own:
        transfer_id = own.create_transfer(rows_per_day=1)
        key = new_key()
        first = post(own, transfer_id, key)
    # that process has stopped; the shared one answers the same key
    with on_the_shared_api(stack, own) as tenant:
        again = post(tenant, transfer_id, key)

    assert first.status_code == 200, first.text
    assert again.status_code == 200, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (
        again.json()["data"]["transfer_backfill_id"]
        == (first.json()["data"]["transfer_backfill_id"])
    )


def test_concurrent_requests_with_one_key_create_one_backfill(tenant: Tenant) -> None:
    transfer_id = tenant.create_transfer(rows_per_day=1)
    key = new_key()

    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(lambda _: post(tenant, transfer_id, key), range(12)))

    assert [a.status_code for a in answers] == [200] * 12, [a.text for a in answers]
    ids = {a.json()["data"]["transfer_backfill_id"] for a in answers}
    assert len(ids) == 1
    assert sum("Idempotent-Replayed" not in a.headers for a in answers) == 1
    assert backfills_of(tenant, transfer_id) == sorted(ids)


def test_a_refused_create_keeps_no_key_and_its_retry_is_judged_afresh(tenant: Tenant) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=1, latency_ms=3000, rows_per_day=1)
    blocking = tenant.create_backfill(transfer_id, "2024-01-03", "2024-01-10")
    key = new_key()

    refused = post(tenant, transfer_id, key)
    assert_error(refused, 422, "CONFLICT_ERROR")
    assert_error(post(tenant, transfer_id, key), 422, "CONFLICT_ERROR")  # as long as it lasts
    tenant.cancel(blocking["transfer_backfill_id"])

    accepted = post(tenant, transfer_id, key)

    assert accepted.status_code == 200, accepted.text
    assert "Idempotent-Replayed" not in accepted.headers
    tenant.cancel(accepted.json()["data"]["transfer_backfill_id"])


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("", id="empty"),
        pytest.param("x" * 256, id="256-characters"),
        pytest.param("two words", id="a-space"),
    ],
)
def test_a_key_that_is_not_1_to_255_visible_characters_is_400(tenant: Tenant, key: str) -> None:
    transfer_id = tenant.create_transfer()

    error = assert_error(post(tenant, transfer_id, key), 400, "BAD_REQUEST")

    assert "Idempotency-Key" in error["description"]
    assert backfills_of(tenant, transfer_id) == []


def test_a_viewer_reusing_an_owners_key_is_forbidden_and_learns_nothing(
    stack: Stack, tenant: Tenant
) -> None:
    transfer_id = tenant.create_transfer(rows_per_day=1)
    key = new_key()
    assert post(tenant, transfer_id, key).status_code == 200
    viewer = accounts.create_user(
        db=stack.db, email=f"viewer-{key}@example.com", team_id=tenant.team_id, role=Role.VIEWER
    )
    token = accounts.create_token(db=stack.db, user_id=viewer, scopes=list(Scope))

    response = httpx.post(
        f"{stack.api_url}/teams/{tenant.team_id}/transfers/{transfer_id}/backfills",
        json=BODY,
        headers={**bearer(token), "Idempotency-Key": key},
    )

    error = assert_error(response, 403, "FORBIDDEN")
    assert "backfill" not in error["message"]


def test_another_team_has_its_own_keys(stack: Stack, tenant: Tenant) -> None:
    other = new_tenant(stack)
    try:
        key = new_key()
        mine = post(tenant, tenant.create_transfer(rows_per_day=1), key)
        theirs = post(other, other.create_transfer(rows_per_day=1), key)
    finally:
        other.http.close()

    assert mine.status_code == theirs.status_code == 200, (mine.text, theirs.text)
    assert "Idempotent-Replayed" not in theirs.headers
    assert (
        mine.json()["data"]["transfer_backfill_id"] != theirs.json()["data"]["transfer_backfill_id"]
    )


# --- a start Temporal does not answer, or refuses --------------------------------------


def test_a_backfill_kept_after_a_silent_start_is_answered_for_its_key(
    stack: Stack, tmp_path: Path
) -> None:
    with (
        silenceable_proxy(stack.temporal_address) as proxy,
        api_of_its_own(stack, tmp_path, BACKFILLS_TEMPORAL_ADDRESS=proxy.address) as tenant,
    ):
        transfer_id = tenant.create_transfer(rows_per_day=1)
        key = new_key()
        proxy.silent.set()
        unanswered = post(tenant, transfer_id, key)
        proxy.silent.clear()

        retried = post(tenant, transfer_id, key)

        assert_error(unanswered, 503, "SERVICE_UNAVAILABLE")
        assert retried.status_code == 200, retried.text
        kept = retried.json()["data"]
        assert (
            f"backfill {kept['transfer_backfill_id']} is kept"
            in (unanswered.json()["error"]["message"])
        )
        assert retried.headers["Idempotent-Replayed"] == "true"
        assert backfills_of(tenant, transfer_id) == [kept["transfer_backfill_id"]]
        tenant.wait_until_status(kept["transfer_backfill_id"], "COMPLETED", timeout=90)


def test_a_start_temporal_refuses_keeps_no_key(stack: Stack, tmp_path: Path) -> None:
    with api_of_its_own(stack, tmp_path, BACKFILLS_TEMPORAL_NAMESPACE="no-such-namespace") as (
        refusing
    ):
        transfer_id = refusing.create_transfer(rows_per_day=1)
        key = new_key()
        assert_error(post(refusing, transfer_id, key), 503, "SERVICE_UNAVAILABLE")
        assert backfills_of(refusing, transfer_id) == []
    with on_the_shared_api(stack, refusing) as tenant:
        created = post(tenant, transfer_id, key)

    assert created.status_code == 200, created.text
    assert "Idempotent-Replayed" not in created.headers
