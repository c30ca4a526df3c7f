"""`backfills migrate-warehouses`: move the embedded SQLite warehouse into team directories.

Old layout: a transfer with the destination `{"type": "sqlite", "path": P, "table": T}`
wrote into `<data dir>/<P or warehouse.db>`, table `<T or transfer_<id>>`, one file shared by
every team. New layout: `<data dir>/teams/<team id>/<P or warehouse.db>`, the same table (see
connectors/warehouse.py).

For each transfer with a `sqlite` destination, removed ones included, the table is copied
(schema, indexes and rows, in one transaction of the new file, the old one attached read-only)
when the old file has it and the new file does not yet: running it again moves nothing. The
old files are left as they are, for the operator to delete after checking.

Not copied, each reported with its reason: old paths that are absolute, contain `..` or
resolve outside the data directory; the service's own files (its database, Temporal's, the
secrets key) and anything under `teams/`; tables without a `data_date` column (no transfer
wrote those); and a table that transfers of more than one team wrote into, since copying it
would hand each team the others' rows.
"""

import re
import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy.engine import make_url

from connectors.errors import PermanentError
from connectors.warehouse import DEFAULT_FILE, TEAMS_DIR, check_relative_name, file_in, team_dir
from persistence.db import Database, is_sqlite
from persistence.secret_box import KEY_FILE
from persistence.transfers import list_all_transfers

# What the `sqlite` destination accepts as a table name (connectors/sqlite.py IDENTIFIER).
_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
# Files of the service that lived in the data directory beside the warehouse.
_SERVICE_FILES = ("backfills.db", "temporal.db", KEY_FILE)
_SIDE_FILES = ("", "-wal", "-shm", "-journal")


class _Skip(Exception):
    """This transfer's table is not moved, for the reason given."""


@dataclass(frozen=True)
class _Move:
    transfer_id: int
    team_id: int
    table: str
    old: Path
    new: Path


def move_to_team_directories(*, db: Database, data_dir: Path) -> list[dict[str, Any]]:
    """Copy each sqlite destination's table into its team's directory; one entry per transfer.

    Each entry has `transfer_id`, `team_id`, `table` (None when unreadable) and `outcome`:
    `moved` with `rows` (copied), `old_file` and `new_file`, or `skipped` with `reason`.
    Transfers with another destination type are not listed.
    """
    data_dir = data_dir.resolve()
    protected = _service_files(db, data_dir)
    entries: list[dict[str, Any]] = []
    moves: list[tuple[dict[str, Any], _Move]] = []
    for transfer in list_all_transfers(db=db):
        destination = transfer.destination
        if not isinstance(destination, dict) or destination.get("type") != "sqlite":
            continue
        assert transfer.id is not None
        table = destination.get("table") or f"transfer_{transfer.id}"
        entry: dict[str, Any] = {
            "transfer_id": transfer.id,
            "team_id": transfer.team_id,
            "table": table if isinstance(table, str) else None,
        }
        entries.append(entry)
        try:
            move = _plan(transfer.id, transfer.team_id, destination, data_dir, protected)
        except _Skip as skip:
            entry.update(outcome="skipped", reason=str(skip))
            continue
        moves.append((entry, move))

    teams_of = defaultdict(set)
    for _, move in moves:
        teams_of[(move.old, move.table.lower())].add(move.team_id)
    for entry, move in moves:
        teams = teams_of[(move.old, move.table.lower())]
        if len(teams) > 1:
            entry.update(
                outcome="skipped",
                reason=f"transfers of teams {sorted(teams)} all wrote into this table of "
                f"{move.old}; copying it would give each team the others' rows: split it by hand",
            )
            continue
        try:
            rows = _copy_table(move)
        except (sqlite3.Error, OSError) as exc:
            entry.update(outcome="skipped", reason=f"copy failed, the table was not written: {exc}")
            continue
        if rows is None:
            entry.update(outcome="skipped", reason=f"{move.new} already has the table")
        else:
            entry.update(outcome="moved", rows=rows, old_file=str(move.old), new_file=str(move.new))
    return entries


