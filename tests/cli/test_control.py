"""`backfills pause|resume|limits|retry|dry-run`, run as a user runs them, against the
stack's API."""

import json
import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from connectors.warehouse import team_dir
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


@pytest.fixture
def broken_date(stack: Stack, tenant: Tenant) -> tuple[int, Callable[[], None]]:
    """A transfer reading a SQLite source of the team whose row for 2024-05-02 is broken
    until fixed, and the fix."""
    directory = team_dir(stack.data_dir, tenant.team_id)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "flaky.db"
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.execute("CREATE TABLE days (day TEXT, payload TEXT)")
        connection.executemany(
            "INSERT INTO days VALUES (?, ?)",
            [("2024-05-01", '{"n": 1}'), ("2024-05-02", "{broken"), ("2024-05-03", '{"n": 3}')],
        )

    def fix() -> None:
        with closing(sqlite3.connect(path)) as connection, connection:
            connection.execute("UPDATE days SET payload = '{\"n\": 2}' WHERE day = '2024-05-02'")

    response = tenant.http.post(
        f"/teams/{tenant.team_id}/transfers",
        json={
            "display_name": "flaky",
            "source": {
                "type": "sql",
                "url": "sqlite:///flaky.db",
                "query": "SELECT day, json_extract(payload, '$.n') AS n FROM days "
                "WHERE day = :data_date",
            },
            "destination": {"type": "sqlite"},
        },
    )
    assert response.status_code == 200, response.text
    transfer_id: int = response.json()["data"]["transfer_id"]
    return transfer_id, fix


def test_retry_of_a_failed_backfill_runs_its_failed_date_in_place(
    tenant: Tenant, cwd: Path, broken_date: tuple[int, Callable[[], None]]
) -> None:
    transfer_id, fix = broken_date
    backfill_id = tenant.create_backfill(transfer_id, "2024-05-01", "2024-05-03")[
        "transfer_backfill_id"
    ]
    tenant.wait_until_status(backfill_id, "FAILED")
    fix()

    result = team_run(tenant, cwd, "retry", str(backfill_id), "--watch", "--interval", "0.2")

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Retrying backfill {backfill_id} in place: 1 date to run again" in result.stdout
    assert f"Backfill {backfill_id} COMPLETED: 3 completed, 0 failed of 3" in result.stdout
    dates = [r["data_date"] for r in tenant.runs(transfer_id)]
    assert sorted(dates) == ["2024-05-01", "2024-05-02", "2024-05-02", "2024-05-03"]


def test_retry_of_a_cancelled_backfill_makes_a_new_one(tenant: Tenant, cwd: Path) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=1, latency_ms=1500)
    backfill_id = tenant.create_backfill(transfer_id, "2024-06-01", "2024-06-05")[
        "transfer_backfill_id"
    ]
    wait_for(lambda: tenant.backfill(backfill_id)["transfer_runs_running"] == 1, timeout=60)
    tenant.cancel(backfill_id)
    drained = wait_for(
        lambda: (b := tenant.backfill(backfill_id))["transfer_runs_running"] == 0 and b,
        timeout=60,
    )
    undone = 5 - drained["transfer_runs_completed"]

    result = team_run(tenant, cwd, "retry", str(backfill_id))

    assert result.returncode == 0, result.stderr
    made = re.search(r"^Created backfill (\d+), a new backfill: ", result.stdout)
    assert made, result.stdout
    new_id = int(made.group(1))
    try:
        assert new_id != backfill_id
        assert f"backfill {backfill_id} was cancelled and stays as it is" in result.stdout
        assert f"runs the {undone} dates it left undone" in result.stdout
        new = tenant.backfill(new_id)
        assert (new["retry_of_backfill_id"], new["transfer_runs_total"]) == (backfill_id, undone)
        assert tenant.backfill(backfill_id)["status"] == "CANCELLED"
    finally:  # it may have completed already
        tenant.http.patch(
            f"/teams/{tenant.team_id}/backfills/{new_id}", json={"status": "CANCELLED"}
        )


