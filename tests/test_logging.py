"""Structured logs: each line one JSON object (time, level, logger, message) carrying the
ids known where it was written: the request id (the one answered in `X-Request-Id`) and the
path's ids in the API; the workflow and backfill ids in the worker's activities.
`BACKFILLS_LOG_FORMAT=text` gives plain lines instead."""

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from cli.devserver import free_port
from tests.support import Stack, Tenant, spawn, stop, wait_for


def json_lines(path: Path) -> list[dict[str, Any]]:
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return [json.loads(line) for line in lines]


def find_line(paths: list[Path], **fields: object) -> dict[str, Any] | None:
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            entry: dict[str, Any] = json.loads(line)
            if all(entry.get(key) == wanted for key, wanted in fields.items()):
                return entry
    return None


def test_every_api_log_line_is_one_json_object(stack: Stack, tenant: Tenant) -> None:
    response = tenant.http.get(f"/teams/{tenant.team_id}/backfills")
    request_id = response.headers["x-request-id"]
    api_log = stack.logs / "api.log"
    wait_for(lambda: find_line([api_log], request_id=request_id), timeout=30)

    entries = json_lines(api_log)

    assert entries
    for entry in entries:
        assert isinstance(entry, dict)
        assert {"time", "level", "logger", "message"} <= entry.keys(), entry
        assert datetime.fromisoformat(entry["time"].replace("Z", "+00:00")).tzinfo is not None
        assert entry["level"] in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}, entry


def test_api_request_line_carries_the_answered_request_id_and_the_path_ids(
    stack: Stack, tenant: Tenant
) -> None:
    response = tenant.http.get(f"/teams/{tenant.team_id}/backfills/919191")
    assert response.status_code == 404
    request_id = response.headers["x-request-id"]
    assert response.json()["meta"]["request_id"] == request_id

    entry = wait_for(lambda: find_line([stack.logs / "api.log"], request_id=request_id))

    assert entry["logger"] == "backfills.api"
    assert entry["level"] == "INFO"
    assert "404" in entry["message"]
    assert entry["team_id"] == tenant.team_id
    assert entry["backfill_id"] == 919191
    assert entry["workflow_id"] == "backfill-919191"


def test_api_line_of_a_request_without_ids_has_only_the_request_id(stack: Stack) -> None:
    response = httpx.get(stack.api_url.removesuffix("/v1") + "/healthz", timeout=10)
    request_id = response.headers["x-request-id"]

    entry = wait_for(lambda: find_line([stack.logs / "api.log"], request_id=request_id))

    assert "team_id" not in entry
    assert "backfill_id" not in entry


def test_worker_activity_lines_carry_the_team_workflow_and_backfill_ids(
    stack: Stack, tenant: Tenant
) -> None:
    transfer_id = tenant.create_transfer(fail_dates=["2024-07-01"])
    backfill_id = tenant.create_backfill(transfer_id, "2024-07-01", "2024-07-01")[
        "transfer_backfill_id"
    ]
    tenant.wait_until_status(backfill_id, "FAILED")

    def failure_line() -> dict[str, Any] | None:
        worker_logs = sorted(p for p in stack.logs.glob("*.log") if "api" not in p.name)
        return find_line(
            worker_logs, workflow_id=f"backfill-{backfill_id}", activity="run_transfer"
        )

    entry = wait_for(failure_line, timeout=30)

    # Temporal's own line about the failed attempt, with the error's traceback as a field.
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "temporalio.activity"
    assert entry["backfill_id"] == backfill_id
    assert entry["team_id"] == tenant.team_id
    assert entry["attempt"] == 1
    assert "2024-07-01 is listed in fail_dates" in entry["exception"]
    for line in json_lines(stack.logs / "worker.log"):
        assert {"time", "level", "logger", "message"} <= line.keys(), line


def test_text_log_format_writes_plain_lines_with_the_ids(stack: Stack, tenant: Tenant) -> None:
    port = free_port()
    env = {
        **stack.env,
        "BACKFILLS_API_PORT": str(port),
        "BACKFILLS_LOG_FORMAT": "text",
    }
    log = stack.logs / f"api-text-{port}.log"
    process = spawn(["api"], env, log)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(base + "/healthz"), timeout=60)
        response = httpx.get(
            f"{base}/v1/teams/{tenant.team_id}/backfills/929292",
            headers={"Authorization": f"Bearer {tenant.token}"},
            timeout=10,
        )
        request_id = response.headers["x-request-id"]

        def request_line() -> str | None:
            lines = log.read_text(errors="replace").splitlines()
            return next((line for line in lines if f"request_id={request_id}" in line), None)

        line = wait_for(request_line, timeout=30)
    finally:
        stop(process)

    assert not line.startswith("{")
    assert " INFO backfills.api " in line
    assert f"team_id={tenant.team_id}" in line
    assert "backfill_id=929292" in line


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
