"""The `backfills` command."""

import typer
import uvicorn

from cli import client
from cli.admin import admin
from config import get_settings
from observability.logs import setup_logging
from persistence.migrate import upgrade

app = typer.Typer(help="The backfill service.", no_args_is_help=True)
app.add_typer(admin, name="admin")
client.register(app)


@app.command()
def dev() -> None:
    """Run Temporal (with its web UI), a worker and the API in the foreground."""
    from cli.dev import run_dev

    settings = get_settings()
    setup_logging(settings)
    raise typer.Exit(run_dev(settings))


@app.command()
def api() -> None:
    """Serve the REST API (Temporal and the database must exist)."""
    settings = get_settings()
    setup_logging(settings)
    # Uvicorn's records go through our handler (log_config=None); the API logs each request
    # itself, with its request id, so uvicorn's access log would only repeat it.
    uvicorn.run(
        "api.main:app",
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,
        log_level=settings.log_level.lower(),
        access_log=False,
    )


@app.command()
def worker() -> None:
    """Run one worker; run as many as you like."""
    from worker import main

    main()


@app.command()
def migrate() -> None:
    """Apply the database migrations."""
    upgrade(get_settings().resolved_database_url)


if __name__ == "__main__":
    app()
