"""The worker's two metrics endpoints: its own run and backfill figures, and Temporal's SDK
metrics, on the ports that BACKFILLS_WORKER_METRICS_PORT and BACKFILLS_TEMPORAL_METRICS_PORT
set. A worker of its own, on its own task queue, runs one backfill and is scraped."""

import asyncio
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import pytest
from temporalio.client import Client

from cli.devserver import free_port
from config import Settings
from persistence import backfills, transfers
from statuses import BackfillStatus
from temporal_client import start_backfill, workflow_id
from tests.prometheus import Samples, labelsets, scrape, value
from tests.support import Stack, Tenant, spawn, stop, terminate_if_running, wait_for, wait_for_async


@dataclass
class MetricsWorker:
    queue: str
    settings: Settings
    metrics_url: str
    temporal_metrics_url: str
    process: subprocess.Popen[bytes]

    def scrape(self) -> Samples:
        samples = wait_for(lambda: scrape(self.metrics_url), timeout=60)
        return samples

    def scrape_temporal(self) -> Samples:
        samples = wait_for(lambda: scrape(self.temporal_metrics_url), timeout=60)
        return samples


@pytest.fixture
def metrics_worker(stack: Stack, settings: Settings) -> Iterator[MetricsWorker]:
    queue = f"backfills-metrics-{uuid.uuid4().hex[:8]}"
    worker_port, temporal_port = free_port(), free_port()
    env = {
        **stack.env,
        "BACKFILLS_TASK_QUEUE": queue,
        "BACKFILLS_METRICS_HOST": "127.0.0.1",
        "BACKFILLS_WORKER_METRICS_PORT": str(worker_port),
        "BACKFILLS_TEMPORAL_METRICS_PORT": str(temporal_port),
    }
    process = spawn(["worker"], env, stack.logs / f"worker-{queue}.log")
    worker = MetricsWorker(
        queue=queue,
        settings=settings.model_copy(
            update={
                "task_queue": queue,
                "run_max_attempts": 3,
                "run_retry_initial_seconds": 0.1,
                "run_retry_max_seconds": 0.5,
                "run_heartbeat_timeout_seconds": 10,
            }
        ),
        metrics_url=f"http://127.0.0.1:{worker_port}/metrics",
        temporal_metrics_url=f"http://127.0.0.1:{temporal_port}/metrics",
        process=process,
    )
    try:
        yield worker
    finally:
        stop(process)


async def run_backfill(
    stack: Stack,
    tenant: Tenant,
    worker: MetricsWorker,
    client: Client,
    *,
    dates: int,
    fail_dates: list[str],
) -> int:
    """Run a backfill of `dates` days from 2024-06-01 on the worker; its id once it ended."""
    transfer_id = tenant.create_transfer(rows_per_day=2, fail_dates=fail_dates)
    transfer = transfers.get_team_transfer(
        db=stack.db, team_id=tenant.team_id, transfer_id=transfer_id
    )
    backfill = backfills.create_backfill(
        db=stack.db,
        team_id=tenant.team_id,
        transfer_id=transfer_id,
        user_id=tenant.user_id,
        range_start=date(2024, 6, 1),
        range_end=date(2024, 6, dates),
    )
    assert backfill.id is not None
    handle = await start_backfill(client, worker.settings, backfill, transfer)
    backfill_id = backfill.id

    async def failed() -> bool:  # a FAILED backfill's workflow stays open, awaiting a cancel
        record = await asyncio.to_thread(
            backfills.get_backfill_for_worker, db=stack.db, backfill_id=backfill_id
        )
        return record.status == BackfillStatus.FAILED

    try:
        if fail_dates:
            await wait_for_async(failed, within=180)
        else:
            await asyncio.wait_for(handle.result(), timeout=180)
    finally:
        await terminate_if_running(handle)
    return backfill.id


async def test_worker_metrics_count_started_completed_and_failed_runs(
    stack: Stack, tenant: Tenant, metrics_worker: MetricsWorker, temporal_client: Client
) -> None:
    before = await asyncio.to_thread(metrics_worker.scrape)
    assert value(before, "backfills_runs_started_total") == 0

    await run_backfill(
        stack, tenant, metrics_worker, temporal_client, dates=4, fail_dates=["2024-06-04"]
    )

    after = await asyncio.to_thread(metrics_worker.scrape)
    assert value(after, "backfills_runs_started_total") == 4
    assert value(after, "backfills_runs_completed_total") == 3
    assert value(after, "backfills_runs_failed_total") == 1
    assert value(after, "backfills_run_attempt_failures_total", kind="permanent") == 1
    assert value(after, "backfills_run_attempt_failures_total", kind="transient") == 0


async def test_worker_metrics_time_each_run_attempt(
    stack: Stack, tenant: Tenant, metrics_worker: MetricsWorker, temporal_client: Client
) -> None:
    await run_backfill(
        stack, tenant, metrics_worker, temporal_client, dates=3, fail_dates=["2024-06-02"]
    )

    after = await asyncio.to_thread(metrics_worker.scrape)
    histogram = "backfills_run_duration_seconds"
    assert value(after, f"{histogram}_count", outcome="completed") == 2
    assert value(after, f"{histogram}_count", outcome="failed") == 1
    assert value(after, f"{histogram}_bucket", outcome="completed", le="+Inf") == 2
    assert value(after, f"{histogram}_sum", outcome="completed") > 0


async def test_worker_metrics_show_backfills_by_status_from_the_database(
    stack: Stack, tenant: Tenant, metrics_worker: MetricsWorker, temporal_client: Client
) -> None:
    before = await asyncio.to_thread(metrics_worker.scrape)
    statuses = {labels["status"] for labels in labelsets(before, "backfills_backfills")}
    assert statuses == {status.value for status in BackfillStatus}

    await run_backfill(stack, tenant, metrics_worker, temporal_client, dates=2, fail_dates=[])

    after = await asyncio.to_thread(metrics_worker.scrape)
    # A global figure: other tests' backfills may end meanwhile, never un-end.
    assert value(after, "backfills_backfills", status="COMPLETED") >= (
        value(before, "backfills_backfills", status="COMPLETED") + 1
    )


async def test_worker_exports_temporal_sdk_metrics(
    stack: Stack, tenant: Tenant, metrics_worker: MetricsWorker, temporal_client: Client
) -> None:
    backfill_id = await run_backfill(
        stack, tenant, metrics_worker, temporal_client, dates=2, fail_dates=[]
    )

    def completed_workflows() -> float | None:
        samples = metrics_worker.scrape_temporal()
        return value(
            samples,
            "temporal_workflow_completed_total",
            namespace=metrics_worker.settings.temporal_namespace,
            task_queue=metrics_worker.queue,
            workflow_type="Backfill",
            service_name="temporal-core-sdk",
        )

    assert await asyncio.to_thread(wait_for, completed_workflows, timeout=60) >= 1, workflow_id(
        backfill_id
    )
