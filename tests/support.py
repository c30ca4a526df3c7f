"""Test helpers: the running stack, tenants, polling, and what every error answer holds."""

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import httpx
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import ResetStickyTaskQueueRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError

from connectors.warehouse import DEFAULT_FILE, team_dir
from persistence import accounts, runs, transfers
from persistence.db import Database
from persistence.models import Role, Scope, TransferRun
from persistence.runs import RunSortField, SortDirection

T = TypeVar("T")
REPO = Path(__file__).resolve().parent.parent


def wait_for(probe: Callable[[], T | None], *, timeout: float = 30.0, interval: float = 0.1) -> T:
    """Poll until `probe()` returns something truthy; fail with the last value otherwise."""
    deadline = time.monotonic() + timeout
    value = probe()
    while not value:
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {value!r})")
        time.sleep(interval)
        value = probe()
    return value


async def wait_for_async(
    probe: Callable[[], Awaitable[T | None]], *, within: float = 60.0, interval: float = 0.2
) -> T:
    """`wait_for` for a probe that is a coroutine function (`within` its timeout)."""
    deadline = asyncio.get_running_loop().time() + within
    value = await probe()
    while not value:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within}s (last: {value!r})")
        await asyncio.sleep(interval)
        value = await probe()
    return value


async def terminate_if_running(handle: WorkflowHandle[Any, Any]) -> None:
    """Clean up after a test: stop the workflow if it still runs (or was never started)."""
    try:
        if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
            await handle.terminate(reason="test cleanup")
    except RPCError:
        pass  # never started


