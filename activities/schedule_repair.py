"""The reconciler's second step: transfers' Temporal Schedules brought back in line with their
records after a crash between the two, an outage, or an operator's hand in the Temporal UI.

For every transfer that has a Schedule or should (persistence.schedules.transfers_to_schedule)
and every `transfer-<id>` Schedule Temporal lists:

- a change Temporal may not have yet (applied version behind) is applied;
- a Schedule missing for a scheduled transfer is made again; one of a transfer that has no
  schedule any more, or was removed, is deleted;
- a pause or unpause an operator made in the Temporal UI is taken into the record (checked by
  describing the Schedule first: a listing may lag).

Temporal's client side comes in as a `TransferSchedules` (temporal_schedules.py's
`TransferScheduleClient`), so that activities never import it. A transfer whose repair fails
is logged and tried again at the next round; the others go on.
"""

import asyncio
import logging
from collections.abc import Awaitable
from typing import Protocol

from persistence import schedules, transfers
from persistence.db import Database
from persistence.errors import NotFoundError
from persistence.models import Transfer
from persistence.schedules import ScheduleInTemporal

log = logging.getLogger("backfills.reconcile")


class TransferSchedules(Protocol):
    async def sync(self, transfer_id: int) -> None:
        """Apply the record's latest change to Temporal, and mark it applied."""
        ...

    async def apply(self, transfer: Transfer) -> None:
        """Make, change or delete the transfer's Schedule as `transfer` says."""
        ...

    async def listed(self) -> dict[int, ScheduleInTemporal]:
        """Every transfer Schedule Temporal lists, by transfer id (a hint: listing lags)."""
        ...

    async def described(self, transfer_id: int) -> ScheduleInTemporal | None:
        """The transfer's Schedule as Temporal has it now; None when there is none."""
        ...


async def repair_schedules(db: Database, temporal: TransferSchedules) -> int:
    """Repair every transfer Schedule out of line with its record; how many it repaired."""
    wanted = await asyncio.to_thread(schedules.transfers_to_schedule, db=db)
    listed = await temporal.listed()
    repaired = 0
    for transfer in wanted:
        assert transfer.id is not None
        repaired += await _guarded(transfer.id, _repair(db, temporal, transfer, listed))
    known = {transfer.id for transfer in wanted}
    for transfer_id in sorted(listed.keys() - known):
        repaired += await _guarded(transfer_id, _delete_orphan(db, temporal, transfer_id))
    return repaired


async def _guarded(transfer_id: int, repair: Awaitable[bool]) -> int:
    try:
        return int(await repair)
    except Exception as exc:  # Temporal or the database away: the next round tries again
        log.warning("could not repair transfer %s's schedule: %s", transfer_id, exc)
        return 0


async def _repair(
    db: Database,
    temporal: TransferSchedules,
    transfer: Transfer,
    listed: dict[int, ScheduleInTemporal],
) -> bool:
    assert transfer.id is not None
    if transfer.schedule_applied_version < transfer.schedule_version:
        await temporal.sync(transfer.id)
        return True
    should_exist = schedules.desired_schedule(transfer) is not None
    seen = listed.get(transfer.id)
    if should_exist and seen is not None and seen.paused == transfer.schedule_paused:
        return False
    if not should_exist and seen is None:
        return False
    actual = await temporal.described(transfer.id)
    if should_exist and actual is not None and actual.paused != transfer.schedule_paused:
        return await asyncio.to_thread(
            schedules.adopt_pause_from_temporal,
            db=db,
            transfer_id=transfer.id,
            version=transfer.schedule_version,
            paused=actual.paused,
            note=actual.note,
        )
    if should_exist == (actual is not None):
        return False  # the listing lagged; Temporal agrees with the record
    return await _apply_unless_changed(db, temporal, transfer)


async def _apply_unless_changed(
    db: Database, temporal: TransferSchedules, transfer: Transfer
) -> bool:
    """Apply `transfer` to Temporal, unless its record changed since it was read: a change
    in flight (a PATCH, a DELETE that took the Schedule away before removing the transfer)
    is its own writer's to apply. The record is read again before and after, so that a
    change landing meanwhile is applied after this repair and never undone by it."""
    assert transfer.id is not None
    if not _unchanged(await _read(db, transfer.id), transfer):
        return False
    await temporal.apply(transfer)
    after = await _read(db, transfer.id)
    if after is not None and not _unchanged(after, transfer):
        await temporal.apply(after)
    return True


async def _read(db: Database, transfer_id: int) -> Transfer | None:
    try:
        return await asyncio.to_thread(
            transfers.get_transfer_for_worker, db=db, transfer_id=transfer_id
        )
    except NotFoundError:
        return None


def _unchanged(now: Transfer | None, before: Transfer) -> bool:
    return (
        now is not None
        and now.schedule_version == before.schedule_version
        and now.removed_time == before.removed_time
    )


async def _delete_orphan(db: Database, temporal: TransferSchedules, transfer_id: int) -> bool:
    """A listed Schedule of a transfer that has no schedule: deleted, unless the transfer is
    not this service's (then it is left alone)."""
    try:
        transfer = await asyncio.to_thread(
            transfers.get_transfer_for_worker, db=db, transfer_id=transfer_id
        )
    except NotFoundError:
        return False
    if schedules.desired_schedule(transfer) is not None:
        return False
    await temporal.apply(transfer)
    return True
