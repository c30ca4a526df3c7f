"""The `postgresql` destination on the machine's PostgreSQL (skipped when it is unreachable):
a table in a schema, created when missing, one copy per date."""

import uuid
from collections.abc import Iterator
from datetime import date
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest

from cli.devserver import free_port
from connectors.base import Destination, RunContext
from connectors.demo import demo_rows
from connectors.egress import EgressPolicy
from connectors.errors import PermanentError, TransientError
from connectors.postgresql import PostgresqlDestinationOptions
from connectors.registry import InvalidConnectorSpec, parse_destination
from connectors.sql_table import INSERT_BATCH_ROWS
from tests.scratch_postgres import query, scratch_database

DAY = date(2024, 3, 1)
OTHER_DAY = date(2024, 3, 2)
# The test database listens on loopback, which the egress policy refuses by default.
LOCAL_SERVERS = EgressPolicy(allowed_networks=(ip_network("127.0.0.0/8"), ip_network("::1/128")))


@pytest.fixture(scope="module")
def warehouse() -> Iterator[str]:
    with scratch_database("backfills_pg_destination") as url:
        yield url


@pytest.fixture
def schema(warehouse: str) -> Iterator[str]:
    """A schema name of this test only; dropped afterwards if a test created it."""
    name = f"scratch_{uuid.uuid4().hex[:8]}"
    yield name
    query(warehouse, f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def destination(url: str, **options: Any) -> Destination:
    return parse_destination({"type": "postgresql", "url": url, **options}).build()


def context(beats: list[None] | None = None) -> RunContext:
    def heartbeat() -> None:
        if beats is not None:
            beats.append(None)

    return RunContext(team_dir=Path("."), transfer_id=1, heartbeat=heartbeat, egress=LOCAL_SERVERS)


def count(url: str, table: str, data_date: date | None = None) -> int:
    where = " WHERE data_date = %s" if data_date else ""
    [(rows,)] = query(
        url, f"SELECT count(*) FROM {table}{where}", (data_date,) if data_date else ()
    )
    return int(str(rows))


def test_the_schema_and_table_are_created_when_missing(warehouse: str, schema: str) -> None:
    sink = destination(warehouse, table="ads", schema=schema)

    assert sink.replace_partition(DAY, demo_rows(DAY, 5), context()) == 5

    assert query(
        warehouse,
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = 'ads' ORDER BY ordinal_position",
        (schema,),
    ) == [
        ("data_date", "date"),
        ("row_number", "bigint"),
        ("campaign", "text"),
        ("impressions", "bigint"),
        ("clicks", "bigint"),
        ("cost", "double precision"),
    ]
    assert count(warehouse, f"{schema}.ads", DAY) == 5


def test_writing_a_date_twice_leaves_one_copy(warehouse: str, schema: str) -> None:
    sink = destination(warehouse, table="ads", schema=schema)
    records = demo_rows(DAY, 10)

    sink.replace_partition(DAY, records, context())
    first = query(warehouse, f"SELECT * FROM {schema}.ads ORDER BY row_number")
    sink.replace_partition(DAY, records, context())

    assert query(warehouse, f"SELECT * FROM {schema}.ads ORDER BY row_number") == first
    assert len(first) == 10


def test_rewriting_a_date_replaces_only_its_rows(warehouse: str, schema: str) -> None:
    sink = destination(warehouse, table="ads", schema=schema)
    sink.replace_partition(DAY, demo_rows(DAY, 10), context())
    sink.replace_partition(OTHER_DAY, demo_rows(OTHER_DAY, 4), context())

    sink.replace_partition(DAY, demo_rows(DAY, 3), context())

    assert count(warehouse, f"{schema}.ads", DAY) == 3
    assert count(warehouse, f"{schema}.ads", OTHER_DAY) == 4


def test_rows_are_stored_as_given(warehouse: str, schema: str) -> None:
    sink = destination(warehouse, table="ads", schema=schema)
    records = demo_rows(DAY, 4)

    sink.replace_partition(DAY, records, context())

    stored = query(
        warehouse,
        f"SELECT row_number, campaign, impressions, clicks, cost FROM {schema}.ads "
        "ORDER BY row_number",
    )
    assert [dict(zip(records[0], row, strict=True)) for row in stored] == records


def test_two_tables_share_a_created_schema(warehouse: str, schema: str) -> None:
    destination(warehouse, table="ads", schema=schema).replace_partition(
        DAY, demo_rows(DAY, 2), context()
    )

    destination(warehouse, table="costs", schema=schema).replace_partition(
        DAY, demo_rows(DAY, 3), context()
    )

    assert count(warehouse, f"{schema}.ads") == 2
    assert count(warehouse, f"{schema}.costs") == 3


def test_without_a_schema_the_table_is_in_public(warehouse: str) -> None:
    table = f"ads_{uuid.uuid4().hex[:8]}"
    try:
        destination(warehouse, table=table).replace_partition(DAY, demo_rows(DAY, 2), context())

        assert count(warehouse, f"public.{table}") == 2
    finally:
        query(warehouse, f"DROP TABLE IF EXISTS public.{table}")


def test_a_new_record_key_adds_a_column(warehouse: str, schema: str) -> None:
    sink = destination(warehouse, table="ads", schema=schema)
    sink.replace_partition(DAY, demo_rows(DAY, 2), context())

    sink.replace_partition(
        OTHER_DAY, [{**row, "conversions": 4} for row in demo_rows(OTHER_DAY, 2)], context()
    )

    assert query(
        warehouse,
        f"SELECT data_date, conversions FROM {schema}.ads ORDER BY data_date, row_number",
    ) == [(DAY, None), (DAY, None), (OTHER_DAY, 4), (OTHER_DAY, 4)]


def test_a_type_conflict_fails_with_a_clear_message(warehouse: str, schema: str) -> None:
    sink = destination(warehouse, table="ads", schema=schema)
    sink.replace_partition(DAY, demo_rows(DAY, 2), context())
    records = demo_rows(OTHER_DAY, 2)
    records[1] = {**records[1], "clicks": "n/a"}

    with pytest.raises(PermanentError) as raised:
        sink.replace_partition(OTHER_DAY, records, context())

    assert str(raised.value) == (
        f"destination table {schema}.ads: column clicks is BIGINT but a record holds a text "
        "value; the column keeps its type, so make the source produce integer values or load "
        "into a new table"
    )
    assert count(warehouse, f"{schema}.ads", OTHER_DAY) == 0


def test_a_large_load_heartbeats_between_batches(warehouse: str, schema: str) -> None:
    beats: list[None] = []
    rows = 2 * INSERT_BATCH_ROWS + 1

    destination(warehouse, table="ads", schema=schema).replace_partition(
        DAY, demo_rows(DAY, rows), context(beats)
    )

    assert len(beats) >= 3
    assert count(warehouse, f"{schema}.ads", DAY) == rows


def test_a_refused_connection_is_transient_and_hides_the_password() -> None:
    url = f"postgresql://loader:s3cret-pw@127.0.0.1:{free_port()}/warehouse"

    with pytest.raises(TransientError) as raised:
        destination(url, table="ads").replace_partition(DAY, demo_rows(DAY, 1), context())

    assert "ads" in str(raised.value)
    assert "s3cret-pw" not in str(raised.value)


def test_a_missing_database_is_permanent(warehouse: str) -> None:
    url = warehouse.rsplit("/", 1)[0] + f"/no_such_db_{uuid.uuid4().hex[:6]}"

    with pytest.raises(PermanentError) as raised:
        destination(url, table="ads").replace_partition(DAY, demo_rows(DAY, 1), context())

    assert "does not exist" in str(raised.value)


# --- options ---


def problem(**spec: Any) -> str:
    with pytest.raises(InvalidConnectorSpec) as raised:
        parse_destination({"type": "postgresql", **spec})
    return str(raised.value)


@pytest.mark.parametrize("url", ["sqlite:///w.db", "mysql://u@h/db", "not a url", ""])
def test_the_url_must_be_postgresql(url: str) -> None:
    assert "destination.url" in problem(url=url, table="ads")


def test_postgres_and_driver_urls_are_accepted() -> None:
    for url in ["postgres://u@h/db", "postgresql+psycopg://u@h/db", "postgresql://u:${PW}@h/db"]:
        parse_destination({"type": "postgresql", "url": url, "table": "ads"})


def test_a_url_held_entirely_in_a_reference_is_accepted() -> None:
    parse_destination({"type": "postgresql", "url": "${WAREHOUSE_URL}", "table": "ads"})


def test_the_table_is_required() -> None:
    assert "destination.table" in problem(url="postgresql://u@h/db")


@pytest.mark.parametrize("name", ["1abc", "bad-name", "x; DROP TABLE ads", "", "a" * 64])
@pytest.mark.parametrize("option", ["table", "schema"])
def test_unsafe_identifiers_are_rejected(option: str, name: str) -> None:
    spec = {"url": "postgresql://u@h/db", "table": "ads", option: name}

    assert f"destination.{option}" in problem(**spec)


def test_the_stored_form_keeps_the_schema_option_name() -> None:
    """The API stores `model_dump(mode="json")`; the worker parses that again."""
    options = parse_destination(
        {"type": "postgresql", "url": "postgresql://u@h/db", "table": "ads", "schema": "mart"}
    )
    stored = options.model_dump(mode="json")

    assert stored == {
        "type": "postgresql",
        "url": "postgresql://u@h/db",
        "table": "ads",
        "schema": "mart",
    }
    again = parse_destination(stored)
    assert isinstance(again, PostgresqlDestinationOptions)
    assert again.db_schema == "mart"
