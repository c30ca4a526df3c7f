"""The transfer-run activity: one `data_date` from the transfer's source into its destination."""

import time
from dataclasses import asdict
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
from connectors.errors import ConnectorError, PermanentError
from connectors.registry import InvalidConnectorSpec, parse_destination, parse_source
from persistence import runs, transfers
from persistence.db import Database


class TransferRunActivities:
    def __init__(self, db: Database, data_dir: Path) -> None:
        self.db = db
        self.data_dir = data_dir

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
        activity.heartbeat()
        attempt_started = time.monotonic()
        try:
            rows, details = self._move(input)
        except ConnectorError as exc:
            failed = QueryDetail(
                status="FAILED",
                rows=0,
                duration=time.monotonic() - attempt_started,
                error_description=str(exc),
            )
            runs.record_attempt_error(
                db=self.db, run_id=started.run_id, message=str(exc), query_details=[asdict(failed)]
            )
            raise ApplicationError(
                str(exc),
                type=TRANSIENT_RUN_ERROR if exc.retryable else PERMANENT_RUN_ERROR,
                non_retryable=not exc.retryable,
            ) from None
        runs.complete_run(db=self.db, run_id=started.run_id, total_rows=rows, query_details=details)
        return TransferRunResult(outcome=RunOutcome.COMPLETED, rows=rows)

    def _move(self, input: TransferRunInput) -> tuple[int, list[dict[str, object]]]:
        transfer = transfers.get_transfer_for_run(db=self.db, transfer_id=input.transfer_id)
        try:
            source = parse_source(transfer.source).build()
            destination = parse_destination(transfer.destination).build()
        except InvalidConnectorSpec as exc:
            raise PermanentError(f"invalid transfer configuration: {exc}") from None
        context = RunContext(
            data_dir=self.data_dir, transfer_id=input.transfer_id, heartbeat=activity.heartbeat
        )
        extract = source.extract(input.data_date, context)
        activity.heartbeat()
        rows = destination.replace_partition(input.data_date, extract.records, context)
        return rows, [asdict(detail) for detail in extract.query_details]
