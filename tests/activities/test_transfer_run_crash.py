"""A worker process killed (SIGKILL) in the middle of a load into PostgreSQL: the date's
partition is never partial, an old partition stays intact, and the retry on another worker
leaves exactly one copy."""

import asyncio
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, timedelta

import pytest
from temporalio.client import Client, WorkflowHandle

from config import Settings
from persistence import backfills, transfers
from persistence.models import Backfill, Transfer, TransferRun
from statuses import BackfillStatus, RunStatus
from temporal_client import start_backfill, workflow_id
from tests.scratch_postgres import query, scratch_database
from tests.support import (
    Stack,
    Tenant,
    all_runs,
    forget_killed_worker,
    spawn,
    stop,
    terminate_if_running,
    wait_for,
)
from workflows.backfill import BackfillWorkflow

ROWS_PER_DAY = 50_000  # a load of about a second, in 10 batches (INSERT_BATCH_ROWS)
FIRST_DAY = date(2024, 7, 1)
DAYS = [FIRST_DAY + timedelta(days=n) for n in range(3)]
SCHEMA = "crash"


@dataclass
class Scenario:
    """A transfer (demo source, 50k rows a day, into PostgreSQL) and workers of its own
    task queue, started and killed by the test."""

    stack: Stack
    tenant: Tenant
    client: Client
    settings: Settings
    env: dict[str, str]
    warehouse: str
    transfer: Transfer
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    backfill_ids: list[int] = field(default_factory=list)

    @property
    def transfer_id(self) -> int:
        assert self.transfer.id is not None
        return self.transfer.id

    def start_worker(self, name: str) -> subprocess.Popen[bytes]:
        log = self.stack.logs / f"worker-{self.settings.task_queue}-{name}.log"
        worker = spawn(["worker"], self.env, log)
        self.workers.append(worker)
        return worker

    async def start_backfill(self) -> tuple[int, WorkflowHandle[BackfillWorkflow, object]]:
        backfill: Backfill = backfills.create_backfill(
            db=self.stack.db,
            team_id=self.tenant.team_id,
            transfer_id=self.transfer_id,
            user_id=self.tenant.user_id,
            range_start=DAYS[0],
            range_end=DAYS[-1],
        )
        assert backfill.id is not None
        self.backfill_ids.append(backfill.id)
        handle = await start_backfill(self.client, self.settings, backfill, self.transfer)
        return backfill.id, handle

    async def kill_mid_load(self, worker: subprocess.Popen[bytes]) -> None:
        """SIGKILL `worker` while its load transaction has inserted rows; return once the
        server has rolled that transaction back (it sees the socket close)."""
        await asyncio.to_thread(wait_for, self.loading, timeout=180, interval=0.02)
        worker.send_signal(signal.SIGKILL)
        await asyncio.to_thread(worker.wait, 30)
        await forget_killed_worker(self.client, workflow_id(self.backfill_ids[-1]))
        await asyncio.to_thread(wait_for, lambda: self.others_connected() == 0, timeout=60)

    def loading(self) -> bool:
        """A backend of another process is inside a transaction that has inserted rows."""
        [(count,)] = query(
            self.warehouse,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL "
            "AND query ILIKE 'INSERT INTO%%'",
        )
        return int(str(count)) > 0

    def others_connected(self) -> int:
        [(count,)] = query(
            self.warehouse,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
        )
        return int(str(count))

    def partition_sizes(self) -> dict[date, int]:
        """Rows per data_date; {} while the table does not exist (creation not committed)."""
        [(exists,)] = query(self.warehouse, f"SELECT to_regclass('{SCHEMA}.ads') IS NOT NULL")
        if not exists:
            return {}
        sizes: dict[date, int] = {}
        for data_date, count in query(
            self.warehouse, f"SELECT data_date, count(*) FROM {SCHEMA}.ads GROUP BY data_date"
        ):
            assert isinstance(data_date, date)
            sizes[data_date] = int(str(count))
        return sizes

    def runs(self, backfill_id: int) -> dict[date, TransferRun]:
        listed = all_runs(self.stack.db, self.tenant.team_id, self.transfer_id)
        return {r.data_date: r for r in listed if r.backfill_id == backfill_id}

    def running(self, backfill_id: int) -> list[date]:
        return [d for d, r in self.runs(backfill_id).items() if r.status == RunStatus.RUNNING]

    def assert_completed_with_one_copy(self, backfill_id: int) -> dict[date, TransferRun]:
        final = backfills.get_backfill_for_worker(db=self.stack.db, backfill_id=backfill_id)
        assert final.status == BackfillStatus.COMPLETED, final
        assert (final.transfer_runs_completed, final.transfer_runs_failed) == (len(DAYS), 0)
        assert self.partition_sizes() == dict.fromkeys(DAYS, ROWS_PER_DAY)
        done = self.runs(backfill_id)
        assert {d: (r.status, r.total_rows) for d, r in done.items()} == dict.fromkeys(
            DAYS, (RunStatus.COMPLETED, ROWS_PER_DAY)
        )
        return done


