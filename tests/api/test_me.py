"""`GET /v1/me`: the token's own user, scopes and teams (with the role in each), and nothing
of anyone else's."""

import httpx

from persistence import accounts
from persistence.models import Role, Scope
from tests.support import Stack, Tenant, assert_error, bearer, new_tenant


def me(stack: Stack, token: str) -> httpx.Response:
    return httpx.get(f"{stack.api_url}/me", headers=bearer(token), timeout=30)


def test_me_names_the_user_its_scopes_and_its_team_with_the_role(tenant: Tenant) -> None:
    response = me(tenant.stack, tenant.token)

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["user_id"] == tenant.user_id
    assert data["email"].endswith("@example.com")
    assert data["scopes"] == ["dwh_transfers_read", "dwh_transfers_write"]
    assert data["teams"] == [
        {
            "team_id": tenant.team_id,
            "name": "team",
            "role": "owner",
            "permissions": ["dwh.transfer.edit", "dwh.transfer.view"],
        }
    ]


def test_a_read_only_viewer_in_a_second_team_sees_both_roles_and_one_scope(
    stack: Stack, tenant: Tenant
) -> None:
    db = stack.db
    email = f"two-teams-{tenant.user_id}@example.com"
    other_team = accounts.create_team(db=db, name="<b>other</b>")
    user_id = accounts.create_user(db=db, email=email, team_id=tenant.team_id, role=Role.VIEWER)
    accounts.create_user(db=db, email=email, team_id=other_team, role=Role.EDITOR)
    token = accounts.create_token(db=db, user_id=user_id, scopes=[Scope.READ])

    data = me(stack, token).json()["data"]

    assert data["scopes"] == ["dwh_transfers_read"]
    assert [(t["team_id"], t["name"], t["role"], t["permissions"]) for t in data["teams"]] == [
        (tenant.team_id, "team", "viewer", ["dwh.transfer.view"]),
        (other_team, "<b>other</b>", "editor", ["dwh.transfer.edit", "dwh.transfer.view"]),
    ]


def test_me_tells_nothing_of_other_users(stack: Stack, tenant: Tenant) -> None:
    stranger = new_tenant(stack)
    try:
        data = me(stack, stranger.token).json()["data"]
    finally:
        stranger.http.close()

    assert data["user_id"] == stranger.user_id
    assert [t["team_id"] for t in data["teams"]] == [stranger.team_id]


def test_a_token_without_scopes_still_learns_it_has_none(stack: Stack, tenant: Tenant) -> None:
    token = accounts.create_token(db=stack.db, user_id=tenant.user_id, scopes=[])

    data = me(stack, token).json()["data"]

    assert data["scopes"] == []


def test_me_without_a_valid_token_is_unauthorized(stack: Stack, tenant: Tenant) -> None:
    assert_error(httpx.get(f"{stack.api_url}/me", timeout=30), 401, "UNAUTHORIZED")
    assert_error(me(stack, "bft_not-a-token"), 401, "UNAUTHORIZED")
    accounts.revoke_token(db=stack.db, token=tenant.token)
    assert_error(me(stack, tenant.token), 401, "UNAUTHORIZED")
