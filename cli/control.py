"""Steering a backfill: `backfills pause|resume|limits|retry`.

Pause, resume and limits are one PATCH of the backfill each (docs/api.md, "Pause, resume,
change limits"): the record changes at once and is the answer; the workflow follows within
one scheduling step. Retry is a POST of `…/retry` ("Retry").
"""

from typing import Annotated, Any

import typer

from cli.api_client import (
    AsJson,
    BackfillArg,
    Interval,
    Team,
    connected,
    describe,
    in_flight,
    iso_date,
    limits_of,
    print_json,
    runs_phrase,
)
from cli.client import follow


def _patch(team: int, backfill_id: int, body: dict[str, Any]) -> Any:
    with connected() as api:
        return api.call("PATCH", f"/teams/{team}/backfills/{backfill_id}", body)


def _drain(backfill: dict[str, Any]) -> str:
    draining = in_flight(backfill)
    if not draining:
        return "nothing is running"
    return f"{runs_phrase(draining)} still running will finish and count"


def pause(
    backfill_id: BackfillArg,
    team: Team,
    reason: Annotated[
        str | None,
        typer.Option("--reason", help="Why (1 to 500 characters), shown with the pause."),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Pause a backfill: no run starts until it is resumed; runs in flight finish."""
    body: dict[str, Any] = {"paused": True}
    if reason is not None:
        body["paused_reason"] = reason
    backfill = _patch(team, backfill_id, body)
    if as_json:
        print_json(backfill)
        return
    typer.echo(f"Paused {describe(backfill)}")
    typer.echo(f"  reason: {backfill['paused_reason']}")
    typer.echo(f"  no new run starts; {_drain(backfill)}")
    if in_flight(backfill):
        typer.echo(f"  follow the drain: backfills watch --team {team} {backfill_id}")
    typer.echo(f"  resume it: backfills resume --team {team} {backfill_id}")


def resume(backfill_id: BackfillArg, team: Team, as_json: AsJson = False) -> None:
    """Resume a paused backfill: its runs start again."""
    backfill = _patch(team, backfill_id, {"paused": False})
    if as_json:
        print_json(backfill)
        return
    typer.echo(f"Resumed {describe(backfill)}")


def limits(
    backfill_id: BackfillArg,
    team: Team,
    max_concurrent_runs: Annotated[
        int | None,
        typer.Option("--max-concurrent-runs", min=1, max=500, help="Runs in flight at most."),
    ] = None,
    max_failed_runs: Annotated[
        int | None,
        typer.Option(
            "--max-failed-runs",
            min=1,
            help="The failure budget: pause the backfill once this many runs have failed.",
        ),
    ] = None,
    no_failure_budget: Annotated[
        bool, typer.Option("--no-failure-budget", help="Remove the failure budget.")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Change a backfill's limits, from its next scheduling step on."""
    if max_failed_runs is not None and no_failure_budget:
        raise typer.BadParameter(
            "give --max-failed-runs or --no-failure-budget, not both",
            param_hint="--no-failure-budget",
        )
    body: dict[str, Any] = {}
    if max_concurrent_runs is not None:
        body["max_concurrent_runs"] = max_concurrent_runs
    if max_failed_runs is not None or no_failure_budget:
        body["max_failed_runs"] = max_failed_runs
    if not body:
        raise typer.BadParameter(
            "nothing to change: give --max-concurrent-runs, --max-failed-runs or "
            "--no-failure-budget",
            param_hint="--max-concurrent-runs",
        )
    backfill = _patch(team, backfill_id, body)
    if as_json:
        print_json(backfill)
        return
    typer.echo(f"Changed {describe(backfill)}")
    typer.echo(f"  now {limits_of(backfill)} (from its next scheduling step)")


def _iso_dates(values: list[str] | None) -> list[str] | None:
    return None if values is None else [iso_date(value) for value in values]


def retry(
    backfill_id: BackfillArg,
    team: Team,
    dates: Annotated[
        list[str] | None,
        typer.Option(
            "--date",
            callback=_iso_dates,
            help="Only this date (YYYY-MM-DD); repeat for more. Default: every failed date "
            "(of a FAILED backfill) or every date left undone (of a CANCELLED one).",
        ),
    ] = None,
    watch_it: Annotated[
        bool, typer.Option("--watch", help="Then watch the retry until it ends.")
    ] = False,
    as_json: AsJson = False,
    interval: Interval = 1.0,
) -> None:
    """Retry a FAILED backfill's failed dates in place, or make a new backfill of the dates a
    CANCELLED one left undone."""
    body: dict[str, Any] = {} if not dates else {"data_dates": dates}
    with connected() as api:
        retried = api.call("POST", f"/teams/{team}/backfills/{backfill_id}/retry", body)
        if as_json and not watch_it:
            print_json(retried)
            return
        _say_retried(backfill_id, retried, err=as_json)  # stdout: only the JSON
        if not watch_it:
            return
        code = follow(api, team, retried["transfer_backfill_id"], interval, as_json)
    raise typer.Exit(code)


def _say_retried(backfill_id: int, retried: dict[str, Any], err: bool) -> None:
    if retried["transfer_backfill_id"] == backfill_id:
        again = (
            retried["transfer_runs_total"]
            - retried["transfer_runs_completed"]
            - retried["transfer_runs_failed"]
            - retried.get("transfer_runs_cancelled", 0)
        )
        lines = [
            f"Retrying backfill {backfill_id} in place: "
            f"{again} date{'' if again == 1 else 's'} to run again",
            f"  {describe(retried)}",
            "  the failed runs stay in the runs list",
        ]
    else:
        total = retried["transfer_runs_total"]
        lines = [
            f"Created backfill {retried['transfer_backfill_id']}, a new backfill: backfill "
            f"{backfill_id} was cancelled and stays as it is; the new one (retry_of_backfill_id "
            f"{retried['retry_of_backfill_id']}) runs the {total} "
            f"date{'' if total == 1 else 's'} it left undone",
            f"  {describe(retried)}",
        ]
    for line in lines:
        typer.echo(line, err=err)


def register(app: typer.Typer) -> None:
    app.command("pause")(pause)
    app.command("resume")(resume)
    app.command("limits")(limits)
    app.command("retry")(retry)
