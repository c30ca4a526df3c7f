"""Abuse controls: per-token rate limits, per-address limits on failed authentication, and
the request body size limit."""

import os
import secrets
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from cli.devserver import free_port
from persistence import accounts
from tests.api.test_rate_limit import REDIS_URL, redis_answers
from tests.support import Stack, Tenant, assert_error, bearer, new_tenant, spawn, stop, wait_for

FAILURE_BUDGET = 5  # BACKFILLS_AUTH_FAILURES_BURST of the APIs below; refills 1 a minute


@contextmanager
def _api_process(env: dict[str, str], logs: Path) -> Iterator[str]:
    """An API process of its own on a free port, with rate limits of its own unless `env`
    names their store; yields its base URL (without `/v1`)."""
    port = free_port()
    own_limits = {"BACKFILLS_RATE_LIMIT_URL": f"sqlite:///{logs / f'rate-limits-{port}.db'}"}
    env = {**own_limits, **env, "BACKFILLS_API_PORT": str(port)}
    process = spawn(["api"], env, logs / f"api-{port}.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(base + "/healthz"), timeout=60)
        yield base
    finally:
        stop(process)


@pytest.fixture(scope="module")
def strict_api(stack: Stack) -> Iterator[str]:
    """A second API process on the same stack, with a low rate limit (per token: each test
    spends its own tenant's, so the tests share the process)."""
    env = {
        **stack.env,
        "BACKFILLS_RATE_LIMIT_PER_MINUTE": "60",
        "BACKFILLS_RATE_LIMIT_BURST": "5",
        "BACKFILLS_MAX_BODY_BYTES": "2048",
    }
    with _api_process(env, stack.logs) as base:
        yield base + "/v1"


@pytest.fixture
def guarded_api(stack: Stack) -> Iterator[str]:
    """A second API process on the same stack: per-token limits huge, failures scarce."""
    env = {
        **stack.env,
        "BACKFILLS_AUTH_FAILURES_PER_MINUTE": "1",
        "BACKFILLS_AUTH_FAILURES_BURST": str(FAILURE_BUDGET),
    }
    with _api_process(env, stack.logs) as base:
        yield base + "/v1"


@pytest.fixture
def api_without_database(temporal_address: str, tmp_path: Path) -> Iterator[str]:
    """An API process whose database is a PostgreSQL URL where nothing listens.

    Any token lookup there answers 503; so a 429 instead of a 503 proves no lookup was made.
    """
    nothing_listens = free_port()  # a port bound once for its number, then released
    env = {
        **os.environ,
        "BACKFILLS_DATABASE_URL": f"postgresql://backfills@127.0.0.1:{nothing_listens}/backfills",
        "BACKFILLS_DATA_DIR": str(tmp_path / "data"),
        "BACKFILLS_TEMPORAL_ADDRESS": temporal_address,
        "BACKFILLS_TEMPORAL_NAMESPACE": "default",
        "BACKFILLS_API_HOST": "127.0.0.1",
        "BACKFILLS_SECRETS_KEY": Fernet.generate_key().decode(),
        "BACKFILLS_RATE_LIMIT_PER_MINUTE": "1",
        "BACKFILLS_RATE_LIMIT_BURST": "2",
        "BACKFILLS_AUTH_FAILURES_PER_MINUTE": "1",
        "BACKFILLS_AUTH_FAILURES_BURST": str(FAILURE_BUDGET),
    }
    with _api_process(env, tmp_path) as base:
        yield base + "/v1"


def _spawned_children(pid: int) -> list[str]:
    """The command lines of the processes `pid` spawned through multiprocessing."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    lines = [Path(f"/proc/{child}/cmdline").read_bytes().decode() for child in children]
    return [line for line in lines if "spawn_main" in line]


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _unknown_token() -> str:
    return accounts.TOKEN_PREFIX + secrets.token_urlsafe(32)


def _assert_too_many(response: httpx.Response) -> None:
    assert_error(response, 429, "TOO_MANY_REQUESTS")
    assert int(response.headers["Retry-After"]) >= 1, response.headers


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


def test_failed_authentications_from_one_address_are_answered_429_past_its_budget(
    guarded_api: str, tenant: Tenant, stack: Stack
) -> None:
    path = f"{guarded_api}/teams/{tenant.team_id}/backfills"
    expired = accounts.create_token(
        db=stack.db, user_id=tenant.user_id, scopes=[], expires_in_days=-1
    )
    revoked = accounts.create_token(db=stack.db, user_id=tenant.user_id, scopes=[])
    accounts.revoke_token(db=stack.db, token=revoked)
    failing: list[dict[str, str]] = [
        {},
        bearer(_unknown_token()),
        bearer(expired),
        bearer(revoked),
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ]
    assert len(failing) == FAILURE_BUDGET

    for headers in failing:
        assert_error(httpx.get(path, headers=headers), 401, "UNAUTHORIZED")

    for headers in failing:  # the same requests, now refused before they are looked at
        _assert_too_many(httpx.get(path, headers=headers))
    # Retry-After is the wait for one failure to refill: about a minute at 1 a minute.
    assert 30 <= int(httpx.get(path).headers["Retry-After"]) <= 60
    # Telling a valid token apart would take the lookup the block exists to avoid.
    _assert_too_many(httpx.get(path, headers=bearer(tenant.token)))


def test_a_valid_token_is_served_and_spends_nothing_until_the_address_budget_runs_out(
    guarded_api: str, tenant: Tenant
) -> None:
    path = f"{guarded_api}/teams/{tenant.team_id}/backfills"
    for _ in range(FAILURE_BUDGET - 1):
        assert_error(httpx.get(path, headers=bearer(_unknown_token())), 401, "UNAUTHORIZED")

    statuses = [httpx.get(path, headers=bearer(tenant.token)).status_code for _ in range(20)]

    assert statuses == [200] * 20, "a valid token is not limited by others' bad tokens"
    # 20 valid requests left the one remaining failure in the budget untouched
    assert_error(httpx.get(path, headers=bearer(_unknown_token())), 401, "UNAUTHORIZED")
    _assert_too_many(httpx.get(path, headers=bearer(_unknown_token())))


def _loopback_alias() -> str | None:
    """127.0.0.2 when this host can send from it (Linux routes all of 127/8 to loopback)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.2", 0))
    except OSError:
        return None
    return "127.0.0.2"


def test_the_failure_budget_is_per_client_address(guarded_api: str, tenant: Tenant) -> None:
    alias = _loopback_alias()
    if alias is None:
        pytest.skip("this host cannot send from a second loopback address")
    path = f"{guarded_api}/teams/{tenant.team_id}/backfills"
    for _ in range(FAILURE_BUDGET):
        httpx.get(path, headers=bearer(_unknown_token()))
    _assert_too_many(httpx.get(path, headers=bearer(_unknown_token())))

    with httpx.Client(transport=httpx.HTTPTransport(local_address=alias)) as elsewhere:
        assert_error(elsewhere.get(path, headers=bearer(_unknown_token())), 401, "UNAUTHORIZED")
        assert elsewhere.get(path, headers=bearer(tenant.token)).status_code == 200


def test_no_token_lookup_is_made_once_the_address_or_the_token_is_over_its_limit(
    api_without_database: str,
) -> None:
    path = f"{api_without_database}/teams/1/backfills"
    token = _unknown_token()
    # The premise: with this API, a request that reaches the token lookup answers 503.
    for _ in range(2):  # BACKFILLS_RATE_LIMIT_BURST
        assert_error(httpx.get(path, headers=bearer(token)), 503, "SERVICE_UNAVAILABLE")
    # The token's own limit comes before the lookup.
    _assert_too_many(httpx.get(path, headers=bearer(token)))

    # 503s are not failed authentications; requests without a token are, without a lookup.
    for _ in range(FAILURE_BUDGET):
        assert_error(httpx.get(path), 401, "UNAUTHORIZED")

    # A fresh token would reach the lookup (503); blocked, it gets 429 without one.
    _assert_too_many(httpx.get(path, headers=bearer(_unknown_token())))
    _assert_too_many(httpx.get(path))


@pytest.fixture(params=["sqlite-file", "redis"])
def limits_store(request: pytest.FixtureRequest, stack: Stack) -> str:
    """Where two API processes keep their rate limits: the embedded default's file in the
    data directory they share, or Redis."""
    if request.param == "redis":
        if not redis_answers():
            pytest.skip(f"no Redis answers at {REDIS_URL}")
        return REDIS_URL  # each test's tenant is new: its token's bucket too
    return ""


def test_two_api_processes_give_a_token_its_burst_once(
    stack: Stack, tenant: Tenant, limits_store: str, tmp_path: Path
) -> None:
    env = {
        **stack.env,
        "BACKFILLS_DATA_DIR": str(tmp_path),
        "BACKFILLS_RATE_LIMIT_URL": limits_store,
        "BACKFILLS_RATE_LIMIT_PER_MINUTE": "1",
        "BACKFILLS_RATE_LIMIT_BURST": "5",
    }
    with _api_process(env, tmp_path) as one, _api_process(env, tmp_path) as other:
        path = f"/v1/teams/{tenant.team_id}/backfills"
        answers = [
            httpx.get(base + path, headers=bearer(tenant.token)) for base in [one, other] * 6
        ]

    assert [answer.status_code for answer in answers].count(200) == 5
    for refused in answers[5:]:
        _assert_too_many(refused)


def test_api_processes_serve_one_port_with_one_limit(
    stack: Stack, tenant: Tenant, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **stack.env,
        "BACKFILLS_DATA_DIR": str(tmp_path),
        "BACKFILLS_API_PORT": str(port),
        "BACKFILLS_API_PROCESSES": "2",
        "BACKFILLS_RATE_LIMIT_PER_MINUTE": "1",
        "BACKFILLS_RATE_LIMIT_BURST": "5",
    }
    process = spawn(["api"], env, tmp_path / "api.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(base + "/healthz"), timeout=60)
        served_by = _spawned_children(process.pid)
        path = f"{base}/v1/teams/{tenant.team_id}/backfills"
        with ThreadPoolExecutor(max_workers=10) as pool:
            answers = list(
                pool.map(lambda _: httpx.get(path, headers=bearer(tenant.token)), range(20))
            )
    finally:
        stop(process)

    assert len(served_by) == 2, served_by
    assert sorted(answer.status_code for answer in answers) == [200] * 5 + [429] * 15
