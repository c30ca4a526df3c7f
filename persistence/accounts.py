"""Teams, users, memberships and API tokens."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import col, select

from persistence.clock import as_utc, utcnow
from persistence.db import Database
from persistence.errors import InvalidStateError, NotFoundError
from persistence.models import ApiToken, Membership, Role, Scope, Team, User

TOKEN_PREFIX = "bft_"

VIEW = "dwh.transfer.view"
EDIT = "dwh.transfer.edit"
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    Role.OWNER: frozenset({VIEW, EDIT}),
    Role.ADMIN: frozenset({VIEW, EDIT}),
    Role.EDITOR: frozenset({VIEW, EDIT}),
    Role.VIEWER: frozenset({VIEW}),
    Role.FINANCE: frozenset(),
}


@dataclass(frozen=True)
class Caller:
    """Who is calling: resolved from a valid token."""

    user_id: int
    scopes: frozenset[str]
    roles: dict[int, str]  # team_id -> role

    def has_permission(self, team_id: int, permission: str) -> bool:
        role = self.roles.get(team_id)
        return role is not None and permission in ROLE_PERMISSIONS.get(role, frozenset())


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_team(*, db: Database, name: str) -> int:
    with db.write() as session:
        team = Team(name=name, created_time=utcnow())
        session.add(team)
        session.flush()
        assert team.id is not None
        return team.id


def create_user(*, db: Database, email: str, team_id: int, role: Role) -> int:
    """Create the user, or find it by email, and give it `role` in `team_id`."""
    with db.write() as session:
        if session.get(Team, team_id) is None:
            raise NotFoundError(f"team {team_id} does not exist")
        user = session.exec(select(User).where(User.email == email)).first()
        if user is None:
            user = User(email=email, created_time=utcnow())
            session.add(user)
            session.flush()
        assert user.id is not None
        membership = session.get(Membership, (user.id, team_id))
        if membership is None:
            session.add(Membership(user_id=user.id, team_id=team_id, role=role))
        else:
            membership.role = role
        return user.id


def create_token(
    *, db: Database, user_id: int, scopes: list[Scope], expires_in_days: float | None = None
) -> str:
    """Issue a token; only its hash is stored, so the returned secret is shown once."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    expires = now + timedelta(days=expires_in_days) if expires_in_days is not None else None
    with db.write() as session:
        if session.get(User, user_id) is None:
            raise NotFoundError(f"user {user_id} does not exist")
        session.add(
            ApiToken(
                user_id=user_id,
                token_hash=hash_token(token),
                scopes=" ".join(sorted({str(s) for s in scopes})),
                created_time=now,
                expires_time=expires,
            )
        )
    return token


def revoke_token(*, db: Database, token: str) -> None:
    with db.write() as session:
        row = session.exec(select(ApiToken).where(ApiToken.token_hash == hash_token(token))).first()
        if row is None:
            raise NotFoundError("no such token")
        if row.revoked_time is not None:
            raise InvalidStateError("token is already revoked")
        row.revoked_time = utcnow()


def authenticate(*, db: Database, token: str) -> Caller | None:
    """The caller behind a token, or None when it is unknown, expired or revoked.

    The token is looked up by its SHA-256 digest, so no comparison ever runs on the secret.
    """
    return authenticate_digest(db=db, digest=hash_token(token))


def authenticate_digest(*, db: Database, digest: str) -> Caller | None:
    """`authenticate` for a token already hashed with `hash_token` (the API hashes it once)."""
    with db.read() as session:  # one statement: every request pays for this one
        found = session.exec(
            select(ApiToken, Membership)
            .outerjoin(Membership, col(Membership.user_id) == col(ApiToken.user_id))
            .where(ApiToken.token_hash == digest)
        ).all()
    if not found:
        return None
    row = found[0][0]
    if row.revoked_time is not None:
        return None
    if row.expires_time is not None and as_utc(row.expires_time) <= utcnow():
        return None
    return Caller(
        user_id=row.user_id,
        scopes=frozenset(row.scopes.split()),
        roles={m.team_id: m.role for _, m in found if m is not None},
    )


@dataclass(frozen=True)
class TeamMembership:
    team_id: int
    team_name: str
    role: str


@dataclass(frozen=True)
class Profile:
    """A user as they see themselves: their email and every team they belong to."""

    user_id: int
    email: str
    teams: list[TeamMembership]


def user_profile(*, db: Database, user_id: int) -> Profile:
    """The user's email and memberships, by team id; NotFoundError if the user is gone."""
    with db.read() as session:
        user = session.get(User, user_id)
        if user is None:
            raise NotFoundError(f"user {user_id} does not exist")
        rows = session.exec(
            select(Membership, Team)
            .where(Membership.user_id == user_id, Membership.team_id == Team.id)
            .order_by(col(Membership.team_id))
        )
        teams = [TeamMembership(m.team_id, t.name, m.role) for m, t in rows]
        return Profile(user_id=user_id, email=user.email, teams=teams)
