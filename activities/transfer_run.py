"""The transfer-run activity: one `data_date` from the transfer's source into its destination."""

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError

from activities.bookkeeping import retried
from activities.heartbeats import heartbeating
from activities.inputs import (
    INTERNAL_RUN_ERROR,
    PERMANENT_RUN_ERROR,
    SUPERSEDED_ATTEMPT_ERROR,
    TRANSIENT_RUN_ERROR,
    RecurringRunInput,
    TransferRunInput,
    TransferRunResult,
)
from connectors.base import Fence, QueryDetail, RunContext
from connectors.budget import LoadBudget, SpoolBudget
from connectors.egress import EgressPolicy
from connectors.errors import AttemptSuperseded, ConnectorError, PermanentError, TransientError
from connectors.registry import InvalidConnectorSpec, parse_destination, parse_source
from connectors.secrets import IN_FLIGHT, Redactor, references, resolve
from connectors.warehouse import team_dir
from observability import worker_metrics as metrics
from persistence import recurring_runs, runs, secrets, transfers
from persistence.db import Database
from persistence.models import Transfer, TransferRun
from persistence.runs import StartedRun
from persistence.secret_box import SecretBox, UndecryptableSecret
from recurring.spec import data_date_of_firing
from statuses import QueryStatus, RunOutcome, RunStatus

PARTITION_POLL_SECONDS = 1.0  # how often a run waiting for its date's partition asks again


@dataclass(frozen=True)
class RunEnvironment:
    """What runs may reach beyond the service database, as the operator configured it."""

    data_dir: Path
    secret_box: SecretBox
    egress: EgressPolicy
    env_allowlist: frozenset[str] = frozenset()
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    load_budget: LoadBudget = field(default_factory=LoadBudget)  # shared by the runs
    spool_budget: SpoolBudget = field(default_factory=SpoolBudget)  # shared by the runs


