"""The service's one settings object, read from `BACKFILLS_*` environment variables and `.env`."""

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

CommaSeparated = Annotated[list[str], NoDecode]
WorkerQueue = Literal["runs", "records", "recurring"]
WORKER_QUEUES: tuple[WorkerQueue, ...] = ("runs", "records", "recurring")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BACKFILLS_", env_file=".env", extra="ignore")

    data_dir: Path = Path(".data")
    database_url: str = Field(
        default="", description="SQLAlchemy URL; empty means a SQLite file in the data directory."
    )

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = Field(
        default="backfills",
        description="The workflows' queue and their transfer runs' (the run slots).",
    )
    records_task_queue: str = Field(
        default="",
        description="The bookkeeping activities' queue (planning, status changes, cancels, "
        "closing a backfill, reconciling), so that they never wait behind transfer runs; "
        "empty: the task queue's name followed by `-records`.",
    )
    recurring_task_queue: str = Field(
        default="",
        description="The recurring runs' queue (their workflows and transfer runs), with slots "
        "of its own, so that no number of backfill runs can delay a schedule's firing; empty: "
        "the task queue's name followed by `-recurring`.",
    )

    api_host: str = "127.0.0.1"
    api_port: int = 8000

    temporal_port: int = 7233
    temporal_ui_port: int = 8233

    api_url: str = Field(
        default="http://127.0.0.1:8000/v1", description="The API the client commands call."
    )
    token: str = Field(default="", description="The client commands' bearer token.")

    rate_limit_per_minute: int = Field(default=600, ge=1, description="Requests per token.")
    rate_limit_burst: int = Field(default=60, ge=1)
    auth_failures_per_minute: int = Field(
        default=30,
        ge=1,
        description="Requests without a valid token one client address may make per minute; "
        "past that, its requests answer 429 before any database lookup.",
    )
    auth_failures_burst: int = Field(default=20, ge=1)
    rate_limit_url: str = Field(
        default="",
        description="Where the API processes keep both rate limits, shared by all that use "
        "the same: empty, a SQLite file in the data directory (the API processes of this "
        "machine); `database`, the service database; `redis://host:port/db`, a Redis server; "
        "`memory`, each process its own.",
    )
    api_processes: int = Field(
        default=1, ge=1, le=64, description="API processes `backfills api` serves on its port."
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1024)

    max_range_days: int = Field(default=36_600, ge=1)
    default_max_concurrent_runs: int = Field(default=4, ge=1, le=500)

    run_max_attempts: int = Field(default=5, ge=1)
    run_retry_initial_seconds: float = Field(default=1.0, gt=0)
    run_retry_max_seconds: float = Field(default=60.0, gt=0)
    run_timeout_seconds: float = Field(default=3600.0, gt=0)
    run_heartbeat_timeout_seconds: float = Field(default=30.0, gt=0)
    runs_per_workflow_run: int = Field(
        default=1000, ge=1, description="Runs one workflow run starts before it continues as new."
    )

    reconcile_interval_seconds: float = Field(default=30.0, gt=0)
    signal_retry_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How often the API looks for workflow signals Temporal did not take (a "
        "cancel, pause, limits or retry the database holds already) to send them again; each "
        "waits 1 s after its first failure, doubling up to 30 s.",
    )
    reconcile_created_grace_seconds: float = Field(
        default=60.0, gt=0, description="How long a CREATED backfill may wait for its workflow."
    )

    schedule_catchup_window_seconds: float = Field(
        default=86400.0,
        ge=10,
        description="How far back a transfer's Schedule catches up on firings it missed while "
        "the service was down (Temporal's catchup window), oldest first.",
    )
    schedule_min_interval_seconds: int = Field(
        default=300,
        ge=1,
        description="The shortest `interval_seconds` a transfer's schedule may have.",
    )

    worker_max_concurrent_activities: int = Field(
        default=100, ge=1, description="Run slots: transfer runs one worker process runs at once."
    )
    worker_max_concurrent_record_activities: int = Field(
        default=20,
        ge=1,
        description="Record slots: bookkeeping activities one worker process runs at once, "
        "beside its run slots.",
    )
    worker_max_concurrent_recurring_activities: int = Field(
        default=20,
        ge=1,
        description="Recurring slots: recurring runs one worker process runs at once, beside "
        "its run slots.",
    )
    worker_queues: Annotated[list[WorkerQueue], NoDecode] = Field(
        default_factory=lambda: list(WORKER_QUEUES),
        min_length=1,
        description="What a worker process serves: `runs` (the backfill workflows and their "
        "transfer runs), `records` (the bookkeeping activities), `recurring` (the recurring "
        "runs), or any of them (default: all three).",
    )
    worker_shutdown_grace_seconds: float = Field(default=60.0, ge=0)
    worker_memory_budget_mib: int = Field(
        default=1024,
        ge=8,
        description="Memory the runs of one worker process may hold in records at once: "
        "each holds one batch of about 8 MiB while loading it; past the budget, runs wait "
        "for a batch slot.",
    )
    worker_spool_budget_mib: int = Field(
        default=10240,
        ge=1,
        description="Temporary disk the `http` responses of one worker process may fill at "
        "once while they are parsed; a run whose response finds no room fails and is retried "
        "(one larger than the whole budget fails for good).",
    )
    worker_processes: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Worker processes `backfills worker` runs under one supervisor (one "
        "interpreter each, so runs use more than one core); each has its own slots.",
    )

    log_format: Literal["json", "text"] = Field(
        default="json",
        description="`json`: one JSON object per log line; `text`: plain lines (the default "
        "of `backfills dev`).",
    )
    log_level: str = "INFO"
    metrics_host: str = Field(
        default="0.0.0.0",
        description="Where the worker's two metrics endpoints listen (`backfills dev`: "
        "127.0.0.1 unless set).",
    )
    worker_metrics_port: int = Field(
        default=9464,
        ge=0,
        le=65535,
        description="The worker's own /metrics; 0 disables it. Taken: the worker does not start.",
    )
    temporal_metrics_port: int = Field(
        default=9465, ge=0, le=65535, description="Temporal SDK metrics of the worker; 0: off."
    )
    otlp_endpoint: str = Field(
        default="",
        description="OTLP/HTTP collector (e.g. http://collector:4318); empty: no tracing.",
    )

    secrets_key: str = Field(
        default="",
        description="Fernet key(s) encrypting team secrets, comma-separated (the first encrypts, "
        "all decrypt). Empty: only with the embedded SQLite database, where a key is generated "
        "into the data directory; with BACKFILLS_DATABASE_URL set it is a start-up error.",
    )
    worker_env_allowlist: CommaSeparated = Field(
        default_factory=list,
        description="Worker environment variables any team's `${NAME}` may read; default none.",
    )
    connector_allowed_networks: CommaSeparated = Field(
        default_factory=list,
        description="CIDRs of loopback or private addresses connectors may reach "
        "(e.g. 127.0.0.0/8,10.0.0.0/8); default none. Link-local and cloud metadata "
        "addresses are refused whatever this says.",
    )
    protected_database_urls: CommaSeparated = Field(
        default_factory=list,
        description="More databases no connector may target, beside the service's own "
        "(e.g. Temporal's).",
    )

    @field_validator(
        "worker_env_allowlist",
        "connector_allowed_networks",
        "protected_database_urls",
        "worker_queues",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @model_validator(mode="after")
    def _queues_of_their_own(self) -> Self:
        queues = (
            self.task_queue,
            self.resolved_records_task_queue,
            self.resolved_recurring_task_queue,
        )
        if len(set(queues)) != len(queues):
            raise ValueError(
                "BACKFILLS_TASK_QUEUE, BACKFILLS_RECORDS_TASK_QUEUE and "
                "BACKFILLS_RECURRING_TASK_QUEUE must differ: the bookkeeping activities and "
                "the recurring runs have queues of their own"
            )
        return self

    @property
    def resolved_records_task_queue(self) -> str:
        return self.records_task_queue or f"{self.task_queue}-records"

    @property
    def resolved_recurring_task_queue(self) -> str:
        return self.recurring_task_queue or f"{self.task_queue}-recurring"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir.resolve() / 'backfills.db'}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
