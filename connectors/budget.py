"""The memory one worker process lets its loads hold: batches of records, a few MiB each.

Records stream from a source to its destination a batch at a time (connectors/sql_table.py),
so a run holds one batch, however large its partition. A batch is sized to about
BATCH_BYTES (and at most INSERT_BATCH_ROWS records); the worker's budget
(`BACKFILLS_WORKER_MEMORY_BUDGET_MIB`) is that many batches at once, shared by all its runs.
A run reads its next batch only once it holds one of those slots: with many runs of large
records at once, some wait for a slot (heartbeating meanwhile, as their activity always
does) instead of pushing the worker past its budget.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager

BATCH_BYTES = 8 * 1024 * 1024


class LoadBudget:
    """Slots for batches in memory: `batches` at once, or no limit (None)."""

    def __init__(self, batches: int | None = None) -> None:
        self.batches = batches
        self._slots = threading.BoundedSemaphore(batches) if batches else None

    @classmethod
    def of_mib(cls, mib: int) -> "LoadBudget":
        return cls(max(1, mib * 1024 * 1024 // BATCH_BYTES))

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Hold a slot while one batch is read and loaded."""
        if self._slots is None:
            yield
            return
        with self._slots:
            yield


class SpoolFull(Exception):
    """No room in the disk budget for more of a body (`whole`: not even with it all free)."""

    def __init__(self, whole: bool) -> None:
        super().__init__("the spool budget is used up")
        self.whole = whole


class SpoolBudget:
    """Bytes of temporary disk the responses one worker process keeps at once (an `http`
    body waits in a temporary file while it is parsed): `limit` bytes, or no limit (None).

    A run takes its body's bytes as they arrive and gives them back when it closes the
    body, so many runs of large sources cannot fill the worker's disk.
    """

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self.used = 0
        self._lock = threading.Lock()

    @classmethod
    def of_mib(cls, mib: int) -> "SpoolBudget":
        return cls(mib * 1024 * 1024)

    def take(self, size: int, *, holding: int) -> None:
        """Take `size` more bytes for a body already holding `holding`; SpoolFull if the
        budget has no room for them."""
        with self._lock:
            if self.limit is not None and self.used + size > self.limit:
                raise SpoolFull(whole=holding + size > self.limit)
            self.used += size

    def give_back(self, size: int) -> None:
        with self._lock:
            self.used -= size
