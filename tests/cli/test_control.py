"""`backfills pause|resume|limits|retry|dry-run`, run as a user runs them, against the
stack's API."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.client_support import (
    assert_api_error,
    assert_clean_failure,
    team_run,
)
from tests.cli.client_support import cwd as cwd  # the fixture
from tests.support import Stack, Tenant, new_tenant, wait_for


@pytest.fixture
def running_backfill(tenant: Tenant) -> Iterator[int]:
    """A backfill with one run in flight for ten seconds (a command takes one or two to
    start); cancelled at the end."""
    transfer_id = tenant.create_transfer(max_concurrent_runs=1, latency_ms=10_000)
    backfill_id: int = tenant.create_backfill(transfer_id, "2023-01-01", "2023-01-30")[
        "transfer_backfill_id"
    ]
    wait_for(lambda: tenant.backfill(backfill_id)["transfer_runs_running"] == 1, timeout=60)
    yield backfill_id
    tenant.http.patch(
        f"/teams/{tenant.team_id}/backfills/{backfill_id}", json={"status": "CANCELLED"}
    )


def completed_backfill(tenant: Tenant) -> int:
    transfer_id = tenant.create_transfer()
    backfill_id: int = tenant.create_backfill(transfer_id, "2024-07-01", "2024-07-01")[
        "transfer_backfill_id"
    ]
    tenant.wait_until_status(backfill_id, "COMPLETED")
    return backfill_id


def test_pause_then_resume(tenant: Tenant, cwd: Path, running_backfill: int) -> None:
    backfill_id = str(running_backfill)

    paused = team_run(tenant, cwd, "pause", backfill_id, "--reason", "warehouse upgrade")
    paused_state = tenant.backfill(running_backfill)
    resumed = team_run(tenant, cwd, "resume", backfill_id)

    assert paused.returncode == 0, paused.stderr
    assert f"Paused backfill {backfill_id} of transfer" in paused.stdout
    assert "reason: warehouse upgrade" in paused.stdout
    assert "1 run still running will finish and count" in paused.stdout
    assert f"backfills resume --team {tenant.team_id} {backfill_id}" in paused.stdout
    assert (paused_state["paused"], paused_state["paused_reason"]) == (True, "warehouse upgrade")
    assert resumed.returncode == 0, resumed.stderr
    assert f"Resumed backfill {backfill_id} of transfer" in resumed.stdout
    assert tenant.backfill(running_backfill)["paused"] is False


def test_pause_json_prints_the_paused_backfill(
    tenant: Tenant, cwd: Path, running_backfill: int
) -> None:
    result = team_run(tenant, cwd, "pause", str(running_backfill), "--json")

    assert result.returncode == 0, result.stderr
    paused = json.loads(result.stdout)
    assert paused["paused"] is True
    assert paused["paused_reason"] == f"paused by user {tenant.user_id}"
    assert paused["paused_time"] is not None


def test_pause_of_a_completed_backfill_prints_the_api_message(tenant: Tenant, cwd: Path) -> None:
    result = team_run(tenant, cwd, "pause", str(completed_backfill(tenant)))

    assert_api_error(result, "UNPROCESSABLE_ENTITY")


def test_resume_of_another_teams_backfill_is_not_found(
    stack: Stack, tenant: Tenant, cwd: Path, running_backfill: int
) -> None:
    other = new_tenant(stack)
    try:
        result = team_run(other, cwd, "resume", str(running_backfill))
    finally:
        other.http.close()

    assert_api_error(result, "NOT_FOUND")
    assert result.stdout == ""


def test_limits_change_the_cap_and_the_failure_budget(
    tenant: Tenant, cwd: Path, running_backfill: int
) -> None:
    backfill_id = str(running_backfill)

    changed = team_run(
        tenant, cwd, "limits", backfill_id, "--max-concurrent-runs", "3", "--max-failed-runs", "5"
    )
    state = tenant.backfill(running_backfill)
    removed = team_run(tenant, cwd, "limits", backfill_id, "--no-failure-budget")

    assert changed.returncode == 0, changed.stderr
    assert f"Changed backfill {backfill_id}" in changed.stdout
    assert "now at most 3 runs at once, failure budget 5 failed, oldest first" in changed.stdout
    assert (state["max_concurrent_runs"], state["max_failed_runs"]) == (3, 5)
    assert removed.returncode == 0, removed.stderr
    assert "now at most 3 runs at once, no failure budget" in removed.stdout
    assert tenant.backfill(running_backfill)["max_failed_runs"] is None


@pytest.mark.parametrize(
    "args",
    [
        pytest.param((), id="nothing"),
        pytest.param(("--max-failed-runs", "2", "--no-failure-budget"), id="both-budgets"),
        pytest.param(("--max-concurrent-runs", "501"), id="cap-out-of-range"),
    ],
)
def test_limits_a_bad_change_is_a_usage_error(
    tenant: Tenant, cwd: Path, args: tuple[str, ...]
) -> None:
    result = team_run(tenant, cwd, "limits", "1", *args)

    assert_clean_failure(result)
    assert result.returncode == 2, result.stderr


def test_limits_of_a_completed_backfill_prints_the_api_message(tenant: Tenant, cwd: Path) -> None:
    backfill_id = completed_backfill(tenant)

    result = team_run(tenant, cwd, "limits", str(backfill_id), "--max-concurrent-runs", "2")

    assert_api_error(result, "UNPROCESSABLE_ENTITY")
    assert tenant.backfill(backfill_id)["max_concurrent_runs"] == 4  # unchanged