@pytest.fixture
async def scenario(
    stack: Stack, tenant: Tenant, settings: Settings, temporal_client: Client
) -> AsyncIterator[Scenario]:
    queue = f"backfills-crash-{uuid.uuid4().hex[:8]}"
    with scratch_database("backfills_crash") as warehouse:
        response = tenant.http.post(
            f"/teams/{tenant.team_id}/transfers",
            json={
                "display_name": "large load",
                "source": {"type": "demo", "rows_per_day": ROWS_PER_DAY},
                "destination": {
                    "type": "postgresql",
                    "url": warehouse,
                    "schema": SCHEMA,
                    "table": "ads",
                },
                "max_concurrent_runs": 1,
            },
        )
        assert response.status_code == 200, response.text
        transfer = transfers.get_team_transfer(
            db=stack.db, team_id=tenant.team_id, transfer_id=response.json()["data"]["transfer_id"]
        )
        scenario = Scenario(
            stack=stack,
            tenant=tenant,
            client=temporal_client,
            settings=settings.model_copy(
                update={
                    "task_queue": queue,
                    "run_max_attempts": 5,
                    "run_retry_initial_seconds": 0.1,
                    "run_retry_max_seconds": 0.5,
                    # how long Temporal waits to retry the killed attempt elsewhere; a load
                    # heartbeats between its batches, far more often than this
                    "run_heartbeat_timeout_seconds": 5,
                }
            ),
            env={**stack.env, "BACKFILLS_TASK_QUEUE": queue},
            warehouse=warehouse,
            transfer=transfer,
        )
        try:
            yield scenario
        finally:
            for backfill_id in scenario.backfill_ids:
                await terminate_if_running(
                    temporal_client.get_workflow_handle(workflow_id(backfill_id))
                )
            for worker in scenario.workers:
                await asyncio.to_thread(stop, worker)


async def test_a_first_load_killed_midway_leaves_nothing_and_the_retry_one_copy(
    scenario: Scenario,
) -> None:
    doomed = scenario.start_worker("killed")
    backfill_id, handle = await scenario.start_backfill()

    await scenario.kill_mid_load(doomed)

    [in_flight] = scenario.running(backfill_id)
    after_kill = scenario.partition_sizes()
    assert after_kill.get(in_flight, 0) in (0, ROWS_PER_DAY), after_kill
    assert set(after_kill.values()) <= {ROWS_PER_DAY}, after_kill

    scenario.start_worker("successor")
    await asyncio.wait_for(handle.result(), timeout=240)

    done = scenario.assert_completed_with_one_copy(backfill_id)
    assert done[in_flight].attempts >= 2  # the killed attempt was retried


async def test_a_reload_killed_midway_leaves_the_old_partitions_intact(
    scenario: Scenario,
) -> None:
    first_worker = scenario.start_worker("first")
    first_id, first = await scenario.start_backfill()
    await asyncio.wait_for(first.result(), timeout=240)
    scenario.assert_completed_with_one_copy(first_id)
    again_id, again = await scenario.start_backfill()

    await scenario.kill_mid_load(first_worker)

    [in_flight] = scenario.running(again_id)
    assert scenario.partition_sizes() == dict.fromkeys(DAYS, ROWS_PER_DAY)

    scenario.start_worker("successor")
    await asyncio.wait_for(again.result(), timeout=240)

    done = scenario.assert_completed_with_one_copy(again_id)
    assert done[in_flight].attempts >= 2
