"""The console in Debian's Chromium against the real stack (API, worker, Temporal): what a
team member sees and does, page by page. Screenshots go to tests-output/console/."""

import re
from collections.abc import Iterator
from typing import Any

import pytest

from persistence import accounts
from persistence.models import Role, Scope
from tests.api.console.conftest import Console
from tests.connectors.http_server import LocalHttpServer, Reply, json_reply, serve
from tests.support import Stack, Tenant, new_tenant, wait_for

HOSTILE = "<img src=x onerror=alert(1)>"


def legend_count(console: Console, status: str) -> int:
    text = console.page.locator(f'.legend li[data-status="{status}"] .legend-count').inner_text()
    return int(text.replace(",", ""))


def confirm(console: Console, button: str) -> None:
    """Click an action, then confirm it in its dialog."""
    console.page.get_by_role("button", name=button).click()
    dialog = console.page.locator("dialog[open]")
    dialog.wait_for()
    dialog.locator("button[type=submit]").click()
    dialog.wait_for(state="detached")


def test_sign_in_lands_on_the_teams_backfills_and_the_token_stays_in_session_storage(
    console: Console, tenant: Tenant
) -> None:
    transfer_id = tenant.create_transfer(rows_per_day=2)
    backfill_id = tenant.create_backfill(transfer_id, "2024-01-01", "2024-01-03")[
        "transfer_backfill_id"
    ]
    tenant.wait_until_status(backfill_id, "COMPLETED")
    console.open("/")
    console.page.get_by_label("API token").wait_for()
    console.screenshot("signin")

    console.sign_in(tenant.token)

    page = console.page
    assert console.heading() == "Backfills"
    row = page.locator(f'tr[data-backfill="{backfill_id}"]')
    text = row.inner_text()
    assert "COMPLETED" in text and "3 done" in text and "2024-01-01 to 2024-01-03" in text
    assert page.get_by_role("heading", name="Recently finished (1)").is_visible()
    console.screenshot("backfills")
    assert tenant.token not in page.url
    assert all(tenant.token not in url for url in console.requested)
    assert page.context.cookies() == []
    assert page.evaluate("() => Object.values(sessionStorage)") == [tenant.token]
    assert page.evaluate("() => localStorage.length") == 0
    assert console.problems == []


def test_a_wrong_token_is_refused_with_the_apis_message(console: Console, stack: Stack) -> None:
    console.open("/signin")
    console.page.get_by_label("API token").fill("bft_not-a-real-token")
    console.page.get_by_role("button", name="Sign in").click()

    alert = console.page.get_by_role("alert")
    alert.wait_for()
    assert alert.inner_text() == "the token is unknown, expired or revoked"
    assert console.page.evaluate("() => sessionStorage.length") == 0


def test_create_with_a_dry_run_then_watch_the_calendar_fill_in_live(
    console: Console, tenant: Tenant
) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=2, latency_ms=400)
    console.sign_in(tenant.token)
    console.go(f"/teams/{tenant.team_id}/create")
    page = console.page
    page.get_by_label("Transfer").select_option(str(transfer_id))
    page.get_by_label("First date").fill("2024-05-01")
    page.get_by_label("Last date").fill("2024-05-20")
    page.get_by_label("Order").select_option("NEWEST_FIRST")
    page.get_by_role("button", name="Dry run").click()

    dry = page.locator("#dry-run")
    dry.get_by_text("20 date(s), 2024-05-20 first, 2024-05-01 last; 2 at once.").wait_for()
    page.get_by_text("The dates, in the order they run").click()
    assert dry.locator("ol.dates li").all_inner_texts()[:2] == ["2024-05-20", "2024-05-19"]
    assert "Estimate:" in dry.inner_text()
    assert tenant.http.get(f"/teams/{tenant.team_id}/backfills").json()["data"] == []
    console.screenshot("create-dry-run")
    page.evaluate("() => { window.sameDocument = true; }")
    confirm(console, "Create backfill…")

    page.wait_for_url(re.compile(r"#/teams/\d+/backfills/\d+$"))
    backfill_id = int(page.url.rsplit("/", 1)[1])
    assert tenant.backfill(backfill_id)["run_order"] == "NEWEST_FIRST"
    seen = wait_for(lambda: 0 < legend_count(console, "COMPLETED") < 20, timeout=60)
    assert seen
    console.screenshot("backfill-running")
    page.get_by_text("Final: COMPLETED. Nothing more will change.").wait_for(timeout=90_000)
    assert legend_count(console, "COMPLETED") == 20
    assert page.evaluate("() => window.sameDocument") is True, "updated without a reload"
    assert "100% (20/20)" in page.locator(".summary").inner_text()
    console.screenshot("backfill-completed")
    assert console.problems == []


