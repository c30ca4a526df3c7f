"""`backfills create|watch|cancel|list`, run as a user runs them, against the stack's API."""

import json
import re
from pathlib import Path

from cli.devserver import free_port
from tests.cli.client_support import (
    REQUEST_ID,
    assert_clean_failure,
    create_json,
    run,
    slow_backfill,
)
from tests.cli.client_support import cwd as cwd  # the fixture
from tests.support import Tenant, wait_for


def test_create_prints_the_created_backfill(tenant: Tenant, cwd: Path) -> None:
    transfer_id = tenant.create_transfer(rows_per_day=2)

    result = run(
        tenant,
        cwd,
        "create",
        "--team",
        str(tenant.team_id),
        "--transfer",
        str(transfer_id),
        "--from",
        "2024-02-01",
        "--to",
        "2024-02-05",
    )

    assert result.returncode == 0, result.stderr
    match = re.search(r"Created backfill (\d+) of transfer (\d+)", result.stdout)
    assert match, result.stdout
    assert int(match.group(2)) == transfer_id
    assert "2024-02-01 to 2024-02-05" in result.stdout
    backfill = tenant.backfill(int(match.group(1)))
    assert backfill["transfer_id"] == transfer_id
    assert backfill["transfer_runs_total"] == 5


def test_create_json_prints_the_backfill_data(tenant: Tenant, cwd: Path) -> None:
    transfer_id = tenant.create_transfer(rows_per_day=2)

    created = create_json(tenant, cwd, transfer_id, "2024-02-01", "2024-02-03")

    assert created["status"] == "CREATED"
    assert created["transfer_id"] == transfer_id
    assert created["range_start_date"] == "2024-02-01"
    assert created["range_end_date"] == "2024-02-03"
    assert created["transfer_runs_total"] == 3
    assert created["created_user_id"] == tenant.user_id
    assert tenant.backfill(created["transfer_backfill_id"])["transfer_id"] == transfer_id


