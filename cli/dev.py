"""`backfills dev`: the whole local stack in the foreground.

Ctrl-C (SIGINT), SIGTERM and SIGHUP (its terminal closing) stop it in order: the API, then
the worker (which drains the runs in flight), then Temporal. The children never outlive
`backfills dev`: on Linux each one is started with a parent-death signal, so even a SIGKILL
of `backfills dev` stops them (see `die_with_parent`).

The API's and the worker's output is copied to ours line by line, each line prefixed with
the part that wrote it (`api    | …`); the Temporal server's goes to `temporal.log` in the
data dir. Unless the user set them, dev logs in text (`BACKFILLS_LOG_FORMAT=text`) and serves
the worker's metrics on loopback only (`BACKFILLS_METRICS_HOST=127.0.0.1`).
"""

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from cli.devserver import start_dev_server, wait_for_port
from config import Settings
from persistence.migrate import upgrade

# On a developer's machine the sources and sinks to try are usually local ones; production
# refuses loopback unless BACKFILLS_CONNECTOR_ALLOWED_NETWORKS says otherwise.
DEV_ALLOWED_NETWORKS = "127.0.0.0/8,::1/128"
# Settings whose default differs under `backfills dev`: read by a person, on their laptop.
DEV_DEFAULTS = {"log_format": "text", "metrics_host": "127.0.0.1"}

TEMPORAL = "temporal (log: temporal.log in the data dir)"
WORKER = "worker"
API = "api"
PREFIX_WIDTH = max(len(WORKER), len(API))
STOP_SECONDS = 15.0  # how long a part may take to exit after SIGTERM, besides the worker's drain
RELAY_DRAIN_SECONDS = 10.0
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def dev_settings(settings: Settings) -> Settings:
    """`settings` with dev's own defaults for what the user left unset, in the environment
    or in `.env`."""
    unset = {
        key: value for key, value in DEV_DEFAULTS.items() if key not in settings.model_fields_set
    }
    return settings.model_copy(update=unset)


def run_dev(settings: Settings) -> int:
    _stop_on_signals()
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url)
    env = _child_env(settings, data_dir)
    out = _Terminal()
    children: dict[str, subprocess.Popen[bytes]] = {}
    relays: dict[str, threading.Thread] = {}
    try:
        children[TEMPORAL] = _start_temporal(settings, data_dir)
        wait_for_port("127.0.0.1", settings.temporal_port, timeout=60, process=children[TEMPORAL])
        for part in (WORKER, API):
            children[part] = _spawn(part, env)
            relays[part] = _relay(part, children[part], out)
        _announce(settings, env["BACKFILLS_CONNECTOR_ALLOWED_NETWORKS"], out)
        return _wait_for_first_exit(children, relays, out)
    except KeyboardInterrupt:
        return 0
    finally:
        _stop_all(children, worker_grace=settings.worker_shutdown_grace_seconds)
        for relay in relays.values():  # the children are gone: their output ends
            relay.join(timeout=RELAY_DRAIN_SECONDS)


def _stop_on_signals() -> None:
    """Ctrl-C, SIGTERM and SIGHUP all stop the stack in order. A signal that was ignored when
    we started stays ignored, so `nohup backfills dev` outlives its terminal as nohup means."""
    for signum in _STOP_SIGNALS:
        if signal.getsignal(signum) != signal.SIG_IGN:
            signal.signal(signum, _interrupt)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _child_env(settings: Settings, data_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "BACKFILLS_DATA_DIR": str(data_dir),
        "BACKFILLS_TEMPORAL_ADDRESS": f"127.0.0.1:{settings.temporal_port}",
        "BACKFILLS_CONNECTOR_ALLOWED_NETWORKS": os.environ.get(
            "BACKFILLS_CONNECTOR_ALLOWED_NETWORKS", DEV_ALLOWED_NETWORKS
        ),
        "BACKFILLS_LOG_FORMAT": settings.log_format,
        "BACKFILLS_METRICS_HOST": settings.metrics_host,
        "PYTHONUNBUFFERED": "1",  # what a child prints reaches the terminal when printed
    }


