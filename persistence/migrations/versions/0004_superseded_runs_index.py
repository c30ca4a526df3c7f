"""an index of superseded runs, so counting a date's earlier runs is one probe

Without it SQLite counts a page's superseded runs through the (backfill, status) index,
every run of the backfill for every row of the page: quadratic in the backfill's size.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SUPERSEDED_RUN = "superseded_time IS NOT NULL"


def upgrade() -> None:
    op.create_index(
        "ix_transfer_runs_backfill_date_superseded",
        "transfer_runs",
        ["backfill_id", "data_date"],
        sqlite_where=sa.text(SUPERSEDED_RUN),
        postgresql_where=sa.text(SUPERSEDED_RUN),
    )


def downgrade() -> None:
    op.drop_index("ix_transfer_runs_backfill_date_superseded", table_name="transfer_runs")
