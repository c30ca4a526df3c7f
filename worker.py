"""A backfill worker: `python worker.py` or `backfills worker`.

Stateless: run as many as you like, on any machines, against the same Temporal namespace,
task queues and database. A process serves the runs queue (the workflows and the transfer
runs, `worker_max_concurrent_activities` slots), the records queue (the bookkeeping
activities, `worker_max_concurrent_record_activities` slots of their own, so that runs holding
every run slot never delay a cancel or a close), the recurring queue (the recurring runs'
workflows and transfer runs, `worker_max_concurrent_recurring_activities` slots, so that no
backfill delays a schedule's firing), or any of them (default: all three):
`BACKFILLS_WORKER_QUEUES`, or `backfills worker --queues runs,records,recurring`; each queue
has its own Temporal worker and thread pool, started and drained together.

SIGTERM or SIGINT stops polling and lets the activities in flight finish, up to
BACKFILLS_WORKER_SHUTDOWN_GRACE_SECONDS; then Temporal's worker cancels those still running,
and a run that heeds the cancel (between its heartbeats) fails its attempt, which Temporal
retries elsewhere. The process exits 0 once every activity has ended. One blocked where no
cancel reaches it (a call waiting in a socket or on a lock) never keeps it alive: a few
seconds after the grace period its attempt is handed back to Temporal as failed, retried
elsewhere at once (or, should Temporal not take it, after its heartbeat timeout), and the
process ends without joining the blocked threads, with exit status 3 (EXIT_BLOCKED). Nothing
is left half-written: the retry replaces the date's partition, so each date ends with one copy
of its rows.

A metrics port already in use, or a missing secrets key, stops it at start with a message and
exit 1; settings that do not validate (an unknown queue, say) with exit 2.
"""

import asyncio
import logging
import os
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NoReturn

from pydantic import ValidationError
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
    Worker,
)

from activities.reconcile import ReconcileActivities
from activities.records import RecordActivities
from activities.transfer_run import RunEnvironment, TransferRunActivities
from config import WORKER_QUEUES, Settings, get_settings
from connectors.budget import LoadBudget, SpoolBudget
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
from temporal_schedules import TransferScheduleClient
from workflows.backfill import BackfillWorkflow
from workflows.reconciler import ReconcilerWorkflow
from workflows.recurring import RecurringRunWorkflow

log = logging.getLogger("backfills.worker")

SHUTDOWN_MARGIN_SECONDS = 5.0  # after the grace period, for cancelled activities to end
THREAD_EXIT_SECONDS = 1.0  # for the pools' idle threads to end once shut down
HAND_BACK_SECONDS = 3.0  # for Temporal to take back an attempt that is still blocked
EXIT_BLOCKED = 3  # the exit status when activities were still blocked after the grace period
WORKER_STOPPED = "WorkerStopped"  # the failure type of an attempt handed back at shutdown
DEFAULT_POOL = "worker-default"


@dataclass(frozen=True)
class Drain:
    """How a worker's drain ended. `complete`: every activity in flight finished in time, or
    was cancelled after the grace period and gave up (its attempt failed, so Temporal retries
    it). Otherwise threads are still blocked where a cancel cannot reach them (a call waiting
    on a socket or a lock): `blocked_activities` were handed back to Temporal as failed
    attempts, which it retries elsewhere at once (failing that, after their heartbeat
    timeout), and the process must end without waiting for those threads."""

    complete: bool
    blocked_threads: int = 0
    blocked_activities: tuple[str, ...] = ()


