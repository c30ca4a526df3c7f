"""Partition replacement into a SQL table, shared by the SQL destinations.

The table is created on first use with a `data_date` column plus one column per record key;
a run deletes its date's rows and inserts the new ones in one transaction, so a re-run never
duplicates a partition and a run killed halfway leaves the old one intact.
"""

from datetime import date
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Engine,
    Float,
    MetaData,
    Table,
    Text,
    delete,
    insert,
    inspect,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.types import TypeEngine

from connectors.base import Record
from connectors.sql_errors import classify

INSERT_BATCH_ROWS = 5_000


def column_type(value: Any) -> TypeEngine[Any]:
    if isinstance(value, bool):
        return Boolean()
    if isinstance(value, int):
        return BigInteger()
    if isinstance(value, float):
        return Float()
    return Text()


def replace_partition(
    engine: Engine, *, table_name: str, schema: str | None, data_date: date, records: list[Record]
) -> int:
    try:
        table = _ensure_table(engine, table_name, schema, records)
        rows = [{**record, "data_date": data_date} for record in records]
        with engine.begin() as connection:
            connection.execute(delete(table).where(table.c.data_date == data_date))
            for start in range(0, len(rows), INSERT_BATCH_ROWS):
                connection.execute(insert(table), rows[start : start + INSERT_BATCH_ROWS])
    except SQLAlchemyError as exc:
        raise classify(exc, f"destination table {table_name}") from None
    return len(rows)


def _ensure_table(
    engine: Engine, table_name: str, schema: str | None, records: list[Record]
) -> Table:
    metadata = MetaData(schema=schema)
    if inspect(engine).has_table(table_name, schema=schema):
        return Table(table_name, metadata, autoload_with=engine)
    sample = records[0] if records else {}
    columns = [Column(key, column_type(value)) for key, value in sample.items()]
    table = Table(table_name, metadata, Column("data_date", Date, index=True), *columns)
    metadata.create_all(engine, checkfirst=True)
    return table
