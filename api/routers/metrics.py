"""Prometheus metrics, outside `/v1` and without a token (see `api/metrics.py`)."""

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    operation_id="metrics",
    summary="Prometheus metrics of this API process",
    include_in_schema=False,  # Prometheus' text format, for scrapers rather than API clients
)
def metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
