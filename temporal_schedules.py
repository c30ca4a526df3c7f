"""Transfers' Temporal Schedules: one Schedule `transfer-<id>` per scheduled transfer, made,
changed, paused and deleted to say what the transfer's record says (persistence/schedules.py).

Each firing starts a `RecurringRun` workflow on the recurring task queue (its own slots, so no
backfill can delay it). Firings of one transfer never overlap: one that finds the previous
still running is buffered (BUFFER_ALL), never dropped nor run beside it; firings missed while
the service was down are caught up within the catchup window, oldest first.

`sync` brings one transfer's Schedule in line with its record and marks the record's version
applied. It reads the record again afterwards and goes round once more if the record changed
meanwhile, so that of two syncs racing (the API's and the reconciler's) the last to apply
applies the newest version.
"""

import asyncio
import logging
from datetime import datetime, timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from config import Settings
from persistence import schedules, transfers
from persistence.db import Database
from persistence.models import RunType, Transfer
from persistence.schedules import ScheduleInTemporal
from recurring.spec import Schedule as TransferSchedule
from recurring.spec import temporal_spec
from temporal_client import RPC_TIMEOUT, run_policy
from workflows import search_attributes
from workflows.inputs import RecurringInput
from workflows.recurring import RecurringRunWorkflow

log = logging.getLogger("backfills.schedules")
SCHEDULE_PREFIX = "transfer-"
NEXT_FIRINGS = 5
MAX_SYNC_ROUNDS = 5


def schedule_id(transfer_id: int) -> str:
    return f"{SCHEDULE_PREFIX}{transfer_id}"


def transfer_of_schedule(schedule: str) -> int | None:
    """The transfer id of a Schedule id `transfer-<id>`; None for any other Schedule."""
    number = schedule.removeprefix(SCHEDULE_PREFIX)
    return int(number) if schedule.startswith(SCHEDULE_PREFIX) and number.isdigit() else None


def recurring_input(
    settings: Settings, transfer: Transfer, spec: TransferSchedule
) -> RecurringInput:
    assert transfer.id is not None
    return RecurringInput(
        team_id=transfer.team_id,
        transfer_id=transfer.id,
        time_zone=spec.time_zone,
        data_date_offset_days=spec.data_date_offset_days,
        run_policy=run_policy(settings),
        records_task_queue=settings.resolved_records_task_queue,
    )


def _pause_note(transfer: Transfer) -> str:
    if not transfer.schedule_paused:
        return ""
    return transfer.schedule_paused_reason or "paused over the API"


def temporal_schedule(settings: Settings, transfer: Transfer, spec: TransferSchedule) -> Schedule:
    """The Temporal Schedule the transfer's record asks for."""
    assert transfer.id is not None
    return Schedule(
        action=ScheduleActionStartWorkflow(
            RecurringRunWorkflow.run,
            recurring_input(settings, transfer, spec),
            id=f"recurring-{transfer.id}",  # Temporal appends each firing's time
            task_queue=settings.resolved_recurring_task_queue,
            typed_search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(search_attributes.TEAM_ID, transfer.team_id),
                    SearchAttributePair(search_attributes.TRANSFER_ID, transfer.id),
                    SearchAttributePair(search_attributes.RUN_TYPE, RunType.RECURRING),
                ]
            ),
            static_summary=f"Recurring run of transfer {transfer.id}",
        ),
        spec=temporal_spec(spec),
        policy=SchedulePolicy(
            overlap=ScheduleOverlapPolicy.BUFFER_ALL,
            catchup_window=timedelta(seconds=settings.schedule_catchup_window_seconds),
        ),
        state=ScheduleState(paused=transfer.schedule_paused, note=_pause_note(transfer)),
    )


