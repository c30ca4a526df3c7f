"""Backfills as callers see them (`BackfillOut`): the row with its error report, runs in
flight, effective cap and estimated end, for any number of backfills in a bounded number of
queries, one per kind: error reports, runs in flight, the transfers' caps, the backfills'
latest run durations, and their transfers' for those that have none yet."""

from collections.abc import Iterator
from datetime import UTC, datetime

from api.estimates import RECENT_RUNS, estimated_end_time
from api.schemas.backfills import BackfillOut
from persistence import runs, transfers
from persistence.db import Database
from persistence.models import Backfill
from statuses import ACTIVE_BACKFILL_STATUSES


def backfill_views(db: Database, found: list[Backfill]) -> list[BackfillOut]:
    """`found` as they are, those that have started re-read with their runs in flight in
    one snapshot: counts read before the runs in flight could miss a run that ended between
    the two reads. (One not started had no run in flight when it was read.)"""
    started = [b.id for b in found if b.id and b.start_time is not None]
    now = runs.with_runs_in_flight(db=db, backfill_ids=started)
    found = [now[b.id][0] if b.id in now else b for b in found]
    running = {backfill_id: count for backfill_id, (_, count) in now.items()}
    with_failures = [b.id for b in found if b.id and b.transfer_runs_failed]
    reports = runs.error_reports(db=db, backfill_ids=with_failures)
    caps = transfers.concurrency_caps(
        db=db, transfer_ids=sorted({b.transfer_id for b in found if not b.max_concurrent_runs})
    )
    ends = _estimated_ends(db, [b for b in found if _estimating(b)], caps)
    return [
        BackfillOut.of(
            b,
            reports.get(b.id or 0, []),
            running.get(b.id or 0, 0),
            transfer_max_concurrent_runs=caps.get(b.transfer_id, 1),
            estimated_end_time=ends.get(b.id or 0),
        )
        for b in found
    ]


def backfill_views_in_chunks(
    db: Database, found: list[Backfill], *, max_errors: int = 20_000, max_backfills: int = 100
) -> Iterator[list[BackfillOut]]:
    """`backfill_views` of `found`, a few at a time: as many as hold about `max_errors`
    error-report entries (one backfill at least), so a list of large reports is never
    all in memory at once."""
    chunk: list[Backfill] = []
    errors = 0
    for backfill in found:
        if chunk and (
            len(chunk) == max_backfills or errors + backfill.transfer_runs_failed > max_errors
        ):
            yield backfill_views(db, chunk)
            chunk, errors = [], 0
        chunk.append(backfill)
        errors += backfill.transfer_runs_failed
    if chunk:
        yield backfill_views(db, chunk)


def remaining_runs(backfill: Backfill) -> int:
    """Dates whose run has not ended yet (planned or not, in flight or waiting)."""
    ended = (
        backfill.transfer_runs_completed
        + backfill.transfer_runs_failed
        + backfill.transfer_runs_cancelled
    )
    return max(0, backfill.transfer_runs_total - ended)


def _estimating(backfill: Backfill) -> bool:
    """An end is estimated only while runs can still start: not paused, not ended."""
    return (
        backfill.status in ACTIVE_BACKFILL_STATUSES
        and not backfill.paused
        and remaining_runs(backfill) > 0
    )


def _estimated_ends(
    db: Database, estimating: list[Backfill], caps: dict[int, int]
) -> dict[int, datetime | None]:
    own = runs.recent_durations_by_backfill(
        db=db, backfill_ids=[b.id for b in estimating if b.id], per_backfill=RECENT_RUNS
    )
    without = sorted({b.transfer_id for b in estimating if not own.get(b.id or 0)})
    inherited = runs.recent_durations_by_transfer(
        db=db, transfer_ids=without, per_transfer=RECENT_RUNS
    )
    now = datetime.now(UTC)
    return {
        b.id: estimated_end_time(
            remaining=remaining_runs(b),
            max_concurrent_runs=b.max_concurrent_runs or caps.get(b.transfer_id, 1),
            durations=own.get(b.id) or inherited.get(b.transfer_id, []),
            now=now,
        )
        for b in estimating
        if b.id is not None
    }
