"""What a 400 or 405 says: the problem in the caller's terms, each once, and what to send."""

from typing import Any

import httpx
import pytest

from tests.api.test_errors import assert_bad_request, assert_envelope, root_url
from tests.support import Stack, Tenant

JSON = {"Content-Type": "application/json"}
JSON_REQUIRED = "the body must be JSON (Content-Type: application/json)"
DATE_FORMAT = "Value error, expected a date as YYYY-MM-DD"
TRANSFER_BODY = {"display_name": "x", "source": {"type": "demo"}, "destination": {"type": "sqlite"}}


@pytest.fixture
def backfills_url(tenant: Tenant) -> str:
    transfer_id = tenant.create_transfer(rows_per_day=1)
    return f"/teams/{tenant.team_id}/transfers/{transfer_id}/backfills"


def post_raw(
    tenant: Tenant, path: str, content: bytes, headers: dict[str, str] | None = None
) -> httpx.Response:
    return tenant.http.post(path, content=content, headers=headers)


# --- a body that is not JSON -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "position"),
    [
        (b'{"range_start": "2024-01-01", "range_end": 2024-01-31}', 47),
        (b'{"range_start": "2024-01-01", ', 30),
        (b"not json", 0),
        (b"{}}", 2),
    ],
    ids=["bad-value", "truncated", "not-json", "trailing-brace"],
)
def test_malformed_json_names_the_character_where_it_breaks(
    tenant: Tenant, backfills_url: str, content: bytes, position: int
) -> None:
    response = post_raw(tenant, backfills_url, content, JSON)

    error = assert_bad_request(response)
    assert error["message"] == f"the body is not valid JSON (at character {position})"
    assert "description" not in error
    assert "decode" not in response.text


def test_malformed_json_on_a_transfer_says_the_same(tenant: Tenant) -> None:
    response = post_raw(
        tenant, f"/teams/{tenant.team_id}/transfers", b'{"display_name": "x",, }', JSON
    )

    assert assert_bad_request(response)["message"] == (
        "the body is not valid JSON (at character 21)"
    )


@pytest.mark.parametrize(
    "headers",
    [{}, {"Content-Type": "text/plain"}, {"Content-Type": "application/x-www-form-urlencoded"}],
    ids=["no-content-type", "text-plain", "form"],
)
def test_a_json_body_without_the_json_content_type_says_to_send_it(
    tenant: Tenant, backfills_url: str, headers: dict[str, str]
) -> None:
    response = post_raw(
        tenant,
        backfills_url,
        b'{"range_start": "2024-01-01", "range_end": "2024-01-01"}',
        headers,
    )

    error = assert_bad_request(response)
    assert error["message"] == JSON_REQUIRED
    assert "description" not in error, "nothing about fields of a body that was never read"
    assert tenant.http.get(f"/teams/{tenant.team_id}/backfills").json()["data"] == []


def test_a_secret_sent_as_text_says_to_send_json(tenant: Tenant) -> None:
    response = tenant.http.put(
        f"/teams/{tenant.team_id}/secrets/API_KEY",
        content=b'{"value": "s3cret"}',
        headers={"Content-Type": "text/plain"},
    )

    assert assert_bad_request(response)["message"] == JSON_REQUIRED


def test_a_json_content_type_with_a_charset_is_json(tenant: Tenant) -> None:
    response = tenant.http.post(
        f"/teams/{tenant.team_id}/transfers",
        json=TRANSFER_BODY,
        headers={"Content-Type": "application/json; charset=utf-8"},
    )

    assert response.status_code == 200, response.text


def test_a_body_of_the_wrong_content_type_and_a_bad_path_id_names_both(tenant: Tenant) -> None:
    response = post_raw(tenant, "/teams/abc/transfers", b"{}", {"Content-Type": "text/plain"})

    error = assert_bad_request(response)
    assert error["message"] == JSON_REQUIRED
    assert error["description"] == (
        "path.team_id: Input should be a valid integer, unable to parse string as an integer"
    )


def test_a_missing_body_says_a_json_body_is_needed(tenant: Tenant, backfills_url: str) -> None:
    error = assert_bad_request(tenant.http.post(backfills_url))

    assert error["message"] == "the request needs a JSON body (Content-Type: application/json)"


# --- each problem once ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/teams/-1/backfills", "path.team_id: Input should be greater than or equal to 1"),
        (
            "/teams/abc/backfills/1",
            "path.team_id: Input should be a valid integer, unable to parse string as an integer",
        ),
        (
            "/teams/0/backfills/0",
            "path.team_id: Input should be greater than or equal to 1; "
            "path.backfill_id: Input should be greater than or equal to 1",
        ),
    ],
    ids=["negative-team", "word-team", "zero-team-and-backfill"],
)
def test_a_validation_problem_is_named_once_in_order(
    tenant: Tenant, path: str, expected: str
) -> None:
    error = assert_bad_request(tenant.http.get(path))

    assert error["message"] == "the request is invalid"
    assert error["description"] == expected


# --- dates ---------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["range_start", "range_end"])
@pytest.mark.parametrize("value", ["01/02/2024", "2024-1-2", "2024/01/02", "Jan 2 2024"])
def test_a_date_in_another_format_says_the_format_expected(
    tenant: Tenant, backfills_url: str, field: str, value: str
) -> None:
    body = {"range_start": "2024-01-01", "range_end": "2024-01-02", field: value}

    error = assert_bad_request(tenant.http.post(backfills_url, json=body))

    assert error["description"] == f"body.{field}: {DATE_FORMAT}"
    assert value not in error["description"], "the input is not echoed back"


def test_an_impossible_date_still_says_what_is_wrong_with_it(
    tenant: Tenant, backfills_url: str
) -> None:
    body = {"range_start": "2024-02-30", "range_end": "2024-03-01"}

    error = assert_bad_request(tenant.http.post(backfills_url, json=body))

    assert error["description"] == "body.range_start: Value error, day is out of range for month"


def test_a_runs_list_date_in_another_format_says_the_format_expected(
    tenant: Tenant, backfills_url: str
) -> None:
    runs_url = backfills_url.removesuffix("/backfills") + "/runs"

    response = tenant.http.get(
        runs_url, params={"start_date": "01/02/2024", "end_date": "2024-1-2"}
    )

    error = assert_bad_request(response)
    assert error["description"] == (
        f"query.start_date: {DATE_FORMAT}; query.end_date: {DATE_FORMAT}"
    )


# --- 405 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/v1/teams/{team}/backfills", "GET"),
        ("PUT", "/v1/teams/{team}/backfills/1", "GET, PATCH"),
        ("PATCH", "/v1/teams/{team}/transfers", "GET, POST"),
        ("POST", "/docs", "GET"),
        ("POST", "/docs-assets/swagger-ui.css", "GET, HEAD"),
    ],
)
def test_a_wrong_method_names_the_methods_the_path_allows(
    tenant: Tenant, method: str, path: str, allowed: str
) -> None:
    url = root_url(tenant.stack) + path.format(team=tenant.team_id)

    response = tenant.http.request(method, url)

    error = assert_envelope(response, 405, "METHOD_NOT_ALLOWED")
    assert error["message"] == f"method {method} is not allowed on this path; it allows {allowed}"
    assert response.headers["Allow"] == allowed


def test_the_openapi_document_names_the_codes_beyond_the_contract(stack: Stack) -> None:
    document: dict[str, Any] = httpx.get(root_url(stack) + "/openapi.json").json()

    assert "`METHOD_NOT_ALLOWED` (405" in document["info"]["description"]
    assert "`PAYLOAD_TOO_LARGE` (413" in document["info"]["description"]
