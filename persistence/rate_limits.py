"""Token buckets in a database, so that every API process using it shares one limit.

Each request is one statement: an upsert that refills the key's bucket for the time since
its last request, takes one token if a whole one is there, and says whether it did. Two
processes taking from one bucket at once are serialized by the database (SQLite's write
lock, PostgreSQL's row lock), so a burst is admitted once across all of them.
"""

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Engine, Float, case, cast, delete, literal, select
from sqlalchemy.dialects import postgresql, sqlite

from persistence.db import Database
from persistence.models import RateBucket

_table = RateBucket.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Limit:
    """`burst` requests at most, refilling at `per_second`."""

    per_second: float
    burst: float

    @property
    def refill_seconds(self) -> float:
        """How long an empty bucket takes to be full again."""
        return self.burst / self.per_second


@dataclass(frozen=True)
class Taken:
    allowed: bool
    tokens: float  # left after this request


def create_rate_bucket_table(engine: Engine) -> None:
    """For a database of its own (the embedded default's file): the service database gets
    the table from its migrations."""
    _table.create(engine, checkfirst=True)


def take_request(*, db: Database, scope: str, key: str, limit: Limit, now: float) -> Taken:
    """Take one request from the key's bucket (a new key's bucket starts full)."""
    refilled = _refilled(limit, now)
    upsert = _insert(db).values(
        scope=scope, key=key, tokens=limit.burst - 1, updated=now, allowed=True
    )
    statement = upsert.on_conflict_do_update(
        index_elements=[_table.c.scope, _table.c.key],
        set_={
            "tokens": case((refilled >= 1, refilled - 1), else_=refilled),
            "updated": case((_table.c.updated > now, _table.c.updated), else_=now),
            "allowed": refilled >= 1,
        },
    ).returning(_table.c.allowed, _table.c.tokens)
    with db.write_connection() as connection:
        allowed, tokens = connection.execute(statement).one()
    return Taken(allowed=bool(allowed), tokens=float(tokens))


def tokens_left(*, db: Database, scope: str, key: str, limit: Limit, now: float) -> float:
    """The key's bucket as it would be refilled now; takes nothing."""
    query = select(_refilled(limit, now)).where(_table.c.scope == scope, _table.c.key == key)
    with db.engine.connect() as connection:
        tokens = connection.execute(query).scalar_one_or_none()
    return limit.burst if tokens is None else float(tokens)


def forget_full_buckets(*, db: Database, scope: str, limit: Limit, now: float) -> int:
    """Delete the buckets that have refilled since their last request (they say nothing a
    missing bucket would not); how many went."""
    statement = delete(_table).where(
        _table.c.scope == scope, _table.c.updated < now - limit.refill_seconds
    )
    with db.write_connection() as connection:
        return connection.execute(statement).rowcount


def _refilled(limit: Limit, now: float) -> ColumnElement[float]:
    """The bucket's tokens after the time since its last request (none for a clock that
    went back), capped at the burst."""
    elapsed = case((_table.c.updated < now, literal(now) - _table.c.updated), else_=0.0)
    tokens = cast(_table.c.tokens + elapsed * limit.per_second, Float)
    return case((tokens > limit.burst, limit.burst), else_=tokens)


def _insert(db: Database) -> sqlite.Insert | postgresql.Insert:
    return sqlite.insert(_table) if db.is_sqlite else postgresql.insert(_table)
