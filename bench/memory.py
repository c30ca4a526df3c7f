"""bench/memory: worker RSS over time while one run loads a large `sql` or `http` partition.

For each source, one date of about `--megabytes` MB (default 2048): a SQLite file in the
team's directory for `sql`, a JSON list streamed by a local HTTP server for `http`. One
worker process loads it into the team's SQLite warehouse; its RSS is sampled every 0.5 s
and printed every `--every` seconds, then its peak. The target: under 300 MiB, whatever the
size (run it at two sizes to see the peak stay put).

.venv/bin/python -m bench.memory [--megabytes 2048] [--sources sql,http] [--every 10]
"""

import argparse
import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.harness import Bench, bench_environment, make_backfill
from connectors.warehouse import team_dir
from persistence import accounts, transfers
from persistence.models import Role, Transfer
from temporal_client import backfill_input, connect, workflow_id
from workflows.backfill import BackfillWorkflow

DAY = date(2024, 1, 1)
ROW_BYTES = 200  # about, per row, in both sources


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def new_team(bench: Bench) -> tuple[int, int]:
    team_id = accounts.create_team(db=bench.db, name="bench")
    user_id = accounts.create_user(
        db=bench.db, email=f"memory-{team_id}@bench.test", team_id=team_id, role=Role.OWNER
    )
    return team_id, user_id


def new_transfer(bench: Bench, team: tuple[int, int], source: dict[str, object]) -> Transfer:
    team_id, user_id = team
    return transfers.create_transfer(
        db=bench.db,
        team_id=team_id,
        user_id=user_id,
        display_name="large partition",
        source=source,
        destination={"type": "sqlite"},
        max_concurrent_runs=1,
    )


def sql_source(bench: Bench, team_id: int, rows: int) -> dict[str, object]:
    """A SQLite file of `rows` rows for DAY, in the team's directory."""
    path = team_dir(bench.settings.data_dir, team_id) / "source.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE big (day TEXT, n INTEGER, payload TEXT)")
        connection.execute(
            "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < ?) "
            "INSERT INTO big SELECT ?, n, hex(randomblob(85)) FROM c",
            (rows, DAY.isoformat()),
        )
    connection.close()
    query = "SELECT n, payload FROM big WHERE day = :data_date"
    return {"type": "sql", "url": "sqlite:///source.db", "query": query}


def json_rows(rows: int) -> Iterator[bytes]:
    payload = "ab" * 85
    yield b"["
    for n in range(rows):
        comma = b"," if n else b""
        yield comma + f'{{"n": {n}, "payload": "{payload}"}}'.encode()
    yield b"]"


def http_source(rows: int) -> tuple[dict[str, object], ThreadingHTTPServer]:
    """A server answering a JSON list of `rows` records, written as it goes (chunked)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            buffer: list[bytes] = []
            for piece in json_rows(rows):
                buffer.append(piece)
                if len(buffer) == 1000:
                    self._chunk(b"".join(buffer))
                    buffer = []
            self._chunk(b"".join(buffer))
            self.wfile.write(b"0\r\n\r\n")

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/{{data_date}}"
    # the body's size with room to spare (and within the 1 GiB the code before streaming
    # took, so the two can be compared up to that size)
    limit = min(max(1024**3, rows * ROW_BYTES * 2), 16 * 1024**3)
    source = {"type": "http", "url": url, "timeout_s": 600, "max_response_bytes": limit}
    return source, server


async def run_one(bench: Bench, transfer: Transfer) -> int:
    client = await connect(bench.settings)
    backfill = make_backfill(bench, transfer, DAY, DAY)
    assert backfill.id is not None
    handle = await client.start_workflow(
        BackfillWorkflow.run,
        backfill_input(bench.settings, backfill, transfer),
        id=workflow_id(backfill.id),
        task_queue=bench.settings.task_queue,
    )
    result = await handle.result()
    return int(result.completed)


def watch(pid: int, every: float, done: threading.Event) -> list[float]:
    samples: list[float] = []
    started = time.monotonic()
    printed = started
    while not done.wait(0.5):
        samples.append(rss_mib(pid))
        if time.monotonic() - printed >= every:
            printed = time.monotonic()
            print(f"  t={printed - started:5.0f}s worker RSS {samples[-1]:6.0f} MiB", flush=True)
    return samples


def measure(
    bench: Bench,
    worker_pid: int,
    name: str,
    team: tuple[int, int],
    source: dict[str, object],
    every: float,
) -> None:
    transfer = new_transfer(bench, team, source)
    done = threading.Event()
    samples: list[float] = []
    watcher = threading.Thread(target=lambda: samples.extend(watch(worker_pid, every, done)))
    before = rss_mib(worker_pid)
    started = time.monotonic()
    watcher.start()
    try:
        completed = asyncio.run(run_one(bench, transfer))
    finally:
        done.set()
        watcher.join()
    elapsed = time.monotonic() - started
    print(
        f"{name}: {completed} date completed in {elapsed:.0f}s; worker RSS before "
        f"{before:.0f} MiB, peak {max(samples, default=before):.0f} MiB (target < 300 MiB)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--megabytes", type=int, default=2048)
    parser.add_argument("--sources", default="sql,http")
    parser.add_argument("--every", type=float, default=10.0)
    args = parser.parse_args()
    rows = args.megabytes * 1024 * 1024 // ROW_BYTES
    with bench_environment() as bench:
        worker = bench.spawn(
            "-m",
            "cli.main",
            "worker",
            log="worker.log",
            BACKFILLS_CONNECTOR_ALLOWED_NETWORKS="127.0.0.0/8",
            BACKFILLS_RUN_TIMEOUT_SECONDS="7200",
        )
        try:
            time.sleep(3)
            for name in args.sources.split(","):
                team = new_team(bench)
                label = f"{name}, {args.megabytes} MB"
                if name == "sql":
                    started = time.monotonic()
                    source = sql_source(bench, team[0], rows)
                    print(f"sql: {rows} rows written in {time.monotonic() - started:.0f}s")
                    measure(bench, worker.pid, label, team, source, args.every)
                else:
                    source, server = http_source(rows)
                    try:
                        measure(bench, worker.pid, label, team, source, args.every)
                    finally:
                        server.shutdown()
        finally:
            worker.terminate()
            worker.wait(timeout=60)


if __name__ == "__main__":
    main()
