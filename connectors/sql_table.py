"""Partition replacement into a SQL table, shared by the SQL destinations.

A run replaces its date's rows in one transaction: the table is created when missing (a
`data_date` column plus one column per record key), a record key without a column adds
that column, the date's rows are deleted and the new ones inserted in batches. DDL is
transactional on SQLite and PostgreSQL, so a run killed halfway leaves the table and the
old partition as they were, and a re-run never leaves two copies. Loads into one table are
serialized (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: a transaction-scoped advisory lock), so
concurrent runs of a transfer cannot race to create or alter it.

Column types and the values they accept:
- A new column is typed from the values of the batch that brings it (the load reads its
  records INSERT_BATCH_ROWS at a time, never all at once): all booleans -> BOOLEAN, all
  integers -> BIGINT, integers and floats -> FLOAT, anything else (text, or a mix with
  text) -> TEXT, only NULLs -> TEXT. Dates and times are stored as ISO text. A later batch
  holding a value its column does not take is a type conflict, as for an existing column.
- An existing column keeps its type. A BOOLEAN column takes booleans; a BIGINT (any integer
  type) column takes integers; a FLOAT/NUMERIC column takes integers and floats; a TEXT
  column takes any scalar (numbers and booleans stored as their text form). Anything else is
  a type conflict: the run fails at once, naming the table, the column and both types.
  Columns of other types (a table made elsewhere) get the value as it is; the database
  decides. NULL fits every column; a column absent from the records gets NULL.
- Nested values (objects, lists) and bytes fit no column we create: a type conflict.
"""

import itertools
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from datetime import time as time_of_day
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Date,
    Engine,
    Float,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    inspect,
    select,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import CreateSchema, ExecutableDDLElement
from sqlalchemy.sql.compiler import DDLCompiler
from sqlalchemy.sql.elements import quoted_name
from sqlalchemy.types import TypeEngine

from connectors.base import Record
from connectors.budget import BATCH_BYTES, LoadBudget
from connectors.errors import ConnectorError, PermanentError
from connectors.sql_errors import classify

INSERT_BATCH_ROWS = 5_000
MAX_COLUMN_NAME_BYTES = 63  # PostgreSQL truncates longer identifiers
BIGINT_RANGE = range(-(2**63), 2**63)
_LOCK_CLASS = 0x6266  # PostgreSQL advisory lock namespace of this service ("bf")

BOOLEAN, INTEGER, FLOAT, TEXT = "boolean", "integer", "float", "text"
Kind = str  # BOOLEAN, INTEGER, FLOAT, TEXT, or a Python type name (a value no column takes)


def value_kind(value: Any) -> Kind:
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int):
        return INTEGER
    if isinstance(value, float | Decimal):
        return FLOAT
    if isinstance(value, str | date | time_of_day | UUID):
        return TEXT
    return type(value).__name__


def _type_of_kinds(kinds: set[Kind]) -> TypeEngine[Any]:
    if kinds == {BOOLEAN}:
        return Boolean()
    if kinds == {INTEGER}:
        return BigInteger()
    if kinds and kinds <= {INTEGER, FLOAT}:
        return Float()
    return Text()


def _category(sql_type: TypeEngine[Any]) -> str | None:
    """What a column holds, for the types this module knows; None: leave it to the database."""
    if isinstance(sql_type, Boolean):
        return BOOLEAN
    if isinstance(sql_type, Integer):
        return INTEGER
    if isinstance(sql_type, Numeric | Float):  # unrelated classes in SQLAlchemy 2.1
        return FLOAT
    if isinstance(sql_type, String):
        return TEXT
    return None


