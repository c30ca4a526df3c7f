"""Who may call what: tokens (401), scopes and roles (403), and team isolation (404)."""

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from persistence import accounts
from persistence.models import Role, Scope
from tests.support import Stack, Tenant, assert_error, bearer, new_tenant

MISSING_ID = 2**31 - 1  # a valid id that no object has


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str  # placeholders: {team}, {transfer}, {backfill}, {run}
    write: bool
    json: dict[str, Any] | None = None
    params: dict[str, Any] | None = None

    @property
    def names_an_object(self) -> bool:
        return any(key in self.path for key in ("{transfer}", "{backfill}", "{run}"))


ENDPOINTS = [
    Endpoint(
        "create backfill",
        "POST",
        "/teams/{team}/transfers/{transfer}/backfills",
        write=True,
        json={"range_start": "2023-06-01", "range_end": "2023-06-01"},
    ),
    Endpoint("list backfills", "GET", "/teams/{team}/backfills", write=False),
    Endpoint("get backfill", "GET", "/teams/{team}/backfills/{backfill}", write=False),
    Endpoint("backfill dates", "GET", "/teams/{team}/backfills/{backfill}/dates", write=False),
    Endpoint(
        "latest backfill",
        "GET",
        "/teams/{team}/transfers/{transfer}/backfills/latest",
        write=False,
    ),
    Endpoint(
        "cancel backfill",
        "PATCH",
        "/teams/{team}/backfills/{backfill}",
        write=True,
        json={"status": "CANCELLED"},
    ),
    Endpoint(
        "dry run backfill",
        "POST",
        "/teams/{team}/transfers/{transfer}/backfills/dry_run",
        write=True,
        json={"range_start": "2023-06-01", "range_end": "2023-06-01"},
    ),
    Endpoint(
        "retry backfill", "POST", "/teams/{team}/backfills/{backfill}/retry", write=True, json={}
    ),
    Endpoint(
        "list runs",
        "GET",
        "/teams/{team}/transfers/{transfer}/runs",
        write=False,
        params={"start_date": "2024-01-01", "end_date": "2024-01-31"},
    ),
    Endpoint("get run", "GET", "/teams/{team}/transfer_runs/{run}", write=False),
    Endpoint(
        "create transfer",
        "POST",
        "/teams/{team}/transfers",
        write=True,
        json={
            "display_name": "not to be created",
            "source": {"type": "demo"},
            "destination": {"type": "sqlite"},
        },
    ),
    Endpoint("list transfers", "GET", "/teams/{team}/transfers", write=False),
    Endpoint("get transfer", "GET", "/teams/{team}/transfers/{transfer}", write=False),
    Endpoint("delete transfer", "DELETE", "/teams/{team}/transfers/{transfer}", write=True),
]
READS = [e for e in ENDPOINTS if not e.write]
WRITES = [e for e in ENDPOINTS if e.write]
OBJECT_ENDPOINTS = [e for e in ENDPOINTS if e.names_an_object]


def _ids(endpoints: list[Endpoint]) -> list[str]:
    return [e.name for e in endpoints]


@dataclass
class World:
    """One team with a transfer, a FAILED (so still incomplete) backfill and its runs.

    Nothing in this module may change it: every request here is refused.
    """

    stack: Stack
    owner: Tenant
    transfer_id: int
    backfill_id: int
    run_id: int

    def url(
        self, endpoint: Endpoint, *, team_id: int | None = None, object_id: int | None = None
    ) -> str:
        return endpoint.path.format(
            team=self.owner.team_id if team_id is None else team_id,
            transfer=object_id or self.transfer_id,
            backfill=object_id or self.backfill_id,
            run=object_id or self.run_id,
        )

    def call(
        self,
        endpoint: Endpoint,
        headers: dict[str, str],
        *,
        team_id: int | None = None,
        object_id: int | None = None,
    ) -> httpx.Response:
        return httpx.request(
            endpoint.method,
            self.stack.api_url + self.url(endpoint, team_id=team_id, object_id=object_id),
            headers=headers,
            json=endpoint.json,
            params=endpoint.params,
            timeout=30,
        )

    def token_for(
        self,
        *,
        role: Role = Role.OWNER,
        scopes: tuple[Scope, ...] = tuple(Scope),
        expires_in_days: float | None = None,
    ) -> str:
        """A token of a (new) member of this team with `role`."""
        db = self.stack.db
        user_id = self.owner.user_id
        if role != Role.OWNER:
            user_id = accounts.create_user(
                db=db,
                email=f"{role}-{os.urandom(6).hex()}@example.com",
                team_id=self.owner.team_id,
                role=role,
            )
        return accounts.create_token(
            db=db, user_id=user_id, scopes=list(scopes), expires_in_days=expires_in_days
        )

    def assert_untouched(self) -> None:
        backfill = self.owner.backfill(self.backfill_id)
        assert backfill["status"] == "FAILED"
        assert backfill["removed_time"] is None
        response = self.owner.http.get(f"/teams/{self.owner.team_id}/transfers")
        assert response.status_code == 200, response.text
        assert [t["transfer_id"] for t in response.json()["data"]] == [self.transfer_id]
        response = self.owner.http.get(f"/teams/{self.owner.team_id}/backfills")
        assert [b["transfer_backfill_id"] for b in response.json()["data"]] == [self.backfill_id]


