"""The `backfills` command."""

import typer
import uvicorn

from cli.admin import admin
from config import get_settings
from persistence.migrate import upgrade

app = typer.Typer(help="The backfill service.", no_args_is_help=True)
app.add_typer(admin, name="admin")


@app.command()
def dev() -> None:
    """Run Temporal (with its web UI), a worker and the API in the foreground."""
    from cli.dev import run_dev

    raise typer.Exit(run_dev(get_settings()))


@app.command()
def api() -> None:
    """Serve the REST API (Temporal and the database must exist)."""
    settings = get_settings()
    uvicorn.run("api.main:app", host=settings.api_host, port=settings.api_port, log_level="info")


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
