"""backfill control: pause, live limits, failure budget, order, retry, idempotent create

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT_RUN = "superseded_time IS NULL"


def upgrade() -> None:
    with op.batch_alter_table("backfills") as batch:
        batch.add_column(
            sa.Column("paused", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("paused_time", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("paused_reason", sa.String(), nullable=True))
        batch.add_column(sa.Column("max_concurrent_runs", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("max_failed_runs", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("run_order", sa.String(), nullable=False, server_default="OLDEST_FIRST")
        )
        batch.add_column(sa.Column("retry_of_backfill_id", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("retries", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        batch.create_foreign_key(
            "fk_backfills_retry_of", "backfills", ["retry_of_backfill_id"], ["id"]
        )
    with op.batch_alter_table("transfers") as batch:
        batch.add_column(sa.Column("max_failed_runs", sa.Integer(), nullable=True))
    # A retried date gets a new run; the failed one stays, superseded, so history is kept.
    with op.batch_alter_table("transfer_runs") as batch:
        batch.add_column(sa.Column("superseded_time", sa.DateTime(timezone=True), nullable=True))
        batch.drop_constraint("uq_transfer_runs_backfill_date", type_="unique")
    op.create_index(
        "uq_transfer_runs_backfill_date_current",
        "transfer_runs",
        ["backfill_id", "data_date"],
        unique=True,
        sqlite_where=sa.text(CURRENT_RUN),
        postgresql_where=sa.text(CURRENT_RUN),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("request_digest", sa.String(), nullable=False),
        sa.Column("backfill_id", sa.Integer(), nullable=True),
        sa.Column("created_time", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"]),
        sa.ForeignKeyConstraint(["backfill_id"], ["backfills.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("team_id", "key", name="uq_idempotency_keys_team_key"),
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_index("uq_transfer_runs_backfill_date_current", table_name="transfer_runs")
    with op.batch_alter_table("transfer_runs") as batch:
        batch.create_unique_constraint(
            "uq_transfer_runs_backfill_date", ["backfill_id", "data_date"]
        )
        batch.drop_column("superseded_time")
    with op.batch_alter_table("transfers") as batch:
        batch.drop_column("max_failed_runs")
    with op.batch_alter_table("backfills") as batch:
        batch.drop_constraint("fk_backfills_retry_of", type_="foreignkey")
        for column in (
            "retries",
            "retry_of_backfill_id",
            "run_order",
            "max_failed_runs",
            "max_concurrent_runs",
            "paused_reason",
            "paused_time",
            "paused",
        ):
            batch.drop_column(column)
