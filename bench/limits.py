"""bench/limits: a token's rate limit with two API processes behind one address, per store.

For each store, `backfills api` with BACKFILLS_API_PROCESSES=2 on one port and a limit of
`--burst` requests refilling at 1 a second; `--requests` requests from `--concurrency`
clients, each on a connection of its own. Prints how many were admitted (a shared limit
admits the burst plus the refill over the elapsed time; per-process limits up to twice the
burst) and the request latency, the price of sharing.

.venv/bin/python -m bench.limits [--requests 400] [--concurrency 8] [--burst 50]
"""

import argparse
import asyncio
import time

import httpx

from bench.harness import (
    bench_environment,
    make_transfer,
    start_api,
    stop_all,
    summary_ms,
    token_for,
)

STORES = {
    "memory (per process)": "memory",
    "SQLite file (default)": "",
    "service database": "database",
    "Redis": "redis://127.0.0.1:6379/0",
}


async def hammer(
    url: str, token: str, requests: int, concurrency: int
) -> tuple[int, list[float], float]:
    admitted = 0
    latencies: list[float] = []
    remaining = iter(range(requests))

    async def client() -> None:
        nonlocal admitted
        # a new connection for each request ("Connection: close"): any process may answer
        headers = {"Authorization": f"Bearer {token}", "Connection": "close"}
        async with httpx.AsyncClient(timeout=30, headers=headers) as http:
            for _ in remaining:
                started = time.perf_counter()
                response = await http.get(url)
                latencies.append(time.perf_counter() - started)
                assert response.status_code in (200, 429), response.text
                admitted += response.status_code == 200

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return admitted, latencies, time.perf_counter() - started


def run(requests: int, concurrency: int, burst: int, database_url: str | None) -> None:
    with bench_environment(database_url) as bench:
        for name, store in STORES.items():
            transfer = make_transfer(bench, max_concurrent_runs=1)
            token = token_for(bench, transfer)
            api, base = start_api(
                bench,
                BACKFILLS_API_PROCESSES="2",
                BACKFILLS_RATE_LIMIT_URL=store,
                BACKFILLS_RATE_LIMIT_PER_MINUTE="60",
                BACKFILLS_RATE_LIMIT_BURST=str(burst),
            )
            try:
                url = f"{base}/teams/{transfer.team_id}/transfers/{transfer.id}"
                admitted, latencies, elapsed = asyncio.run(
                    hammer(url, token, requests, concurrency)
                )
            finally:
                stop_all(api)
            allowed = burst + elapsed  # the burst, and one a second since
            print(
                f"{name}: admitted {admitted} of {requests} in {elapsed:.1f}s "
                f"(one shared limit allows {allowed:.0f}; ratio {admitted / allowed:.2f})  "
                f"latency {summary_ms(latencies)}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()
    run(args.requests, args.concurrency, args.burst, args.database_url)


if __name__ == "__main__":
    main()
