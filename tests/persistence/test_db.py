"""SQLite writers take turns: a write waits for another process's write to end, on the
turn's lock (persistence/db.py), not by polling."""

import subprocess
import sys
import threading
from pathlib import Path

from sqlalchemy import text

from persistence.db import Database

HOLD_A_TURN = """
import sys
from persistence.db import Database
db = Database(sys.argv[1])
with db.write_connection():
    print("holding", flush=True)
    sys.stdin.readline()
"""


def sqlite_database(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'service.db'}")
    with db.write_connection() as connection:
        connection.execute(text("CREATE TABLE marks (n INTEGER)"))
    return db


def write_in_thread(db: Database) -> threading.Event:
    done = threading.Event()

    def write() -> None:
        with db.write_connection() as connection:
            connection.execute(text("INSERT INTO marks VALUES (1)"))
        done.set()

    threading.Thread(target=write, daemon=True).start()
    return done


def test_a_write_waits_while_another_process_holds_the_turn(tmp_path: Path) -> None:
    db = sqlite_database(tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_A_TURN, db.url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    try:
        assert holder.stdout.readline().strip() == "holding"
        done = write_in_thread(db)

        assert not done.wait(0.5)  # waiting for the turn, as long as the other holds it
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert done.wait(30)
    finally:
        holder.kill()
        holder.wait()
    assert Path(f"{Path(db.url.removeprefix('sqlite:///')).resolve()}-writer.lock").exists()
