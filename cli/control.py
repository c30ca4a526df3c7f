"""Steering a backfill: `backfills pause|resume|limits`.

Each is one PATCH of the backfill (docs/api.md, "Pause, resume, change limits"): the record
changes at once and is the answer; the workflow follows within one scheduling step.
"""

from typing import Annotated, Any

import typer

from cli.api_client import (
    AsJson,
    BackfillArg,
    Team,
    connected,
    describe,
    in_flight,
    limits_of,
    print_json,
    runs_phrase,
)


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


def register(app: typer.Typer) -> None:
    app.command("pause")(pause)
    app.command("resume")(resume)
    app.command("limits")(limits)
