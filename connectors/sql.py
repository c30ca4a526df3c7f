"""The `sql` source: the rows of one or more SQL queries, run with `:data_date` bound.

Each query is one entry of the run's `query_details`; the rows of all queries are loaded
together, in one transaction of the destination, streamed: rows are fetched a thousand at a
time (a server-side cursor on PostgreSQL) as the destination loads them, so a partition of
any size passes through a bounded amount of memory. The queries of a run share one
connection and are never committed; on PostgreSQL they run in a read-only transaction. A
SQLite file is the team's own: `sqlite:///name.db` names a file inside the team's directory
(see connectors/warehouse.py), opened read-only, and its queries run under an authorizer
that allows reading only (no ATTACH, no PRAGMA).

Values become what every destination can store: `Decimal` -> float, date/datetime/time ->
ISO 8601 text, interval -> seconds (float), bytes -> hex text, JSON objects and arrays ->
JSON text, anything else that is not a bool, int, float, str or NULL -> its text form.
"""

import json
import re
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from datetime import time as time_of_day
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator
from sqlalchemy import Connection, Date, bindparam, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from connectors.base import Extract, QueryDetail, Record, RunContext, SourceOptions
from connectors.errors import ConnectorError, PermanentError
from connectors.secrets import REFERENCE, mask_url_passwords
from connectors.sql_engine import engine_for
from connectors.sql_errors import classify
from connectors.warehouse import check_sqlite_url, confine_sqlite_url, read_only_authorizer
from persistence.db import normalize_url
from statuses import QueryStatus

BIND = "data_date"
HEARTBEAT_EVERY_ROWS = 5_000
STREAM_ROWS = 1_000  # rows fetched from the source at a time
_QUERY_START = re.compile(r"\s*\(*\s*(select|with|values|table)\b", re.IGNORECASE)


def _binds_data_date(sql: str) -> str:
    binds = set(text(sql).compile().params)
    if BIND not in binds:
        raise ValueError(
            "must use the :data_date bind parameter (e.g. WHERE day = :data_date; "
            "write CAST(:data_date AS DATE) rather than :data_date::date)"
        )
    if others := sorted(binds - {BIND}):
        raise ValueError(
            f"has bind parameters other than :data_date ({', '.join(':' + b for b in others)}); "
            "write a literal colon before a word as \\:"
        )
    return sql


Query = Annotated[str, Field(min_length=1), AfterValidator(_binds_data_date)]


class SqlSourceOptions(SourceOptions):
    type: Literal["sql"] = "sql"
    url: str = Field(min_length=1, description="A SQLAlchemy URL; may hold `${NAME}` references.")
    query: Query | None = Field(default=None, description="SQL with a :data_date bind.")
    queries: list[Query] | None = Field(
        default=None, min_length=1, max_length=100, description="Several such queries."
    )

    @field_validator("url")
    @classmethod
    def _usable_url(cls, value: str) -> str:
        try:
            parsed = make_url(normalize_url(value))
        except ArgumentError:
            if REFERENCE.search(value):
                return value  # e.g. the whole URL is `${NAME}`: checked when the run executes
            raise ValueError(
                "is not a SQLAlchemy URL (e.g. postgresql://user@host/db or "
                "sqlite:////path/to/file.db)"
            ) from None
        try:
            parsed.get_dialect()
        except (ArgumentError, ImportError):
            raise ValueError(f"names an unknown database dialect {parsed.drivername!r}") from None
        if parsed.get_backend_name() == "sqlite":
            check_sqlite_url(parsed)
        return value

    @model_validator(mode="after")
    def _query_or_queries(self) -> "SqlSourceOptions":
        if (self.query is None) == (self.queries is None):
            raise ValueError("give exactly one of `query` or `queries`")
        return self

    @property
    def all_queries(self) -> list[str]:
        return [self.query] if self.query is not None else list(self.queries or [])

    @property
    def database_url(self) -> str | None:
        return self.url

    def build(self) -> "SqlSource":
        return SqlSource(self)


