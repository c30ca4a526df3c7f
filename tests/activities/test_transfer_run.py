"""The transfer-run activity driven attempt by attempt, as Temporal would drive it, against a
real service database (SQLite and PostgreSQL) and real connectors.

Each attempt runs in `temporalio.testing.ActivityEnvironment` with the `activity.Info` a
worker would give it (its attempt number, its timeouts); heartbeats are recorded."""

import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from ipaddress import ip_network
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import event
from sqlalchemy.engine import make_url
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import ActivityEnvironment

from activities.inputs import SUPERSEDED_ATTEMPT_ERROR, TransferRunInput, TransferRunResult
from activities.transfer_run import RunEnvironment, TransferRunActivities
from connectors.egress import EgressPolicy
from connectors.warehouse import DEFAULT_FILE, team_dir
from persistence import accounts, backfills, runs, transfers
from persistence.db import Database
from persistence.migrate import upgrade
from persistence.models import Backfill, Role, TransferRun
from persistence.secret_box import SecretBox
from statuses import RunOutcome, RunStatus
from tests.connectors.http_server import Reply, json_reply, serve
from tests.scratch_postgres import admin_url_or_skip, query, scratch_database
from tests.support import wait_for

DAY = date(2024, 6, 1)
LOCAL_SERVERS = EgressPolicy(allowed_networks=(ip_network("127.0.0.0/8"), ip_network("::1/128")))


@dataclass
class Attempt:
    """One attempt of the run: its environment and the times its heartbeats arrived."""

    environment: ActivityEnvironment
    heartbeats: list[float] = field(default_factory=list)


@dataclass
class Run:
    """One backfill of one date, planned and scheduled, and the activity that runs it."""

    db: Database
    team_id: int
    transfer_id: int
    backfill_id: int
    data_dir: Path
    activities: TransferRunActivities

    @property
    def input(self) -> TransferRunInput:
        return TransferRunInput(self.backfill_id, self.transfer_id, DAY, self.team_id)

    def attempt(self, number: int, *, heartbeat_timeout: float = 30.0) -> Attempt:
        environment = ActivityEnvironment()
        now = datetime.now(UTC)
        environment.info = replace(
            environment.info,
            activity_type="run_transfer",
            activity_id="1",
            workflow_id=f"backfill-{self.backfill_id}",
            attempt=number,
            current_attempt_scheduled_time=now,
            started_time=now,
            scheduled_time=now,
            heartbeat_timeout=timedelta(seconds=heartbeat_timeout),
            start_to_close_timeout=timedelta(minutes=10),
            schedule_to_close_timeout=None,
        )
        attempt = Attempt(environment)
        environment.on_heartbeat = lambda *_: attempt.heartbeats.append(time.monotonic())
        return attempt

    def run(self, attempt: Attempt) -> TransferRunResult:
        return attempt.environment.run(self.activities.run_transfer, self.input)

    def record(self) -> TransferRun:
        return runs.get_run_for_worker(db=self.db, backfill_id=self.backfill_id, data_date=DAY)

    def backfill(self) -> Backfill:
        return backfills.get_backfill_for_worker(db=self.db, backfill_id=self.backfill_id)

    def running(self, attempt: int) -> bool:
        record = self.record()
        return record.status == RunStatus.RUNNING and record.attempts == attempt

    @property
    def warehouse(self) -> Path:
        """The team's SQLite warehouse, which the `sqlite` destination writes by default."""
        return team_dir(self.data_dir, self.team_id) / DEFAULT_FILE