def replace_partition(
    engine: Engine,
    *,
    table_name: str,
    schema: str | None,
    data_date: date,
    records: Iterable[Record],
    heartbeat: Callable[[], None] | None = None,
    before_commit: Callable[[], None] | None = None,
    budget: LoadBudget | None = None,
) -> int:
    """Replace `data_date`'s rows of the table with `records`, in one transaction.

    `records` is read once, a batch at a time (see `_Batches`), and may be lazy (a source
    streaming its rows): only one batch is held at once, and only while the worker's
    `budget` lends it a slot. `schema`, when given, is created if missing. Raises
    PermanentError for a type conflict or an unusable record key, the classified error for
    a database failure, and the source's own error as it is. `before_commit` (the run's
    fence) runs once the rows are written, while the table's lock is held; whatever it
    raises rolls the transaction back and passes through.
    """
    cache_key = (engine.url.render_as_string(hide_password=True), schema, table_name)
    hooks = _Hooks(heartbeat=heartbeat, before_commit=before_commit)
    batches = _Batches(records, budget or LoadBudget())
    knew_the_table = cache_key in _known_tables
    try:
        return _replace(engine, table_name, schema, data_date, batches, hooks, cache_key)
    except (ConnectorError, SQLAlchemyError):
        if not knew_the_table or not batches.can_start_again:
            raise
    # What this process knew of the table may be stale (dropped or changed elsewhere):
    # inspect it afresh, once; the source has given nothing past the first batch yet.
    return _replace(engine, table_name, schema, data_date, batches, hooks, cache_key)


class _Batches:
    """The records a batch at a time, each read while a slot of the budget is held (until
    the next is asked for). A batch is about BATCH_BYTES, at most INSERT_BATCH_ROWS records.
    The first is kept, so that the load can start again once if the source has given
    nothing more and has not failed; the others are read once, as the load goes."""

    def __init__(self, records: Iterable[Record], budget: LoadBudget) -> None:
        self._records = iter(records)
        self._budget = budget
        self._first: list[Record] | None = None
        self.can_start_again = True

    def __iter__(self) -> Generator[list[Record], None, None]:
        with self._budget.batch():
            if self._first is None:
                self._first = self._read()
            yield self._first
        while True:
            with self._budget.batch():
                self.can_start_again = False
                batch = self._read()
                if not batch:
                    return
                yield batch

    def _read(self) -> list[Record]:
        batch: list[Record] = []
        size = 0
        try:
            for record in self._records:
                batch.append(record)
                size += _approximate_bytes(record)
                if len(batch) == INSERT_BATCH_ROWS or size >= BATCH_BYTES:
                    break
        except BaseException:
            self.can_start_again = False  # the source failed: never read it again
            raise
        return batch


def _approximate_bytes(record: Record) -> int:
    """About what a record takes in memory, with its converted row (dicts, strings): a
    cheap bound, not a measure."""
    return 400 + sum(120 + len(str(key)) + len(str(value)) for key, value in record.items())


def _replace(
    engine: Engine,
    table_name: str,
    schema: str | None,
    data_date: date,
    batches: _Batches,
    hooks: "_Hooks",
    cache_key: "_TableKey",
) -> int:
    label = f"{schema}.{table_name}" if schema else table_name
    written = 0
    reading = iter(batches)
    try:
        if schema is not None and cache_key not in _known_tables:
            _ensure_schema(engine, schema)
        with engine.begin() as connection:
            _lock_table(connection, label)
            first = next(reading)
            table = _prepare_table(connection, table_name, schema, first, label, cache_key)
            connection.execute(delete(table).where(table.c.data_date == data_date))
            for batch in itertools.chain([first], reading):
                # a batch may bring keys the ones before did not: their columns come now
                table = _prepare_table(connection, table_name, schema, batch, label, cache_key)
                rows = _rows(connection, table, batch, data_date, label)
                if rows:
                    connection.execute(insert(table), rows)
                written += len(rows)
                if hooks.heartbeat is not None:
                    hooks.heartbeat()
            if hooks.before_commit is not None:
                hooks.before_commit()
    except SQLAlchemyError as exc:
        _known_tables.pop(cache_key, None)
        raise classify(exc, f"destination table {label}") from None
    except BaseException:  # PermanentError, the fence's error: the transaction rolled back
        _known_tables.pop(cache_key, None)
        raise
    finally:
        reading.close()  # gives back the budget's slot at once, whatever happened
    return written


