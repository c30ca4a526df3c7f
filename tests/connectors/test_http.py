"""The `http` source against a real local HTTP server: records, failure classes, limits, secrets."""

import json
from collections.abc import Iterator
from datetime import date
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest

from cli.devserver import free_port
from connectors.base import Extract, RunContext
from connectors.budget import SpoolBudget
from connectors.egress import EgressPolicy
from connectors.errors import ConnectorError, PermanentError, TransientError
from connectors.http import HttpSourceOptions
from connectors.registry import InvalidConnectorSpec, parse_source
from connectors.secrets import resolve
from tests.connectors.http_server import LocalHttpServer, Reply, json_reply, serve

DAY = date(2024, 3, 1)
PATH = "/items/2024-03-01"
SECRET = "s3cr3t-token-value"
ENV = {"API_TOKEN": SECRET}

# The test servers listen on loopback, which the egress policy refuses by default.
LOCAL_SERVERS = EgressPolicy(allowed_networks=(ip_network("127.0.0.0/8"), ip_network("::1/128")))

ROWS = [{"id": 1, "name": "one", "cost": 1.5}, {"id": 2, "name": "two", "cost": 2.0}]


@pytest.fixture
def server() -> Iterator[LocalHttpServer]:
    with serve() as running:
        yield running


def context(tmp_path: Path, beats: list[None] | None = None) -> RunContext:
    return RunContext(
        team_dir=tmp_path,
        transfer_id=1,
        heartbeat=(lambda: beats.append(None)) if beats is not None else (lambda: None),
        egress=LOCAL_SERVERS,
    )


def extract(
    tmp_path: Path,
    url: str,
    beats: list[None] | None = None,
    env: dict[str, str] | None = None,
    **options: Any,
) -> Extract:
    """As a run does it: resolve `${NAME}` references, parse the spec, build, extract."""
    spec, _ = resolve({"type": "http", "url": url, **options}, env or ENV)
    found = parse_source(spec).build().extract(DAY, context(tmp_path, beats))
    records = list(found.records)  # read to the end, as a destination reads them
    return Extract(records=records, query_details=found.query_details)


def failure(tmp_path: Path, url: str, **options: Any) -> ConnectorError:
    with pytest.raises(ConnectorError) as caught:
        extract(tmp_path, url, **options)
    return caught.value


# --- records --------------------------------------------------------------------------------


def test_a_list_body_is_the_records(server: LocalHttpServer, tmp_path: Path) -> None:
    server.route(PATH, json_reply(ROWS))

    result = extract(tmp_path, server.base_url + "/items/{data_date}")

    assert result.records == ROWS
    assert [(d.status, d.rows, d.error_description) for d in result.query_details] == [
        ("SUCCESS", 2, None)
    ]


def test_the_url_gets_the_run_date(server: LocalHttpServer, tmp_path: Path) -> None:
    server.route("/2024-03-01/items", json_reply(ROWS))

    extract(tmp_path, server.base_url + "/{data_date}/items?day={data_date}")

    assert [r.query for r in server.requests_to("/2024-03-01/items")] == ["day=2024-03-01"]


def test_records_path_finds_nested_records(server: LocalHttpServer, tmp_path: Path) -> None:
    server.route(PATH, json_reply({"meta": {"count": 2}, "data": {"items": ROWS}}))

    result = extract(tmp_path, server.base_url + "/items/{data_date}", records_path="data.items")

    assert result.records == ROWS
    assert result.query_details[0].rows == 2


def test_records_path_may_index_a_list(server: LocalHttpServer, tmp_path: Path) -> None:
    server.route(PATH, json_reply({"pages": [{"rows": ROWS}]}))

    result = extract(tmp_path, server.base_url + "/items/{data_date}", records_path="pages.0.rows")

    assert result.records == ROWS


