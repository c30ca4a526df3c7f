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
