"""The `postgresql` destination: a table in a PostgreSQL database, one partition per date."""

from collections.abc import Iterable
from datetime import date
from typing import Literal

from pydantic import ConfigDict, Field, field_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from connectors import sql_table
from connectors.base import DestinationOptions, Record, RunContext
from connectors.errors import ConnectorError, PermanentError
from connectors.secrets import REFERENCE
from connectors.sql_engine import engine_for
from connectors.sql_errors import classify
from connectors.sqlite import IDENTIFIER
from persistence.db import normalize_url


class PostgresqlDestinationOptions(DestinationOptions):
    # `schema` is the option's name; the attribute is `db_schema` (BaseModel has a `schema`).
    model_config = ConfigDict(serialize_by_alias=True)

    type: Literal["postgresql"] = "postgresql"
    url: str = Field(
        min_length=1,
        description="postgresql://user[:password]@host[:port]/database; may hold `${NAME}`.",
    )
    table: str = Field(pattern=IDENTIFIER)
    db_schema: str | None = Field(
        default=None,
        alias="schema",
        pattern=IDENTIFIER,
        description="Created if missing; default: the connection's search_path (public).",
    )

    @field_validator("url")
    @classmethod
    def _postgresql_url(cls, value: str) -> str:
        try:
            parsed = make_url(normalize_url(value))
        except ArgumentError:
            if REFERENCE.search(value):
                return value  # e.g. the whole URL is `${NAME}`: checked when the run executes
            raise ValueError("is not a URL (postgresql://user@host/database)") from None
        if parsed.get_backend_name() != "postgresql":
            raise ValueError("must be a postgresql:// URL")
        return value

    @property
    def database_url(self) -> str | None:
        return self.url

    def build(self) -> "PostgresqlDestination":
        return PostgresqlDestination(self)


class PostgresqlDestination:
    def __init__(self, options: PostgresqlDestinationOptions) -> None:
        self.options = options

    def replace_partition(
        self, data_date: date, records: Iterable[Record], context: RunContext
    ) -> int:
        try:
            engine = engine_for(self.options.url, context.egress)
        except ConnectorError as exc:  # refused by the egress policy, or no such host
            raise type(exc)(f"postgresql destination: {exc}") from None
        except (ArgumentError, ImportError) as exc:
            raise PermanentError(
                f"postgresql destination: the URL cannot be used ({exc.__class__.__name__})"
            ) from None
        except SQLAlchemyError as exc:
            raise classify(exc, "postgresql destination") from None
        return sql_table.replace_partition(
            engine,
            table_name=self.options.table,
            schema=self.options.db_schema,
            data_date=data_date,
            records=records,
            heartbeat=context.heartbeat,
            before_commit=context.still_current,
            budget=context.load_budget,
        )