def test_cancel_shows_the_drain_and_the_cancelled_dates(console: Console, tenant: Tenant) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=2, latency_ms=4000)
    backfill_id = tenant.create_backfill(transfer_id, "2024-06-01", "2024-06-30")[
        "transfer_backfill_id"
    ]
    tenant.wait_until_status(backfill_id, "RUNNING")
    console.sign_in(tenant.token)
    console.go(f"/teams/{tenant.team_id}/backfills/{backfill_id}")
    page = console.page
    wait_for(lambda: legend_count(console, "RUNNING") > 0, timeout=30)

    confirm(console, "Cancel backfill")

    page.get_by_text("Cancel backfill: done.").wait_for()
    assert page.locator(".summary .badge-cancelled").inner_text() == "CANCELLED"
    page.locator(".live", has_text=re.compile(r"draining [12] run\(s\) in flight")).wait_for()
    wait_for(lambda: legend_count(console, "CANCELLED") > 0, timeout=30)
    assert legend_count(console, "RUNNING") > 0, "the runs in flight still show as running"
    console.screenshot("backfill-cancelled-draining")
    page.get_by_text("Final: CANCELLED. Nothing more will change.").wait_for(timeout=60_000)
    assert legend_count(console, "RUNNING") == 0
    backfill = tenant.backfill(backfill_id)
    assert legend_count(console, "CANCELLED") == backfill["transfer_runs_cancelled"] > 0
    assert legend_count(console, "COMPLETED") == backfill["transfer_runs_completed"]
    assert page.get_by_role("button", name="Cancel backfill").is_disabled()
    assert page.get_by_role("button", name="Retry undone dates").is_enabled()
    console.screenshot("backfill-cancelled")
    assert console.problems == []


@pytest.fixture
def flaky_server() -> Iterator[LocalHttpServer]:
    with serve() as running:
        yield running


DATES = [f"2024-07-0{n}" for n in range(1, 6)]
BROKEN = ["2024-07-02", "2024-07-04"]


def test_retry_failed_dates_turns_the_calendar_green(
    console: Console, tenant: Tenant, flaky_server: LocalHttpServer
) -> None:
    for data_date in DATES:
        reply = Reply(status=404) if data_date in BROKEN else json_reply([{"n": 1}])
        flaky_server.route(f"/r/{data_date}", reply)
    response = tenant.http.post(
        f"/teams/{tenant.team_id}/transfers",
        json={
            "display_name": "http report",
            "source": {"type": "http", "url": flaky_server.base_url + "/r/{data_date}"},
            "destination": {"type": "sqlite"},
        },
    )
    assert response.status_code == 200, response.text
    transfer_id = response.json()["data"]["transfer_id"]
    backfill_id = tenant.create_backfill(transfer_id, DATES[0], DATES[-1])["transfer_backfill_id"]
    tenant.wait_until_status(backfill_id, "FAILED", timeout=90)
    console.sign_in(tenant.token)
    console.go(f"/teams/{tenant.team_id}/backfills/{backfill_id}")
    page = console.page
    errors = page.locator("table.errors tbody tr")
    errors.first.wait_for()
    assert [row.split("\t")[0] for row in errors.all_inner_texts()] == BROKEN
    assert "404" in errors.first.inner_text()
    page.get_by_role("button", name="2024-07-04").click()
    page.locator("#date-detail").get_by_text("Failed (FAILED)").wait_for()
    console.screenshot("backfill-failed")
    for data_date in BROKEN:
        flaky_server.route(f"/r/{data_date}", json_reply([{"n": 2}]))

    confirm(console, "Retry failed dates")

    page.get_by_text("Final: COMPLETED. Nothing more will change.").wait_for(timeout=90_000)
    assert legend_count(console, "COMPLETED") == 5
    assert legend_count(console, "FAILED") == 0
    assert page.locator("table.errors").count() == 0
    page.locator('canvas[data-year="2024"]').focus()
    page.keyboard.press("Home")
    page.keyboard.press("ArrowDown")
    detail = page.locator("#date-detail")
    detail.get_by_text("2024-07-02").wait_for()
    detail.get_by_text("1 replaced by a retry").wait_for()
    detail.get_by_text("Done (COMPLETED)").wait_for()
    detail.locator("dt:text-is('Rows') + dd", has_text=re.compile(r"^1$")).wait_for()
    console.screenshot("backfill-retried")
    assert console.problems == []


