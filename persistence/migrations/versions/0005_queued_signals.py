"""queued signals: the outbox of signals to backfill workflows

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "queued_signals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("backfill_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(["backfill_id"], ["backfills.id"]),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,  # ids are sequences: never reused after a delete
    )
    op.create_index("ix_queued_signals_backfill_id", "queued_signals", ["backfill_id"])
    op.create_index("ix_queued_signals_due", "queued_signals", ["next_attempt_time"])


def downgrade() -> None:
    op.drop_table("queued_signals")
