"""Alembic environment: the URL comes from the caller (`persistence.migrate`), never a file."""

from alembic import context
from sqlmodel import SQLModel

import persistence.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from persistence.db import get_engine

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url, "persistence.migrate sets sqlalchemy.url"

with get_engine(url).connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