def read_only_token(stack: Stack, tenant: Tenant, *, role: Role, scopes: list[Scope]) -> str:
    user_id = accounts.create_user(
        db=stack.db, email=f"{role}-{tenant.user_id}@example.com", team_id=tenant.team_id, role=role
    )
    return accounts.create_token(db=stack.db, user_id=user_id, scopes=scopes)


@pytest.mark.parametrize(
    ("role", "scopes"),
    [(Role.OWNER, [Scope.READ]), (Role.VIEWER, [Scope.READ, Scope.WRITE])],
    ids=["read-scope-only", "viewer-role"],
)
def test_a_token_that_cannot_write_sees_no_enabled_write_button(
    console: Console, stack: Stack, tenant: Tenant, role: Role, scopes: list[Scope]
) -> None:
    transfer_id = tenant.create_transfer(fail_dates=["2024-08-02"])
    backfill_id = tenant.create_backfill(transfer_id, "2024-08-01", "2024-08-03")[
        "transfer_backfill_id"
    ]
    tenant.wait_until_status(backfill_id, "FAILED")
    console.sign_in(read_only_token(stack, tenant, role=role, scopes=scopes))
    console.go(f"/teams/{tenant.team_id}/backfills/{backfill_id}")
    page = console.page

    actions = page.get_by_role("group", name="Backfill actions").get_by_role("button")
    actions.first.wait_for()
    assert actions.count() == 4
    assert all(actions.nth(n).is_disabled() for n in range(4))
    assert page.get_by_text("Your token cannot change backfills").is_visible()
    assert page.get_by_role("link", name="New backfill").count() == 0
    console.screenshot(f"read-only-{role}")
    console.go(f"/teams/{tenant.team_id}/transfers")
    page.locator(f'tr[data-transfer="{transfer_id}"]').wait_for()
    assert page.get_by_role("button", name="Create transfer").count() == 0
    console.go(f"/teams/{tenant.team_id}/create")
    page.get_by_text("Your token cannot create backfills in this team").wait_for()
    assert page.get_by_role("button", name="Dry run").count() == 0
    assert console.problems == []


def test_another_teams_backfill_answers_not_found(
    console: Console, stack: Stack, tenant: Tenant
) -> None:
    other = new_tenant(stack)
    try:
        transfer_id = other.create_transfer()
        theirs = other.create_backfill(transfer_id, "2024-09-01", "2024-09-02")
    finally:
        other.http.close()
    console.sign_in(tenant.token)

    console.go(f"/teams/{tenant.team_id}/backfills/{theirs['transfer_backfill_id']}")

    console.page.get_by_role("heading", name="Backfill not found").wait_for()
    assert "backfill not found" in console.page.get_by_role("alert").inner_text()
    console.screenshot("not-found")
    console.go(f"/teams/{other.team_id}/backfills/{theirs['transfer_backfill_id']}")
    alert = console.page.get_by_role("alert")
    alert.get_by_text("lacks the permission").wait_for()
    assert "2024-09-01" not in console.page.content()
    assert console.problems == []


def test_a_hostile_transfer_name_shows_as_text(console: Console, tenant: Tenant) -> None:
    response = tenant.http.post(
        f"/teams/{tenant.team_id}/transfers",
        json={
            "display_name": HOSTILE,
            "source": {"type": "demo"},
            "destination": {"type": "sqlite"},
        },
    )
    transfer_id = response.json()["data"]["transfer_id"]
    backfill_id = tenant.create_backfill(transfer_id, "2024-10-01", "2024-10-01")[
        "transfer_backfill_id"
    ]
    console.sign_in(tenant.token)

    page = console.page
    page.locator(f'tr[data-backfill="{backfill_id}"]').get_by_text(HOSTILE).wait_for()
    console.go(f"/teams/{tenant.team_id}/transfers")
    page.get_by_role("link", name=HOSTILE).wait_for()
    console.go(f"/teams/{tenant.team_id}/backfills/{backfill_id}")
    page.get_by_role("heading", name=f"Backfill #{backfill_id}: {HOSTILE}").wait_for()
    console.screenshot("hostile-name")
    assert page.locator("img").count() == 0
    assert console.problems == [], "no alert() ran, no script error"


