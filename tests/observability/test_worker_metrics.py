"""`backfills_backfills{status}` on a database that stops answering: a scrape keeps the last
counts it read, and a collector that never read any exports nothing rather than zeros."""

from pathlib import Path

from prometheus_client import CollectorRegistry
from sqlalchemy import text

from observability.worker_metrics import BackfillStatusCollector
from persistence.db import Database
from persistence.migrate import upgrade


def status_counts(registry: CollectorRegistry) -> dict[str, float]:
    return {
        sample.labels["status"]: sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name == "backfills_backfills"
    }


def scraped(db: Database) -> tuple[BackfillStatusCollector, CollectorRegistry]:
    collector = BackfillStatusCollector(db)
    registry = CollectorRegistry()
    registry.register(collector)
    return collector, registry


def break_reads(db: Database) -> None:
    with db.write() as session:
        session.exec(text("ALTER TABLE backfills RENAME TO backfills_gone"))  # type: ignore[call-overload]


def test_a_failed_read_repeats_the_last_counts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'backfills.db'}"
    upgrade(url)
    db = Database(url)
    _, registry = scraped(db)
    before = status_counts(registry)

    break_reads(db)

    assert before["RUNNING"] == 0 and len(before) == 6
    assert status_counts(registry) == before


def test_a_collector_that_never_read_exports_no_counts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'backfills.db'}"
    upgrade(url)
    db = Database(url)
    break_reads(db)
    _, registry = scraped(db)

    assert status_counts(registry) == {}
