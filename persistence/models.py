"""Table models. Never returned by the API as they are: `api/schemas` holds the response shapes."""

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from statuses import BackfillStatus, RunOrder, RunStatus


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    EDITOR = "editor"
    VIEWER = "viewer"
    FINANCE = "finance"


class Scope(StrEnum):
    READ = "dwh_transfers_read"
    WRITE = "dwh_transfers_write"


class RunType(StrEnum):
    BACKFILL = "Backfill"
    RECURRING = "Recurring"


def _utc_column(*, nullable: bool = True) -> Any:
    return Column(DateTime(timezone=True), nullable=nullable)


class Team(SQLModel, table=True):
    __tablename__ = "teams"

    id: int | None = Field(default=None, primary_key=True)
    name: str
    created_time: datetime = Field(sa_column=_utc_column(nullable=False))


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True, index=True)
    created_time: datetime = Field(sa_column=_utc_column(nullable=False))


class Membership(SQLModel, table=True):
    __tablename__ = "memberships"

    user_id: int = Field(foreign_key="users.id", primary_key=True)
    team_id: int = Field(foreign_key="teams.id", primary_key=True)
    role: str


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    token_hash: str = Field(unique=True, index=True)
    scopes: str = Field(description="Space-separated scope names.")
    created_time: datetime = Field(sa_column=_utc_column(nullable=False))
    expires_time: datetime | None = Field(default=None, sa_column=_utc_column())
    revoked_time: datetime | None = Field(default=None, sa_column=_utc_column())


class Transfer(SQLModel, table=True):
    __tablename__ = "transfers"

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="teams.id", index=True)
    display_name: str
    source: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    destination: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    max_concurrent_runs: int
    max_failed_runs: int | None = None  # the default failure budget of its backfills
    created_time: datetime = Field(sa_column=_utc_column(nullable=False))
    created_user_id: int
    removed_time: datetime | None = Field(default=None, sa_column=_utc_column())
    # Its schedule (recurring/spec.py's Schedule as JSON), None: it runs only by backfills.
    # Each change bumps `schedule_version`; Temporal's Schedule `transfer-<id>` has caught
    # up once `schedule_applied_version` equals it (persistence/schedules.py).
    schedule: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    schedule_paused: bool = False
    schedule_paused_reason: str | None = None
    schedule_paused_time: datetime | None = Field(default=None, sa_column=_utc_column())
    schedule_version: int = 0
    schedule_applied_version: int = 0


class Backfill(SQLModel, table=True):
    __tablename__ = "backfills"
    __table_args__ = (
        Index("ix_backfills_transfer_status", "transfer_id", "status"),
        Index("ix_backfills_team_status", "team_id", "status"),
        {"sqlite_autoincrement": True},  # a backfill id, and so its workflow id, is never reused
    )

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="teams.id")
    transfer_id: int = Field(foreign_key="transfers.id")
    range_start_date: date
    range_end_date: date
    created_time: datetime = Field(sa_column=_utc_column(nullable=False))
    created_user_id: int
    removed_time: datetime | None = Field(default=None, sa_column=_utc_column())
    removed_user_id: int | None = None
    start_time: datetime | None = Field(default=None, sa_column=_utc_column())
    end_time: datetime | None = Field(default=None, sa_column=_utc_column())
    status: str = Field(default=BackfillStatus.CREATED)
    transfer_runs_total: int
    transfer_runs_created: int = 0
    transfer_runs_completed: int = 0
    transfer_runs_failed: int = 0
    transfer_runs_cancelled: int = 0
    # Control (none of it is a status: the public SDK knows six statuses, no more).
    paused: bool = False
    paused_time: datetime | None = Field(default=None, sa_column=_utc_column())
    paused_reason: str | None = None
    max_concurrent_runs: int | None = None  # None: the transfer's, as before this existed
    max_failed_runs: int | None = None  # the failure budget: pause after that many failed
    run_order: str = Field(default=RunOrder.OLDEST_FIRST)
    retry_of_backfill_id: int | None = Field(default=None, foreign_key="backfills.id")
    retries: int = 0  # times its failed dates were retried in place


