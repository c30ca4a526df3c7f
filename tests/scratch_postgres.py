"""Scratch PostgreSQL databases for connector tests, on the test server (see tests/conftest.py)."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import _libpq, _postgres_admin_url

UNREACHABLE = "PostgreSQL is not reachable (set BACKFILLS_TEST_POSTGRES_URL)"


def admin_url_or_skip() -> str:
    url = _postgres_admin_url()
    if url is None:
        pytest.skip(UNREACHABLE)
    return url


@contextmanager
def scratch_database(prefix: str = "backfills_scratch") -> Iterator[str]:
    """A new, empty database; yields its plain `postgresql://` URL and drops it afterwards."""
    admin_url = admin_url_or_skip()
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_libpq(admin_url), autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_libpq(admin_url), autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def query(url: str, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Rows of one statement, run and committed on its own connection."""
    with psycopg.connect(_libpq(url), autocommit=True) as connection:
        cursor = connection.execute(sql, params)
        return list(cursor.fetchall()) if cursor.description else []
