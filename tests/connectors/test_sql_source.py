"""The `sql` source: rows of SQL queries with `:data_date` bound, one query detail per query."""

import sqlite3
from collections.abc import Iterator
from datetime import date
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest

from cli.devserver import free_port
from connectors.base import Extract, RunContext
from connectors.egress import EgressPolicy
from connectors.errors import ConnectorError, PermanentError, TransientError
from connectors.registry import InvalidConnectorSpec, parse_source
from connectors.sql import SqlSourceOptions
from connectors.sql_engine import engine_for
from tests.scratch_postgres import query, scratch_database

DAY = date(2024, 3, 1)
OTHER_DAY = date(2024, 3, 2)
ADS = [
    ("2024-03-01", "brand", 10, 1.5),
    ("2024-03-01", "search", 20, 2.25),
    ("2024-03-01", "video", 30, 0.5),
    ("2024-03-02", "brand", 11, 1.0),
]
# The test database listens on loopback, which the egress policy refuses by default.
LOCAL_SERVERS = EgressPolicy(allowed_networks=(ip_network("127.0.0.0/8"), ip_network("::1/128")))
BY_DAY = "SELECT campaign, clicks, cost FROM ads WHERE day = :data_date ORDER BY campaign"


@pytest.fixture(autouse=True)
def _in_the_team_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The runs of this module have the working directory as their team's directory."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def source_db(tmp_path: Path) -> Path:
    """A SQLite file (default rollback journal) with a few ad rows per day."""
    path = tmp_path / "source.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE ads (day TEXT, campaign TEXT, clicks INTEGER, cost REAL)")
        connection.executemany("INSERT INTO ads VALUES (?, ?, ?, ?)", ADS)
        connection.execute("CREATE TABLE budgets (day TEXT, budget INTEGER)")
        connection.execute("INSERT INTO budgets VALUES ('2024-03-01', 500)")
    connection.close()
    return path


def url_of(path: Path, **query: str) -> str:
    """A team's URL of `path`: its name in the team's directory."""
    params = "&".join(f"{key}={value}" for key, value in query.items())
    return f"sqlite:///{path.name}" + (f"?{params}" if params else "")


def context(tmp_path: Path) -> RunContext:
    return RunContext(
        team_dir=tmp_path, transfer_id=1, heartbeat=lambda: None, egress=LOCAL_SERVERS
    )


def extract(url: str, data_date: date = DAY, **options: Any) -> Extract:
    """What the source extracts, read to the end as a destination reads it."""
    source = parse_source({"type": "sql", "url": url, **options}).build()
    found = source.extract(data_date, context(Path(".")))
    records = list(found.records)  # the query details are complete once these are read
    return Extract(records=records, query_details=found.query_details)


def failure(url: str, data_date: date = DAY, **options: Any) -> ConnectorError:
    with pytest.raises(ConnectorError) as raised:
        extract(url, data_date, **options)
    return raised.value


def test_a_query_returns_its_dates_rows_as_dicts(source_db: Path) -> None:
    result = extract(url_of(source_db), query=BY_DAY)

    assert result.records == [
        {"campaign": "brand", "clicks": 10, "cost": 1.5},
        {"campaign": "search", "clicks": 20, "cost": 2.25},
        {"campaign": "video", "clicks": 30, "cost": 0.5},
    ]


def test_the_data_date_bind_selects_the_date(source_db: Path) -> None:
    result = extract(url_of(source_db), OTHER_DAY, query=BY_DAY)

    assert result.records == [{"campaign": "brand", "clicks": 11, "cost": 1.0}]


def test_a_date_without_rows_gives_none(source_db: Path) -> None:
    result = extract(url_of(source_db), date(2023, 1, 1), query=BY_DAY)

    assert result.records == []
    assert [(d.status, d.rows) for d in result.query_details] == [("SUCCESS", 0)]


def test_one_query_is_one_query_detail(source_db: Path) -> None:
    result = extract(url_of(source_db), query=BY_DAY)

    [detail] = result.query_details
    assert detail.status == "SUCCESS"
    assert detail.rows == 3
    assert detail.duration >= 0
    assert detail.error_description is None


def test_queries_are_loaded_together_with_one_detail_each(source_db: Path) -> None:
    result = extract(
        url_of(source_db),
        queries=[BY_DAY, "SELECT budget FROM budgets WHERE day = :data_date"],
    )

    assert len(list(result.records)) == 4
    assert list(result.records)[-1] == {"budget": 500}
    assert [(d.status, d.rows) for d in result.query_details] == [("SUCCESS", 3), ("SUCCESS", 1)]