@dataclass(frozen=True)
class _Hooks:
    """What the caller runs inside the load's transaction."""

    heartbeat: Callable[[], None] | None
    before_commit: Callable[[], None] | None


class _AddColumn(ExecutableDDLElement):
    def __init__(self, table: Table, column: Column[Any]) -> None:
        self.table = table
        self.column = column


@compiles(_AddColumn)
def _compile_add_column(element: _AddColumn, compiler: DDLCompiler, **_: Any) -> str:
    return (
        f"ALTER TABLE {compiler.preparer.format_table(element.table)} "
        f"ADD COLUMN {compiler.get_column_specification(element.column)}"
    )


def _ensure_schema(engine: Engine, schema: str) -> None:
    """Create the schema if missing, in its own transaction: an empty schema left by a run
    that fails later is harmless, and this keeps loads into other tables of it concurrent."""
    if inspect(engine).has_schema(schema):
        return
    with engine.begin() as connection:
        _lock(connection, f"schema {schema}")
        if not inspect(connection).has_schema(schema):
            connection.execute(CreateSchema(schema))


def _lock_table(connection: Connection, label: str) -> None:
    _lock(connection, f"table {label}")


def _lock(connection: Connection, key: str) -> None:
    """Serialize writers of `key` until the transaction ends (SQLite: BEGIN IMMEDIATE did)."""
    if connection.dialect.name == "postgresql":
        connection.execute(select(func.pg_advisory_xact_lock(_LOCK_CLASS, func.hashtext(key))))


_TableKey = tuple[str, str | None, str]
_known_tables: dict[_TableKey, tuple[Table, set[str]]] = {}
"""Tables this process has prepared, with their column names: a load whose record keys all
have columns skips inspecting the database (and reuses compiled statements). A column added
meanwhile by another process only gets NULL from our records, which lack it; any error
forgets the table, so the next load inspects it afresh."""


def _prepare_table(
    connection: Connection,
    table_name: str,
    schema: str | None,
    records: list[Record],
    label: str,
    cache_key: _TableKey,
) -> Table:
    """The table with a column for every record key: created or altered as needed, in the
    caller's transaction."""
    keys = _record_keys(records, label)
    known = _known_tables.get(cache_key)
    if known is not None and all(_normalized(key, connection) in known[1] for key in keys):
        return known[0]
    table = _inspect_or_create(connection, table_name, schema, records, label, keys)
    case_insensitive = connection.dialect.name == "sqlite"
    _known_tables[cache_key] = (table, _column_names(table, case_insensitive=case_insensitive))
    return table


def _inspect_or_create(
    connection: Connection,
    table_name: str,
    schema: str | None,
    records: list[Record],
    label: str,
    keys: list[str],
) -> Table:
    metadata = MetaData()
    inspector = inspect(connection)
    if not inspector.has_table(table_name, schema=schema):
        columns = [Column(_quoted(key), _new_column_type(records, key)) for key in keys]
        table = Table(
            _quoted(table_name),
            metadata,
            Column(_quoted("data_date"), Date, index=True),
            *columns,
            schema=_quoted(schema) if schema else None,
        )
        metadata.create_all(connection)
        return table
    existing = [
        Column(_quoted(column["name"]), column["type"])
        for column in inspector.get_columns(table_name, schema=schema)
    ]
    table = Table(
        _quoted(table_name), metadata, *existing, schema=_quoted(schema) if schema else None
    )
    if "data_date" not in table.c:
        raise PermanentError(
            f"destination table {label} has no data_date column; "
            "name a table the service creates, or add the column"
        )
    known = _column_names(table, case_insensitive=connection.dialect.name == "sqlite")
    for key in keys:
        if _normalized(key, connection) not in known:
            column = Column(_quoted(key), _new_column_type(records, key))
            table.append_column(column)
            connection.execute(_AddColumn(table, column))
    return table


