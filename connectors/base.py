"""The connector interface and the registry of connector types.

A source extracts the records of one `data_date`; a destination replaces that date's
partition with them. Adding a connector is one module that registers its options model here.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from connectors.budget import LoadBudget, SpoolBudget
from connectors.egress import EgressPolicy

Record = dict[str, Any]
Heartbeat = Callable[[], None]
Fence = Callable[[], None]


def _always_current() -> None:
    return None


@dataclass(frozen=True)
class QueryDetail:
    status: str
    rows: int
    duration: float
    error_description: str | None = None


@dataclass
class Extract:
    """What a source extracted: `records` may be lazy (a source streaming its rows, read
    once, in order, by the destination, a batch at a time); `query_details` is complete
    once they have all been read. A lazy source's `records` may also be a generator, which
    the run closes should the load end before reading them all."""

    records: Iterable[Record] = field(default_factory=list)
    query_details: list[QueryDetail] = field(default_factory=list)

    def close(self) -> None:
        """Stop a lazy source's reading (its connection closes): for a load that ended
        before reading every record. Nothing to do once they were all read."""
        close = getattr(self.records, "close", None)
        if callable(close):
            close()


@dataclass(frozen=True)
class RunContext:
    """What a connector may know of where it runs: its team's own directory (never the data
    directory above it) and the outbound network policy every connection obeys.

    `load_budget` holds the batches a load reads, `spool_budget` the bytes of responses
    waiting on disk (connectors/budget.py). `heartbeat` is
    optional for a connector: the run activity beats on its own while the
    connector works (activities/heartbeats.py). `still_current` is the run's fence: it
    raises `AttemptSuperseded` once a newer attempt of the run has begun (or the run ended).
    A destination calls it after writing the partition and before committing, while it holds
    the destination's write lock, so that an attempt Temporal has given up on, still running
    somewhere, cannot commit over the newer attempt's rows.
    """

    team_dir: Path
    transfer_id: int
    heartbeat: Heartbeat
    egress: EgressPolicy = field(default_factory=EgressPolicy)
    still_current: Fence = _always_current
    load_budget: LoadBudget = field(default_factory=LoadBudget)  # the worker's, shared
    spool_budget: SpoolBudget = field(default_factory=SpoolBudget)  # the worker's, shared


class Source(Protocol):
    def extract(self, data_date: date, context: RunContext) -> Extract: ...


class Destination(Protocol):
    def replace_partition(
        self, data_date: date, records: Iterable[Record], context: RunContext
    ) -> int:
        """Replace `data_date`'s rows with `records` in one transaction; returns rows written.
        `records` is read once, a batch at a time: never all of it in memory.

        Calls `context.still_current()` before the commit, under the destination's lock."""
        ...


class ConnectorOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str

    @property
    def database_url(self) -> str | None:
        """The URL of the database this connector opens, if it opens one: checked against
        the service's own databases when a transfer is saved."""
        return None


class SourceOptions(ConnectorOptions):
    def build(self) -> Source:
        raise NotImplementedError


class DestinationOptions(ConnectorOptions):
    def build(self) -> Destination:
        raise NotImplementedError
