"""Backfills of transfers with an `http` source, end to end: the API, the worker process, a real
local HTTP server in the test, and the `sqlite` destination in the worker's data directory."""

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import httpx
import pytest

from tests.connectors.http_server import LocalHttpServer, Reply, json_reply, serve
from tests.scratch_postgres import query, scratch_database
from tests.support import Stack, Tenant, assert_error, warehouse_of

DATES = ("2024-03-01", "2024-03-02", "2024-03-03")
TIMEOUT = 120.0


@pytest.fixture
def server() -> Iterator[LocalHttpServer]:
    with serve() as running:
        yield running


def records_of(data_date: str) -> list[dict[str, Any]]:
    """A different number of records per date: 2 on the 1st, 3 on the 2nd, 4 on the 3rd."""
    day = int(data_date[-2:])
    return [
        {"id": n, "campaign": f"c{n}", "cost": n * 1.5, "labels": {"day": day}}
        for n in range(day + 1)
    ]


def route_dates(server: LocalHttpServer, prefix: str = "/reports", *before: Reply) -> None:
    """Each date answers `before` first, then its records under `data.rows`."""
    for data_date in DATES:
        final = json_reply({"data": {"rows": records_of(data_date)}})
        server.route(f"{prefix}/{data_date}", *before, final)


def http_source(server: LocalHttpServer, path: str = "/reports/{data_date}", **options: Any) -> Any:
    return {
        "type": "http",
        "url": server.base_url + path,
        "records_path": "data.rows",
        "timeout_s": 10,
        **options,
    }


def create(
    tenant: Tenant, source: dict[str, Any], destination: dict[str, Any] | None = None
) -> httpx.Response:
    return tenant.http.post(
        f"/teams/{tenant.team_id}/transfers",
        json={
            "display_name": "http report",
            "source": source,
            "destination": destination or {"type": "sqlite"},
            "max_concurrent_runs": 3,
        },
    )


def create_transfer(
    tenant: Tenant, source: dict[str, Any], destination: dict[str, Any] | None = None
) -> int:
    response = create(tenant, source, destination)
    assert response.status_code == 200, response.text
    transfer_id: int = response.json()["data"]["transfer_id"]
    return transfer_id


def backfill_to_end(tenant: Tenant, transfer_id: int) -> dict[str, Any]:
    created = tenant.create_backfill(transfer_id, DATES[0], DATES[-1])
    return tenant.wait_until_status(
        created["transfer_backfill_id"], "COMPLETED", "FAILED", timeout=TIMEOUT
    )


def warehouse_rows(stack: Stack, transfer_id: int) -> dict[str, list[tuple[Any, ...]]]:
    """Rows per date in the transfer's table: (id, campaign, cost, labels)."""
    with closing(sqlite3.connect(warehouse_of(stack, transfer_id))) as warehouse:
        rows = warehouse.execute(
            f"SELECT data_date, id, campaign, cost, labels FROM transfer_{transfer_id} "
            "ORDER BY data_date, id"
        ).fetchall()
    by_date: dict[str, list[tuple[Any, ...]]] = {}
    for data_date, *values in rows:
        by_date.setdefault(data_date, []).append(tuple(values))
    return by_date


def expected_rows(*dates: str) -> dict[str, list[tuple[Any, ...]]]:
    return {
        d: [
            (r["id"], r["campaign"], r["cost"], json.dumps(r["labels"], separators=(",", ":")))
            for r in records_of(d)
        ]
        for d in dates
    }


def run_detail(tenant: Tenant, run_id: int) -> dict[str, Any]:
    response = tenant.http.get(f"/teams/{tenant.team_id}/transfer_runs/{run_id}")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def run_on(tenant: Tenant, transfer_id: int, data_date: str) -> dict[str, Any]:
    [run] = [r for r in tenant.runs(transfer_id) if r["data_date"] == data_date]
    return run


# --- landing rows ---------------------------------------------------------------------------


def test_an_http_backfill_lands_each_dates_records_in_sqlite(
    stack: Stack, tenant: Tenant, server: LocalHttpServer
) -> None:
    route_dates(server)
    transfer_id = create_transfer(tenant, http_source(server))

    done = backfill_to_end(tenant, transfer_id)

    assert done["status"] == "COMPLETED", done
    assert (done["transfer_runs_completed"], done["transfer_runs_failed"]) == (3, 0)
    assert done["error_report"] == []
    assert warehouse_rows(stack, transfer_id) == expected_rows(*DATES)
    runs = {r["data_date"]: r for r in tenant.runs(transfer_id)}
    assert {d: (r["status"], r["total_rows"]) for d, r in runs.items()} == {
        "2024-03-01": ("COMPLETED", 2),
        "2024-03-02": ("COMPLETED", 3),
        "2024-03-03": ("COMPLETED", 4),
    }
    detail = run_detail(tenant, runs["2024-03-02"]["id"])
    assert [(q["status"], q["rows"]) for q in detail["query_details"]] == [("SUCCESS", 3)]
    assert all(len(server.requests_to(f"/reports/{d}")) == 1 for d in DATES)


