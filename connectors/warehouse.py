"""Where a team's embedded warehouse lives: its own directory under the data directory.

`<data dir>/teams/<team id>/`. Every SQLite file a connector of the team opens (the `sqlite`
destination, a `sqlite:` URL of the `sql` source) is resolved inside it, symbolic links
included, so no name a team can write reaches the service database, Temporal's database,
another team's directory or any other file of the machine.
"""

import re
import sqlite3
from pathlib import Path, PurePosixPath

from sqlalchemy.engine import URL

from connectors.errors import PermanentError

TEAMS_DIR = "teams"
DEFAULT_FILE = "warehouse.db"


def team_dir(data_dir: Path, team_id: int) -> Path:
    return data_dir.resolve() / TEAMS_DIR / str(team_id)


_NAME_CHARACTERS = re.compile(r"[A-Za-z0-9._/ -]+")


def check_relative_name(value: str) -> str:
    """A file name as a team writes it: relative, no `..`, no empty parts, and only letters,
    digits, `.`, `_`, `-`, space and `/` (so no character means anything to a URL or URI)."""
    path = PurePosixPath(value)
    if (
        not _NAME_CHARACTERS.fullmatch(value)
        or path.is_absolute()
        or not path.parts
        or any(part in ("..", "") for part in path.parts)
    ):
        raise ValueError(
            "must be a relative path inside the team's directory, without '..', of letters, "
            "digits, '.', '_', '-', ' ' and '/'"
        )
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


SQLITE_URL_PARAMETERS = frozenset({"timeout"})


def check_sqlite_url(url: URL) -> None:
    """A team's `sqlite:` URL: `sqlite:///name.db` with a relative name, or `sqlite://` (in
    memory), and no parameter beyond `timeout` (`uri=true` would make the name a `file:`
    URI with options of its own). Raises ValueError saying what is wrong."""
    if forbidden := sorted(set(url.query) - SQLITE_URL_PARAMETERS):
        raise ValueError(
            f"a sqlite: URL takes no parameter {', '.join(forbidden)} (only timeout=SECONDS)"
        )
    if url.database not in (None, "", ":memory:"):
        try:
            check_relative_name(url.database)
        except ValueError:
            raise ValueError(
                "a sqlite: URL names a file in the team's directory, as sqlite:///name.db "
                "(a relative path, without '..')"
            ) from None


def confine_sqlite_url(url: URL, directory: Path) -> URL:
    """A team's `sqlite:` URL (see `check_sqlite_url`), its file resolved inside the team's
    directory, links included; PermanentError for one that is not the team's."""
    try:
        check_sqlite_url(url)
    except ValueError as exc:
        raise PermanentError(str(exc)) from None
    if url.database in (None, "", ":memory:"):
        return url
    return url.set(database=str(file_in(directory, url.database)))


_READ_ONLY_ACTIONS = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
)
_REFUSED_FUNCTIONS = frozenset({"load_extension", "fts3_tokenizer"})


def read_only_authorizer(
    action: int, first: str | None, second: str | None, _db: str | None, _trigger: str | None
) -> int:
    """SQLite's authorizer for a team's source queries: reading and functions only.

    Refuses ATTACH (and so `VACUUM INTO`, which attaches its target), PRAGMA, every write and
    schema change, and the functions that load code: a query can read its own file and no
    other, whatever it says.
    """
    if action not in _READ_ONLY_ACTIONS:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION and (second or "").lower() in _REFUSED_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK
