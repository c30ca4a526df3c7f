"""The `sqlite` destination: one partition per `data_date`, replaced atomically."""

import sqlite3
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from connectors.base import Destination, Record, RunContext
from connectors.demo import demo_rows
from connectors.errors import PermanentError
from connectors.registry import InvalidConnectorSpec, parse_destination
from connectors.sql_table import INSERT_BATCH_ROWS

DAY = date(2024, 3, 1)
OTHER_DAY = date(2024, 3, 2)


def context(tmp_path: Path, transfer_id: int = 7) -> RunContext:
    return RunContext(team_dir=tmp_path, transfer_id=transfer_id, heartbeat=lambda: None)


def destination(**options: Any) -> Destination:
    spec = {"type": "sqlite", "path": "out/ads.db", "table": "ads", **options}
    return parse_destination(spec).build()


def rows_of(path: Path, table: str, data_date: date | None = None) -> list[tuple[Any, ...]]:
    query = f'SELECT * FROM "{table}"'
    params: tuple[str, ...] = ()
    if data_date is not None:
        query += " WHERE data_date = ?"
        params = (data_date.isoformat(),)
    with sqlite3.connect(path) as connection:
        return connection.execute(query + " ORDER BY data_date, row_number", params).fetchall()


def columns_of(path: Path, table: str) -> list[str]:
    with sqlite3.connect(path) as connection:
        return [row[1] for row in connection.execute(f'PRAGMA table_info("{table}")')]


def test_writing_a_date_twice_leaves_one_copy(tmp_path: Path) -> None:
    sink = destination()
    records = demo_rows(DAY, 10)

    assert sink.replace_partition(DAY, records, context(tmp_path)) == 10
    first = rows_of(tmp_path / "out/ads.db", "ads")
    assert sink.replace_partition(DAY, records, context(tmp_path)) == 10

    assert rows_of(tmp_path / "out/ads.db", "ads") == first
    assert len(first) == 10


def test_rewriting_a_date_replaces_its_rows(tmp_path: Path) -> None:
    sink = destination()
    sink.replace_partition(DAY, demo_rows(DAY, 10), context(tmp_path))

    assert sink.replace_partition(DAY, demo_rows(DAY, 3), context(tmp_path)) == 3

    assert len(rows_of(tmp_path / "out/ads.db", "ads", DAY)) == 3


def test_different_dates_coexist(tmp_path: Path) -> None:
    sink = destination()
    sink.replace_partition(DAY, demo_rows(DAY, 4), context(tmp_path))
    sink.replace_partition(OTHER_DAY, demo_rows(OTHER_DAY, 6), context(tmp_path))
    sink.replace_partition(DAY, demo_rows(DAY, 4), context(tmp_path))

    path = tmp_path / "out/ads.db"
    assert len(rows_of(path, "ads", DAY)) == 4
    assert len(rows_of(path, "ads", OTHER_DAY)) == 6
    assert len(rows_of(path, "ads")) == 10


def test_every_row_carries_its_data_date(tmp_path: Path) -> None:
    sink = destination()
    sink.replace_partition(DAY, demo_rows(DAY, 3), context(tmp_path))

    path = tmp_path / "out/ads.db"
    assert "data_date" in columns_of(path, "ads")
    with sqlite3.connect(path) as connection:
        dates = connection.execute("SELECT DISTINCT data_date FROM ads").fetchall()
    assert dates == [("2024-03-01",)]


def test_records_are_stored_as_given(tmp_path: Path) -> None:
    sink = destination()
    records = demo_rows(DAY, 5)
    sink.replace_partition(DAY, records, context(tmp_path))

    with sqlite3.connect(tmp_path / "out/ads.db") as connection:
        connection.row_factory = sqlite3.Row
        stored = connection.execute("SELECT * FROM ads ORDER BY row_number").fetchall()
    assert [{key: row[key] for key in records[0]} for row in stored] == records


def test_defaults_are_warehouse_db_in_the_team_dir_and_transfer_table(tmp_path: Path) -> None:
    sink = parse_destination({"type": "sqlite"}).build()

    sink.replace_partition(DAY, demo_rows(DAY, 2), context(tmp_path, transfer_id=42))

    assert len(rows_of(tmp_path / "warehouse.db", "transfer_42")) == 2


def test_an_empty_partition_clears_the_date(tmp_path: Path) -> None:
    sink = destination()
    sink.replace_partition(DAY, demo_rows(DAY, 5), context(tmp_path))
    sink.replace_partition(OTHER_DAY, demo_rows(OTHER_DAY, 5), context(tmp_path))

    assert sink.replace_partition(DAY, [], context(tmp_path)) == 0

    assert rows_of(tmp_path / "out/ads.db", "ads", DAY) == []
    assert len(rows_of(tmp_path / "out/ads.db", "ads", OTHER_DAY)) == 5


def nested_value(record: Record) -> Record:
    """A record as a JSON source may produce it: a value SQLite cannot store."""
    return {**record, "campaign": {"name": record["campaign"], "id": 17}}


