"""transfer schedules: a transfer's schedule and its pause, the version Temporal has applied,
and which run of a date writes its partition

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("transfers") as batch:
        batch.add_column(sa.Column("schedule", sa.JSON(), nullable=True))
        batch.add_column(
            sa.Column("schedule_paused", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("schedule_paused_reason", sa.String(), nullable=True))
        batch.add_column(
            sa.Column("schedule_paused_time", sa.DateTime(timezone=True), nullable=True)
        )
        batch.add_column(
            sa.Column("schedule_version", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("schedule_applied_version", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("transfer_runs") as batch:
        batch.add_column(sa.Column("writing_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("transfer_runs") as batch:
        batch.drop_column("writing_since")
    with op.batch_alter_table("transfers") as batch:
        for column in (
            "schedule_applied_version",
            "schedule_version",
            "schedule_paused_time",
            "schedule_paused_reason",
            "schedule_paused",
            "schedule",
        ):
            batch.drop_column(column)
