"""`backfills_backfills{status}` on a database that stops answering: a scrape keeps the last
counts it read, and a collector that never read any exports nothing rather than zeros."""

import os
from datetime import date
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import text

from observability.worker_metrics import BackfillStatusCollector
from persistence import accounts, backfills, transfers
from persistence.db import Database
from persistence.migrate import upgrade
from persistence.models import Role


@pytest.fixture
def db(tmp_path: Path) -> Database:
    url = f"sqlite:///{tmp_path / 'backfills.db'}"
    upgrade(url)
    return Database(url)


def status_counts(registry: CollectorRegistry) -> dict[str, float]:
    return {
        sample.labels["status"]: sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name == "backfills_backfills"
    }


def scraped(db: Database) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(BackfillStatusCollector(db))
    return registry


def create_one_backfill(db: Database) -> None:
    team_id = accounts.create_team(db=db, name="metrics")
    user_id = accounts.create_user(
        db=db, email=f"{os.urandom(6).hex()}@example.com", team_id=team_id, role=Role.OWNER
    )
    transfer = transfers.create_transfer(
        db=db,
        team_id=team_id,
        user_id=user_id,
        display_name="metrics",
        source={"type": "demo"},
        destination={"type": "sqlite"},
        max_concurrent_runs=1,
    )
    assert transfer.id is not None
    backfills.create_backfill(
        db=db,
        team_id=team_id,
        transfer_id=transfer.id,
        user_id=user_id,
        range_start=date(2024, 1, 1),
        range_end=date(2024, 1, 2),
    )


def break_reads(db: Database) -> None:
    with db.write() as session:
        session.execute(text("ALTER TABLE backfills RENAME TO backfills_gone"))


def test_a_failed_read_repeats_the_last_counts(db: Database) -> None:
    create_one_backfill(db)
    registry = scraped(db)
    before = status_counts(registry)

    break_reads(db)

    assert before["CREATED"] == 1 and len(before) == 6
    assert status_counts(registry) == before


def test_a_collector_that_never_read_exports_no_counts(db: Database) -> None:
    break_reads(db)

    assert status_counts(scraped(db)) == {}