def test_the_bind_may_appear_more_than_once(source_db: Path) -> None:
    result = extract(
        url_of(source_db),
        query="SELECT count(*) AS n FROM ads WHERE day = :data_date OR day > :data_date",
    )

    assert result.records == [{"n": 4}]


def test_invalid_sql_fails_permanently_with_the_failed_query_detail(source_db: Path) -> None:
    error = failure(
        url_of(source_db),
        queries=[BY_DAY, "SELEC campaign FROM ads WHERE day = :data_date"],
    )

    assert isinstance(error, PermanentError)
    assert "query 2 of 2" in str(error)
    assert "syntax error" in str(error)
    assert error.query_details is not None
    first, second = error.query_details
    assert (first.status, first.rows, first.error_description) == ("SUCCESS", 3, None)
    assert (second.status, second.rows) == ("FAILED", 0)
    assert second.error_description == str(error)


def test_a_missing_table_fails_permanently_and_names_it(source_db: Path) -> None:
    error = failure(url_of(source_db), query="SELECT * FROM nowhere WHERE day = :data_date")

    assert isinstance(error, PermanentError)
    assert "no such table: nowhere" in str(error)
    assert [d.status for d in error.query_details or []] == ["FAILED"]


def test_queries_after_a_failing_one_do_not_run(source_db: Path) -> None:
    error = failure(
        url_of(source_db),
        queries=["SELECT * FROM nowhere WHERE day = :data_date", BY_DAY],
    )

    assert [d.status for d in error.query_details or []] == ["FAILED"]


def test_a_sqlite_source_is_opened_read_only(source_db: Path) -> None:
    error = failure(url_of(source_db), query="UPDATE ads SET clicks = 0 WHERE day = :data_date")

    assert isinstance(error, PermanentError)
    assert "may only read" in str(error)
    with sqlite3.connect(source_db) as connection:
        clicks = connection.execute("SELECT sum(clicks) FROM ads").fetchone()
    connection.close()
    assert clicks == (71,)


def test_a_statement_that_is_not_a_query_fails_and_says_why(source_db: Path) -> None:
    error = failure(url_of(source_db), query="CREATE TEMP TABLE t AS SELECT :data_date AS d")

    assert isinstance(error, PermanentError)
    assert "may only read" in str(error)


def test_a_missing_sqlite_file_fails_permanently_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"

    error = failure(url_of(missing), query=BY_DAY)

    assert isinstance(error, PermanentError)
    assert "unable to open database file" in str(error)
    assert not missing.exists()


def test_result_columns_with_the_same_name_are_rejected(source_db: Path) -> None:
    error = failure(
        url_of(source_db), query="SELECT clicks, cost AS clicks FROM ads WHERE day = :data_date"
    )

    assert isinstance(error, PermanentError)
    assert "clicks" in str(error)


