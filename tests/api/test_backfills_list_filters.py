"""`GET /teams/{team}/backfills` with its optional `status` and `transfer_id` filters; without
them it answers what it always did: the incomplete backfills, newest first."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support import Stack, Tenant, assert_error, new_tenant

INCOMPLETE = ["CREATED", "SCHEDULED", "RUNNING", "FAILED"]


@dataclass(frozen=True)
class Team:
    """A tenant with one backfill in each of FAILED, COMPLETED, CANCELLED and RUNNING, each
    of its own transfer (by status), created in that order."""

    tenant: Tenant
    transfers: dict[str, int]
    backfills: dict[str, int]


@pytest.fixture(scope="module")
def team(stack: Stack) -> Iterator[Team]:
    tenant = new_tenant(stack)
    transfers = {
        "FAILED": tenant.create_transfer(fail_dates=["2024-03-02"]),
        "COMPLETED": tenant.create_transfer(),
        "CANCELLED": tenant.create_transfer(max_concurrent_runs=1, latency_ms=2000),
        "RUNNING": tenant.create_transfer(max_concurrent_runs=1, latency_ms=2000),
    }
    made = {
        status: tenant.create_backfill(transfer_id, "2024-03-01", "2024-03-20")[
            "transfer_backfill_id"
        ]
        for status, transfer_id in transfers.items()
    }
    tenant.wait_until_status(made["FAILED"], "FAILED", timeout=120)
    tenant.wait_until_status(made["COMPLETED"], "COMPLETED", timeout=120)
    tenant.cancel(made["CANCELLED"])
    tenant.wait_until_status(made["RUNNING"], "RUNNING", timeout=60)
    yield Team(tenant, transfers, made)
    tenant.cancel(made["RUNNING"])
    tenant.http.close()


def listed(team: Team, **params: Any) -> list[int]:
    response = team.tenant.http.get(f"/teams/{team.tenant.team_id}/backfills", params=params)
    assert response.status_code == 200, response.text
    return [b["transfer_backfill_id"] for b in response.json()["data"]]


def test_without_filters_it_lists_the_incomplete_ones_newest_first(team: Team) -> None:
    assert listed(team) == [team.backfills["RUNNING"], team.backfills["FAILED"]]


def test_the_incomplete_statuses_as_a_filter_answer_the_same_bodies(team: Team) -> None:
    path = f"/teams/{team.tenant.team_id}/backfills"
    plain = team.tenant.http.get(path).json()["data"]
    filtered = team.tenant.http.get(path, params={"status": INCOMPLETE}).json()["data"]

    for backfill in plain + filtered:  # live fields that may move between the two calls
        backfill.pop("estimated_end_time")
        for field in ("completed", "running", "created", "failed"):
            backfill.pop(f"transfer_runs_{field}")
    assert plain == filtered
    assert set(plain[0]) == set(team.tenant.backfill(team.backfills["FAILED"])) - {
        "estimated_end_time",
        "transfer_runs_completed",
        "transfer_runs_running",
        "transfer_runs_created",
        "transfer_runs_failed",
    }


def test_final_statuses_are_listed_when_asked_for(team: Team) -> None:
    final = listed(team, status=["COMPLETED", "CANCELLED"])

    assert final == [team.backfills["CANCELLED"], team.backfills["COMPLETED"]]
    assert listed(team, status="CANCELLED") == [team.backfills["CANCELLED"]]


def test_every_status_at_once_lists_all_newest_first(team: Team) -> None:
    everything = listed(
        team, status=["CREATED", "SCHEDULED", "RUNNING", "FAILED", "COMPLETED", "CANCELLED"]
    )

    assert everything == sorted(team.backfills.values(), reverse=True)


def test_a_transfer_filter_keeps_only_its_backfills(team: Team) -> None:
    transfers = team.transfers

    assert listed(team, transfer_id=transfers["FAILED"]) == [team.backfills["FAILED"]]
    assert listed(team, transfer_id=transfers["COMPLETED"]) == [], "incomplete by default"
    assert listed(team, transfer_id=transfers["COMPLETED"], status="COMPLETED") == [
        team.backfills["COMPLETED"]
    ]
    both = listed(team, transfer_id=[transfers["FAILED"], transfers["RUNNING"]])
    assert both == [team.backfills["RUNNING"], team.backfills["FAILED"]]


def test_filters_page_with_limit_and_offset(team: Team) -> None:
    every = ["FAILED", "COMPLETED", "CANCELLED", "RUNNING"]
    newest_first = sorted(team.backfills.values(), reverse=True)

    assert listed(team, status=every, limit=2) == newest_first[:2]
    assert listed(team, status=every, limit=2, offset=2) == newest_first[2:]


def test_another_teams_transfer_lists_nothing(stack: Stack, team: Team) -> None:
    other = new_tenant(stack)
    try:
        response = other.http.get(
            f"/teams/{other.team_id}/backfills",
            params={"transfer_id": team.transfers["FAILED"], "status": INCOMPLETE},
        )
    finally:
        other.http.close()

    assert response.status_code == 200, response.text
    assert response.json()["data"] == []


@pytest.mark.parametrize(
    "params",
    [{"status": "PAUSED"}, {"status": "running"}, {"transfer_id": "x"}, {"transfer_id": 0}],
)
def test_an_unknown_status_or_a_bad_transfer_id_is_a_bad_request(
    team: Team, params: dict[str, Any]
) -> None:
    response = team.tenant.http.get(f"/teams/{team.tenant.team_id}/backfills", params=params)

    assert_error(response, 400, "BAD_REQUEST")
