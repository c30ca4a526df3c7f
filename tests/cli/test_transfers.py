"""`backfills transfers schedule|pause|resume|unschedule|show` and `backfills runs`, run as a
user runs them, against the stack's API and its Temporal."""

import json
from pathlib import Path
from subprocess import CompletedProcess

from tests.cli.client_support import assert_api_error, assert_clean_failure, run
from tests.cli.client_support import cwd as cwd  # the fixture
from tests.support import Tenant, wait_for


def transfers(tenant: Tenant, cwd: Path, command: str, *args: str) -> CompletedProcess[str]:
    return run(tenant, cwd, "transfers", command, "--team", str(tenant.team_id), *args)


def test_schedule_pause_resume_and_unschedule(tenant: Tenant, cwd: Path) -> None:
    transfer_id = str(tenant.create_transfer())

    scheduled = transfers(
        tenant, cwd, "schedule", transfer_id, "--cron", "30 2 * * *", "--tz", "Europe/Berlin"
    )
    paused = transfers(tenant, cwd, "pause", transfer_id, "--reason", "source migration")
    resumed = transfers(tenant, cwd, "resume", transfer_id, "--json")
    removed = transfers(tenant, cwd, "unschedule", transfer_id)

    assert scheduled.returncode == 0, scheduled.stderr
    assert "schedule: cron '30 2 * * *' in Europe/Berlin" in scheduled.stdout
    assert "loads the date 1 day(s) before each firing" in scheduled.stdout
    assert f"Temporal Schedule: transfer-{transfer_id}" in scheduled.stdout
    assert "next firings: " in scheduled.stdout
    assert paused.returncode == 0, paused.stderr
    assert "source migration" in paused.stdout and "paused since" in paused.stdout
    state = json.loads(resumed.stdout)["schedule_state"]
    assert (state["paused"], state["applied"]) == (False, True)
    assert "no schedule: it runs only by backfills" in removed.stdout
    shown = transfers(tenant, cwd, "show", transfer_id, "--json")
    assert json.loads(shown.stdout)["schedule"] is None


def test_a_daily_spec_and_its_mistakes(tenant: Tenant, cwd: Path) -> None:
    transfer_id = str(tenant.create_transfer())

    daily = transfers(tenant, cwd, "schedule", transfer_id, "--daily-at", "04:15")
    both = transfers(
        tenant, cwd, "schedule", transfer_id, "--cron", "0 1 * * *", "--daily-at", "1:00"
    )
    bad_zone = transfers(
        tenant, cwd, "schedule", transfer_id, "--cron", "0 1 * * *", "--tz", "Nowhere/Land"
    )
    no_schedule = transfers(tenant, cwd, "pause", str(tenant.create_transfer()))

    assert "daily at 04:15 in UTC" in daily.stdout, daily.stderr
    assert_clean_failure(both)
    assert "give one of --cron, --daily-at and --every-seconds" in both.stderr
    assert_api_error(bad_zone, "UNPROCESSABLE_ENTITY")
    assert "unknown time zone 'Nowhere/Land'" in bad_zone.stderr
    assert_api_error(no_schedule, "UNPROCESSABLE_ENTITY")


def test_runs_lists_recurring_and_backfill_runs_newest_first(tenant: Tenant, cwd: Path) -> None:
    transfer_id = tenant.create_transfer(rows_per_day=2)
    backfill_id = tenant.create_backfill(transfer_id, "2024-05-01", "2024-05-02")[
        "transfer_backfill_id"
    ]
    tenant.wait_until_status(backfill_id, "COMPLETED")
    transfers(tenant, cwd, "schedule", str(transfer_id), "--every-seconds", "2")

    def recurring_completed() -> bool:
        return any(
            run["type"] == "Recurring" and run["status"] == "COMPLETED"
            for run in tenant.runs(transfer_id)
        )

    try:
        wait_for(recurring_completed, timeout=60)
    finally:
        transfers(tenant, cwd, "unschedule", str(transfer_id))
    listed = run(
        tenant,
        cwd,
        "runs",
        "--team",
        str(tenant.team_id),
        "--transfer",
        str(transfer_id),
        "--days",
        "36000",
    )

    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["RUN", "TYPE", "DATA", "DATE", "STATUS", "ROWS", "MESSAGE"]
    types = [line.split()[1] for line in lines[1:]]
    assert types[0] == "Recurring"  # the newest
    assert types.count("Backfill") == 2
    assert "2024-05-01" in listed.stdout and "2024-05-02" in listed.stdout
