// One backfill: its summary, its calendar (one cell per date), the failed dates and why, and
// its controls. Live: polled while it can still change, the calendar redrawn as dates move.

import { allPages, api } from "../api.js";
import { Calendar } from "../calendar.js";
import { confirmAction } from "../dialog.js";
import { errorLine, fill, fmtNumber, fmtTime, h, messageOf, plural } from "../dom.js";
import { poll } from "../poll.js";
import { go } from "../router.js";
import { canWrite } from "../session.js";
import { FINAL, counts, createdBy, eta, progress, statusCell, transferName, transfersById } from "./shared.js";
import { detailPanel } from "./date_detail.js";

const SHOWN_ERRORS = 100;

export async function renderBackfill(main, { team, id }) {
  const path = `/teams/${team}/backfills/${id}`;
  let backfill;
  let transfers;
  try {
    [backfill, transfers] = await Promise.all([api("GET", path), transfersById(team)]);
  } catch (error) {
    const missing = error.status === 404;
    main.append(h("h1", { text: missing ? "Backfill not found" : `Backfill #${id}` }));
    main.append(missing
      ? h("p", { class: "error", role: "alert", text: `There is no backfill #${id} in this team (${messageOf(error)}).` })
      : errorLine(error));
    main.append(h("p", {}, h("a", { href: `#/teams/${team}/backfills`, text: "← All backfills" })));
    return undefined;
  }
  const view = new BackfillView(main, team, backfill, transfers);
  await view.loadDates();
  // Each change re-reads every date (one page per 10,000), so a long backfill is read less
  // often: every second for a month, every 3.65 s for a century.
  const fastest = Math.min(10000, Math.max(1000, backfill.transfer_runs_total / 10));
  const poller = poll(() => view.refresh(), { fastest, slowest: 15000 });
  view.afterAction = () => poller.now();
  return () => poller.stop();
}

/** Whether nothing about the backfill can change any more (no run in flight either). */
function settled(backfill) {
  return FINAL.includes(backfill.status) && backfill.transfer_runs_running === 0;
}

class BackfillView {
  constructor(main, team, backfill, transfers) {
    this.team = team;
    this.backfill = backfill;
    this.transfers = transfers;
    this.path = `/teams/${team}/backfills/${backfill.transfer_backfill_id}`;
    this.afterAction = () => {};
    this.summary = h("dl", { class: "summary" });
    this.live = h("p", { class: "live", role: "status" });
    this.message = h("div", { "aria-live": "polite", class: "action-result" });
    this.actions = h("div", { class: "actions", role: "group", "aria-label": "Backfill actions" });
    this.errors = h("section", { "aria-labelledby": "errors-title" });
    this.detail = detailPanel(team);
    this.calendar = new Calendar(
      { start: backfill.range_start_date, end: backfill.range_end_date },
      { onSelect: (entry) => this.detail.show(entry) },
    );
    const name = transferName(transfers, backfill.transfer_id);
    main.append(
      h("h1", { text: `Backfill #${backfill.transfer_backfill_id}: ${name}` }),
      h("p", {}, h("a", { href: `#/teams/${team}/backfills`, text: "← All backfills" })),
      this.summary,
      this.live,
      this.actions,
      this.message,
      h("section", { "aria-labelledby": "calendar-title" },
        h("h2", { id: "calendar-title", text: "Calendar" }),
        h("p", { class: "hint", text: "One cell per date. Hover or click a cell, or Tab to a year and move with the arrow keys, to see the date's run." }),
        h("div", { class: "calendar-and-detail" }, this.calendar.element, this.detail.element)),
      this.errors,
    );
    this.render();
  }

  async loadDates() {
    const dates = await allPages(`${this.path}/dates`);
    this.calendar.update(dates);
  }

  /** One poll: re-read the backfill; when it moved, re-read its dates too. */
  async refresh() {
    const now = await api("GET", this.path);
    const moved = JSON.stringify(now) !== JSON.stringify(this.backfill);
    this.backfill = now;
    if (moved) await this.loadDates();
    this.render();
    if (settled(now)) return "done";
    return moved ? "changed" : "same";
  }

  render() {
    const b = this.backfill;
    const row = (term, ...value) => [h("dt", { text: term }), h("dd", {}, ...value)];
    fill(
      this.summary,
      row("Transfer", h("a", { href: `#/teams/${this.team}/transfers/${b.transfer_id}`, text: transferName(this.transfers, b.transfer_id) })),
      row("Dates", `${b.range_start_date} to ${b.range_end_date} (${plural(b.transfer_runs_total, "date")}, ${b.run_order === "NEWEST_FIRST" ? "newest" : "oldest"} first)`),
      row("Status", statusCell(b), b.paused && b.paused_reason ? ` — ${b.paused_reason}` : ""),
      row("Progress", progress(b)),
      row("Runs", counts(b)),
      row("Concurrency", `${b.max_concurrent_runs} at once`, b.max_failed_runs ? `; pauses after ${b.max_failed_runs} failures` : ""),
      row("ETA", eta(b)),
      row("Created", `by ${createdBy(b)}`),
      row("Started", fmtTime(b.start_time)),
      b.retry_of_backfill_id ? row("Retries", h("a", { href: `#/teams/${this.team}/backfills/${b.retry_of_backfill_id}`, text: `backfill #${b.retry_of_backfill_id}` })) : null,
    );
    this.live.textContent = settled(b)
      ? `Final: ${b.status}. Nothing more will change.`
      : `Live: updated ${new Date().toLocaleTimeString()}${b.status === "CANCELLED" ? `, draining ${b.transfer_runs_running} run(s) in flight` : ""}.`;
    this.renderActions();
    this.renderErrors();
  }