def die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` that has the kernel SIGKILL the child when this process dies, however it
    dies, SIGKILL included (Linux's PR_SET_PDEATHSIG); None on other systems.

    SIGKILL rather than SIGTERM: an orderly stop is `_stop_all`'s job, and once we are gone
    the parts would all stop at once, the worker's drain then waiting on a Temporal server
    that is shutting down too. A killed worker loses nothing: its runs are retried.

    The setting survives `exec` (of anything but a set-user-ID program), so the Temporal
    server, a Go binary, gets it like the Python children. The kernel sends it when the
    *thread* that started the child ends: every child is started from the main thread, which
    ends only with the process. Should we die between fork and prctl, the child sees that it
    has another parent already and exits. In the child the function only calls prctl and
    getppid, so it takes no lock that another thread of ours (a relay) may hold."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: no dlopen after fork
    parent = os.getpid()
    death_signal = int(signal.SIGKILL)

    def set_parent_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, death_signal)
        if os.getppid() != parent:
            os._exit(1)

    return set_parent_death_signal


def _start_temporal(settings: Settings, data_dir: Path) -> subprocess.Popen[bytes]:
    return start_dev_server(
        port=settings.temporal_port,
        ui_port=settings.temporal_ui_port,
        namespaces=[settings.temporal_namespace],
        db_file=data_dir / "temporal.db",
        log_file=data_dir / "temporal.log",
        preexec_fn=die_with_parent(),
    )


def _spawn(command: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A child in its own session, so that Ctrl-C reaches only us and we stop the children in
    order; its stdout and stderr both go to one pipe, for `_relay`."""
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", command],
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=die_with_parent(),
    )


class _Terminal:
    """Our stdout, shared by the relays and our own messages: whole lines, one at a time.

    Writing never fails: once the terminal is gone (SIGHUP) or the reader of a pipe left, the
    lines are dropped, but the relays keep reading so that no child blocks on a full pipe."""

    def __init__(self) -> None:
        self._stream = sys.stdout
        self._lock = threading.Lock()
        self._broken = False

    def write(self, text: str) -> None:
        with self._lock:
            if self._broken:
                return
            try:
                self._stream.write(text)
                self._stream.flush()
            except (OSError, ValueError):
                self._broken = True


def _relay(name: str, child: subprocess.Popen[bytes], out: _Terminal) -> threading.Thread:
    """A thread copying the child's output to `out`, each line prefixed with `name`, until
    the child's end of the pipe closes (it exited)."""
    prefix = f"{name:<{PREFIX_WIDTH}} | "
    stream = child.stdout
    assert stream is not None

    def copy() -> None:
        with stream:
            for raw in stream:
                out.write(prefix + raw.decode(errors="replace").rstrip("\r\n") + "\n")

    thread = threading.Thread(target=copy, name=f"relay-{name}", daemon=True)
    thread.start()
    return thread


def _announce(settings: Settings, allowed_networks: str, out: _Terminal) -> None:
    out.write(
        f"\nbackfills dev is up:\n"
        f"  API          http://{settings.api_host}:{settings.api_port}/v1  (docs: /docs)\n"
        f"  Temporal UI  http://127.0.0.1:{settings.temporal_ui_port}\n"
        f"  Temporal     127.0.0.1:{settings.temporal_port}\n"
        f"{_metrics_lines(settings)}\n"
        f"  data         {settings.data_dir.resolve()}\n"
        f"  egress       connectors reach public addresses"
        f"{f' and {allowed_networks}' if allowed_networks else ''}"
        " (BACKFILLS_CONNECTOR_ALLOWED_NETWORKS)\n"
        "Ctrl-C (or closing this terminal) stops everything.\n\n"
    )


def _metrics_lines(settings: Settings) -> str:
    """The stack's Prometheus endpoints, one a line; one turned off says which setting did."""

    def worker_endpoint(port: int, setting: str) -> str:
        if port == 0:
            return f"off ({setting}=0)"
        return f"http://{settings.metrics_host}:{port}/metrics"

    endpoints = [
        (f"http://{settings.api_host}:{settings.api_port}/metrics", "API"),
        (worker_endpoint(settings.worker_metrics_port, "BACKFILLS_WORKER_METRICS_PORT"), "worker"),
        (
            worker_endpoint(settings.temporal_metrics_port, "BACKFILLS_TEMPORAL_METRICS_PORT"),
            "the worker's Temporal SDK",
        ),
    ]
    labels = ["metrics", *[""] * (len(endpoints) - 1)]
    return "\n".join(
        f"  {label:<12} {url}  ({what})"
        for label, (url, what) in zip(labels, endpoints, strict=True)
    )


def _wait_for_first_exit(
    children: dict[str, subprocess.Popen[bytes]],
    relays: dict[str, threading.Thread],
    out: _Terminal,
) -> int:
    """The exit status of the first child to exit, once its last words are printed."""
    while True:
        for name, child in children.items():
            if child.poll() is not None:
                if name in relays:
                    relays[name].join(timeout=RELAY_DRAIN_SECONDS)
                out.write(f"{name} exited with {child.returncode}; stopping the rest\n")
                return child.returncode or 1
        time.sleep(0.5)


def _stop_all(children: dict[str, subprocess.Popen[bytes]], *, worker_grace: float) -> None:
    """Stop the children newest first (API, worker, Temporal), so the worker can still report
    the runs it drains to Temporal. Another Ctrl-C meanwhile kills the rest at once."""
    try:
        for name, child in reversed(children.items()):
            _stop(child, timeout=STOP_SECONDS + (worker_grace if name == WORKER else 0))
    except KeyboardInterrupt:
        for child in children.values():
            if child.poll() is None:
                child.kill()
            child.wait()


def _stop(child: subprocess.Popen[bytes], *, timeout: float) -> None:
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