def test_a_large_body_is_parsed_as_it_is_read(server: LocalHttpServer, tmp_path: Path) -> None:
    many = [{"n": n, "tags": ["a", n], "name": f"row {n} \u00e9"} for n in range(30_000)]
    server.route(PATH, json_reply({"data": {"items": many}, "next": None}))
    spec = {"type": "http", "url": server.base_url + "/items/{data_date}"}
    found = parse_source({**spec, "records_path": "data.items"}).build()
    extract_ = found.extract(DAY, context(tmp_path))
    records = iter(extract_.records)

    assert next(records) == {"n": 0, "tags": '["a",0]', "name": "row 0 \u00e9"}
    assert extract_.query_details == [], "not done until every record is read"
    rest = list(records)
    assert len(rest) == 29_999 and rest[-1]["n"] == 29_999
    assert [detail.rows for detail in extract_.query_details] == [30_000]


def test_a_body_broken_after_some_records_fails_when_the_break_is_read(
    server: LocalHttpServer, tmp_path: Path
) -> None:
    server.route(PATH, Reply(status=200, body=b'[{"n": 1}, {"n": 2}, {"n": 3'))
    found = parse_source({"type": "http", "url": server.base_url + "/items/{data_date}"})
    records = iter(found.build().extract(DAY, context(tmp_path)).records)

    assert [next(records), next(records)] == [{"n": 1}, {"n": 2}]
    with pytest.raises(PermanentError) as raised:
        next(records)
    assert f"response from 127.0.0.1:{server.port}{PATH} is not valid JSON" in str(raised.value)
    assert [d.status for d in raised.value.query_details or []] == ["FAILED"]


def test_an_empty_list_is_no_records(server: LocalHttpServer, tmp_path: Path) -> None:
    server.route(PATH, json_reply([]))

    result = extract(tmp_path, server.base_url + "/items/{data_date}")

    assert result.records == []
    assert result.query_details[0].rows == 0


def test_nested_values_become_json_text(server: LocalHttpServer, tmp_path: Path) -> None:
    record = {"id": 1, "tags": ["a", "b"], "geo": {"country": "EE"}, "ok": True, "none": None}
    server.route(PATH, json_reply([record]))

    [row] = extract(tmp_path, server.base_url + "/items/{data_date}").records

    assert row == {
        "id": 1,
        "tags": '["a","b"]',
        "geo": '{"country":"EE"}',
        "ok": True,
        "none": None,
    }
    assert json.loads(row["tags"]) == ["a", "b"]


def test_redirects_are_followed(server: LocalHttpServer, tmp_path: Path) -> None:
    server.route("/old/2024-03-01", Reply(status=302, location=PATH))
    server.route(PATH, json_reply(ROWS))

    result = extract(tmp_path, server.base_url + "/old/{data_date}")

    assert result.records == ROWS


# --- failure classes ------------------------------------------------------------------------


def test_404_fails_permanently_naming_status_and_path(
    server: LocalHttpServer, tmp_path: Path
) -> None:
    error = failure(tmp_path, server.base_url + "/missing/{data_date}?page=1")

    assert isinstance(error, PermanentError)
    assert "HTTP 404" in str(error)
    assert f"127.0.0.1:{server.port}/missing/2024-03-01" in str(error)
    assert "page=1" not in str(error)
    assert error.query_details is not None
    [detail] = error.query_details
    assert (detail.status, detail.rows, detail.error_description) == ("FAILED", 0, str(error))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
def test_client_errors_other_than_429_are_permanent(
    server: LocalHttpServer, tmp_path: Path, status: int
) -> None:
    server.route(PATH, Reply(status=status, body=b"{}"))

    error = failure(tmp_path, server.base_url + "/items/{data_date}")

    assert isinstance(error, PermanentError)
    assert f"HTTP {status} from 127.0.0.1:{server.port}{PATH}" in str(error)


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_429_and_server_errors_are_transient(
    server: LocalHttpServer, tmp_path: Path, status: int
) -> None:
    server.route(PATH, Reply(status=status, body=b"{}"))

    error = failure(tmp_path, server.base_url + "/items/{data_date}")

    assert isinstance(error, TransientError)
    assert f"HTTP {status} from 127.0.0.1:{server.port}{PATH}" in str(error)


