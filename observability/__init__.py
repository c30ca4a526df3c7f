"""Logs, metrics and traces shared by the API and the worker.

- `logs`: structured (JSON) or plain log lines, with the ids of what is being worked on.
- `worker_metrics`: the worker's Prometheus metrics and its two metrics endpoints.
- `tracing`: OpenTelemetry over OTLP/HTTP when `BACKFILLS_OTLP_ENDPOINT` is set.

The API's own metrics live in `api/metrics.py`.
"""
