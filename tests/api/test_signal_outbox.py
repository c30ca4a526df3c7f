"""A change the database accepted always reaches the workflow: when Temporal does not take
the signal at the PATCH, and when the API dies between its commit and the signal (the
change and its queued signal are in the database; any API process sends it)."""

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select
from temporalio.client import Client

from api.deps import AsyncDatabase
from api.signal_outbox import send_signals
from persistence import backfills, outbox
from persistence.models import QueuedSignal
from temporal_client import workflow_id
from tests.api.test_ambiguous_start import api_of_its_own
from tests.api.test_backfill_control import SLOW, cancel_at_end
from tests.conftest import QUIET_NAMESPACE
from tests.persistence.test_backfills import Owner
from tests.persistence.test_backfills import owner as owner  # the fixture
from tests.persistence.test_backfills_control import create
from tests.support import Stack, Tenant, wait_for, wait_for_async
from tests.temporal_proxy import SilenceableProxy, silenceable_proxy

__all__ = ["cancel_at_end"]  # a fixture


@pytest.fixture
def proxy(temporal_address: str) -> Iterator[SilenceableProxy]:
    with silenceable_proxy(temporal_address) as proxy:
        yield proxy


async def workflow_paused(temporal_client: Client, backfill_id: int) -> Any:
    progress = await temporal_client.get_workflow_handle(workflow_id(backfill_id)).query("progress")
    return progress if progress["paused"] else None


async def test_a_signal_temporal_does_not_take_stays_queued_until_it_does(
    owner: Owner, proxy: SilenceableProxy
) -> None:
    """The sending itself, on a database of its own (no API process sends its signals):
    a failed send keeps the signal, postponed; once Temporal answers it goes (here the
    workflow does not exist, which counts as sent: there is nobody left to tell)."""
    backfill = create(owner)
    assert backfill.id is not None
    backfills.change_control(
        db=owner.db,
        team_id=owner.team_id,
        backfill_id=backfill.id,
        paused=True,
        signal_workflow=True,
    )
    database = AsyncDatabase(owner.db)
    client = await Client.connect(proxy.address, namespace=QUIET_NAMESPACE)
    proxy.down.set()
    assert await send_signals(database, client, backfill_id=backfill.id) == 0
    with owner.db.read() as session:
        [kept] = session.exec(
            select(QueuedSignal).where(col(QueuedSignal.backfill_id) == backfill.id)
        )
    assert kept.id is not None and kept.attempts == 1 and kept.last_error

    proxy.down.clear()
    outbox.signal_postponed(db=owner.db, signal_id=kept.id, error="", retry_in=timedelta(0))
    assert await send_signals(database, client, backfill_id=backfill.id) == 1
    assert outbox.pending_signal_count(db=owner.db, backfill_id=backfill.id) == 0


async def test_a_change_committed_by_an_api_that_died_is_sent_by_another(
    stack: Stack, tenant: Tenant, temporal_client: Client, cancel_at_end: list[int]
) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=1, **SLOW)
    backfill_id = tenant.create_backfill(transfer_id, "2024-06-01", "2024-06-20")[
        "transfer_backfill_id"
    ]
    cancel_at_end.append(backfill_id)
    wait_for(lambda: tenant.backfill(backfill_id)["transfer_runs_running"] == 1)

    # what a PATCH commits before its process dies: the change and its queued signal
    backfills.change_control(
        db=stack.db,
        team_id=tenant.team_id,
        backfill_id=backfill_id,
        paused=True,
        paused_reason="committed, then the API died",
        signal_workflow=True,
    )

    progress = await wait_for_async(
        lambda: workflow_paused(temporal_client, backfill_id), within=60
    )
    assert progress["paused_reason"] == "committed, then the API died"
    assert outbox.pending_signal_count(db=stack.db, backfill_id=backfill_id) == 0


def test_a_cancel_answers_at_its_commit_while_temporal_holds_its_answers(
    stack: Stack, tmp_path: Path
) -> None:
    """The PATCH answers from the database alone: when its answer arrives, the cancel's
    signal is still queued and not yet tried (Temporal has not answered the send), and the
    workflow still gets it."""
    with (
        silenceable_proxy(stack.temporal_address) as proxy,
        api_of_its_own(stack, tmp_path, BACKFILLS_TEMPORAL_ADDRESS=proxy.address) as tenant,
    ):
        transfer_id = tenant.create_transfer(max_concurrent_runs=1, **SLOW)
        backfill_id = tenant.create_backfill(transfer_id, "2024-06-01", "2024-06-20")[
            "transfer_backfill_id"
        ]
        wait_for(lambda: tenant.backfill(backfill_id)["transfer_runs_running"] == 1)

        proxy.silent.set()
        try:
            cancelled = tenant.cancel(backfill_id)
            with stack.db.read() as session:
                queued = session.exec(
                    select(QueuedSignal).where(col(QueuedSignal.backfill_id) == backfill_id)
                ).all()
        finally:
            proxy.silent.clear()

        assert cancelled["status"] == "CANCELLED"
        assert [(signal.name, signal.attempts) for signal in queued] == [("cancel", 0)]
        wait_for(lambda: tenant.backfill(backfill_id)["transfer_runs_running"] == 0, timeout=60)
        drained = tenant.backfill(backfill_id)
    assert drained["transfer_runs_completed"] + drained["transfer_runs_cancelled"] == 20
    wait_for(lambda: outbox.pending_signal_count(db=stack.db, backfill_id=backfill_id) == 0)
