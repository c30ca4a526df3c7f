"""A deployment without its secrets key does not start: the API and the worker say why."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli.devserver import free_port
from tests.support import REPO


@pytest.mark.parametrize("command", ["api", "worker"])
def test_a_missing_key_with_a_database_url_stops_start_up_with_a_clear_message(
    command: str, tmp_path: Path
) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("BACKFILLS_")}
    env |= {
        # nothing listens there: the key is checked before any connection is tried
        "BACKFILLS_DATABASE_URL": f"postgresql://backfills@127.0.0.1:{free_port()}/backfills",
        "BACKFILLS_DATA_DIR": str(tmp_path),
        "BACKFILLS_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "BACKFILLS_API_PORT": str(free_port()),
    }

    done = subprocess.run(
        [sys.executable, "-m", "cli.main", command],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode != 0
    assert "BACKFILLS_SECRETS_KEY is not set" in done.stderr
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []
