"""`backfills worker --processes N`: N worker processes, each polling Temporal with its own
slots, that finish a backfill together, stop together on SIGTERM, and take each other down
when one dies (so the process manager restarts the whole)."""

import asyncio
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from config import Settings
from persistence import backfills, transfers
from temporal_client import start_backfill
from tests.support import Stack, Tenant, spawn, stop, wait_for, wait_for_async


def worker_children(pid: int) -> list[int]:
    """The worker processes the supervisor `pid` started (`python -m cli.main worker`)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children if b"worker" in Path(f"/proc/{c}/cmdline").read_bytes()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat").read_text().split()[2]
    return status != "Z"


async def activity_pollers(client: Client, namespace: str, task_queue: str) -> set[int]:
    """The process ids of the workers polling `task_queue` for activities (their Temporal
    identity is `pid@host`)."""
    described = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
        )
    )
    return {int(poller.identity.split("@")[0]) for poller in described.pollers}


@pytest.fixture
def pool_env(stack: Stack) -> dict[str, str]:
    return {
        **stack.env,
        "BACKFILLS_TASK_QUEUE": f"backfills-pool-{uuid.uuid4().hex[:8]}",
        "BACKFILLS_WORKER_SHUTDOWN_GRACE_SECONDS": "5",
    }


@pytest.fixture
def supervisor(stack: Stack, pool_env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    log = stack.logs / f"worker-pool-{pool_env['BACKFILLS_TASK_QUEUE']}.log"
    process = spawn(["worker", "--processes", "2"], pool_env, log)
    try:
        wait_for(lambda: len(worker_children(process.pid)) == 2 or None, timeout=30)
        yield process
    finally:
        stop(process)


async def test_two_processes_poll_and_finish_a_backfill_together(
    stack: Stack,
    tenant: Tenant,
    settings: Settings,
    temporal_client: Client,
    pool_env: dict[str, str],
    supervisor: subprocess.Popen[bytes],
) -> None:
    workers = set(worker_children(supervisor.pid))
    queue = pool_env["BACKFILLS_TASK_QUEUE"]

    async def both_poll() -> bool:
        pollers = await activity_pollers(temporal_client, settings.temporal_namespace, queue)
        return workers <= pollers

    await wait_for_async(both_poll, within=120)  # two workers starting on a busy machine
    transfer_id = tenant.create_transfer(max_concurrent_runs=8, latency_ms=50)
    transfer = transfers.get_team_transfer(
        db=stack.db, team_id=tenant.team_id, transfer_id=transfer_id
    )
    backfill = backfills.create_backfill(
        db=stack.db,
        team_id=tenant.team_id,
        transfer_id=transfer_id,
        user_id=tenant.user_id,
        range_start=date(2024, 1, 1),
        range_end=date(2024, 1, 20),
    )
    assert backfill.id is not None
    await start_backfill(
        temporal_client, settings.model_copy(update={"task_queue": queue}), backfill, transfer
    )

    done = await asyncio.to_thread(tenant.wait_until_status, backfill.id, "COMPLETED")

    assert done["transfer_runs_completed"] == 20


def test_sigterm_stops_every_worker_and_the_supervisor_exits_0(
    supervisor: subprocess.Popen[bytes],
) -> None:
    workers = worker_children(supervisor.pid)

    supervisor.send_signal(signal.SIGTERM)

    assert supervisor.wait(timeout=60) == 0
    assert not any(alive(pid) for pid in workers)


def test_a_worker_that_dies_stops_the_others_and_the_supervisor_fails(
    supervisor: subprocess.Popen[bytes],
) -> None:
    dying, other = worker_children(supervisor.pid)

    os.kill(dying, signal.SIGKILL)

    assert supervisor.wait(timeout=60) == 1
    wait_for(lambda: not alive(other) or None, timeout=10)


def test_a_refused_start_ends_the_supervisor_with_its_status(
    stack: Stack, pool_env: dict[str, str], tmp_path: Path
) -> None:
    taken = {**pool_env, "BACKFILLS_SECRETS_KEY": "not a key", "BACKFILLS_WORKER_PROCESSES": "2"}

    process = spawn(["worker"], taken, tmp_path / "worker.log")

    assert process.wait(timeout=60) == 1
    assert "backfills worker:" in (tmp_path / "worker.log").read_text()
