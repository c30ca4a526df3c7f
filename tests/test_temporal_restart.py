"""Temporal restarts: the dev server killed and restarted on its data file mid-backfill.

This test has its own Temporal dev server (state on disk, so a restart resumes it), its own
namespace, database, data directory, worker and API, so that killing the server touches nothing
the other tests use (and no other reconciler sees this test's records).

While the server is down the API keeps its promises: a create answers 503 SERVICE_UNAVAILABLE
saying that the backfill is kept as CREATED (Temporal may have created its workflow before it
went silent, and a workflow never runs without its record), reads served from the database
still answer, `/readyz` says it is not ready. Once the server is back on the same port and
file, the backfill resumes and completes with nothing lost and nothing doubled, the kept one is
started by the reconciler and completes too, and the API's Temporal client works again.
"""

import signal
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest

from cli.devserver import free_port, start_dev_server, wait_for_port
from persistence.migrate import upgrade
from tests.support import Stack, assert_error, new_tenant, spawn, stop, wait_for, warehouse_of

NAMESPACE = "test-temporal-restart"
DAYS = 8
ROWS_PER_DAY = 5
START = date(2024, 5, 1)
END = START + timedelta(days=DAYS - 1)


class TemporalServer:
    """A dev server on a fixed port and data file, which the test kills and restarts."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.db_file = root / "temporal" / "temporal.db"
        self.log = root / "temporal.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = start_dev_server(
            port=self.port,
            ui_port=None,
            namespaces=[NAMESPACE],
            db_file=self.db_file,
            log_file=self.log,
        )
        wait_for_port("127.0.0.1", self.port, timeout=60, process=self.process)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)


@pytest.fixture
def temporal_server(tmp_path: Path) -> Iterator[TemporalServer]:
    server = TemporalServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_stack(stack: Stack, temporal_server: TemporalServer, tmp_path: Path) -> Iterator[Stack]:
    """A worker and the API on the dedicated server, a database and a data directory."""
    database_url = f"sqlite:///{tmp_path / 'backfills.db'}"
    upgrade(database_url)
    api_port = free_port()
    env = {
        **stack.env,
        "BACKFILLS_DATABASE_URL": database_url,
        "BACKFILLS_DATA_DIR": str(tmp_path / "data"),
        "BACKFILLS_TEMPORAL_ADDRESS": temporal_server.address,
        "BACKFILLS_TEMPORAL_NAMESPACE": NAMESPACE,
        "BACKFILLS_TASK_QUEUE": f"backfills-restart-{uuid.uuid4().hex[:8]}",
        "BACKFILLS_API_PORT": str(api_port),
        "BACKFILLS_RECONCILE_CREATED_GRACE_SECONDS": "3",
    }
    own = Stack(
        database_url=database_url,
        temporal_address=temporal_server.address,
        task_queue=env["BACKFILLS_TASK_QUEUE"],
        api_url=f"http://127.0.0.1:{api_port}/v1",
        data_dir=tmp_path / "data",
        env=env,
        logs=tmp_path,
    )
    own.start_worker()
    own.processes.append(spawn(["api"], env, tmp_path / "api.log"))
    try:
        wait_for(lambda: readyz(own).status_code == 200, timeout=60)
        yield own
    finally:
        for process in own.processes:
            stop(process)
        for log in ("worker.log", "api.log", "temporal.log"):
            path = tmp_path / log
            if path.exists():
                print(f"--- {log} ---\n{path.read_text(errors='replace')[-4000:]}")


def readyz(stack: Stack) -> httpx.Response:
    try:
        return httpx.get(stack.api_url.removesuffix("/v1") + "/readyz", timeout=10)
    except httpx.HTTPError:
        return httpx.Response(599)


def assert_unavailable(response: httpx.Response) -> None:
    assert_error(response, 503, "SERVICE_UNAVAILABLE")
    assert "Traceback" not in response.text


def warehouse_rows(stack: Stack, transfer_id: int) -> dict[str, int]:
    with sqlite3.connect(warehouse_of(stack, transfer_id)) as connection:
        rows = connection.execute(
            f"SELECT data_date, count(*) FROM transfer_{transfer_id} GROUP BY data_date"
        ).fetchall()
    return {str(data_date)[:10]: count for data_date, count in rows}


def dates(start: date, days: int) -> list[str]:
    return [(start + timedelta(days=n)).isoformat() for n in range(days)]


# The session stack only lends its environment (retries, limits); one parameter is enough.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_backfill_survives_a_temporal_restart_and_the_api_answers_503_meanwhile(
    own_stack: Stack, temporal_server: TemporalServer
) -> None:
    tenant = new_tenant(own_stack)
    transfer_id = tenant.create_transfer(
        max_concurrent_runs=2, rows_per_day=ROWS_PER_DAY, latency_ms=1500
    )
    backfill_id = tenant.create_backfill(transfer_id, START.isoformat(), END.isoformat())[
        "transfer_backfill_id"
    ]
    wait_for(lambda: tenant.backfill(backfill_id)["transfer_runs_completed"] >= 2, timeout=120)

    temporal_server.kill()

    # A create needs Temporal: 503, and the answer names the record it keeps.
    later = START + timedelta(days=40)
    refused = tenant.http.post(
        f"/teams/{tenant.team_id}/transfers/{transfer_id}/backfills",
        json={"range_start": later.isoformat(), "range_end": later.isoformat()},
    )
    assert_unavailable(refused)
    latest = tenant.http.get(f"/teams/{tenant.team_id}/transfers/{transfer_id}/backfills/latest")
    assert latest.status_code == 200, latest.text
    kept = latest.json()["data"]
    assert kept["status"] == "CREATED"
    assert (
        f"backfill {kept['transfer_backfill_id']} is kept as CREATED"
        in (refused.json()["error"]["message"])
    )
    incomplete = tenant.http.get(f"/teams/{tenant.team_id}/backfills").json()["data"]
    assert sorted(b["transfer_backfill_id"] for b in incomplete) == sorted(
        [backfill_id, kept["transfer_backfill_id"]]
    )
    # Reads come from the database alone.
    during = tenant.backfill(backfill_id)
    assert during["status"] == "RUNNING"
    assert during["transfer_runs_completed"] < DAYS
    # Not ready while Temporal is down.
    assert_unavailable(readyz(own_stack))

    temporal_server.start()

    done = tenant.wait_until_status(backfill_id, "COMPLETED", "FAILED", timeout=180)
    assert done["status"] == "COMPLETED", done
    assert done["transfer_runs_total"] == DAYS
    assert done["transfer_runs_created"] == DAYS
    assert done["transfer_runs_completed"] == DAYS
    assert done["transfer_runs_failed"] == 0
    assert done["error_report"] == []
    runs = tenant.runs(transfer_id, end_date=END.isoformat())
    assert sorted(r["data_date"] for r in runs) == dates(START, DAYS)
    assert {r["status"] for r in runs} == {"COMPLETED"}
    assert all(r["total_rows"] == ROWS_PER_DAY for r in runs), runs
    rows = warehouse_rows(own_stack, transfer_id)
    assert {d: n for d, n in rows.items() if d <= END.isoformat()} == dict.fromkeys(
        dates(START, DAYS), ROWS_PER_DAY
    )

    started_later = tenant.wait_until_status(kept["transfer_backfill_id"], "COMPLETED", timeout=120)
    assert started_later["transfer_runs_completed"] == 1

    # The API's Temporal client, connected before the kill, works again.
    wait_for(lambda: readyz(own_stack).status_code == 200, timeout=60)
    again = tenant.create_backfill(transfer_id, later.isoformat(), later.isoformat())
    finished = tenant.wait_until_status(again["transfer_backfill_id"], "COMPLETED", timeout=120)
    assert finished["transfer_runs_completed"] == 1
    tenant.http.close()
