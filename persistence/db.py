"""Engines and sessions for the service database (SQLite file or PostgreSQL).

SQLite gets WAL, a busy timeout and `BEGIN IMMEDIATE` for write transactions, so that a
check-then-insert (the overlap check on create) is serialized across processes exactly as a
row lock serializes it on PostgreSQL.
"""

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, create_engine

_IMMEDIATE = "backfills_immediate"


def normalize_url(url: str) -> str:
    """Use the psycopg 3 driver for plain `postgresql://` URLs."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


@lru_cache(maxsize=16)
def get_engine(url: str) -> Engine:
    url = normalize_url(url)
    if is_sqlite(url):
        return _sqlite_engine(url)
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _sqlite_engine(url: str) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get(_IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class _WriterTurn:
    """A SQLite file's write turn: first among this process's threads (a lock), then among
    its processes (`flock` on files beside it), then `BEGIN IMMEDIATE` as ever.

    SQLite makes a writer that finds the file locked poll for it, sleeping up to 100 ms
    between tries: behind a busy worker, an API write (a cancel) would sleep through many
    of its commits. A waiter on `flock` wakes when the lock is released instead, and the
    turn passes in order: a process queues for the write lock holding the queue lock, so
    the holder's next write waits behind it instead of taking the write lock straight back.
    It is a courtesy, not the guarantee: a process that does not take it (the sqlite3
    shell, say) is still serialized by SQLite itself. Like SQLite's connections, a turn does
    not survive a fork: every process that writes opens the files itself.
    """

    def __init__(self, database: str) -> None:
        self._paths = (f"{database}-writer.queue", f"{database}-writer.lock")
        self._threads = threading.Lock()
        self._files: tuple[int, int] | None = None

    def __enter__(self) -> None:
        self._threads.acquire()
        try:
            queue, write = self._files = self._files or self._open()
            fcntl.flock(queue, fcntl.LOCK_EX)
            try:
                fcntl.flock(write, fcntl.LOCK_EX)
            finally:
                fcntl.flock(queue, fcntl.LOCK_UN)
        except BaseException:
            self._threads.release()
            raise

    def __exit__(self, *_: object) -> None:
        try:
            if self._files is not None:
                fcntl.flock(self._files[1], fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def _open(self) -> tuple[int, int]:
        queue, write = (
            os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600) for path in self._paths
        )
        return queue, write


@lru_cache(maxsize=16)
def _writer_turn(url: str) -> AbstractContextManager[object]:
    """One turn per file and process, shared by every Database of that file."""
    database = make_url(url).database
    if not database or database == ":memory:":
        return threading.Lock()
    return _WriterTurn(str(Path(database).resolve()))


class Database:
    """The service database. Every persistence function takes one and owns its transaction."""

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        self.engine = get_engine(self.url)
        self._write_engine = self.engine.execution_options(**{_IMMEDIATE: True})
        # A read sees one snapshot however many statements it takes: a backfill's row and
        # its pending run counts (persistence/run_counts.py) must agree. Read-only, it never
        # fails for it. SQLite's reads see one snapshot per transaction already.
        self._read_engine = (
            self.engine
            if is_sqlite(self.url)
            else self.engine.execution_options(isolation_level="REPEATABLE READ")
        )
        self._writer_turn: AbstractContextManager[object] = (
            _writer_turn(self.url) if is_sqlite(self.url) else nullcontext()
        )

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    @contextmanager
    def read(self) -> Iterator[Session]:
        with Session(self._read_engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that commits on success and rolls back on any error.

        On SQLite, writers take turns (`_WriterTurn`) before `BEGIN IMMEDIATE`: SQLite would
        make them poll for its write lock with sleeps instead.
        """
        with (
            self._writer_turn,
            Session(self._write_engine, expire_on_commit=False) as session,
            session.begin(),
        ):
            yield session

    @contextmanager
    def write_connection(self) -> Iterator[Connection]:
        """Like `write`, as a bare Connection, for the prebuilt statements of the hot path."""
        with self._writer_turn, self._write_engine.begin() as connection:
            yield connection

    def ping(self) -> bool:
        """True if the database answers a trivial query."""
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception:
            return False
        return True
