"""Recorded workflow histories, replayed by test_replay.py so that a change which would break
running workflows fails CI.

To add histories of today's code (after a change of the workflow or its inputs):
    BACKFILLS_RECORD_HISTORIES=1 .venv/bin/pytest tests/workflows -k sqlite
then keep the older files too, under other names (e.g. `completed-with-team.json` beside
`completed.json`): workflows started by older code may still be running.
"""

import os
from pathlib import Path

from temporalio.client import Client

DIRECTORY = Path(__file__).parent / "histories"


async def record_history(
    client: Client, workflow_id: str, name: str, run_id: str | None = None
) -> None:
    """Save a workflow's history as `histories/<name>.json` when recording is asked for."""
    if os.environ.get("BACKFILLS_RECORD_HISTORIES") != "1":
        return
    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    (DIRECTORY / f"{name}.json").write_text(history.to_json())
