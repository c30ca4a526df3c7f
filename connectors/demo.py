"""The `demo` source: deterministic synthetic advertising rows for a date."""

import random
import time
from datetime import date
from typing import Literal

from pydantic import Field

from connectors.base import Extract, QueryDetail, Record, RunContext, SourceOptions
from connectors.errors import PermanentError, TransientError
from statuses import QueryStatus

CAMPAIGNS = ("brand", "search", "social", "video", "display", "retargeting")


class DemoSourceOptions(SourceOptions):
    type: Literal["demo"] = "demo"
    rows_per_day: int = Field(default=24, ge=0, le=100_000)
    latency_ms: int = Field(default=0, ge=0, le=3_600_000)
    fail_dates: list[date] = Field(default_factory=list)
    flaky_rate: float = Field(default=0.0, ge=0.0, le=1.0)

    def build(self) -> "DemoSource":
        return DemoSource(self)


class DemoSource:
    def __init__(self, options: DemoSourceOptions) -> None:
        self.options = options

    def extract(self, data_date: date, context: RunContext) -> Extract:
        started = time.monotonic()
        _sleep_with_heartbeats(self.options.latency_ms / 1000, context)
        if data_date in self.options.fail_dates:
            raise PermanentError(f"demo source: {data_date} is listed in fail_dates")
        if self.options.flaky_rate and random.random() < self.options.flaky_rate:
            raise TransientError("demo source: simulated transient failure (flaky_rate)")
        records = demo_rows(data_date, self.options.rows_per_day)
        detail = QueryDetail(
            status=QueryStatus.SUCCESS, rows=len(records), duration=time.monotonic() - started
        )
        return Extract(records=records, query_details=[detail])


def demo_rows(data_date: date, count: int) -> list[Record]:
    """The same rows for the same date, every time."""
    rng = random.Random(data_date.toordinal())
    rows = []
    for row_number in range(count):
        impressions = rng.randint(100, 100_000)
        clicks = rng.randint(0, impressions // 10)
        rows.append(
            {
                "row_number": row_number,
                "campaign": CAMPAIGNS[row_number % len(CAMPAIGNS)],
                "impressions": impressions,
                "clicks": clicks,
                "cost": round(clicks * rng.uniform(0.05, 2.5), 2),
            }
        )
    return rows


def _sleep_with_heartbeats(seconds: float, context: RunContext) -> None:
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        time.sleep(min(remaining, 1.0))
        context.heartbeat()
