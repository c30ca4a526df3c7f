"""The baseline for bench/throughput: a bare Temporal fan-out of no-op activities with a cap
on the number in flight, the same shape as the backfill workflow minus all of its work.

Run as a worker: `python -m bench.fanout` (reads BACKFILLS_TEMPORAL_ADDRESS and
BACKFILLS_TASK_QUEUE like the real worker).
"""

import asyncio
import signal
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.worker import Worker

from config import get_settings
from temporal_client import connect


@dataclass(frozen=True)
class FanOutInput:
    count: int
    max_in_flight: int


@activity.defn(name="noop")
def noop(index: int) -> int:
    return index


@workflow.defn(name="FanOut")
class FanOutWorkflow:
    def __init__(self) -> None:
        self._in_flight = 0

    @workflow.run
    async def run(self, input: FanOutInput) -> int:
        tasks = []
        for index in range(input.count):
            await workflow.wait_condition(lambda: self._in_flight < input.max_in_flight)
            self._in_flight += 1
            tasks.append(asyncio.create_task(self._one(index)))
        await asyncio.gather(*tasks)
        return len(tasks)

    async def _one(self, index: int) -> None:
        try:
            await workflow.execute_activity(
                noop, index, start_to_close_timeout=timedelta(minutes=1)
            )
        finally:
            self._in_flight -= 1


async def main() -> None:
    settings = get_settings()
    client = await connect(settings)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    with ThreadPoolExecutor(max_workers=settings.worker_max_concurrent_activities) as executor:
        async with Worker(
            client,
            task_queue=settings.task_queue,
            workflows=[FanOutWorkflow],
            activities=[noop],
            activity_executor=executor,
            max_concurrent_activities=settings.worker_max_concurrent_activities,
        ):
            await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
