"""Horizontal workers under SIGKILL: the runs of a killed worker are retried elsewhere and
every date ends with exactly one run record and one copy of its rows."""

import signal
import sqlite3
import uuid
from datetime import date
from typing import Any

from temporalio.client import Client

from config import Settings
from persistence import backfills, transfers
from statuses import RunStatus
from temporal_client import start_backfill
from tests.support import Stack, Tenant, forget_killed_worker, spawn, stop, wait_for, warehouse_of
from tests.test_worker import running, runs_of
from workflows.backfill import BackfillWorkflow

ROWS_PER_DAY = 7


def rows_per_date(stack: Stack, transfer_id: int) -> dict[str, int]:
    with sqlite3.connect(warehouse_of(stack, transfer_id)) as connection:
        query = f'SELECT data_date, COUNT(*) FROM "transfer_{transfer_id}" GROUP BY data_date'
        return dict(connection.execute(query).fetchall())


async def test_sigkill_of_a_worker_mid_run_loses_nothing_and_doubles_nothing(
    stack: Stack, tenant: Tenant, settings: Settings, temporal_client: Client
) -> None:
    queue = f"backfills-kill-{uuid.uuid4().hex[:8]}"
    env: dict[str, Any] = {**stack.env, "BACKFILLS_TASK_QUEUE": queue}
    queue_settings = settings.model_copy(
        update={"task_queue": queue, "run_max_attempts": 5, "run_heartbeat_timeout_seconds": 5}
    )
    transfer_id = tenant.create_transfer(
        max_concurrent_runs=4, latency_ms=3000, rows_per_day=ROWS_PER_DAY
    )
    transfer = transfers.get_team_transfer(
        db=stack.db, team_id=tenant.team_id, transfer_id=transfer_id
    )
    backfill = backfills.create_backfill(
        db=stack.db,
        team_id=tenant.team_id,
        transfer_id=transfer_id,
        user_id=tenant.user_id,
        range_start=date(2023, 2, 1),
        range_end=date(2023, 2, 10),
    )
    first = spawn(["worker"], env, stack.logs / f"{queue}-first.log")
    others = []
    try:
        handle = await start_backfill(temporal_client, queue_settings, backfill, transfer)
        wait_for(lambda: len(running(stack, tenant, transfer_id)) == 4, timeout=60)
        others = [spawn(["worker"], env, stack.logs / f"{queue}-{n}.log") for n in (2, 3)]

        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        await forget_killed_worker(temporal_client, handle.id)

        typed = temporal_client.get_workflow_handle_for(BackfillWorkflow.run, handle.id)
        result = await typed.result()
    finally:
        for process in (first, *others):
            stop(process)

    assert (result.status, result.completed) == ("COMPLETED", 10)
    assert backfill.id is not None
    record = backfills.get_team_backfill(
        db=stack.db, team_id=tenant.team_id, backfill_id=backfill.id
    )
    assert (record.status, record.transfer_runs_completed, record.transfer_runs_failed) == (
        "COMPLETED",
        10,
        0,
    )
    all_runs = runs_of(stack, tenant, transfer_id)
    assert len(all_runs) == 10 == len({r.data_date for r in all_runs})
    assert {r.status for r in all_runs} == {RunStatus.COMPLETED}
    assert sum(r.attempts >= 2 for r in all_runs) >= 4, "the killed worker's runs were retried"
    assert rows_per_date(stack, transfer_id) == {
        f"2023-02-{day:02d}": ROWS_PER_DAY for day in range(1, 11)
    }
