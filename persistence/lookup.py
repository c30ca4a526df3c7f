"""One row by its id, as every aggregate reads it: a row of another team is as missing as
one that does not exist, so an id tells a caller nothing of other teams."""

from typing import TypeVar

from sqlmodel import Session

from persistence.errors import NotFoundError
from persistence.models import Backfill, Transfer, TransferRun

RowT = TypeVar("RowT", Backfill, Transfer, TransferRun)


def get_row(
    session: Session,
    model: type[RowT],
    row_id: int,
    *,
    team_id: int | None,
    missing: str,
    lock: bool = False,
) -> RowT:
    """The `model` row `row_id` if it is team `team_id`'s (any team's when None: the
    worker's reads), locked for the transaction with `lock`; NotFoundError(missing) if not."""
    row = session.get(model, row_id, with_for_update=lock)
    if row is None or team_id not in (None, row.team_id):
        raise NotFoundError(missing)
    return row