  renderActions() {
    const b = this.backfill;
    const writable = canWrite(this.team);
    const incomplete = !FINAL.includes(b.status);
    const undone = b.status === "CANCELLED" && b.transfer_runs_completed < b.transfer_runs_total;
    const button = (label, enabled, onclick, extra = {}) => h("button", {
      type: "button", class: "btn", text: label, disabled: !(writable && enabled), onclick,
      "aria-describedby": writable ? null : "read-only-note", ...extra,
    });
    fill(
      this.actions,
      button("Cancel backfill", incomplete, () => this.cancel(), { class: "btn danger" }),
      button(b.paused ? "Resume" : "Pause", incomplete, () => this.togglePause()),
      button(undone ? "Retry undone dates" : "Retry failed dates", b.status === "FAILED" || undone, () => this.retry()),
      button("Change concurrency", incomplete, () => this.concurrency()),
      writable ? null : h("p", { id: "read-only-note", class: "hint", text: "Your token cannot change backfills (it lacks the write scope, or your role in this team cannot edit), so these actions are disabled." }),
    );
  }

  renderErrors() {
    const report = this.backfill.error_report;
    if (!report.length) {
      this.errors.replaceChildren();
      return;
    }
    fill(
      this.errors,
      h("h2", { id: "errors-title", text: `Failed dates (${fmtNumber(report.length)})` }),
      this.errorTable(report.slice(0, SHOWN_ERRORS)),
      report.length > SHOWN_ERRORS
        ? h("p", { class: "hint", text: `The first ${SHOWN_ERRORS} are shown; the calendar has them all.` })
        : null,
    );
  }

  /** One row per failed date: the date (a button selecting it in the calendar) and why. */
  errorTable(entries) {
    const head = h("tr", {}, h("th", { scope: "col", text: "Date" }), h("th", { scope: "col", text: "Why" }));
    const row = (entry) => h(
      "tr",
      {},
      h("td", {}, h("button", {
        type: "button", class: "link", text: entry.transfer_run_date,
        onclick: () => this.calendar.selectDate(entry.transfer_run_date, { focus: true }),
      })),
      h("td", { text: entry.error }),
    );
    return h(
      "div",
      { class: "table-wrap errors-wrap", tabindex: "0", role: "region", "aria-label": "Failed dates" },
      h("table", { class: "errors" }, h("thead", {}, head), h("tbody", {}, entries.map(row))),
    );
  }

  async act(title, message, confirmLabel, body, { method = "PATCH", path = this.path, field, danger } = {}) {
    const answer = await confirmAction({ title, message, confirmLabel, field, danger });
    if (answer === null) return null;
    try {
      const result = await api(method, path, { body: typeof body === "function" ? body(answer) : body });
      this.message.replaceChildren(h("p", { class: "ok", text: `${title}: done.` }));
      this.afterAction();
      return result;
    } catch (error) {
      this.message.replaceChildren(errorLine(error));
      return null;
    }
  }

  cancel() {
    return this.act(
      "Cancel backfill",
      "No run of it starts any more; runs already running finish and still count. This cannot be undone (a retry makes a new backfill of the undone dates).",
      "Cancel the backfill", { status: "CANCELLED" }, { danger: true },
    );
  }

  togglePause() {
    const resume = this.backfill.paused;
    return this.act(
      resume ? "Resume backfill" : "Pause backfill",
      resume ? "Runs start again, up to the concurrency cap." : "No new run starts until you resume; runs in flight finish.",
      resume ? "Resume" : "Pause", { paused: !resume },
    );
  }

  async retry() {
    const cancelled = this.backfill.status === "CANCELLED";
    const made = await this.act(
      cancelled ? "Retry undone dates" : "Retry failed dates",
      cancelled
        ? "A new backfill runs exactly the dates this one left undone; this one stays as it is."
        : `The ${fmtNumber(this.backfill.transfer_runs_failed)} failed date(s) run again in place.`,
      "Retry", {}, { method: "POST", path: `${this.path}/retry` },
    );
    if (made && cancelled) go(`/teams/${this.team}/backfills/${made.transfer_backfill_id}`);
  }

  concurrency() {
    return this.act(
      "Change concurrency",
      "How many of its runs may run at once, from its next start on.",
      "Change", (value) => ({ max_concurrent_runs: Number(value) }),
      { field: { label: "Runs at once (1–500)", type: "number", value: this.backfill.max_concurrent_runs, min: 1, max: 500 } },
    );
  }
}
