"""No route blocks the API's event loop: while a request waits on the database, the API
answers others.

The wait is real: the test holds the lock the request needs, SQLite's write lock (`BEGIN
IMMEDIATE`) or, on PostgreSQL, the row lock of the transfer a create locks or the backfill a
cancel updates. A route that called the database on the event loop would leave every other
request unanswered until the lock is let go.
"""

import inspect
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import psycopg
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy.engine import make_url

from api import deps
from api.main import create_app
from config import Settings
from statuses import BackfillStatus
from tests.conftest import _libpq
from tests.support import Stack, Tenant, wait_for

ANSWER_WITHIN_SECONDS = 5.0


@contextmanager
def database_lock(stack: Stack, table: str, row_id: int) -> Iterator[Callable[[], bool]]:
    """Hold the lock a write of `table`'s row `row_id` needs; yields whether a session of
    the API waits on it (as far as the database tells: SQLite does not)."""
    url = make_url(stack.database_url)
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        connection = sqlite3.connect(url.database, isolation_level=None, timeout=30)
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield lambda: True
        finally:
            connection.execute("ROLLBACK")
            connection.close()
        return
    with (
        psycopg.connect(_libpq(stack.database_url)) as holder,
        psycopg.connect(_libpq(stack.database_url), autocommit=True) as observer,
    ):
        holder.execute(f"SELECT id FROM {table} WHERE id = %s FOR UPDATE", (row_id,))

        def someone_waits() -> bool:
            waiting = observer.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'"
            ).fetchone()
            return waiting is not None and waiting[0] > 0

        try:
            yield someone_waits
        finally:
            holder.rollback()


def answered_while_waiting(
    tenant: Tenant, slow: Callable[[httpx.Client], httpx.Response], table: str, row_id: int
) -> httpx.Response:
    """Send `slow` (on a client of its own) while its row is locked, and a read meanwhile:
    the read is answered while `slow` still waits. Returns `slow`'s response, once the lock
    is let go."""
    with (
        httpx.Client(base_url=tenant.stack.api_url, headers=tenant.http.headers) as other,
        ThreadPoolExecutor(max_workers=1) as pool,
    ):
        with database_lock(tenant.stack, table, row_id) as someone_waits:
            pending = pool.submit(slow, other)
            wait_for(someone_waits, timeout=10)
            time.sleep(1.0)  # on SQLite, the only sign is time: the request is in by now
            assert not pending.done(), pending.result().text
            try:
                meanwhile = tenant.http.get(
                    f"/teams/{tenant.team_id}/transfers", timeout=ANSWER_WITHIN_SECONDS
                )
            except httpx.TimeoutException:
                pytest.fail("nothing was answered while a request waited on the database")
            assert meanwhile.status_code == 200, meanwhile.text
            assert not pending.done(), "the request did not wait on the database"
        return pending.result(timeout=60)


def test_a_create_waiting_on_the_database_leaves_the_api_answering(tenant: Tenant) -> None:
    transfer_id = tenant.create_transfer()

    created = answered_while_waiting(
        tenant,
        lambda http: http.post(
            f"/teams/{tenant.team_id}/transfers/{transfer_id}/backfills",
            json={"range_start": "2024-01-01", "range_end": "2024-01-02"},
        ),
        "transfers",
        transfer_id,
    )

    assert created.status_code == 200, created.text


def test_a_cancel_waiting_on_the_database_leaves_the_api_answering(tenant: Tenant) -> None:
    transfer_id = tenant.create_transfer(fail_dates=["2024-01-01"])
    backfill_id = tenant.create_backfill(transfer_id, "2024-01-01", "2024-01-01")[
        "transfer_backfill_id"
    ]
    tenant.wait_until_status(backfill_id, BackfillStatus.FAILED)  # nothing else touches it

    cancelled = answered_while_waiting(
        tenant,
        lambda http: http.patch(
            f"/teams/{tenant.team_id}/backfills/{backfill_id}",
            json={"status": BackfillStatus.CANCELLED},
        ),
        "backfills",
        backfill_id,
    )

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["data"]["status"] == "CANCELLED"


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _dependants(sub)


def test_an_async_route_reaches_the_database_only_through_the_thread_pool() -> None:
    """An `async def` route or dependency never takes the `Database` (`DbDep`): only a plain
    `def` one, which FastAPI runs in its thread pool, or `AsyncDbDep`."""
    routes = [
        context.route
        for context in iter_route_contexts(create_app(Settings()).routes)
        if isinstance(context.route, APIRoute)
    ]
    holding = sorted(
        f"{route.path} {getattr(dependant.call, '__name__', dependant.call)}"
        for route in routes
        for dependant in _dependants(route.dependant)
        if inspect.iscoroutinefunction(dependant.call)
        and any(sub.call is deps._db for sub in dependant.dependencies)
    )
    assert holding == []
    async_routes = {route.name for route in routes if inspect.iscoroutinefunction(route.endpoint)}
    assert {"create_backfill", "cancel_backfill", "readyz"} <= async_routes  # it looked at them
