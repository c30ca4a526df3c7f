// The console's entry point: the header (teams, sign-out), the routes, and sign-in state.

import { api } from "./api.js";
import { h, fill } from "./dom.js";
import { current, go, route, start } from "./router.js";
import { canWrite, defaultTeam, profile, setProfile, signOut, token } from "./session.js";
import { renderSignIn } from "./pages/signin.js";
import { renderBackfills } from "./pages/backfills.js";
import { renderBackfill } from "./pages/backfill.js";
import { renderCreate } from "./pages/create.js";
import { renderTransfers } from "./pages/transfers.js";
import { renderTransfer } from "./pages/transfer.js";

/** A route that needs a signed-in user: the profile is loaded once per tab (GET /me). */
function signedIn(render) {
  return async (main, params, query) => {
    if (!token()) {
      go("/signin");
      return undefined;
    }
    if (!profile()) {
      try {
        setProfile(await api("GET", "/me"));
      } catch {
        go("/signin");
        return undefined;
      }
    }
    header(params.team);
    return render(main, params, query);
  };
}

function header(teamId) {
  const me = profile();
  const team = Number(teamId || defaultTeam());
  const link = (path, text) => {
    const here = current().path === path || (path.endsWith("/backfills") && current().path.startsWith(`${path}/`));
    return h("a", { href: `#${path}`, "aria-current": here ? "page" : null, text });
  };
  fill(
    document.getElementById("nav"),
    team ? link(`/teams/${team}/backfills`, "Backfills") : null,
    team ? link(`/teams/${team}/transfers`, "Transfers") : null,
    team && canWrite(team) ? link(`/teams/${team}/create`, "New backfill") : null,
  );
  const choose = h(
    "select",
    { id: "team-select", "aria-label": "Team", onchange: (e) => go(`/teams/${e.target.value}/backfills`) },
    me.teams.map((t) => h("option", { value: t.team_id, selected: t.team_id === team, text: `${t.name} (${t.role})` })),
  );
  const access = me.scopes.includes("dwh_transfers_write") ? "read and write" : "read only";
  fill(
    document.getElementById("who"),
    h("label", { for: "team-select", class: "sr-only", text: "Team" }),
    choose,
    h("span", { class: "whoami", text: `${me.email} · token: ${access}` }),
    h("button", {
      type: "button", class: "btn", text: "Sign out",
      onclick: () => { signOut(); window.dispatchEvent(new Event("console:signed-out")); },
    }),
  );
}

function landing() {
  const team = defaultTeam();
  go(team ? `/teams/${team}/backfills` : "/no-access");
}

/** Signed in, but the token reads no team: say so, rather than a page of refusals. */
function renderNoAccess(main) {
  const me = profile();
  main.append(
    h("h1", { text: "Nothing to show" }),
    h("p", {
      role: "alert",
      text: me.scopes.includes("dwh_transfers_read")
        ? "None of your teams gives your role the right to view transfers."
        : "This token lacks the scope dwh_transfers_read, so it can read no team's backfills.",
    }),
  );
}

function clearHeader() {
  fill(document.getElementById("nav"));
  fill(document.getElementById("who"));
}

route("/signin", (main) => {
  clearHeader();
  return renderSignIn(main, () => landing());
});
route("/", signedIn(async () => landing()));
route("/no-access", signedIn(renderNoAccess));
route("/teams/:team/backfills", signedIn(renderBackfills));
route("/teams/:team/backfills/:id", signedIn(renderBackfill));
route("/teams/:team/create", signedIn(renderCreate));
route("/teams/:team/transfers", signedIn(renderTransfers));
route("/teams/:team/transfers/:id", signedIn(renderTransfer));

window.addEventListener("console:signed-out", () => go("/signin"));
document.getElementById("skip-link").addEventListener("click", (event) => {
  event.preventDefault();
  const main = document.getElementById("main");
  (main.querySelector("h1") || main).focus();
});
start();
