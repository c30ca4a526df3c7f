"""Team secrets over the API: write-only values, encrypted at rest, resolved by the team's own
runs only."""

from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import select

from persistence.models import Role, Scope, TeamSecret
from tests.connectors.http_server import LocalHttpServer, json_reply, serve
from tests.support import Stack, Tenant, new_tenant

VALUE = "tok-9f2e61c4-live"
DATES = ("2024-05-01", "2024-05-02")


@pytest.fixture
def server() -> Iterator[LocalHttpServer]:
    with serve() as running:
        for data_date in DATES:
            running.route(f"/r/{data_date}", json_reply([{"n": 1}]))
        yield running


def put(tenant: Tenant, name: str, value: Any) -> Any:
    return tenant.http.put(f"/teams/{tenant.team_id}/secrets/{name}", json={"value": value})


def secret_transfer(tenant: Tenant, server: LocalHttpServer, header: str) -> int:
    response = tenant.http.post(
        f"/teams/{tenant.team_id}/transfers",
        json={
            "display_name": "uses a secret",
            "source": {
                "type": "http",
                "url": server.base_url + "/r/{data_date}",
                "headers": {"X-Api-Key": header},
                "timeout_s": 10,
            },
            "destination": {"type": "sqlite"},
        },
    )
    assert response.status_code == 200, response.text
    transfer_id: int = response.json()["data"]["transfer_id"]
    return transfer_id


def backfill_to_end(tenant: Tenant, transfer_id: int) -> dict[str, Any]:
    created = tenant.create_backfill(transfer_id, DATES[0], DATES[-1])
    return tenant.wait_until_status(
        created["transfer_backfill_id"], "COMPLETED", "FAILED", timeout=120
    )


def test_a_secret_is_created_listed_replaced_and_deleted_and_its_value_never_returned(
    tenant: Tenant,
) -> None:
    base = f"/teams/{tenant.team_id}/secrets"
    answers = [put(tenant, "API_KEY", VALUE)]
    created = answers[0].json()["data"]
    answers.append(tenant.http.get(base))
    answers.append(tenant.http.get(f"{base}/API_KEY"))
    answers.append(put(tenant, "API_KEY", VALUE + "-2"))
    replaced = answers[-1].json()["data"]
    answers.append(tenant.http.delete(f"{base}/API_KEY"))
    answers.append(tenant.http.get(f"{base}/API_KEY"))

    assert [a.status_code for a in answers] == [200, 200, 200, 200, 200, 404]
    assert created["name"] == "API_KEY" and created["reference"] == "${API_KEY}"
    assert created["created_user_id"] == tenant.user_id
    assert [s["name"] for s in answers[1].json()["data"]] == ["API_KEY"]
    assert replaced["created_time"] == created["created_time"]
    assert replaced["updated_time"] >= created["updated_time"]
    assert tenant.http.get(base).json()["data"] == []
    for answer in answers:
        assert VALUE not in answer.text
        assert "value" not in answer.json().get("data", {})


def test_the_value_is_stored_encrypted(stack: Stack, tenant: Tenant) -> None:
    assert put(tenant, "DB_PASSWORD", VALUE).status_code == 200

    with stack.db.read() as session:
        row = session.exec(
            select(TeamSecret).where(
                TeamSecret.team_id == tenant.team_id, TeamSecret.name == "DB_PASSWORD"
            )
        ).one()
    assert VALUE not in row.ciphertext
    assert row.ciphertext.startswith("gAAAA")  # a Fernet token


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("1BAD", {"value": "x"}),
        ("BAD-NAME", {"value": "x"}),
        ("A" * 129, {"value": "x"}),
        ("OK", {"value": ""}),
        ("OK", {"value": 5}),
        ("OK", {}),
        ("OK", {"value": "x", "extra": 1}),
        ("OK", {"value": "x" * 65_537}),
    ],
)
def test_bad_input_answers_400_and_stores_nothing(
    tenant: Tenant, name: str, body: dict[str, Any]
) -> None:
    response = tenant.http.put(f"/teams/{tenant.team_id}/secrets/{name}", json=body)

    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "BAD_REQUEST"
    assert tenant.http.get(f"/teams/{tenant.team_id}/secrets").json()["data"] == []


def test_a_viewer_lists_names_but_cannot_write_and_another_team_sees_nothing(
    stack: Stack, tenant: Tenant
) -> None:
    assert put(tenant, "API_KEY", VALUE).status_code == 200
    viewer = new_tenant(stack, role=Role.VIEWER)
    outsider = new_tenant(stack)
    read_only = new_tenant(stack, scopes=(Scope.READ,))
    try:
        base = f"/teams/{tenant.team_id}/secrets"
        viewer_base = f"/teams/{viewer.team_id}/secrets"
        assert viewer.http.put(f"{viewer_base}/X", json={"value": "v"}).status_code == 403
        assert (
            read_only.http.put(
                f"/teams/{read_only.team_id}/secrets/X", json={"value": "v"}
            ).status_code
            == 403
        )
        for call in (
            outsider.http.get(base),
            outsider.http.get(f"{base}/API_KEY"),
            outsider.http.put(f"{base}/API_KEY", json={"value": "overwritten"}),
            outsider.http.delete(f"{base}/API_KEY"),
        ):
            assert call.status_code == 403, call.text
            assert VALUE not in call.text
        assert viewer.http.get(viewer_base).status_code == 200
    finally:
        for other in (viewer, outsider, read_only):
            other.http.close()
    assert [s["name"] for s in tenant.http.get(base).json()["data"]] == ["API_KEY"]


