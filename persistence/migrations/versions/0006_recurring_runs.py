"""recurring runs: the firing of the transfer's schedule each one belongs to

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FIRED = "firing_time IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("transfer_runs") as batch:
        batch.add_column(sa.Column("firing_time", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "uq_transfer_runs_transfer_firing",
        "transfer_runs",
        ["transfer_id", "firing_time"],
        unique=True,
        sqlite_where=sa.text(FIRED),
        postgresql_where=sa.text(FIRED),
    )


def downgrade() -> None:
    op.drop_index("uq_transfer_runs_transfer_firing", table_name="transfer_runs")
    with op.batch_alter_table("transfer_runs") as batch:
        batch.drop_column("firing_time")