def new_run(
    db: Database, data_dir: Path, source: dict[str, Any], destination: dict[str, Any]
) -> Run:
    team_id = accounts.create_team(db=db, name="activity tests")
    user_id = accounts.create_user(
        db=db, email=f"runner-{os.urandom(6).hex()}@example.com", team_id=team_id, role=Role.OWNER
    )
    transfer = transfers.create_transfer(
        db=db,
        team_id=team_id,
        user_id=user_id,
        display_name="activity test transfer",
        source=source,
        destination=destination,
        max_concurrent_runs=1,
    )
    assert transfer.id is not None
    backfill = backfills.create_backfill(
        db=db,
        team_id=team_id,
        transfer_id=transfer.id,
        user_id=user_id,
        range_start=DAY,
        range_end=DAY,
    )
    assert backfill.id is not None
    runs.plan_runs(db=db, backfill_id=backfill.id, first=DAY, last=DAY)
    backfills.mark_scheduled(db=db, backfill_id=backfill.id)
    environment = RunEnvironment(
        data_dir=data_dir,
        secret_box=SecretBox([Fernet.generate_key()]),
        egress=LOCAL_SERVERS,
    )
    return Run(
        db=db,
        team_id=team_id,
        transfer_id=transfer.id,
        backfill_id=backfill.id,
        data_dir=data_dir,
        activities=TransferRunActivities(db, environment),
    )


@pytest.fixture
def make_run(quiet_database_url: str, tmp_path: Path) -> Iterator[Callable[..., Run]]:
    def make(
        source: dict[str, Any] | None = None, destination: dict[str, Any] | None = None
    ) -> Run:
        return new_run(
            Database(quiet_database_url),
            tmp_path / "data",
            source or {"type": "demo", "rows_per_day": 5},
            destination or {"type": "sqlite"},
        )

    yield make


def counters(backfill: Backfill) -> tuple[int, int, int, int]:
    return (
        backfill.transfer_runs_created,
        backfill.transfer_runs_completed,
        backfill.transfer_runs_failed,
        backfill.transfer_runs_cancelled,
    )


# --- exactly-once counting -------------------------------------------------------------------


def test_a_retry_of_a_run_that_committed_reports_it_completed_and_counts_it_once(
    make_run: Callable[..., Run],
) -> None:
    run = make_run()
    first = run.run(run.attempt(1))
    assert first == TransferRunResult(outcome=RunOutcome.COMPLETED, rows=5)
    after_first = counters(run.backfill())

    # The worker died after the commit, before Temporal heard of it: attempt 2 comes.
    retried = run.run(run.attempt(2))

    assert retried == TransferRunResult(outcome=RunOutcome.COMPLETED, rows=5)
    assert counters(run.backfill()) == after_first == (1, 1, 0, 0)
    record = run.record()
    assert (record.status, record.total_rows) == (RunStatus.COMPLETED, 5)


def test_a_retry_of_a_run_that_failed_meanwhile_reports_it_failed(
    make_run: Callable[..., Run],
) -> None:
    run = make_run()
    assert runs.fail_run(db=run.db, backfill_id=run.backfill_id, data_date=DAY, message="gone")
    before = counters(run.backfill())

    retried = run.run(run.attempt(2))

    assert retried.outcome == RunOutcome.FAILED
    assert counters(run.backfill()) == before == (1, 0, 1, 0)


def test_a_cancelled_run_is_skipped(make_run: Callable[..., Run]) -> None:
    run = make_run()
    backfills.cancel_backfill(db=run.db, backfill_id=run.backfill_id, user_id=None)

    assert run.run(run.attempt(1)).outcome == RunOutcome.SKIPPED
    assert run.record().status == RunStatus.CANCELLED
    assert counters(run.backfill()) == (1, 0, 0, 1)


# --- heartbeats while the work blocks -----------------------------------------------------------

HEARTBEAT_TIMEOUT = 1.5
LOCK_HELD = 2 * HEARTBEAT_TIMEOUT