def test_retry_of_a_running_backfill_prints_why_not(
    tenant: Tenant, cwd: Path, running_backfill: int
) -> None:
    result = team_run(tenant, cwd, "retry", str(running_backfill))

    assert_api_error(result, "UNPROCESSABLE_ENTITY")
    assert "only a FAILED backfill" in result.stderr
    assert tenant.backfill(running_backfill)["status"] == "RUNNING"


def dry_run(tenant: Tenant, cwd: Path, transfer_id: int, *args: str) -> CompletedProcess[str]:
    return team_run(tenant, cwd, "dry-run", "--transfer", str(transfer_id), *args)


def test_dry_run_of_an_acceptable_backfill_says_so_with_an_estimate(
    tenant: Tenant, cwd: Path
) -> None:
    transfer_id = tenant.create_transfer(latency_ms=200)
    first = tenant.create_backfill(transfer_id, "2022-12-01", "2022-12-02")
    tenant.wait_until_status(first["transfer_backfill_id"], "COMPLETED")  # runs to learn from

    result = dry_run(
        tenant,
        cwd,
        transfer_id,
        "--start",
        "2023-01-01",
        "--end",
        "2023-01-31",
        "--max-concurrent-runs",
        "8",
        "--run-order",
        "NEWEST_FIRST",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        f"Dry run of a backfill of transfer {transfer_id}, 2023-01-01 to 2023-01-31: "
        "would be accepted" in result.stdout
    )
    assert "31 dates, first 2023-01-31, last 2023-01-01" in result.stdout
    assert "at most 8 runs at once, no failure budget, newest first" in result.stdout
    assert re.search(r"estimate: about \d+ s, ending about \d\d:\d\d:\d\d", result.stdout)
    assert "4 rounds" in result.stdout  # ceil(31 / 8), from the API's explanation
    assert "refused" not in result.stdout
    assert "Nothing was created." in result.stdout
    latest = tenant.http.get(f"/teams/{tenant.team_id}/transfers/{transfer_id}/backfills/latest")
    assert latest.json()["data"]["transfer_backfill_id"] == first["transfer_backfill_id"]


def test_dry_run_of_an_overlapping_range_exits_one_with_the_refusal(
    tenant: Tenant, cwd: Path, running_backfill: int
) -> None:
    transfer_id = tenant.backfill(running_backfill)["transfer_id"]

    result = dry_run(tenant, cwd, transfer_id, "--from", "2023-01-20", "--to", "2023-02-10")
    as_json = dry_run(
        tenant, cwd, transfer_id, "--from", "2023-01-20", "--to", "2023-02-10", "--json"
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "would be REFUSED" in result.stdout
    assert f"backfill {running_backfill}" in result.stdout
    assert "(CONFLICT_ERROR)" in result.stdout
    assert "22 dates, first 2023-01-20, last 2023-02-10" in result.stdout
    assert as_json.returncode == 1, as_json.stderr
    found = json.loads(as_json.stdout)
    assert found["would_be_refused"] is True
    assert [r["overlapping_backfill_id"] for r in found["refusals"]] == [running_backfill]


def test_dry_run_of_a_fresh_transfer_says_why_there_is_no_estimate(
    tenant: Tenant, cwd: Path
) -> None:
    transfer_id = tenant.create_transfer()

    result = dry_run(tenant, cwd, transfer_id, "--from", "2023-01-01", "--to", "2023-01-02")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "estimate: none, " in result.stdout
    assert "2 dates, first 2023-01-01, last 2023-01-02" in result.stdout


def test_dry_run_of_another_teams_transfer_is_not_found(
    stack: Stack, tenant: Tenant, cwd: Path
) -> None:
    transfer_id = tenant.create_transfer()
    other = new_tenant(stack)
    try:
        result = dry_run(other, cwd, transfer_id, "--from", "2023-01-01", "--to", "2023-01-02")
    finally:
        other.http.close()

    assert_api_error(result, "NOT_FOUND")
    assert result.stdout == ""
