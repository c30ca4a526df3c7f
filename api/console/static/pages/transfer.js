// One transfer: its options (as the API shows them, secrets masked), its schedule and next
// firings, and its backfills of every status.

import { api } from "../api.js";
import { errorLine, fmtTime, h, messageOf } from "../dom.js";
import { canWrite } from "../session.js";
import { BACKFILL_STATUSES, counts, progress, statusCell } from "./shared.js";

export function scheduleSummary(transfer) {
  const spec = transfer.schedule;
  if (!spec) return "none";
  const minute = String(spec.minute ?? 0).padStart(2, "0");
  let when = `every ${spec.interval_seconds} s`;
  if (spec.cron) when = `cron "${spec.cron}"`;
  else if (spec.every === "daily") when = `daily at ${String(spec.hour ?? 0).padStart(2, "0")}:${minute}`;
  else if (spec.every === "hourly") when = `hourly at :${minute}`;
  const zone = spec.time_zone ? ` (${spec.time_zone})` : "";
  const paused = transfer.schedule_state && transfer.schedule_state.paused ? ", paused" : "";
  return `${when}${zone}${paused}`;
}

export async function renderTransfer(main, { team, id }) {
  let transfer;
  let backfills;
  try {
    [transfer, backfills] = await Promise.all([
      api("GET", `/teams/${team}/transfers/${id}`),
      api("GET", `/teams/${team}/backfills`, { query: { transfer_id: id, status: BACKFILL_STATUSES, limit: 50 } }),
    ]);
  } catch (error) {
    const missing = error.status === 404;
    main.append(h("h1", { text: missing ? "Transfer not found" : `Transfer #${id}` }));
    main.append(missing ? h("p", { class: "error", role: "alert", text: `There is no transfer #${id} in this team (${messageOf(error)}).` }) : errorLine(error));
    main.append(h("p", {}, h("a", { href: `#/teams/${team}/transfers`, text: "← All transfers" })));
    return;
  }
  main.append(
    h("h1", { text: `Transfer #${transfer.transfer_id}: ${transfer.display_name}` }),
    h("p", {}, h("a", { href: `#/teams/${team}/transfers`, text: "← All transfers" }),
      canWrite(team) ? [" · ", h("a", { href: `#/teams/${team}/create?transfer=${transfer.transfer_id}`, text: "New backfill of this transfer" })] : null),
    h("dl", { class: "summary" },
      h("dt", { text: "Source" }), h("dd", {}, h("pre", { text: JSON.stringify(transfer.source, null, 2) })),
      h("dt", { text: "Destination" }), h("dd", {}, h("pre", { text: JSON.stringify(transfer.destination, null, 2) })),
      h("dt", { text: "Runs at once" }), h("dd", { text: String(transfer.max_concurrent_runs) }),
      h("dt", { text: "Created" }), h("dd", { text: fmtTime(transfer.created_time) })),
    scheduleSection(transfer),
    backfillsSection(team, backfills),
  );
}

function scheduleSection(transfer) {
  const state = transfer.schedule_state;
  const firings = state && state.next_firings;
  return h("section", { "aria-labelledby": "schedule-title" },
    h("h2", { id: "schedule-title", text: "Schedule" }),
    h("p", { text: `Schedule: ${scheduleSummary(transfer)}` }),
    state && state.paused ? h("p", { text: `Paused: ${state.paused_reason || "no reason given"}` }) : null,
    state && !state.applied ? h("p", { class: "hint", text: "Temporal has not taken the latest change yet." }) : null,
    firings && firings.length
      ? [h("h3", { text: "Next firings" }), h("ol", { class: "firings" }, firings.map((t) => h("li", {}, h("time", { datetime: t, text: fmtTime(t) }))))]
      : transfer.schedule ? h("p", { class: "hint", text: "Next firings are not known right now." }) : null);
}

function backfillsSection(team, backfills) {
  return h("section", { "aria-labelledby": "transfer-backfills" },
    h("h2", { id: "transfer-backfills", text: `Backfills (${backfills.length})` }),
    backfills.length
      ? h("ul", { class: "plain" }, backfills.map((b) => h("li", {},
        h("a", { href: `#/teams/${team}/backfills/${b.transfer_backfill_id}`, text: `#${b.transfer_backfill_id}` }),
        ` ${b.range_start_date} to ${b.range_end_date} `, statusCell(b), " ", progress(b), ` ${counts(b)}`)))
      : h("p", { class: "empty", text: "None yet." }));
}
