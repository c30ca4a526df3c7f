"""The shared SQL table writer, through both SQL destinations (SQLite and PostgreSQL): table
creation, added columns, the type rules, batching and one-transaction partition replacement."""

import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event

from connectors.base import Destination, Record, RunContext
from connectors.budget import LoadBudget
from connectors.demo import demo_rows
from connectors.egress import EgressPolicy
from connectors.errors import PermanentError, TransientError
from connectors.registry import parse_destination
from connectors.sql_table import INSERT_BATCH_ROWS
from tests.scratch_postgres import query, scratch_database

DAY = date(2024, 3, 1)
OTHER_DAY = date(2024, 3, 2)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with scratch_database("backfills_sql_table") as url:
        yield url


@dataclass
class Sink:
    """A destination and a way to look at what it wrote."""

    backend: str
    destination: Destination
    context: RunContext
    sqlite_path: Path | None = None
    postgres_url: str | None = None

    def write(self, data_date: date, records: Iterable[Record]) -> int:
        return self.destination.replace_partition(data_date, records, self.context)

    def select(self, sql: str) -> list[tuple[Any, ...]]:
        if self.sqlite_path is not None:
            with sqlite3.connect(self.sqlite_path) as connection:
                rows = connection.execute(sql).fetchall()
            connection.close()
            return rows
        assert self.postgres_url is not None
        return query(self.postgres_url, sql)

    def count(self, data_date: date | None = None) -> int:
        where = f" WHERE data_date = '{data_date.isoformat()}'" if data_date else ""
        [(count,)] = self.select(f"SELECT count(*) FROM ads{where}")
        return int(str(count))

    def column_types(self) -> dict[str, str]:
        """Column name -> its type as this module names it: boolean/integer/float/text/date."""
        if self.sqlite_path is not None:
            declared = {row[1]: str(row[2]) for row in self.select("PRAGMA table_info(ads)")}
        else:
            declared = {
                str(name): str(kind)
                for name, kind in self.select(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_name = 'ads' AND table_schema = current_schema()"
                )
            }
        names = {
            "BIGINT": "integer",
            "bigint": "integer",
            "FLOAT": "float",
            "double precision": "float",
            "TEXT": "text",
            "text": "text",
            "BOOLEAN": "boolean",
            "boolean": "boolean",
            "DATE": "date",
            "date": "date",
        }
        return {name: names.get(kind, kind) for name, kind in declared.items()}


@pytest.fixture(params=["sqlite", "postgresql"])
def sink(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Sink]:
    beats: list[None] = []
    context = RunContext(
        team_dir=tmp_path,
        transfer_id=1,
        heartbeat=lambda: beats.append(None),
        egress=EgressPolicy(allowed_networks=(ip_network("127.0.0.0/8"),)),
    )
    if request.param == "sqlite":
        destination = parse_destination({"type": "sqlite", "table": "ads"}).build()
        yield Sink("sqlite", destination, context, sqlite_path=tmp_path / "warehouse.db")
        return
    url = request.getfixturevalue("postgres_url")
    query(url, "DROP TABLE IF EXISTS ads")
    destination = parse_destination({"type": "postgresql", "url": url, "table": "ads"}).build()
    yield Sink("postgresql", destination, context, postgres_url=url)


def test_a_new_table_has_data_date_and_a_column_per_record_key(sink: Sink) -> None:
    sink.write(DAY, [{"campaign": "brand", "clicks": 3, "cost": 1.5, "active": True}])

    assert sink.column_types() == {
        "data_date": "date",
        "campaign": "text",
        "clicks": "integer",
        "cost": "float",
        "active": "boolean",
    }


def test_a_new_column_is_typed_from_all_values_of_the_load(sink: Sink) -> None:
    sink.write(
        DAY,
        [
            {"whole": None, "mixed_numbers": 1, "mixed_text": "a", "nothing": None},
            {"whole": 7, "mixed_numbers": 2.5, "mixed_text": 3, "nothing": None},
        ],
    )

    types = sink.column_types()
    assert types["whole"] == "integer"
    assert types["mixed_numbers"] == "float"
    assert types["mixed_text"] == "text"
    assert types["nothing"] == "text"
    assert sink.select("SELECT mixed_text FROM ads ORDER BY mixed_text") == [("3",), ("a",)]


