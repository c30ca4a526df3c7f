"""bench/scale: how create latency, throughput, history size and worker RSS grow with the work.

First one backfill at a time of each size in `--sizes` (default 1, 10, 100, 1,000, 10,000
and 36,500 dates), then `--concurrent` (default 1, 10 and 100) backfills of `--each` dates
(default 100) at once, each on a transfer of its own. Zero-latency `demo` runs, one worker
process, the API over HTTP. For each: the create's answer time (the slowest, when several),
runs per second from the first create to the last COMPLETED, the workflow history (events
over every run of the continue-as-new chain, and the largest run), and the worker's RSS
sampled every 0.5 s. Each row ends with the growth against the row before: work xk,
time xt; nothing should grow faster than the work.

.venv/bin/python -m bench.scale [--sizes 1,10,100,1000,10000,36500] [--concurrent 1,10,100]
"""

import argparse
import asyncio
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import httpx
from temporalio.client import Client

from bench.harness import Bench, bench_environment, make_transfer, start_api, stop_all, token_for
from persistence.models import Transfer
from statuses import BackfillStatus
from temporal_client import connect, workflow_id

CONCURRENCY = 50  # each backfill's cap


@dataclass
class Figures:
    label: str
    runs: int
    create_ms: float
    seconds: float
    events: int
    largest_run_events: int
    max_rss_mib: float

    def row(self, before: "Figures | None") -> str:
        growth = ""
        if before is not None:
            growth = (
                f"  work x{self.runs / before.runs:g}, time x{self.seconds / before.seconds:.1f}, "
                f"events x{self.events / max(1, before.events):.1f}"
            )
        return (
            f"{self.label:>22}: create {self.create_ms:6.1f} ms  {self.runs / self.seconds:6.1f} "
            f"runs/s  ({self.seconds:6.1f} s)  history {self.events:7d} events (largest run "
            f"{self.largest_run_events})  worker RSS max {self.max_rss_mib:5.0f} MiB{growth}"
        )


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def history_events(client: Client, backfill_id: int) -> tuple[int, int]:
    """Events over every run of the backfill's workflow, and the largest run's."""
    sizes = []
    query = f"WorkflowId = '{workflow_id(backfill_id)}'"
    async for execution in client.list_workflows(query):
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        sizes.append(len((await handle.fetch_history()).events))
    return sum(sizes), max(sizes, default=0)


@dataclass(frozen=True)
class Created:
    backfill_id: int
    path: str
    headers: dict[str, str]
    answered_in: float


async def measure(
    bench: Bench, worker_pid: int, base: str, label: str, count: int, dates: int
) -> Figures:
    """`count` backfills of `dates` dates, each on a transfer (and team) of its own."""
    transfers = [make_transfer(bench, max_concurrent_runs=CONCURRENCY) for _ in range(count)]
    first = date(1900, 1, 1)
    last = first + timedelta(days=dates - 1)
    peak = rss_mib(worker_pid)
    async with httpx.AsyncClient(base_url=base, timeout=120) as http:

        async def create(transfer: Transfer) -> Created:
            headers = {"Authorization": f"Bearer {token_for(bench, transfer)}"}
            started = time.perf_counter()
            response = await http.post(
                f"/teams/{transfer.team_id}/transfers/{transfer.id}/backfills",
                json={"range_start": str(first), "range_end": str(last)},
                headers=headers,
            )
            answered_in = time.perf_counter() - started
            assert response.status_code == 200, response.text
            backfill_id = response.json()["data"]["transfer_backfill_id"]
            path = f"/teams/{transfer.team_id}/backfills/{backfill_id}"
            return Created(backfill_id, path, headers, answered_in)

        started = time.perf_counter()
        created = await asyncio.gather(*(create(transfer) for transfer in transfers))
        pending = list(created)
        while pending:
            await asyncio.sleep(0.5)
            peak = max(peak, rss_mib(worker_pid))
            answers = [await http.get(c.path, headers=c.headers) for c in pending]
            pending = [
                c
                for c, answer in zip(pending, answers, strict=True)
                if answer.json()["data"]["status"] != BackfillStatus.COMPLETED
            ]
        seconds = time.perf_counter() - started
    client = await connect(bench.settings)
    events = [await history_events(client, c.backfill_id) for c in created]
    return Figures(
        label=label,
        runs=count * dates,
        create_ms=max(c.answered_in for c in created) * 1000,
        seconds=seconds,
        events=sum(total for total, _ in events),
        largest_run_events=max(largest for _, largest in events),
        max_rss_mib=peak,
    )


def run(sizes: list[int], concurrent: list[int], each: int, database_url: str | None) -> None:
    with bench_environment(database_url) as bench:
        worker = bench.spawn("-m", "cli.main", "worker", log="worker.log")
        api, base = start_api(bench)
        try:
            before = None
            for dates in sizes:
                figures = asyncio.run(measure(bench, worker.pid, base, f"{dates} dates", 1, dates))
                print(figures.row(before), flush=True)
                before = figures
            before = None
            for count in concurrent:
                label = f"{count} x {each} dates"
                figures = asyncio.run(measure(bench, worker.pid, base, label, count, each))
                print(figures.row(before), flush=True)
                before = figures
        finally:
            stop_all(api, worker)


def _numbers(value: str) -> list[int]:
    return [int(part) for part in value.split(",") if part]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=_numbers, default=[1, 10, 100, 1000, 10000, 36500])
    parser.add_argument("--concurrent", type=_numbers, default=[1, 10, 100])
    parser.add_argument("--each", type=int, default=100)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()
    run(args.sizes, args.concurrent, args.each, args.database_url)


if __name__ == "__main__":
    main()
