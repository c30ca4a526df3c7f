"""The worker process: SIGTERM stops polling and drains the activities in flight."""

import asyncio
import signal
import subprocess
import uuid
from datetime import date
from functools import partial
from pathlib import Path

from temporalio.client import Client

from config import Settings
from persistence import backfills, transfers
from persistence.models import Backfill, TransferRun
from statuses import BackfillStatus, RunStatus
from temporal_client import start_backfill, workflow_id
from tests.support import Stack, Tenant, all_runs, spawn, stop, terminate_if_running, wait_for


def runs_of(stack: Stack, tenant: Tenant, transfer_id: int) -> list[TransferRun]:
    return all_runs(stack.db, tenant.team_id, transfer_id)


def running(stack: Stack, tenant: Tenant, transfer_id: int) -> list[TransferRun]:
    return [r for r in runs_of(stack, tenant, transfer_id) if r.status == RunStatus.RUNNING]


def log_of(path: Path) -> str:
    return path.read_text(errors="replace")[-6000:]


async def test_sigterm_drains_in_flight_runs_before_exiting(
    stack: Stack, tenant: Tenant, settings: Settings, temporal_client: Client
) -> None:
    queue = f"backfills-drain-{uuid.uuid4().hex[:8]}"
    env = {**stack.env, "BACKFILLS_TASK_QUEUE": queue}
    queue_settings = settings.model_copy(
        update={
            "task_queue": queue,
            "run_max_attempts": 3,
            "run_retry_initial_seconds": 0.1,
            "run_retry_max_seconds": 0.5,
            "run_heartbeat_timeout_seconds": 10,
        }
    )
    transfer_id = tenant.create_transfer(max_concurrent_runs=2, latency_ms=2000, rows_per_day=3)
    transfer = transfers.get_team_transfer(
        db=stack.db, team_id=tenant.team_id, transfer_id=transfer_id
    )
    backfill: Backfill = backfills.create_backfill(
        db=stack.db,
        team_id=tenant.team_id,
        transfer_id=transfer_id,
        user_id=tenant.user_id,
        range_start=date(2024, 6, 1),
        range_end=date(2024, 6, 4),
    )
    assert backfill.id is not None
    backfill_id = backfill.id
    draining_log = stack.logs / f"worker-{queue}-draining.log"
    successor_log = stack.logs / f"worker-{queue}-successor.log"
    draining = spawn(["worker"], env, draining_log)
    successor: subprocess.Popen[bytes] | None = None
    try:
        handle = await start_backfill(temporal_client, queue_settings, backfill, transfer)
        in_flight = await asyncio.to_thread(
            wait_for, lambda: running(stack, tenant, transfer_id), timeout=120
        )

        draining.send_signal(signal.SIGTERM)
        exit_code = await asyncio.to_thread(draining.wait, 90)

        # Read right after the exit: the runs in flight must have ended before it.
        after_exit = {run.id: run for run in runs_of(stack, tenant, transfer_id)}
        log = log_of(draining_log)
        assert exit_code == 0, log
        assert "Traceback" not in log, log
        for run in in_flight:
            assert after_exit[run.id].status == RunStatus.COMPLETED, after_exit[run.id]
            assert after_exit[run.id].total_rows == 3
        assert [r for r in after_exit.values() if r.status == RunStatus.RUNNING] == []
        # It stopped taking work: the dates not yet started wait for another worker.
        assert [r for r in after_exit.values() if r.status == RunStatus.CREATED], after_exit

        successor = spawn(["worker"], env, successor_log)
        await asyncio.wait_for(handle.result(), timeout=180)

        final = backfills.get_backfill_for_worker(db=stack.db, backfill_id=backfill_id)
        assert final.status == BackfillStatus.COMPLETED
        assert final.transfer_runs_completed == 4
        assert final.transfer_runs_failed == 0
        assert {r.status for r in runs_of(stack, tenant, transfer_id)} == {RunStatus.COMPLETED}
    finally:
        await terminate_if_running(temporal_client.get_workflow_handle(workflow_id(backfill_id)))
        for process in (draining, successor):
            if process is not None:
                await asyncio.to_thread(stop, process)


def polling(log: Path) -> bool:
    return "worker polling" in log_of(log)


def test_an_idle_worker_stopped_by_sigterm_exits_0_every_time(stack: Stack) -> None:
    """A clean drain ends in exit 0, not in an abort at interpreter exit (the Temporal
    core's threads calling into a finalizing interpreter did that about once in ten)."""
    queue = f"backfills-idle-{uuid.uuid4().hex[:8]}"
    env = {**stack.env, "BACKFILLS_TASK_QUEUE": queue}
    for round_ in range(3):
        logs = [stack.logs / f"worker-{queue}-{round_}-{n}.log" for n in range(4)]
        workers = [spawn(["worker"], env, log) for log in logs]
        try:
            for log in logs:
                wait_for(partial(polling, log), timeout=60)
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            exits = [worker.wait(30) for worker in workers]
        finally:
            for worker in workers:
                stop(worker)
        assert exits == [0] * len(workers), [log_of(log) for log in logs]
        assert all('"message": "worker stopped"' in log_of(log) for log in logs)
