"""Dependencies of the routes, as `Annotated` aliases.

The ones without I/O are `async def`, so FastAPI runs them on the event loop instead of
sending each to the thread pool; the token lookup does I/O and stays a plain `def`.

The database blocks, so it reaches a route in one of two ways: a plain `def` route takes
`DbDep` (FastAPI runs the route in its thread pool), an `async def` route takes
`AsyncDbDep`, whose `run` sends each database step to the thread pool. An async route never
holds the `Database` itself (tests/api/test_event_loop.py checks both).
"""

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Header, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from api.errors import forbidden, too_many_requests, unauthorized
from api.rate_limit import RateLimiter
from api.schemas.common import MAX_INT
from api.temporal import TemporalConnection
from config import Settings
from persistence import accounts
from persistence.accounts import Caller
from persistence.db import Database
from persistence.models import Scope
from persistence.secret_box import SecretBox

MAX_ID = MAX_INT  # ids are 32-bit integers in the database
T = TypeVar("T")


class AsyncDatabase:
    """The service database for `async def` routes: `await database.run(step)` calls
    `step(db)` in the thread pool, so the event loop goes on answering meanwhile."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def run(self, step: Callable[[Database], T]) -> T:
        return await run_in_threadpool(step, self._db)

    @property
    def blocking(self) -> Database:
        """The database itself, for code that sends its own steps to threads (such as
        temporal_schedules.sync); never to be called on the event loop directly."""
        return self._db


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def _async_db(request: Request) -> AsyncDatabase:
    return AsyncDatabase(request.app.state.db)


async def _secret_box(request: Request) -> SecretBox:
    box: SecretBox = request.app.state.secret_box
    return box


async def _temporal(request: Request) -> Client:
    return await request.app.state.temporal.client()


async def _temporal_connection(request: Request) -> TemporalConnection:
    connection: TemporalConnection = request.app.state.temporal
    return connection


SettingsDep = Annotated[Settings, Depends(_settings)]
DbDep = Annotated[Database, Depends(_db)]
AsyncDbDep = Annotated[AsyncDatabase, Depends(_async_db)]
TemporalDep = Annotated[Client, Depends(_temporal)]
# for a route that needs Temporal only sometimes (a transfer's schedule): `await .client()`
TemporalConnectionDep = Annotated[TemporalConnection, Depends(_temporal_connection)]
SecretBoxDep = Annotated[SecretBox, Depends(_secret_box)]

_bearer = HTTPBearer(auto_error=False, description="An API token: `Authorization: Bearer <token>`")


def _caller(
    request: Request,
    db: DbDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """The caller behind the bearer token, with both rate limits applied before the lookup.

    An address that has used up its budget of failed authentications gets 429 before its
    token is even hashed: a spray of missing, random or stale tokens costs no database
    lookup past that budget. (Requests running concurrently may each pass the check before
    any of them spends, so a burst can overshoot by up to the thread pool's size.) Every
    failure spends one from the address's budget; a valid token's requests spend nothing
    from it, but while the address is blocked they are refused too, since telling them
    apart would take the lookup. Then the token's own limit, keyed by its digest, and only
    then the lookup, by that same digest.
    """
    failures: RateLimiter = request.app.state.auth_failure_limiter
    address = request.client.host if request.client is not None else ""
    wait = failures.blocked_for(address)
    if wait is not None:
        raise too_many_requests(wait)
    if credentials is None or not credentials.credentials:
        failures.spend(address)
        raise unauthorized()
    digest = accounts.hash_token(credentials.credentials)
    limiter: RateLimiter = request.app.state.rate_limiter
    wait = limiter.retry_after(digest)
    if wait is not None:
        raise too_many_requests(wait)
    caller = accounts.authenticate_digest(db=db, digest=digest)
    if caller is None:
        failures.spend(address)
        raise unauthorized("the token is unknown, expired or revoked")
    return caller


CallerDep = Annotated[Caller, Depends(_caller)]

TeamId = Annotated[int, Path(ge=1, le=MAX_ID, description="The team's id")]
TransferId = Annotated[int, Path(ge=1, le=MAX_ID, description="The transfer's id")]
BackfillId = Annotated[int, Path(ge=1, le=MAX_ID, description="The backfill's id")]
TransferRunId = Annotated[int, Path(ge=1, le=MAX_ID, description="The transfer run's id")]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[!-~]+$",
        description="Makes a create safe to retry: the same key with the same body within "
        "24 h answers the backfill the first request made (200, header "
        "`Idempotent-Replayed: true`), even from another API process; with another body, "
        "422. Keys belong to the team. 1 to 255 visible ASCII characters (a UUID, say).",
    ),
]


def _authorize(caller: Caller, team_id: int, scope: Scope, permission: str) -> Caller:
    if scope not in caller.scopes:
        raise forbidden(f"the token lacks the scope {scope}")
    if not caller.has_permission(team_id, permission):
        raise forbidden(f"the caller lacks the permission {permission} in team {team_id}")
    return caller


async def _read_access(team_id: TeamId, caller: CallerDep) -> Caller:
    return _authorize(caller, team_id, Scope.READ, accounts.VIEW)


async def _write_access(team_id: TeamId, caller: CallerDep) -> Caller:
    return _authorize(caller, team_id, Scope.WRITE, accounts.EDIT)


ReadAccess = Annotated[Caller, Depends(_read_access)]
WriteAccess = Annotated[Caller, Depends(_write_access)]
