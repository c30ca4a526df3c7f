"""`backfills migrate-warehouses`, run as an operator runs it, on an old-layout data directory.

Old layout: every team's sqlite destination wrote into `<data dir>/<path or warehouse.db>`;
new layout: `<data dir>/teams/<team id>/<path or warehouse.db>`, same table.
"""

import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from persistence import accounts, transfers
from persistence.db import Database
from persistence.migrate import upgrade
from persistence.models import Role

BACKFILLS = Path(sys.executable).parent / "backfills"
Row = tuple[str, int, str]


def _write_table(file: Path, table: str, rows: list[Row]) -> None:
    """A table as the sqlite destination made it: data_date, the record's columns, an index."""
    file.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(file) as connection:
        connection.execute(
            f'CREATE TABLE "{table}" ("data_date" DATE NOT NULL, "clicks" INTEGER, "who" TEXT)'
        )
        connection.execute(f'CREATE INDEX "ix_{table}_data_date" ON "{table}" ("data_date")')
        connection.executemany(f'INSERT INTO "{table}" VALUES (?, ?, ?)', rows)
    connection.close()


def _tables(file: Path) -> dict[str, list[Row]]:
    """Every table of a SQLite file with its rows, in order."""
    connection = sqlite3.connect(f"{file.as_uri()}?mode=ro", uri=True)
    try:
        names = [
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        return {
            name: list(connection.execute(f'SELECT * FROM "{name}" ORDER BY data_date, clicks'))
            for name in names
        }
    finally:
        connection.close()


def _indexes(file: Path) -> set[str]:
    connection = sqlite3.connect(f"{file.as_uri()}?mode=ro", uri=True)
    try:
        query = "SELECT name FROM sqlite_master WHERE type = 'index'"
        return {name for (name,) in connection.execute(query)}
    finally:
        connection.close()


def _files(directory: Path) -> set[str]:
    """The SQLite files under `directory` (WAL side files aside), relative to it."""
    return {
        str(path.relative_to(directory))
        for path in directory.rglob("*")
        if path.is_file() and not path.name.endswith(("-wal", "-shm", "-journal"))
    }


@dataclass
class OldLayout:
    data_dir: Path
    cwd: Path
    team_a: int
    team_b: int
    ids: dict[str, int]
    rows: dict[str, list[Row]]

    def run(self) -> dict[str, Any]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BACKFILLS_")}
        env.update(BACKFILLS_DATA_DIR=str(self.data_dir), COLUMNS="200", NO_COLOR="1")
        result = subprocess.run(
            [str(BACKFILLS), "migrate-warehouses"],
            env=env,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().count("\n") == 0, result.stdout
        payload: dict[str, Any] = json.loads(result.stdout)
        assert set(payload) == {"moved", "skipped"}, payload
        return payload

    def team_file(self, team_id: int, name: str = "warehouse.db") -> Path:
        return self.data_dir / "teams" / str(team_id) / name


@pytest.fixture
def old_layout(tmp_path: Path) -> OldLayout:
    data_dir = tmp_path / "data"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    db = Database(f"sqlite:///{data_dir.resolve() / 'backfills.db'}")
    upgrade(db.url)
    team_a = accounts.create_team(db=db, name="a")
    team_b = accounts.create_team(db=db, name="b")
    user_a = accounts.create_user(db=db, email="a@example.com", team_id=team_a, role=Role.OWNER)
    user_b = accounts.create_user(db=db, email="b@example.com", team_id=team_b, role=Role.OWNER)
    users = {team_a: user_a, team_b: user_b}

    def transfer(team_id: int, destination: dict[str, Any]) -> int:
        created = transfers.create_transfer(
            db=db,
            team_id=team_id,
            user_id=users[team_id],
            display_name="t",
            source={"type": "demo"},
            destination=destination,
            max_concurrent_runs=1,
        )
        assert created.id is not None
        return created.id

    ids = {
        "a_default": transfer(team_a, {"type": "sqlite"}),
        "a_custom": transfer(team_a, {"type": "sqlite", "path": "custom/a.db", "table": "events"}),
        "b_default": transfer(team_b, {"type": "sqlite", "path": None, "table": None}),
        "b_removed": transfer(team_b, {"type": "sqlite"}),
        "b_never_ran": transfer(team_b, {"type": "sqlite", "table": "never_ran"}),
        "b_dotdot": transfer(team_b, {"type": "sqlite", "path": "../outside.db", "table": "t"}),
        "b_absolute": transfer(
            team_b, {"type": "sqlite", "path": str(tmp_path / "abs.db"), "table": "t"}
        ),
        "b_service": transfer(
            team_b, {"type": "sqlite", "path": "backfills.db", "table": "transfer_runs"}
        ),
        "a_shared": transfer(team_a, {"type": "sqlite", "path": "shared.db", "table": "shared"}),
        "b_shared": transfer(team_b, {"type": "sqlite", "path": "shared.db", "table": "shared"}),
        "b_postgres": transfer(team_b, {"type": "sql", "url": "postgresql://x/y", "table": "t"}),
    }
    transfers.remove_transfer(db=db, team_id=team_b, transfer_id=ids["b_removed"])

    rows: dict[str, list[Row]] = {
        "a_default": [("2024-01-01", 1, "a"), ("2024-01-02", 2, "a"), ("2024-01-03", 3, "a")],
        "a_custom": [("2024-02-01", 10, "a-events"), ("2024-02-02", 11, "a-events")],
        "b_default": [("2024-01-01", 100, "b"), ("2024-01-02", 101, "b")],
        "b_removed": [("2023-12-31", 200, "b-removed")],
    }
    warehouse = data_dir / "warehouse.db"
    for key in ("a_default", "b_default", "b_removed"):
        _write_table(warehouse, f"transfer_{ids[key]}", rows[key])
    _write_table(data_dir / "custom" / "a.db", "events", rows["a_custom"])
    _write_table(data_dir / "shared.db", "shared", [("2024-01-01", 7, "a"), ("2024-01-01", 8, "b")])
    _write_table(tmp_path / "outside.db", "t", [("2024-01-01", 9, "outside")])
    _write_table(tmp_path / "abs.db", "t", [("2024-01-01", 9, "absolute")])
    return OldLayout(data_dir, cwd, team_a, team_b, ids, rows)


def test_each_team_gets_exactly_its_own_tables_and_rows(old_layout: OldLayout) -> None:
    ids, rows = old_layout.ids, old_layout.rows
    old_files = [old_layout.data_dir / name for name in ("warehouse.db", "custom/a.db")]
    before = {file: _tables(file) for file in old_files}

    payload = old_layout.run()

    moved = {entry["transfer_id"]: entry for entry in payload["moved"]}
    assert set(moved) == {ids[k] for k in ("a_default", "a_custom", "b_default", "b_removed")}
    for key in ("a_default", "a_custom", "b_default", "b_removed"):
        assert moved[ids[key]]["rows"] == len(rows[key])
    assert moved[ids["a_custom"]] == {
        "transfer_id": ids["a_custom"],
        "team_id": old_layout.team_a,
        "table": "events",
        "rows": 2,
        "old_file": str((old_layout.data_dir / "custom" / "a.db").resolve()),
        "new_file": str(old_layout.team_file(old_layout.team_a, "custom/a.db").resolve()),
    }

    a, b = old_layout.team_a, old_layout.team_b
    assert _tables(old_layout.team_file(a)) == {f"transfer_{ids['a_default']}": rows["a_default"]}
    assert _tables(old_layout.team_file(a, "custom/a.db")) == {"events": rows["a_custom"]}
    assert _tables(old_layout.team_file(b)) == {
        f"transfer_{ids['b_default']}": rows["b_default"],
        f"transfer_{ids['b_removed']}": rows["b_removed"],
    }
    assert f"ix_transfer_{ids['a_default']}_data_date" in _indexes(old_layout.team_file(a))
    teams = old_layout.data_dir / "teams"
    assert _files(teams / str(a)) == {"warehouse.db", "custom/a.db"}
    assert _files(teams / str(b)) == {"warehouse.db"}
    assert _files(teams) == {f"{a}/warehouse.db", f"{a}/custom/a.db", f"{b}/warehouse.db"}
    assert {file: _tables(file) for file in old_files} == before, "old files are left as they are"


def test_unsafe_or_ambiguous_tables_are_skipped_with_a_reason(old_layout: OldLayout) -> None:
    ids = old_layout.ids

    payload = old_layout.run()

    reasons = {entry["transfer_id"]: entry["reason"] for entry in payload["skipped"]}
    assert set(reasons) == {
        ids[k]
        for k in ("b_never_ran", "b_dotdot", "b_absolute", "b_service", "a_shared", "b_shared")
    }, "other destination types are not listed"
    assert "no table never_ran" in reasons[ids["b_never_ran"]]
    assert "contains '..'" in reasons[ids["b_dotdot"]]
    assert "is absolute" in reasons[ids["b_absolute"]]
    assert "file of the service itself" in reasons[ids["b_service"]]
    for key in ("a_shared", "b_shared"):
        assert "others' rows" in reasons[ids[key]]
    for entry in payload["skipped"]:
        assert entry["team_id"] in (old_layout.team_a, old_layout.team_b)
    everything_copied = {
        table for file in (old_layout.data_dir / "teams").rglob("*.db") for table in _tables(file)
    }
    assert everything_copied.isdisjoint({"t", "transfer_runs", "shared", "never_ran"})


def test_a_second_run_moves_nothing(old_layout: OldLayout) -> None:
    first = old_layout.run()
    teams = old_layout.data_dir / "teams"
    after_first = {file: _tables(file) for file in sorted(teams.rglob("*.db"))}

    second = old_layout.run()

    assert second["moved"] == []
    already = {e["transfer_id"] for e in second["skipped"] if "already has" in e["reason"]}
    assert already == {e["transfer_id"] for e in first["moved"]}
    assert {file: _tables(file) for file in sorted(teams.rglob("*.db"))} == after_first
