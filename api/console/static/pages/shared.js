// Pieces more than one page shows: the transfers' names, a backfill's progress and counts.

import { api } from "../api.js";
import { fmtNumber, fmtTime, h, statusBadge } from "../dom.js";
import { profile } from "../session.js";

export const BACKFILL_STATUSES = ["CREATED", "SCHEDULED", "RUNNING", "FAILED", "COMPLETED", "CANCELLED"];
export const FINAL = ["COMPLETED", "CANCELLED"];

/** The team's transfers by id (names are the tenant's own text: shown with textContent). */
export async function transfersById(teamId) {
  const found = await api("GET", `/teams/${teamId}/transfers`);
  return new Map(found.map((t) => [t.transfer_id, t]));
}

export function transferName(transfers, transferId) {
  const found = transfers.get(transferId);
  return found ? found.display_name : `transfer ${transferId}`;
}

export function progress(backfill) {
  const done = backfill.transfer_runs_completed;
  const total = backfill.transfer_runs_total;
  const percent = total ? Math.floor((100 * done) / total) : 0;
  return h(
    "span",
    { class: "progress" },
    h("progress", {
      max: total || 1, value: done, "aria-label": `${fmtNumber(done)} of ${fmtNumber(total)} dates done`,
    }),
    h("span", { class: "progress-text", text: `${percent}% (${fmtNumber(done)}/${fmtNumber(total)})` }),
  );
}

export function counts(backfill) {
  return [
    `${fmtNumber(backfill.transfer_runs_completed)} done`,
    `${fmtNumber(backfill.transfer_runs_failed)} failed`,
    `${fmtNumber(backfill.transfer_runs_running)} running`,
    `${fmtNumber(backfill.transfer_runs_cancelled)} cancelled`,
    `${fmtNumber(waiting(backfill))} waiting`,
  ].join(" · ");
}

export function waiting(backfill) {
  const ended = backfill.transfer_runs_completed + backfill.transfer_runs_failed
    + backfill.transfer_runs_cancelled + backfill.transfer_runs_running;
  return Math.max(0, backfill.transfer_runs_total - ended);
}

export function statusCell(backfill) {
  return h(
    "span",
    { class: "status-cell" },
    statusBadge(backfill.status),
    backfill.paused ? h("span", { class: "badge badge-paused", text: "PAUSED" }) : null,
  );
}

export function createdBy(backfill) {
  const me = profile();
  const who = me && me.user_id === backfill.created_user_id ? "you" : `user ${backfill.created_user_id}`;
  return `${who}, ${fmtTime(backfill.created_time)}`;
}

export function eta(backfill) {
  if (FINAL.includes(backfill.status)) return `ended ${fmtTime(backfill.end_time)}`;
  if (backfill.paused) return "paused";
  return backfill.estimated_end_time ? fmtTime(backfill.estimated_end_time) : "not known yet";
}
