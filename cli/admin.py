"""`backfills admin ...`: teams, users and tokens; each prints one JSON object on stdout."""

import json
from typing import Annotated

import typer

from config import get_settings
from persistence import accounts
from persistence.db import Database
from persistence.errors import PersistenceError
from persistence.models import Role, Scope

admin = typer.Typer(help="Administer teams, users and API tokens.", no_args_is_help=True)


def _db() -> Database:
    from persistence.migrate import upgrade  # alembic: only for the command that needs it

    url = get_settings().resolved_database_url
    upgrade(url)
    return Database(url)


def _emit(payload: dict[str, object]) -> None:
    typer.echo(json.dumps(payload))


def _fail(error: PersistenceError) -> None:
    typer.echo(json.dumps({"error": str(error)}), err=True)
    raise typer.Exit(1)


@admin.command("create-team")
def create_team(name: Annotated[str, typer.Option("--name")]) -> None:
    _emit({"team_id": accounts.create_team(db=_db(), name=name)})


@admin.command("create-user")
def create_user(
    email: Annotated[str, typer.Option("--email")],
    team_id: Annotated[int, typer.Option("--team-id")],
    role: Annotated[Role, typer.Option("--role")],
) -> None:
    """Create a user in a team; again with another team adds a membership."""
    try:
        _emit({"user_id": accounts.create_user(db=_db(), email=email, team_id=team_id, role=role)})
    except PersistenceError as error:
        _fail(error)


@admin.command("create-token")
def create_token(
    user_id: Annotated[int, typer.Option("--user-id")],
    scope: Annotated[list[Scope], typer.Option("--scope")],
    expires_in_days: Annotated[float | None, typer.Option("--expires-in-days", min=0)] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only the token, for TOKEN=$(...).")
    ] = False,
) -> None:
    """Issue an API token; it is shown once and stored only as a hash."""
    try:
        token = accounts.create_token(
            db=_db(), user_id=user_id, scopes=scope, expires_in_days=expires_in_days
        )
    except PersistenceError as error:
        _fail(error)
    if quiet:
        typer.echo(token)
        return
    _emit({"token": token})


@admin.command("revoke-token")
def revoke_token(token: Annotated[str, typer.Option("--token")]) -> None:
    try:
        accounts.revoke_token(db=_db(), token=token)
    except PersistenceError as error:
        _fail(error)
    _emit({"revoked": True})
