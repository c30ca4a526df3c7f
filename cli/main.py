"""The `backfills` command."""

import json
from typing import Annotated

import typer

from cli import calendar, client, control, transfers
from cli.admin import admin
from config import WORKER_QUEUES, get_settings

# The service's parts (uvicorn, the database, the logging with Temporal's runtime) are
# imported by the commands that run them: the client commands start in a fraction of the time.

app = typer.Typer(help="The backfill service.", no_args_is_help=True)
app.add_typer(admin, name="admin")
client.register(app)
control.register(app)
calendar.register(app)
transfers.register(app)


@app.command()
def dev() -> None:
    """Run Temporal (with its web UI), a worker and the API in the foreground."""
    from cli.dev import dev_settings, run_dev
    from observability.logs import setup_logging

    settings = dev_settings(get_settings())
    setup_logging(settings)
    raise typer.Exit(run_dev(settings))


@app.command()
def api() -> None:
    """Serve the REST API (Temporal and the database must exist)."""
    import uvicorn

    from observability.logs import setup_logging
    from persistence.secret_box import SecretsKeyError, load_secret_box

    settings = get_settings()
    setup_logging(settings)
    try:
        load_secret_box(settings)  # fail here, clearly, rather than in the app's lifespan
    except SecretsKeyError as exc:
        typer.echo(f"backfills api: {exc}", err=True)
        raise typer.Exit(2) from None
    # Uvicorn's records go through our handler (log_config=None); the API logs each request
    # itself, with its request id, so uvicorn's access log would only repeat it.
    uvicorn.run(
        "api.served:app",
        host=settings.api_host,
        port=settings.api_port,
        workers=settings.api_processes,
        log_config=None,
        log_level=settings.log_level.lower(),
        access_log=False,
    )


def _worker_queues(value: str) -> list[str]:
    """`runs,records,recurring` as a list; a name that is no queue is a usage error (exit 2)."""
    queues = [queue.strip() for queue in value.split(",") if queue.strip()]
    unknown = [queue for queue in queues if queue not in WORKER_QUEUES]
    if unknown or not queues:
        raise typer.BadParameter(
            f"{', '.join(map(repr, unknown or [value]))} is not a queue: give any of "
            f"{', '.join(WORKER_QUEUES)}, comma-separated",
            param_hint="--queues",
        )
    return queues


@app.command()
def worker(
    queues: Annotated[
        str | None,
        typer.Option(
            "--queues",
            help="What this worker serves, comma-separated: runs (the backfill workflows and "
            "their transfer runs), records (the bookkeeping activities), recurring (the "
            "recurring runs); default BACKFILLS_WORKER_QUEUES, all three.",
        ),
    ] = None,
    processes: Annotated[
        int | None,
        typer.Option(
            "--processes",
            min=1,
            max=64,
            help="Worker processes to run under this one, each with its own slots; default "
            "BACKFILLS_WORKER_PROCESSES, 1.",
        ),
    ] = None,
) -> None:
    """Run one worker (or --processes N of them); run as many as you like."""
    from worker import main

    main(None if queues is None else _worker_queues(queues), processes)


@app.command()
def migrate() -> None:
    """Apply the database migrations."""
    from persistence.migrate import upgrade

    upgrade(get_settings().resolved_database_url)


_MIGRATE_WAREHOUSES_HELP = (
    "Copy each transfer's embedded SQLite table into its team's directory: from "
    "<data dir>/<path or warehouse.db> to <data dir>/teams/<team id>/<path or warehouse.db>, "
    "same table, for every transfer with a sqlite destination (removed ones too).\n\n"
    "Run it with the workers stopped. A table the new file already has is skipped, so running "
    "it again moves nothing. The old files are left as they are: check the teams' new files, "
    "then delete the old ones yourself.\n\n"
    'Prints one JSON object: {"moved": [...], "skipped": [...]}, each skip with its reason.'
)


@app.command("migrate-warehouses", help=_MIGRATE_WAREHOUSES_HELP)
def migrate_warehouses() -> None:
    from cli.warehouse_move import move_to_team_directories
    from persistence.db import Database
    from persistence.migrate import upgrade

    settings = get_settings()
    url = settings.resolved_database_url
    upgrade(url)
    entries = move_to_team_directories(db=Database(url), data_dir=settings.data_dir)
    report: dict[str, list[dict[str, object]]] = {"moved": [], "skipped": []}
    for entry in entries:
        outcome = entry.pop("outcome")
        report[outcome].append(entry)
    typer.echo(json.dumps(report))


if __name__ == "__main__":
    app()
