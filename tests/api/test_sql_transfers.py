"""Backfills of transfers with a `sql` source and a `postgresql` or `sqlite` destination, end to
end: the API, the worker process, a SQLite source file, and scratch PostgreSQL databases."""

import json
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing
from datetime import date
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from connectors.warehouse import team_dir
from tests.scratch_postgres import query, scratch_database
from tests.support import Stack, Tenant, all_runs, warehouse_of

DATES = ("2024-03-01", "2024-03-02", "2024-03-03")
TIMEOUT = 120.0
SECRET_NAME = "BACKFILLS_TEST_PG_PASSWORD"  # set in the stack's environment (tests/conftest.py)
SECRET_VALUE = "pg-secret-4b1d"
BY_DAY = "SELECT campaign, clicks, cost FROM ads WHERE day = :data_date ORDER BY campaign, clicks"


def expected_rows(data_date: str) -> list[tuple[str, int, float]]:
    """1 row on the 1st, 2 on the 2nd, 3 on the 3rd: (campaign, clicks, cost)."""
    day = int(data_date[-2:])
    return [(f"c{n}", 10 * n + day, n * 0.5 + day) for n in range(day)]


def all_source_rows() -> list[tuple[str, str, int, float]]:
    rows = [(d, *row) for d in (*DATES, "2024-03-04") for row in expected_rows(d)]
    return [(d, c, clicks, cost) for d, c, clicks, cost in rows]


@pytest.fixture
def sqlite_source(stack: Stack, tenant: Tenant) -> str:
    """A SQLite file of the tenant's directory with ad rows for DATES and one more day outside
    them; its URL as the team writes it."""
    directory = team_dir(stack.data_dir, tenant.team_id)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "source.db"
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.execute("CREATE TABLE ads (day TEXT, campaign TEXT, clicks INTEGER, cost REAL)")
        connection.executemany("INSERT INTO ads VALUES (?, ?, ?, ?)", all_source_rows())
        connection.execute("CREATE TABLE budgets (day TEXT, budget INTEGER)")
        connection.executemany(
            "INSERT INTO budgets VALUES (?, ?)", [(d, 100 * int(d[-2:])) for d in DATES]
        )
    return "sqlite:///source.db"


@pytest.fixture(scope="module")
def warehouse() -> Iterator[str]:
    """A scratch PostgreSQL database (plain postgresql:// URL); skips if unreachable."""
    with scratch_database("backfills_sql_e2e") as url:
        yield url