def test_a_run_resolves_its_own_teams_secret_and_a_replacement_takes_effect(
    tenant: Tenant, server: LocalHttpServer
) -> None:
    put(tenant, "API_KEY", VALUE)
    transfer_id = secret_transfer(tenant, server, "${API_KEY}")

    first = backfill_to_end(tenant, transfer_id)
    put(tenant, "API_KEY", VALUE + "-rotated")
    second = backfill_to_end(tenant, transfer_id)

    assert first["status"] == "COMPLETED", first["error_report"]
    assert second["status"] == "COMPLETED", second["error_report"]
    keys = [request.headers.get("X-Api-Key") for request in server.received]
    assert keys == [VALUE] * 2 + [VALUE + "-rotated"] * 2
    shown = tenant.http.get(f"/teams/{tenant.team_id}/transfers/{transfer_id}").json()
    assert shown["data"]["source"]["headers"] == {"X-Api-Key": "${API_KEY}"}


def test_another_teams_secret_of_the_same_name_is_out_of_reach(
    stack: Stack, tenant: Tenant, server: LocalHttpServer
) -> None:
    put(tenant, "API_KEY", VALUE)
    attacker = new_tenant(stack)
    try:
        transfer_id = secret_transfer(attacker, server, "${API_KEY}")
        done = backfill_to_end(attacker, transfer_id)
    finally:
        attacker.http.close()

    assert done["status"] == "FAILED"
    assert server.received == [], "no request was sent"
    assert [entry["error"] for entry in done["error_report"]] == [
        "${API_KEY} is neither a secret of the team nor a worker variable the operator "
        "allows; create the secret (PUT /teams/{team_id}/secrets/API_KEY)"
    ] * len(DATES)


@pytest.mark.parametrize(
    "variable", ["BACKFILLS_DATABASE_URL", "BACKFILLS_SECRETS_KEY", "PATH", "HOME"]
)
def test_worker_variables_outside_the_allowlist_are_out_of_reach(
    stack: Stack, tenant: Tenant, server: LocalHttpServer, variable: str
) -> None:
    transfer_id = secret_transfer(tenant, server, "${" + variable + "}")

    done = backfill_to_end(tenant, transfer_id)

    assert done["status"] == "FAILED"
    assert server.received == []
    assert all(f"${{{variable}}} is neither" in e["error"] for e in done["error_report"])
    assert stack.env[variable] not in str(done)


def test_a_deleted_secret_fails_later_runs_at_once_naming_the_reference(
    tenant: Tenant, server: LocalHttpServer
) -> None:
    put(tenant, "API_KEY", VALUE)
    transfer_id = secret_transfer(tenant, server, "Bearer ${API_KEY}")
    tenant.http.delete(f"/teams/{tenant.team_id}/secrets/API_KEY")

    done = backfill_to_end(tenant, transfer_id)

    assert done["status"] == "FAILED"
    assert server.received == []
    runs = tenant.runs(transfer_id)
    assert all("${API_KEY}" in run["message"] for run in runs), runs


def test_a_secret_in_a_url_reaches_the_server_and_no_log_line(
    stack: Stack, tenant: Tenant, server: LocalHttpServer
) -> None:
    """httpx logs each request's URL at INFO: the worker keeps it out of its log, and a
    failing request's message shows the reference, not the value."""
    value = "url-secret-c81f09d2"
    put(tenant, "URL_KEY", value)
    server.route(f"/r/{DATES[1]}", json_reply({"error": "nope"}, status=403))
    response = tenant.http.post(
        f"/teams/{tenant.team_id}/transfers",
        json={
            "display_name": "secret in the URL",
            "source": {"type": "http", "url": server.base_url + "/r/{data_date}?key=${URL_KEY}"},
            "destination": {"type": "sqlite"},
        },
    )
    transfer_id = response.json()["data"]["transfer_id"]

    done = backfill_to_end(tenant, transfer_id)

    assert done["status"] == "FAILED"
    assert [request.query for request in server.received] == [f"key={value}"] * 2
    shown = [str(done), str(tenant.runs(transfer_id))]
    assert "HTTP 403" in shown[0]
    assert all(value not in text for text in shown)
    logs = {path.name: path.read_text(errors="replace") for path in stack.logs.glob("*.log")}
    assert "worker.log" in logs
    assert [name for name, text in logs.items() if value in text] == []
