"""bench/throughput: backfill runs/s against a bare Temporal fan-out of no-op activities.

Same Temporal server, same concurrency, same activity thread pool, run alternately:

    .venv/bin/python -m bench.throughput [--dates 2000] [--concurrency 50] [--rounds 3]
        [--worker-processes N] [--database-url URL]
"""

import argparse
import asyncio
import time
import uuid
from datetime import date, timedelta

from bench.fanout import FanOutInput, FanOutWorkflow
from bench.harness import Bench, bench_environment, make_backfill, make_transfer
from temporal_client import backfill_input, connect, workflow_id
from workflows.backfill import BackfillWorkflow


async def time_backfill(bench: Bench, dates: int, concurrency: int) -> float:
    client = await connect(bench.settings)
    transfer = make_transfer(bench, max_concurrent_runs=concurrency)
    first = date(1990, 1, 1)
    backfill = make_backfill(bench, transfer, first, first + timedelta(days=dates - 1))
    assert backfill.id is not None
    started = time.perf_counter()
    handle = await client.start_workflow(
        BackfillWorkflow.run,
        backfill_input(bench.settings, backfill, transfer),
        id=workflow_id(backfill.id),
        task_queue=bench.settings.task_queue,
    )
    result = await handle.result()
    elapsed = time.perf_counter() - started
    assert result.completed == dates, result
    return elapsed


async def time_fanout(bench: Bench, dates: int, concurrency: int) -> float:
    client = await connect(bench.settings)
    started = time.perf_counter()
    count = await client.execute_workflow(
        FanOutWorkflow.run,
        FanOutInput(count=dates, max_in_flight=concurrency),
        id=f"fanout-{uuid.uuid4().hex[:8]}",
        task_queue=bench.settings.task_queue + "-fanout",
    )
    elapsed = time.perf_counter() - started
    assert count == dates
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dates", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument(
        "--worker-processes", type=int, default=1, help="the backfill worker's --processes"
    )
    args = parser.parse_args()
    with bench_environment(args.database_url) as bench:
        worker = bench.spawn(
            "-m", "cli.main", "worker", "--processes", str(args.worker_processes), log="worker.log"
        )
        fanout = bench.spawn(
            "-m",
            "bench.fanout",
            log="fanout.log",
            BACKFILLS_TASK_QUEUE=bench.settings.task_queue + "-fanout",
        )
        try:
            time.sleep(3)
            backfill_rates, fanout_rates = [], []
            for round_number in range(1, args.rounds + 1):
                b = asyncio.run(time_backfill(bench, args.dates, args.concurrency))
                f = asyncio.run(time_fanout(bench, args.dates, args.concurrency))
                backfill_rates.append(args.dates / b)
                fanout_rates.append(args.dates / f)
                print(
                    f"round {round_number}: backfill {args.dates / b:7.1f} runs/s ({b:.1f}s)"
                    f"   bare fan-out {args.dates / f:7.1f} activities/s ({f:.1f}s)",
                    flush=True,
                )
            backfill_best, fanout_best = max(backfill_rates), max(fanout_rates)
            database = (args.database_url or "sqlite").split(":")[0]
            print(
                f"dates={args.dates} concurrency={args.concurrency} database={database} "
                f"worker processes={args.worker_processes}\n"
                f"backfill: {backfill_best:.1f} runs/s (best of {args.rounds})\n"
                f"bare fan-out: {fanout_best:.1f} activities/s (best of {args.rounds})\n"
                f"ratio: {backfill_best / fanout_best:.2f} (target >= 0.80)"
            )
        finally:
            for process in (worker, fanout):
                process.terminate()
                process.wait(timeout=60)


if __name__ == "__main__":
    main()
