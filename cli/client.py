"""Client commands over the REST API: `backfills create|dry-run|watch|cancel|list`.

They read `BACKFILLS_API_URL` (default `http://127.0.0.1:8000/v1`) and `BACKFILLS_TOKEN`
(cli/api_client.py). An API error prints the envelope's message, code and request id on
stderr and exits 1; nothing here ever shows a traceback.
"""

import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from cli.api_client import (
    REPLAYED_HEADER,
    TRANSIENT_STATUSES,
    Api,
    AsJson,
    BackfillArg,
    ClientError,
    ErrorFromApi,
    Interval,
    MaxConcurrentRuns,
    MaxFailedRuns,
    NewestFirst,
    RangeFrom,
    RangeTo,
    RunOrderOption,
    Team,
    Transfer,
    connected,
    create_body,
    describe,
    duration_words,
    has_ended,
    in_flight,
    limits_of,
    print_json,
    progress_of,
    runs_phrase,
    when,
)
from statuses import BackfillStatus


def create(
    team: Team,
    transfer: Transfer,
    range_from: RangeFrom,
    range_to: RangeTo,
    max_concurrent_runs: MaxConcurrentRuns = None,
    max_failed_runs: MaxFailedRuns = None,
    newest_first: NewestFirst = False,
    run_order: RunOrderOption = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(
            "--idempotency-key",
            metavar="KEY",
            help="Make the create safe to repeat: the same key and request within 24 h "
            "answer the backfill the first one made (a UUID, say; one per backfill).",
        ),
    ] = None,
    watch_it: Annotated[
        bool, typer.Option("--watch", help="Then watch it until it ends, as `watch` does.")
    ] = False,
    as_json: AsJson = False,
    interval: Interval = 1.0,
) -> None:
    """Create a backfill of a transfer for every date from --from to --to (inclusive)."""
    body = create_body(
        range_from, range_to, max_concurrent_runs, max_failed_runs, newest_first, run_order
    )
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else None
    with connected() as api:
        backfill, answered = api.answer(
            "POST", f"/teams/{team}/transfers/{transfer}/backfills", body, headers=headers
        )
        replayed = answered.get(REPLAYED_HEADER, "").lower() == "true"
        if replayed:
            typer.echo(
                "This --idempotency-key already created the backfill: nothing new was created.",
                err=True,
            )
        if as_json and not watch_it:
            print_json(backfill)
            return
        verb = "Already created" if replayed else "Created"
        typer.echo(f"{verb} {describe(backfill)}", err=as_json)  # stdout: only the JSON
        if not watch_it:
            return
        code = follow(api, team, backfill["transfer_backfill_id"], interval, as_json)
    raise typer.Exit(code)


def dry_run(
    team: Team,
    transfer: Transfer,
    range_from: RangeFrom,
    range_to: RangeTo,
    max_concurrent_runs: MaxConcurrentRuns = None,
    max_failed_runs: MaxFailedRuns = None,
    newest_first: NewestFirst = False,
    run_order: RunOrderOption = None,
    as_json: AsJson = False,
) -> None:
    """What `create` with these options would do, creating nothing: the dates, why it would be
    refused, and an estimate. Exit 0 if it would be accepted, 1 if refused."""
    body = create_body(
        range_from, range_to, max_concurrent_runs, max_failed_runs, newest_first, run_order
    )
    with connected() as api:
        found = api.call("POST", f"/teams/{team}/transfers/{transfer}/backfills/dry_run", body)
    if as_json:
        print_json(found)
    else:
        _say_dry_run(found)
    raise typer.Exit(1 if found["would_be_refused"] else 0)


def _say_dry_run(found: dict[str, Any]) -> None:
    verdict = "would be REFUSED" if found["would_be_refused"] else "would be accepted"
    typer.echo(
        f"Dry run of a backfill of transfer {found['transfer_id']}, "
        f"{found['range_start_date']} to {found['range_end_date']}: {verdict}"
    )
    total = found["transfer_runs_total"]
    dates = f"  {total} date{'' if total == 1 else 's'}"
    if total:
        dates += f", first {found['first_date']}, last {found['last_date']}"
    typer.echo(dates)
    typer.echo(f"  {limits_of(found)}")
    estimate = found["estimate"]
    if estimate.get("duration_seconds") is None:
        typer.echo(f"  estimate: none, {estimate['explanation']}")
    else:
        line = f"  estimate: about {duration_words(estimate['duration_seconds'])}"
        if found.get("estimated_end_time"):
            line += f", ending about {when(found['estimated_end_time'])}"
        typer.echo(f"{line}: {estimate['explanation']}")
    for refusal in found["refusals"]:
        typer.echo(f"  refused: {refusal['message']} ({refusal['code']})")
    typer.echo("Nothing was created.")


def watch(
    backfill_id: BackfillArg,
    team: Team,
    as_json: Annotated[
        bool, typer.Option("--json", help="At the end print the backfill as JSON.")
    ] = False,
    interval: Interval = 1.0,
) -> None:
    """Show a backfill's progress until it ends (or, paused, has drained); exit 0 only if it
    ends COMPLETED."""
    with connected() as api:
        code = follow(api, team, backfill_id, interval, as_json)
    raise typer.Exit(code)


def cancel(
    backfill_id: BackfillArg,
    team: Team,
    as_json: AsJson = False,
) -> None:
    """Cancel a backfill: no further run starts; runs already running finish."""
    with connected() as api:
        backfill = api.call(
            "PATCH", f"/teams/{team}/backfills/{backfill_id}", {"status": BackfillStatus.CANCELLED}
        )
    if as_json:
        print_json(backfill)
        return
    typer.echo(f"Cancelled {describe(backfill)}")


