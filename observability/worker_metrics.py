"""The worker's Prometheus metrics, and the two endpoints that serve them.

`http://<BACKFILLS_METRICS_HOST>:<BACKFILLS_WORKER_METRICS_PORT>/metrics` (default 9464) has
this worker's figures:

- `backfills_runs_started_total`: runs whose first attempt began on this worker;
- `backfills_runs_completed_total`, `backfills_runs_failed_total`: runs that ended so on
  this worker (each run is counted once across all workers: the database says which
  worker's status update ended it);
- `backfills_run_attempt_failures_total{kind="transient"|"permanent"}`: failed attempts
  (a transient one is retried, a permanent one fails its run at once);
- `backfills_run_duration_seconds{outcome="completed"|"failed"}`: each attempt's duration;
- `backfills_backfills{status}`: how many backfills have each status now, read from the
  database when scraped. Every worker reports the same (global) figures: aggregate them
  with `max`, not `sum`.

Counters of one process start at zero with it; Prometheus' `rate` and `increase` allow for
that. `http://<host>:<BACKFILLS_TEMPORAL_METRICS_PORT>/metrics` (default 9465) has the
Temporal SDK's own metrics of this worker (task slots, poll and schedule latencies, ...).
Either port set to 0 turns its endpoint off. A port already taken stops the worker at start
(`MetricsPortError`): carrying on would leave whoever scrapes that port reading another
process's figures.

These metrics live in `WORKER_REGISTRY`, not in prometheus_client's default registry: the
API imports the activities (and so this module) too, and its `/metrics` serves the default
registry, where these would show as zeros that nothing ever counts.
"""

import logging
from collections.abc import Iterator

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlmodel import col, select
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from config import Settings
from observability.logs import temporal_core_logging
from persistence.db import Database
from persistence.models import Backfill
from statuses import BackfillStatus

log = logging.getLogger("backfills.worker")
disable_created_metrics()  # no `_created` twin of every series

WORKER_REGISTRY = CollectorRegistry()
# The process_* and python_* figures of the default registry, for this worker's endpoint too.
for _standard in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    WORKER_REGISTRY.register(_standard)

RUNS_STARTED = Counter(
    "backfills_runs_started",
    "Transfer runs whose first attempt began on this worker.",
    registry=WORKER_REGISTRY,
)
RUNS_COMPLETED = Counter(
    "backfills_runs_completed", "Transfer runs completed on this worker.", registry=WORKER_REGISTRY
)
RUNS_FAILED = Counter(
    "backfills_runs_failed",
    "Transfer runs failed (after their retries) on this worker.",
    registry=WORKER_REGISTRY,
)
RUN_ATTEMPT_FAILURES = Counter(
    "backfills_run_attempt_failures",
    "Failed transfer-run attempts: transient ones are retried, permanent ones are not.",
    ["kind"],
    registry=WORKER_REGISTRY,
)
RUN_DURATION = Histogram(
    "backfills_run_duration_seconds",
    "Duration of each transfer-run attempt.",
    ["outcome"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
    registry=WORKER_REGISTRY,
)


class MetricsPortError(Exception):
    """A metrics endpoint could not listen on its port (most often: another process holds
    it). The worker must not start then."""

    def __init__(self, what: str, address: str, setting: str, reason: object) -> None:
        super().__init__(
            f"{what} cannot listen on {address}: {reason}. "
            f"Set {setting} to a free port, or to 0 to turn this endpoint off."
        )


class BackfillStatusCollector(Collector):
    """`backfills_backfills{status}`, counted in the database at each scrape. A scrape whose
    read fails repeats the last counts (and logs it) rather than drop the series."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.last_counts: dict[str, int] | None = None

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield self._family()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        query = select(Backfill.status, func.count()).group_by(col(Backfill.status))
        try:
            with self.db.read() as session:
                counts = dict(session.exec(query).all())
        except Exception as exc:
            log.warning("backfills by status not counted: %s", exc.__class__.__name__)
            if self.last_counts is None:
                return
            counts = self.last_counts  # a scrape during a database hiccup keeps the series
        self.last_counts = counts
        family = self._family()
        for status in BackfillStatus:
            family.add_metric([status.value], counts.get(status.value, 0))
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "backfills_backfills", "Backfills by status, in the database.", labels=["status"]
        )


_collector: BackfillStatusCollector | None = None


def serve_worker_metrics(settings: Settings, db: Database) -> bool:
    """Serve this worker's metrics on the worker metrics port; False when that port is 0.
    Raises MetricsPortError when the port is in use."""
    global _collector
    if settings.worker_metrics_port == 0:
        return False
    if _collector is None:  # before the server starts: its first scrape must have it
        _collector = BackfillStatusCollector(db)
        WORKER_REGISTRY.register(_collector)
    address = f"{settings.metrics_host}:{settings.worker_metrics_port}"
    try:
        start_http_server(
            settings.worker_metrics_port, addr=settings.metrics_host, registry=WORKER_REGISTRY
        )
    except OSError as exc:
        raise MetricsPortError(
            "the worker's metrics endpoint",
            address,
            "BACKFILLS_WORKER_METRICS_PORT",
            exc.strerror or exc,
        ) from None
    log.info("worker metrics on http://%s/metrics", address)
    return True


def worker_runtime(settings: Settings) -> Runtime:
    """The worker's Temporal runtime: one serving the SDK's metrics on the Temporal metrics
    port, or the default runtime when that port is 0. Raises MetricsPortError when the port
    is in use. Core's logs go through Python logging either way (`setup_logging` gives the
    default runtime that too)."""
    if not settings.temporal_metrics_port:
        return Runtime.default()
    address = f"{settings.metrics_host}:{settings.temporal_metrics_port}"
    metrics = PrometheusConfig(
        bind_address=address, counters_total_suffix=True, durations_as_seconds=True
    )
    try:
        runtime = Runtime(
            telemetry=TelemetryConfig(logging=temporal_core_logging(), metrics=metrics)
        )
    except ValueError as exc:  # how the SDK says it could not bind
        raise MetricsPortError(
            "the Temporal SDK metrics endpoint", address, "BACKFILLS_TEMPORAL_METRICS_PORT", exc
        ) from None
    log.info("Temporal SDK metrics on http://%s/metrics", address)
    return runtime
