"""The reconciler: records and workflows brought back into step by the running worker."""

import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import ActivityEnvironment

from activities.inputs import ReconcileInput
from activities.reconcile import CLOSED_WITHOUT_RECORD, WORKFLOW_GONE, ReconcileActivities
from persistence import accounts, backfills, runs, transfers
from persistence.clock import utcnow
from persistence.db import Database
from persistence.migrate import upgrade
from persistence.models import Backfill, Role, Transfer
from statuses import BackfillStatus, RunStatus
from temporal_client import workflow_id
from tests.support import Tenant, all_runs, wait_for


async def test_a_terminated_workflow_leaves_its_backfill_failed_saying_so(
    tenant: Tenant, temporal_client: Client
) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=1, latency_ms=1500)
    backfill_id = tenant.create_backfill(transfer_id, "2024-09-01", "2024-09-04")[
        "transfer_backfill_id"
    ]
    wait_for(lambda: tenant.backfill(backfill_id)["status"] == "RUNNING")

    await temporal_client.get_workflow_handle(workflow_id(backfill_id)).terminate("operator test")

    failed = tenant.wait_until_status(backfill_id, "FAILED", timeout=60)
    assert failed["end_time"] is not None
    reasons = {entry["error"] for entry in failed["error_report"]}
    assert reasons == {"the backfill's workflow was terminated by an operator"}
    statuses = [run["status"] for run in tenant.runs(transfer_id)]
    assert len(statuses) == 4 and "RUNNING" not in statuses and "CREATED" not in statuses
    assert failed["transfer_runs_completed"] + failed["transfer_runs_failed"] == 4
    assert failed["transfer_runs_failed"] == len(failed["error_report"]) >= 1


def test_a_backfill_left_created_without_a_workflow_is_started_later(tenant: Tenant) -> None:
    transfer_id = tenant.create_transfer()
    db = tenant.stack.db
    backfill = backfills.create_backfill(
        db=db,
        team_id=tenant.team_id,
        transfer_id=transfer_id,
        user_id=tenant.user_id,
        range_start=date(2024, 10, 1),
        range_end=date(2024, 10, 3),
    )
    with db.write() as session:  # as if the API had answered 503 and not cleaned up, long ago
        stored = session.get(Backfill, backfill.id)
        assert stored is not None
        stored.created_time = utcnow() - timedelta(minutes=10)
    assert backfill.id is not None

    done = tenant.wait_until_status(backfill.id, "COMPLETED", timeout=60)

    assert done["transfer_runs_completed"] == 3


def test_a_running_backfill_whose_workflow_is_gone_is_failed_however_old(tenant: Tenant) -> None:
    transfer_id = tenant.create_transfer()
    db = tenant.stack.db
    backfill = backfills.create_backfill(
        db=db,
        team_id=tenant.team_id,
        transfer_id=transfer_id,
        user_id=tenant.user_id,
        range_start=date(2024, 10, 5),
        range_end=date(2024, 10, 6),
    )
    with db.write() as session:  # as if its workflow had closed long ago and been deleted
        stored = session.get(Backfill, backfill.id)
        assert stored is not None
        stored.status = BackfillStatus.RUNNING
        stored.created_time = stored.start_time = utcnow() - timedelta(days=30)
    assert backfill.id is not None

    failed = tenant.wait_until_status(backfill.id, "FAILED", timeout=60)

    assert {entry["error"] for entry in failed["error_report"]} == {WORKFLOW_GONE}
    assert failed["transfer_runs_failed"] == 2


class TemporalSays:
    """What Temporal answers about each backfill's workflow (`BackfillWorkflows`), so that
    every way a workflow can close is tried on a real database, with a record of starts."""

    def __init__(self, statuses: dict[int, WorkflowExecutionStatus | None]) -> None:
        self.statuses = statuses
        self.started: list[int] = []

    async def start(self, backfill: Backfill, transfer: Transfer) -> bool:
        assert backfill.id is not None
        self.started.append(backfill.id)
        return True

    async def open_backfill_ids(self) -> set[int]:
        return {i for i, s in self.statuses.items() if s == WorkflowExecutionStatus.RUNNING}

    async def status(self, backfill_id: int) -> WorkflowExecutionStatus | None:
        return self.statuses.get(backfill_id)


@pytest.fixture
def lone_db(tmp_path: Path) -> Database:
    """A database of its own: no running reconciler sees these records."""
    url = f"sqlite:///{tmp_path / 'backfills.db'}"
    upgrade(url)
    return Database(url)


