"""The database unreachable: the API answers 503 SERVICE_UNAVAILABLE envelopes, never a 500.

An API process pointed at a PostgreSQL URL where nothing listens (a closed port on 127.0.0.1).
Every `/v1` call with a token needs the database for the token lookup itself, so each answers
503 with the error envelope and no internal detail; `/readyz` says the database is down.
"""

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from cli.devserver import free_port
from tests.support import assert_error, spawn, stop, wait_for

TOKEN = "bfk_" + "0" * 40  # looks like a token; the database that would know it is away


@pytest.fixture(scope="module")
def api_url(temporal_address: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("database-down")
    port = free_port()
    nothing_listens = free_port()  # a port bound once for its number, then released
    env = {
        **os.environ,
        "BACKFILLS_DATABASE_URL": f"postgresql://backfills@127.0.0.1:{nothing_listens}/backfills",
        "BACKFILLS_DATA_DIR": str(root / "data"),
        "BACKFILLS_TEMPORAL_ADDRESS": temporal_address,
        "BACKFILLS_TEMPORAL_NAMESPACE": "default",
        "BACKFILLS_API_HOST": "127.0.0.1",
        "BACKFILLS_API_PORT": str(port),
        "BACKFILLS_SECRETS_KEY": Fernet.generate_key().decode(),
    }
    process = spawn(["api"], env, root / "api.log")
    try:
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/healthz"), timeout=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)
        log = root / "api.log"
        if log.exists():
            print(log.read_text(errors="replace")[-4000:])


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def assert_unavailable(response: httpx.Response) -> dict[str, Any]:
    error = assert_error(response, 503, "SERVICE_UNAVAILABLE")
    for leak in ("Traceback", "psycopg", "sqlalchemy", "OperationalError", "127.0.0.1"):
        assert leak not in response.text, response.text
    return error


REQUESTS = [
    ("GET", "/v1/teams/1/transfers", None),
    ("GET", "/v1/teams/1/transfers/1", None),
    ("GET", "/v1/teams/1/backfills", None),
    ("GET", "/v1/teams/1/backfills/1", None),
    ("GET", "/v1/teams/1/transfers/1/backfills/latest", None),
    ("GET", "/v1/teams/1/transfers/1/runs?start_date=2024-01-01&end_date=2024-01-31", None),
    ("GET", "/v1/teams/1/transfer_runs/1", None),
    (
        "POST",
        "/v1/teams/1/transfers/1/backfills",
        {"range_start": "2024-01-01", "range_end": "2024-01-02"},
    ),
    ("PATCH", "/v1/teams/1/backfills/1", {"status": "CANCELLED"}),
]


@pytest.mark.parametrize(
    ("method", "path", "body"), REQUESTS, ids=[f"{m} {p.split('?')[0]}" for m, p, _ in REQUESTS]
)
def test_a_call_with_a_token_answers_503_while_the_database_is_down(
    api_url: str, method: str, path: str, body: dict[str, str] | None
) -> None:
    response = httpx.request(
        method,
        api_url + path,
        json=body,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )

    assert_unavailable(response)
    assert response.headers.get("Retry-After"), response.headers


def test_readyz_answers_503_naming_the_database(api_url: str) -> None:
    response = httpx.get(api_url + "/readyz", timeout=30)

    error = assert_unavailable(response)
    assert "database" in error["description"], error


def test_liveness_does_not_need_the_database(api_url: str) -> None:
    assert httpx.get(api_url + "/healthz", timeout=30).status_code == 200


def test_a_call_without_a_token_is_still_unauthorized(api_url: str) -> None:
    response = httpx.get(api_url + "/v1/teams/1/transfers", timeout=30)

    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "UNAUTHORIZED"