@pytest.fixture(scope="module")
def world(stack: Stack) -> Iterator[World]:
    owner = new_tenant(stack)
    transfer_id = owner.create_transfer(rows_per_day=3, fail_dates=["2024-01-02"])
    created = owner.create_backfill(transfer_id, "2024-01-01", "2024-01-03")
    backfill_id = created["transfer_backfill_id"]
    owner.wait_until_status(backfill_id, "FAILED", timeout=120)
    run_id = owner.runs(transfer_id)[0]["id"]
    yield World(stack, owner, transfer_id, backfill_id, run_id)
    owner.http.close()


# --- 401: no usable token ---------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_ids(ENDPOINTS))
def test_a_request_without_an_authorization_header_is_unauthorized(
    world: World, endpoint: Endpoint
) -> None:
    assert_error(world.call(endpoint, {}), 401, "UNAUTHORIZED")


@pytest.mark.parametrize(
    "authorization",
    ["Basic dXNlcjpwYXNz", "Token {token}", "{token}", "Bearer"],
    ids=["basic", "token-scheme", "no-scheme", "bearer-without-token"],
)
@pytest.mark.parametrize("endpoint", [READS[0], WRITES[0]], ids=_ids([READS[0], WRITES[0]]))
def test_a_header_that_is_not_a_bearer_token_is_unauthorized(
    world: World, endpoint: Endpoint, authorization: str
) -> None:
    header = {"Authorization": authorization.format(token=world.owner.token)}

    assert_error(world.call(endpoint, header), 401, "UNAUTHORIZED")


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_ids(ENDPOINTS))
def test_an_unknown_token_is_unauthorized(world: World, endpoint: Endpoint) -> None:
    unknown = accounts.TOKEN_PREFIX + "x" * 43

    assert_error(world.call(endpoint, bearer(unknown)), 401, "UNAUTHORIZED")
    world.assert_untouched()


@pytest.mark.parametrize("expires_in_days", [0, -1], ids=["expires-at-issue", "expired-yesterday"])
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_ids(ENDPOINTS))
def test_an_expired_token_is_unauthorized(
    world: World, endpoint: Endpoint, expires_in_days: float
) -> None:
    token = world.token_for(expires_in_days=expires_in_days)

    assert_error(world.call(endpoint, bearer(token)), 401, "UNAUTHORIZED")
    world.assert_untouched()


def test_a_token_that_has_not_expired_yet_is_accepted(world: World) -> None:
    token = world.token_for(expires_in_days=1)

    response = world.call(READS[0], bearer(token))

    assert response.status_code == 200, response.text


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_ids(ENDPOINTS))
def test_a_revoked_token_is_unauthorized(world: World, endpoint: Endpoint) -> None:
    token = world.token_for()
    assert world.call(READS[0], bearer(token)).status_code == 200

    accounts.revoke_token(db=world.stack.db, token=token)

    assert_error(world.call(endpoint, bearer(token)), 401, "UNAUTHORIZED")
    world.assert_untouched()


def test_revoking_one_token_leaves_the_users_other_tokens_working(world: World) -> None:
    kept = world.token_for()
    revoked = world.token_for()

    accounts.revoke_token(db=world.stack.db, token=revoked)

    assert world.call(READS[0], bearer(revoked)).status_code == 401
    assert world.call(READS[0], bearer(kept)).status_code == 200


# --- 403: scopes --------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", READS, ids=_ids(READS))
def test_a_token_without_the_read_scope_is_forbidden_on_reads(
    world: World, endpoint: Endpoint
) -> None:
    token = world.token_for(scopes=(Scope.WRITE,))

    assert_error(world.call(endpoint, bearer(token)), 403, "FORBIDDEN")


@pytest.mark.parametrize("endpoint", WRITES, ids=_ids(WRITES))
def test_a_token_without_the_write_scope_is_forbidden_on_writes(
    world: World, endpoint: Endpoint
) -> None:
    token = world.token_for(scopes=(Scope.READ,))

    assert_error(world.call(endpoint, bearer(token)), 403, "FORBIDDEN")
    world.assert_untouched()


@pytest.mark.parametrize("endpoint", READS, ids=_ids(READS))
def test_a_token_with_only_the_read_scope_can_read(world: World, endpoint: Endpoint) -> None:
    token = world.token_for(scopes=(Scope.READ,))

    response = world.call(endpoint, bearer(token))

    assert response.status_code == 200, response.text


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_ids(ENDPOINTS))
def test_a_token_without_any_scope_is_forbidden(world: World, endpoint: Endpoint) -> None:
    token = world.token_for(scopes=())

    assert_error(world.call(endpoint, bearer(token)), 403, "FORBIDDEN")
    world.assert_untouched()


