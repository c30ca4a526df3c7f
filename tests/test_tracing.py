"""OpenTelemetry tracing: with BACKFILLS_OTLP_ENDPOINT set, one trace runs from the API's
request through the workflow it starts into each activity, exported over OTLP/HTTP; without
it, no interceptor and no exporter."""

import gzip
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from temporalio.contrib.opentelemetry import TracingInterceptor

from cli.devserver import free_port
from config import Settings
from observability.tracing import client_interceptors, setup_tracing, traces_url
from temporal_client import connect
from tests.support import Stack, new_tenant, spawn, stop, wait_for


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    trace_id: str


class OtlpReceiver:
    """A tiny OTLP/HTTP collector on 127.0.0.1 that keeps the spans it is sent."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.paths: set[str] = set()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                receiver.add(self.path, request)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def add(self, path: str, request: ExportTraceServiceRequest) -> None:
        received = []
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(
                        ReceivedSpan(
                            service=attributes.get("service.name", ""),
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                        )
                    )
        with self._lock:
            self.paths.add(path)
            self.spans.extend(received)

    def snapshot(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self.spans)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    yield receiver
    receiver.close()


@dataclass
class TracedStack:
    api_url: str
    http: httpx.Client
    team_id: int


@pytest.fixture
def traced(stack: Stack, receiver: OtlpReceiver) -> Iterator[TracedStack]:
    """An API and a worker of their own (own task queue), both tracing to the receiver."""
    api_port = free_port()
    env = {
        **stack.env,
        "BACKFILLS_TASK_QUEUE": f"backfills-traced-{uuid.uuid4().hex[:8]}",
        "BACKFILLS_API_PORT": str(api_port),
        "BACKFILLS_OTLP_ENDPOINT": receiver.endpoint,
        "BACKFILLS_WORKER_METRICS_PORT": "0",
        "BACKFILLS_TEMPORAL_METRICS_PORT": "0",
        "OTEL_BSP_SCHEDULE_DELAY": "200",  # export within 0.2 s rather than 5 s
        "NO_PROXY": ",".join(filter(None, ["127.0.0.1,localhost", os.environ.get("NO_PROXY")])),
    }
    worker = spawn(["worker"], env, stack.logs / f"traced-worker-{api_port}.log")
    api = spawn(["api"], env, stack.logs / f"traced-api-{api_port}.log")
    tenant = new_tenant(stack)
    api_url = f"http://127.0.0.1:{api_port}/v1"
    http = httpx.Client(
        base_url=api_url, headers={"Authorization": f"Bearer {tenant.token}"}, timeout=30
    )
    try:
        wait_for(lambda: _answers(f"http://127.0.0.1:{api_port}/readyz"), timeout=60)
        yield TracedStack(api_url=api_url, http=http, team_id=tenant.team_id)
    finally:
        http.close()
        tenant.http.close()
        stop(api)
        stop(worker)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_one_trace_spans_the_api_request_the_workflow_and_its_activities(
    traced: TracedStack, receiver: OtlpReceiver
) -> None:
    team = traced.team_id
    transfer = traced.http.post(
        f"/teams/{team}/transfers",
        json={
            "display_name": "traced",
            "source": {"type": "demo", "rows_per_day": 1},
            "destination": {"type": "sqlite"},
        },
    )
    assert transfer.status_code == 200, transfer.text
    transfer_id = transfer.json()["data"]["transfer_id"]
    created = traced.http.post(
        f"/teams/{team}/transfers/{transfer_id}/backfills",
        json={"range_start": "2024-08-01", "range_end": "2024-08-02"},
    )
    assert created.status_code == 200, created.text
    backfill_id = created.json()["data"]["transfer_backfill_id"]

    def completed() -> bool:
        backfill = traced.http.get(f"/teams/{team}/backfills/{backfill_id}").json()["data"]
        return bool(backfill["status"] == "COMPLETED")

    wait_for(completed, timeout=120)

    def start_trace() -> str | None:
        """The trace of the API's start of the workflow, once the worker's spans are in it."""
        spans = receiver.snapshot()
        for start in spans:
            if start.service == "backfills-api" and start.name == "StartWorkflow:Backfill":
                worker_spans = {
                    span.name
                    for span in spans
                    if span.trace_id == start.trace_id and span.service == "backfills-worker"
                }
                if {"RunWorkflow:Backfill", "RunActivity:run_transfer"} <= worker_spans:
                    return start.trace_id
        return None

    trace_id = wait_for(start_trace, timeout=60)

    in_trace = [span for span in receiver.snapshot() if span.trace_id == trace_id]
    api_names = {span.name for span in in_trace if span.service == "backfills-api"}
    worker_names = {span.name for span in in_trace if span.service == "backfills-worker"}
    assert "POST /v1/teams/{team_id}/transfers/{transfer_id}/backfills" in api_names, api_names
    assert "StartWorkflow:Backfill" in api_names
    assert {"RunWorkflow:Backfill", "RunActivity:run_transfer"} <= worker_names, worker_names
    assert receiver.paths == {"/v1/traces"}


def test_tracing_is_off_without_an_endpoint() -> None:
    settings = Settings(otlp_endpoint="")

    assert client_interceptors(settings) == []
    assert setup_tracing(settings, service_name="test") is False


def test_tracing_interceptor_is_installed_with_an_endpoint() -> None:
    interceptors = client_interceptors(Settings(otlp_endpoint="http://127.0.0.1:4318"))

    assert len(interceptors) == 1
    assert isinstance(interceptors[0], TracingInterceptor)


async def test_clients_get_the_interceptor_only_when_tracing(temporal_address: str) -> None:
    base = Settings(temporal_address=temporal_address, temporal_namespace="test-sqlite")

    plain = await connect(base)
    traced = await connect(base.model_copy(update={"otlp_endpoint": "http://127.0.0.1:4318"}))

    assert plain.config()["interceptors"] == []
    assert [type(i) for i in traced.config()["interceptors"]] == [TracingInterceptor]


def test_spans_go_to_the_collectors_traces_path() -> None:
    assert traces_url("http://collector:4318") == "http://collector:4318/v1/traces"
    assert traces_url("http://collector:4318/") == "http://collector:4318/v1/traces"
    assert traces_url("http://collector:4318/v1/traces") == "http://collector:4318/v1/traces"
