"""run_count_deltas: a run's count, when its backfill's row is busy, instead of a wait

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "run_count_deltas",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("backfill_id", sa.Integer(), nullable=False),
        sa.Column("completed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
    )
    op.create_index("ix_run_count_deltas_backfill", "run_count_deltas", ["backfill_id"])


def downgrade() -> None:
    op.drop_index("ix_run_count_deltas_backfill", table_name="run_count_deltas")
    op.drop_table("run_count_deltas")
