"""A century of dates (36,500) in one calendar: the page draws them all, stays responsive (a
click on a cell answers, arrow keys move), and the legend's counts are the statuses the
database holds. The draw time is measured and printed, never asserted: it is this machine's.

The backfill is made straight in a database of this module's own, served by an API process
of its own with no worker, so nothing runs or reconciles it while the page reads it."""

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from cli.devserver import free_port
from persistence.db import Database
from tests.api.console.century import DAYS, FIRST, LAST, Century, seed_century
from tests.api.console.conftest import Console
from tests.conftest import QUIET_NAMESPACE
from tests.support import answers, spawn, stop, wait_for


@pytest.fixture(scope="module")
def century_api(
    quiet_database_url: str, temporal_address: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Century]]:
    root = tmp_path_factory.mktemp("century")
    port = free_port()
    env = {
        **os.environ,
        "BACKFILLS_DATABASE_URL": quiet_database_url,
        "BACKFILLS_DATA_DIR": str(root / "data"),
        "BACKFILLS_TEMPORAL_ADDRESS": temporal_address,
        "BACKFILLS_TEMPORAL_NAMESPACE": QUIET_NAMESPACE,
        "BACKFILLS_TASK_QUEUE": f"century-{uuid.uuid4().hex[:8]}",
        "BACKFILLS_API_HOST": "127.0.0.1",
        "BACKFILLS_API_PORT": str(port),
        "BACKFILLS_RATE_LIMIT_PER_MINUTE": "1000000",
        "BACKFILLS_RATE_LIMIT_BURST": "1000000",
        "BACKFILLS_SECRETS_KEY": Fernet.generate_key().decode(),
    }
    century = seed_century(Database(quiet_database_url))
    api: subprocess.Popen[bytes] = spawn(["api"], env, Path(root) / "api.log")
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/healthz"), timeout=60)
        yield f"http://127.0.0.1:{port}", century
    finally:
        stop(api)


@pytest.fixture
def century_console(century_api: tuple[str, Century], browser: Any) -> Iterator[Console]:
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    tab = Console(page=page, root=century_api[0])
    page.on("pageerror", lambda error: tab.problems.append(f"script error: {error}"))
    yield tab
    context.close()


def legend(console: Console) -> dict[str, int]:
    items = console.page.locator(".legend li")
    statuses = items.evaluate_all("els => els.map(e => e.dataset.status)")
    counts = console.page.locator(".legend .legend-count").all_inner_texts()
    return {s: int(c.replace(",", "")) for s, c in zip(statuses, counts, strict=True)}


def test_a_century_of_dates_draws_and_stays_responsive(
    century_console: Console, century_api: tuple[str, Century]
) -> None:
    _, century = century_api
    console = century_console
    console.sign_in(century.token)
    started = time.monotonic()
    console.go(f"/teams/{century.team_id}/backfills/{century.backfill_id}")
    page = console.page
    page.wait_for_function(
        "n => [...document.querySelectorAll('.legend-count')]"
        ".reduce((s, e) => s + Number(e.textContent.replace(/,/g, '')), 0) === n"
        " && document.querySelector('.legend li[data-status=COMPLETED] .legend-count')"
        ".textContent !== '0'",
        arg=DAYS,
    )
    loaded = time.monotonic() - started
    draws = page.evaluate(
        "() => performance.getEntriesByName('calendar-draw').map(e => e.duration)"
    )
    print(f"\ncentury: page with {DAYS} dates loaded in {loaded:.2f} s; draws (ms): {draws}")

    assert legend(console) == {status: count for status, count in century.counts.items()}
    assert len(set(century.counts.values()) - {0}) >= 5, "several statuses, not one"
    assert page.locator("canvas.year-canvas").count() == LAST.year - FIRST.year + 1
    console.screenshot("century-top", full_page=False)

    failed_year = page.locator('canvas[data-year="2008"]')
    failed_year.scroll_into_view_if_needed()
    before = time.monotonic()
    failed_year.click(position={"x": 200, "y": 40})
    detail = page.locator("#date-detail")
    detail.get_by_text("Failed (FAILED)").wait_for()
    print(f"century: a click on a cell answered in {time.monotonic() - before:.3f} s")
    assert "demo source: this date is listed in fail_dates" in detail.inner_text()
    chosen = detail.locator("dt:text-is('Date') + dd").inner_text()
    page.keyboard.press("ArrowRight")
    week_later = date.fromordinal(day(chosen) + 7).isoformat()
    detail.locator("dt:text-is('Date') + dd", has_text=week_later).wait_for()
    console.screenshot("century-2008", full_page=False)
    page.locator('canvas[data-year="2025"]').focus()
    page.keyboard.press("End")
    detail.get_by_text(LAST.isoformat()).wait_for()
    detail.get_by_text("Waiting (CREATED)").wait_for()
    assert console.problems == []


def day(iso: str) -> int:
    return date.fromisoformat(iso).toordinal()


def test_the_century_backfill_is_in_its_teams_list(
    century_console: Console, century_api: tuple[str, Century]
) -> None:
    _, century = century_api
    century_console.sign_in(century.token)

    row = century_console.page.locator(f'tr[data-backfill="{century.backfill_id}"]')
    row.wait_for()
    assert "80% (29,200/36,500)" in row.inner_text()
    assert century_console.problems == []
