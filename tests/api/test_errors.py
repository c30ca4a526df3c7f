"""Every failure answers with the error envelope, the right status and code, and no internals."""

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support import Stack, Tenant, assert_error

# What must never reach a caller: a stack trace or a Python exception's name.
LEAKS = re.compile(
    r"Traceback|File \"|\b\w+(Error|Exception)\b|\bpydantic\b|\bsqlalchemy\b|\bpsycopg\b"
    r"|\bsqlite3\b|\btemporalio\b"
)


def assert_envelope(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    error = assert_error(response, status, code)
    assert response.headers["content-type"].startswith("application/json")
    assert set(error) <= {"code", "message", "description"}
    assert not LEAKS.search(response.text), response.text
    return error


def assert_bad_request(response: httpx.Response) -> dict[str, Any]:
    return assert_envelope(response, 400, "BAD_REQUEST")


def root_url(stack: Stack) -> str:
    return stack.api_url.removesuffix("/v1")


@pytest.fixture
def transfer_id(tenant: Tenant) -> int:
    return tenant.create_transfer(rows_per_day=1)


@pytest.fixture
def failed_backfill(tenant: Tenant) -> Iterator[dict[str, Any]]:
    """An incomplete backfill that stays as it is: FAILED, waiting to be cancelled."""
    failing = tenant.create_transfer(rows_per_day=1, fail_dates=["2024-01-01"])
    created = tenant.create_backfill(failing, "2024-01-01", "2024-01-01")
    yield tenant.wait_until_status(created["transfer_backfill_id"], "FAILED", timeout=120)


# --- 400: the body cannot be read ----------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [b'{"range_start": "2024-01-01", ', b"{range_start: 2024-01-01}", b"not json", b"{}}"],
    ids=["truncated", "unquoted", "not-json", "trailing-brace"],
)
def test_a_malformed_json_body_is_a_bad_request(
    tenant: Tenant, transfer_id: int, content: bytes
) -> None:
    response = tenant.http.post(
        f"/teams/{tenant.team_id}/transfers/{transfer_id}/backfills",
        content=content,
        headers={"Content-Type": "application/json"},
    )

    assert_bad_request(response)
    assert tenant.http.get(f"/teams/{tenant.team_id}/backfills").json()["data"] == []


@pytest.mark.parametrize(
    "path",
    ["/teams/{team}/transfers", "/teams/{team}/backfills/1"],
    ids=["create-transfer", "cancel-backfill"],
)
def test_a_malformed_json_body_is_a_bad_request_on_every_write(tenant: Tenant, path: str) -> None:
    method = "PATCH" if "backfills" in path else "POST"

    response = tenant.http.request(
        method,
        path.format(team=tenant.team_id),
        content=b'{"status": ',
        headers={"Content-Type": "application/json"},
    )

    assert_bad_request(response)


@pytest.mark.parametrize(
    "body",
    [
        {"range_start": 20240101, "range_end": "2024-01-02"},
        {"range_start": "2024-01-01", "range_end": 20240102},
        {"range_start": None, "range_end": "2024-01-02"},
        {"range_start": ["2024-01-01"], "range_end": "2024-01-02"},
        {"range_start": "2024-01-01T00:00:00Z", "range_end": "2024-01-02"},
        {"range_start": "2024-02-30", "range_end": "2024-03-02"},
        {"range_start": "01/02/2024", "range_end": "2024-03-02"},
        ["2024-01-01", "2024-01-02"],
        "2024-01-01",
    ],
    ids=[
        "start-number",
        "end-number",
        "start-null",
        "start-list",
        "start-datetime",
        "impossible-date",
        "not-iso",
        "body-list",
        "body-string",
    ],
)
def test_a_backfill_body_of_the_wrong_types_is_a_bad_request(
    tenant: Tenant, transfer_id: int, body: Any
) -> None:
    response = tenant.http.post(
        f"/teams/{tenant.team_id}/transfers/{transfer_id}/backfills", json=body
    )

    assert_bad_request(response)
    assert tenant.http.get(f"/teams/{tenant.team_id}/backfills").json()["data"] == []


@pytest.mark.parametrize(
    "body",
    [{"range_end": "2024-01-02"}, {"range_start": "2024-01-01"}, {}],
    ids=["no-start", "no-end", "empty-object"],
)
def test_a_backfill_body_missing_a_required_field_is_a_bad_request(
    tenant: Tenant, transfer_id: int, body: dict[str, Any]
) -> None:
    response = tenant.http.post(
        f"/teams/{tenant.team_id}/transfers/{transfer_id}/backfills", json=body
    )

    error = assert_bad_request(response)
    assert "range_" in error["message"] + error.get("description", "")


