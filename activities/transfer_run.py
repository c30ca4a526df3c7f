"""The transfer-run activity: one `data_date` from the transfer's source into its destination."""

import os
import time
from dataclasses import asdict, replace
from pathlib import Path

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.inputs import (
    PERMANENT_RUN_ERROR,
    TRANSIENT_RUN_ERROR,
    RunOutcome,
    TransferRunInput,
    TransferRunResult,
)
from connectors.base import QueryDetail, RunContext
from connectors.errors import ConnectorError, PermanentError, TransientError
from connectors.registry import InvalidConnectorSpec, parse_destination, parse_source
from connectors.secrets import Redactor, resolve
from observability import worker_metrics as metrics
from persistence import runs, transfers
from persistence.db import Database
from persistence.models import Transfer


class TransferRunActivities:
    def __init__(self, db: Database, data_dir: Path) -> None:
        self.db = db
        self.data_dir = data_dir
        self._transfers: dict[int, Transfer] = {}

    @activity.defn(name="run_transfer")
    def run_transfer(self, input: TransferRunInput) -> TransferRunResult:
        """Run one date, unless it was cancelled or has already ended.

        The destination write replaces the date's partition, so an attempt retried after a
        crash between the write and the status update leaves one copy of the rows.
        """
        info = activity.info()
        started = runs.begin_run(
            db=self.db,
            backfill_id=input.backfill_id,
            data_date=input.data_date,
            queued_time=info.current_attempt_scheduled_time,
            attempt=info.attempt,
            external_id=f"{info.workflow_id}/{info.activity_id}",
        )
        if started is None:
            return TransferRunResult(outcome=RunOutcome.SKIPPED)
        if info.attempt == 1:
            metrics.RUNS_STARTED.inc()
        attempt_started = time.monotonic()
        try:
            rows, details = self._move(input)
        except ConnectorError as exc:
            duration = time.monotonic() - attempt_started
            metrics.RUN_DURATION.labels("failed").observe(duration)
            metrics.RUN_ATTEMPT_FAILURES.labels("transient" if exc.retryable else "permanent").inc()
            self._record_failure(started.run_id, exc, duration)
            raise ApplicationError(
                str(exc),
                type=TRANSIENT_RUN_ERROR if exc.retryable else PERMANENT_RUN_ERROR,
                non_retryable=not exc.retryable,
            ) from None
        if runs.complete_run(
            db=self.db, run_id=started.run_id, total_rows=rows, query_details=details
        ):
            metrics.RUNS_COMPLETED.inc()
        metrics.RUN_DURATION.labels("completed").observe(time.monotonic() - attempt_started)
        return TransferRunResult(outcome=RunOutcome.COMPLETED, rows=rows)

    def _move(self, input: TransferRunInput) -> tuple[int, list[dict[str, object]]]:
        """Extract and load; every error leaves as a ConnectorError with secrets redacted."""
        transfer = self._transfer(input.transfer_id)
        redact = Redactor()
        try:
            source_spec, source_secrets = resolve(transfer.source, os.environ)
            destination_spec, destination_secrets = resolve(transfer.destination, os.environ)
            redact = Redactor({**source_secrets.secrets, **destination_secrets.secrets})
            source = parse_source(source_spec).build()
            destination = parse_destination(destination_spec).build()
            context = RunContext(
                data_dir=self.data_dir, transfer_id=input.transfer_id, heartbeat=activity.heartbeat
            )
            extract = source.extract(input.data_date, context)
            activity.heartbeat()
            rows = destination.replace_partition(input.data_date, extract.records, context)
        except ConnectorError as exc:
            details = _redacted(exc.query_details, redact) if exc.query_details else None
            raise type(exc)(redact(str(exc)), query_details=details) from None
        except InvalidConnectorSpec as exc:
            raise PermanentError(redact(f"invalid transfer configuration: {exc}")) from None
        except Exception as exc:
            activity.logger.warning("unexpected %s in a transfer run", exc.__class__.__name__)
            raise TransientError(redact(f"{exc.__class__.__name__}: {exc}")) from None
        return rows, [asdict(detail) for detail in _redacted(extract.query_details, redact)]

    def _transfer(self, transfer_id: int) -> Transfer:
        """The transfer's configuration, read once per worker: a transfer never changes after
        it is created (there is no update; removal keeps the record)."""
        transfer = self._transfers.get(transfer_id)
        if transfer is None:
            transfer = transfers.get_transfer_for_run(db=self.db, transfer_id=transfer_id)
            if len(self._transfers) >= 1024:
                self._transfers.clear()
            self._transfers[transfer_id] = transfer
        return transfer

    def _record_failure(self, run_id: int, error: ConnectorError, duration: float) -> None:
        details = error.query_details or [
            QueryDetail(status="FAILED", rows=0, duration=duration, error_description=str(error))
        ]
        runs.record_attempt_error(
            db=self.db,
            run_id=run_id,
            message=str(error),
            query_details=[asdict(detail) for detail in details],
        )


def _redacted(details: list[QueryDetail], redact: Redactor) -> list[QueryDetail]:
    """Query details as shown to users: their error texts redacted like the run's message."""
    return [
        replace(detail, error_description=redact(detail.error_description))
        if detail.error_description
        else detail
        for detail in details
    ]