class SqlSource:
    def __init__(self, options: SqlSourceOptions) -> None:
        self.options = options

    def extract(self, data_date: date, context: RunContext) -> Extract:
        queries = self.options.all_queries
        labels = [
            "sql source query" if len(queries) == 1 else f"sql source query {n} of {len(queries)}"
            for n in range(1, len(queries) + 1)
        ]
        extract = Extract()
        started = time.monotonic()
        try:
            engine = engine_for(
                _confined(self.options.url, context), context.egress, read_only=True
            )
            connection = engine.connect()
        except ConnectorError as exc:  # refused by the egress policy, or no such host
            raise _failed(type(exc)(f"sql source: {exc}"), extract.query_details, started) from None
        except (ArgumentError, ImportError) as exc:
            raise _failed(
                PermanentError(f"sql source: the URL cannot be used: {_first_line(exc)}"),
                extract.query_details,
                started,
            ) from None
        except SQLAlchemyError as exc:
            raise _failed(classify(exc, "sql source: cannot connect"), [], started) from None
        extract.records = self._records(connection, queries, labels, data_date, extract, context)
        return extract

    def _records(
        self,
        connection: Connection,
        queries: list[str],
        labels: list[str],
        data_date: date,
        extract: Extract,
        context: RunContext,
    ) -> Iterator[Record]:
        """Every query's rows in turn, streamed as the destination reads them; the
        connection closes once they are read, or when the run closes this generator."""
        with connection:
            if connection.dialect.name == "postgresql":
                connection = connection.execution_options(postgresql_readonly=True)
            with _reading_only(connection):
                for sql, label in zip(queries, labels, strict=True):
                    yield from self._query(connection, sql, data_date, label, extract, context)
            connection.rollback()

    def _query(
        self,
        connection: Connection,
        sql: str,
        data_date: date,
        label: str,
        extract: Extract,
        context: RunContext,
    ) -> Iterator[Record]:
        started = time.monotonic()
        rows = 0
        try:
            for record in _run(connection, sql, data_date, label, context):
                rows += 1
                yield record
        except SQLAlchemyError as exc:
            raise _failed(classify(exc, label), extract.query_details, started) from None
        except ConnectorError as exc:
            raise _failed(exc, extract.query_details, started) from None
        extract.query_details.append(
            QueryDetail(status=QueryStatus.SUCCESS, rows=rows, duration=_since(started))
        )
        context.heartbeat()


def _confined(url: str, context: RunContext) -> str:
    """`url` (its `${NAME}` references resolved), a SQLite file resolved in the team's dir."""
    try:
        parsed = make_url(normalize_url(url))
    except ArgumentError:
        raise PermanentError("the URL is not a SQLAlchemy URL") from None
    if parsed.get_backend_name() != "sqlite":
        return url
    return confine_sqlite_url(parsed, context.team_dir).render_as_string(hide_password=False)


@contextmanager
def _reading_only(connection: Connection) -> Iterator[None]:
    """On SQLite, the team's queries run under `read_only_authorizer`; the pooled
    connection is given back without it."""
    driver = connection.connection.driver_connection
    if connection.dialect.name != "sqlite" or driver is None:
        yield
        return
    driver.set_authorizer(read_only_authorizer)
    try:
        yield
    finally:
        driver.set_authorizer(None)


def _run(
    connection: Connection, sql: str, data_date: date, label: str, context: RunContext
) -> Iterator[Record]:
    """The query's rows as records, fetched STREAM_ROWS at a time (a server-side cursor on
    PostgreSQL), so that no partition is ever held whole."""
    statement = text(sql).bindparams(bindparam(BIND, value=data_date, type_=Date()))
    if _streamable(sql, connection):
        statement = statement.execution_options(yield_per=STREAM_ROWS)
    result = connection.execute(statement)
    if not result.returns_rows:
        raise PermanentError(f"{label}: returns no result set; it must be a query (SELECT ...)")
    keys = list(result.keys())
    repeated = sorted(name for name, count in Counter(keys).items() if count > 1)
    if repeated:
        result.close()
        raise PermanentError(
            f"{label}: more than one result column is named {', '.join(repeated)}; "
            "give each column its own name (AS ...)"
        )
    for count, row in enumerate(result, start=1):
        yield {key: storable(value) for key, value in zip(keys, row, strict=True)}
        if count % HEARTBEAT_EVERY_ROWS == 0:
            context.heartbeat()


def _streamable(sql: str, connection: Connection) -> bool:
    """Whether the rows can be fetched a batch at a time. On PostgreSQL that takes a
    server-side cursor, which only a query can have: any other statement runs as it is
    (and the read-only transaction refuses it with its own clear error)."""
    return connection.dialect.name != "postgresql" or bool(_QUERY_START.match(sql))


def storable(value: Any) -> Any:
    """A database value as a bool, int, float, str or None (see the module's docstring)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date | time_of_day):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, default=str)
    return str(value)


def _failed(error: ConnectorError, done: Sequence[QueryDetail], started: float) -> ConnectorError:
    """`error` with the query details so far plus the failed query's, and no password."""
    message = mask_url_passwords(str(error))
    failed = QueryDetail(
        status=QueryStatus.FAILED, rows=0, duration=_since(started), error_description=message
    )
    return type(error)(message, query_details=[*done, failed])


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return mask_url_passwords(lines[0]) if lines else exc.__class__.__name__


def _since(started: float) -> float:
    return round(time.monotonic() - started, 6)
