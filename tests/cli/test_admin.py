"""`backfills admin ...` and `backfills migrate`, run as a user runs them, on a fresh database."""

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from persistence import accounts
from persistence.db import Database
from persistence.models import Scope

BACKFILLS = Path(sys.executable).parent / "backfills"


@dataclass
class Cli:
    """The `backfills` command with its own data directory (and so its own SQLite database)."""

    data_dir: Path
    cwd: Path

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.data_dir.resolve() / 'backfills.db'}"

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BACKFILLS_")}
        env.update(BACKFILLS_DATA_DIR=str(self.data_dir), COLUMNS="200", NO_COLOR="1")
        return subprocess.run(
            [str(BACKFILLS), *args],
            env=env,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def ok(self, *args: str) -> dict[str, Any]:
        """Run a command that must succeed; its stdout must be exactly one JSON object."""
        result = self.run(*args)
        assert result.returncode == 0, result.stderr
        payload = json.loads(result.stdout)
        assert isinstance(payload, dict), result.stdout
        assert result.stdout.strip().count("\n") == 0, result.stdout
        return payload

    def team(self, name: str = "acme") -> int:
        team_id = self.ok("admin", "create-team", "--name", name)["team_id"]
        assert isinstance(team_id, int)
        return team_id

    def user(self, team_id: int, email: str = "ada@example.com", role: str = "owner") -> int:
        user_id = self.ok(
            "admin", "create-user", "--email", email, "--team-id", str(team_id), "--role", role
        )["user_id"]
        assert isinstance(user_id, int)
        return user_id

    def token(self, user_id: int, *extra: str) -> str:
        token = self.ok("admin", "create-token", "--user-id", str(user_id), *extra)["token"]
        assert isinstance(token, str) and token
        return token

    def authenticate(self, token: str) -> accounts.Caller | None:
        return accounts.authenticate(db=Database(self.database_url), token=token)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    return Cli(data_dir=tmp_path / "data", cwd=cwd)


def assert_clean_failure(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    assert "Traceback" not in result.stdout, result.stdout
    assert result.stderr.strip(), "the failure should say what is wrong"


def test_create_team_prints_its_id(cli: Cli) -> None:
    payload = cli.ok("admin", "create-team", "--name", "X")

    assert set(payload) == {"team_id"}
    assert isinstance(payload["team_id"], int)


def test_each_team_gets_a_new_id(cli: Cli) -> None:
    assert cli.team("one") != cli.team("two")


def test_create_user_prints_its_id(cli: Cli) -> None:
    team_id = cli.team()

    payload = cli.ok(
        "admin",
        "create-user",
        "--email",
        "ada@example.com",
        "--team-id",
        str(team_id),
        "--role",
        "owner",
    )

    assert set(payload) == {"user_id"}
    assert isinstance(payload["user_id"], int)


def test_create_user_again_with_another_team_adds_a_membership(cli: Cli) -> None:
    first_team, second_team = cli.team("first"), cli.team("second")
    user_id = cli.user(first_team, role="owner")

    again = cli.user(second_team, role="viewer")

    assert again == user_id
    caller = cli.authenticate(cli.token(user_id, "--scope", "dwh_transfers_read"))
    assert caller is not None
    assert caller.roles == {first_team: "owner", second_team: "viewer"}


def test_create_token_with_two_scopes_authenticates(cli: Cli) -> None:
    user_id = cli.user(cli.team())

    payload = cli.ok(
        "admin",
        "create-token",
        "--user-id",
        str(user_id),
        "--scope",
        "dwh_transfers_read",
        "--scope",
        "dwh_transfers_write",
        "--expires-in-days",
        "30",
    )

    assert set(payload) == {"token"}
    caller = cli.authenticate(payload["token"])
    assert caller is not None
    assert caller.user_id == user_id
    assert caller.scopes == {Scope.READ, Scope.WRITE}


def test_create_token_quiet_prints_only_the_token_for_a_shell_variable(cli: Cli) -> None:
    user_id = cli.user(cli.team())

    result = cli.run(
        "admin", "create-token", "--user-id", str(user_id), "--scope", "dwh_transfers_read", "-q"
    )

    assert result.returncode == 0, result.stderr
    token = result.stdout.removesuffix("\n")
    assert token and "\n" not in token and "{" not in token
    caller = cli.authenticate(token)
    assert caller is not None
    assert caller.user_id == user_id


def test_create_token_without_expiry_authenticates(cli: Cli) -> None:
    user_id = cli.user(cli.team())

    caller = cli.authenticate(cli.token(user_id, "--scope", "dwh_transfers_write"))

    assert caller is not None
    assert caller.scopes == {Scope.WRITE}


def test_each_token_is_new(cli: Cli) -> None:
    user_id = cli.user(cli.team())

    first = cli.token(user_id, "--scope", "dwh_transfers_read")
    second = cli.token(user_id, "--scope", "dwh_transfers_read")

    assert first != second


def test_revoke_token_stops_it_authenticating(cli: Cli) -> None:
    user_id = cli.user(cli.team())
    token = cli.token(user_id, "--scope", "dwh_transfers_read", "--expires-in-days", "1")
    other = cli.token(user_id, "--scope", "dwh_transfers_read")
    assert cli.authenticate(token) is not None

    payload = cli.ok("admin", "revoke-token", "--token", token)

    assert payload == {"revoked": True}
    assert cli.authenticate(token) is None
    assert cli.authenticate(other) is not None


def test_create_user_in_an_unknown_team_fails_cleanly(cli: Cli) -> None:
    cli.team()

    result = cli.run(
        "admin",
        "create-user",
        "--email",
        "ada@example.com",
        "--team-id",
        "999",
        "--role",
        "owner",
    )

    assert_clean_failure(result)
    assert "999" in result.stderr


def test_create_user_with_a_bad_role_fails_cleanly(cli: Cli) -> None:
    team_id = cli.team()

    result = cli.run(
        "admin",
        "create-user",
        "--email",
        "ada@example.com",
        "--team-id",
        str(team_id),
        "--role",
        "superuser",
    )

    assert_clean_failure(result)
    assert "--role" in result.stderr


def test_create_token_with_a_bad_scope_fails_cleanly(cli: Cli) -> None:
    user_id = cli.user(cli.team())

    result = cli.run(
        "admin", "create-token", "--user-id", str(user_id), "--scope", "dwh_everything"
    )

    assert_clean_failure(result)
    assert "--scope" in result.stderr


def test_create_token_for_an_unknown_user_fails_cleanly(cli: Cli) -> None:
    cli.team()

    result = cli.run("admin", "create-token", "--user-id", "999", "--scope", "dwh_transfers_read")

    assert_clean_failure(result)
    assert "999" in result.stderr


def test_revoke_an_unknown_token_fails_cleanly(cli: Cli) -> None:
    cli.team()

    result = cli.run("admin", "revoke-token", "--token", "bft_not-a-real-token")

    assert_clean_failure(result)


def test_revoke_a_token_twice_fails_cleanly(cli: Cli) -> None:
    token = cli.token(cli.user(cli.team()), "--scope", "dwh_transfers_read")
    cli.ok("admin", "revoke-token", "--token", token)

    result = cli.run("admin", "revoke-token", "--token", token)

    assert_clean_failure(result)
    assert cli.authenticate(token) is None


def test_migrate_twice_succeeds(cli: Cli) -> None:
    first = cli.run("migrate")
    assert first.returncode == 0, first.stderr

    second = cli.run("migrate")

    assert second.returncode == 0, second.stderr
    assert "Traceback" not in second.stderr
    assert (cli.data_dir / "backfills.db").exists()


def test_migrate_keeps_existing_data(cli: Cli) -> None:
    user_id = cli.user(cli.team())
    token = cli.token(user_id, "--scope", "dwh_transfers_read")

    result = cli.run("migrate")

    assert result.returncode == 0, result.stderr
    assert cli.authenticate(token) is not None