async def forget_killed_worker(client: Client, workflow_id: str) -> None:
    """After a test SIGKILLs the worker that ran a workflow: send the workflow's next task to
    its task queue, where the other workers poll, at once. Temporal would otherwise first
    offer it to the dead worker's sticky queue and wait out the sticky schedule-to-start
    timeout (10 s) before doing the same. Which worker retries the killed runs, and how, is
    unchanged: Temporal still learns of the death only from the missed heartbeats."""
    await client.workflow_service.reset_sticky_task_queue(
        ResetStickyTaskQueueRequest(
            namespace=client.namespace, execution=WorkflowExecution(workflow_id=workflow_id)
        )
    )


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The error envelope every failure answers with; returns its `error`."""
    assert response.status_code == status, (response.status_code, response.text)
    body: dict[str, Any] = response.json()
    assert set(body) == {"meta", "error"}, body
    assert body["meta"]["request_id"] == response.headers["X-Request-Id"], body
    error: dict[str, Any] = body["error"]
    assert error["code"] == code, body
    assert isinstance(error["message"], str) and error["message"], body
    return error


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def all_runs(db: Database, team_id: int, transfer_id: int) -> list[TransferRun]:
    """Every run of a transfer, by data_date, as the database holds them."""
    return runs.list_runs(
        db=db,
        team_id=team_id,
        transfer_id=transfer_id,
        start_date=date(1900, 1, 1),
        end_date=date(2100, 1, 1),
        issues_only=False,
        sort_field=RunSortField.DATA_DATE,
        sort_direction=SortDirection.ASC,
        limit=10_000,
        offset=0,
    )


def warehouse_of(stack: "Stack", transfer_id: int, path: str = DEFAULT_FILE) -> Path:
    """The SQLite file a transfer's `sqlite` destination writes: in its team's directory."""
    team_id = transfers.get_transfer_for_worker(db=stack.db, transfer_id=transfer_id).team_id
    return team_dir(stack.data_dir, team_id) / path


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Run `python -m cli.main <args>` as the user would run `backfills <args>`."""
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", *args],
        env=env,
        cwd=REPO,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def stop(process: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


@dataclass
class Stack:
    """A worker and the API, running as processes against one database and Temporal."""

    database_url: str
    temporal_address: str
    task_queue: str
    api_url: str
    data_dir: Path
    env: dict[str, str]
    logs: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def db(self) -> Database:
        return Database(self.database_url)

    def start_worker(self, name: str = "worker") -> subprocess.Popen[bytes]:
        process = spawn(["worker"], self.env, self.logs / f"{name}.log")
        self.processes.append(process)
        return process


@dataclass
class Tenant:
    """A team with an owner whose token has both scopes, and an HTTP client for it."""

    stack: Stack
    team_id: int
    user_id: int
    token: str
    http: httpx.Client

    def create_transfer(self, max_concurrent_runs: int = 4, **source: Any) -> int:
        response = self.http.post(
            f"/teams/{self.team_id}/transfers",
            json={
                "display_name": "test transfer",
                "source": {"type": "demo", **source},
                "destination": {"type": "sqlite"},
                "max_concurrent_runs": max_concurrent_runs,
            },
        )
        assert response.status_code == 200, response.text
        transfer_id: int = response.json()["data"]["transfer_id"]
        return transfer_id

    def create_backfill(self, transfer_id: int, start: str, end: str) -> dict[str, Any]:
        response = self.http.post(
            f"/teams/{self.team_id}/transfers/{transfer_id}/backfills",
            json={"range_start": start, "range_end": end},
        )
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def backfill(self, backfill_id: int) -> dict[str, Any]:
        response = self.http.get(f"/teams/{self.team_id}/backfills/{backfill_id}")
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def cancel(self, backfill_id: int) -> dict[str, Any]:
        response = self.http.patch(
            f"/teams/{self.team_id}/backfills/{backfill_id}", json={"status": "CANCELLED"}
        )
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def wait_until_status(
        self, backfill_id: int, *statuses: str, timeout: float = 60.0
    ) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            backfill = self.backfill(backfill_id)
            return backfill if backfill["status"] in statuses else None

        found: dict[str, Any] = wait_for(reached, timeout=timeout)
        return found

    def runs(self, transfer_id: int, **params: Any) -> list[dict[str, Any]]:
        query = {"start_date": "1900-01-01", "end_date": "2100-01-01", "limit": 10000, **params}
        response = self.http.get(
            f"/teams/{self.team_id}/transfers/{transfer_id}/runs", params=query
        )
        assert response.status_code == 200, response.text
        data: list[dict[str, Any]] = response.json()["data"]
        return data


def new_tenant(
    stack: Stack, role: Role = Role.OWNER, scopes: tuple[Scope, ...] = tuple(Scope)
) -> Tenant:
    db = stack.db
    team_id = accounts.create_team(db=db, name="team")
    user_id = accounts.create_user(
        db=db, email=f"user-{os.urandom(6).hex()}@example.com", team_id=team_id, role=role
    )
    token = accounts.create_token(db=db, user_id=user_id, scopes=list(scopes))
    http = httpx.Client(
        base_url=stack.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    return Tenant(stack=stack, team_id=team_id, user_id=user_id, token=token, http=http)


def answers(url: str) -> bool:
    """Whether `url` answers 200 now."""
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def running_stack(env: dict[str, str], logs: Path) -> Iterator[Stack]:
    """A worker and the API started with `env` (its database, Temporal, task queue, port and
    data directory), once the API is ready; both stopped afterwards."""
    port = env["BACKFILLS_API_PORT"]
    stack = Stack(
        database_url=env["BACKFILLS_DATABASE_URL"],
        temporal_address=env["BACKFILLS_TEMPORAL_ADDRESS"],
        task_queue=env["BACKFILLS_TASK_QUEUE"],
        api_url=f"http://127.0.0.1:{port}/v1",
        data_dir=Path(env["BACKFILLS_DATA_DIR"]),
        env=env,
        logs=logs,
    )
    stack.start_worker()
    stack.processes.append(spawn(["api"], env, logs / "api.log"))
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/readyz"), timeout=60)
        yield stack
    finally:
        for process in stack.processes:
            stop(process)