def test_heartbeats_keep_coming_while_the_load_waits_for_the_destination_lock(
    make_run: Callable[..., Run],
) -> None:
    """The load waits twice the heartbeat timeout for SQLite's write lock on the team's
    warehouse (another writer holds it): heartbeats never pause that long meanwhile, so
    Temporal would not time the attempt out and start a second one beside it."""
    run = make_run()
    attempt = run.attempt(1, heartbeat_timeout=HEARTBEAT_TIMEOUT)
    run.warehouse.parent.mkdir(parents=True, exist_ok=True)
    other_writer = sqlite3.connect(run.warehouse, isolation_level=None)
    try:
        other_writer.execute("PRAGMA journal_mode=WAL")
        other_writer.execute("BEGIN IMMEDIATE")
        with ThreadPoolExecutor(max_workers=1) as pool:
            result = pool.submit(run.run, attempt)
            wait_for(lambda: run.running(1), timeout=10, interval=0.01)
            blocked_from = time.monotonic()
            time.sleep(LOCK_HELD)
            blocked_until = time.monotonic()
            other_writer.execute("ROLLBACK")
            assert result.result(timeout=30) == TransferRunResult(RunOutcome.COMPLETED, rows=5)
    finally:
        other_writer.close()

    beats = [t for t in attempt.heartbeats if blocked_from <= t <= blocked_until]
    moments = [blocked_from, *beats, blocked_until]
    longest_pause = max(later - earlier for earlier, later in pairwise(moments))
    assert longest_pause < HEARTBEAT_TIMEOUT, (longest_pause, len(beats))
    record = run.record()
    assert (record.status, record.attempts) == (RunStatus.COMPLETED, 1)


# --- the fence: an attempt Temporal gave up on commits nothing ----------------------------------

FIRST_ROWS = [{"version": 1, "n": n} for n in range(3)]
SECOND_ROWS = [{"version": 2, "n": n} for n in range(2)]


@pytest.fixture(scope="module")
def postgres_warehouse() -> Iterator[str]:
    with scratch_database("backfills_fence") as url:
        yield url


@dataclass(frozen=True)
class Sink:
    """A destination spec and a way to read back what it holds for DAY."""

    spec: dict[str, Any]
    rows: Callable[[Run], list[tuple[object, ...]]]


@pytest.fixture(params=["sqlite", "postgresql"])
def sink(request: pytest.FixtureRequest) -> Sink:
    if request.param == "sqlite":

        def sqlite_rows(run: Run) -> list[tuple[object, ...]]:
            with sqlite3.connect(run.warehouse) as connection:
                return connection.execute(
                    f"SELECT version, n FROM transfer_{run.transfer_id} "
                    "WHERE data_date = ? ORDER BY n",
                    (DAY.isoformat(),),
                ).fetchall()

        return Sink({"type": "sqlite"}, sqlite_rows)
    url = request.getfixturevalue("postgres_warehouse")
    table = f"fenced_{uuid.uuid4().hex[:8]}"

    def postgres_rows(run: Run) -> list[tuple[object, ...]]:
        return query(url, f"SELECT version, n FROM {table} WHERE data_date = %s ORDER BY n", (DAY,))

    return Sink({"type": "postgresql", "url": url, "table": table}, postgres_rows)


def test_an_attempt_replaced_by_a_newer_one_rolls_its_load_back(
    make_run: Callable[..., Run], sink: Sink
) -> None:
    """Attempt 1 is stuck fetching its rows long enough for Temporal to start attempt 2,
    which loads newer rows and completes. When attempt 1 comes back and loads, its fence
    (checked under the destination's lock, before committing) finds attempt 2 recorded:
    it rolls back, so the destination keeps attempt 2's rows and the record attempt 2's."""
    released = threading.Event()
    with serve() as server:
        server.route(
            f"/rows/{DAY.isoformat()}",
            Reply(body=json_reply(FIRST_ROWS).body, wait_for=released),
            json_reply(SECOND_ROWS),
        )
        source = {"type": "http", "url": f"{server.base_url}/rows/{{data_date}}"}
        run = make_run(source, sink.spec)
        with ThreadPoolExecutor(max_workers=1) as pool:
            first = pool.submit(run.run, run.attempt(1))
            wait_for(lambda: server.requests_to(f"/rows/{DAY.isoformat()}"), timeout=10)
            assert run.running(1)

            second = run.run(run.attempt(2))

            assert second == TransferRunResult(RunOutcome.COMPLETED, rows=2)
            assert sink.rows(run) == [(2, 0), (2, 1)]
            released.set()
            zombie = first.exception(timeout=30)

    assert sink.rows(run) == [(2, 0), (2, 1)]
    assert isinstance(zombie, ApplicationError), zombie
    assert (zombie.type, zombie.non_retryable) == (SUPERSEDED_ATTEMPT_ERROR, True)
    record = run.record()
    assert (record.status, record.attempts, record.total_rows) == (RunStatus.COMPLETED, 2, 2)
    assert counters(run.backfill()) == (1, 1, 0, 0)