def test_a_missing_body_is_a_bad_request(tenant: Tenant, transfer_id: int) -> None:
    response = tenant.http.post(f"/teams/{tenant.team_id}/transfers/{transfer_id}/backfills")

    assert_bad_request(response)


def test_a_body_that_is_not_json_is_a_bad_request(tenant: Tenant, transfer_id: int) -> None:
    response = tenant.http.post(
        f"/teams/{tenant.team_id}/transfers/{transfer_id}/backfills",
        content=b"range_start=2024-01-01&range_end=2024-01-02",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert_bad_request(response)


@pytest.mark.parametrize(
    "body",
    [
        {"status": "RUNNING"},
        {"status": "cancelled"},
        {"status": "COMPLETED"},
        {"status": "Cancelled"},
        {"status": ""},
        {"status": None},
        {"status": 5},
        {"status": ["CANCELLED"]},
        {},
    ],
    ids=[
        "running",
        "lowercase",
        "completed",
        "capitalized",
        "empty",
        "null",
        "number",
        "list",
        "missing",
    ],
)
def test_a_cancel_with_any_status_but_cancelled_is_a_bad_request_and_changes_nothing(
    tenant: Tenant, failed_backfill: dict[str, Any], body: dict[str, Any]
) -> None:
    backfill_id = failed_backfill["transfer_backfill_id"]

    response = tenant.http.patch(f"/teams/{tenant.team_id}/backfills/{backfill_id}", json=body)

    assert_bad_request(response)
    assert tenant.backfill(backfill_id) == failed_backfill


# --- 400: query parameters -----------------------------------------------------------------

GOOD_RANGE = {"start_date": "2024-01-01", "end_date": "2024-01-31"}


@pytest.mark.parametrize(
    "params",
    [
        {"end_date": "2024-01-31"},
        {"start_date": "2024-01-01"},
        {},
        {**GOOD_RANGE, "start_date": "yesterday"},
        {**GOOD_RANGE, "end_date": "2024-13-01"},
        {**GOOD_RANGE, "start_date": ""},
        {**GOOD_RANGE, "limit": 0},
        {**GOOD_RANGE, "limit": 10001},
        {**GOOD_RANGE, "limit": -1},
        {**GOOD_RANGE, "limit": "ten"},
        {**GOOD_RANGE, "limit": "1.5"},
        {**GOOD_RANGE, "offset": -1},
        {**GOOD_RANGE, "offset": "x"},
        {**GOOD_RANGE, "sort_field": "status"},
        {**GOOD_RANGE, "sort_direction": "UP"},
        {**GOOD_RANGE, "filter_issues_only": "perhaps"},
    ],
    ids=[
        "no-start-date",
        "no-end-date",
        "no-dates",
        "start-date-word",
        "end-date-impossible",
        "start-date-empty",
        "limit-0",
        "limit-10001",
        "limit-negative",
        "limit-word",
        "limit-fraction",
        "offset-negative",
        "offset-word",
        "unknown-sort-field",
        "unknown-sort-direction",
        "filter-not-bool",
    ],
)
def test_bad_query_parameters_on_the_runs_list_are_a_bad_request(
    tenant: Tenant, transfer_id: int, params: dict[str, Any]
) -> None:
    response = tenant.http.get(
        f"/teams/{tenant.team_id}/transfers/{transfer_id}/runs", params=params
    )

    assert_bad_request(response)


@pytest.mark.parametrize("limit", [1, 10000])
def test_the_runs_list_accepts_the_limits_at_the_ends_of_the_range(
    tenant: Tenant, transfer_id: int, limit: int
) -> None:
    response = tenant.http.get(
        f"/teams/{tenant.team_id}/transfers/{transfer_id}/runs",
        params={**GOOD_RANGE, "limit": limit, "offset": 0},
    )

    assert response.status_code == 200, response.text
    assert response.json()["data"] == []


def test_the_runs_list_accepts_date_times_for_its_dates(tenant: Tenant, transfer_id: int) -> None:
    response = tenant.http.get(
        f"/teams/{tenant.team_id}/transfers/{transfer_id}/runs",
        params={"start_date": "2024-01-01T00:00:00", "end_date": "2024-01-31T23:59:59Z"},
    )

    assert response.status_code == 200, response.text


# --- 400: path ids -------------------------------------------------------------------------

ID_PATHS = {
    "team": "/teams/{id}/backfills",
    "backfill": "/teams/{team}/backfills/{id}",
    "transfer": "/teams/{team}/transfers/{id}",
    "transfer-of-runs": "/teams/{team}/transfers/{id}/runs",
    "transfer-of-latest": "/teams/{team}/transfers/{id}/backfills/latest",
    "transfer-run": "/teams/{team}/transfer_runs/{id}",
}
BAD_IDS = ["abc", "1.5", "1e3", str(2**31), "99999999999999999999", "0", "-1"]


@pytest.mark.parametrize("bad_id", BAD_IDS)
@pytest.mark.parametrize("path", list(ID_PATHS.values()), ids=list(ID_PATHS))
def test_a_path_id_that_is_not_a_positive_32_bit_integer_is_a_bad_request(
    tenant: Tenant, path: str, bad_id: str
) -> None:
    response = tenant.http.get(
        path.format(team=tenant.team_id, id=bad_id), params=GOOD_RANGE if "runs" in path else None
    )

    assert_bad_request(response)


BACKFILL_BODY = {"range_start": "2024-01-01", "range_end": "2024-01-01"}
TRANSFER_BODY = {"display_name": "x", "source": {"type": "demo"}, "destination": {"type": "sqlite"}}


@pytest.mark.parametrize("bad_id", ["abc", str(2**31), "99999999999999999999"])
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/teams/{team}/transfers/{id}/backfills", BACKFILL_BODY),
        ("PATCH", "/teams/{team}/backfills/{id}", {"status": "CANCELLED"}),
        ("DELETE", "/teams/{team}/transfers/{id}", None),
        ("POST", "/teams/{id}/transfers", TRANSFER_BODY),
    ],
    ids=["create-backfill", "cancel-backfill", "delete-transfer", "create-transfer"],
)
def test_a_bad_path_id_on_a_write_is_a_bad_request(
    tenant: Tenant, method: str, path: str, body: Any, bad_id: str
) -> None:
    response = tenant.http.request(method, path.format(team=tenant.team_id, id=bad_id), json=body)

    assert_bad_request(response)


