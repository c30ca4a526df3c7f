"""SIGTERM never hangs a worker: runs still going after the grace period are handed back to
Temporal and the process exits, even when a run is blocked where no cancel reaches it; another
worker then finishes them, and no run is left half-written."""

import asyncio
import signal
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from temporalio.client import Client

from config import Settings
from connectors.warehouse import team_dir
from persistence import backfills, transfers
from statuses import BackfillStatus, RunStatus
from temporal_client import start_backfill, workflow_id
from tests.connectors.http_server import Reply, json_reply, serve
from tests.support import Stack, Tenant, spawn, stop, terminate_if_running, wait_for, warehouse_of
from tests.test_worker import log_of, running, runs_of
from workflows.backfill import BackfillWorkflow

GRACE_SECONDS = 2
EXIT_WITHIN = GRACE_SECONDS + 12  # the grace, then a few seconds to give the runs back
DATA_DATE = date(2024, 9, 1)
ROWS = [{"n": n, "label": f"row {n}"} for n in range(3)]
EXIT_BLOCKED = 3  # the README's: stopped with runs blocked, handed back to Temporal


@dataclass
class Blocked:
    """A source whose run blocks until `release()`, and the exit status the stopping worker
    gives with that run in flight."""

    source: dict[str, Any]
    release: Any
    exit_code: int


@contextmanager
def http_server_that_never_answers(tenant: Tenant) -> Iterator[Blocked]:
    """The first request waits without an answer; a cancel reaches the run (it waits for the
    body on a helper thread), so its attempt fails and the drain completes."""
    with serve() as server:
        server.route(f"/report/{DATA_DATE}", Reply(hang=True), json_reply(ROWS))
        source = {"type": "http", "url": f"{server.base_url}/report/{{data_date}}"}
        yield Blocked({**source, "timeout_s": 600}, release=lambda: None, exit_code=0)


@contextmanager
def sqlite_source_locked_by_a_writer(tenant: Tenant) -> Iterator[Blocked]:
    """A writer holds the source file's lock: the run waits inside SQLite (up to its 600 s
    busy timeout) where no cancel reaches it, until the writer commits."""
    directory = team_dir(tenant.stack.data_dir, tenant.team_id)
    directory.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(directory / "source.db", isolation_level=None)) as writer:
        writer.execute("CREATE TABLE report (data_date TEXT, n INTEGER, label TEXT)")
        writer.execute("BEGIN EXCLUSIVE")
        writer.executemany(
            "INSERT INTO report VALUES (?, ?, ?)",
            [(DATA_DATE.isoformat(), row["n"], row["label"]) for row in ROWS],
        )
        source = {
            "type": "sql",
            "url": "sqlite:///source.db?timeout=600",
            "query": "SELECT n, label FROM report WHERE data_date = :data_date",
        }
        try:
            yield Blocked(source, release=lambda: writer.execute("COMMIT"), exit_code=EXIT_BLOCKED)
        finally:
            if writer.in_transaction:
                writer.execute("ROLLBACK")


def rows_written(stack: Stack, transfer_id: int) -> list[tuple[Any, ...]]:
    path = warehouse_of(stack, transfer_id)
    if not path.exists():
        return []
    with closing(sqlite3.connect(path)) as connection:
        table = f"transfer_{transfer_id}"
        if not connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone():
            return []
        query = f'SELECT data_date, n, label FROM "{table}" ORDER BY n'
        return connection.execute(query).fetchall()


@pytest.mark.parametrize(
    "blocking", [http_server_that_never_answers, sqlite_source_locked_by_a_writer]
)
async def test_sigterm_exits_after_the_grace_period_and_another_worker_finishes_the_run(
    stack: Stack,
    tenant: Tenant,
    settings: Settings,
    temporal_client: Client,
    blocking: Any,
) -> None:
    queue = f"backfills-stuck-{uuid.uuid4().hex[:8]}"
    env = {
        **stack.env,
        "BACKFILLS_TASK_QUEUE": queue,
        "BACKFILLS_WORKER_SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS),
    }
    # A heartbeat timeout far beyond the test: the retry comes from the run handed back.
    queue_settings = settings.model_copy(
        update={"task_queue": queue, "run_max_attempts": 3, "run_heartbeat_timeout_seconds": 300}
    )
    context: AbstractContextManager[Blocked] = blocking(tenant)
    with context as blocked:
        response = tenant.http.post(
            f"/teams/{tenant.team_id}/transfers",
            json={
                "display_name": "blocked",
                "source": blocked.source,
                "destination": {"type": "sqlite"},
            },
        )
        assert response.status_code == 200, response.text
        transfer_id: int = response.json()["data"]["transfer_id"]
        transfer = transfers.get_team_transfer(
            db=stack.db, team_id=tenant.team_id, transfer_id=transfer_id
        )
        backfill = backfills.create_backfill(
            db=stack.db,
            team_id=tenant.team_id,
            transfer_id=transfer_id,
            user_id=tenant.user_id,
            range_start=DATA_DATE,
            range_end=DATA_DATE,
        )
        assert backfill.id is not None
        stopping_log = stack.logs / f"worker-{queue}-stopping.log"
        stopping = spawn(["worker"], env, stopping_log)
        successor = None
        handle = temporal_client.get_workflow_handle_for(
            BackfillWorkflow.run, workflow_id(backfill.id)
        )
        try:
            await start_backfill(temporal_client, queue_settings, backfill, transfer)
            await asyncio.to_thread(
                wait_for, lambda: running(stack, tenant, transfer_id), timeout=60
            )
            await asyncio.sleep(1)  # into the blocking call

            stopping.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            exit_code = await asyncio.to_thread(stopping.wait, EXIT_WITHIN)
            took = time.monotonic() - signalled

            log = log_of(stopping_log)
            assert exit_code == blocked.exit_code, log
            assert took < EXIT_WITHIN, log
            # Nothing half-written: the run did not end and wrote no row.
            [run] = runs_of(stack, tenant, transfer_id)
            assert run.status not in {RunStatus.COMPLETED, RunStatus.FAILED}, run
            assert rows_written(stack, transfer_id) == []

            blocked.release()
            successor = spawn(["worker"], env, stack.logs / f"worker-{queue}-successor.log")
            result = await asyncio.wait_for(handle.result(), timeout=60)
        finally:
            await terminate_if_running(handle)
            for process in (stopping, successor):
                if process is not None:
                    await asyncio.to_thread(stop, process)

    assert (result.status, result.completed) == (BackfillStatus.COMPLETED, 1)
    [run] = runs_of(stack, tenant, transfer_id)
    assert (run.status, run.attempts, run.total_rows) == (RunStatus.COMPLETED, 2, len(ROWS))
    assert rows_written(stack, transfer_id) == [
        (DATA_DATE.isoformat(), row["n"], row["label"]) for row in ROWS
    ]
