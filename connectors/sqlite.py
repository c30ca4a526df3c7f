"""The `sqlite` destination: a table in a SQLite file of the team's own warehouse directory
(`warehouse.db` by default; see connectors/warehouse.py)."""

from collections.abc import Iterable
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL

from connectors import sql_table
from connectors.base import DestinationOptions, Record, RunContext
from connectors.warehouse import DEFAULT_FILE, check_relative_name, file_in

IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"


class SqliteDestinationOptions(DestinationOptions):
    type: Literal["sqlite"] = "sqlite"
    path: str | None = Field(
        default=None,
        max_length=255,
        description="A file in the team's warehouse directory (relative, no `..`); "
        "default: warehouse.db.",
    )
    table: str | None = Field(
        default=None, pattern=IDENTIFIER, description="Default: transfer_<id>."
    )

    @field_validator("path")
    @classmethod
    def _inside_team_dir(cls, value: str | None) -> str | None:
        return None if value is None else check_relative_name(value)

    def build(self) -> "SqliteDestination":
        return SqliteDestination(self)


class SqliteDestination:
    def __init__(self, options: SqliteDestinationOptions) -> None:
        self.options = options

    def replace_partition(
        self, data_date: date, records: Iterable[Record], context: RunContext
    ) -> int:
        path = file_in(context.team_dir, self.options.path or DEFAULT_FILE)
        table = self.options.table or f"transfer_{context.transfer_id}"
        return sql_table.replace_partition(
            _engine(str(path)),
            table_name=table,
            schema=None,
            data_date=data_date,
            records=records,
            before_commit=context.still_current,
            budget=context.load_budget,
        )


@lru_cache(maxsize=32)
def _engine(path: str) -> Engine:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(URL.create("sqlite", database=path), connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA busy_timeout=30000")

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
