"""bench/lists: `GET /teams/{team_id}/backfills` for a team with many large error reports.

A team with `--backfills` incomplete backfills (default 200), `--failed` of them (default
50) FAILED with `--errors` failed dates each (default 1,000; a realistic message each). The
API alone (no worker: nothing changes meanwhile) answers the whole list, then pages of 50.
Prints the latency, the answer's size and the API process's peak RSS before and after.

.venv/bin/python -m bench.lists [--requests 20] [--database-url URL]
"""

import argparse
import time
from datetime import date, timedelta
from pathlib import Path

import httpx

from bench.harness import (
    Bench,
    bench_environment,
    make_backfill,
    make_transfer,
    start_api,
    stop_all,
    summary_ms,
    token_for,
)
from persistence import backfills, runs
from persistence.models import Transfer

MESSAGE = (
    "source error: HTTP 502 from https://api.example.com/v2/reports?date={date}: "
    "upstream connect error or disconnect/reset before headers"
)


def populate(bench: Bench, total: int, failed: int, errors: int) -> Transfer:
    """The team's backfills, the first `failed` of them FAILED with `errors` dates each."""
    transfer = make_transfer(bench, max_concurrent_runs=4)
    for index in range(total):
        first = date(1900, 1, 1) + timedelta(days=index * (errors + 1))
        last = first + timedelta(days=errors - 1)
        backfill = make_backfill(bench, transfer, first, last)
        assert backfill.id is not None
        if index >= failed:
            continue
        runs.plan_runs(db=bench.db, backfill_id=backfill.id, first=first, last=last)
        for offset in range(errors):
            day = first + timedelta(days=offset)
            message = MESSAGE.format(date=day)
            runs.fail_run(db=bench.db, backfill_id=backfill.id, data_date=day, message=message)
        backfills.finish_backfill(db=bench.db, backfill_id=backfill.id)
    return transfer


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(http: httpx.Client, path: str, params: dict[str, str], requests: int) -> str:
    http.get(path, params=params)  # warm-up
    latencies, size = [], 0
    for _ in range(requests):
        started = time.perf_counter()
        response = http.get(path, params=params)
        latencies.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
        size = len(response.content)
    return f"{summary_ms(latencies)} answer={size / 1e6:.1f} MB"


def run(requests: int, total: int, failed: int, errors: int, database_url: str | None) -> None:
    with bench_environment(database_url) as bench:
        started = time.perf_counter()
        transfer = populate(bench, total, failed, errors)
        print(f"populated in {time.perf_counter() - started:.0f}s")
        api, base = start_api(bench)
        try:
            headers = {"Authorization": f"Bearer {token_for(bench, transfer)}"}
            with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
                print(f"API peak RSS before: {peak_rss_mib(api.pid):.0f} MiB")
                path = f"/teams/{transfer.team_id}/backfills"
                print(f"GET list (all {total}): {measure(http, path, {}, requests)}")
                print(f"API peak RSS after the whole list: {peak_rss_mib(api.pid):.0f} MiB")
                page = {"limit": "50", "offset": "0"}
                print(f"GET list (limit 50): {measure(http, path, page, requests)}")
            print(f"{total} backfills, {failed} FAILED with {errors} errors each; target 500 ms")
        finally:
            stop_all(api)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--backfills", type=int, default=200)
    parser.add_argument("--failed", type=int, default=50)
    parser.add_argument("--errors", type=int, default=1000)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()
    run(args.requests, args.backfills, args.failed, args.errors, args.database_url)


if __name__ == "__main__":
    main()