class InFlight(Interceptor):
    """The activities this process is running, by task token, so that those still blocked
    when the drain ends can be handed back to Temporal."""

    def __init__(self) -> None:
        self._running: dict[bytes, str] = {}

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _InFlightInbound(next, self._running)

    async def hand_back(self, client: Client) -> tuple[str, ...]:
        """Fail each attempt still running, so that Temporal retries it now rather than after
        its heartbeat timeout; bounded, since Temporal may be unreachable too. Answers what
        they were."""
        error = ApplicationError(
            "the worker stopped before this attempt ended", type=WORKER_STOPPED
        )
        running = dict(self._running)
        handles = [client.get_async_activity_handle(task_token=token) for token in running]
        results = await asyncio.gather(
            *(h.fail(error, rpc_timeout=timedelta(seconds=HAND_BACK_SECONDS)) for h in handles),
            return_exceptions=True,
        )
        for what, result in zip(running.values(), results, strict=True):
            if isinstance(result, BaseException):
                log.warning(
                    "could not hand back %s (%s): Temporal retries it after its heartbeat timeout",
                    what,
                    result,
                )
        return tuple(running.values())


class _InFlightInbound(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, running: dict[bytes, str]) -> None:
        super().__init__(next)
        self._running = running

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        self._running[info.task_token] = (
            f"{info.activity_type} of {info.workflow_id} (attempt {info.attempt})"
        )
        try:
            return await self.next.execute_activity(input)
        finally:
            self._running.pop(info.task_token, None)