def a_backfill(db: Database, status: BackfillStatus, age: timedelta) -> int:
    team_id = accounts.create_team(db=db, name="reconcile")
    user_id = accounts.create_user(
        db=db, email=f"{uuid.uuid4().hex[:8]}@example.com", team_id=team_id, role=Role.OWNER
    )
    transfer = transfers.create_transfer(
        db=db,
        team_id=team_id,
        user_id=user_id,
        display_name="reconciled",
        source={"type": "demo"},
        destination={"type": "sqlite"},
        max_concurrent_runs=2,
    )
    assert transfer.id is not None
    backfill = backfills.create_backfill(
        db=db,
        team_id=team_id,
        transfer_id=transfer.id,
        user_id=user_id,
        range_start=date(2024, 3, 1),
        range_end=date(2024, 3, 3),
    )
    assert backfill.id is not None
    runs.plan_runs(db=db, backfill_id=backfill.id, first=date(2024, 3, 1), last=date(2024, 3, 2))
    with db.write() as session:
        stored = session.get(Backfill, backfill.id)
        assert stored is not None
        stored.status = status
        stored.created_time = utcnow() - age
    return backfill.id


async def reconcile(db: Database, temporal: TemporalSays) -> None:
    activities = ReconcileActivities(db, temporal)
    await ActivityEnvironment().run(activities.reconcile, ReconcileInput(created_grace_seconds=60))


CLOSED = [
    (WorkflowExecutionStatus.CANCELED, BackfillStatus.CANCELLED, RunStatus.CANCELLED),
    (WorkflowExecutionStatus.TERMINATED, BackfillStatus.FAILED, RunStatus.FAILED),
    (WorkflowExecutionStatus.TIMED_OUT, BackfillStatus.FAILED, RunStatus.FAILED),
    (WorkflowExecutionStatus.FAILED, BackfillStatus.FAILED, RunStatus.FAILED),
    (WorkflowExecutionStatus.CONTINUED_AS_NEW, BackfillStatus.FAILED, RunStatus.FAILED),
    (WorkflowExecutionStatus.COMPLETED, BackfillStatus.FAILED, RunStatus.FAILED),
]


@pytest.mark.parametrize(("closed", "final", "run_status"), CLOSED)
@pytest.mark.parametrize("was", [BackfillStatus.SCHEDULED, BackfillStatus.RUNNING])
async def test_every_kind_of_closed_workflow_closes_its_record_saying_how(
    lone_db: Database,
    closed: WorkflowExecutionStatus,
    final: BackfillStatus,
    run_status: RunStatus,
    was: BackfillStatus,
) -> None:
    backfill_id = a_backfill(lone_db, was, age=timedelta(days=400))
    temporal = TemporalSays({backfill_id: closed})

    await reconcile(lone_db, temporal)

    record = backfills.get_backfill_for_worker(db=lone_db, backfill_id=backfill_id)
    assert record.status == final
    assert record.end_time is not None
    ended = all_runs(lone_db, record.team_id, record.transfer_id)
    assert len(ended) == 3  # the date never planned has its run too
    assert {(run.status, run.message) for run in ended} == {
        (run_status, CLOSED_WITHOUT_RECORD[closed])
    }
    assert temporal.started == []


async def test_a_created_backfill_whose_workflow_was_terminated_is_never_restarted(
    lone_db: Database,
) -> None:
    backfill_id = a_backfill(lone_db, BackfillStatus.CREATED, age=timedelta(hours=1))
    temporal = TemporalSays({backfill_id: WorkflowExecutionStatus.TERMINATED})

    await reconcile(lone_db, temporal)

    assert temporal.started == []
    record = backfills.get_backfill_for_worker(db=lone_db, backfill_id=backfill_id)
    assert record.status == BackfillStatus.FAILED


async def test_only_records_without_an_open_workflow_are_touched(lone_db: Database) -> None:
    stale = a_backfill(lone_db, BackfillStatus.CREATED, age=timedelta(hours=1))
    young = a_backfill(lone_db, BackfillStatus.CREATED, age=timedelta(seconds=1))
    running = a_backfill(lone_db, BackfillStatus.RUNNING, age=timedelta(days=2))
    failed = a_backfill(lone_db, BackfillStatus.FAILED, age=timedelta(days=2))
    temporal = TemporalSays(
        {running: WorkflowExecutionStatus.RUNNING, failed: WorkflowExecutionStatus.FAILED}
    )

    await reconcile(lone_db, temporal)

    assert temporal.started == [stale]
    for backfill_id, status in [
        (young, BackfillStatus.CREATED),
        (running, BackfillStatus.RUNNING),
        (failed, BackfillStatus.FAILED),
    ]:
        assert (
            backfills.get_backfill_for_worker(db=lone_db, backfill_id=backfill_id).status == status
        )
