// The team's backfills: the incomplete ones first, then the recently finished, with filters
// by transfer and status; refreshed by polling that backs off while nothing changes.

import { api } from "../api.js";
import { errorLine, fill, h } from "../dom.js";
import { go } from "../router.js";
import { poll } from "../poll.js";
import { canWrite } from "../session.js";
import {
  BACKFILL_STATUSES, FINAL, counts, createdBy, eta, progress, statusCell, transferName,
  transfersById,
} from "./shared.js";

const RECENT_FINAL = 25;

export async function renderBackfills(main, { team }, query) {
  const transferId = query.get("transfer") || "";
  const status = query.get("status") || "";
  main.append(h("h1", { text: "Backfills" }));
  if (canWrite(team)) {
    main.append(h("p", {}, h("a", { class: "btn primary", href: `#/teams/${team}/create`, text: "New backfill" })));
  }
  let transfers;
  try {
    transfers = await transfersById(team);
  } catch (error) {
    main.append(errorLine(error));
    return undefined;
  }
  main.append(filters(team, transfers, transferId, status));
  const lists = h("div", { "aria-live": "polite", "aria-busy": "true" });
  main.append(lists);
  const sections = sectionsFor(status);
  let last = "";
  const refresh = async () => {
    const found = await Promise.all(sections.map((s) => api("GET", `/teams/${team}/backfills`, {
      query: { status: s.statuses, transfer_id: transferId || null, limit: s.limit },
    })));
    const text = JSON.stringify(found);
    if (text === last) return "same";
    last = text;
    fill(lists, sections.map((s, i) => section(team, s.title, found[i], transfers)));
    lists.setAttribute("aria-busy", "false");
    return "changed";
  };
  try {
    await refresh();
  } catch (error) {
    fill(lists, errorLine(error));
    return undefined;
  }
  const poller = poll(refresh, { fastest: 2000, slowest: 30000 });
  return () => poller.stop();
}

function sectionsFor(status) {
  if (status === "final") return [{ title: "Finished", statuses: FINAL, limit: 100 }];
  if (status) return [{ title: `Status ${status}`, statuses: [status], limit: 100 }];
  return [
    { title: "In progress, waiting or failed", statuses: null, limit: null },
    { title: "Recently finished", statuses: FINAL, limit: RECENT_FINAL },
  ];
}

function filters(team, transfers, transferId, status) {
  const transferSelect = h(
    "select",
    { id: "filter-transfer" },
    h("option", { value: "", text: "All transfers" }),
    [...transfers.values()].map((t) => h("option", {
      value: t.transfer_id, selected: String(t.transfer_id) === transferId, text: `${t.display_name} (#${t.transfer_id})`,
    })),
  );
  const statusSelect = h(
    "select",
    { id: "filter-status" },
    h("option", { value: "", text: "Incomplete, then recently finished" }),
    h("option", { value: "final", selected: status === "final", text: "Finished (COMPLETED or CANCELLED)" }),
    BACKFILL_STATUSES.map((s) => h("option", { value: s, selected: s === status, text: s })),
  );
  const apply = (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    if (transferSelect.value) params.set("transfer", transferSelect.value);
    if (statusSelect.value) params.set("status", statusSelect.value);
    const search = params.toString();
    go(`/teams/${team}/backfills${search ? `?${search}` : ""}`);
  };
  return h(
    "form",
    { class: "filters", onsubmit: apply, "aria-label": "Filter backfills" },
    h("label", { for: "filter-transfer", text: "Transfer" }), transferSelect,
    h("label", { for: "filter-status", text: "Status" }), statusSelect,
    h("button", { type: "submit", class: "btn", text: "Filter" }),
  );
}

function section(team, title, backfills, transfers) {
  const body = backfills.length
    ? table(team, backfills, transfers)
    : h("p", { class: "empty", text: "None." });
  return h("section", {}, h("h2", { text: `${title} (${backfills.length})` }), body);
}

function table(team, backfills, transfers) {
  const head = ["Backfill", "Transfer", "Dates", "Status", "Progress", "Runs", "ETA / ended", "Created"];
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "backfills" },
      h("thead", {}, h("tr", {}, head.map((text) => h("th", { scope: "col", text })))),
      h("tbody", {}, backfills.map((b) => h(
        "tr",
        { dataset: { backfill: b.transfer_backfill_id } },
        h("td", {}, h("a", { href: `#/teams/${team}/backfills/${b.transfer_backfill_id}`, text: `#${b.transfer_backfill_id}` })),
        h("td", { text: transferName(transfers, b.transfer_id) }),
        h("td", { text: `${b.range_start_date} to ${b.range_end_date}` }),
        h("td", {}, statusCell(b)),
        h("td", {}, progress(b)),
        h("td", { class: "counts", text: counts(b) }),
        h("td", { text: eta(b) }),
        h("td", { text: createdBy(b) }),
      ))),
    ),
  );
}