def test_creating_a_transfer_shows_the_apis_own_validation_inline(
    console: Console, tenant: Tenant
) -> None:
    console.sign_in(tenant.token)
    console.go(f"/teams/{tenant.team_id}/transfers")
    page = console.page
    page.get_by_label("Name", exact=True).fill("daily ads")
    page.get_by_label("Source options (JSON)").fill('{"rows_per_day": "many"}')
    page.get_by_role("button", name="Create transfer").click()

    problem = page.locator("#transfer-problems [role=alert]")
    problem.wait_for()
    assert "the transfer configuration is invalid" in problem.inner_text()
    assert "rows_per_day" in problem.inner_text()
    assert page.get_by_label("Source options (JSON)").get_attribute("aria-invalid") == "true"
    assert page.get_by_label("Destination options (JSON)").get_attribute("aria-invalid") is None
    console.screenshot("transfer-invalid")
    page.get_by_label("Source options (JSON)").fill("{not json")
    page.get_by_role("button", name="Create transfer").click()
    problem.get_by_text("source options: write a JSON object").wait_for()
    page.get_by_label("Source options (JSON)").fill('{"rows_per_day": 5}')
    page.get_by_role("button", name="Create transfer").click()

    page.get_by_role("heading", name=re.compile(r"Transfer #\d+: daily ads")).wait_for()
    made = tenant.http.get(f"/teams/{tenant.team_id}/transfers").json()["data"]
    assert [(t["display_name"], t["source"]["rows_per_day"]) for t in made] == [("daily ads", 5)]
    assert console.problems == []


def test_a_scheduled_transfer_shows_its_next_firings(console: Console, tenant: Tenant) -> None:
    transfer_id = tenant.create_transfer()
    response = tenant.http.patch(
        f"/teams/{tenant.team_id}/transfers/{transfer_id}",
        json={"schedule": {"every": "daily", "hour": 2, "minute": 30, "time_zone": "UTC"}},
    )
    assert response.status_code == 200, response.text
    firings = response.json()["data"]["schedule_state"]["next_firings"]
    console.sign_in(tenant.token)

    console.go(f"/teams/{tenant.team_id}/transfers")
    page = console.page
    row = page.locator(f'tr[data-transfer="{transfer_id}"]')
    row.get_by_text("daily at 02:30 (UTC)").wait_for()
    console.screenshot("transfers")
    row.get_by_role("link", name="test transfer").click()

    page.get_by_role("heading", name="Next firings").wait_for()
    shown = page.locator("ol.firings time").evaluate_all("els => els.map(e => e.dateTime)")
    assert shown == firings and len(shown) > 0
    console.screenshot("transfer-schedule")
    assert console.problems == []


def test_the_backfills_list_filters_by_transfer_and_status(
    console: Console, tenant: Tenant
) -> None:
    ok_transfer = tenant.create_transfer()
    bad_transfer = tenant.create_transfer(fail_dates=["2024-11-01"])
    done = tenant.create_backfill(ok_transfer, "2024-11-01", "2024-11-02")["transfer_backfill_id"]
    failed = tenant.create_backfill(bad_transfer, "2024-11-01", "2024-11-02")[
        "transfer_backfill_id"
    ]
    tenant.wait_until_status(done, "COMPLETED")
    tenant.wait_until_status(failed, "FAILED")
    console.sign_in(tenant.token)
    page = console.page

    def listed() -> list[int]:
        page.wait_for_function("() => document.querySelector('[aria-busy=false]')")
        ids = page.locator("tr[data-backfill]").evaluate_all(
            "els => els.map(e => e.dataset.backfill)"
        )
        return [int(n) for n in ids]

    page.locator(f'tr[data-backfill="{failed}"]').wait_for()
    assert listed() == [failed, done], "incomplete first, then the finished"
    page.get_by_label("Status").select_option("COMPLETED")
    page.get_by_role("button", name="Filter").click()
    page.get_by_role("heading", name="Status COMPLETED (1)").wait_for()
    assert listed() == [done]
    page.get_by_label("Status").select_option("")
    page.get_by_label("Transfer").select_option(str(bad_transfer))
    page.get_by_role("button", name="Filter").click()
    page.get_by_role("heading", name="Recently finished (0)").wait_for()
    assert listed() == [failed]
    assert console.problems == []


def test_the_navigation_is_reachable_by_keyboard_alone(console: Console, tenant: Tenant) -> None:
    """After sign-in the focus is on the page's heading; the header's links are before it."""
    tenant.create_transfer()
    console.sign_in(tenant.token)
    page = console.page
    page.wait_for_function("() => document.activeElement.tagName === 'H1'")

    reached: list[Any] = []
    for _ in range(12):
        page.keyboard.press("Shift+Tab")
        reached.append(page.evaluate("() => document.activeElement.textContent.trim()"))
        if reached[-1] == "Transfers":
            break
    page.keyboard.press("Enter")

    page.get_by_role("heading", name="Transfers", exact=True).wait_for()
    assert reached[-1] == "Transfers", reached
    (
        page.wait_for_function(
            "() => document.activeElement.tagName === 'H1'"
            " && document.activeElement.textContent === 'Transfers'"
        ),
        "the new page's heading has the focus, as after every move",
    )


