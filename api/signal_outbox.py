"""Sending the outbox's signals (persistence/outbox.py) to the backfill workflows.

A route that changed a backfill starts sending that backfill's queued signals right after
its commit (`send_soon`) and answers without waiting for Temporal: the answer depends on the
database alone, and a slow or unreachable Temporal delays no change. `keep_sending` (a task
of the API's lifespan) sends again whatever Temporal did not take, so a change the database
accepted always reaches its workflow once Temporal is back, whichever API process made it
and even if that process died after its commit.
"""

import asyncio
import logging
from datetime import timedelta
from functools import partial

from temporalio.client import Client

from api.deps import AsyncDatabase
from api.temporal import TemporalConnection
from persistence import outbox
from persistence.db import Database
from persistence.outbox import PendingSignal
from temporal_client import send_queued_signal

log = logging.getLogger("backfills.api")
BATCH = 100
MAX_RETRY_SECONDS = 30.0


async def send_signals(
    database: AsyncDatabase, client: Client, *, backfill_id: int | None = None
) -> int:
    """Send the due signals (the backfill's when given), oldest first; how many went. The
    first that fails is postponed and ends the round: Temporal is likely down for all."""
    due = await database.run(
        lambda db: outbox.due_signals(db=db, limit=BATCH, backfill_id=backfill_id)
    )
    for sent, signal in enumerate(due):
        try:
            await send_queued_signal(client, signal)
        except Exception as exc:
            await _postpone(database, signal, exc)
            return sent
        await database.run(partial(_sent, signal.id))
    return len(due)


_sending: set["asyncio.Task[None]"] = set()  # held until done, so none is collected midway


def send_soon(database: AsyncDatabase, connection: TemporalConnection, backfill_id: int) -> None:
    """Send the backfill's queued signals now, beside the answer; what Temporal does not
    take stays queued for `keep_sending`."""
    task = asyncio.create_task(_send_quietly(database, connection, backfill_id))
    _sending.add(task)
    task.add_done_callback(_sending.discard)


async def _send_quietly(
    database: AsyncDatabase, connection: TemporalConnection, backfill_id: int
) -> None:
    try:
        await send_signals(database, await connection.client(), backfill_id=backfill_id)
    except Exception as exc:  # the outbox keeps them: keep_sending tries again
        log.warning("signals to backfill %s wait in the outbox: %s", backfill_id, exc)


async def keep_sending(
    database: AsyncDatabase, connection: TemporalConnection, every_seconds: float
) -> None:
    """Send the outbox's due signals every `every_seconds`, at once again after a full
    batch; never ends on an error (the database or Temporal being down only waits)."""
    while True:
        try:
            sent = await send_signals(database, await connection.client())
        except Exception as exc:  # the database or Temporal unreachable: try again later
            log.warning("could not send the signal outbox: %s", exc)
            sent = 0
        if sent < BATCH:
            await asyncio.sleep(every_seconds)


async def _postpone(database: AsyncDatabase, signal: PendingSignal, error: Exception) -> None:
    retry_in = timedelta(seconds=min(2.0**signal.attempts, MAX_RETRY_SECONDS))
    message = str(error) or type(error).__name__
    log.warning(
        "signal %s to backfill %s not sent (%s); sending it again in %gs",
        signal.name,
        signal.backfill_id,
        message,
        retry_in.total_seconds(),
    )
    await database.run(
        lambda db: outbox.signal_postponed(
            db=db, signal_id=signal.id, error=message, retry_in=retry_in
        )
    )


def _sent(signal_id: int, db: Database) -> None:
    outbox.signal_sent(db=db, signal_id=signal_id)
