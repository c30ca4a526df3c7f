// Hash routes: `#/teams/1/backfills/42`. Only ids and filters are ever in the URL, never the
// token. Each page renders into <main> and may return a cleanup (stop its polling).

const routes = [];
let cleanup = null;

/** route("/teams/:team/backfills/:id", render): render(main, params, query). */
export function route(pattern, render) {
  const names = [];
  const source = pattern.replace(/:(\w+)/g, (_, name) => {
    names.push(name);
    return "([^/]+)";
  });
  routes.push({ regex: new RegExp(`^${source}$`), names, render });
}

export function go(path) {
  if (location.hash === `#${path}`) show();
  else location.hash = path;
}

export function current() {
  const [path, search = ""] = location.hash.replace(/^#/, "").split("?");
  return { path: path || "/", query: new URLSearchParams(search) };
}

let generation = 0;

/** Render the route of the current hash into a fresh container in <main>. A page still
 * loading when the user moves on writes into its detached container, and its cleanup runs
 * as soon as it returns. */
export async function show() {
  if (cleanup) cleanup();
  cleanup = null;
  const mine = ++generation;
  const { path, query } = current();
  const main = document.getElementById("main");
  for (const { regex, names, render } of routes) {
    const match = regex.exec(path);
    if (!match) continue;
    const params = Object.fromEntries(names.map((n, i) => [n, decodeURIComponent(match[i + 1])]));
    const page = document.createElement("div");
    page.className = "page";
    main.replaceChildren(page);
    const done = await render(page, params, query);
    if (mine !== generation) {
      if (typeof done === "function") done();
      return;
    }
    if (typeof done === "function") cleanup = done;
    focusHeading(page);
    return;
  }
  go("/");
}

function focusHeading(page) {
  const heading = page.querySelector("h1");
  if (!heading) return;
  heading.setAttribute("tabindex", "-1");
  heading.focus({ preventScroll: true });
  document.title = `${heading.textContent} · Backfills console`;
}

export function start() {
  window.addEventListener("hashchange", show);
  return show();
}