def test_the_largest_32_bit_id_is_readable_and_simply_not_found(tenant: Tenant) -> None:
    response = tenant.http.get(f"/teams/{tenant.team_id}/backfills/{2**31 - 1}")

    assert_envelope(response, 404, "NOT_FOUND")


# --- 422: well-formed but cannot be carried out --------------------------------------------


def _today() -> datetime:
    return datetime.now(UTC)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2024-01-10", "2024-01-09"),
        ("2024-01-01", (_today() + timedelta(days=2)).date().isoformat()),
        ("2022-01-01", "2023-12-31"),
    ],
    ids=["end-before-start", "reaches-into-the-future", "longer-than-the-maximum"],
)
def test_a_range_that_cannot_be_backfilled_is_unprocessable(
    tenant: Tenant, transfer_id: int, start: str, end: str
) -> None:
    response = tenant.http.post(
        f"/teams/{tenant.team_id}/transfers/{transfer_id}/backfills",
        json={"range_start": start, "range_end": end},
    )

    assert_envelope(response, 422, "UNPROCESSABLE_ENTITY")
    assert tenant.http.get(f"/teams/{tenant.team_id}/backfills").json()["data"] == []


def test_an_overlapping_backfill_is_a_conflict(
    tenant: Tenant, failed_backfill: dict[str, Any]
) -> None:
    response = tenant.http.post(
        f"/teams/{tenant.team_id}/transfers/{failed_backfill['transfer_id']}/backfills",
        json={"range_start": "2023-12-31", "range_end": "2024-01-01"},
    )

    assert_envelope(response, 422, "CONFLICT_ERROR")


def test_cancelling_a_cancelled_backfill_is_unprocessable(
    tenant: Tenant, failed_backfill: dict[str, Any]
) -> None:
    url = f"/teams/{tenant.team_id}/backfills/{failed_backfill['transfer_backfill_id']}"
    assert tenant.http.patch(url, json={"status": "CANCELLED"}).status_code == 200

    assert_envelope(
        tenant.http.patch(url, json={"status": "CANCELLED"}), 422, "UNPROCESSABLE_ENTITY"
    )


