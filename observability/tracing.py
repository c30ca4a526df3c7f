"""OpenTelemetry tracing across API -> workflow -> activity, when `BACKFILLS_OTLP_ENDPOINT`
is set (off otherwise: no provider, no interceptor, no cost).

The endpoint is an OTLP/HTTP collector's base URL (`http://collector:4318`); spans go to
its `/v1/traces`. The API's request spans come from FastAPI's own OpenTelemetry support,
which switches on once a tracer provider is set; Temporal's `TracingInterceptor` on every
client (and so on the worker built from it) carries the trace into the workflow it starts
and from there into each activity. Each process names itself in `service.name`.
"""

import logging

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from temporalio.client import Interceptor
from temporalio.contrib.opentelemetry import TracingInterceptor

from config import Settings

log = logging.getLogger("backfills.tracing")
TRACES_PATH = "/v1/traces"
_configured = False


def traces_url(endpoint: str) -> str:
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith(TRACES_PATH) else endpoint + TRACES_PATH


def setup_tracing(settings: Settings, service_name: str) -> bool:
    """Export this process's spans to the OTLP endpoint; False (and nothing done) without one.

    Only the first call in a process sets the provider (OpenTelemetry allows one)."""
    global _configured
    if not settings.otlp_endpoint:
        return False
    if not _configured:
        provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        exporter = OTLPSpanExporter(endpoint=traces_url(settings.otlp_endpoint))
        provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        _configured = True
        log.info("tracing to %s as %s", traces_url(settings.otlp_endpoint), service_name)
    return True


def client_interceptors(settings: Settings) -> list[Interceptor]:
    """The Temporal client's interceptors: the tracing one when tracing is on."""
    return [TracingInterceptor()] if settings.otlp_endpoint else []