def test_keys_of_every_record_get_columns_and_missing_values_are_null(sink: Sink) -> None:
    sink.write(DAY, [{"a": 1}, {"a": 2, "b": "late"}])

    assert sink.select("SELECT a, b FROM ads ORDER BY a") == [(1, None), (2, "late")]


def test_a_new_record_key_adds_a_typed_column_and_keeps_the_value(sink: Sink) -> None:
    sink.write(DAY, [{"clicks": 1}])

    sink.write(OTHER_DAY, [{"clicks": 2, "cost": 0.25, "note": "new"}])

    types = sink.column_types()
    assert (types["cost"], types["note"]) == ("float", "text")
    assert sink.select("SELECT clicks, cost, note FROM ads ORDER BY clicks") == [
        (1, None, None),
        (2, 0.25, "new"),
    ]


def test_a_column_absent_from_a_later_load_gets_null(sink: Sink) -> None:
    sink.write(DAY, [{"clicks": 1, "cost": 2.0}])

    sink.write(OTHER_DAY, [{"clicks": 5}])

    assert sink.select("SELECT clicks, cost FROM ads ORDER BY clicks") == [(1, 2.0), (5, None)]


@pytest.mark.parametrize(
    ("first", "then", "column_type", "held"),
    [
        (3, "three", "BIGINT", "text"),
        (3, 3.5, "BIGINT", "float"),
        (3, True, "BIGINT", "boolean"),
        (True, 1, "BOOLEAN", "integer"),
        (1.5, "x", "FLOAT|DOUBLE PRECISION", "text"),
        ("brand", {"name": "brand"}, "TEXT", "dict"),
    ],
    ids=["text-in-bigint", "float-in-bigint", "bool-in-bigint", "int-in-boolean",
         "text-in-float", "object-in-text"],
)  # fmt: skip
def test_a_type_conflict_fails_naming_the_column_and_both_types(
    sink: Sink, first: Any, then: Any, column_type: str, held: str
) -> None:
    sink.write(DAY, [{"row": 1, "metric": first}])

    with pytest.raises(PermanentError) as raised:
        sink.write(OTHER_DAY, [{"row": 1, "metric": first}, {"row": 2, "metric": then}])

    message = str(raised.value)
    assert "ads" in message
    assert "column metric" in message
    assert any(name in message for name in column_type.split("|")), message
    assert f"{held} value" in message
    assert sink.count(OTHER_DAY) == 0


def test_an_integer_outside_bigint_is_a_conflict(sink: Sink) -> None:
    sink.write(DAY, [{"metric": 1}])

    with pytest.raises(PermanentError) as raised:
        sink.write(DAY, [{"metric": 2**64}])

    assert "BIGINT range" in str(raised.value)
    assert sink.select("SELECT metric FROM ads") == [(1,)]


def test_a_conflict_leaves_no_added_column_and_the_old_partition(sink: Sink) -> None:
    sink.write(DAY, [{"clicks": 1}, {"clicks": 2}])

    with pytest.raises(PermanentError):
        sink.write(DAY, [{"clicks": 3, "brand_new": "x"}, {"clicks": "three", "brand_new": "y"}])

    assert "brand_new" not in sink.column_types()
    assert sink.select("SELECT clicks FROM ads ORDER BY clicks") == [(1,), (2,)]


