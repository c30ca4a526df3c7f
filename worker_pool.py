"""`backfills worker --processes N` (or BACKFILLS_WORKER_PROCESSES): N worker processes under
one supervisor.

One Python process runs its activities and its workflows on one interpreter (one GIL), so a
machine's other cores stay idle however many run slots it has. Workers are stateless, so
the supervisor simply starts N of them, each the same `backfills worker` with its own slots,
and stops them together:

- SIGTERM or SIGINT is passed to every worker, which drains as one worker does (see
  worker.py); the supervisor exits once all have, with the worst exit status among them.
- A worker that ends by itself (a crash, a refused start) stops the others and the
  supervisor exits with its status, for the process manager to restart the whole.
- Process i (from 0) serves its metrics on each configured metrics port plus 100·i, so that
  they do not take each other's ports (0 stays off).
- Should the supervisor die, the kernel sends each worker SIGTERM (Linux), so none is left
  polling without it.
"""

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from types import FrameType

from config import Settings

log = logging.getLogger("backfills.worker")
PORT_STRIDE = 100
_PR_SET_PDEATHSIG = 1


def run_worker_processes(settings: Settings, count: int, queues: list[str] | None) -> int:
    """Run `count` workers until a signal or until one ends by itself; their exit status."""
    workers = [_start(settings, index, queues) for index in range(count)]
    log.info("worker supervisor: %d worker processes %s", count, [w.pid for w in workers])
    stopping = False

    def forward(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    first_failure: int | None = None
    while any(worker.poll() is None for worker in workers):
        ended = [w for w in workers if w.returncode is not None]
        if ended and not stopping:
            first_failure = _status(ended[0].returncode)
            log.warning(
                "worker process %d ended by itself (status %s): stopping the others",
                ended[0].pid,
                ended[0].returncode,
            )
            forward(signal.SIGTERM, None)
        time.sleep(0.2)
    statuses = [_status(worker.returncode, stopped=True) for worker in workers]
    return first_failure if first_failure is not None else max(statuses)


def _start(settings: Settings, index: int, queues: list[str] | None) -> "subprocess.Popen[bytes]":
    env = {**os.environ, "BACKFILLS_WORKER_PROCESSES": "1"}
    for name, port in (
        ("BACKFILLS_WORKER_METRICS_PORT", settings.worker_metrics_port),
        ("BACKFILLS_TEMPORAL_METRICS_PORT", settings.temporal_metrics_port),
    ):
        env[name] = str(port + PORT_STRIDE * index if port else 0)
    command = [sys.executable, "-m", "cli.main", "worker"]
    if queues is not None:
        command += ["--queues", ",".join(queues)]
    return subprocess.Popen(command, env=env, preexec_fn=_die_with_parent)


def _die_with_parent() -> None:
    """In the child, before it runs: SIGTERM when the supervisor dies (Linux only)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _status(returncode: int | None, *, stopped: bool = False) -> int:
    """A worker's exit status as the supervisor's own: death by a signal counts as 1, but
    for the signal that was passed on to stop it (one that came before the worker set up
    its handlers, while it was starting): that is a stop as asked."""
    if stopped and returncode in (-signal.SIGTERM, -signal.SIGINT):
        return 0
    if returncode is None or returncode < 0:
        return 1
    return returncode
