"""Which process exports which metrics: the API's `/metrics` has the API's own, a worker's
endpoint the worker's (the API imports the activities too, yet never counts a run). And a
worker whose metrics port is taken does not start: a scraper of that port would otherwise
read another process's figures."""

import socket
import subprocess
import uuid
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cli.devserver import free_port
from tests.support import Stack, spawn, stop, wait_for

WORKER_FAMILIES = {
    "backfills_runs_started",
    "backfills_runs_completed",
    "backfills_runs_failed",
    "backfills_run_attempt_failures",
    "backfills_run_duration_seconds",
    "backfills_backfills",
}
API_FAMILIES = {"backfills_http_requests", "backfills_http_request_duration_seconds"}
PORT_SETTINGS = ("BACKFILLS_WORKER_METRICS_PORT", "BACKFILLS_TEMPORAL_METRICS_PORT")


def families(url: str) -> set[str] | None:
    """The metric families `url` exports, or None while nothing answers there."""
    try:
        response = httpx.get(url, timeout=5)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    return {family.name for family in text_string_to_metric_families(response.text)}


def worker_env(stack: Stack, **ports: int) -> dict[str, str]:
    """The stack's worker settings on a task queue of its own, metrics on loopback."""
    return {
        **stack.env,
        "BACKFILLS_TASK_QUEUE": f"backfills-endpoints-{uuid.uuid4().hex[:8]}",
        "BACKFILLS_METRICS_HOST": "127.0.0.1",
        **{setting: str(ports.get(setting, 0)) for setting in PORT_SETTINGS},
    }


@pytest.fixture
def worker_metrics_url(stack: Stack) -> Iterator[str]:
    port = free_port()
    env = worker_env(stack, BACKFILLS_WORKER_METRICS_PORT=port)
    process = spawn(["worker"], env, stack.logs / f"worker-endpoints-{port}.log")
    try:
        yield f"http://127.0.0.1:{port}/metrics"
    finally:
        stop(process)


def test_the_api_exports_only_its_own_metrics(stack: Stack) -> None:
    exported = families(stack.api_url.removesuffix("/v1") + "/metrics")

    assert exported is not None
    assert exported >= API_FAMILIES
    assert not exported & WORKER_FAMILIES, exported & WORKER_FAMILIES


def test_a_worker_exports_its_own_metrics_and_not_the_apis(worker_metrics_url: str) -> None:
    exported = wait_for(lambda: families(worker_metrics_url), timeout=60)

    assert exported >= WORKER_FAMILIES, WORKER_FAMILIES - exported
    assert not exported & API_FAMILIES
    assert "process_cpu_seconds" in exported  # the process figures it always had


@pytest.mark.parametrize("setting", PORT_SETTINGS)
def test_a_worker_whose_metrics_port_is_taken_does_not_start(stack: Stack, setting: str) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        log = stack.logs / f"worker-port-taken-{port}.log"
        process = spawn(["worker"], worker_env(stack, **{setting: port}), log)
        try:
            returncode = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            stop(process)
            raise AssertionError(f"the worker started anyway:\n{log.read_text()}") from None

    output = log.read_text()
    assert returncode != 0, output
    assert f"127.0.0.1:{port}" in output, output
    assert setting in output, output
    assert "or to 0 to turn this endpoint off" in output, output
    assert "Traceback" not in output, output
