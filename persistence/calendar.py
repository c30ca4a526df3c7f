"""A calendar as a query: the dates `start + first .. start + last`, one row each, made by
the database (a recursive CTE) instead of sent as parameters, so a page of a 36,500-date
range is one statement of constant size. Each row has `position` (days after `start`) and
`data_date`; the date arithmetic is each dialect's own (SQLite and PostgreSQL)."""

from datetime import date
from typing import Any

from sqlalchemy import CTE, Date, Integer, cast, literal, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


class _DaysAfter(FunctionElement[date]):
    """`start + days` as a date."""

    type = Date()
    name = "days_after"
    inherit_cache = True


@compiles(_DaysAfter, "sqlite")
def _days_after_sqlite(element: _DaysAfter, compiler: SQLCompiler, **kw: Any) -> str:
    start, days = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"date({start}, '+' || {days} || ' days')"


@compiles(_DaysAfter, "postgresql")
def _days_after_postgresql(element: _DaysAfter, compiler: SQLCompiler, **kw: Any) -> str:
    start, days = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"(CAST({start} AS DATE) + {days})"


def calendar(start: date, first: int, last: int) -> CTE:
    """The dates from `start + first` to `start + last` days (none when last < first)."""
    origin = literal(start, Date)
    anchor = cast(literal(first), Integer)
    days = select(anchor.label("position")).cte("calendar_days", recursive=True)
    days = days.union_all(
        select((days.c.position + 1).label("position")).where(days.c.position < last)
    )
    return (
        select(
            days.c.position,
            _DaysAfter(origin, days.c.position).label("data_date"),
        )
        .where(days.c.position <= last)
        .cte("calendar")
    )