def list_backfills(team: Team, as_json: AsJson = False) -> None:
    """List the team's incomplete backfills, newest first."""
    with connected() as api:
        found = api.call("GET", f"/teams/{team}/backfills")
    if as_json:
        print_json(found)
        return
    if not found:
        typer.echo(f"No incomplete backfills in team {team}.")
        return
    header = ("ID", "TRANSFER", "RANGE", "STATUS", "COMPLETED", "FAILED", "TOTAL", "CREATED")
    rows = [header] + [
        (
            str(b["transfer_backfill_id"]),
            str(b["transfer_id"]),
            f"{b['range_start_date']}..{b['range_end_date']}",
            b["status"],
            str(b["transfer_runs_completed"]),
            str(b["transfer_runs_failed"]),
            str(b["transfer_runs_total"]),
            b["created_time"],
        )
        for b in found
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        typer.echo(line.rstrip())


def follow(api: Api, team: int, backfill_id: int, interval: float, as_json: bool) -> int:
    """Follow the backfill until nothing more happens by itself: it has ended, or it is
    paused; either way once its runs in flight have drained. 0 only if it ends COMPLETED."""
    path = f"/teams/{team}/backfills/{backfill_id}"
    backfill = api.call("GET", path)
    columns = (
        TextColumn(f"backfill {backfill_id}"),
        TextColumn("{task.fields[status]:<9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(
            "{task.fields[completed_runs]} completed, {task.fields[failed_runs]} failed, "
            "{task.fields[running_runs]} running"
        ),
        TimeElapsedColumn(),
        TextColumn("ETA {task.fields[eta]}", markup=False),
        TextColumn("{task.fields[note]}", markup=False),  # a pause's reason is the user's text
    )
    console = Console(stderr=True)
    started = time.monotonic()
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("", total=_to_process(backfill), **_fields(backfill))
            while True:
                progress.update(
                    task,
                    total=_to_process(backfill),
                    completed=backfill["transfer_runs_completed"]
                    + backfill["transfer_runs_failed"],
                    **_fields(backfill),
                )
                # FAILED is still incomplete (it can be retried or cancelled), but no run is
                # left; a paused backfill starts none until it is resumed
                settled = has_ended(backfill) or backfill.get("paused")
                if settled and not in_flight(backfill):
                    break
                time.sleep(interval)
                backfill = _poll(api, path)
    except KeyboardInterrupt:
        typer.echo(f"stopped watching; backfill {backfill_id} goes on", err=True)
        return 130
    _summarize(team, backfill, time.monotonic() - started, as_json)
    return 0 if backfill["status"] == BackfillStatus.COMPLETED else 1


def _fields(backfill: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": backfill["status"],
        "completed_runs": backfill["transfer_runs_completed"],
        "failed_runs": backfill["transfer_runs_failed"],
        "running_runs": in_flight(backfill),
        "eta": _eta_column(backfill),
        "note": _note(backfill),
    }


def _eta_column(backfill: dict[str, Any]) -> str:
    if backfill.get("estimated_end_time"):
        return when(backfill["estimated_end_time"])
    if has_ended(backfill):
        return "done"
    return "none (paused)" if backfill.get("paused") else "unknown"


def _note(backfill: dict[str, Any]) -> str:
    """The pause and its reason, and the drain: runs still running after a pause or cancel."""
    draining = in_flight(backfill)
    if backfill.get("paused"):
        note = f"paused: {backfill.get('paused_reason') or 'no reason given'}"
        return note + (f"; draining, {runs_phrase(draining)} still running" if draining else "")
    if backfill["status"] == BackfillStatus.CANCELLED and draining:
        return f"cancelled; draining, {runs_phrase(draining)} still running"
    return ""


def _to_process(backfill: dict[str, Any]) -> int:
    """The runs that will end: all of them, or after a cancel only those done or in flight
    (so the bar follows the drain, not the dates that will never run)."""
    if backfill["status"] != BackfillStatus.CANCELLED:
        total: int = backfill["transfer_runs_total"]
        return total
    done: int = backfill["transfer_runs_completed"] + backfill["transfer_runs_failed"]
    return done + in_flight(backfill)


def _poll(api: Api, path: str, patience: float = 60.0) -> Any:
    """The backfill again, riding out a short outage of the API (a restart, a 503)."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return api.call("GET", path)
        except ErrorFromApi as error:
            if error.status not in TRANSIENT_STATUSES or time.monotonic() > deadline:
                raise
        except ClientError:
            if time.monotonic() > deadline:
                raise
        time.sleep(2.0)


def _summarize(team: int, backfill: dict[str, Any], elapsed: float, as_json: bool) -> None:
    if as_json:
        print_json(backfill)
        return
    backfill_id = backfill["transfer_backfill_id"]
    paused = (
        f", paused: {backfill.get('paused_reason') or 'no reason given'}"
        if backfill.get("paused")
        else ""
    )
    typer.echo(
        f"Backfill {backfill_id} {backfill['status']}{paused}: "
        f"{progress_of(backfill)} (watched {elapsed:.0f}s)"
    )
    for entry in backfill["error_report"]:
        typer.echo(f"  failed {entry['transfer_run_date']}: {entry['error']}")
    if paused and not has_ended(backfill):
        typer.echo(
            f"  no run starts until it is resumed: backfills resume --team {team} {backfill_id}"
        )
    elif backfill["status"] == BackfillStatus.FAILED:
        typer.echo(
            "  (a FAILED backfill can be retried, backfills retry, or cancelled; until then "
            "it blocks overlapping ones)"
        )


def register(app: typer.Typer) -> None:
    app.command("create")(create)
    app.command("dry-run")(dry_run)
    app.command("watch")(watch)
    app.command("cancel")(cancel)
    app.command("list")(list_backfills)
