"""bench/cancel: PATCH cancel latency on running backfills, and the time until each
workflow has drained (its in-flight runs finished and it closed).

    .venv/bin/python -m bench.cancel [--backfills 100] [--latency-ms 3000] [--database-url URL]
"""

import argparse
import asyncio
import time
from datetime import UTC, date, timedelta
from typing import Any

import httpx
from temporalio.client import WorkflowHandle

from bench.harness import (
    bench_environment,
    make_transfer,
    start_api,
    stop_all,
    summary_ms,
    token_for,
)
from statuses import BackfillStatus
from temporal_client import connect, workflow_id
from workflows.backfill import BackfillWorkflow


async def drained_after(handle: WorkflowHandle[Any, Any], started: float) -> float:
    await handle.result()
    return time.perf_counter() - started


async def signalled_after(handle: WorkflowHandle[Any, Any], sent: float) -> float:
    """From the PATCH to Temporal's taking the `cancel` signal (from the outbox), read off
    the workflow's history afterwards, so that measuring it loads nothing meanwhile."""
    async for event in handle.fetch_history_events():
        attributes = event.workflow_execution_signaled_event_attributes
        if event.HasField("workflow_execution_signaled_event_attributes") and (
            attributes.signal_name == "cancel"
        ):
            return event.event_time.ToDatetime(tzinfo=UTC).timestamp() - sent
    raise AssertionError(f"{handle.id} was never signalled")


async def run(backfill_count: int, latency_ms: int, database_url: str | None) -> None:
    with bench_environment(database_url) as bench:
        worker = bench.spawn("-m", "cli.main", "worker", log="worker.log")
        api, base = start_api(bench)
        try:
            client = await connect(bench.settings)
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                created = []
                for index in range(backfill_count):
                    transfer = make_transfer(bench, max_concurrent_runs=2, latency_ms=latency_ms)
                    headers = {"Authorization": f"Bearer {token_for(bench, transfer)}"}
                    first = date(2000, 1, 1) + timedelta(days=index)
                    response = await http.post(
                        f"/teams/{transfer.team_id}/transfers/{transfer.id}/backfills",
                        json={"range_start": str(first), "range_end": str(first + timedelta(29))},
                        headers=headers,
                    )
                    response.raise_for_status()
                    created.append((transfer.team_id, response.json()["data"], headers))
                await asyncio.sleep(latency_ms / 1000 + 1)  # every backfill has runs in flight

                patch_seconds: list[float] = []
                drains, sent_at, handles = [], [], []
                for team_id, backfill, headers in created:
                    backfill_id = backfill["transfer_backfill_id"]
                    started = time.perf_counter()
                    sent_at.append(time.time())
                    response = await http.patch(
                        f"/teams/{team_id}/backfills/{backfill_id}",
                        json={"status": BackfillStatus.CANCELLED},
                        headers=headers,
                    )
                    patch_seconds.append(time.perf_counter() - started)
                    assert response.status_code == 200, response.text
                    handle = client.get_workflow_handle_for(
                        BackfillWorkflow.run, workflow_id(backfill_id)
                    )
                    drains.append(drained_after(handle, started))
                    handles.append(handle)
                drain_seconds = await asyncio.gather(*drains)
                stop_seconds = [
                    await signalled_after(handle, sent)
                    for handle, sent in zip(handles, sent_at, strict=True)
                ]
            print(f"backfills={backfill_count} demo latency={latency_ms}ms, 2 runs in flight each")
            print(f"PATCH cancel latency: {summary_ms(patch_seconds)}  (target p99 <= 20 ms)")
            print(f"PATCH -> cancel signal in Temporal: {summary_ms(stop_seconds)}  (target < 1 s)")
            print(f"cancel -> workflow drained and closed: {summary_ms(drain_seconds)}")
        finally:
            stop_all(api, worker)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backfills", type=int, default=100)
    parser.add_argument("--latency-ms", type=int, default=3000)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()
    asyncio.run(run(args.backfills, args.latency_ms, args.database_url))


if __name__ == "__main__":
    main()
