"""an index of a transfer's runs by created_time: the runs list's default order

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_transfer_runs_transfer_created",
        "transfer_runs",
        ["transfer_id", "created_time", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_transfer_runs_transfer_created", table_name="transfer_runs")