async def run_worker(
    settings: Settings, stop: asyncio.Event | None = None, *, exit_when_blocked: bool = False
) -> Drain:
    """Serve until `stop` (SIGTERM or SIGINT by default), then drain (see `Drain`).

    With `exit_when_blocked` (the worker process), a drain that leaves threads blocked ends
    the process at once, with status EXIT_BLOCKED, even while an error is being raised: its
    normal exit would wait for those threads forever."""
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
    reconciler = ReconcileActivities(
        db,
        BackfillWorkflowClient(client, settings),
        TransferScheduleClient(client, settings, db),
    )
    bookkeeping = [*records.all(), reconciler.reconcile]
    grace = settings.worker_shutdown_grace_seconds
    in_flight = InFlight()
    # Our own pools (the first for asyncio.to_thread), never joined after the grace period:
    # a thread blocked in I/O must not keep the process alive.
    pools = {DEFAULT_POOL: ThreadPoolExecutor(thread_name_prefix=DEFAULT_POOL)}
    asyncio.get_running_loop().set_default_executor(pools[DEFAULT_POOL])
    workers = []
    for queue in WORKER_QUEUES:
        if queue not in settings.worker_queues:
            continue
        if queue == "runs":
            # Workflows started before the records queue existed schedule their
            # bookkeeping here, on the workflow's own queue: it is served here too.
            name, slots = settings.task_queue, settings.worker_max_concurrent_activities
            workflows: list[type] = [BackfillWorkflow, ReconcilerWorkflow]
            activities = [transfer_runs.run_transfer, *bookkeeping]
        elif queue == "records":
            name = settings.resolved_records_task_queue
            slots = settings.worker_max_concurrent_record_activities
            workflows, activities = [], bookkeeping
        else:
            name = settings.resolved_recurring_task_queue
            slots = settings.worker_max_concurrent_recurring_activities
            workflows, activities = [RecurringRunWorkflow], [transfer_runs.run_recurring_transfer]
        pool = pools[f"{queue}-activity"] = ThreadPoolExecutor(slots, f"{queue}-activity")
        workers.append(
            Worker(
                client,
                task_queue=name,
                workflows=workflows,
                activities=activities,
                activity_executor=pool,
                max_concurrent_activities=slots,
                graceful_shutdown_timeout=timedelta(seconds=grace),
                interceptors=[TeamContextInterceptor(), in_flight],
            )
        )
        log.info("worker polling task queue %s (%s, %d slots)", name, queue, slots)
    running = [asyncio.create_task(worker.run()) for worker in workers]
    try:
        await ensure_reconciler(client, settings)
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait([stopping, *running], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
    finally:
        log.info("worker stopping: draining activities in flight (up to %gs)", grace)
        drain = await _drain(workers, running, pools, in_flight, client, grace)
        if exit_when_blocked and not drain.complete:
            _exit_leaving_blocked_threads(drain)
    for task in running:  # a worker that failed (not one that was cut short) fails us
        error = None if task.cancelled() else task.exception()
        if error is not None:
            raise error
    return drain


async def _drain(
    workers: list[Worker],
    running: list[asyncio.Task[None]],
    pools: dict[str, ThreadPoolExecutor],
    in_flight: InFlight,
    client: Client,
    grace: float,
) -> Drain:
    """Stop polling and wait for the activities in flight: the Temporal workers cancel the
    ones still running after `grace`, and those that heed the cancel end soon after."""
    shutdown = asyncio.gather(*(worker.shutdown() for worker in workers))
    done, _ = await asyncio.wait([shutdown], timeout=grace + SHUTDOWN_MARGIN_SECONDS)
    for pool in pools.values():
        pool.shutdown(wait=False, cancel_futures=True)
    blocked = _threads_alive(tuple(pools), within=THREAD_EXIT_SECONDS)
    if done and not blocked:
        await asyncio.gather(*running, return_exceptions=True)
        log.info("worker stopped")
        return Drain(complete=True)
    activities = await in_flight.hand_back(client)
    return Drain(complete=False, blocked_threads=len(blocked), blocked_activities=activities)


def _threads_alive(names: tuple[str, ...], *, within: float) -> list[threading.Thread]:
    """The threads of the pools named `names` still running after `within` seconds (the
    others end once their pool is shut down)."""
    prefixes = tuple(f"{name}_" for name in names)  # ThreadPoolExecutor names them so
    ours = [thread for thread in threading.enumerate() if thread.name.startswith(prefixes)]
    deadline = time.monotonic() + within
    for thread in ours:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [thread for thread in ours if thread.is_alive()]


def run_environment(settings: Settings) -> RunEnvironment:
    """What the operator lets runs reach: raises SecretsKeyError without a usable key."""
    return RunEnvironment(
        data_dir=settings.data_dir.resolve(),
        secret_box=load_secret_box(settings),
        egress=EgressPolicy.from_settings(settings),
        env_allowlist=frozenset(settings.worker_env_allowlist),
        load_budget=LoadBudget.of_mib(settings.worker_memory_budget_mib),
        spool_budget=SpoolBudget.of_mib(settings.worker_spool_budget_mib),
    )


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


def main(queues: list[str] | None = None, processes: int | None = None) -> None:
    """Run a worker, or `processes` of them (default BACKFILLS_WORKER_PROCESSES) under a
    supervisor (worker_pool.py); `queues` (from `backfills worker --queues`) overrides
    BACKFILLS_WORKER_QUEUES. Settings that do not validate: a message and exit 2."""
    try:
        settings = get_settings()
        if queues is not None:
            settings = Settings.model_validate({**settings.model_dump(), "worker_queues": queues})
    except ValidationError as exc:
        print(f"backfills worker: invalid settings: {exc}", file=sys.stderr)
        sys.exit(2)
    setup_logging(settings)
    count = processes or settings.worker_processes
    if count > 1:
        from worker_pool import run_worker_processes

        _exit_now(run_worker_processes(settings, count, queues))
    try:
        asyncio.run(run_worker(settings, exit_when_blocked=True))
    except (SecretsKeyError, MetricsPortError) as exc:
        print(f"backfills worker: {exc}", file=sys.stderr)
        _exit_now(1)
    _exit_now(0)


def _exit_leaving_blocked_threads(drain: Drain) -> NoReturn:
    """End the process now: a normal exit would join the blocked threads (the pools' own
    exit hook does), that is wait for them forever."""
    log.warning(
        "worker stopped with %d threads still blocked after the grace period; what they ran "
        "goes back to Temporal, to be retried elsewhere: %s",
        drain.blocked_threads,
        "; ".join(drain.blocked_activities) or "none running",
    )
    _exit_now(EXIT_BLOCKED)


def _exit_now(code: int) -> NoReturn:
    """Flush what was logged and end the process without the interpreter's finalization:
    the Temporal core's threads can still call into Python while it finalizes, which
    aborts the process (`PyGILState_Release`, exit -6) after a clean drain or a refused
    start alike."""
    logging.shutdown()  # flushes every handler
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
