"""The `sqlite` destination: a table in a SQLite file, `warehouse.db` in the data directory."""

from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from sqlalchemy import Engine, create_engine, event

from connectors import sql_table
from connectors.base import DestinationOptions, Record, RunContext

IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"


class SqliteDestinationOptions(DestinationOptions):
    type: Literal["sqlite"] = "sqlite"
    path: str | None = Field(
        default=None,
        description="A file in the worker's data directory (relative, no `..`); "
        "default: warehouse.db.",
    )
    table: str | None = Field(
        default=None, pattern=IDENTIFIER, description="Default: transfer_<id>."
    )

    @field_validator("path")
    @classmethod
    def _inside_data_dir(cls, value: str | None) -> str | None:
        if value is not None and (
            not value or Path(value).is_absolute() or ".." in Path(value).parts
        ):
            raise ValueError("must be a relative path inside the data directory, without '..'")
        return value

    def build(self) -> "SqliteDestination":
        return SqliteDestination(self)


class SqliteDestination:
    def __init__(self, options: SqliteDestinationOptions) -> None:
        self.options = options

    def replace_partition(self, data_date: date, records: list[Record], context: RunContext) -> int:
        path = context.data_dir / (self.options.path or "warehouse.db")
        table = self.options.table or f"transfer_{context.transfer_id}"
        return sql_table.replace_partition(
            _engine(str(path.resolve())),
            table_name=table,
            schema=None,
            data_date=data_date,
            records=records,
        )


@lru_cache(maxsize=32)
def _engine(path: str) -> Engine:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA busy_timeout=30000")

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
