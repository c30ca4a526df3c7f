"""A transfer's schedule as the record holds it, and how far Temporal has caught up with it.

The record is the truth; Temporal's Schedule `transfer-<id>` follows it. Every change to a
transfer's schedule, its pause, or its removal bumps `schedule_version` in the transaction
that makes it; whoever then brings the Schedule in line (the API at once, the reconciler after
a crash or an outage in between) marks that version applied. A transfer whose applied version
lags its version is one whose Schedule may be out of date, so nothing is forgotten.
"""

from dataclasses import dataclass
from typing import Any

from sqlmodel import col, or_, select, update

from persistence.clock import utcnow
from persistence.db import Database
from persistence.errors import InvalidStateError
from persistence.models import Transfer
from persistence.transfers import team_transfer_row

PAUSED_IN_TEMPORAL = "paused in the Temporal UI"


@dataclass(frozen=True)
class ScheduleInTemporal:
    """A transfer's Schedule as Temporal has it: whether it is paused, and its note."""

    paused: bool
    note: str


@dataclass(frozen=True)
class ScheduleChange:
    """What a PATCH changes: `replace` the schedule with `schedule` (None removes it), and
    or else `paused` (True pauses, False resumes) with an optional reason."""

    replace: bool = False
    schedule: dict[str, Any] | None = None
    paused: bool | None = None
    paused_reason: str | None = None


def change_schedule(
    *, db: Database, team_id: int, transfer_id: int, change: ScheduleChange
) -> Transfer:
    """Apply `change` to the team's transfer; InvalidStateError when pausing or resuming a
    transfer without a schedule. A new schedule keeps the pause; removing one ends it."""
    with db.write() as session:
        transfer = team_transfer_row(session, team_id=team_id, transfer_id=transfer_id, lock=True)
        if change.replace:
            transfer.schedule = change.schedule
            if change.schedule is None:
                _set_pause(transfer, paused=False, reason=None)
        if change.paused is not None:
            if transfer.schedule is None:
                raise InvalidStateError("the transfer has no schedule to pause or resume")
            _set_pause(transfer, paused=change.paused, reason=change.paused_reason)
        transfer.schedule_version += 1
        session.flush()
        return transfer


def _set_pause(transfer: Transfer, *, paused: bool, reason: str | None) -> None:
    if paused and not transfer.schedule_paused:
        transfer.schedule_paused_time = utcnow()
    transfer.schedule_paused = paused
    transfer.schedule_paused_reason = reason if paused else None
    if not paused:
        transfer.schedule_paused_time = None


def desired_schedule(transfer: Transfer) -> dict[str, Any] | None:
    """The schedule Temporal should run for the transfer: none once it is removed."""
    return None if transfer.removed_time is not None else transfer.schedule


def mark_schedule_applied(*, db: Database, transfer_id: int, version: int) -> None:
    """Temporal's Schedule now says what version `version` of the record says."""
    with db.write() as session:
        session.exec(
            update(Transfer)
            .where(
                col(Transfer.id) == transfer_id,
                col(Transfer.schedule_applied_version) < version,
            )
            .values(schedule_applied_version=version)
        )


def transfers_to_schedule(*, db: Database) -> list[Transfer]:
    """Every transfer that has a Schedule or should: scheduled and not removed, or with a
    change Temporal may not have (a removal, say) since its last apply."""
    with db.read() as session:
        query = select(Transfer).where(
            or_(
                (col(Transfer.schedule).is_not(None)) & (col(Transfer.removed_time).is_(None)),
                col(Transfer.schedule_applied_version) < col(Transfer.schedule_version),
            )
        )
        return list(session.exec(query.order_by(col(Transfer.id))))


def adopt_pause_from_temporal(
    *, db: Database, transfer_id: int, version: int, paused: bool, note: str
) -> bool:
    """An operator paused or unpaused the Schedule in the Temporal UI: the record takes it,
    unless the record changed since (version `version`, applied), in which case the record
    wins at the next apply. True if the record took it."""
    reason = (note or PAUSED_IN_TEMPORAL) if paused else None
    with db.write() as session:
        adopted = session.exec(
            update(Transfer)
            .where(
                col(Transfer.id) == transfer_id,
                col(Transfer.schedule_version) == version,
                col(Transfer.schedule_applied_version) == version,
                col(Transfer.schedule).is_not(None),
            )
            .values(
                schedule_paused=paused,
                schedule_paused_reason=reason,
                schedule_paused_time=utcnow() if paused else None,
                schedule_version=version + 1,
                schedule_applied_version=version + 1,
            )
        )
        return bool(adopted.rowcount)