class TransferRunActivities:
    def __init__(self, db: Database, environment: RunEnvironment) -> None:
        self.db = db
        self.environment = environment
        self._transfers: dict[int, Transfer] = {}

    @activity.defn(name="run_transfer")
    def run_transfer(self, input: TransferRunInput) -> TransferRunResult:
        """Run one date, unless it was cancelled or has already ended.

        The destination write replaces the date's partition, so an attempt retried after a
        crash between the write and the status update leaves one copy of the rows. A failure
        of the service itself (its database down, say) is retried like a transient one; what
        the run reports of it is only "internal error" and the run's id, the detail (which
        may hold the service's SQL, parameters and hosts) goes to the worker's log. A blip of
        the service database does not get that far: every call to it is `retried` within the
        attempt (activities/bookkeeping.py), so it costs no attempt of the run.

        Heartbeats come from a ticker thread for as long as the attempt works, so no blocking
        step can outlast the heartbeat timeout. An attempt that Temporal gave up on anyway,
        and that finds a newer attempt has begun the run, commits nothing and ends with the
        non-retryable SUPERSEDED_ATTEMPT_ERROR (Temporal ignores that attempt's result).
        """
        return self._guarded(lambda: self._run(input))

    @activity.defn(name="run_recurring_transfer")
    def run_recurring_transfer(self, input: RecurringRunInput) -> TransferRunResult:
        """Run one firing of the transfer's schedule: its Recurring run (made by the first
        attempt) loads the firing's data_date, exactly as `run_transfer` runs a backfill's
        date: the same connectors, partition replace, fence, retries and failure classes."""
        return self._guarded(lambda: self._run_recurring(input))

    def _guarded(self, attempt: Callable[[], TransferRunResult]) -> TransferRunResult:
        """Run `attempt`, heartbeating, with every error typed for the workflow."""
        try:
            with heartbeating():
                return attempt()
        except (ApplicationError, CancelledError):
            raise
        except AttemptSuperseded as exc:
            activity.logger.info("the run attempt stopped: %s", exc)
            raise ApplicationError(
                str(exc), type=SUPERSEDED_ATTEMPT_ERROR, non_retryable=True
            ) from None
        except Exception as exc:
            activity.logger.exception("the transfer run failed: %s", type(exc).__name__)
            raise ApplicationError(
                f"internal error (run {_run_ref()})", type=INTERNAL_RUN_ERROR
            ) from None

    def _run(self, input: TransferRunInput) -> TransferRunResult:
        info = activity.info()
        started = retried(
            runs.begin_run,
            db=self.db,
            backfill_id=input.backfill_id,
            data_date=input.data_date,
            queued_time=info.current_attempt_scheduled_time,
            attempt=info.attempt,
            external_id=f"{info.workflow_id}/{info.activity_id}",
        )

        def record() -> TransferRun:
            return retried(
                runs.get_run_for_worker,
                db=self.db,
                backfill_id=input.backfill_id,
                data_date=input.data_date,
            )

        return self._carry_out(started, input.transfer_id, input.data_date, record)

    def _run_recurring(self, input: RecurringRunInput) -> TransferRunResult:
        info = activity.info()
        data_date = data_date_of_firing(
            input.firing_time, input.time_zone, input.data_date_offset_days
        )
        started = retried(
            recurring_runs.begin_recurring_run,
            db=self.db,
            team_id=input.team_id,
            transfer_id=input.transfer_id,
            firing_time=input.firing_time,
            data_date=data_date,
            queued_time=info.current_attempt_scheduled_time,
            attempt=info.attempt,
            external_id=f"{info.workflow_id}/{info.activity_id}",
        )

        def record() -> TransferRun:
            return retried(
                recurring_runs.get_run_of_firing,
                db=self.db,
                transfer_id=input.transfer_id,
                firing_time=input.firing_time,
            )

        return self._carry_out(started, input.transfer_id, data_date, record)

    def _carry_out(
        self,
        started: StartedRun | None,
        transfer_id: int,
        data_date: date,
        record: Callable[[], TransferRun],
    ) -> TransferRunResult:
        """Extract and load the run `started` (None: it has ended, `record` says how)."""
        if started is None:
            return _recorded_outcome(record())
        if not started.writing:
            self._wait_for_partition(started, data_date)
        if activity.info().attempt == 1:
            metrics.RUNS_STARTED.inc()
        attempt_started = time.monotonic()
        try:
            rows, details = self._move(transfer_id, data_date, self._fence(started))
        except ConnectorError as exc:
            duration = time.monotonic() - attempt_started
            metrics.RUN_DURATION.labels("failed").observe(duration)
            metrics.RUN_ATTEMPT_FAILURES.labels("transient" if exc.retryable else "permanent").inc()
            self._record_failure(started, exc, duration)
            raise ApplicationError(
                str(exc),
                type=TRANSIENT_RUN_ERROR if exc.retryable else PERMANENT_RUN_ERROR,
                non_retryable=not exc.retryable,
            ) from None
        completed = retried(
            runs.complete_run,
            db=self.db,
            run_id=started.run_id,
            attempt=started.attempt,
            total_rows=rows,
            query_details=details,
        )
        if not completed:
            return _completion_refused(record(), started)
        metrics.RUNS_COMPLETED.inc()
        metrics.RUN_DURATION.labels("completed").observe(time.monotonic() - attempt_started)
        return TransferRunResult(outcome=RunOutcome.COMPLETED, rows=rows)

    def _wait_for_partition(self, started: StartedRun, data_date: date) -> None:
        """Wait (heartbeating) while another run of the same transfer and date writes its
        partition: a backfill's run and a Recurring one never replace it at once, and the
        later one's rows are what stays. A cancel of this attempt (worker shutdown) ends the
        wait; the run stays RUNNING for the next attempt."""
        activity.logger.info(
            "run %s waits: another run of transfer %s writes %s",
            started.run_id,
            started.transfer_id,
            data_date,
        )
        while not retried(
            runs.claim_partition,
            db=self.db,
            run_id=started.run_id,
            transfer_id=started.transfer_id,
            data_date=data_date,
        ):
            activity.wait_for_cancelled_sync(timeout=PARTITION_POLL_SECONDS)
            if activity.is_cancelled():
                raise CancelledError("cancelled while waiting for the date's partition")

    def _fence(self, started: StartedRun) -> Fence:
        """The connectors' `still_current` for this attempt (see connectors/base.py)."""

        def still_current() -> None:
            try:
                current = retried(
                    runs.is_current_attempt,
                    db=self.db,
                    run_id=started.run_id,
                    attempt=started.attempt,
                )
            except SQLAlchemyError as exc:  # the service's own error, not the destination's
                raise FenceUnknown(type(exc).__name__) from exc
            if not current:
                raise AttemptSuperseded(
                    f"attempt {started.attempt} of run {started.run_id} was superseded by a "
                    "newer attempt, or the run ended; it commits nothing"
                )

        return still_current

    def _move(
        self, transfer_id: int, data_date: date, fence: Fence
    ) -> tuple[int, list[dict[str, object]]]:
        """Extract and load; every error leaves as a ConnectorError with secrets redacted.

        An error no connector foresaw is logged here with its detail and reported to the
        user only as an internal error with the run's id: its text may hold the service's
        own paths, hosts or SQL.
        """
        transfer = self._transfer(transfer_id)
        redact = Redactor()
        try:
            values = self._secret_values(transfer)
            source_spec, source_secrets = resolve(transfer.source, values)
            destination_spec, destination_secrets = resolve(transfer.destination, values)
            redact = Redactor({**source_secrets.secrets, **destination_secrets.secrets})
            with IN_FLIGHT.held(redact):
                source = parse_source(source_spec).build()
                destination = parse_destination(destination_spec).build()
                context = RunContext(
                    team_dir=team_dir(self.environment.data_dir, transfer.team_id),
                    transfer_id=transfer_id,
                    heartbeat=activity.heartbeat,
                    egress=self.environment.egress,
                    still_current=fence,
                    load_budget=self.environment.load_budget,
                    spool_budget=self.environment.spool_budget,
                )
                extract = source.extract(data_date, context)
                try:  # the records stream from the source into the load, a batch at a time
                    rows = destination.replace_partition(data_date, extract.records, context)
                finally:
                    extract.close()
        except (AttemptSuperseded, CancelledError):
            raise  # a newer attempt has the run, or Temporal cancelled this one (shutdown)
        except ConnectorError as exc:
            details = _redacted(exc.query_details, redact) if exc.query_details else None
            raise type(exc)(redact(str(exc)), query_details=details) from None
        except InvalidConnectorSpec as exc:
            raise PermanentError(redact(f"invalid transfer configuration: {exc}")) from None
        except Exception as exc:
            with IN_FLIGHT.held(redact):
                activity.logger.exception("unexpected %s in a transfer run", type(exc).__name__)
            raise TransientError(f"internal error (run {_run_ref()})") from None
        return rows, [asdict(detail) for detail in _redacted(extract.query_details, redact)]

    def _secret_values(self, transfer: Transfer) -> dict[str, str]:
        """The values the transfer's references may resolve to: the team's own secrets,
        then the worker variables the operator allowlists."""
        names = references(transfer.source) | references(transfer.destination)
        if not names:
            return {}
        environment = self.environment
        allowed = {
            name: environment.environ[name]
            for name in names & environment.env_allowlist
            if name in environment.environ
        }
        try:
            team_values = retried(
                secrets.secret_values,
                db=self.db,
                box=environment.secret_box,
                team_id=transfer.team_id,
                names=names,
            )
        except UndecryptableSecret as exc:
            raise PermanentError(
                f"the secret ${{{exc}}} cannot be decrypted with the service's keys; "
                "set its value again"
            ) from None
        return {**allowed, **team_values}

    def _transfer(self, transfer_id: int) -> Transfer:
        """The transfer's configuration, read once per worker: a transfer never changes after
        it is created (there is no update; removal keeps the record)."""
        transfer = self._transfers.get(transfer_id)
        if transfer is None:
            transfer = retried(
                transfers.get_transfer_for_worker, db=self.db, transfer_id=transfer_id
            )
            if len(self._transfers) >= 1024:
                self._transfers.clear()
            self._transfers[transfer_id] = transfer
        return transfer

    def _record_failure(self, started: StartedRun, error: ConnectorError, duration: float) -> None:
        details = error.query_details or [
            QueryDetail(
                status=QueryStatus.FAILED, rows=0, duration=duration, error_description=str(error)
            )
        ]
        retried(
            runs.record_attempt_error,
            db=self.db,
            run_id=started.run_id,
            attempt=started.attempt,
            message=str(error),
            query_details=[asdict(detail) for detail in details],
        )


