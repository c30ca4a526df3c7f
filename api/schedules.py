"""What the transfer routes do with Temporal's Schedules: apply a change at once (the record
is already committed; what Temporal does not take now, the reconciler applies later), read the
next firings, and delete a transfer's Schedule before the transfer."""

import asyncio
import logging
from datetime import datetime

from api.deps import AsyncDatabase
from api.errors import service_unavailable
from api.schemas.transfers import TransferOut
from api.temporal import TemporalConnection
from config import Settings
from persistence import transfers
from persistence.models import Transfer
from temporal_schedules import next_firings, remove_schedule, sync

log = logging.getLogger("backfills.api")
APPLY_TIMEOUT_SECONDS = 10.0


async def schedule_now(
    transfer: Transfer, database: AsyncDatabase, temporal: TemporalConnection, settings: Settings
) -> TransferOut:
    """Apply the transfer's latest schedule change to Temporal, and answer the transfer as
    it then stands (`schedule_state.applied` false if Temporal did not take it now)."""
    assert transfer.id is not None
    transfer_id = transfer.id
    if transfer.schedule_version > transfer.schedule_applied_version:
        try:
            await asyncio.wait_for(
                sync(await temporal.client(), settings, database.blocking, transfer_id),
                timeout=APPLY_TIMEOUT_SECONDS,
            )
        except Exception as exc:  # the reconciler applies it once Temporal answers
            log.warning("transfer %s's schedule is not applied yet: %s", transfer_id, exc)
        transfer = await database.run(
            lambda db: transfers.get_transfer_for_worker(db=db, transfer_id=transfer_id)
        )
    return await with_next_firings(transfer, temporal)


async def with_next_firings(transfer: Transfer, temporal: TemporalConnection) -> TransferOut:
    """The transfer, with its Schedule's next firings when it has one Temporal can tell of."""
    assert transfer.id is not None
    firings: list[datetime] | None = None
    applied = transfer.schedule_applied_version >= transfer.schedule_version
    if transfer.schedule is not None and transfer.removed_time is None and applied:
        try:
            firings = await next_firings(await temporal.client(), transfer.id)
        except Exception as exc:
            log.info("no next firings of transfer %s: %s", transfer.id, exc)
    return TransferOut.of(transfer, next_firings=firings)


async def delete_schedule_first(transfer: Transfer, temporal: TemporalConnection) -> None:
    """Delete the transfer's Schedule before the transfer goes: a Schedule never fires for
    a removed transfer. 503 while Temporal cannot be reached (then nothing is deleted)."""
    assert transfer.id is not None
    if transfer.schedule is None and transfer.schedule_applied_version == 0:
        return
    try:
        await remove_schedule(await temporal.client(), transfer.id)
    except Exception as exc:
        log.warning("could not delete transfer %s's schedule: %s", transfer.id, exc)
        raise service_unavailable("Temporal") from None