def test_a_503_then_200_succeeds_on_the_second_attempt(
    server: LocalHttpServer, tmp_path: Path
) -> None:
    server.route(PATH, Reply(status=503), json_reply(ROWS))
    url = server.base_url + "/items/{data_date}"

    first = failure(tmp_path, url)
    second = extract(tmp_path, url)

    assert isinstance(first, TransientError)
    assert "HTTP 503" in str(first)
    assert second.records == ROWS
    assert len(server.requests_to(PATH)) == 2


def test_a_slow_answer_times_out_transiently(server: LocalHttpServer, tmp_path: Path) -> None:
    server.route(PATH, Reply(hang=True))

    error = failure(tmp_path, server.base_url + "/items/{data_date}", timeout_s=0.5)

    assert isinstance(error, TransientError)
    assert "within 0.5s" in str(error)
    assert f"127.0.0.1:{server.port}{PATH}" in str(error)
    assert error.query_details is not None
    assert error.query_details[0].status == "FAILED"


def test_it_heartbeats_while_waiting_for_an_answer(server: LocalHttpServer, tmp_path: Path) -> None:
    server.route(PATH, Reply(hang=True))
    beats: list[None] = []

    with pytest.raises(TransientError):
        extract(tmp_path, server.base_url + "/items/{data_date}", beats=beats, timeout_s=2.5)

    assert len(beats) >= 2


def test_a_refused_connection_is_transient(tmp_path: Path) -> None:
    port = free_port()

    error = failure(tmp_path, f"http://127.0.0.1:{port}/items/{{data_date}}")

    assert isinstance(error, TransientError)
    assert f"could not connect to 127.0.0.1:{port}{PATH}" in str(error)


def test_a_body_over_the_size_limit_is_permanent(server: LocalHttpServer, tmp_path: Path) -> None:
    server.route(PATH, json_reply([{"text": "x" * 100} for _ in range(50)]))

    error = failure(tmp_path, server.base_url + "/items/{data_date}", max_response_bytes=1000)

    assert isinstance(error, PermanentError)
    assert "larger than max_response_bytes (1000 bytes)" in str(error)


def test_a_streamed_body_over_the_size_limit_is_permanent(
    server: LocalHttpServer, tmp_path: Path
) -> None:
    body = json.dumps([{"text": "x" * 100} for _ in range(500)]).encode()
    server.route(PATH, Reply(body=body, send_length=False))

    error = failure(tmp_path, server.base_url + "/items/{data_date}", max_response_bytes=1000)

    assert isinstance(error, PermanentError)
    assert "larger than max_response_bytes" in str(error)


def test_a_body_within_the_size_limit_is_read(server: LocalHttpServer, tmp_path: Path) -> None:
    body = json.dumps(ROWS).encode()
    server.route(PATH, Reply(body=body, send_length=False))

    result = extract(tmp_path, server.base_url + "/items/{data_date}", max_response_bytes=len(body))

    assert result.records == ROWS


def test_a_body_that_is_not_json_is_permanent(server: LocalHttpServer, tmp_path: Path) -> None:
    server.route(PATH, Reply(body=b"<html>maintenance</html>", content_type="text/html"))

    error = failure(tmp_path, server.base_url + "/items/{data_date}")

    assert isinstance(error, PermanentError)
    assert f"response from 127.0.0.1:{server.port}{PATH} is not valid JSON" in str(error)


def test_a_body_that_is_not_a_list_is_permanent(server: LocalHttpServer, tmp_path: Path) -> None:
    server.route(PATH, json_reply({"data": ROWS}))

    error = failure(tmp_path, server.base_url + "/items/{data_date}")

    assert isinstance(error, PermanentError)
    assert "expected a list of records" in str(error)
    assert "got an object" in str(error)


