"""Where a team's embedded warehouse lives: its own directory under the data directory.

`<data dir>/teams/<team id>/`. Every SQLite file a connector of the team opens (the `sqlite`
destination, a `sqlite:` URL of the `sql` source) is resolved inside it, symbolic links
included, so no name a team can write reaches the service database, Temporal's database,
another team's directory or any other file of the machine.
"""

from pathlib import Path, PurePosixPath

from connectors.errors import PermanentError

TEAMS_DIR = "teams"
DEFAULT_FILE = "warehouse.db"


def team_dir(data_dir: Path, team_id: int) -> Path:
    return data_dir.resolve() / TEAMS_DIR / str(team_id)


def check_relative_name(value: str) -> str:
    """A file name as a team writes it: relative, no `..`, no empty or odd parts."""
    path = PurePosixPath(value)
    if (
        not value
        or "\\" in value
        or "\0" in value
        or path.is_absolute()
        or any(part in ("..", "") for part in path.parts)
        or value.startswith("~")
    ):
        raise ValueError("must be a relative path inside the team's directory, without '..'")
    return value


def file_in(directory: Path, name: str) -> Path:
    """`name` inside `directory`, refusing anything that resolves outside it (a link)."""
    try:
        check_relative_name(name)
    except ValueError as exc:
        raise PermanentError(f"{name!r} {exc}") from None
    directory = directory.resolve()
    path = (directory / name).resolve()
    if not path.is_relative_to(directory) or path == directory:
        raise PermanentError(f"{name!r} is outside the team's directory")
    return path
