"""A backfill worker: `python worker.py` or `backfills worker`.

Stateless: run as many as you like, on any machines, against the same Temporal namespace,
task queue and database. SIGTERM or SIGINT stops polling and lets the activities in flight
finish (up to BACKFILLS_WORKER_SHUTDOWN_GRACE_SECONDS) before the process exits.
"""

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from temporalio.worker import Worker

from activities.records import RecordActivities
from activities.transfer_run import TransferRunActivities
from config import Settings, get_settings
from persistence.db import Database
from workflows.backfill import BackfillWorkflow
from workflows.client import connect, ensure_search_attributes

log = logging.getLogger("backfills.worker")


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    stop = stop or _stop_on_signals()
    client = await connect(settings)
    await ensure_search_attributes(client, settings.temporal_namespace)
    db = Database(settings.resolved_database_url)
    records = RecordActivities(db)
    transfer_runs = TransferRunActivities(db, settings.data_dir.resolve())
    max_activities = settings.worker_max_concurrent_activities
    with ThreadPoolExecutor(max_workers=max_activities) as executor:
        worker = Worker(
            client,
            task_queue=settings.task_queue,
            workflows=[BackfillWorkflow],
            activities=[*records.all(), transfer_runs.run_transfer],
            activity_executor=executor,
            max_concurrent_activities=max_activities,
            graceful_shutdown_timeout=timedelta(seconds=settings.worker_shutdown_grace_seconds),
        )
        async with worker:
            log.info("worker polling task queue %s", settings.task_queue)
            await stop.wait()
            log.info("worker stopping: draining activities in flight")
    log.info("worker stopped")


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(run_worker(get_settings()))


if __name__ == "__main__":
    main()