def test_records_that_are_not_objects_are_permanent(
    server: LocalHttpServer, tmp_path: Path
) -> None:
    server.route(PATH, json_reply({"data": [{"id": 1}, [2]]}))

    error = failure(tmp_path, server.base_url + "/items/{data_date}", records_path="data")

    assert isinstance(error, PermanentError)
    assert "record 1 at records_path 'data'" in str(error)
    assert "is a list, not an object" in str(error)


def test_a_records_path_missing_from_the_body_is_permanent(
    server: LocalHttpServer, tmp_path: Path
) -> None:
    server.route(PATH, json_reply({"data": {"rows": ROWS}}))

    error = failure(tmp_path, server.base_url + "/items/{data_date}", records_path="data.items")

    assert isinstance(error, PermanentError)
    assert "nothing at records_path 'data.items'" in str(error)


# --- headers and secrets --------------------------------------------------------------------


def test_headers_are_sent_with_resolved_secrets(server: LocalHttpServer, tmp_path: Path) -> None:
    server.route(PATH, json_reply(ROWS))

    extract(
        tmp_path,
        server.base_url + "/items/{data_date}",
        headers={"Authorization": "Bearer ${API_TOKEN}", "X-Client": "backfills"},
    )

    [request] = server.requests_to(PATH)
    assert request.headers["Authorization"] == f"Bearer {SECRET}"
    assert request.headers["X-Client"] == "backfills"
    assert request.headers["Accept"] == "application/json"


@pytest.mark.parametrize(
    "reply", [Reply(status=404), Reply(status=503), Reply(body=b"not json"), Reply(hang=True)]
)
def test_secrets_never_appear_in_error_messages(
    server: LocalHttpServer, tmp_path: Path, reply: Reply
) -> None:
    server.route(PATH, reply)

    error = failure(
        tmp_path,
        server.base_url + "/items/{data_date}?api_key=${API_TOKEN}",
        headers={"Authorization": "Bearer ${API_TOKEN}"},
        timeout_s=0.5,
    )

    [request] = server.requests_to(PATH)
    assert request.headers["Authorization"] == f"Bearer {SECRET}"
    assert request.query == f"api_key={SECRET}"
    assert error.query_details is not None
    for text in [str(error), *(d.error_description or "" for d in error.query_details)]:
        assert SECRET not in text
        assert "api_key" not in text
        assert PATH in text


# --- options --------------------------------------------------------------------------------


def test_defaults() -> None:
    options = parse_source({"type": "http", "url": "https://example.com/{data_date}"})

    assert isinstance(options, HttpSourceOptions)
    assert options.records_path is None
    assert options.headers == {}
    assert options.timeout_s == 30
    assert options.max_response_bytes == 50 * 1024 * 1024


def test_a_url_from_a_reference_is_accepted_before_resolution() -> None:
    options = parse_source({"type": "http", "url": "${API_BASE}/reports/{data_date}"})

    assert isinstance(options, HttpSourceOptions)


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"url": "https://example.com/items"}, "source.url: Value error, must contain"),
        ({"url": "ftp://example.com/{data_date}"}, "source.url: Value error, must be an http"),
        ({"url": "example.com/{data_date}"}, "source.url: Value error, must be an http"),
        ({"timeout_s": 0}, "source.timeout_s"),
        ({"timeout_s": 601}, "source.timeout_s"),
        ({"max_response_bytes": 0}, "source.max_response_bytes"),
        ({"max_response_bytes": 16 * 1024**3 + 1}, "source.max_response_bytes"),
        ({"records_path": "data..items"}, "source.records_path"),
        ({"headers": {"Bad Name": "x"}}, "source.headers"),
        ({"headers": {"X-Token": "a\r\nInjected: 1"}}, "source.headers"),
        ({"headers": {"X-Count": 3}}, "source.headers.X-Count"),
        ({"method": "POST"}, "source.method: Extra inputs are not permitted"),
    ],
)
def test_invalid_options_are_refused(options: dict[str, Any], problem: str) -> None:
    spec = {"type": "http", "url": "https://example.com/{data_date}", **options}

    with pytest.raises(InvalidConnectorSpec) as caught:
        parse_source(spec)

    assert problem in str(caught.value)


