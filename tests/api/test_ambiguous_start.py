"""A create whose workflow start gets no clear answer from Temporal: the record is kept
when Temporal may have created the workflow (and the answer says so), and dropped only when
Temporal said it has none; either way no workflow ever runs without its record.

Each test runs an API of its own (on the shared database and task queue, so the shared
worker runs what it starts), reaching Temporal through a proxy the test can silence."""

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from temporalio.client import Client

from cli.devserver import free_port
from temporal_client import workflow_id
from tests.support import Stack, Tenant, answers, assert_error, new_tenant, spawn, stop, wait_for
from tests.temporal_proxy import SilenceableProxy, silenceable_proxy


@contextmanager
def api_of_its_own(stack: Stack, logs: Path, **settings: str) -> Iterator[Tenant]:
    port = free_port()
    env = {**stack.env, "BACKFILLS_API_PORT": str(port), **settings}
    process = spawn(["api"], env, logs / "api.log")
    own = dataclasses.replace(stack, api_url=f"http://127.0.0.1:{port}/v1", env=env, processes=[])
    tenant = new_tenant(own)
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/healthz"), timeout=60)
        yield tenant
    finally:
        tenant.http.close()
        stop(process)


@pytest.fixture
def proxy(stack: Stack) -> Iterator[SilenceableProxy]:
    with silenceable_proxy(stack.temporal_address) as proxy:
        yield proxy


async def test_a_start_that_times_out_after_temporal_acted_keeps_the_record_and_runs(
    stack: Stack, proxy: SilenceableProxy, tmp_path: Path, temporal_client: Client
) -> None:
    with api_of_its_own(stack, tmp_path, BACKFILLS_TEMPORAL_ADDRESS=proxy.address) as tenant:
        transfer_id = tenant.create_transfer()
        proxy.silent.set()
        response = tenant.http.post(
            f"/teams/{tenant.team_id}/transfers/{transfer_id}/backfills",
            json={"range_start": "2024-02-01", "range_end": "2024-02-03"},
        )
        proxy.silent.clear()

        assert_error(response, 503, "SERVICE_UNAVAILABLE")
        kept = tenant.http.get(
            f"/teams/{tenant.team_id}/transfers/{transfer_id}/backfills/latest"
        ).json()["data"]
        assert (
            f"backfill {kept['transfer_backfill_id']} is kept as CREATED"
            in (response.json()["error"]["message"])
        )
        done = tenant.wait_until_status(kept["transfer_backfill_id"], "COMPLETED", timeout=90)

    assert done["transfer_runs_completed"] == 3
    executions = [
        execution
        async for execution in temporal_client.list_workflows(
            f"WorkflowId = '{workflow_id(kept['transfer_backfill_id'])}'"
        )
    ]
    assert len(executions) == 1  # the workflow Temporal created; no second one


def test_a_start_temporal_refuses_keeps_nothing(stack: Stack, tmp_path: Path) -> None:
    with api_of_its_own(stack, tmp_path, BACKFILLS_TEMPORAL_NAMESPACE="no-such-namespace") as (
        tenant
    ):
        transfer_id = tenant.create_transfer()
        response = tenant.http.post(
            f"/teams/{tenant.team_id}/transfers/{transfer_id}/backfills",
            json={"range_start": "2024-02-01", "range_end": "2024-02-03"},
        )
        latest = tenant.http.get(
            f"/teams/{tenant.team_id}/transfers/{transfer_id}/backfills/latest"
        )

    assert_error(response, 503, "SERVICE_UNAVAILABLE")
    assert "kept" not in response.json()["error"]["message"]
    assert_error(latest, 404, "NOT_FOUND")
