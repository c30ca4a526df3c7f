"""Abuse controls: per-token rate limits and the request body size limit."""

from collections.abc import Iterator

import httpx
import pytest

from cli.devserver import free_port
from tests.support import Stack, Tenant, new_tenant, spawn, stop, wait_for


@pytest.fixture
def strict_api(stack: Stack) -> Iterator[str]:
    """A second API process on the same stack, with a low rate limit."""
    port = free_port()
    env = {
        **stack.env,
        "BACKFILLS_API_PORT": str(port),
        "BACKFILLS_RATE_LIMIT_PER_MINUTE": "60",
        "BACKFILLS_RATE_LIMIT_BURST": "5",
        "BACKFILLS_MAX_BODY_BYTES": "2048",
    }
    process = spawn(["api"], env, stack.logs / f"strict-api-{port}.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(base + "/healthz"), timeout=60)
        yield base + "/v1"
    finally:
        stop(process)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_token_over_its_rate_gets_429_with_retry_after(
    strict_api: str, tenant: Tenant, stack: Stack
) -> None:
    other = new_tenant(stack)
    path = f"{strict_api}/teams/{tenant.team_id}/backfills"
    headers = {"Authorization": f"Bearer {tenant.token}"}

    statuses = [httpx.get(path, headers=headers).status_code for _ in range(5)]
    limited = httpx.get(path, headers=headers)

    assert statuses == [200] * 5
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "TOO_MANY_REQUESTS"
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["X-Request-Id"] == limited.json()["meta"]["request_id"]
    other_path = f"{strict_api}/teams/{other.team_id}/backfills"
    other_headers = {"Authorization": f"Bearer {other.token}"}
    assert httpx.get(other_path, headers=other_headers).status_code == 200, "limits are per token"


def test_a_body_over_the_size_limit_is_refused_and_nothing_is_created(
    strict_api: str, tenant: Tenant
) -> None:
    oversized = {
        "display_name": "x" * 100,
        "source": {"type": "demo", "padding": "y" * 4096},
        "destination": {"type": "sqlite"},
    }
    response = httpx.post(
        f"{strict_api}/teams/{tenant.team_id}/transfers",
        json=oversized,
        headers={"Authorization": f"Bearer {tenant.token}"},
    )

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert tenant.http.get(f"/teams/{tenant.team_id}/transfers").json()["data"] == []


def test_a_chunked_body_over_the_limit_is_refused_too(strict_api: str, tenant: Tenant) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"display_name": "'
        for _ in range(10):
            yield b"z" * 1024
        yield b'"}'

    response = httpx.post(
        f"{strict_api}/teams/{tenant.team_id}/transfers",
        content=chunks(),
        headers={"Authorization": f"Bearer {tenant.token}", "Content-Type": "application/json"},
    )

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
