"""Team secrets: values for the `${NAME}` references in the team's connector options.

Write-only: a value is stored encrypted and never returned; listing shows names only.
"""

from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import DbDep, ReadAccess, SecretBoxDep, TeamId, WriteAccess
from api.envelope import Envelope, error_responses, ok
from api.schemas.secrets import SECRET_NAME, PutSecretRequest, SecretOut
from persistence import secrets

router = APIRouter(prefix="/teams/{team_id}/secrets", tags=["secrets"])

SecretName = Annotated[
    str, Path(pattern=SECRET_NAME, description="The name a connector option uses as ${NAME}")
]


@router.get(
    "",
    operation_id="listSecrets",
    summary="List the team's secrets (names only)",
    responses=error_responses(400, 401, 403, 429, 503),
)
def list_secrets(team_id: TeamId, _: ReadAccess, db: DbDep) -> Envelope[list[SecretOut]]:
    return ok([SecretOut.of(s) for s in secrets.list_secrets(db=db, team_id=team_id)])


@router.get(
    "/{name}",
    operation_id="getSecret",
    summary="One secret's name and history (never its value)",
    responses=error_responses(400, 401, 403, 404, 429, 503),
)
def get_secret(team_id: TeamId, name: SecretName, _: ReadAccess, db: DbDep) -> Envelope[SecretOut]:
    return ok(SecretOut.of(secrets.get_secret(db=db, team_id=team_id, name=name)))


@router.put(
    "/{name}",
    operation_id="putSecret",
    summary="Create a secret or replace its value",
    description="The value is write-only. Runs that start after the answer use the new value.",
    responses=error_responses(400, 401, 403, 429, 503),
)
def put_secret(
    team_id: TeamId,
    name: SecretName,
    body: PutSecretRequest,
    caller: WriteAccess,
    db: DbDep,
    box: SecretBoxDep,
) -> Envelope[SecretOut]:
    secret, _created = secrets.put_secret(
        db=db, box=box, team_id=team_id, name=name, value=body.value, user_id=caller.user_id
    )
    return ok(SecretOut.of(secret))


@router.delete(
    "/{name}",
    operation_id="deleteSecret",
    summary="Delete a secret",
    description="A run that still refers to it afterwards fails at once, naming the reference.",
    responses=error_responses(400, 401, 403, 404, 429, 503),
)
def delete_secret(
    team_id: TeamId, name: SecretName, _: WriteAccess, db: DbDep
) -> Envelope[SecretOut]:
    return ok(SecretOut.of(secrets.delete_secret(db=db, team_id=team_id, name=name)))
