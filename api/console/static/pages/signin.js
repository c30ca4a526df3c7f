// Sign in with an API token: checked with GET /me, then kept in sessionStorage only. The
// input has no `name` and the form never submits, so the token can never land in a URL.

import { api } from "../api.js";
import { errorLine, h } from "../dom.js";
import { signIn } from "../session.js";

export function renderSignIn(main, done) {
  const input = h("input", {
    id: "token", type: "password", autocomplete: "off", spellcheck: "false", required: true,
    "aria-describedby": "token-help",
  });
  const status = h("div", { "aria-live": "polite" });
  const form = h(
    "form",
    { class: "card narrow", novalidate: true },
    h("p", {}, h("label", { for: "token", text: "API token" })),
    h("p", {}, input),
    h(
      "p",
      { id: "token-help", class: "hint" },
      "A token from ", h("code", { text: "backfills admin create-token" }), ". It stays in this "
        + "tab only (session storage) and is sent to this service's API alone; the console can "
        + "do nothing the token cannot.",
    ),
    h("p", {}, h("button", { type: "submit", class: "btn primary", text: "Sign in" })),
    status,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = input.value.trim();
    if (!value) {
      status.replaceChildren(errorLine(new Error("enter a token")));
      return;
    }
    status.replaceChildren(h("p", { text: "Checking the token…" }));
    try {
      const me = await api("GET", "/me", { bearer: value });
      signIn(value, me);
      input.value = "";
      done();
    } catch (error) {
      status.replaceChildren(errorLine(error));
    }
  });
  main.append(h("h1", { text: "Sign in" }), form);
  input.focus();
}