def test_create_watch_exits_zero_when_the_backfill_completes(tenant: Tenant, cwd: Path) -> None:
    transfer_id = tenant.create_transfer(rows_per_day=2)

    result = run(
        tenant,
        cwd,
        "create",
        "--team",
        str(tenant.team_id),
        "--transfer",
        str(transfer_id),
        "--from",
        "2024-03-01",
        "--to",
        "2024-03-03",
        "--watch",
        "--interval",
        "0.2",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    match = re.search(r"Backfill (\d+) COMPLETED: 3 completed, 0 failed of 3", result.stdout)
    assert match, result.stdout
    assert tenant.backfill(int(match.group(1)))["status"] == "COMPLETED"


def test_create_watch_exits_one_and_names_the_failed_run(tenant: Tenant, cwd: Path) -> None:
    transfer_id = tenant.create_transfer(rows_per_day=2, fail_dates=["2024-03-02"])

    result = run(
        tenant,
        cwd,
        "create",
        "--team",
        str(tenant.team_id),
        "--transfer",
        str(transfer_id),
        "--from",
        "2024-03-01",
        "--to",
        "2024-03-03",
        "--watch",
        "--interval",
        "0.2",
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    match = re.search(r"Backfill (\d+) FAILED: 2 completed, 1 failed of 3", result.stdout)
    assert match, result.stdout
    [entry] = tenant.backfill(int(match.group(1)))["error_report"]
    assert entry["transfer_run_date"] == "2024-03-02"
    assert f"failed 2024-03-02: {entry['error']}" in result.stdout


def test_create_watch_json_prints_only_the_final_backfill(tenant: Tenant, cwd: Path) -> None:
    transfer_id = tenant.create_transfer(rows_per_day=2)

    result = run(
        tenant,
        cwd,
        "create",
        "--team",
        str(tenant.team_id),
        "--transfer",
        str(transfer_id),
        "--from",
        "2024-03-10",
        "--to",
        "2024-03-11",
        "--watch",
        "--json",
        "--interval",
        "0.2",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    final = json.loads(result.stdout)
    assert final["transfer_id"] == transfer_id
    assert final["status"] == "COMPLETED"
    assert final["transfer_runs_completed"] == 2


def test_watch_shows_progress_and_exits_zero_on_completed(tenant: Tenant, cwd: Path) -> None:
    transfer_id = tenant.create_transfer(rows_per_day=2)
    backfill_id = tenant.create_backfill(transfer_id, "2024-04-01", "2024-04-04")[
        "transfer_backfill_id"
    ]

    result = run(
        tenant, cwd, "watch", "--team", str(tenant.team_id), str(backfill_id), "--interval", "0.2"
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Backfill {backfill_id} COMPLETED: 4 completed, 0 failed of 4" in result.stdout
    # the progress bar (on stderr) ends showing every run processed
    assert "4/4" in result.stderr, result.stderr
    assert "4 completed, 0 failed" in result.stderr, result.stderr
    assert "ETA" in result.stderr, result.stderr


def test_watch_json_prints_the_final_backfill(tenant: Tenant, cwd: Path) -> None:
    transfer_id = tenant.create_transfer(rows_per_day=2)
    backfill_id = tenant.create_backfill(transfer_id, "2024-04-01", "2024-04-02")[
        "transfer_backfill_id"
    ]

    result = run(
        tenant,
        cwd,
        "watch",
        "--team",
        str(tenant.team_id),
        str(backfill_id),
        "--interval",
        "0.2",
        "--json",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    final = json.loads(result.stdout)
    assert final["transfer_backfill_id"] == backfill_id
    assert final["status"] == "COMPLETED"
    assert final["transfer_runs_completed"] == 2


def test_cancel_cancels_the_backfill(tenant: Tenant, cwd: Path) -> None:
    backfill_id = slow_backfill(tenant)

    result = run(tenant, cwd, "cancel", "--team", str(tenant.team_id), str(backfill_id))

    assert result.returncode == 0, result.stderr
    assert f"Cancelled backfill {backfill_id}" in result.stdout
    assert "CANCELLED" in result.stdout
    backfill = tenant.backfill(backfill_id)
    assert backfill["status"] == "CANCELLED"
    assert backfill["removed_user_id"] == tenant.user_id


def test_cancel_json_prints_the_cancelled_backfill(tenant: Tenant, cwd: Path) -> None:
    backfill_id = slow_backfill(tenant)

    result = run(tenant, cwd, "cancel", "--team", str(tenant.team_id), str(backfill_id), "--json")

    assert result.returncode == 0, result.stderr
    cancelled = json.loads(result.stdout)
    assert cancelled["transfer_backfill_id"] == backfill_id
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["removed_user_id"] == tenant.user_id
    assert cancelled["removed_time"] is not None


def test_watch_of_a_cancelled_backfill_exits_non_zero(tenant: Tenant, cwd: Path) -> None:
    backfill_id = slow_backfill(tenant)
    cancelled = run(tenant, cwd, "cancel", "--team", str(tenant.team_id), str(backfill_id))
    assert cancelled.returncode == 0, cancelled.stderr

    result = run(tenant, cwd, "watch", "--team", str(tenant.team_id), str(backfill_id))

    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert f"Backfill {backfill_id} CANCELLED" in result.stdout


def test_watch_of_a_cancelled_backfill_follows_the_drain_to_its_final_counts(
    tenant: Tenant, cwd: Path
) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=2, latency_ms=3000)
    backfill_id = tenant.create_backfill(transfer_id, "2023-03-01", "2023-03-10")[
        "transfer_backfill_id"
    ]
    wait_for(lambda: tenant.backfill(backfill_id)["transfer_runs_running"] == 2, timeout=60)
    cancelled = tenant.http.patch(
        f"/teams/{tenant.team_id}/backfills/{backfill_id}", json={"status": "CANCELLED"}
    ).json()["data"]
    assert (cancelled["transfer_runs_completed"], cancelled["transfer_runs_running"]) == (0, 2)

    result = run(
        tenant, cwd, "watch", "--team", str(tenant.team_id), str(backfill_id), "--interval", "0.2"
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert f"Backfill {backfill_id} CANCELLED: 2 completed, 0 failed of 10" in result.stdout
    assert "2/2" in result.stderr, result.stderr
    final = tenant.backfill(backfill_id)
    assert (final["transfer_runs_completed"], final["transfer_runs_running"]) == (2, 0)


def test_cancel_a_cancelled_backfill_fails_with_the_api_message(tenant: Tenant, cwd: Path) -> None:
    backfill_id = slow_backfill(tenant)
    run(tenant, cwd, "cancel", "--team", str(tenant.team_id), str(backfill_id))

    result = run(tenant, cwd, "cancel", "--team", str(tenant.team_id), str(backfill_id))

    assert_clean_failure(result)
    assert "UNPROCESSABLE_ENTITY" in result.stderr
    assert REQUEST_ID.search(result.stderr), result.stderr


def test_list_shows_the_teams_incomplete_backfills(tenant: Tenant, cwd: Path) -> None:
    first = slow_backfill(tenant)
    second = slow_backfill(tenant, "2023-03-01", "2023-03-30")
    try:
        result = run(tenant, cwd, "list", "--team", str(tenant.team_id))

        assert result.returncode == 0, result.stderr
        header, *rows = result.stdout.splitlines()
        assert header.split()[:4] == ["ID", "TRANSFER", "RANGE", "STATUS"]
        assert [row.split()[0] for row in rows] == [str(second), str(first)]  # newest first
        assert "2023-03-01..2023-03-30" in rows[0]
        assert rows[0].split()[3] in {"CREATED", "SCHEDULED", "RUNNING"}
    finally:
        for backfill_id in (first, second):
            run(tenant, cwd, "cancel", "--team", str(tenant.team_id), str(backfill_id))


def test_list_json_prints_the_backfills(tenant: Tenant, cwd: Path) -> None:
    backfill_id = slow_backfill(tenant)
    try:
        result = run(tenant, cwd, "list", "--team", str(tenant.team_id), "--json")

        assert result.returncode == 0, result.stderr
        [listed] = json.loads(result.stdout)
        assert listed["transfer_backfill_id"] == backfill_id
        assert listed["transfer_runs_total"] == 30
    finally:
        run(tenant, cwd, "cancel", "--team", str(tenant.team_id), str(backfill_id))


def test_list_of_a_team_without_backfills_says_so(tenant: Tenant, cwd: Path) -> None:
    result = run(tenant, cwd, "list", "--team", str(tenant.team_id))

    assert result.returncode == 0, result.stderr
    assert f"No incomplete backfills in team {tenant.team_id}" in result.stdout


def test_a_bad_token_prints_the_message_code_and_request_id(tenant: Tenant, cwd: Path) -> None:
    result = run(
        tenant, cwd, "list", "--team", str(tenant.team_id), BACKFILLS_TOKEN="bft_not-a-token"
    )

    assert_clean_failure(result)
    assert "UNAUTHORIZED" in result.stderr
    assert "the token is unknown, expired or revoked" in result.stderr
    assert REQUEST_ID.search(result.stderr), result.stderr
    assert result.stdout == ""


def test_watch_of_an_unknown_backfill_prints_not_found(tenant: Tenant, cwd: Path) -> None:
    result = run(tenant, cwd, "watch", "--team", str(tenant.team_id), "99999999")

    assert_clean_failure(result)
    assert "NOT_FOUND" in result.stderr
    assert REQUEST_ID.search(result.stderr), result.stderr


def test_create_with_an_inverted_range_prints_the_api_message(tenant: Tenant, cwd: Path) -> None:
    transfer_id = tenant.create_transfer()

    result = run(
        tenant,
        cwd,
        "create",
        "--team",
        str(tenant.team_id),
        "--transfer",
        str(transfer_id),
        "--from",
        "2024-01-10",
        "--to",
        "2024-01-01",
    )

    assert_clean_failure(result)
    assert "range_end is before range_start" in result.stderr
    assert "UNPROCESSABLE_ENTITY" in result.stderr
    assert REQUEST_ID.search(result.stderr), result.stderr


def test_create_an_overlapping_backfill_prints_the_conflict(tenant: Tenant, cwd: Path) -> None:
    backfill_id = slow_backfill(tenant)
    transfer_id = tenant.backfill(backfill_id)["transfer_id"]
    try:
        result = run(
            tenant,
            cwd,
            "create",
            "--team",
            str(tenant.team_id),
            "--transfer",
            str(transfer_id),
            "--from",
            "2023-01-15",
            "--to",
            "2023-02-15",
        )

        assert_clean_failure(result)
        assert "CONFLICT_ERROR" in result.stderr
        assert REQUEST_ID.search(result.stderr), result.stderr
    finally:
        run(tenant, cwd, "cancel", "--team", str(tenant.team_id), str(backfill_id))


def test_create_with_a_malformed_date_fails_before_calling(tenant: Tenant, cwd: Path) -> None:
    result = run(
        tenant,
        cwd,
        "create",
        "--team",
        str(tenant.team_id),
        "--transfer",
        "1",
        "--from",
        "2024-02-30",
        "--to",
        "2024-03-01",
    )

    assert_clean_failure(result)
    assert "--from" in result.stderr


def test_an_unreachable_api_gives_a_clear_message(tenant: Tenant, cwd: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"

    result = run(tenant, cwd, "list", "--team", str(tenant.team_id), BACKFILLS_API_URL=url)

    assert_clean_failure(result)
    assert "cannot connect to the backfill API" in result.stderr
    assert url in result.stderr


def test_a_missing_token_gives_a_clear_message(tenant: Tenant, cwd: Path) -> None:
    result = run(tenant, cwd, "list", "--team", str(tenant.team_id), BACKFILLS_TOKEN="")

    assert_clean_failure(result)
    assert "BACKFILLS_TOKEN" in result.stderr


def test_create_takes_the_cap_the_failure_budget_and_newest_first(
    tenant: Tenant, cwd: Path
) -> None:
    transfer_id = tenant.create_transfer(rows_per_day=2)

    result = run(
        tenant,
        cwd,
        "create",
        "--team",
        str(tenant.team_id),
        "--transfer",
        str(transfer_id),
        "--start",
        "2024-05-01",
        "--end",
        "2024-05-03",
        "--max-concurrent-runs",
        "2",
        "--max-failed-runs",
        "3",
        "--newest-first",
        "--json",
    )

    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert (created["range_start_date"], created["range_end_date"]) == ("2024-05-01", "2024-05-03")
    assert (created["max_concurrent_runs"], created["max_failed_runs"]) == (2, 3)
    assert created["run_order"] == "NEWEST_FIRST"
    assert tenant.backfill(created["transfer_backfill_id"])["run_order"] == "NEWEST_FIRST"


def test_create_with_an_idempotency_key_twice_answers_the_same_backfill(
    tenant: Tenant, cwd: Path
) -> None:
    transfer_id = tenant.create_transfer(rows_per_day=2)
    command = ("create", "--team", str(tenant.team_id), "--transfer", str(transfer_id))
    key = ("--idempotency-key", f"key-{tenant.team_id}")

    first = run(tenant, cwd, *command, "--from", "2024-05-10", "--to", "2024-05-11", *key)
    again = run(tenant, cwd, *command, "--from", "2024-05-10", "--to", "2024-05-11", *key)
    other = run(tenant, cwd, *command, "--from", "2024-05-10", "--to", "2024-05-12", *key)

    assert first.returncode == 0, first.stderr
    made = re.search(r"^Created backfill (\d+) ", first.stdout)
    assert made, first.stdout
    assert again.returncode == 0, again.stderr
    assert re.search(rf"^Already created backfill {made.group(1)} ", again.stdout), again.stdout
    assert "nothing new was created" in again.stderr
    assert_clean_failure(other)
    assert "UNPROCESSABLE_ENTITY" in other.stderr
    assert REQUEST_ID.search(other.stderr), other.stderr
    latest = tenant.http.get(f"/teams/{tenant.team_id}/transfers/{transfer_id}/backfills/latest")
    assert latest.json()["data"]["transfer_backfill_id"] == int(made.group(1))  # none other


def test_create_newest_first_contradicting_the_run_order_is_a_usage_error(
    tenant: Tenant, cwd: Path
) -> None:
    result = run(
        tenant,
        cwd,
        "create",
        "--team",
        str(tenant.team_id),
        "--transfer",
        "1",
        "--from",
        "2024-05-01",
        "--to",
        "2024-05-02",
        "--newest-first",
        "--run-order",
        "OLDEST_FIRST",
    )

    assert_clean_failure(result)
    assert result.returncode == 2
    assert "--newest-first" in result.stderr


def test_watch_shows_the_pause_its_reason_and_the_drain_then_stops(
    tenant: Tenant, cwd: Path
) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=1, latency_ms=4000)
    backfill_id = tenant.create_backfill(transfer_id, "2023-02-01", "2023-02-10")[
        "transfer_backfill_id"
    ]
    try:
        wait_for(lambda: tenant.backfill(backfill_id)["transfer_runs_running"] == 1, timeout=60)
        paused = tenant.http.patch(
            f"/teams/{tenant.team_id}/backfills/{backfill_id}",
            json={"paused": True, "paused_reason": "source maintenance"},
        )
        assert paused.status_code == 200, paused.text

        # TTY_COMPATIBLE: rich redraws the bar as on a terminal, so each state shows
        result = run(
            tenant,
            cwd,
            "watch",
            "--team",
            str(tenant.team_id),
            str(backfill_id),
            "--interval",
            "0.2",
            TTY_COMPATIBLE="1",
        )

        assert result.returncode == 1, result.stdout + result.stderr
        assert "paused: source maintenance; draining, 1 run still running" in result.stderr
        assert "ETA none (paused)" in result.stderr
        assert (
            f"Backfill {backfill_id} RUNNING, paused: source maintenance: "
            "1 completed, 0 failed of 10" in result.stdout
        )
        assert f"backfills resume --team {tenant.team_id} {backfill_id}" in result.stdout
        assert tenant.backfill(backfill_id)["transfer_runs_running"] == 0
    finally:
        tenant.cancel(backfill_id)


def test_watch_shows_the_estimated_end_time(tenant: Tenant, cwd: Path) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=1, latency_ms=1000)
    first = tenant.create_backfill(transfer_id, "2023-04-01", "2023-04-01")
    tenant.wait_until_status(first["transfer_backfill_id"], "COMPLETED")  # a run to learn from
    backfill_id = tenant.create_backfill(transfer_id, "2023-04-02", "2023-04-05")[
        "transfer_backfill_id"
    ]

    result = run(
        tenant,
        cwd,
        "watch",
        "--team",
        str(tenant.team_id),
        str(backfill_id),
        "--interval",
        "0.2",
        TTY_COMPATIBLE="1",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"ETA \d\d:\d\d:\d\d \((in \d+ s|any moment now)\)", result.stderr), (
        result.stderr
    )
    assert "ETA done" in result.stderr
