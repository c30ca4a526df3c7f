"""Transfer schedules over the API, against the real stack: each scheduled transfer is one
Temporal Schedule `transfer-<id>` that says what the record says (spec, pause, none once
removed or deleted), firings make `Recurring` runs, and bad changes change nothing."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from temporalio.client import (
    Client,
    ScheduleActionStartWorkflow,
    ScheduleDescription,
    ScheduleOverlapPolicy,
)
from temporalio.service import RPCError, RPCStatusCode

from persistence import accounts, schedules
from persistence.models import Role, Scope
from persistence.schedules import ScheduleChange
from tests.support import Stack, Tenant, assert_error, new_tenant, wait_for, wait_for_async
from workflows import search_attributes
from workflows.recurring import RECURRING_RUN_WORKFLOW

DAILY = {"cron": "0 2 * * *", "time_zone": "Europe/Berlin"}


def create(tenant: Tenant, schedule: dict[str, Any] | None, **source: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "display_name": "scheduled",
        "source": {"type": "demo", **source},
        "destination": {"type": "sqlite"},
    }
    if schedule is not None:
        body["schedule"] = schedule
    response = tenant.http.post(f"/teams/{tenant.team_id}/transfers", json=body)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def patch(tenant: Tenant, transfer_id: int, body: dict[str, Any]) -> dict[str, Any]:
    response = tenant.http.patch(f"/teams/{tenant.team_id}/transfers/{transfer_id}", json=body)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def get(tenant: Tenant, transfer_id: int) -> dict[str, Any]:
    response = tenant.http.get(f"/teams/{tenant.team_id}/transfers/{transfer_id}")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def in_temporal(client: Client, transfer_id: int) -> ScheduleDescription | None:
    try:
        return await client.get_schedule_handle(f"transfer-{transfer_id}").describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


async def test_a_transfer_created_with_a_schedule_has_its_temporal_schedule(
    tenant: Tenant, temporal_client: Client
) -> None:
    transfer = create(tenant, DAILY)
    transfer_id = transfer["transfer_id"]

    assert transfer["schedule"] == {
        "cron": "0 2 * * *",
        "every": None,
        "hour": 0,
        "minute": 0,
        "interval_seconds": None,
        "time_zone": "Europe/Berlin",
        "data_date_offset_days": 1,
    }
    state = transfer["schedule_state"]
    assert state["schedule_id"] == f"transfer-{transfer_id}"
    assert (state["paused"], state["applied"]) == (False, True)
    firings = [datetime.fromisoformat(moment) for moment in state["next_firings"]]
    assert len(firings) == 5 and firings == sorted(firings)
    assert firings[0] > datetime.now(UTC)
    assert {firing.hour for firing in firings} <= {0, 1}  # 02:00 in Berlin, in UTC

    described = await in_temporal(temporal_client, transfer_id)
    assert described is not None
    assert [m.isoformat() for m in described.info.next_action_times[:5]] == [
        f.isoformat() for f in firings
    ]
    assert described.schedule.policy.overlap == ScheduleOverlapPolicy.BUFFER_ALL
    assert described.schedule.policy.catchup_window == timedelta(days=1)
    action = described.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert action.workflow == RECURRING_RUN_WORKFLOW
    assert action.task_queue.endswith("-recurring")
    attributes = action.typed_search_attributes
    assert attributes.get(search_attributes.RUN_TYPE) == "Recurring"
    assert attributes.get(search_attributes.TRANSFER_ID) == transfer_id
    assert attributes.get(search_attributes.TEAM_ID) == tenant.team_id


async def test_pause_resume_replace_and_remove_take_effect_in_temporal(
    tenant: Tenant, temporal_client: Client
) -> None:
    transfer_id = create(tenant, DAILY)["transfer_id"]

    paused = patch(
        tenant, transfer_id, {"schedule_paused": True, "schedule_paused_reason": "migration"}
    )
    state = paused["schedule_state"]
    assert (state["paused"], state["paused_reason"], state["next_firings"]) == (
        True,
        "migration",
        [],
    )
    assert state["paused_time"] is not None
    described = await in_temporal(temporal_client, transfer_id)
    assert described is not None
    assert (described.schedule.state.paused, described.schedule.state.note) == (True, "migration")

    replaced = patch(tenant, transfer_id, {"schedule": {"every": "hourly", "minute": 15}})
    assert replaced["schedule"]["every"] == "hourly"
    assert replaced["schedule_state"]["paused"] is True  # a new spec keeps the pause
    described = await in_temporal(temporal_client, transfer_id)
    assert described is not None and described.schedule.state.paused
    assert [c.minute[0].start for c in described.schedule.spec.calendars] == [15]

    resumed = patch(tenant, transfer_id, {"schedule_paused": False})
    state = resumed["schedule_state"]
    assert (state["paused"], state["paused_reason"], state["paused_time"]) == (False, None, None)
    assert {datetime.fromisoformat(m).minute for m in state["next_firings"]} == {15}
    described = await in_temporal(temporal_client, transfer_id)
    assert described is not None and not described.schedule.state.paused

    removed = patch(tenant, transfer_id, {"schedule": None})
    assert (removed["schedule"], removed["schedule_state"]) == (None, None)
    assert await in_temporal(temporal_client, transfer_id) is None


async def test_deleting_a_scheduled_transfer_deletes_its_schedule(
    tenant: Tenant, temporal_client: Client
) -> None:
    transfer_id = create(tenant, DAILY)["transfer_id"]
    assert await in_temporal(temporal_client, transfer_id) is not None

    response = tenant.http.delete(f"/teams/{tenant.team_id}/transfers/{transfer_id}")

    assert response.status_code == 200, response.text
    assert await in_temporal(temporal_client, transfer_id) is None


def test_a_schedule_firing_every_few_seconds_makes_recurring_runs_of_the_day_before(
    tenant: Tenant,
) -> None:
    transfer = create(tenant, {"interval_seconds": 2}, rows_per_day=3)
    transfer_id = transfer["transfer_id"]

    def two_completed() -> list[dict[str, Any]] | None:
        done = [r for r in tenant.runs(transfer_id) if r["status"] == "COMPLETED"]
        return done if len(done) >= 2 else None

    try:
        completed = wait_for(two_completed, timeout=60)
    finally:
        patch(tenant, transfer_id, {"schedule": None})
    for run in completed:
        assert run["type"] == "Recurring"
        assert run["total_rows"] == 3
        started = datetime.fromisoformat(run["created_time"])
        # each loads the day before its firing (UTC); a firing just past midnight may be
        # recorded a moment later, on the next day
        assert run["data_date"] in {
            (started - timedelta(days=1)).date().isoformat(),
            (started - timedelta(days=1, seconds=30)).date().isoformat(),
        }


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({}, 400, "give `schedule`"),
        ({"schedule": {"cron": "0 25 * * *"}}, 422, "hour '25' is outside 0..23"),
        ({"schedule": {"cron": "0 2 * * *", "time_zone": "../etc"}}, 422, "not a time zone"),
        ({"schedule": {"every": "daily", "cron": "0 2 * * *"}}, 422, "exactly one of"),
        ({"schedule": {"every": "weekly"}}, 422, "every: Input should be 'daily' or 'hourly'"),
        ({"schedule_paused": None}, 400, "true or false"),
        ({"schedule_paused_reason": "x"}, 400, "give `schedule`"),
        ({"schedule_paused": False, "schedule_paused_reason": "x"}, 400, "goes with"),
        ({"display_name": "new"}, 400, "display_name"),
        ({"schedule": {"interval_seconds": 1}}, 422, "at least 2"),
        ({"schedule": {"cron": "0 2 * * *", "start": "now"}}, 422, "start: Extra inputs"),
        ({"schedule_paused": True}, 422, "no schedule to pause"),
    ],
)
def test_a_bad_change_is_refused_and_changes_nothing(
    tenant: Tenant, body: dict[str, Any], status: int, says: str
) -> None:
    transfer_id = tenant.create_transfer()
    before = get(tenant, transfer_id)

    response = tenant.http.patch(f"/teams/{tenant.team_id}/transfers/{transfer_id}", json=body)

    error = assert_error(
        response, status, "BAD_REQUEST" if status == 400 else "UNPROCESSABLE_ENTITY"
    )
    assert says in f"{error['message']} {error.get('description')}", error
    assert get(tenant, transfer_id) == before


@pytest.mark.parametrize(
    ("role", "scopes"),
    [
        pytest.param(Role.VIEWER, tuple(Scope), id="viewer"),
        pytest.param(Role.OWNER, (Scope.READ,), id="read-scope-only"),
    ],
)
def test_a_schedule_change_needs_the_write_scope_and_the_edit_permission(
    stack: Stack, tenant: Tenant, role: Role, scopes: tuple[Scope, ...]
) -> None:
    transfer_id = tenant.create_transfer()
    user_id = tenant.user_id
    if role != Role.OWNER:
        user_id = accounts.create_user(
            db=stack.db,
            email=f"{role}-{transfer_id}-{tenant.team_id}@example.com",
            team_id=tenant.team_id,
            role=role,
        )
    token = accounts.create_token(db=stack.db, user_id=user_id, scopes=list(scopes))
    url = f"{stack.api_url}/teams/{tenant.team_id}/transfers/{transfer_id}"

    response = httpx.patch(
        url, json={"schedule": DAILY}, headers={"Authorization": f"Bearer {token}"}
    )

    assert_error(response, 403, "FORBIDDEN")
    assert get(tenant, transfer_id)["schedule"] is None


def test_another_teams_transfer_is_not_found(stack: Stack, tenant: Tenant) -> None:
    transfer_id = tenant.create_transfer()
    stranger = new_tenant(stack)
    try:
        response = stranger.http.patch(
            f"/teams/{stranger.team_id}/transfers/{transfer_id}", json={"schedule": DAILY}
        )
    finally:
        stranger.http.close()
    assert_error(response, 404, "NOT_FOUND")
    assert get(tenant, transfer_id)["schedule"] is None


async def test_the_reconciler_makes_a_schedule_temporal_lost_again(
    tenant: Tenant, temporal_client: Client
) -> None:
    transfer_id = create(tenant, DAILY)["transfer_id"]
    await temporal_client.get_schedule_handle(f"transfer-{transfer_id}").delete()

    async def remade() -> ScheduleDescription | None:
        return await in_temporal(temporal_client, transfer_id)

    described = await wait_for_async(remade, within=30)
    assert described.schedule.spec.time_zone_name == "Europe/Berlin"


async def test_a_change_committed_before_a_crash_reaches_temporal_by_the_reconciler(
    stack: Stack, tenant: Tenant, temporal_client: Client
) -> None:
    transfer_id = create(tenant, DAILY)["transfer_id"]
    # the API committed the pause and died before telling Temporal
    schedules.change_schedule(
        db=stack.db,
        team_id=tenant.team_id,
        transfer_id=transfer_id,
        change=ScheduleChange(paused=True, paused_reason="committed, then the API died"),
    )

    async def paused_in_temporal() -> bool:
        described = await in_temporal(temporal_client, transfer_id)
        return described is not None and described.schedule.state.paused

    await wait_for_async(paused_in_temporal, within=30)
    wait_for(lambda: get(tenant, transfer_id)["schedule_state"]["applied"], timeout=10)


async def test_an_operators_pause_in_the_temporal_ui_is_taken_into_the_record(
    tenant: Tenant, temporal_client: Client
) -> None:
    transfer_id = create(tenant, DAILY)["transfer_id"]
    handle = temporal_client.get_schedule_handle(f"transfer-{transfer_id}")

    await handle.pause(note="ops: warehouse maintenance")

    def paused_on_record() -> dict[str, Any] | None:
        state: dict[str, Any] = get(tenant, transfer_id)["schedule_state"]
        return state if state["paused"] else None

    state = wait_for(paused_on_record, timeout=30)
    assert state["paused_reason"] == "ops: warehouse maintenance"
    assert state["next_firings"] == []

    await handle.unpause(note="ops: done")
    wait_for(lambda: not get(tenant, transfer_id)["schedule_state"]["paused"], timeout=30)
    described = await in_temporal(temporal_client, transfer_id)
    assert described is not None and not described.schedule.state.paused  # nobody undid it