def _plan(
    transfer_id: int,
    team_id: int,
    destination: dict[str, Any],
    data_dir: Path,
    protected: set[Path],
) -> _Move:
    name = destination.get("path") or DEFAULT_FILE
    table = destination.get("table") or f"transfer_{transfer_id}"
    if not isinstance(name, str) or not isinstance(table, str):
        raise _Skip("the destination's path or table is not a string")
    if not _TABLE.match(table):
        raise _Skip(f"{table!r} is not a table name the sqlite destination accepts")
    if PurePosixPath(name).is_absolute() or Path(name).is_absolute():
        raise _Skip(f"the old path {name!r} is absolute")
    if ".." in PurePosixPath(name).parts or ".." in Path(name).parts:
        raise _Skip(f"the old path {name!r} contains '..'")
    try:
        check_relative_name(name)
    except ValueError as exc:
        raise _Skip(f"the old path {name!r}: the new layout refuses it ({exc})") from None
    old = (data_dir / name).resolve()
    if not old.is_relative_to(data_dir) or old == data_dir:
        raise _Skip(f"the old path {name!r} resolves outside the data directory")
    if old in protected:
        raise _Skip(f"the old path {name!r} is a file of the service itself, not a warehouse")
    if old.is_relative_to(data_dir / TEAMS_DIR):
        raise _Skip(f"the old path {name!r} is already under {TEAMS_DIR}/: move it by hand")
    try:
        new = file_in(team_dir(data_dir, team_id), name)
    except PermanentError as exc:
        raise _Skip(f"the new path: {exc}") from None
    if not old.is_file():
        raise _Skip(f"no old file {old}")
    try:
        columns = _old_columns(old, table)
    except sqlite3.Error as exc:
        raise _Skip(f"the old file {old} cannot be read: {exc}") from None
    if not columns:
        raise _Skip(f"the old file {old} has no table {table}")
    if "data_date" not in columns:
        raise _Skip(f"{table} in {old} has no data_date column: no transfer wrote it")
    return _Move(transfer_id=transfer_id, team_id=team_id, table=table, old=old, new=new)


def _service_files(db: Database, data_dir: Path) -> set[Path]:
    """The service's own files in the data directory (and its database, wherever it is)."""
    files = [data_dir / name for name in _SERVICE_FILES]
    if is_sqlite(db.url):
        database = make_url(db.url).database
        if database and database != ":memory:":
            files.append(Path(database))
    return {Path(f"{file.resolve()}{suffix}") for file in files for suffix in _SIDE_FILES}


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _read_only(path: Path) -> str:
    return path.as_uri() + "?mode=ro"


def _old_columns(old: Path, table: str) -> set[str]:
    """The table's column names in the old file (lower case); empty when it has no such table."""
    connection = sqlite3.connect(_read_only(old), uri=True)
    try:
        if not _has_table(connection, "main", table):
            return set()
        rows = connection.execute("SELECT name FROM pragma_table_info(?)", (table,)).fetchall()
    finally:
        connection.close()
    return {str(name).lower() for (name,) in rows}


def _copy_table(move: _Move) -> int | None:
    """Copy the table into the new file in one transaction: its row count, or None if the
    new file has a table of that name already (then nothing is written)."""
    move.new.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(move.new.as_uri(), uri=True, isolation_level=None, timeout=30)
    try:
        connection.execute("ATTACH DATABASE ? AS old", (_read_only(move.old),))
        connection.execute("BEGIN IMMEDIATE")
        try:
            if _has_table(connection, "main", move.table):
                connection.execute("ROLLBACK")
                return None
            schema = connection.execute(
                "SELECT type, sql FROM old.sqlite_master WHERE tbl_name = ? COLLATE NOCASE "
                "AND type IN ('table', 'index') AND sql IS NOT NULL ORDER BY type = 'index'",
                (move.table,),
            ).fetchall()
            for kind, sql in schema:
                if (
                    not str(sql)
                    .upper()
                    .startswith(("CREATE TABLE", "CREATE INDEX", "CREATE UNIQUE"))
                ):
                    raise sqlite3.DatabaseError(f"unexpected {kind} definition in the old file")
                connection.execute(sql)
            if not _has_table(connection, "main", move.table):
                raise sqlite3.DatabaseError("the old table's definition made no such table")
            quoted = _quote(move.table)
            rows = connection.execute(
                f"INSERT INTO main.{quoted} SELECT * FROM old.{quoted}"
            ).rowcount
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        return rows
    finally:
        connection.close()


def _has_table(connection: sqlite3.Connection, schema: str, table: str) -> bool:
    found = connection.execute(
        f"SELECT 1 FROM {schema}.sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE",
        (table,),
    ).fetchone()
    return found is not None
