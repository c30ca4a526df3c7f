"""bench/api: GET backfill and list-runs latency and throughput under concurrent load.

.venv/bin/python -m bench.api [--requests 2000] [--concurrency 16] [--dates 3650]
    [--during-run] [--database-url URL]
"""

import argparse
import asyncio
import time
from datetime import date, timedelta

import httpx

from bench.harness import (
    bench_environment,
    make_transfer,
    start_api,
    stop_all,
    summary_ms,
    token_for,
)
from statuses import BackfillStatus


async def load(
    http: httpx.AsyncClient, path: str, params: dict[str, str], requests: int, concurrency: int
) -> tuple[list[float], float]:
    latencies: list[float] = []
    remaining = iter(range(requests))

    async def client() -> None:
        for _ in remaining:
            started = time.perf_counter()
            response = await http.get(path, params=params)
            latencies.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return latencies, time.perf_counter() - started


async def wait_completed(http: httpx.AsyncClient, path: str) -> None:
    status = ""
    while status != BackfillStatus.COMPLETED:
        await asyncio.sleep(1)
        status = (await http.get(path)).json()["data"]["status"]


async def wait_running(http: httpx.AsyncClient, path: str, completed: int) -> dict[str, object]:
    """The backfill once `completed` of its runs have: it is in full flow."""
    while True:
        await asyncio.sleep(1)
        backfill: dict[str, object] = (await http.get(path)).json()["data"]
        if int(str(backfill["transfer_runs_completed"])) >= completed:
            return backfill


async def run(
    requests: int, concurrency: int, dates: int, database_url: str | None, during_run: bool
) -> None:
    with bench_environment(database_url) as bench:
        worker = bench.spawn("-m", "cli.main", "worker", log="worker.log")
        api, base = start_api(bench)
        try:
            transfer = make_transfer(bench, max_concurrent_runs=50)
            headers = {"Authorization": f"Bearer {token_for(bench, transfer)}"}
            limits = httpx.Limits(max_connections=concurrency)
            async with httpx.AsyncClient(
                base_url=base, headers=headers, timeout=30, limits=limits
            ) as http:
                first = date(1900, 1, 1)  # a century ends in the past too
                last = first + timedelta(days=dates - 1)
                created = await http.post(
                    f"/teams/{transfer.team_id}/transfers/{transfer.id}/backfills",
                    json={"range_start": str(first), "range_end": str(last)},
                )
                backfill_id = created.json()["data"]["transfer_backfill_id"]
                backfill_path = f"/teams/{transfer.team_id}/backfills/{backfill_id}"
                if during_run:
                    await wait_running(http, backfill_path, completed=min(1000, dates // 10))
                else:
                    await wait_completed(http, backfill_path)
                runs_path = f"/teams/{transfer.team_id}/transfers/{transfer.id}/runs"
                runs_params = {"start_date": str(first), "end_date": str(last), "limit": "100"}
                for name, path, params in (
                    ("GET backfill", backfill_path, {}),
                    ("GET runs (limit 100)", runs_path, runs_params),
                ):
                    await load(http, path, params, min(200, requests), concurrency)  # warm-up
                    latencies, elapsed = await load(http, path, params, requests, concurrency)
                    rate = requests / elapsed
                    print(f"{name}: {summary_ms(latencies)}  throughput={rate:.0f} req/s")
                if during_run:
                    backfill = (await http.get(backfill_path)).json()["data"]
                    done = backfill["transfer_runs_completed"]
                    print(f"still running at the end: {backfill['status']}, {done} completed")
            when = "while it runs" if during_run else "once it completed"
            print(
                f"concurrency={concurrency} requests={requests} backfill of {dates} dates, {when}"
            )
        finally:
            stop_all(api, worker)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--dates", type=int, default=3650)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument(
        "--during-run", action="store_true", help="load the API while the backfill runs"
    )
    args = parser.parse_args()
    asyncio.run(
        run(args.requests, args.concurrency, args.dates, args.database_url, args.during_run)
    )


if __name__ == "__main__":
    main()
