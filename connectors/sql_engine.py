"""One SQLAlchemy engine per database URL, shared by the SQL connectors of a worker."""

from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL, make_url

from persistence.db import normalize_url

CONNECT_TIMEOUT_SECONDS = 10


@lru_cache(maxsize=32)
def engine_for(url: str, *, read_only: bool = False) -> Engine:
    """An engine for `url` (plain `postgresql://` uses the psycopg 3 driver); connections
    are checked before use, so one dropped by the server is replaced instead of failing a run.
    `read_only` opens a SQLite file read-only (and never creates a missing one).

    Raises `sqlalchemy.exc.ArgumentError` (or a driver's ImportError) for a URL that cannot
    be used; never puts the URL in a message.
    """
    parsed = make_url(normalize_url(url))
    if read_only:
        parsed = _read_only_sqlite(parsed)
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
    return create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)


def _read_only_sqlite(parsed: URL) -> URL:
    if (
        parsed.get_backend_name() != "sqlite"
        or parsed.database in (None, "", ":memory:")
        or "uri" in parsed.query
    ):
        return parsed
    return parsed.set(
        database=f"file:{parsed.database}", query={**parsed.query, "mode": "ro", "uri": "true"}
    )