def test_pause_change_concurrency_and_resume_each_after_a_confirmation(
    console: Console, tenant: Tenant
) -> None:
    transfer_id = tenant.create_transfer(max_concurrent_runs=2, latency_ms=1500)
    backfill_id = tenant.create_backfill(transfer_id, "2024-12-01", "2024-12-30")[
        "transfer_backfill_id"
    ]
    console.sign_in(tenant.token)
    console.go(f"/teams/{tenant.team_id}/backfills/{backfill_id}")
    page = console.page
    page.get_by_role("button", name="Pause").click()
    page.locator("dialog[open]").wait_for()
    page.keyboard.press("Escape")
    page.locator("dialog[open]").wait_for(state="detached")
    assert tenant.backfill(backfill_id)["paused"] is False, "Escape leaves it as it was"

    confirm(console, "Pause")
    page.locator(".summary .badge-paused").wait_for()
    assert tenant.backfill(backfill_id)["paused"] is True
    page.get_by_role("button", name="Change concurrency").click()
    page.get_by_label("Runs at once (1–500)").fill("1")  # noqa: RUF001 (the label's dash)
    page.locator("dialog[open] button[type=submit]").click()
    page.get_by_text("1 at once").wait_for()
    assert tenant.backfill(backfill_id)["max_concurrent_runs"] == 1
    confirm(console, "Resume")
    page.locator(".summary .badge-paused").wait_for(state="detached")
    assert tenant.backfill(backfill_id)["paused"] is False
    console.screenshot("backfill-resumed")
    tenant.cancel(backfill_id)
    assert console.problems == []


def test_a_revoked_token_signs_the_tab_out(console: Console, stack: Stack, tenant: Tenant) -> None:
    console.sign_in(tenant.token)
    accounts.revoke_token(db=stack.db, token=tenant.token)

    console.go(f"/teams/{tenant.team_id}/transfers")

    console.page.get_by_role("heading", name="Sign in").wait_for()
    assert console.page.evaluate("() => sessionStorage.length") == 0
    assert console.page.get_by_role("button", name="Sign out").count() == 0


# the contrast of each element's text with the background it is drawn on (WCAG 2 formula)
CONTRAST = """() => {
  const rgb = (c) => c.match(/[\\d.]+/g).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length < 4 || c[3] > 0) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const selector = "body, a, button, .badge, .hint, .error, .ok, th, td, dt, dd, label, .live";
  return [...document.querySelectorAll(selector)]
    .filter((el) => el.textContent.trim() && el.getClientRects().length)
    .map((el) => {
      const [a, b] = [lum(rgb(getComputedStyle(el).color)), lum(background(el))];
      const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
      return [el.tagName + "." + el.className + ": " + el.textContent.trim().slice(0, 30), ratio];
    });
}"""


def test_text_has_readable_contrast_on_every_page(console: Console, tenant: Tenant) -> None:
    """WCAG AA: 4.5:1 for text, everywhere text is shown (disabled buttons included)."""
    transfer_id = tenant.create_transfer(fail_dates=["2024-02-02"])
    backfill_id = tenant.create_backfill(transfer_id, "2024-02-01", "2024-02-03")[
        "transfer_backfill_id"
    ]
    tenant.wait_until_status(backfill_id, "FAILED")
    console.sign_in(tenant.token)
    pages = {
        "backfills": f"/teams/{tenant.team_id}/backfills",
        "backfill": f"/teams/{tenant.team_id}/backfills/{backfill_id}",
        "transfers": f"/teams/{tenant.team_id}/transfers",
        "create": f"/teams/{tenant.team_id}/create",
    }
    low: list[tuple[str, str, float]] = []
    for name, path in pages.items():
        console.go(path)
        console.page.wait_for_function("() => !document.querySelector('[aria-busy=true]')")
        console.page.locator("h1").wait_for()
        console.page.wait_for_timeout(300)
        found = console.page.evaluate(CONTRAST)
        assert len(found) > 5, name
        low += [(name, what, round(ratio, 2)) for what, ratio in found if ratio < 4.5]

    assert low == []


def test_a_token_that_reads_no_team_is_told_so(
    console: Console, stack: Stack, tenant: Tenant
) -> None:
    console.sign_in(accounts.create_token(db=stack.db, user_id=tenant.user_id, scopes=[]))

    console.page.get_by_role("heading", name="Nothing to show").wait_for()
    assert "lacks the scope dwh_transfers_read" in console.page.get_by_role("alert").inner_text()
    assert console.problems == []