def _quoted(name: str) -> quoted_name:
    """Always quoted: a record key may be a word the dialect reserves without SQLAlchemy
    knowing (SQLite's `nothing`), and quoting keeps names exactly as given."""
    return quoted_name(name, quote=True)


def _record_keys(records: Iterable[Record], label: str) -> list[str]:
    """Every record key in order of first appearance, except data_date (set by the load)."""
    keys: dict[str, None] = {}
    for record in records:
        for key in record:
            if key not in keys:
                if not isinstance(key, str) or not key.strip():
                    raise PermanentError(
                        f"destination table {label}: a record has a key {key!r} "
                        "that cannot name a column"
                    )
                if len(key.encode()) > MAX_COLUMN_NAME_BYTES:
                    raise PermanentError(
                        f"destination table {label}: the record key {key[:40]!r}... is longer "
                        f"than {MAX_COLUMN_NAME_BYTES} bytes, too long for a column name"
                    )
                keys[key] = None
    keys.pop("data_date", None)
    return list(keys)


def _new_column_type(records: Iterable[Record], key: str) -> TypeEngine[Any]:
    kinds = {value_kind(r[key]) for r in records if r.get(key) is not None}
    return _type_of_kinds(kinds)


def _column_names(table: Table, *, case_insensitive: bool) -> set[str]:
    return {str(c.name).lower() if case_insensitive else str(c.name) for c in table.columns}


def _normalized(key: str, connection: Connection) -> str:
    return str(key).lower() if connection.dialect.name == "sqlite" else str(key)


def _rows(
    connection: Connection, table: Table, records: list[Record], data_date: date, label: str
) -> list[dict[str, Any]]:
    """The records as insert parameters, every column present, values in their column's
    form; a value its column cannot hold fails the load before anything is written."""
    by_key = {_normalized(c.name, connection): c for c in table.columns}
    keys = _record_keys(records, label)
    columns = [(key, by_key[_normalized(key, connection)]) for key in keys]
    columns = [(key, column) for key, column in columns if column.name != "data_date"]
    converters = [
        (key, column.name, _converter(column.type, connection, label, column.name))
        for key, column in columns
    ]
    rows = []
    for record in records:
        row: dict[str, Any] = {"data_date": data_date}
        for key, name, convert in converters:
            value = record.get(key)
            row[name] = None if value is None else convert(value)
        rows.append(row)
    return rows


def _converter(
    sql_type: TypeEngine[Any], connection: Connection, label: str, name: str
) -> Callable[[Any], Any]:
    category = _category(sql_type)
    if category is None:
        return lambda value: value

    def conflict(value: Any) -> PermanentError:
        kind = value_kind(value)
        article = "an" if kind[:1] in ("a", "e", "i", "o", "u") else "a"
        held = (
            "an integer outside the BIGINT range" if kind == category else f"{article} {kind} value"
        )
        return PermanentError(
            f"destination table {label}: column {name} is "
            f"{sql_type.compile(dialect=connection.dialect)} but a record holds {held}; "
            f"the column keeps its type, so make the source produce {category} values "
            "or load into a new table"
        )

    def convert(value: Any) -> Any:
        kind = value_kind(value)
        if category == BOOLEAN and kind == BOOLEAN:
            return value
        if category == INTEGER and kind == INTEGER and value in BIGINT_RANGE:
            return value
        if category == FLOAT and kind in (INTEGER, FLOAT):
            return float(value) if isinstance(sql_type, Float) else value
        if category == TEXT and kind in (BOOLEAN, INTEGER, FLOAT, TEXT):
            return _text_of(value)
        raise conflict(value)

    return convert


def _text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date | time_of_day):
        return value.isoformat()
    return str(value)