@pytest.mark.parametrize(
    ("first", "then", "stored"),
    [
        ("brand", 5, "5"),
        ("brand", 2.5, "2.5"),
        ("brand", True, "true"),
        (1.5, 2, 2.0),
        (None, 4, 4),
    ],
    ids=["int-in-text", "float-in-text", "bool-in-text", "int-in-float", "int-in-null-typed"],
)
def test_values_that_fit_their_column_are_stored_in_its_form(
    sink: Sink, first: Any, then: Any, stored: Any
) -> None:
    sink.write(DAY, [{"metric": first}])

    sink.write(OTHER_DAY, [{"metric": then}])

    expected = stored if first is not None else str(stored)
    assert sink.select(f"SELECT metric FROM ads WHERE data_date = '{OTHER_DAY}'") == [(expected,)]


def test_a_data_date_key_in_the_records_is_the_partition_date(sink: Sink) -> None:
    sink.write(DAY, [{"data_date": "1999-01-01", "clicks": 1}])

    assert sink.count(DAY) == 1
    assert sink.count() == 1


def test_unusual_column_names_work(sink: Sink) -> None:
    record = {"ad group": "a", "rate %": 1.5, "ratio:x": 2, "Mixed Case": True}

    sink.write(DAY, [record])
    sink.write(DAY, [record])

    assert set(record) < set(sink.column_types())
    assert sink.count(DAY) == 1


def test_a_table_made_elsewhere_without_data_date_is_refused(sink: Sink) -> None:
    if sink.sqlite_path is not None:
        with sqlite3.connect(sink.sqlite_path) as connection:
            connection.execute("CREATE TABLE ads (clicks INTEGER)")
        connection.close()
    else:
        assert sink.postgres_url is not None
        query(sink.postgres_url, "CREATE TABLE ads (clicks integer)")

    with pytest.raises(PermanentError) as raised:
        sink.write(DAY, [{"clicks": 1}])

    assert "data_date" in str(raised.value)


@contextmanager
def inserts_seen(on_insert: Callable[[], object] = lambda: None) -> Iterator[list[str]]:
    """The INSERT statements any engine runs meanwhile; `on_insert` is called at each."""
    inserts: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT"):
            inserts.append(statement)
            on_insert()

    event.listen(Engine, "before_cursor_execute", note)
    try:
        yield inserts
    finally:
        event.remove(Engine, "before_cursor_execute", note)


def test_many_rows_are_loaded_in_batches(sink: Sink) -> None:
    rows = 2 * INSERT_BATCH_ROWS + 7

    with inserts_seen() as inserts:
        assert sink.write(DAY, demo_rows(DAY, rows)) == rows

    assert sink.count(DAY) == rows
    # a round trip per batch (PostgreSQL: per page of 1000 rows), never per row
    assert 3 <= len(inserts) <= rows // 500


@pytest.mark.parametrize("bad_at", [0, INSERT_BATCH_ROWS], ids=["first-row", "after-a-batch"])
def test_a_failing_load_leaves_the_old_partition_intact(sink: Sink, bad_at: int) -> None:
    sink.write(DAY, demo_rows(DAY, 10))
    sink.write(OTHER_DAY, demo_rows(OTHER_DAY, 3))
    before = sink.select("SELECT * FROM ads ORDER BY data_date, row_number")
    records = demo_rows(DAY, bad_at + 10)
    records[bad_at] = {**records[bad_at], "clicks": "many"}

    with pytest.raises(PermanentError):
        sink.write(DAY, records)

    assert sink.select("SELECT * FROM ads ORDER BY data_date, row_number") == before


def test_concurrent_first_loads_of_a_new_table_all_land(sink: Sink) -> None:
    days = [date(2024, 3, day) for day in range(1, 7)]
    errors: list[BaseException] = []

    def load(day: date) -> None:
        try:
            sink.write(day, [{**row, f"only_{day.day}": day.day} for row in demo_rows(day, 50)])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=load, args=(day,)) for day in days]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert [sink.count(day) for day in days] == [50] * len(days)
    assert {f"only_{day.day}" for day in days} < set(sink.column_types())


