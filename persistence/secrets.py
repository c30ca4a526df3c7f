"""Team secrets: write-only values for the `${NAME}` references of a team's connectors."""

from collections.abc import Iterable

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from persistence.clock import utcnow
from persistence.db import Database
from persistence.errors import NotFoundError
from persistence.models import TeamSecret
from persistence.secret_box import SecretBox


def put_secret(
    *, db: Database, box: SecretBox, team_id: int, name: str, value: str, user_id: int
) -> tuple[TeamSecret, bool]:
    """Create the team's secret `name`, or replace its value; True when it was created."""
    ciphertext = box.seal(team_id=team_id, name=name, value=value)
    for _ in range(2):  # a create racing another create of the same name replaces it
        try:
            return _put(db, team_id, name, ciphertext, user_id)
        except IntegrityError:
            continue
    return _put(db, team_id, name, ciphertext, user_id)


def _put(
    db: Database, team_id: int, name: str, ciphertext: str, user_id: int
) -> tuple[TeamSecret, bool]:
    now = utcnow()
    with db.write() as session:
        secret = session.exec(_of(team_id, name)).first()
        created = secret is None
        if secret is None:
            secret = TeamSecret(
                team_id=team_id,
                name=name,
                ciphertext=ciphertext,
                created_time=now,
                created_user_id=user_id,
                updated_time=now,
                updated_user_id=user_id,
            )
        else:
            secret.ciphertext = ciphertext
            secret.updated_time = now
            secret.updated_user_id = user_id
        session.add(secret)
        session.flush()
        return secret, created


def list_secrets(*, db: Database, team_id: int) -> list[TeamSecret]:
    with db.read() as session:
        query = select(TeamSecret).where(TeamSecret.team_id == team_id)
        return list(session.exec(query.order_by(col(TeamSecret.name))))


def get_secret(*, db: Database, team_id: int, name: str) -> TeamSecret:
    with db.read() as session:
        secret = session.exec(_of(team_id, name)).first()
    if secret is None:
        raise NotFoundError("secret not found")
    return secret


def delete_secret(*, db: Database, team_id: int, name: str) -> TeamSecret:
    with db.write() as session:
        secret = session.exec(_of(team_id, name)).first()
        if secret is None:
            raise NotFoundError("secret not found")
        session.delete(secret)
        return secret


def secret_values(
    *, db: Database, box: SecretBox, team_id: int, names: Iterable[str]
) -> dict[str, str]:
    """The decrypted values of those of `names` the team has; a name it lacks is absent.

    Raises UndecryptableSecret when a stored value does not open with the configured keys.
    """
    wanted = sorted(set(names))
    if not wanted:
        return {}
    with db.read() as session:
        rows = session.exec(
            select(TeamSecret).where(
                TeamSecret.team_id == team_id, col(TeamSecret.name).in_(wanted)
            )
        ).all()
    return {
        row.name: box.open(team_id=team_id, name=row.name, ciphertext=row.ciphertext)
        for row in rows
    }


def _of(team_id: int, name: str) -> SelectOfScalar[TeamSecret]:
    return select(TeamSecret).where(TeamSecret.team_id == team_id, TeamSecret.name == name)
