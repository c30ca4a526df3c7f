"""`backfills dev`: the whole local stack in the foreground; Ctrl-C stops all of it."""

import os
import signal
import subprocess
import sys
import time

from cli.devserver import start_dev_server, wait_for_port
from config import Settings
from persistence.migrate import upgrade

# On a developer's machine the sources and sinks to try are usually local ones; production
# refuses loopback unless BACKFILLS_CONNECTOR_ALLOWED_NETWORKS says otherwise.
DEV_ALLOWED_NETWORKS = "127.0.0.0/8,::1/128"


def run_dev(settings: Settings) -> int:
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url)
    env = {
        **os.environ,
        "BACKFILLS_DATA_DIR": str(data_dir),
        "BACKFILLS_TEMPORAL_ADDRESS": f"127.0.0.1:{settings.temporal_port}",
        "BACKFILLS_CONNECTOR_ALLOWED_NETWORKS": os.environ.get(
            "BACKFILLS_CONNECTOR_ALLOWED_NETWORKS", DEV_ALLOWED_NETWORKS
        ),
    }
    signal.signal(signal.SIGTERM, _interrupt)
    children: dict[str, subprocess.Popen[bytes]] = {}
    try:
        temporal = start_dev_server(
            port=settings.temporal_port,
            ui_port=settings.temporal_ui_port,
            namespaces=[settings.temporal_namespace],
            db_file=data_dir / "temporal.db",
            log_file=data_dir / "temporal.log",
        )
        children["temporal (log: temporal.log in the data dir)"] = temporal
        wait_for_port("127.0.0.1", settings.temporal_port, timeout=60, process=temporal)
        children["worker"] = _spawn("worker", env)
        children["api"] = _spawn("api", env)
        _announce(settings, env["BACKFILLS_CONNECTOR_ALLOWED_NETWORKS"])
        return _wait_for_first_exit(children)
    except KeyboardInterrupt:
        return 0
    finally:
        _stop_all(children)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _spawn(command: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A child in its own session: Ctrl-C reaches only us, and we stop the children in order."""
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", command], env=env, start_new_session=True
    )


def _announce(settings: Settings, allowed_networks: str) -> None:
    print(
        f"\nbackfills dev is up:\n"
        f"  API          http://{settings.api_host}:{settings.api_port}/v1  (docs: /docs)\n"
        f"  Temporal UI  http://127.0.0.1:{settings.temporal_ui_port}\n"
        f"  Temporal     127.0.0.1:{settings.temporal_port}\n"
        f"  data         {settings.data_dir.resolve()}\n"
        f"  egress       connectors reach public addresses"
        f"{f' and {allowed_networks}' if allowed_networks else ''}"
        " (BACKFILLS_CONNECTOR_ALLOWED_NETWORKS)\n"
        "Ctrl-C stops everything.\n",
        flush=True,
    )


def _wait_for_first_exit(children: dict[str, subprocess.Popen[bytes]]) -> int:
    while True:
        for name, child in children.items():
            if child.poll() is not None:
                print(f"{name} exited with {child.returncode}; stopping the rest", flush=True)
                return child.returncode or 1
        time.sleep(0.5)


def _stop_all(children: dict[str, subprocess.Popen[bytes]]) -> None:
    for child in reversed(children.values()):
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    for child in reversed(children.values()):
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