@pytest.fixture
def schema(warehouse: str) -> Iterator[str]:
    name = f"e2e_{uuid.uuid4().hex[:8]}"
    yield name
    query(warehouse, f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def transfer_body(source: dict[str, Any], destination: dict[str, Any]) -> dict[str, Any]:
    return {
        "display_name": "sql transfer",
        "source": source,
        "destination": destination,
        "max_concurrent_runs": 3,
    }


def create_transfer(tenant: Tenant, source: dict[str, Any], destination: dict[str, Any]) -> int:
    response = tenant.http.post(
        f"/teams/{tenant.team_id}/transfers", json=transfer_body(source, destination)
    )
    assert response.status_code == 200, response.text
    transfer_id: int = response.json()["data"]["transfer_id"]
    return transfer_id


def backfill_to_end(tenant: Tenant, transfer_id: int) -> dict[str, Any]:
    created = tenant.create_backfill(transfer_id, DATES[0], DATES[-1])
    return tenant.wait_until_status(
        created["transfer_backfill_id"], "COMPLETED", "FAILED", timeout=TIMEOUT
    )


def run_detail(tenant: Tenant, run_id: int) -> dict[str, Any]:
    response = tenant.http.get(f"/teams/{tenant.team_id}/transfer_runs/{run_id}")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def postgres_rows(warehouse: str, table: str) -> dict[str, list[tuple[Any, ...]]]:
    """data_date -> its (campaign, clicks, cost) rows, sorted."""
    stored = query(
        warehouse,
        f"SELECT data_date, campaign, clicks, cost FROM {table} ORDER BY data_date, campaign",
    )
    by_date: dict[str, list[tuple[Any, ...]]] = {}
    for data_date, *row in stored:
        assert isinstance(data_date, date)
        by_date.setdefault(data_date.isoformat(), []).append(tuple(row))
    return by_date


def sql_source(url: str, **options: Any) -> dict[str, Any]:
    return {"type": "sql", "url": url, **({"query": BY_DAY} | options)}


def postgresql_destination(url: str, schema: str, table: str = "ads") -> dict[str, Any]:
    return {"type": "postgresql", "url": url, "table": table, "schema": schema}


def test_a_sqlite_source_lands_exactly_each_dates_rows_in_postgresql(
    tenant: Tenant, sqlite_source: str, warehouse: str, schema: str
) -> None:
    transfer_id = create_transfer(
        tenant, sql_source(sqlite_source), postgresql_destination(warehouse, schema)
    )

    done = backfill_to_end(tenant, transfer_id)

    assert done["status"] == "COMPLETED", done["error_report"]
    assert done["transfer_runs_completed"] == 3
    assert postgres_rows(warehouse, f"{schema}.ads") == {d: expected_rows(d) for d in DATES}
    assert {r["data_date"]: r["total_rows"] for r in tenant.runs(transfer_id)} == {
        "2024-03-01": 1,
        "2024-03-02": 2,
        "2024-03-03": 3,
    }


def test_each_of_several_queries_is_one_query_detail_and_their_rows_land_together(
    tenant: Tenant, sqlite_source: str, warehouse: str, schema: str
) -> None:
    budgets = "SELECT budget FROM budgets WHERE day = :data_date"
    source = {"type": "sql", "url": sqlite_source, "queries": [BY_DAY, budgets]}
    transfer_id = create_transfer(tenant, source, postgresql_destination(warehouse, schema))

    done = backfill_to_end(tenant, transfer_id)

    assert done["status"] == "COMPLETED", done["error_report"]
    [second] = [r for r in tenant.runs(transfer_id) if r["data_date"] == "2024-03-02"]
    assert second["total_rows"] == 3
    detail = run_detail(tenant, second["id"])
    assert [(q["status"], q["rows"]) for q in detail["query_details"]] == [
        ("SUCCESS", 2),
        ("SUCCESS", 1),
    ]
    assert detail["query_amount"] == 2
    assert detail["failed_query_amount"] == 0
    assert query(
        warehouse,
        f"SELECT campaign, budget FROM {schema}.ads WHERE data_date = '2024-03-02' "
        "ORDER BY campaign NULLS LAST",
    ) == [("c0", None), ("c1", None), (None, 200)]


def test_a_postgresql_source_lands_exactly_each_dates_rows_in_sqlite(
    tenant: Tenant, stack: Stack, warehouse: str, schema: str
) -> None:
    query(warehouse, f'CREATE SCHEMA "{schema}"')
    query(
        warehouse,
        f"CREATE TABLE {schema}.spend (day date, campaign text, clicks int, cost numeric(8, 2))",
    )
    for day, campaign, clicks, cost in all_source_rows():
        query(
            warehouse,
            f"INSERT INTO {schema}.spend VALUES (%s, %s, %s, %s)",
            (day, campaign, clicks, cost),
        )
    path = f"sql-e2e-{uuid.uuid4().hex[:8]}.db"
    source = sql_source(
        warehouse,
        query=f"SELECT campaign, clicks, cost FROM {schema}.spend WHERE day = :data_date",
    )
    transfer_id = create_transfer(tenant, source, {"type": "sqlite", "path": path, "table": "ads"})

    done = backfill_to_end(tenant, transfer_id)

    assert done["status"] == "COMPLETED", done["error_report"]
    with closing(sqlite3.connect(warehouse_of(stack, transfer_id, path))) as connection:
        stored = connection.execute(
            "SELECT data_date, campaign, clicks, cost FROM ads ORDER BY data_date, campaign"
        ).fetchall()
    assert stored == [(d, *row) for d in DATES for row in expected_rows(d)]


def test_a_second_backfill_over_the_same_dates_leaves_one_copy(
    tenant: Tenant, sqlite_source: str, warehouse: str, schema: str
) -> None:
    transfer_id = create_transfer(
        tenant, sql_source(sqlite_source), postgresql_destination(warehouse, schema)
    )
    first = backfill_to_end(tenant, transfer_id)
    assert first["status"] == "COMPLETED", first["error_report"]

    second = backfill_to_end(tenant, transfer_id)

    assert second["status"] == "COMPLETED", second["error_report"]
    assert second["transfer_backfill_id"] != first["transfer_backfill_id"]
    assert postgres_rows(warehouse, f"{schema}.ads") == {d: expected_rows(d) for d in DATES}


def test_a_new_source_column_is_added_to_the_existing_table(
    tenant: Tenant, sqlite_source: str, warehouse: str, schema: str
) -> None:
    destination = postgresql_destination(warehouse, schema)
    first = create_transfer(tenant, sql_source(sqlite_source), destination)
    assert backfill_to_end(tenant, first)["status"] == "COMPLETED"
    wider = BY_DAY.replace("cost FROM", "cost, clicks * 2 AS doubled FROM")
    second = create_transfer(tenant, sql_source(sqlite_source, query=wider), destination)

    done = backfill_to_end(tenant, second)

    assert done["status"] == "COMPLETED", done["error_report"]
    assert query(
        warehouse,
        f"SELECT data_date, clicks, doubled FROM {schema}.ads ORDER BY data_date, clicks",
    ) == [(date.fromisoformat(d), c, 2 * c) for d in DATES for _, c, _ in expected_rows(d)]


def runs_in_db(stack: Stack, tenant: Tenant, transfer_id: int) -> list[Any]:
    return all_runs(stack.db, tenant.team_id, transfer_id)


def test_a_source_sql_error_fails_every_run_at_once_with_a_clear_error_report(
    tenant: Tenant, stack: Stack, sqlite_source: str, warehouse: str, schema: str
) -> None:
    source = sql_source(sqlite_source, query="SELECT * FROM no_such_table WHERE d = :data_date")
    transfer_id = create_transfer(tenant, source, postgresql_destination(warehouse, schema))

    done = backfill_to_end(tenant, transfer_id)

    assert done["status"] == "FAILED"
    assert done["transfer_runs_failed"] == 3
    assert sorted(e["transfer_run_date"] for e in done["error_report"]) == list(DATES)
    for entry in done["error_report"]:
        assert "sql source query" in entry["error"]
        assert "no such table: no_such_table" in entry["error"]
    assert [run.attempts for run in runs_in_db(stack, tenant, transfer_id)] == [1, 1, 1]
    [run] = [r for r in tenant.runs(transfer_id) if r["data_date"] == DATES[0]]
    assert run["status"] == "FAILED"
    assert "no such table: no_such_table" in run["message"]
    detail = run_detail(tenant, run["id"])
    [failed] = detail["query_details"]
    assert failed["status"] == "FAILED"
    assert "no such table: no_such_table" in failed["error_description"]
    assert detail["failed_query_amount"] == 1


def test_a_type_conflict_fails_the_run_naming_the_column(
    tenant: Tenant, sqlite_source: str, warehouse: str, schema: str
) -> None:
    destination = postgresql_destination(warehouse, schema)
    numbers = create_transfer(tenant, sql_source(sqlite_source), destination)
    assert backfill_to_end(tenant, numbers)["status"] == "COMPLETED"
    as_text = BY_DAY.replace("clicks, cost", "'many' AS clicks, cost")
    texts = create_transfer(tenant, sql_source(sqlite_source, query=as_text), destination)

    done = backfill_to_end(tenant, texts)

    assert done["status"] == "FAILED"
    for entry in done["error_report"]:
        assert "column clicks is BIGINT but a record holds a text value" in entry["error"]
    assert postgres_rows(warehouse, f"{schema}.ads") == {d: expected_rows(d) for d in DATES}


def test_creating_a_sql_transfer_without_the_bind_answers_422_and_stores_nothing(
    tenant: Tenant, sqlite_source: str
) -> None:
    before = tenant.http.get(f"/teams/{tenant.team_id}/transfers").json()["data"]

    response = tenant.http.post(
        f"/teams/{tenant.team_id}/transfers",
        json=transfer_body(
            sql_source(sqlite_source, query="SELECT * FROM ads"),
            {"type": "postgresql", "url": "mysql://u@h/db", "table": "ads"},
        ),
    )

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "UNPROCESSABLE_ENTITY"
    assert "source.query" in error["message"]
    assert ":data_date" in error["message"]
    assert "destination.url" in error["message"]
    assert tenant.http.get(f"/teams/{tenant.team_id}/transfers").json()["data"] == before


# --- secrets ---


def with_password(url: str, password: str) -> str:
    parsed = make_url(url)
    host = f"{parsed.host}:{parsed.port or 5432}"
    return f"postgresql://{parsed.username}:{password}@{host}/{parsed.database}"


def api_texts(tenant: Tenant, transfer_id: int, backfill_id: int) -> str:
    """Everything the API shows about a transfer, its backfill and its runs."""
    base = f"/teams/{tenant.team_id}"
    texts = [
        tenant.http.get(f"{base}/transfers/{transfer_id}").text,
        tenant.http.get(f"{base}/transfers").text,
        tenant.http.get(f"{base}/backfills/{backfill_id}").text,
        tenant.http.get(f"{base}/transfers/{transfer_id}/backfills/latest").text,
    ]
    for run in tenant.runs(transfer_id):
        texts.append(json.dumps(run))
        texts.append(json.dumps(run_detail(tenant, run["id"])))
    return "\n".join(texts)


def test_a_password_reference_is_shown_as_written_and_resolved_on_the_worker(
    tenant: Tenant, sqlite_source: str, warehouse: str, schema: str
) -> None:
    if make_url(warehouse).password:
        pytest.skip("needs a PostgreSQL that ignores passwords (trust auth)")
    reference = "${" + SECRET_NAME + "}"
    url = with_password(warehouse, reference)
    tagged = BY_DAY.replace("cost FROM", f"cost, '{reference}' AS tag FROM")
    response = tenant.http.post(
        f"/teams/{tenant.team_id}/transfers",
        json=transfer_body(
            sql_source(sqlite_source, query=tagged), postgresql_destination(url, schema)
        ),
    )
    assert response.status_code == 200, response.text
    transfer = response.json()["data"]

    done = backfill_to_end(tenant, transfer["transfer_id"])

    assert done["status"] == "COMPLETED", done["error_report"]
    assert transfer["destination"]["url"] == url
    assert transfer["source"]["query"] == tagged
    shown = api_texts(tenant, transfer["transfer_id"], done["transfer_backfill_id"])
    assert reference in shown
    assert SECRET_VALUE not in shown
    # resolved on the worker: the value itself reached the warehouse
    assert query(warehouse, f"SELECT DISTINCT tag FROM {schema}.ads") == [(SECRET_VALUE,)]


def test_a_resolved_secret_never_appears_in_run_messages_or_the_error_report(
    tenant: Tenant, sqlite_source: str, warehouse: str, schema: str
) -> None:
    reference = "${" + SECRET_NAME + "}"
    source = sql_source(sqlite_source, query=f'SELECT * FROM "{reference}" WHERE day = :data_date')
    transfer_id = create_transfer(tenant, source, postgresql_destination(warehouse, schema))

    done = backfill_to_end(tenant, transfer_id)

    assert done["status"] == "FAILED"
    for entry in done["error_report"]:
        assert f"no such table: {reference}" in entry["error"]
    shown = api_texts(tenant, transfer_id, done["transfer_backfill_id"])
    assert f"no such table: {reference}" in shown
    assert SECRET_VALUE not in shown


def test_a_literal_password_is_masked_in_api_output_and_messages(
    tenant: Tenant, sqlite_source: str, warehouse: str, schema: str
) -> None:
    password = "literal-pw-77"
    url = with_password(warehouse, password)
    # a source error that quotes a URL holding the password
    leaky = f'SELECT * FROM "{url}" WHERE day = :data_date'
    response = tenant.http.post(
        f"/teams/{tenant.team_id}/transfers",
        json=transfer_body(
            sql_source(sqlite_source, query=leaky), postgresql_destination(url, schema)
        ),
    )
    assert response.status_code == 200, response.text
    transfer = response.json()["data"]
    assert transfer["destination"]["url"] == with_password(warehouse, "***")
    assert password not in response.text

    done = backfill_to_end(tenant, transfer["transfer_id"])

    assert done["status"] == "FAILED"
    for entry in done["error_report"]:
        assert "no such table: postgresql://" in entry["error"]
        assert ":***@" in entry["error"]
    shown = api_texts(tenant, transfer["transfer_id"], done["transfer_backfill_id"])
    assert password not in shown
    assert ":***@" in shown


def test_a_missing_secret_fails_the_run_at_once_naming_the_variable(
    tenant: Tenant, stack: Stack, sqlite_source: str, warehouse: str, schema: str
) -> None:
    url = with_password(warehouse, "${BACKFILLS_TEST_NOT_SET_ANYWHERE}")
    transfer_id = create_transfer(
        tenant, sql_source(sqlite_source), postgresql_destination(url, schema)
    )

    done = backfill_to_end(tenant, transfer_id)

    assert done["status"] == "FAILED"
    for entry in done["error_report"]:
        assert "BACKFILLS_TEST_NOT_SET_ANYWHERE" in entry["error"]
    assert [run.attempts for run in runs_in_db(stack, tenant, transfer_id)] == [1, 1, 1]


def test_the_transfer_response_is_plain_json(tenant: Tenant, sqlite_source: str) -> None:
    """The stored `sql` options come back as given (plus the unset alternative as null)."""
    response: httpx.Response = tenant.http.post(
        f"/teams/{tenant.team_id}/transfers",
        json=transfer_body(sql_source(sqlite_source), {"type": "sqlite", "table": "ads_plain"}),
    )

    assert response.status_code == 200, response.text
    source = response.json()["data"]["source"]
    assert source["type"] == "sql"
    assert source["url"] == sqlite_source
    assert source["query"] == BY_DAY
