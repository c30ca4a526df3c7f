"""The rate limiters of every store (this process, a SQLite file, Redis) keep the same
buckets, and a store that fails lets requests through rather than refusing them all."""

import logging
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from api.rate_limit import RateLimiter, rate_limiters
from cli.devserver import free_port
from config import Settings

REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_answers() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def settings_for(store: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        rate_limit_url=store,
        rate_limit_per_minute=1,
        rate_limit_burst=3,
        auth_failures_per_minute=1,
        auth_failures_burst=2,
    )


@pytest.fixture(params=["memory", "sqlite-file", "redis"])
def limiters(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[RateLimiter]]:
    """The per-token and per-address limiters of a store, twice (two API processes)."""
    store = {"memory": "memory", "sqlite-file": "", "redis": REDIS_URL}[request.param]
    if request.param == "redis" and not redis_answers():
        pytest.skip(f"no Redis answers at {REDIS_URL}")
    first = rate_limiters(settings_for(store, tmp_path))
    second = rate_limiters(settings_for(store, tmp_path))
    yield [*first, *second]


def test_a_token_gets_its_burst_then_a_wait_of_about_a_token(
    limiters: list[RateLimiter],
) -> None:
    per_token = limiters[0]
    key = uuid.uuid4().hex

    answers = [per_token.retry_after(key) for _ in range(4)]

    assert answers[:3] == [None, None, None]
    assert answers[3] is not None and 55 <= answers[3] <= 60  # one a minute
    assert per_token.retry_after(uuid.uuid4().hex) is None, "another key has its own bucket"


def test_blocked_for_takes_nothing_and_spend_empties(limiters: list[RateLimiter]) -> None:
    failures = limiters[1]
    address = f"10.0.0.{uuid.uuid4().int % 250}-{uuid.uuid4().hex}"

    assert [failures.blocked_for(address) for _ in range(5)] == [None] * 5
    failures.spend(address)
    assert failures.blocked_for(address) is None
    failures.spend(address)
    blocked = failures.blocked_for(address)
    assert blocked is not None and blocked >= 1
    failures.spend(address)  # an empty bucket stays empty, never below
    assert failures.blocked_for(address) is not None


def test_processes_sharing_a_store_share_each_bucket(
    limiters: list[RateLimiter], request: pytest.FixtureRequest
) -> None:
    one, other = limiters[0], limiters[2]
    key = uuid.uuid4().hex

    admitted = [limiter.retry_after(key) is None for limiter in (one, other) * 3]

    if request.node.callspec.params["limiters"] == "memory":
        assert admitted.count(True) == 6, "each process its own: 3 each"
    else:
        assert admitted.count(True) == 3, "one burst across both processes"


def test_an_unreachable_redis_lets_requests_through_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    nothing_listens = f"redis://127.0.0.1:{free_port()}/0"
    per_token, failures = rate_limiters(settings_for(nothing_listens, tmp_path))

    with caplog.at_level(logging.WARNING, logger="backfills.api"):
        answers = [per_token.retry_after("key") for _ in range(5)]
        failures.spend("address")
        blocked = failures.blocked_for("address")

    assert answers == [None] * 5
    assert blocked is None
    assert "rate limit store failed" in caplog.text


def test_a_failing_database_store_lets_requests_through(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = tmp_path / "limits.db"
    per_token, _ = rate_limiters(settings_for(f"sqlite:///{store}", tmp_path))
    with sqlite3.connect(store) as connection:  # every statement of the limiter now fails
        connection.execute("DROP TABLE rate_buckets")

    with caplog.at_level(logging.WARNING, logger="backfills.api"):
        answers = [per_token.retry_after("key") for _ in range(5)]

    assert answers == [None] * 5
    assert "rate limit store failed" in caplog.text