@pytest.fixture
def locked(source_db: Path) -> Iterator[Path]:
    """Another process-like connection holding the file's exclusive lock."""
    holder = sqlite3.connect(source_db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield source_db
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_locked_database_fails_transiently(locked: Path) -> None:
    error = failure(url_of(locked, timeout="0.2"), query=BY_DAY)

    assert isinstance(error, TransientError)
    assert "database is locked" in str(error)
    assert [d.status for d in error.query_details or []] == ["FAILED"]


def test_the_same_source_works_once_the_lock_is_released(source_db: Path) -> None:
    holder = sqlite3.connect(source_db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    with pytest.raises(TransientError):
        extract(url_of(source_db, timeout="0.2"), query=BY_DAY)
    holder.execute("ROLLBACK")
    holder.close()

    assert len(list(extract(url_of(source_db, timeout="0.2"), query=BY_DAY).records)) == 3


def test_a_refused_connection_fails_transiently_without_the_password() -> None:
    url = f"postgresql://reader:hunter2-secret@127.0.0.1:{free_port()}/warehouse"

    error = failure(url, query="SELECT :data_date AS d")

    assert isinstance(error, TransientError)
    assert "connect" in str(error)
    assert "hunter2-secret" not in str(error)
    assert [d.status for d in error.query_details or []] == ["FAILED"]
    assert "hunter2-secret" not in str(error.query_details)


def test_a_sqlite_query_cannot_attach_another_file(source_db: Path, tmp_path: Path) -> None:
    other = tmp_path.parent / "service.db"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS tokens (hash TEXT)")
    connection.close()

    error = failure(url_of(source_db), query=f"ATTACH DATABASE '{other}' || :data_date AS s")

    assert isinstance(error, PermanentError)
    assert "may only read its own file" in str(error)
    assert str(other) not in str(error.query_details)


@pytest.mark.parametrize(
    "query",
    [
        "VACUUM INTO :data_date",  # would copy the file to a path of the worker's choosing
        "ATTACH DATABASE :data_date AS other",
        "SELECT load_extension(:data_date)",
        "SELECT * FROM pragma_database_list WHERE :data_date IS NOT NULL",
        "SELECT * FROM pragma_table_info(:data_date)",
        "INSERT INTO ads (day) VALUES (:data_date) RETURNING day",
        "CREATE TEMP TABLE t AS SELECT :data_date AS d",
    ],
)
def test_a_sqlite_query_may_only_read(source_db: Path, tmp_path: Path, query: str) -> None:
    error = failure(url_of(source_db), query=query)

    assert isinstance(error, PermanentError)
    assert "may only read" in str(error)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source.db"]


def test_the_authorizer_does_not_stay_on_the_pooled_connection(source_db: Path) -> None:
    with pytest.raises(PermanentError):
        extract(url_of(source_db), query="ATTACH DATABASE :data_date AS other")

    assert len(list(extract(url_of(source_db), query=BY_DAY).records)) == 3


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////etc/passwd",
        "sqlite:///../backfills.db",
        "sqlite:///teams/../../backfills.db",
        "sqlite:///x.db?uri=true",
        "sqlite:///x.db?mode=rwc",
    ],
)
def test_a_sqlite_url_outside_the_team_dir_is_rejected_when_saved(url: str) -> None:
    message = problem(url=url, query=BY_DAY)

    assert "source.url" in message
    assert "sqlite:" in message


def test_a_link_out_of_the_team_dir_is_refused_at_run_time(source_db: Path, tmp_path: Path) -> None:
    (tmp_path / "escape.db").symlink_to(source_db.parent.parent / "elsewhere.db")

    error = failure("sqlite:///escape.db", query=BY_DAY)

    assert isinstance(error, PermanentError)
    assert "outside the team's directory" in str(error)
    assert str(tmp_path.parent) not in str(error)


def test_a_secret_resolving_to_an_absolute_path_is_refused_at_run_time(source_db: Path) -> None:
    options = parse_source({"type": "sql", "url": "${URL}", "query": BY_DAY})
    assert isinstance(options, SqlSourceOptions)
    # what the worker runs once ${URL} resolves
    source = options.model_copy(update={"url": f"sqlite:///{source_db}"}).build()

    with pytest.raises(PermanentError) as raised:
        source.extract(DAY, context(Path(".")))

    assert "team's directory" in str(raised.value)


def test_a_plain_postgresql_url_uses_the_psycopg_driver() -> None:
    engine = engine_for(f"postgresql://reader@127.0.0.1:{free_port()}/warehouse", LOCAL_SERVERS)

    assert engine.dialect.driver == "psycopg"


# --- options, validated when the transfer is created ---


def problem(**spec: Any) -> str:
    with pytest.raises(InvalidConnectorSpec) as raised:
        parse_source({"type": "sql", **spec})
    return str(raised.value)


def test_a_query_without_the_data_date_bind_is_rejected() -> None:
    message = problem(url="sqlite:///x.db", query="SELECT * FROM ads")

    assert "source.query" in message
    assert ":data_date" in message


def test_each_of_the_queries_needs_the_bind() -> None:
    message = problem(url="sqlite:///x.db", queries=[BY_DAY, "SELECT 1"])

    assert "source.queries.1" in message
    assert ":data_date" in message


def test_a_postgresql_cast_on_the_bind_is_explained() -> None:
    message = problem(url="sqlite:///x.db", query="SELECT :data_date::date")

    assert "CAST(:data_date AS DATE)" in message


def test_other_bind_parameters_are_rejected() -> None:
    message = problem(url="sqlite:///x.db", query="SELECT :data_date, :other")

    assert ":other" in message


@pytest.mark.parametrize(
    "spec",
    [
        {"url": "sqlite:///x.db"},
        {"url": "sqlite:///x.db", "query": BY_DAY, "queries": [BY_DAY]},
    ],
    ids=["neither", "both"],
)
def test_exactly_one_of_query_or_queries(spec: dict[str, Any]) -> None:
    message = problem(**spec)

    assert "query" in message
    assert "queries" in message


