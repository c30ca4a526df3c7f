// A new backfill: transfer, range, order and concurrency; a dry run shows the dates and the
// estimate (or why it would be refused) before the user confirms the create.

import { api } from "../api.js";
import { confirmAction } from "../dialog.js";
import { errorLine, fill, fmtDuration, fmtNumber, fmtTime, h } from "../dom.js";
import { go } from "../router.js";
import { canWrite } from "../session.js";
import { transfersById } from "./shared.js";

const SHOWN_DATES = 60;

export async function renderCreate(main, { team }, query) {
  main.append(h("h1", { text: "New backfill" }));
  if (!canWrite(team)) {
    main.append(h("p", { class: "error", role: "alert", text: "Your token cannot create backfills in this team: it lacks the write scope, or your role cannot edit." }));
    return;
  }
  let transfers;
  try {
    transfers = await transfersById(team);
  } catch (error) {
    main.append(errorLine(error));
    return;
  }
  if (!transfers.size) {
    main.append(h("p", {}, "This team has no transfer yet. ", h("a", { href: `#/teams/${team}/transfers`, text: "Create one first." })));
    return;
  }
  const field = (id, label, input) => h("p", { class: "field" }, h("label", { for: id, text: label }), input);
  const transfer = h("select", { id: "create-transfer", required: true },
    [...transfers.values()].map((t) => h("option", { value: t.transfer_id, selected: String(t.transfer_id) === query.get("transfer"), text: `${t.display_name} (#${t.transfer_id})` })));
  const start = h("input", { id: "create-start", type: "date", required: true, value: query.get("from") || "" });
  const end = h("input", { id: "create-end", type: "date", required: true, value: query.get("to") || "" });
  const order = h("select", { id: "create-order" },
    h("option", { value: "OLDEST_FIRST", text: "Oldest first" }), h("option", { value: "NEWEST_FIRST", text: "Newest first" }));
  const cap = h("input", { id: "create-concurrency", type: "number", min: 1, max: 500, placeholder: "the transfer's" });
  const result = h("div", { id: "dry-run", "aria-live": "polite" });
  const form = h("form", { class: "card", novalidate: true },
    field("create-transfer", "Transfer", transfer),
    field("create-start", "First date", start),
    field("create-end", "Last date", end),
    field("create-order", "Order", order),
    field("create-concurrency", "Runs at once (optional)", cap),
    h("p", {}, h("button", { type: "submit", class: "btn primary", text: "Dry run" })));
  main.append(form, result);

  const body = () => {
    const request = { range_start: start.value, range_end: end.value, run_order: order.value };
    if (cap.value) request.max_concurrent_runs = Number(cap.value);
    return request;
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!start.value || !end.value) {
      fill(result, errorLine(new Error("choose the first and the last date")));
      return;
    }
    const request = body();
    const transferId = transfer.value;
    fill(result, h("p", { text: "Asking the service what this backfill would do…" }));
    try {
      const dry = await api("POST", `/teams/${team}/transfers/${transferId}/backfills/dry_run`, { body: request });
      fill(result, dryRunView(dry, () => create(team, transferId, request, dry, result)));
    } catch (error) {
      fill(result, errorLine(error));
    }
  });
}

function dryRunView(dry, onCreate) {
  const est = dry.estimate;
  const dates = dry.dates.slice(0, SHOWN_DATES);
  const more = dry.transfer_runs_total - dates.length;
  return h("section", { class: "card", "aria-labelledby": "dry-title" },
    h("h2", { id: "dry-title", text: "Dry run" }),
    h("p", { text: `${fmtNumber(dry.transfer_runs_total)} date(s), ${dry.first_date || "—"} first, ${dry.last_date || "—"} last; ${dry.max_concurrent_runs} at once.` }),
    h("p", { text: est.duration_seconds === null ? `Estimate: not known (${est.explanation})` : `Estimate: about ${fmtDuration(est.duration_seconds)}, ending around ${fmtTime(dry.estimated_end_time)} (${est.explanation})` }),
    h("details", {}, h("summary", { text: `The dates, in the order they run${more > 0 ? ` (first ${dates.length})` : ""}` }),
      h("ol", { class: "dates" }, dates.map((d) => h("li", { text: d })))),
    dry.would_be_refused
      ? h("div", { role: "alert" }, h("p", { class: "error", text: "The service would refuse this backfill:" }),
        h("ul", {}, dry.refusals.map((r) => h("li", { class: "error", text: `${r.code}: ${r.message}` }))))
      : h("p", {}, h("button", { type: "button", class: "btn primary", id: "create-confirm", text: "Create backfill…", onclick: onCreate })));
}

async function create(team, transferId, request, dry, result) {
  const confirmed = await confirmAction({
    title: "Create backfill",
    message: `Run ${fmtNumber(dry.transfer_runs_total)} date(s) from ${request.range_start} to ${request.range_end}?`,
    confirmLabel: "Create",
  });
  if (!confirmed) return;
  try {
    const made = await api("POST", `/teams/${team}/transfers/${transferId}/backfills`, {
      body: request, headers: { "Idempotency-Key": newKey() },
    });
    go(`/teams/${team}/backfills/${made.transfer_backfill_id}`);
  } catch (error) {
    result.append(errorLine(error));
  }
}

/** A fresh Idempotency-Key (crypto.randomUUID exists only in secure contexts: not plain http
 * to a host other than localhost). */
function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