@pytest.mark.parametrize(
    "bad_at",
    [0, INSERT_BATCH_ROWS],
    ids=["first-row", "after-a-full-batch"],
)
def test_a_failing_write_leaves_the_old_partition_intact(tmp_path: Path, bad_at: int) -> None:
    sink = destination()
    path = tmp_path / "out/ads.db"
    sink.replace_partition(DAY, demo_rows(DAY, 10), context(tmp_path))
    sink.replace_partition(OTHER_DAY, demo_rows(OTHER_DAY, 3), context(tmp_path))
    before = rows_of(path, "ads")
    records = demo_rows(DAY, bad_at + 10)
    records[bad_at] = nested_value(records[bad_at])

    with pytest.raises(PermanentError) as raised:
        sink.replace_partition(DAY, records, context(tmp_path))

    assert "ads" in str(raised.value)
    assert rows_of(path, "ads") == before


def test_the_destination_works_again_after_a_failed_write(tmp_path: Path) -> None:
    sink = destination()
    sink.replace_partition(DAY, demo_rows(DAY, 2), context(tmp_path))
    with pytest.raises(PermanentError):
        sink.replace_partition(DAY, [nested_value(demo_rows(DAY, 1)[0])], context(tmp_path))

    assert sink.replace_partition(DAY, demo_rows(DAY, 4), context(tmp_path)) == 4

    assert len(rows_of(tmp_path / "out/ads.db", "ads", DAY)) == 4


def test_a_record_key_without_a_column_is_not_silently_lost(tmp_path: Path) -> None:
    sink = destination()
    path = tmp_path / "out/ads.db"
    sink.replace_partition(DAY, demo_rows(DAY, 2), context(tmp_path))
    records = [{**record, "new_metric": 5} for record in demo_rows(OTHER_DAY, 2)]

    assert sink.replace_partition(OTHER_DAY, records, context(tmp_path)) == 2

    assert "new_metric" in columns_of(path, "ads")
    with sqlite3.connect(path) as connection:
        stored = connection.execute(
            "SELECT new_metric FROM ads WHERE data_date = ?", (OTHER_DAY.isoformat(),)
        ).fetchall()
        earlier = connection.execute(
            "SELECT new_metric FROM ads WHERE data_date = ?", (DAY.isoformat(),)
        ).fetchall()
    assert stored == [(5,), (5,)]
    assert earlier == [(None,), (None,)]


@pytest.mark.parametrize("table", ["1abc", "bad-name", "x; DROP TABLE ads", ""])
def test_unsafe_table_names_are_rejected(table: str) -> None:
    with pytest.raises(InvalidConnectorSpec) as raised:
        parse_destination({"type": "sqlite", "table": table})

    assert "destination.table" in str(raised.value)


@pytest.mark.parametrize(
    "path",
    [
        "/etc/warehouse.db",
        "../warehouse.db",
        "a/../../w.db",
        "",
        "..",
        "~/w.db",
        "..\\..\\backfills.db",
        "a/./../../b.db",
        "w.db\0x",
    ],
)
def test_paths_outside_the_team_dir_are_rejected(path: str) -> None:
    with pytest.raises(InvalidConnectorSpec) as raised:
        parse_destination({"type": "sqlite", "path": path})

    assert "destination.path" in str(raised.value)


def test_a_table_dropped_behind_the_workers_back_is_created_again(tmp_path: Path) -> None:
    sink = destination()
    sink.replace_partition(DAY, demo_rows(DAY, 3), context(tmp_path))
    with sqlite3.connect(tmp_path / "out/ads.db") as connection:
        connection.execute('DROP TABLE "ads"')

    assert sink.replace_partition(OTHER_DAY, demo_rows(OTHER_DAY, 4), context(tmp_path)) == 4

    assert len(rows_of(tmp_path / "out/ads.db", "ads")) == 4


def test_a_link_out_of_the_team_dir_is_refused_at_run_time(tmp_path: Path) -> None:
    """Whatever made the link (an operator, a restored backup), a run never follows one out."""
    team_dir = tmp_path / "teams" / "1"
    team_dir.mkdir(parents=True)
    service_db = tmp_path / "backfills.db"
    with sqlite3.connect(service_db) as connection:
        connection.execute("CREATE TABLE transfer_runs (data_date TEXT, secret TEXT)")
        connection.execute("INSERT INTO transfer_runs VALUES ('2024-01-01', 'keep me')")
    (team_dir / "escape.db").symlink_to(service_db)
    (team_dir / "up").symlink_to(tmp_path)
    for path in ("escape.db", "up/backfills.db"):
        sink = parse_destination({"type": "sqlite", "path": path, "table": "transfer_runs"})

        with pytest.raises(PermanentError, match="outside the team's directory"):
            sink.build().replace_partition(DAY, [], context(team_dir))

    with sqlite3.connect(service_db) as connection:
        assert connection.execute("SELECT secret FROM transfer_runs").fetchall() == [("keep me",)]