def test_a_url_reference_resolving_to_another_scheme_is_refused_at_run_time(
    tmp_path: Path,
) -> None:
    with pytest.raises(InvalidConnectorSpec) as caught:
        extract(tmp_path, "${BASE}/{data_date}", env={"BASE": "ftp://example.com"})

    assert "source.url: Value error, must be an http" in str(caught.value)


def test_the_url_is_required() -> None:
    with pytest.raises(InvalidConnectorSpec) as caught:
        parse_source({"type": "http"})

    assert "source.url: Field required" in str(caught.value)


def test_a_header_value_is_not_echoed_when_refused() -> None:
    spec = {"type": "http", "url": "https://e.com/{data_date}", "headers": {"X": f"{SECRET}\n"}}

    with pytest.raises(InvalidConnectorSpec) as caught:
        parse_source(spec)

    assert SECRET not in str(caught.value)


# --- the worker's spool budget ---------------------------------------------------------------


def budgeted(tmp_path: Path, budget: SpoolBudget) -> RunContext:
    return RunContext(
        team_dir=tmp_path,
        transfer_id=1,
        heartbeat=lambda: None,
        egress=LOCAL_SERVERS,
        spool_budget=budget,
    )


def large_body(records: int) -> bytes:
    return json.dumps([{"text": "x" * 1000} for _ in range(records)]).encode()


def source(url: str) -> Any:
    return parse_source({"type": "http", "url": url}).build()


@pytest.mark.parametrize("send_length", [True, False], ids=["with-length", "streamed"])
def test_a_body_larger_than_the_whole_spool_budget_fails_for_good(
    server: LocalHttpServer, tmp_path: Path, send_length: bool
) -> None:
    server.route(PATH, Reply(body=large_body(300), send_length=send_length))  # about 300 kB
    budget = SpoolBudget(100_000)

    with pytest.raises(PermanentError) as caught:
        source(server.base_url + "/items/{data_date}").extract(DAY, budgeted(tmp_path, budget))

    assert "larger than the worker's temporary disk budget" in str(caught.value)
    assert budget.used == 0


def test_a_body_finding_the_budget_taken_by_another_run_is_retried_and_then_read(
    server: LocalHttpServer, tmp_path: Path
) -> None:
    body = large_body(60)  # about 60 kB: room for one such body at a time
    server.route(PATH, Reply(body=body, send_length=False), Reply(body=body, send_length=False))
    budget = SpoolBudget(100_000)
    url = server.base_url + "/items/{data_date}"
    first = source(url).extract(DAY, budgeted(tmp_path, budget))  # its body waits, unread
    assert budget.used == len(body)

    with pytest.raises(TransientError) as caught:
        source(url).extract(DAY, budgeted(tmp_path, budget))
    assert "in use by other runs; the run is retried" in str(caught.value)
    assert budget.used == len(body)  # the refused one gave back what it had taken

    assert len(list(first.records)) == 60
    assert budget.used == 0  # read to the end: its bytes are back
    server.route(PATH, Reply(body=body, send_length=False))
    again = source(url).extract(DAY, budgeted(tmp_path, budget))
    assert len(list(again.records)) == 60
    assert budget.used == 0


def test_a_failed_request_gives_its_bytes_back(server: LocalHttpServer, tmp_path: Path) -> None:
    broken = large_body(50)[:-10]  # not JSON once read to the end
    server.route(PATH, Reply(body=broken, send_length=False))
    budget = SpoolBudget(1_000_000)
    found = source(server.base_url + "/items/{data_date}").extract(DAY, budgeted(tmp_path, budget))

    with pytest.raises(PermanentError):
        list(found.records)

    assert budget.used == 0