async def apply(client: Client, settings: Settings, transfer: Transfer) -> None:
    """Make, change or delete the transfer's Schedule as its record says."""
    assert transfer.id is not None
    wanted = schedules.desired_schedule(transfer)
    if wanted is None:
        await remove_schedule(client, transfer.id)
        return
    schedule = temporal_schedule(settings, transfer, TransferSchedule.model_validate(wanted))
    try:
        await client.create_schedule(
            schedule_id(transfer.id),
            schedule,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(search_attributes.TEAM_ID, transfer.team_id),
                    SearchAttributePair(search_attributes.TRANSFER_ID, transfer.id),
                ]
            ),
            rpc_timeout=RPC_TIMEOUT,
        )
    except ScheduleAlreadyRunningError:

        def replaced(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        handle = client.get_schedule_handle(schedule_id(transfer.id))
        await handle.update(replaced, rpc_timeout=RPC_TIMEOUT)


async def remove_schedule(client: Client, transfer_id: int) -> None:
    """Delete the transfer's Schedule; nothing to do when there is none."""
    try:
        await client.get_schedule_handle(schedule_id(transfer_id)).delete(rpc_timeout=RPC_TIMEOUT)
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise


async def sync(client: Client, settings: Settings, db: Database, transfer_id: int) -> None:
    """Bring the transfer's Schedule in line with its record, and mark the record applied.

    Raises what Temporal raised (unreachable, say): the record stays unapplied and the
    reconciler applies it later."""
    for _ in range(MAX_SYNC_ROUNDS):
        transfer = await asyncio.to_thread(
            transfers.get_transfer_for_worker, db=db, transfer_id=transfer_id
        )
        if transfer.schedule_applied_version >= transfer.schedule_version:
            return
        await apply(client, settings, transfer)
        await asyncio.to_thread(
            schedules.mark_schedule_applied,
            db=db,
            transfer_id=transfer_id,
            version=transfer.schedule_version,
        )
    log.warning("transfer %s's schedule kept changing while it was applied", transfer_id)


async def next_firings(client: Client, transfer_id: int) -> list[datetime]:
    """The next times the transfer's Schedule fires (none while paused)."""
    handle = client.get_schedule_handle(schedule_id(transfer_id))
    description = await handle.describe(rpc_timeout=RPC_TIMEOUT)
    if description.schedule.state.paused:
        return []
    return list(description.info.next_action_times[:NEXT_FIRINGS])


async def listed_schedules(client: Client) -> dict[int, ScheduleInTemporal]:
    """Every transfer Schedule Temporal lists, by transfer id (a hint: listing lags)."""
    found: dict[int, ScheduleInTemporal] = {}
    async for listed in await client.list_schedules(rpc_timeout=RPC_TIMEOUT):
        transfer_id = transfer_of_schedule(listed.id)
        if transfer_id is None:
            continue
        state = listed.schedule.state if listed.schedule is not None else None
        found[transfer_id] = ScheduleInTemporal(
            paused=bool(state and state.paused), note=(state.note or "") if state else ""
        )
    return found


async def described_schedule(client: Client, transfer_id: int) -> ScheduleInTemporal | None:
    """The transfer's Schedule as Temporal has it now (unlike a listing); None if none."""
    handle = client.get_schedule_handle(schedule_id(transfer_id))
    try:
        state = (await handle.describe(rpc_timeout=RPC_TIMEOUT)).schedule.state
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return ScheduleInTemporal(paused=state.paused, note=state.note or "")


class TransferScheduleClient:
    """Transfers' Schedules as the reconcile activity drives them (its `TransferSchedules`):
    the worker makes one and passes it in, so that activities never import this module."""

    def __init__(self, client: Client, settings: Settings, db: Database) -> None:
        self.client = client
        self.settings = settings
        self.db = db

    async def sync(self, transfer_id: int) -> None:
        await sync(self.client, self.settings, self.db, transfer_id)

    async def apply(self, transfer: Transfer) -> None:
        await apply(self.client, self.settings, transfer)

    async def listed(self) -> dict[int, ScheduleInTemporal]:
        return await listed_schedules(self.client)

    async def described(self, transfer_id: int) -> ScheduleInTemporal | None:
        return await described_schedule(self.client, transfer_id)
