"""`/metrics` on the API: Prometheus text, outside `/v1`, no token; every answer counted by
route template (never raw ids), method and status, and timed in a latency histogram."""

import httpx

from tests.prometheus import Samples, labelsets, parse, value
from tests.support import Stack, Tenant

BACKFILL_ROUTE = "/v1/teams/{team_id}/backfills/{backfill_id}"
REQUESTS = "backfills_http_requests_total"
DURATION = "backfills_http_request_duration_seconds"


def metrics_url(stack: Stack) -> str:
    return stack.api_url.removesuffix("/v1") + "/metrics"


def scrape(stack: Stack) -> Samples:
    response = httpx.get(metrics_url(stack), timeout=10)
    assert response.status_code == 200, response.text
    return parse(response.text)


def test_metrics_answer_prometheus_text_without_a_token(stack: Stack) -> None:
    response = httpx.get(metrics_url(stack), timeout=10)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert f"# TYPE {REQUESTS} counter" in response.text
    assert f"# TYPE {DURATION} histogram" in response.text


def test_metrics_are_not_under_v1(stack: Stack, tenant: Tenant) -> None:
    response = tenant.http.get("/metrics")

    assert response.status_code == 404


def test_requests_are_counted_by_route_template_method_and_status(
    stack: Stack, tenant: Tenant
) -> None:
    before = scrape(stack)

    missing = [tenant.http.get(f"/teams/{tenant.team_id}/backfills/{n}") for n in (987654, 987655)]
    listed = tenant.http.get(f"/teams/{tenant.team_id}/backfills")
    anonymous = httpx.get(f"{stack.api_url}/teams/{tenant.team_id}/backfills/1", timeout=10)

    assert [r.status_code for r in missing] == [404, 404]
    assert listed.status_code == 200
    assert anonymous.status_code == 401
    after = scrape(stack)

    def delta(route: str, method: str, status: str) -> float:
        labels = {"route": route, "method": method, "status": status}
        return value(after, REQUESTS, **labels) - value(before, REQUESTS, **labels)

    assert delta(BACKFILL_ROUTE, "GET", "404") == 2
    assert delta(BACKFILL_ROUTE, "GET", "401") == 1
    assert delta("/v1/teams/{team_id}/backfills", "GET", "200") == 1


def test_raw_ids_never_become_route_labels(stack: Stack, tenant: Tenant) -> None:
    tenant.http.get(f"/teams/{tenant.team_id}/backfills/424242")
    tenant.http.get(f"/teams/{tenant.team_id}/transfers/434343/runs")

    routes = {labels["route"] for labels in labelsets(scrape(stack), REQUESTS)}

    assert BACKFILL_ROUTE in routes
    for route in routes:
        assert not any(segment.isdigit() for segment in route.split("/")), route


def test_paths_without_a_route_are_counted_as_unmatched(stack: Stack) -> None:
    before = scrape(stack)

    response = httpx.get(stack.api_url + "/no-such-thing/5150", timeout=10)

    assert response.status_code == 404
    after = scrape(stack)
    labels = {"route": "unmatched", "method": "GET", "status": "404"}
    assert value(after, REQUESTS, **labels) == value(before, REQUESTS, **labels) + 1
    assert not any("no-such-thing" in labels["route"] for labels in labelsets(after, REQUESTS))


def test_latency_histogram_observes_every_request(stack: Stack, tenant: Tenant) -> None:
    labels = {"route": BACKFILL_ROUTE, "method": "GET"}
    before = scrape(stack)

    for n in range(3):
        tenant.http.get(f"/teams/{tenant.team_id}/backfills/{777000 + n}")

    after = scrape(stack)
    count = value(after, f"{DURATION}_count", **labels) - value(
        before, f"{DURATION}_count", **labels
    )
    assert count == 3
    assert value(after, f"{DURATION}_bucket", le="+Inf", **labels) == value(
        after, f"{DURATION}_count", **labels
    )
    assert value(after, f"{DURATION}_sum", **labels) > value(before, f"{DURATION}_sum", **labels)
