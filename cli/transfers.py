"""Transfers' schedules and runs from the command line: `backfills transfers schedule|pause|
resume|unschedule|show` (one PATCH or GET of the transfer, docs/api.md "Schedules") and
`backfills runs --team T --transfer X` (the runs of both types, newest first)."""

from datetime import date, timedelta
from typing import Annotated, Any

import typer

from cli.api_client import AsJson, Team, connected, print_json

transfers = typer.Typer(help="A transfer's schedule: its Recurring runs.", no_args_is_help=True)
TransferArg = Annotated[int, typer.Argument(metavar="ID", help="The transfer id.")]


def _patch(team: int, transfer_id: int, body: dict[str, Any]) -> Any:
    with connected() as api:
        return api.call("PATCH", f"/teams/{team}/transfers/{transfer_id}", body)


def _say(transfer: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(transfer)
        return
    typer.echo(f"Transfer {transfer['transfer_id']} ({transfer['display_name']})")
    spec, state = transfer.get("schedule"), transfer.get("schedule_state")
    if spec is None or state is None:
        typer.echo("  no schedule: it runs only by backfills")
        return
    typer.echo(f"  schedule: {_spec_phrase(spec)}, loads {_offset_phrase(spec)}")
    typer.echo(f"  Temporal Schedule: {state['schedule_id']}")
    if state["paused"]:
        typer.echo(f"  paused since {state['paused_time']}: {state['paused_reason']}")
    if not state["applied"]:
        typer.echo("  Temporal has not taken the latest change yet; it is applied shortly")
    firings = state.get("next_firings")
    if firings:
        typer.echo("  next firings: " + ", ".join(firings[:3]))


def _spec_phrase(spec: dict[str, Any]) -> str:
    zone = spec["time_zone"]
    if spec.get("cron"):
        return f"cron '{spec['cron']}' in {zone}"
    if spec.get("interval_seconds"):
        return f"every {spec['interval_seconds']} s"
    if spec.get("every") == "hourly":
        return f"hourly at minute {spec['minute']} in {zone}"
    return f"daily at {spec['hour']:02d}:{spec['minute']:02d} in {zone}"


def _offset_phrase(spec: dict[str, Any]) -> str:
    days = spec["data_date_offset_days"]
    return "the day of the firing" if days == 0 else f"the date {days} day(s) before each firing"


@transfers.command("schedule")
def schedule(
    transfer_id: TransferArg,
    team: Team,
    cron: Annotated[str | None, typer.Option("--cron", help="Five cron fields.")] = None,
    daily_at: Annotated[
        str | None, typer.Option("--daily-at", metavar="HH:MM", help="Daily at this time.")
    ] = None,
    every_seconds: Annotated[
        int | None, typer.Option("--every-seconds", min=1, help="Fire every this many seconds.")
    ] = None,
    tz: Annotated[str, typer.Option("--tz", help="An IANA time zone.")] = "UTC",
    offset_days: Annotated[
        int, typer.Option("--offset-days", min=0, help="Load the date this many days before.")
    ] = 1,
    as_json: AsJson = False,
) -> None:
    """Give a transfer a schedule (or replace it): each firing makes one Recurring run."""
    chosen = [given for given in (cron, daily_at, every_seconds) if given is not None]
    if len(chosen) != 1:
        raise typer.BadParameter("give one of --cron, --daily-at and --every-seconds")
    spec: dict[str, Any] = {"time_zone": tz, "data_date_offset_days": offset_days}
    if cron is not None:
        spec["cron"] = cron
    elif every_seconds is not None:
        spec["interval_seconds"] = every_seconds
    else:
        spec.update(every="daily", **_hour_minute(daily_at or ""))
    _say(_patch(team, transfer_id, {"schedule": spec}), as_json)


def _hour_minute(text: str) -> dict[str, int]:
    hour, _, minute = text.partition(":")
    if not (hour.isdigit() and minute.isdigit()):
        raise typer.BadParameter("--daily-at takes HH:MM, such as 02:30")
    return {"hour": int(hour), "minute": int(minute)}


@transfers.command("pause")
def pause(
    transfer_id: TransferArg,
    team: Team,
    reason: Annotated[str | None, typer.Option("--reason", help="Why, shown with it.")] = None,
    as_json: AsJson = False,
) -> None:
    """Pause a transfer's schedule: it fires no more until resumed."""
    body: dict[str, Any] = {"schedule_paused": True}
    if reason is not None:
        body["schedule_paused_reason"] = reason
    _say(_patch(team, transfer_id, body), as_json)


@transfers.command("resume")
def resume(transfer_id: TransferArg, team: Team, as_json: AsJson = False) -> None:
    """Resume a transfer's paused schedule."""
    _say(_patch(team, transfer_id, {"schedule_paused": False}), as_json)


@transfers.command("unschedule")
def unschedule(transfer_id: TransferArg, team: Team, as_json: AsJson = False) -> None:
    """Remove a transfer's schedule: it runs only by backfills again."""
    _say(_patch(team, transfer_id, {"schedule": None}), as_json)


@transfers.command("show")
def show(transfer_id: TransferArg, team: Team, as_json: AsJson = False) -> None:
    """A transfer, with its schedule and next firings."""
    with connected() as api:
        _say(api.call("GET", f"/teams/{team}/transfers/{transfer_id}"), as_json)


def runs(
    team: Team,
    transfer: Annotated[int, typer.Option("--transfer", help="The transfer id.")],
    days: Annotated[
        int, typer.Option("--days", min=1, max=36_600, help="Of data dates this recent.")
    ] = 30,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 50,
    as_json: AsJson = False,
) -> None:
    """A transfer's recent runs, Backfill and Recurring, newest first."""
    today = date.today()
    params = {
        "start_date": (today - timedelta(days=days)).isoformat(),
        "end_date": (today + timedelta(days=1)).isoformat(),
        "sort_field": "created_time",
        "sort_direction": "DESC",
        "limit": limit,
    }
    with connected() as api:
        found: list[dict[str, Any]] = api.call(
            "GET", f"/teams/{team}/transfers/{transfer}/runs", params=params
        )
    if as_json:
        print_json(found)
        return
    if not found:
        typer.echo(f"No runs of transfer {transfer} for data dates of the last {days} days")
        return
    typer.echo(f"{'RUN':>8}  {'TYPE':<9}  {'DATA DATE':<10}  {'STATUS':<9}  {'ROWS':>6}  MESSAGE")
    for run in found:
        typer.echo(
            f"{run['id']:>8}  {run['type']:<9}  {run['data_date']:<10}  "
            f"{run['status']:<9}  {run['total_rows']:>6}  {run.get('message') or ''}"
        )


def register(app: typer.Typer) -> None:
    app.add_typer(transfers, name="transfers")
    app.command("runs")(runs)
