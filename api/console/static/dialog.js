// Confirmation before every write: a modal <dialog> (focus stays inside, Escape cancels).

import { h } from "./dom.js";

/**
 * confirmAction({title, message, confirmLabel, field}) resolves to true (or the field's value)
 * when confirmed, null when cancelled. `field` is {label, type, value, min, max} for an input.
 */
export function confirmAction({ title, message, confirmLabel, field = null, danger = false }) {
  return new Promise((resolve) => {
    const input = field
      ? h("input", {
        id: "dialog-field", type: field.type || "text", value: field.value ?? "",
        min: field.min, max: field.max, required: true,
      })
      : null;
    const confirm = h("button", {
      type: "submit", class: danger ? "btn danger" : "btn primary", text: confirmLabel,
    });
    const cancel = h("button", { type: "button", class: "btn", text: "Go back" });
    const form = h(
      "form",
      { method: "dialog" },
      h("h2", { id: "dialog-title", text: title }),
      h("p", { text: message }),
      input && h("p", {}, h("label", { for: "dialog-field", text: field.label }), " ", input),
      h("div", { class: "actions" }, cancel, confirm),
    );
    const dialog = h("dialog", { "aria-labelledby": "dialog-title", class: "confirm" }, form);
    let answer = null;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (input && !input.reportValidity()) return;
      answer = input ? input.value : true;
      dialog.close();
    });
    cancel.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(answer);
    });
    document.body.append(dialog);
    dialog.showModal();
    (input || cancel).focus();
  });
}
