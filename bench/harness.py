"""What the benchmarks share: a Temporal dev server, a migrated database, worker processes.

Everything runs on this machine, on loopback, and stops by itself.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url

from cli.devserver import free_port, start_dev_server, wait_for_port
from config import Settings
from persistence import accounts, backfills, transfers
from persistence.db import Database, get_engine
from persistence.migrate import upgrade
from persistence.models import Backfill, Role, Scope, Transfer

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Bench:
    settings: Settings
    root: Path
    env: dict[str, str]
    db: Database

    def spawn(self, *args: str, log: str, **env: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, *args],
            cwd=REPO,
            env={**self.env, **env},
            stdout=(self.root / log).open("ab"),
            stderr=subprocess.STDOUT,
        )


@contextmanager
def bench_environment(database_url: str | None = None) -> Iterator[Bench]:
    """A Temporal dev server in memory and a fresh database: a SQLite file, or a new
    database on the PostgreSQL server `database_url` names."""
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        root = Path(tmp)
        port = free_port()
        server = start_dev_server(
            port=port, ui_port=None, namespaces=[], db_file=None, log_file=root / "temporal.log"
        )
        try:
            wait_for_port("127.0.0.1", port, timeout=60, process=server)
            stack = ExitStack()
            url = (
                stack.enter_context(fresh_postgres_database(database_url))
                if database_url
                else f"sqlite:///{root / 'backfills.db'}"
            )
            upgrade(url)
            settings = Settings(
                data_dir=root / "data",
                database_url=url,
                temporal_address=f"127.0.0.1:{port}",
                task_queue=f"bench-{uuid.uuid4().hex[:6]}",
                max_range_days=100_000,
            )
            env = {
                **os.environ,
                "BACKFILLS_DATA_DIR": str(settings.data_dir),
                "BACKFILLS_DATABASE_URL": url,
                "BACKFILLS_TEMPORAL_ADDRESS": settings.temporal_address,
                "BACKFILLS_TASK_QUEUE": settings.task_queue,
                "BACKFILLS_MAX_RANGE_DAYS": "100000",
                "BACKFILLS_SECRETS_KEY": Fernet.generate_key().decode(),
            }
            yield Bench(settings=settings, root=root, env=env, db=Database(url))
        finally:
            server.terminate()
            server.wait(timeout=30)
            stack.close()


@contextmanager
def fresh_postgres_database(server_url: str) -> Iterator[str]:
    """A new database on the server of `server_url` (its own database is left untouched),
    dropped afterwards."""
    import psycopg

    admin = make_url(server_url).set(drivername="postgresql")
    name = f"bench_{uuid.uuid4().hex[:10]}"
    libpq = admin.render_as_string(hide_password=False)
    with psycopg.connect(libpq, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        get_engine.cache_clear()  # its pooled connections would block the drop
        with psycopg.connect(libpq, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_transfer(bench: Bench, *, max_concurrent_runs: int, **source: object) -> Transfer:
    team_id = accounts.create_team(db=bench.db, name="bench")
    user_id = accounts.create_user(
        db=bench.db, email=f"{uuid.uuid4().hex[:8]}@bench.test", team_id=team_id, role=Role.OWNER
    )
    return transfers.create_transfer(
        db=bench.db,
        team_id=team_id,
        user_id=user_id,
        display_name="bench",
        source={"type": "demo", **source},
        destination={"type": "sqlite"},
        max_concurrent_runs=max_concurrent_runs,
    )


def make_backfill(bench: Bench, transfer: Transfer, first: date, last: date) -> Backfill:
    assert transfer.id is not None
    return backfills.create_backfill(
        db=bench.db,
        team_id=transfer.team_id,
        transfer_id=transfer.id,
        user_id=transfer.created_user_id,
        range_start=first,
        range_end=last,
    )


def token_for(bench: Bench, transfer: Transfer) -> str:
    return accounts.create_token(db=bench.db, user_id=transfer.created_user_id, scopes=list(Scope))


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary_ms(samples: list[float]) -> str:
    ms = [s * 1000 for s in samples]
    return (
        f"n={len(ms)} p50={percentile(ms, 50):.1f}ms p99={percentile(ms, 99):.1f}ms "
        f"mean={statistics.fmean(ms):.1f}ms max={max(ms):.1f}ms"
    )


def start_api(bench: Bench, **env: str) -> tuple[subprocess.Popen[bytes], str]:
    """The API as a process on a free port (rate limits out of the way unless `env` sets
    them); returns it and its /v1 base URL."""
    import httpx

    port = free_port()
    limits = {
        "BACKFILLS_RATE_LIMIT_PER_MINUTE": "100000000",
        "BACKFILLS_RATE_LIMIT_BURST": "100000000",
    }
    process = bench.spawn(
        "-m",
        "cli.main",
        "api",
        log=f"api-{port}.log",
        **{**limits, **env, "BACKFILLS_API_PORT": str(port)},
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                return process, base + "/v1"
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.terminate()
    raise RuntimeError("the API did not become ready")


def stop_all(*processes: subprocess.Popen[bytes]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