def test_sqlite_matches_record_keys_to_columns_case_insensitively(tmp_path: Path) -> None:
    destination = parse_destination({"type": "sqlite", "table": "ads"}).build()
    context = RunContext(team_dir=tmp_path, transfer_id=1, heartbeat=lambda: None)
    destination.replace_partition(DAY, [{"clicks": 1}], context)

    destination.replace_partition(OTHER_DAY, [{"Clicks": 2}], context)

    with sqlite3.connect(tmp_path / "warehouse.db") as connection:
        stored = connection.execute("SELECT clicks FROM ads ORDER BY data_date").fetchall()
    connection.close()
    assert stored == [(1,), (2,)]


def test_a_lazy_source_is_read_a_batch_at_a_time(sink: Sink) -> None:
    total = 3 * INSERT_BATCH_ROWS + 5
    pulled = 0
    pulled_at_inserts: list[int] = []

    def records() -> Iterator[Record]:
        nonlocal pulled
        for record in demo_rows(DAY, total):
            pulled += 1
            yield record

    with inserts_seen(lambda: pulled_at_inserts.append(pulled)):
        written = sink.destination.replace_partition(DAY, records(), sink.context)

    assert written == total == sink.count(DAY)
    assert pulled_at_inserts[0] == INSERT_BATCH_ROWS, "the first batch went in before the rest"
    assert sorted(set(pulled_at_inserts)) == [
        INSERT_BATCH_ROWS,
        2 * INSERT_BATCH_ROWS,
        3 * INSERT_BATCH_ROWS,
        total,
    ]


def test_a_key_first_seen_in_a_later_batch_gets_its_column(sink: Sink) -> None:
    records = demo_rows(DAY, INSERT_BATCH_ROWS + 2)
    records[-1] = {**records[-1], "late": 1.5}

    assert sink.write(DAY, iter(records)) == INSERT_BATCH_ROWS + 2

    assert sink.column_types()["late"] == "float"
    assert sink.select("SELECT count(*) FROM ads WHERE late = 1.5") == [(1,)]
    assert sink.select("SELECT count(*) FROM ads WHERE late IS NULL") == [(INSERT_BATCH_ROWS + 1,)]


def test_a_source_failing_after_a_batch_is_never_loaded_in_part(sink: Sink) -> None:
    sink.write(DAY, demo_rows(DAY, 10))  # the table is known: a failed load could retry

    def records() -> Iterator[Record]:
        yield from demo_rows(DAY, INSERT_BATCH_ROWS + 1)
        raise TransientError("sql source query: connection lost")

    with pytest.raises(TransientError):
        sink.write(DAY, records())

    assert sink.count(DAY) == 10, "the old partition stays whole"


def test_batches_of_large_records_are_fewer_records(sink: Sink) -> None:
    big = [{"n": n, "blob": "x" * 100_000} for n in range(200)]  # 20 MB in all

    with inserts_seen() as inserts:
        assert sink.write(DAY, big) == 200

    assert 3 <= len(inserts) <= 4, "about 8 MiB a batch, not all 20 MB in one"


def test_loads_wait_for_a_slot_of_the_workers_budget(sink: Sink) -> None:
    budget = LoadBudget(1)
    context = replace(sink.context, load_budget=budget)
    source_waits = threading.Event()
    go_on = threading.Event()

    def slow_source() -> Iterator[Record]:
        yield from demo_rows(DAY, INSERT_BATCH_ROWS)
        source_waits.set()
        go_on.wait(30)  # reading its second batch, with the budget's only slot
        yield from demo_rows(DAY, 3)

    results: dict[str, int] = {}
    slow = threading.Thread(
        target=lambda: results.update(
            slow=sink.destination.replace_partition(DAY, slow_source(), context)
        )
    )
    slow.start()
    assert source_waits.wait(30)
    other = threading.Thread(
        target=lambda: results.update(
            other=sink.destination.replace_partition(OTHER_DAY, demo_rows(OTHER_DAY, 5), context)
        )
    )
    other.start()
    other.join(1.0)
    assert "other" not in results, "the other load waits for the slot"

    go_on.set()
    slow.join(30)
    other.join(30)
    assert results == {"slow": INSERT_BATCH_ROWS + 3, "other": 5}
