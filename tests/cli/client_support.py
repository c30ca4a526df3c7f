"""Running the client commands as a user runs them, against the stack's API: shared by the
tests of `create|watch|cancel|list`, of the control commands and of `show`."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import Tenant

BACKFILLS = Path(sys.executable).parent / "backfills"
REQUEST_ID = re.compile(r"request id ([0-9a-f]{32})")


@pytest.fixture
def cwd(tmp_path: Path) -> Path:
    """A directory without a `.env`, so only the environment below configures the command."""
    return tmp_path


def run(tenant: Tenant, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BACKFILLS_")}
    clean.update(
        BACKFILLS_API_URL=tenant.stack.api_url,
        BACKFILLS_TOKEN=tenant.token,
        COLUMNS="200",
        NO_COLOR="1",
    )
    clean.update(env)
    return subprocess.run(
        [str(BACKFILLS), *args],
        env=clean,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
    )


def team_run(
    tenant: Tenant, cwd: Path, command: str, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """`backfills <command> --team <the tenant's> <args>`."""
    return run(tenant, cwd, command, "--team", str(tenant.team_id), *args, **env)


def assert_clean_failure(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    assert "Traceback" not in result.stdout, result.stdout
    assert result.stderr.strip(), "the failure should say what is wrong"


def assert_api_error(result: subprocess.CompletedProcess[str], code: str) -> None:
    """Printed as every command prints an API error: message, code and request id; exit 1."""
    assert_clean_failure(result)
    assert result.returncode == 1, result.stderr
    assert code in result.stderr, result.stderr
    assert REQUEST_ID.search(result.stderr), result.stderr


def create_json(tenant: Tenant, cwd: Path, transfer_id: int, start: str, end: str) -> Any:
    result = run(
        tenant,
        cwd,
        "create",
        "--team",
        str(tenant.team_id),
        "--transfer",
        str(transfer_id),
        "--from",
        start,
        "--to",
        end,
        "--json",
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def slow_backfill(tenant: Tenant, start: str = "2023-01-01", end: str = "2023-01-30") -> int:
    """A backfill that stays incomplete for the length of a test: one slow run at a time."""
    transfer_id = tenant.create_transfer(max_concurrent_runs=1, latency_ms=2000)
    backfill_id: int = tenant.create_backfill(transfer_id, start, end)["transfer_backfill_id"]
    return backfill_id
