"""Recurring runs on the real stack: a RecurringRun workflow (started here as a transfer's
Schedule starts it) runs on the recurring queue of the shared worker, and its run is listed
by the runs endpoint as `Recurring`, for the day before its firing in the schedule's zone,
its rows in the team's warehouse; and it never writes a date while a backfill's run does."""

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta

from temporalio.client import Client

from config import Settings
from statuses import RunOutcome
from temporal_client import run_policy
from tests.support import Tenant, wait_for, warehouse_of
from workflows.inputs import RecurringInput
from workflows.recurring import RecurringRunWorkflow

FIRING = datetime(2026, 3, 5, 1, 30, tzinfo=UTC)  # 2026-03-05 10:30 in Tokyo
LATENCY_MS = 3000  # a run's extract, long enough for the other run to begin meanwhile


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


async def test_a_recurring_run_waits_for_the_backfill_run_writing_its_date(
    tenant: Tenant, settings: Settings, temporal_client: Client
) -> None:
    transfer_id = tenant.create_transfer(rows_per_day=5, latency_ms=LATENCY_MS)
    backfill_id = tenant.create_backfill(transfer_id, "2026-03-04", "2026-03-04")[
        "transfer_backfill_id"
    ]

    def backfill_run_started() -> bool:
        return [run["status"] for run in tenant.runs(transfer_id)] == ["RUNNING"]

    wait_for(backfill_run_started, timeout=60)
    outcome = await temporal_client.execute_workflow(
        RecurringRunWorkflow.run,
        RecurringInput(
            team_id=tenant.team_id,
            transfer_id=transfer_id,
            time_zone="UTC",
            data_date_offset_days=1,
            run_policy=run_policy(settings),
            records_task_queue=settings.resolved_records_task_queue,
            firing_time=datetime(2026, 3, 5, 2, 0, tzinfo=UTC),  # loads 2026-03-04 too
        ),
        id=f"transfer-{transfer_id}-{uuid.uuid4().hex[:8]}",
        task_queue=settings.resolved_recurring_task_queue,
    )

    assert outcome == RunOutcome.COMPLETED
    assert tenant.wait_until_status(backfill_id, "COMPLETED")["transfer_runs_completed"] == 1
    runs = {run["type"]: run for run in tenant.runs(transfer_id)}
    backfill_run, recurring_run = runs["Backfill"], runs["Recurring"]
    assert backfill_run["data_date"] == recurring_run["data_date"] == "2026-03-04"
    assert backfill_run["status"] == recurring_run["status"] == "COMPLETED"
    backfill_ended = datetime.fromisoformat(backfill_run["ended_time"])
    # it began while the backfill's run was writing, and read its source only after that
    # ended: its own extract alone takes LATENCY_MS
    assert datetime.fromisoformat(recurring_run["created_time"]) < backfill_ended  # its begin
    assert datetime.fromisoformat(recurring_run["ended_time"]) - backfill_ended >= timedelta(
        milliseconds=LATENCY_MS
    )
    with sqlite3.connect(warehouse_of(tenant.stack, transfer_id)) as warehouse:
        [(rows,)] = warehouse.execute(
            f"SELECT count(*) FROM transfer_{transfer_id} WHERE data_date = '2026-03-04'"
        ).fetchall()
    assert rows == 5  # one copy: the later run replaced the partition