# --- the service database failing for a moment ---------------------------------------------------


@dataclass(frozen=True)
class Outage:
    """A service database of the test's own, which `begin()` takes away until `end()`."""

    url: str
    begin: Callable[[], None]
    end: Callable[[], None]


@pytest.fixture(params=["sqlite", "postgresql"])
def outage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Outage]:
    """SQLite: another connection holds the write lock, and the service's connections give
    up after 0.2 s instead of 30 (they then say "database is locked", as after 30 s).
    PostgreSQL: the database refuses connections and its sessions are terminated."""
    if request.param == "sqlite":
        path = tmp_path / "backfills.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        engine = Database(url).engine
        engine.dispose()

        @event.listens_for(engine, "connect")
        def _short_busy_timeout(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute("PRAGMA busy_timeout=200")

        holder = sqlite3.connect(path, isolation_level=None)

        def take_the_lock() -> None:
            holder.execute("BEGIN IMMEDIATE")

        def release_it() -> None:
            holder.execute("ROLLBACK")

        try:
            yield Outage(url, begin=take_the_lock, end=release_it)
        finally:
            holder.close()
            engine.dispose()
        return
    admin = admin_url_or_skip()
    with scratch_database("backfills_outage") as url:
        upgrade(url)
        name = make_url(url).database

        def begin() -> None:
            query(admin, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            query(
                admin,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )

        def end() -> None:
            query(admin, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')

        try:
            yield Outage(url, begin=begin, end=end)
        finally:
            end()
            Database(url).engine.dispose()


def test_a_service_database_outage_during_a_run_costs_no_attempt(
    outage: Outage, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The service database is away when the attempt begins, and again while it extracts:
    the attempt waits both out and completes, as attempt 1, with no error message."""
    demo = {"type": "demo", "rows_per_day": 5, "latency_ms": 1500}
    run = new_run(Database(outage.url), tmp_path / "data", demo, {"type": "sqlite"})
    with (
        caplog.at_level(logging.WARNING, logger="temporalio.activity"),
        ThreadPoolExecutor(max_workers=1) as pool,
    ):
        outage.begin()
        result = pool.submit(run.run, run.attempt(1))
        time.sleep(1.0)
        outage.end()
        wait_for(lambda: result.done() or run.running(1), timeout=30, interval=0.02)
        outage.begin()
        time.sleep(2.5)
        outage.end()
        outcome = result.result(timeout=60)

    assert outcome == TransferRunResult(RunOutcome.COMPLETED, rows=5)
    record = run.record()
    assert (record.status, record.attempts, record.message) == (RunStatus.COMPLETED, 1, "")
    assert counters(run.backfill()) == (1, 1, 0, 0)
    retried = {  # the persistence functions the attempt had to retry
        str(r.args[1])
        for r in caplog.records
        if isinstance(r.args, tuple) and str(r.msg).startswith("the service database failed")
    }
    assert "begin_run" in retried, retried
    assert retried & {"is_current_attempt", "complete_run"}, retried


def test_an_attempt_cancelled_at_shutdown_ends_as_cancelled_not_as_an_internal_error(
    make_run: Callable[..., Run], caplog: pytest.LogCaptureFixture
) -> None:
    """A worker past its shutdown grace cancels its activities: the attempt leaves as
    Temporal's cancellation, to be retried elsewhere, and the run's message stays clean."""
    run = make_run(source={"type": "demo", "rows_per_day": 5, "latency_ms": 20_000})
    attempt = run.attempt(1)
    with (
        caplog.at_level(logging.ERROR, logger="temporalio.activity"),
        ThreadPoolExecutor(max_workers=1) as pool,
    ):
        result = pool.submit(run.run, attempt)
        wait_for(lambda: run.running(1), timeout=10, interval=0.02)
        attempt.environment.cancel()
        with pytest.raises(CancelledError):
            result.result(timeout=30)

    record = run.record()
    assert (record.status, record.message) == (RunStatus.RUNNING, "")  # retried elsewhere
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
