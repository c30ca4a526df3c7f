"""Recurring runs on the real stack: a RecurringRun workflow (started here as a transfer's
Schedule will start it) runs on the recurring queue of the shared worker, and its run is
listed by the runs endpoint as `Recurring`, for the day before its firing in the schedule's
zone, its rows in the team's warehouse."""

import uuid
from datetime import UTC, datetime

from temporalio.client import Client

from config import Settings
from statuses import RunOutcome
from temporal_client import run_policy
from tests.support import Tenant
from workflows.inputs import RecurringInput
from workflows.recurring import RecurringRunWorkflow

FIRING = datetime(2026, 3, 5, 1, 30, tzinfo=UTC)  # 2026-03-05 10:30 in Tokyo


async def test_a_firing_makes_a_recurring_run_the_runs_endpoint_lists(
    tenant: Tenant, settings: Settings, temporal_client: Client
) -> None:
    transfer_id = tenant.create_transfer(rows_per_day=6)
    outcome = await temporal_client.execute_workflow(
        RecurringRunWorkflow.run,
        RecurringInput(
            team_id=tenant.team_id,
            transfer_id=transfer_id,
            time_zone="Asia/Tokyo",
            data_date_offset_days=1,
            run_policy=run_policy(settings),
            records_task_queue=settings.resolved_records_task_queue,
            firing_time=FIRING,
        ),
        id=f"transfer-{transfer_id}-{uuid.uuid4().hex[:8]}",
        task_queue=settings.resolved_recurring_task_queue,
    )

    assert outcome == RunOutcome.COMPLETED
    [run] = tenant.runs(transfer_id)
    assert (run["type"], run["data_date"], run["status"]) == (
        "Recurring",
        "2026-03-04",
        "COMPLETED",
    )
    assert run["total_rows"] == 6
