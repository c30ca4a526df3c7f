"""SQLite writers take turns (persistence/db.py): a write waits for another process's write
to end, on the turn's lock rather than by polling, and the turn passes in order: a process
that ends its write and writes again at once comes after the one already waiting."""

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text

from persistence.db import Database

HOLD_A_TURN_THEN_WRITE_AGAIN = """
import sys
from sqlalchemy import text
from persistence.db import Database
db = Database(sys.argv[1])
with db.write_connection() as connection:
    connection.execute(text("INSERT INTO marks VALUES ('holder, first')"))
    print("holding", flush=True)
    sys.stdin.readline()
with db.write_connection() as connection:
    connection.execute(text("INSERT INTO marks VALUES ('holder, again')"))
"""


def sqlite_database(tmp_path: Path) -> tuple[Database, Path]:
    path = tmp_path / "service.db"
    db = Database(f"sqlite:///{path}")
    with db.write_connection() as connection:
        connection.execute(text("CREATE TABLE marks (who TEXT)"))
    return db, path


@contextmanager
def another_process_holding_the_turn(path: Path) -> Iterator[subprocess.Popen[str]]:
    """A process inside a write until the test writes a line to its stdin; it then writes
    once more at once."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_A_TURN_THEN_WRITE_AGAIN, f"sqlite:///{path}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    try:
        assert holder.stdout.readline().strip() == "holding"
        yield holder
    finally:
        holder.kill()
        holder.wait()


def let_go(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    holder.stdin.write("\n")
    holder.stdin.flush()


def write_in_thread(db: Database) -> threading.Event:
    done = threading.Event()

    def write() -> None:
        with db.write_connection() as connection:
            connection.execute(text("INSERT INTO marks VALUES ('this process')"))
        done.set()

    threading.Thread(target=write, daemon=True).start()
    return done


def wait_until_queued(queue_file: Path) -> None:
    """Until some process holds `flock` on the queue file (only a waiting writer does),
    read off /proc/locks: no guess at how long the thread takes to get there."""
    inode = os.stat(queue_file).st_ino
    for _ in range(3000):
        for line in Path("/proc/locks").read_text().splitlines():
            fields = line.split()
            held = "FLOCK" in fields and "->" not in fields
            if held and any(field.endswith(f":{inode}") for field in fields):
                return
        time.sleep(0.01)
    raise AssertionError("no writer queued for the turn")


def marks(db: Database) -> list[str]:
    with db.read() as session:
        return [who for (who,) in session.execute(text("SELECT who FROM marks ORDER BY rowid"))]


def test_a_write_waits_while_another_process_holds_the_turn(tmp_path: Path) -> None:
    db, path = sqlite_database(tmp_path)
    with another_process_holding_the_turn(path) as holder:
        done = write_in_thread(db)

        assert not done.wait(0.5)  # waiting for the turn, as long as the other holds it
        let_go(holder)
        assert done.wait(30)
        holder.wait(30)


def test_the_turn_goes_to_the_waiting_process_before_the_holder_writes_again(
    tmp_path: Path,
) -> None:
    db, path = sqlite_database(tmp_path)
    with another_process_holding_the_turn(path) as holder:
        done = write_in_thread(db)
        wait_until_queued(Path(f"{path}-writer.queue"))

        let_go(holder)
        assert done.wait(30)
        assert holder.wait(30) == 0

    assert marks(db) == ["holder, first", "this process", "holder, again"]
