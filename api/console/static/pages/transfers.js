// The team's transfers, and a form to create one: the connector options are sent as they are
// and the API's own 422 message says what is wrong with them, shown beside the form.

import { api } from "../api.js";
import { errorLine, fill, h } from "../dom.js";
import { go } from "../router.js";
import { canWrite } from "../session.js";
import { scheduleSummary } from "./transfer.js";

// Starting points for each connector's options. URLs are ${NAME} references to team secrets
// (resolved on the worker), so no password is ever typed into a browser form.
const EXAMPLES = {
  demo: { rows_per_day: 24, latency_ms: 200 },
  sql: { url: "${SOURCE_DATABASE_URL}", query: "SELECT * FROM events WHERE day = :data_date" },
  http: { url: "${REPORTS_BASE_URL}/export?day={data_date}", records_path: "data.rows" },
  sqlite: {},
  postgresql: { url: "${WAREHOUSE_URL}", table: "events" },
};

export async function renderTransfers(main, { team }) {
  main.append(h("h1", { text: "Transfers" }));
  const list = h("div", { "aria-busy": "true" });
  main.append(list);
  try {
    const transfers = await api("GET", `/teams/${team}/transfers`);
    fill(list, transfers.length ? table(team, transfers) : h("p", { class: "empty", text: "No transfers yet." }));
    list.setAttribute("aria-busy", "false");
  } catch (error) {
    fill(list, errorLine(error));
  }
  if (canWrite(team)) main.append(createForm(team));
}

function table(team, transfers) {
  const head = ["Transfer", "Source", "Destination", "Runs at once", "Schedule", ""];
  return h("div", { class: "table-wrap" }, h("table", { class: "transfers" },
    h("thead", {}, h("tr", {}, head.map((text) => h("th", { scope: "col", text })))),
    h("tbody", {}, transfers.map((t) => h("tr", { dataset: { transfer: t.transfer_id } },
      h("td", {}, h("a", { href: `#/teams/${team}/transfers/${t.transfer_id}`, text: t.display_name }), ` #${t.transfer_id}`),
      h("td", { text: t.source.type }),
      h("td", { text: t.destination.type }),
      h("td", { text: String(t.max_concurrent_runs) }),
      h("td", { text: scheduleSummary(t) }),
      h("td", {}, canWrite(team) ? h("a", { href: `#/teams/${team}/create?transfer=${t.transfer_id}`, text: "New backfill" }) : null))))));
}

function createForm(team) {
  const field = (id, label, input, hint) => h("p", { class: "field" }, h("label", { for: id, text: label }), input,
    hint ? h("span", { class: "hint", id: `${id}-hint`, text: hint }) : null);
  const name = h("input", { id: "transfer-name", required: true, maxlength: 200 });
  const sourceType = h("select", { id: "source-type" }, ["demo", "sql", "http"].map((t) => h("option", { value: t, text: t })));
  const sourceOptions = h("textarea", { id: "source-options", rows: 4, spellcheck: "false", "aria-describedby": "source-options-hint" });
  const destinationType = h("select", { id: "destination-type" }, ["sqlite", "postgresql"].map((t) => h("option", { value: t, text: t })));
  const destinationOptions = h("textarea", { id: "destination-options", rows: 3, spellcheck: "false", "aria-describedby": "destination-options-hint" });
  const cap = h("input", { id: "transfer-concurrency", type: "number", min: 1, max: 500, placeholder: "the service's default" });
  const problems = h("div", { id: "transfer-problems", "aria-live": "assertive" });
  const example = (select, area) => { area.value = JSON.stringify(EXAMPLES[select.value], null, 2); };
  example(sourceType, sourceOptions);
  example(destinationType, destinationOptions);
  sourceType.addEventListener("change", () => example(sourceType, sourceOptions));
  destinationType.addEventListener("change", () => example(destinationType, destinationOptions));
  const form = h("form", { class: "card", novalidate: true, "aria-labelledby": "new-transfer" },
    h("h2", { id: "new-transfer", text: "New transfer" }),
    field("transfer-name", "Name", name),
    field("source-type", "Source", sourceType),
    field("source-options", "Source options (JSON)", sourceOptions, "Any value may be a ${NAME} reference to a team secret."),
    field("destination-type", "Destination", destinationType),
    field("destination-options", "Destination options (JSON)", destinationOptions, "The service checks every option; its answer shows here."),
    field("transfer-concurrency", "Runs at once (optional)", cap),
    problems,
    h("p", {}, h("button", { type: "submit", class: "btn primary", text: "Create transfer" })));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const parsed = parseOptions([["source", sourceOptions], ["destination", destinationOptions]]);
    if (parsed.error) {
      fill(problems, errorLine(new Error(parsed.error)));
      markInvalid(parsed.error, { source: sourceOptions, destination: destinationOptions });
      return;
    }
    const body = {
      display_name: name.value,
      source: { ...parsed.source, type: sourceType.value },
      destination: { ...parsed.destination, type: destinationType.value },
    };
    if (cap.value) body.max_concurrent_runs = Number(cap.value);
    try {
      const made = await api("POST", `/teams/${team}/transfers`, { body });
      go(`/teams/${team}/transfers/${made.transfer_id}`);
    } catch (error) {
      fill(problems, errorLine(error));
      markInvalid(error.message || "", { source: sourceOptions, destination: destinationOptions, display_name: name });
    }
  });
  return form;
}

function parseOptions(areas) {
  const parsed = {};
  for (const [side, area] of areas) {
    try {
      const value = JSON.parse(area.value.trim() || "{}");
      if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("not an object");
      parsed[side] = value;
    } catch {
      return { error: `${side} options: write a JSON object, such as {"rows_per_day": 24}` };
    }
  }
  return parsed;
}

/** aria-invalid on the fields the service's message names (`source.rows_per_day: ...`), so a
 * screen reader says which field to fix; the others are cleared. */
function markInvalid(message, fields) {
  for (const [name, field] of Object.entries(fields)) {
    const named = new RegExp(`(^|[\\s:;(])${name}[ .]`).test(message);
    if (named) {
      field.setAttribute("aria-invalid", "true");
      field.setAttribute("aria-errormessage", "transfer-problems");
    } else {
      field.removeAttribute("aria-invalid");
      field.removeAttribute("aria-errormessage");
    }
  }
}
