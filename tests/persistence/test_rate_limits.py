"""Rate buckets in the database, on SQLite and PostgreSQL: a burst is admitted once however
many threads take from it at once, refills with time, and a full bucket can be forgotten."""

import threading
import uuid

import pytest

from persistence import rate_limits
from persistence.db import Database
from persistence.rate_limits import Limit

SLOW = Limit(per_second=0.5, burst=3)  # a token every 2 s


@pytest.fixture
def db(database_url: str) -> Database:
    return Database(database_url)


def take(db: Database, key: str, now: float, limit: Limit = SLOW) -> bool:
    taken = rate_limits.take_request(db=db, scope="test", key=key, limit=limit, now=now)
    return taken.allowed


def test_a_burst_is_admitted_then_refused_until_time_refills_it(db: Database) -> None:
    key = uuid.uuid4().hex

    assert [take(db, key, now=1000.0) for _ in range(4)] == [True, True, True, False]
    assert take(db, key, now=1001.0) is False, "half a token is not a request"
    assert take(db, key, now=1002.0) is True, "two seconds make one token"
    assert take(db, key, now=1002.0) is False


def test_a_refused_request_takes_nothing_and_the_bucket_never_exceeds_its_burst(
    db: Database,
) -> None:
    key = uuid.uuid4().hex
    for _ in range(10):
        take(db, key, now=1000.0)
    left = rate_limits.tokens_left(db=db, scope="test", key=key, limit=SLOW, now=1001.0)
    assert left == pytest.approx(0.5)

    assert [take(db, key, now=2000.0) for _ in range(4)] == [True, True, True, False]


def test_a_clock_that_goes_back_gives_no_tokens(db: Database) -> None:
    key = uuid.uuid4().hex
    for _ in range(3):
        take(db, key, now=1000.0)

    assert take(db, key, now=900.0) is False
    assert take(db, key, now=1001.0) is False, "the bucket still counts from 1000"
    assert take(db, key, now=1002.0) is True


def test_the_keys_and_scopes_have_buckets_of_their_own(db: Database) -> None:
    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    for _ in range(3):
        take(db, first, now=1000.0)

    assert take(db, first, now=1000.0) is False
    assert take(db, second, now=1000.0) is True
    other_scope = rate_limits.take_request(db=db, scope="other", key=first, limit=SLOW, now=1000.0)
    assert other_scope.allowed


def test_threads_taking_at_once_are_admitted_exactly_the_burst(db: Database) -> None:
    key = uuid.uuid4().hex
    limit = Limit(per_second=1e-9, burst=25)
    admitted: list[bool] = []
    start = threading.Barrier(8)

    def client() -> None:
        start.wait()
        for _ in range(10):
            admitted.append(take(db, key, now=1000.0, limit=limit))

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(admitted) == 80
    assert admitted.count(True) == 25


def test_only_buckets_that_have_refilled_are_forgotten(db: Database) -> None:
    scope = f"prune-{uuid.uuid4().hex}"
    for key, when in (("old", 1000.0), ("recent", 1005.0)):
        rate_limits.take_request(db=db, scope=scope, key=key, limit=SLOW, now=when)

    # SLOW refills from empty in 6 s: at 1007 the first is full, the second not yet
    forgotten = rate_limits.forget_full_buckets(db=db, scope=scope, limit=SLOW, now=1007.0)

    assert forgotten == 1
    # the recent bucket is still there (a forgotten one would read full: 3)
    assert rate_limits.tokens_left(db=db, scope=scope, key="recent", limit=SLOW, now=1005.0) == 2
