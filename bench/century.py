"""bench/century: a 100-year (36,500-date) daily backfill on the embedded default.

Prints how long the create took to answer, GET latency while it runs, the worker's memory
over time, the largest history of any workflow run in its continue-as-new chain, and the
total time:

    .venv/bin/python -m bench.century [--dates 36500] [--concurrency 100]
"""

import argparse
import asyncio
import time
from datetime import date, timedelta
from pathlib import Path

import httpx

from bench.harness import (
    bench_environment,
    make_transfer,
    start_api,
    stop_all,
    summary_ms,
    token_for,
)
from config import Settings
from statuses import BackfillStatus
from temporal_client import connect, workflow_id


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def largest_history(settings: Settings, backfill_id: int) -> tuple[int, int]:
    client = await connect(settings)
    lengths = []
    async for execution in client.list_workflows(f"WorkflowId = '{workflow_id(backfill_id)}'"):
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        lengths.append(len((await handle.fetch_history()).events))
    return len(lengths), max(lengths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dates", type=int, default=36_500)
    parser.add_argument("--concurrency", type=int, default=100)
    args = parser.parse_args()
    with bench_environment() as bench:
        worker = bench.spawn("-m", "cli.main", "worker", log="worker.log")
        api, base = start_api(bench)
        try:
            transfer = make_transfer(bench, max_concurrent_runs=args.concurrency)
            headers = {"Authorization": f"Bearer {token_for(bench, transfer)}"}
            http = httpx.Client(base_url=base, headers=headers, timeout=30)
            last = date.today() - timedelta(days=1)
            first = last - timedelta(days=args.dates - 1)
            started = time.perf_counter()
            created = http.post(
                f"/teams/{transfer.team_id}/transfers/{transfer.id}/backfills",
                json={"range_start": str(first), "range_end": str(last)},
            )
            create_seconds = time.perf_counter() - started
            created.raise_for_status()
            backfill_id = created.json()["data"]["transfer_backfill_id"]
            print(f"create answered {created.status_code} in {create_seconds * 1000:.0f} ms")
            get_seconds, memory = [], []
            status = BackfillStatus.CREATED
            while status not in (BackfillStatus.COMPLETED, BackfillStatus.FAILED):
                time.sleep(2)
                t0 = time.perf_counter()
                body = http.get(f"/teams/{transfer.team_id}/backfills/{backfill_id}").json()
                get_seconds.append(time.perf_counter() - t0)
                status = body["data"]["status"]
                memory.append(rss_mib(worker.pid))
                done = body["data"]["transfer_runs_completed"]
                if len(get_seconds) % 15 == 1:
                    print(
                        f"  t={time.perf_counter() - started:6.0f}s {status} {done}/{args.dates}"
                        f" worker RSS {memory[-1]:.0f} MiB",
                        flush=True,
                    )
            total = time.perf_counter() - started
            runs, longest = asyncio.run(largest_history(bench.settings, backfill_id))
            print(f"final: {status} {body['data']['transfer_runs_completed']}/{args.dates} runs")
            rate = args.dates / total
            print(f"total {total:.0f} s, {rate:.0f} runs/s, concurrency {args.concurrency}")
            print(f"GET backfill while running: {summary_ms(get_seconds)}")
            print(
                f"worker RSS: first {memory[0]:.0f} MiB, max {max(memory):.0f} MiB, "
                f"last {memory[-1]:.0f} MiB"
            )
            print(
                f"workflow runs (continue-as-new chain): {runs}, largest history: {longest} events"
            )
        finally:
            stop_all(api, worker)


if __name__ == "__main__":
    main()
