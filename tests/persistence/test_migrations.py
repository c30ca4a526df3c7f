"""The migrations build exactly the tables the models describe, on SQLite and PostgreSQL,
and the newest one can be undone and done again."""

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from persistence.db import get_engine
from persistence.migrate import alembic_config, upgrade


def test_the_migrated_schema_is_the_models_schema(database_url: str) -> None:
    with get_engine(database_url).connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert differences == []


def test_the_newest_migration_downgrades_and_upgrades_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'backfills.db'}"
    upgrade(url)
    command.downgrade(alembic_config(url), "-1")
    upgrade(url)
    with get_engine(url).connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert differences == []
