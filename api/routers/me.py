"""`GET /v1/me`: the token's user, its scopes and its teams, so a client (the console) knows
which teams to show and whether to offer writes, before it makes a call that would be refused.
Any valid token may ask: it tells the caller only about itself."""

from fastapi import APIRouter

from api.deps import CallerDep, DbDep
from api.envelope import Envelope, error_responses, ok
from api.schemas.me import MeOut
from persistence import accounts

router = APIRouter(tags=["me"])


@router.get(
    "/me",
    operation_id="getMe",
    summary="Who the token speaks for: its user, scopes and teams with the role in each",
    responses=error_responses(401, 429, 503),
)
def get_me(caller: CallerDep, db: DbDep) -> Envelope[MeOut]:
    return ok(MeOut.of(caller, accounts.user_profile(db=db, user_id=caller.user_id)))