class FenceUnknown(Exception):
    """The fence could not read the run's record: the load rolls back, the attempt fails as
    an internal error (never as the destination's)."""


def _completion_refused(run: TransferRun, started: StartedRun) -> TransferRunResult:
    """complete_run refused: a newer attempt has begun the run, or the record has ended
    (by this very attempt, when its commit's answer was lost and the call retried)."""
    if run.attempts != started.attempt or run.status == RunStatus.RUNNING:
        raise AttemptSuperseded(
            f"attempt {started.attempt} of run {started.run_id} was superseded by attempt "
            f"{run.attempts}"
        )
    return _recorded_outcome(run)


def _recorded_outcome(run: TransferRun) -> TransferRunResult:
    """The outcome the record holds for a run that has ended already, not counted again.

    An attempt that committed COMPLETED and then lost its worker is retried by Temporal:
    the retry must report what the record says (COMPLETED, with its rows), or the
    workflow's counts would call it skipped while the record says completed.
    """
    if run.status == RunStatus.COMPLETED:
        return TransferRunResult(outcome=RunOutcome.COMPLETED, rows=run.total_rows)
    if run.status == RunStatus.FAILED:
        return TransferRunResult(outcome=RunOutcome.FAILED)
    return TransferRunResult(outcome=RunOutcome.SKIPPED)


def _run_ref() -> str:
    info = activity.info()
    return f"{info.workflow_id}/{info.activity_id}, attempt {info.attempt}"


def _redacted(details: list[QueryDetail], redact: Redactor) -> list[QueryDetail]:
    """Query details as shown to users: their error texts redacted like the run's message."""
    return [
        replace(detail, error_description=redact(detail.error_description))
        if detail.error_description
        else detail
        for detail in details
    ]