# --- 404 and 405 from the router -----------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/v1/nope",
        "/v1/teams/{team}/nope",
        "/v1/teams/{team}/backfills/1/nope",
        "/v1/teams/{team}/backfills/",
        "/v1/teams",
        "/v1",
        "/v2/teams/{team}/backfills",
        "/nope",
    ],
)
def test_an_unknown_route_is_not_found_with_the_envelope(tenant: Tenant, path: str) -> None:
    url = root_url(tenant.stack) + path.format(team=tenant.team_id)

    with_token = httpx.get(url, headers={"Authorization": f"Bearer {tenant.token}"})
    without_token = httpx.get(url)

    assert_envelope(with_token, 404, "NOT_FOUND")
    assert_envelope(without_token, 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/teams/{team}/backfills"),
        ("POST", "/teams/{team}/backfills"),
        ("PUT", "/teams/{team}/backfills/1"),
        ("DELETE", "/teams/{team}/backfills/1"),
        ("GET", "/teams/{team}/transfers/1/backfills"),
        ("PUT", "/teams/{team}/transfers/1"),
        ("POST", "/teams/{team}/transfer_runs/1"),
    ],
)
def test_a_wrong_method_is_not_allowed_with_the_envelope(
    tenant: Tenant, method: str, path: str
) -> None:
    response = tenant.http.request(method, path.format(team=tenant.team_id))

    assert_envelope(response, 405, "METHOD_NOT_ALLOWED")
    # Starlette names only the first matching route's methods in Allow (GET for
    # /backfills/{id}, not also PATCH), so this only checks that the header is there.
    assert response.headers["Allow"]


# --- request ids, success envelopes, health ------------------------------------------------


def _mixed_requests(tenant: Tenant, transfer_id: int) -> list[httpx.Response]:
    team = tenant.team_id
    root = root_url(tenant.stack)
    http = tenant.http
    return [
        http.get(f"/teams/{team}/transfers"),
        http.get(f"/teams/{team}/transfers/{transfer_id}"),
        http.get(f"/teams/{team}/backfills"),
        http.get(f"/teams/{team}/transfers/{transfer_id}/runs", params=GOOD_RANGE),
        http.get(f"/teams/{team}/transfers/{transfer_id}/backfills/latest"),  # 404: none yet
        http.get(f"/teams/{team}/backfills/abc"),  # 400
        http.post(f"/teams/{team}/transfers/{transfer_id}/backfills", content=b"{"),  # 400
        http.post(
            f"/teams/{team}/transfers/{transfer_id}/backfills",
            json={"range_start": "2024-01-02", "range_end": "2024-01-01"},
        ),  # 422
        http.delete(f"/teams/{team}/backfills"),  # 405
        http.get("/nope"),  # 404
        http.get(f"/teams/{team + 1_000_000}/backfills"),  # 403
        httpx.get(f"{tenant.stack.api_url}/teams/{team}/backfills"),  # 401
        httpx.get(f"{root}/healthz"),
        httpx.get(f"{root}/readyz"),
        http.get(f"/teams/{team}/transfers"),
        http.get(f"/teams/{team}/transfers"),
    ]


def test_every_response_carries_its_request_id_in_the_header_and_the_body(
    tenant: Tenant, transfer_id: int
) -> None:
    responses = _mixed_requests(tenant, transfer_id)

    assert {r.status_code for r in responses} >= {200, 400, 401, 403, 404, 405, 422}
    for response in responses:
        request_id = response.headers["X-Request-Id"]
        assert request_id
        assert response.json()["meta"]["request_id"] == request_id, response.text


def test_request_ids_are_unique(tenant: Tenant, transfer_id: int) -> None:
    ids = [r.headers["X-Request-Id"] for r in _mixed_requests(tenant, transfer_id)]
    ids += [r.headers["X-Request-Id"] for r in _mixed_requests(tenant, transfer_id)]

    assert len(set(ids)) == len(ids)


def test_no_response_reveals_a_stack_trace_or_an_exception_name(
    tenant: Tenant, transfer_id: int
) -> None:
    for response in _mixed_requests(tenant, transfer_id):
        assert not LEAKS.search(response.text), response.text


def test_a_success_has_meta_and_data_and_no_error(tenant: Tenant, transfer_id: int) -> None:
    response = tenant.http.get(f"/teams/{tenant.team_id}/transfers/{transfer_id}")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"meta", "data"}
    assert body["meta"]["request_id"] == response.headers["X-Request-Id"]
    assert body["data"]["transfer_id"] == transfer_id


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_endpoints_answer_with_the_envelope_and_need_no_token(
    stack: Stack, path: str
) -> None:
    response = httpx.get(root_url(stack) + path)

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"meta", "data"}
    assert body["meta"]["request_id"] == response.headers["X-Request-Id"]