def test_queries_must_not_be_empty() -> None:
    assert "source.queries" in problem(url="sqlite:///x.db", queries=[])


@pytest.mark.parametrize("url", ["not a url", "nosuchdialect://host/db", ""])
def test_an_unusable_url_is_rejected(url: str) -> None:
    assert "source.url" in problem(url=url, query=BY_DAY)


def test_a_url_with_a_secret_reference_is_accepted_before_resolution() -> None:
    parse_source({"type": "sql", "url": "${WAREHOUSE_URL}", "query": BY_DAY})
    parse_source({"type": "sql", "url": "postgresql://u:${PW}@db/w", "query": BY_DAY})


def test_unknown_options_are_rejected() -> None:
    assert "source.table" in problem(url="sqlite:///x.db", query=BY_DAY, table="ads")


def test_the_stored_form_parses_back_to_the_same_options() -> None:
    """The API stores `model_dump(mode="json")`; the worker parses that again."""
    options = parse_source({"type": "sql", "url": "sqlite:///x.db", "queries": [BY_DAY]})
    stored = options.model_dump(mode="json")

    again = parse_source(stored)

    assert isinstance(again, SqlSourceOptions)
    assert again == options
    assert again.all_queries == [BY_DAY]


# --- PostgreSQL as the source ---


@pytest.fixture(scope="module")
def postgres_source() -> Iterator[str]:
    with scratch_database("backfills_sql_source") as url:
        query(
            url,
            "CREATE TABLE spend (day date, campaign text, amount numeric(12, 2), "
            "seen timestamptz, tags jsonb)",
        )
        query(
            url,
            "INSERT INTO spend VALUES "
            "('2024-03-01', 'brand', 12.34, '2024-03-01T10:00:00Z', '{\"a\": 1}'), "
            "('2024-03-02', 'video', 1.5, '2024-03-02T11:30:00Z', NULL)",
        )
        yield url


def test_postgresql_values_become_storable_ones(postgres_source: str) -> None:
    result = extract(
        postgres_source,
        query="SELECT day, campaign, amount, seen AT TIME ZONE 'UTC' AS seen, tags "
        "FROM spend WHERE day = :data_date",
    )

    assert result.records == [
        {
            "day": "2024-03-01",
            "campaign": "brand",
            "amount": 12.34,
            "seen": "2024-03-01T10:00:00",
            "tags": '{"a": 1}',
        }
    ]


def test_a_postgresql_source_cannot_write(postgres_source: str) -> None:
    error = failure(
        postgres_source, query="DELETE FROM spend WHERE day = :data_date RETURNING campaign"
    )

    assert isinstance(error, PermanentError)
    assert "read-only" in str(error)
    assert query(postgres_source, "SELECT count(*) FROM spend") == [(2,)]


def test_a_postgresql_sql_error_names_the_cause(postgres_source: str) -> None:
    error = failure(postgres_source, query="SELECT 1 / 0 AS x WHERE :data_date IS NOT NULL")

    assert isinstance(error, PermanentError)
    assert "division by zero" in str(error)


def test_a_postgresql_source_streams_its_rows_through_a_server_side_cursor(
    postgres_source: str,
) -> None:
    options = {
        "type": "sql",
        "url": postgres_source,
        "query": "SELECT n FROM generate_series(1, 5000) AS n WHERE :data_date IS NOT NULL",
    }
    found = parse_source(options).build().extract(DAY, context(Path(".")))
    records = iter(found.records)

    assert next(records) == {"n": 1}
    others = query(
        postgres_source,
        "SELECT query FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    assert any(str(text).startswith("FETCH FORWARD") for (text,) in others), others
    assert found.query_details == [], "the query is not done until its rows are read"
    assert len(list(records)) == 4999
    assert [detail.rows for detail in found.query_details] == [5000]


def test_a_read_stopped_early_closes_the_source(source_db: Path) -> None:
    found = parse_source({"type": "sql", "url": url_of(source_db), "query": BY_DAY}).build()
    extract = found.extract(DAY, context(Path(".")))
    assert next(iter(extract.records))["campaign"] == "brand"  # a read transaction is open

    extract.close()

    with sqlite3.connect(source_db, timeout=0.5) as writer:  # no reader holds the file now
        writer.execute("INSERT INTO ads VALUES ('2024-03-03', 'new', 1, 1.0)")
    writer.close()