def test_a_503_once_per_date_is_retried_and_the_backfill_completes(
    stack: Stack, tenant: Tenant, server: LocalHttpServer
) -> None:
    route_dates(server, "/reports", Reply(status=503, body=b'{"error": "busy"}'))
    transfer_id = create_transfer(tenant, http_source(server))

    done = backfill_to_end(tenant, transfer_id)

    assert done["status"] == "COMPLETED", done
    assert (done["transfer_runs_completed"], done["transfer_runs_failed"]) == (3, 0)
    assert done["error_report"] == []
    assert [len(server.requests_to(f"/reports/{d}")) for d in DATES] == [2, 2, 2]
    assert warehouse_rows(stack, transfer_id) == expected_rows(*DATES)


def test_a_404_fails_its_date_at_once_with_a_clear_error_report(
    stack: Stack, tenant: Tenant, server: LocalHttpServer
) -> None:
    route_dates(server)
    server.route("/reports/2024-03-02", Reply(status=404, body=b'{"error": "no report"}'))
    transfer_id = create_transfer(tenant, http_source(server, "/reports/{data_date}?page=1"))

    done = backfill_to_end(tenant, transfer_id)

    assert done["status"] == "FAILED", done
    assert (done["transfer_runs_completed"], done["transfer_runs_failed"]) == (2, 1)
    [entry] = done["error_report"]
    assert entry["transfer_run_date"] == "2024-03-02"
    assert "HTTP 404" in entry["error"]
    assert f"127.0.0.1:{server.port}/reports/2024-03-02" in entry["error"]
    assert "page=1" not in entry["error"]
    # Not retried: the server saw exactly one request for that date.
    assert len(server.requests_to("/reports/2024-03-02")) == 1
    failed = run_on(tenant, transfer_id, "2024-03-02")
    assert failed["status"] == "FAILED"
    assert failed["message"] == entry["error"]
    detail = run_detail(tenant, failed["id"])
    assert [(q["status"], q["rows"]) for q in detail["query_details"]] == [("FAILED", 0)]
    assert "HTTP 404" in detail["query_details"][0]["error_description"]
    assert warehouse_rows(stack, transfer_id) == expected_rows("2024-03-01", "2024-03-03")


def test_an_http_backfill_lands_each_dates_records_in_postgresql(
    tenant: Tenant, server: LocalHttpServer
) -> None:
    route_dates(server)
    with scratch_database("backfills_http") as url:
        destination = {"type": "postgresql", "url": url, "schema": "landing", "table": "reports"}
        transfer_id = create_transfer(tenant, http_source(server), destination)

        done = backfill_to_end(tenant, transfer_id)

        assert done["status"] == "COMPLETED", done
        rows = query(
            url,
            "SELECT data_date::text, id, campaign, cost, labels FROM landing.reports "
            "ORDER BY data_date, id",
        )
    by_date: dict[str, list[tuple[Any, ...]]] = {}
    for data_date, *values in rows:
        by_date.setdefault(str(data_date), []).append(tuple(values))
    assert by_date == expected_rows(*DATES)


# --- secrets --------------------------------------------------------------------------------


def test_references_resolve_on_the_worker_and_stay_out_of_reports(
    stack: Stack, tenant: Tenant, server: LocalHttpServer
) -> None:
    """`${API_TOKEN}` is a secret of the team; the worker resolves it for each run."""
    value = "tok-5e0c2b71-http"
    stored = tenant.http.put(f"/teams/{tenant.team_id}/secrets/API_TOKEN", json={"value": value})
    assert stored.status_code == 200, stored.text
    route_dates(server, f"/{value}")
    server.route(f"/{value}/2024-03-02", Reply(status=404))
    source = http_source(
        server,
        "/${API_TOKEN}/{data_date}",
        headers={"Authorization": "Bearer ${API_TOKEN}"},
    )
    transfer_id = create_transfer(tenant, source)

    done = backfill_to_end(tenant, transfer_id)

    assert done["status"] == "FAILED", done
    sent = server.requests_to(f"/{value}/2024-03-01")
    assert [r.headers["Authorization"] for r in sent] == [f"Bearer {value}"]
    [entry] = done["error_report"]
    assert entry["error"].endswith(
        f"HTTP 404 from 127.0.0.1:{server.port}/${{API_TOKEN}}/2024-03-02"
    )
    failed = run_on(tenant, transfer_id, "2024-03-02")
    shown = [
        json.dumps(done),
        json.dumps(tenant.runs(transfer_id)),
        json.dumps(run_detail(tenant, failed["id"])),
        tenant.http.get(f"/teams/{tenant.team_id}/transfers/{transfer_id}").text,
    ]
    assert [value in text for text in shown] == [False] * len(shown)
    assert warehouse_rows(stack, transfer_id) == expected_rows("2024-03-01", "2024-03-03")


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ({"type": "http"}, "source.url"),
        ({"type": "http", "url": "http://127.0.0.1:9/reports"}, "{data_date}"),
        ({"type": "http", "url": "ftp://127.0.0.1:9/{data_date}"}, "http:// or https://"),
        ({"type": "http", "url": "http://127.0.0.1:9/{data_date}", "timeout_s": 0}, "timeout_s"),
    ],
)
def test_an_http_source_with_bad_options_is_refused_with_422(
    tenant: Tenant, source: dict[str, Any], problem: str
) -> None:
    response = create(tenant, source)

    assert problem in assert_error(response, 422, "UNPROCESSABLE_ENTITY")["message"]
    listed = tenant.http.get(f"/teams/{tenant.team_id}/transfers")
    assert listed.json()["data"] == []
