// The selected date's run, in an aria-live panel: status, attempts, duration, times, message,
// and its rows (from the run's detail, GET /transfer_runs/{id}, once the run has ended).

import { api } from "../api.js";
import { fill, fmtDuration, fmtNumber, fmtTime, h } from "../dom.js";
import { STATUSES } from "../calendar.js";

const LABELS = Object.fromEntries(STATUSES.map((s) => [s.status, s.label]));
const ENDED = ["COMPLETED", "FAILED", "CANCELLED"];

export function detailPanel(team) {
  const body = h("div", { class: "detail-body" }, h("p", { class: "hint", text: "No date selected." }));
  const element = h(
    "aside",
    { class: "detail", "aria-labelledby": "detail-title" },
    h("h3", { id: "detail-title", text: "Selected date" }),
    h("div", { "aria-live": "polite", "aria-atomic": "true", id: "date-detail" }, body),
  );
  const rows = new Map(); // run id -> total_rows, for ended runs
  let shown = null;
  let timer = null;

  function show(entry) {
    shown = entry;
    fill(body, describe(entry, rows.get(entry.transfer_run_id)));
    clearTimeout(timer);
    const runId = entry.transfer_run_id;
    if (runId && ENDED.includes(entry.status) && !rows.has(runId)) {
      timer = setTimeout(() => loadRows(entry), 250); // arrowing through dates asks once
    }
  }

  async function loadRows(entry) {
    try {
      const run = await api("GET", `/teams/${team}/transfer_runs/${entry.transfer_run_id}`);
      rows.set(entry.transfer_run_id, run.total_rows);
      if (shown === entry) fill(body, describe(entry, run.total_rows));
    } catch {
      // the rows stay "—"; the rest of the panel is still right
    }
  }

  return { element, show };
}

function describe(entry, totalRows) {
  const item = (term, value) => [h("dt", { text: term }), h("dd", { text: value })];
  return h(
    "dl",
    { class: "detail-list" },
    item("Date", entry.data_date),
    item("Status", `${LABELS[entry.status] || entry.status} (${entry.status})`),
    item("Attempts", entry.attempts === undefined ? "0" : String(entry.attempts)),
    item("Duration", fmtDuration(entry.total_duration)),
    item("Rows", totalRows === undefined ? "—" : fmtNumber(totalRows)),
    item("Started", fmtTime(entry.started_time)),
    item("Ended", fmtTime(entry.ended_time)),
    item("Message", entry.message || "—"),
    entry.superseded_runs ? item("Earlier runs", `${entry.superseded_runs} replaced by a retry`) : null,
  );
}
