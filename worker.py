"""A backfill worker: `python worker.py` or `backfills worker`.

Stateless: run as many as you like, on any machines, against the same Temporal namespace,
task queues and database. A process serves the runs queue (the workflows and the transfer
runs, `worker_max_concurrent_activities` slots), the records queue (the bookkeeping
activities, `worker_max_concurrent_record_activities` slots of their own, so that runs holding
every run slot never delay a cancel or a close), or both: `BACKFILLS_WORKER_QUEUES`, or
`backfills worker --queues runs|records|runs,records`; each queue has its own Temporal worker
and thread pool, started and drained together.

SIGTERM or SIGINT stops polling and lets the activities in flight finish (up to
BACKFILLS_WORKER_SHUTDOWN_GRACE_SECONDS) before the process exits. A metrics
port already in use, or a missing secrets key, stops it at start with a message and exit 1.
"""

import asyncio
import logging
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, ExitStack
from datetime import timedelta

from pydantic import ValidationError
from temporalio.worker import Worker

from activities.reconcile import ReconcileActivities
from activities.records import RecordActivities
from activities.transfer_run import RunEnvironment, TransferRunActivities
from config import WORKER_QUEUES, Settings, get_settings
from connectors.egress import EgressPolicy
from observability.activity_context import TeamContextInterceptor, team_fields
from observability.logs import add_context_provider, setup_logging
from observability.tracing import setup_tracing
from observability.worker_metrics import MetricsPortError, serve_worker_metrics, worker_runtime
from persistence.db import Database
from persistence.secret_box import SecretsKeyError, load_secret_box
from temporal_client import (
    BackfillWorkflowClient,
    connect,
    ensure_reconciler,
    ensure_search_attributes,
)
from workflows.backfill import BackfillWorkflow
from workflows.reconciler import ReconcilerWorkflow

log = logging.getLogger("backfills.worker")


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    stop = stop or _stop_on_signals()
    environment = run_environment(settings)
    setup_tracing(settings, service_name="backfills-worker")
    client = await connect(settings, runtime=worker_runtime(settings))
    await ensure_search_attributes(client, settings.temporal_namespace)
    db = Database(settings.resolved_database_url)
    serve_worker_metrics(settings, db)
    add_context_provider(team_fields)
    records = RecordActivities(db)
    transfer_runs = TransferRunActivities(db, environment)
    reconciler = ReconcileActivities(db, BackfillWorkflowClient(client, settings))
    bookkeeping = [*records.all(), reconciler.reconcile]
    grace = timedelta(seconds=settings.worker_shutdown_grace_seconds)
    served = [queue for queue in WORKER_QUEUES if queue in settings.worker_queues]
    with ExitStack() as pools:
        workers = []
        for queue in served:
            if queue == "runs":
                # Workflows started before the records queue existed schedule their
                # bookkeeping here, on the workflow's own queue: it is served here too.
                name, slots = settings.task_queue, settings.worker_max_concurrent_activities
                workflows: list[type] = [BackfillWorkflow, ReconcilerWorkflow]
                activities = [transfer_runs.run_transfer, *bookkeeping]
            else:
                name = settings.resolved_records_task_queue
                slots = settings.worker_max_concurrent_record_activities
                workflows, activities = [], bookkeeping
            executor = pools.enter_context(
                ThreadPoolExecutor(max_workers=slots, thread_name_prefix=f"{queue}-activity")
            )
            workers.append(
                Worker(
                    client,
                    task_queue=name,
                    workflows=workflows,
                    activities=activities,
                    activity_executor=executor,
                    max_concurrent_activities=slots,
                    graceful_shutdown_timeout=grace,
                    interceptors=[TeamContextInterceptor()],
                )
            )
            log.info("worker polling task queue %s (%s, %d slots)", name, queue, slots)
        async with AsyncExitStack() as running:
            for worker in workers:
                await running.enter_async_context(worker)
            await ensure_reconciler(client, settings)
            await stop.wait()
            log.info("worker stopping: draining activities in flight")
            await asyncio.gather(*(worker.shutdown() for worker in workers))
    log.info("worker stopped")


def run_environment(settings: Settings) -> RunEnvironment:
    """What the operator lets runs reach: raises SecretsKeyError without a usable key."""
    return RunEnvironment(
        data_dir=settings.data_dir.resolve(),
        secret_box=load_secret_box(settings),
        egress=EgressPolicy.from_settings(settings),
        env_allowlist=frozenset(settings.worker_env_allowlist),
    )


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


def main(queues: list[str] | None = None) -> None:
    """Run a worker; `queues` (from `backfills worker --queues`) overrides
    BACKFILLS_WORKER_QUEUES. Settings that do not validate: a message and exit 2."""
    try:
        settings = get_settings()
        if queues is not None:
            settings = Settings.model_validate({**settings.model_dump(), "worker_queues": queues})
    except ValidationError as exc:
        print(f"backfills worker: invalid settings: {exc}", file=sys.stderr)
        sys.exit(2)
    setup_logging(settings)
    try:
        asyncio.run(run_worker(settings))
    except (SecretsKeyError, MetricsPortError) as exc:
        sys.exit(f"backfills worker: {exc}")


if __name__ == "__main__":
    main()