# --- 403: roles ----------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", READS, ids=_ids(READS))
def test_a_viewer_can_read(world: World, endpoint: Endpoint) -> None:
    token = world.token_for(role=Role.VIEWER)

    response = world.call(endpoint, bearer(token))

    assert response.status_code == 200, response.text
    assert "data" in response.json()


@pytest.mark.parametrize("endpoint", WRITES, ids=_ids(WRITES))
def test_a_viewer_is_forbidden_to_write(world: World, endpoint: Endpoint) -> None:
    token = world.token_for(role=Role.VIEWER)

    assert_error(world.call(endpoint, bearer(token)), 403, "FORBIDDEN")
    world.assert_untouched()


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_ids(ENDPOINTS))
def test_finance_is_forbidden_to_read_and_to_write(world: World, endpoint: Endpoint) -> None:
    token = world.token_for(role=Role.FINANCE)

    assert_error(world.call(endpoint, bearer(token)), 403, "FORBIDDEN")
    world.assert_untouched()


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN, Role.EDITOR])
def test_owners_admins_and_editors_can_read_and_write(stack: Stack, role: Role) -> None:
    tenant = new_tenant(stack, role=role)
    try:
        transfer_id = tenant.create_transfer(rows_per_day=1)
        created = tenant.create_backfill(transfer_id, "2024-02-01", "2024-02-01")
        assert tenant.backfill(created["transfer_backfill_id"])["transfer_id"] == transfer_id
        response = tenant.http.patch(
            f"/teams/{tenant.team_id}/backfills/{created['transfer_backfill_id']}",
            json={"status": "CANCELLED"},
        )
        # Either cancelled now, or it had already completed: both mean the write was allowed.
        assert response.status_code in (200, 422), response.text
        if response.status_code == 422:
            assert response.json()["error"]["code"] == "UNPROCESSABLE_ENTITY"
    finally:
        tenant.http.close()


# --- 403: membership -----------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_ids(ENDPOINTS))
def test_a_caller_who_is_not_a_member_of_the_team_is_forbidden(
    world: World, endpoint: Endpoint
) -> None:
    outsider = new_tenant(world.stack)
    try:
        assert_error(world.call(endpoint, bearer(outsider.token)), 403, "FORBIDDEN")
    finally:
        outsider.http.close()
    world.assert_untouched()


@pytest.mark.parametrize("endpoint", [READS[0], WRITES[-1]], ids=_ids([READS[0], WRITES[-1]]))
def test_a_team_that_does_not_exist_is_forbidden(world: World, endpoint: Endpoint) -> None:
    response = world.call(endpoint, bearer(world.owner.token), team_id=MISSING_ID)

    assert_error(response, 403, "FORBIDDEN")


# --- 404: another team's objects -----------------------------------------------------------


@pytest.mark.parametrize("endpoint", OBJECT_ENDPOINTS, ids=_ids(OBJECT_ENDPOINTS))
def test_another_teams_object_is_not_found_through_the_callers_own_team(
    world: World, endpoint: Endpoint
) -> None:
    other = new_tenant(world.stack)
    try:
        # The other team has objects of its own, so its ids are not simply all missing.
        other.create_transfer(rows_per_day=1)
        headers = bearer(other.token)

        foreign = world.call(endpoint, headers, team_id=other.team_id)
        missing = world.call(endpoint, headers, team_id=other.team_id, object_id=MISSING_ID)
    finally:
        other.http.close()

    assert_error(foreign, 404, "NOT_FOUND")
    # Indistinguishable from an id that does not exist at all.
    assert_error(missing, 404, "NOT_FOUND")
    assert foreign.json()["error"] == missing.json()["error"]
    world.assert_untouched()


def test_another_teams_backfills_and_transfers_are_not_listed(world: World) -> None:
    other = new_tenant(world.stack)
    try:
        team = other.team_id
        backfills = other.http.get(f"/teams/{team}/backfills")
        transfers = other.http.get(f"/teams/{team}/transfers")
    finally:
        other.http.close()

    assert backfills.status_code == 200, backfills.text
    assert backfills.json()["data"] == []
    assert transfers.status_code == 200, transfers.text
    assert transfers.json()["data"] == []


def test_a_member_of_two_teams_sees_each_teams_objects_only_under_that_team(
    world: World,
) -> None:
    """Membership in the owning team does not leak its objects into the caller's other team."""
    db = world.stack.db
    email = f"two-teams-{os.urandom(6).hex()}@example.com"
    own_team = accounts.create_team(db=db, name="own team")
    user_id = accounts.create_user(db=db, email=email, team_id=own_team, role=Role.OWNER)
    accounts.create_user(db=db, email=email, team_id=world.owner.team_id, role=Role.VIEWER)
    headers = bearer(accounts.create_token(db=db, user_id=user_id, scopes=list(Scope)))
    get_backfill = ENDPOINTS[2]

    under_owner = world.call(get_backfill, headers)
    under_own = world.call(get_backfill, headers, team_id=own_team)

    assert under_owner.status_code == 200, under_owner.text
    assert under_owner.json()["data"]["transfer_backfill_id"] == world.backfill_id
    assert_error(under_own, 404, "NOT_FOUND")
