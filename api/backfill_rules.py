"""The rules a backfill must keep to be created, in one place: create enforces them and dry
run reports them, with the same messages, so the two cannot drift apart."""

from dataclasses import dataclass
from datetime import UTC, date, datetime

from persistence import backfills
from persistence.db import Database

UNPROCESSABLE = "UNPROCESSABLE_ENTITY"
CONFLICT = "CONFLICT_ERROR"


@dataclass(frozen=True)
class Refusal:
    """Why a create would be refused: the code and message its 422 would carry."""

    code: str
    message: str
    overlapping_backfill_id: int | None = None


def range_refusal(
    range_start: date, range_end: date, *, max_range_days: int, today: date | None = None
) -> str | None:
    """What is wrong with the range, if anything (the first problem found)."""
    if range_end < range_start:
        return "range_end is before range_start"
    today = today or datetime.now(UTC).date()
    if range_end > today:
        return f"the range reaches into the future (today is {today} UTC)"
    days = (range_end - range_start).days + 1
    if days > max_range_days:
        return f"the range covers {days} days; at most {max_range_days} are allowed"
    return None


def refusals(
    *,
    db: Database,
    team_id: int,
    transfer_id: int,
    range_start: date,
    range_end: date,
    max_range_days: int,
) -> list[Refusal]:
    """Every reason a create of this range would be refused now, in the order create checks
    them (it answers the first): the range rules, then an overlap with an incomplete
    backfill of the transfer (not looked for when the range ends before it starts)."""
    found = []
    problem = range_refusal(range_start, range_end, max_range_days=max_range_days)
    if problem is not None:
        found.append(Refusal(UNPROCESSABLE, problem))
    if range_start <= range_end:
        overlapping = backfills.overlapping_backfill(
            db=db,
            team_id=team_id,
            transfer_id=transfer_id,
            range_start=range_start,
            range_end=range_end,
        )
        if overlapping is not None:
            message = backfills.overlap_message(overlapping, transfer_id)
            found.append(Refusal(CONFLICT, message, overlapping_backfill_id=overlapping))
    return found
