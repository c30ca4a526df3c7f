"""Shared fixtures: a real Temporal dev server, real databases, a real worker and API.

Database-backed fixtures run on SQLite and, where PostgreSQL answers (on
BACKFILLS_TEST_POSTGRES_URL or 127.0.0.1:5432), on PostgreSQL too; otherwise those
parameters are skipped with the reason.
"""

import ipaddress
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url
from temporalio.client import Client

from cli.devserver import free_port, start_dev_server, wait_for_port
from config import Settings
from persistence.migrate import upgrade
from temporal_client import connect
from tests.support import Stack, Tenant, new_tenant, running_stack, stop

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
# One Temporal namespace per database, so the two stacks' workflow ids never meet.
NAMESPACES = {"sqlite": "test-sqlite", "postgresql": "test-postgresql"}
QUIET_NAMESPACE = "test-quiet"  # for tests on a quiet database: no workflow runs there


@pytest.fixture(scope="session", autouse=True)
def _connections_stay_on_this_machine() -> Iterator[None]:
    """A safety net under the tests that attack the egress policy: should the policy ever
    let one through, no socket of this process connects beyond loopback."""
    original_connect: Any = socket.socket.connect
    original_connect_ex: Any = socket.socket.connect_ex

    def refuse_beyond_loopback(address: object) -> None:
        if isinstance(address, tuple) and address:
            try:
                ip = ipaddress.ip_address(str(address[0]).split("%")[0])
            except ValueError:
                return
            mapped = getattr(ip, "ipv4_mapped", None) or ip
            if not mapped.is_loopback:
                raise ConnectionRefusedError(f"tests never connect beyond loopback ({ip})")

    def connect(self: socket.socket, address: Any) -> None:
        refuse_beyond_loopback(address)
        original_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        refuse_beyond_loopback(address)
        result: int = original_connect_ex(self, address)
        return result

    sockets: Any = socket.socket
    sockets.connect, sockets.connect_ex = connect, connect_ex
    try:
        yield
    finally:
        sockets.connect, sockets.connect_ex = original_connect, original_connect_ex


@pytest.fixture(scope="session")
def temporal_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("temporal") / "temporal.log"
    server = start_dev_server(
        port=port,
        ui_port=None,
        namespaces=[*NAMESPACES.values(), QUIET_NAMESPACE],
        db_file=None,
        log_file=log,
    )
    try:
        wait_for_port("127.0.0.1", port, timeout=60, process=server)
        yield f"127.0.0.1:{port}"
    finally:
        stop(server)


def _postgres_admin_url() -> str | None:
    url = os.environ.get("BACKFILLS_TEST_POSTGRES_URL", DEFAULT_POSTGRES)
    try:
        with psycopg.connect(_libpq(url), connect_timeout=3):
            return url
    except psycopg.Error:
        return None


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with migrated_database(request.param, tmp_path_factory) as url:
        yield url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def quiet_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database of the module's own, which no worker of the shared stack uses:
    for tests that leave backfills RUNNING without a workflow (on the shared database, the
    stack's reconciler would soon fail them). A module overrides `database_url` with it."""
    with migrated_database(request.param, tmp_path_factory) as url:
        yield url


@contextmanager
def migrated_database(kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A new SQLite file or PostgreSQL database (skipped when none answers), migrated."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'backfills.db'}"
        upgrade(url)
        yield url
        return
    admin_url = _postgres_admin_url()
    if admin_url is None:
        pytest.skip("PostgreSQL is not reachable (set BACKFILLS_TEST_POSTGRES_URL)")
    name = f"backfills_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(admin_url), autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    try:
        yield url
    finally:
        from persistence.db import get_engine

        get_engine.cache_clear()
        with psycopg.connect(_libpq(admin_url), autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def stack(
    database_url: str, temporal_address: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """One worker and the API, as processes, configured only through the environment."""
    root = tmp_path_factory.mktemp("stack")
    api_port = free_port()
    task_queue = f"backfills-test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "BACKFILLS_DATABASE_URL": database_url,
        "BACKFILLS_DATA_DIR": str(root / "data"),
        "BACKFILLS_TEMPORAL_ADDRESS": temporal_address,
        "BACKFILLS_TEMPORAL_NAMESPACE": _namespace_of(database_url),
        "BACKFILLS_TASK_QUEUE": task_queue,
        "BACKFILLS_API_HOST": "127.0.0.1",
        "BACKFILLS_API_PORT": str(api_port),
        "BACKFILLS_MAX_RANGE_DAYS": "400",
        "BACKFILLS_RATE_LIMIT_PER_MINUTE": "1000000",  # tests/api/test_abuse.py checks limits
        "BACKFILLS_RATE_LIMIT_BURST": "1000000",
        "BACKFILLS_RUN_MAX_ATTEMPTS": "3",
        "BACKFILLS_RUN_RETRY_INITIAL_SECONDS": "0.1",
        "BACKFILLS_RUN_RETRY_MAX_SECONDS": "0.5",
        "BACKFILLS_RUN_HEARTBEAT_TIMEOUT_SECONDS": "10",
        "BACKFILLS_WORKER_SHUTDOWN_GRACE_SECONDS": "30",
        # a secret for ${NAME} tests (tests/api/test_sql_transfers.py); trust auth ignores it
        "BACKFILLS_TEST_PG_PASSWORD": "pg-secret-4b1d",
        "BACKFILLS_WORKER_ENV_ALLOWLIST": "BACKFILLS_TEST_PG_PASSWORD",
        "BACKFILLS_SECRETS_KEY": Fernet.generate_key().decode(),
        # the tests' sources and sinks run on this machine; tests/test_hostile_tenant.py
        # runs a stack without this to prove the default refuses loopback
        "BACKFILLS_CONNECTOR_ALLOWED_NETWORKS": "127.0.0.0/8,::1/128",
        "BACKFILLS_AUTH_FAILURES_PER_MINUTE": "1000000",  # tests/api/test_abuse.py checks
        "BACKFILLS_AUTH_FAILURES_BURST": "1000000",
        "BACKFILLS_RECONCILE_INTERVAL_SECONDS": "1",
        "BACKFILLS_SCHEDULE_MIN_INTERVAL_SECONDS": "2",  # schedules firing every few seconds
        "BACKFILLS_WORKER_METRICS_PORT": "0",  # tests that scrape metrics pick free ports
        "BACKFILLS_TEMPORAL_METRICS_PORT": "0",
    }
    with running_stack(env, root) as stack:
        yield stack


def _namespace_of(database_url: str) -> str:
    return NAMESPACES["sqlite" if database_url.startswith("sqlite") else "postgresql"]


@pytest.fixture
def tenant(stack: Stack) -> Iterator[Tenant]:
    tenant = new_tenant(stack)
    yield tenant
    tenant.http.close()


@pytest.fixture
def settings(stack: Stack) -> Settings:
    return Settings(
        database_url=stack.database_url,
        data_dir=stack.data_dir,
        temporal_address=stack.temporal_address,
        temporal_namespace=_namespace_of(stack.database_url),
        task_queue=stack.task_queue,
    )


@pytest.fixture
async def temporal_client(settings: Settings) -> AsyncIterator[Client]:
    """A client on the stack's namespace."""
    yield await connect(settings)


@pytest.fixture
def data_dir(stack: Stack) -> Path:
    return stack.data_dir
