"""The reconciler: records and workflows brought back into step by the running worker."""

from datetime import date, timedelta

from temporalio.client import Client

from persistence import backfills
from persistence.clock import utcnow
from persistence.models import Backfill
from temporal_client import workflow_id
from tests.support import Tenant, wait_for


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