class TransferRun(SQLModel, table=True):
    __tablename__ = "transfer_runs"
    __table_args__ = (
        # One current run per date of a backfill; a retried date's earlier runs stay,
        # superseded (their `superseded_time` set), so the runs list keeps its history.
        Index(
            "uq_transfer_runs_backfill_date_current",
            "backfill_id",
            "data_date",
            unique=True,
            sqlite_where=text("superseded_time IS NULL"),
            postgresql_where=text("superseded_time IS NULL"),
        ),
        # A retried date's earlier runs, few, so counting them is one probe per date.
        Index(
            "ix_transfer_runs_backfill_date_superseded",
            "backfill_id",
            "data_date",
            sqlite_where=text("superseded_time IS NOT NULL"),
            postgresql_where=text("superseded_time IS NOT NULL"),
        ),
        Index("ix_transfer_runs_transfer_date", "transfer_id", "data_date"),
        # The runs list's default order, newest first (persistence/runs.py list_runs).
        Index("ix_transfer_runs_transfer_created", "transfer_id", "created_time", "id"),
        Index("ix_transfer_runs_backfill_status", "backfill_id", "status"),
        # A Recurring run per firing of the transfer's schedule, however often it is retried.
        Index(
            "uq_transfer_runs_transfer_firing",
            "transfer_id",
            "firing_time",
            unique=True,
            sqlite_where=text("firing_time IS NOT NULL"),
            postgresql_where=text("firing_time IS NOT NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="teams.id")
    transfer_id: int = Field(foreign_key="transfers.id")
    backfill_id: int | None = Field(default=None, foreign_key="backfills.id")
    type: str = Field(default=RunType.BACKFILL)
    data_date: date
    status: str = Field(default=RunStatus.CREATED)
    created_time: datetime = Field(sa_column=_utc_column(nullable=False))
    queued_time: datetime | None = Field(default=None, sa_column=_utc_column())
    started_time: datetime | None = Field(default=None, sa_column=_utc_column())
    ended_time: datetime | None = Field(default=None, sa_column=_utc_column())
    total_rows: int = 0
    message: str = ""
    external_id: str = ""
    attempts: int = 0
    query_details: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    superseded_time: datetime | None = Field(default=None, sa_column=_utc_column())
    firing_time: datetime | None = Field(default=None, sa_column=_utc_column())  # Recurring
    # Set once the run holds its (transfer, data_date) partition: while it is RUNNING, no
    # other run of that date writes (runs.claim_partition).
    writing_since: datetime | None = Field(default=None, sa_column=_utc_column())


class IdempotencyKey(SQLModel, table=True):
    """A create's `Idempotency-Key`: the same key with the same body answers the backfill
    it made, from any API process, for 24 hours."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("team_id", "key", name="uq_idempotency_keys_team_key"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="teams.id")
    key: str
    request_digest: str
    backfill_id: int | None = Field(default=None, foreign_key="backfills.id")
    created_time: datetime = Field(sa_column=_utc_column(nullable=False))


class QueuedSignal(SQLModel, table=True):
    """A signal to a backfill's workflow, written in the transaction that made the change
    it tells of and deleted once Temporal has it (see persistence/outbox.py). Its id orders
    one backfill's signals: the workflow ignores one not newer than the last it applied."""

    __tablename__ = "queued_signals"
    # Ids never reused (SQLite would reuse the highest once deleted): they are sequences.
    __table_args__ = (
        Index("ix_queued_signals_due", "next_attempt_time"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    backfill_id: int = Field(foreign_key="backfills.id", index=True)
    name: str  # the workflow's signal: cancel, pause, resume, set_limits, retry
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_time: datetime = Field(sa_column=_utc_column(nullable=False))
    next_attempt_time: datetime = Field(sa_column=_utc_column(nullable=False))
    attempts: int = 0
    last_error: str | None = None


class RunCountDelta(SQLModel, table=True):
    """Ended runs a backfill's row does not count yet: a run that ends while another
    transaction holds that row leaves its count here instead of waiting for it, and the
    next transaction to take the row adds these to it (persistence/run_counts.py). No
    foreign key: checking one would lock the backfill row (FOR KEY SHARE), the very wait
    this table avoids."""

    __tablename__ = "run_count_deltas"
    __table_args__ = (Index("ix_run_count_deltas_backfill", "backfill_id"),)

    id: int | None = Field(default=None, primary_key=True)
    backfill_id: int
    completed: int = 0
    failed: int = 0


class TeamSecret(SQLModel, table=True):
    """A team's secret for `${NAME}` references. Only its ciphertext is stored (see
    persistence/secret_box.py); the API returns the name and times, never the value."""

    __tablename__ = "team_secrets"
    __table_args__ = (UniqueConstraint("team_id", "name", name="uq_team_secrets_team_name"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="teams.id")
    name: str
    ciphertext: str
    created_time: datetime = Field(sa_column=_utc_column(nullable=False))
    created_user_id: int | None = None
    updated_time: datetime = Field(sa_column=_utc_column(nullable=False))
    updated_user_id: int | None = None


class RateBucket(SQLModel, table=True):
    """One key's token bucket of one rate limit, shared by the API processes that keep
    their limits in this database (see persistence/rate_limits.py)."""

    __tablename__ = "rate_buckets"

    scope: str = Field(primary_key=True)  # which limit: "token" or "auth_failure"
    key: str = Field(primary_key=True)  # a token's digest, or a client address
    tokens: float  # left after the last request
    updated: float  # when (seconds since the epoch, the taking process's clock)
    allowed: bool  # whether the last request was let through
