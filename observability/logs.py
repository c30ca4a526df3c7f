"""Log lines: one JSON object each (`BACKFILLS_LOG_FORMAT=json`, the default) or plain text
(`text`, the default of `backfills dev`, which prefixes each line with the part that wrote it).

A JSON line has `time` (UTC, ISO 8601), `level`, `logger` and `message`, then the ids known
where it was written, and `exception` (the traceback) when there is one:

- in the API: `request_id` (the `X-Request-Id` answered), and `team_id`, `transfer_id`,
  `backfill_id`, `workflow_id` when the request's path names them;
- in the worker: `workflow_id` and `backfill_id` (from the workflow id `backfill-<id>`),
  `activity` and `attempt`, from Temporal's activity or workflow context, and `team_id` for
  the lines of a transfer run (`observability.activity_context`).

`backfills api`, `backfills worker` (and `python worker.py`) and `backfills dev` call
`setup_logging` once, first thing.
"""

import json
import logging
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from temporalio import activity, workflow
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

from config import Settings
from connectors.secrets import IN_FLIGHT, mask_url_passwords

ContextProvider = Callable[[], Mapping[str, object]]
_providers: list[ContextProvider] = []
_HANDLER_NAME = "backfills"
_runtime_set = False


def add_context_provider(provider: ContextProvider) -> None:
    """Add fields to every line: `provider()` is called for each record, in its context."""
    if provider not in _providers:
        _providers.append(provider)


def backfill_id_of(workflow_id: str | None) -> int | None:
    """The backfill of the workflow id `backfill-<id>`; None for any other workflow."""
    prefix, _, number = (workflow_id or "").partition("-")
    return int(number) if prefix == "backfill" and number.isdigit() else None


def context_fields(record: logging.LogRecord | None = None) -> dict[str, object]:
    """The ids known where `record` was written: providers', then Temporal's."""
    fields: dict[str, object] = {}
    for provider in _providers:
        try:
            fields.update(provider())
        except Exception:  # a log line must never fail for want of its context
            continue
    fields.update(_temporal_fields(record))
    return {key: value for key, value in fields.items() if value is not None}


def _temporal_fields(record: logging.LogRecord | None) -> dict[str, object]:
    details: Mapping[str, Any] | None = None
    if record is not None:
        details = getattr(record, "temporal_activity", None) or getattr(
            record, "temporal_workflow", None
        )
    if details is None and activity.in_activity():
        info = activity.info()
        details = {
            "workflow_id": info.workflow_id,
            "activity_type": info.activity_type,
            "attempt": info.attempt,
        }
    if not details:
        return {}
    workflow_id = details.get("workflow_id")
    return {
        "workflow_id": workflow_id,
        "backfill_id": backfill_id_of(workflow_id),
        "activity": details.get("activity_type"),
        "attempt": details.get("attempt") if "activity_type" in details else None,
    }


def redacted(line: str) -> str:
    """A finished log line without the secret values of the runs in flight, nor a password
    inside a URL: applied to every line, whichever library wrote it."""
    return mask_url_passwords(IN_FLIGHT.redact(line))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": redacted(record.getMessage()),
        }
        for key, value in context_fields(record).items():
            entry.setdefault(key, value)
        if record.exc_info:
            entry["exception"] = redacted(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = redacted(self.formatStack(record.stack_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`time level logger message`, then the known ids as `key=value`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = context_fields(record)
        if not fields:
            return redacted(line)
        first, newline, rest = line.partition("\n")
        ids = " ".join(f"{key}={value}" for key, value in fields.items())
        return redacted(f"{first} [{ids}]{newline}{rest}")


def setup_logging(settings: Settings) -> None:
    """Send every logger's records to stderr in the configured format, replacing our own
    handler if this runs again (other handlers are left alone)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == _HANDLER_NAME:
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    logging.captureWarnings(True)
    # httpx logs every request's full URL at INFO; a URL may carry a resolved secret.
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
    # The ids go into fields of their own; Temporal would otherwise append them to messages.
    activity.logger.activity_info_on_message = False
    workflow.logger.workflow_info_on_message = False
    global _runtime_set
    if not _runtime_set:
        Runtime.set_default(
            Runtime(telemetry=TelemetryConfig(logging=temporal_core_logging())),
            error_if_already_set=False,
        )
        _runtime_set = True


def temporal_core_logging() -> LoggingConfig:
    """Temporal Core's (Rust) warnings through Python logging, so they share the format."""
    return LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
        forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
    )
